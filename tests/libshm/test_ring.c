/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of libshm: layout, policies, consumers, failure modes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/shm.h>

#include "../../libshm/shm-internal.h"

static char dir[128];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-shm-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(ring, .init = mkdir_tmp, .fini = rm_tmp);
TestSuite(stats, .init = mkdir_tmp, .fini = rm_tmp);

static struct shm_ring *mk(uint64_t cap, enum shm_policy pol)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *r;

	o.capacity = cap;
	o.policy = pol;
	o.grace_ms = 200;
	cr_assert_eq(shm_ring_create(dir, "t", &o, &r), 0);
	return r;
}

static void put(struct shm_ring *r, uint32_t len, uint8_t fill)
{
	void *p;
	cr_assert_eq(shm_reserve(r, len, KL_REC_MARK, &p), 0);
	memset(p, fill, len);
}

Test(ring, wraparound_and_padding)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	struct shm_consumer *c;
	struct shm_rec recs[64];
	uint8_t next = 0;
	uint64_t seen = 0;

	cr_assert_eq(shm_consumer_attach(r, "c", SHM_REQUIRED, &c), 0);
	/* 200-byte records: 216 bytes each, 4096 is not a multiple -> pads at every wrap */
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 5; i++)
			put(r, 200, (uint8_t)(next + i));
		cr_assert_eq(shm_publish(r), 5);
		int got = 0;
		while (got < 5) {
			int n = shm_consumer_poll(c, recs, 64, 0);
			cr_assert_geq(n, 0);
			for (int k = 0; k < n; k++) {
				cr_assert_eq(recs[k].len, 200);
				cr_assert_eq(recs[k].type, KL_REC_MARK);
				cr_assert_eq(recs[k].seq, seen, "seq %lu != %lu", recs[k].seq, seen);
				const uint8_t *d = recs[k].data;
				for (int j = 0; j < 200; j++)
					cr_assert_eq(d[j], (uint8_t)(next + got + k));
				seen++;
			}
			got += n;
			shm_consumer_release(c);
		}
		next += 5;
	}
	cr_assert_eq(shm_consumer_consumed(c), 500);
	cr_assert_eq(shm_consumer_missed(c), 0);
	shm_consumer_detach(c);
	shm_ring_close(r);
}

Test(ring, batch_commit_invisible_until_publish)
{
	struct shm_ring *r = mk(1 << 16, SHM_POLICY_BLOCK);
	struct shm_consumer *c;
	struct shm_rec recs[16];

	cr_assert_eq(shm_consumer_attach(r, "c", SHM_REQUIRED, &c), 0);
	for (int i = 0; i < 10; i++)
		put(r, 8 + (uint32_t)i, (uint8_t)i);
	cr_assert_eq(shm_consumer_poll(c, recs, 16, 0), 0, "reserved records leaked before publish");
	cr_assert_eq(shm_publish(r), 10);
	cr_assert_eq(shm_consumer_poll(c, recs, 16, 0), 10);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(recs[i].len, 8u + (uint32_t)i);
	shm_consumer_release(c);
	shm_consumer_detach(c);
	shm_ring_close(r);
}

Test(ring, trim_last_reservation)
{
	struct shm_ring *r = mk(1 << 16, SHM_POLICY_BLOCK);
	struct shm_consumer *c;
	struct shm_rec recs[4];
	void *p;

	cr_assert_eq(shm_consumer_attach(r, "c", SHM_REQUIRED, &c), 0);
	cr_assert_eq(shm_reserve(r, 1000, KL_REC_MARK, &p), 0);
	memcpy(p, "hello", 5);
	shm_trim(r, 5);
	put(r, 3, 7);
	shm_publish(r);
	cr_assert_eq(shm_consumer_poll(c, recs, 4, 0), 2);
	cr_assert_eq(recs[0].len, 5);
	cr_assert_eq(memcmp(recs[0].data, "hello", 5), 0);
	cr_assert_eq(recs[1].len, 3);
	shm_consumer_detach(c);
	shm_ring_close(r);
}

Test(ring, full_ring_drop_policy_counts_exactly)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_DROP);
	struct shm_consumer *a, *b;
	struct shm_rec recs[256];
	int ok = 0, dropped = 0;

	cr_assert_eq(shm_consumer_attach(r, "a", SHM_REQUIRED, &a), 0);
	cr_assert_eq(shm_consumer_attach(r, "b", SHM_REQUIRED, &b), 0);
	for (int i = 0; i < 1000; i++) {
		void *p;
		int err = shm_reserve(r, 48, KL_REC_MARK, &p);
		if (err == -ENOBUFS) {
			dropped++;
		} else {
			cr_assert_eq(err, 0);
			ok++;
		}
		shm_publish(r);
		/* a drains every time, b never: b's lag makes the producer drop */
		int n = shm_consumer_poll(a, recs, 256, 0);
		(void)n;
		shm_consumer_release(a);
	}
	cr_assert_gt(dropped, 0);
	uint64_t bc = 0;
	for (;;) {
		int n = shm_consumer_poll(b, recs, 256, 0);
		if (n <= 0)
			break;
		bc += (uint64_t)n;
		shm_consumer_release(b);
	}
	cr_assert_eq(shm_consumer_consumed(a) + shm_consumer_dropped(a), 1000);
	cr_assert_eq(bc + shm_consumer_dropped(b), 1000);
	struct shm_ring_info info;
	shm_ring_info(r, &info);
	cr_assert_eq(info.dropped, (uint64_t)dropped);
	cr_assert_eq(info.produced, (uint64_t)ok);
	shm_consumer_detach(a);
	shm_consumer_detach(b);
	shm_ring_close(r);
}

struct slow_arg {
	struct shm_consumer *c;
	uint64_t got;
	uint64_t want;
	int bad;
};

static void *slow_consumer(void *p)
{
	struct slow_arg *a = p;
	struct shm_rec recs[8];

	while (a->got < a->want) {
		int n = shm_consumer_poll(a->c, recs, 8, 1000);
		if (n < 0)
			break;
		for (int i = 0; i < n; i++)
			if (recs[i].seq != a->got + (uint64_t)i)
				a->bad++;
		a->got += (uint64_t)n;
		usleep(100);
		shm_consumer_release(a->c);
	}
	return NULL;
}

Test(ring, full_ring_block_policy_waits_and_loses_nothing)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	struct slow_arg a = { .want = 5000 };
	pthread_t th;

	cr_assert_eq(shm_consumer_attach(r, "slow", SHM_REQUIRED, &a.c), 0);
	cr_assert_eq(pthread_create(&th, NULL, slow_consumer, &a), 0);
	for (int i = 0; i < 5000; i++) {
		put(r, 100, (uint8_t)i);
		if (i % 7 == 0)
			shm_publish(r);
	}
	shm_publish(r);
	pthread_join(th, NULL);
	cr_assert_eq(a.got, 5000);
	cr_assert_eq(a.bad, 0);
	struct shm_ring_info info;
	shm_ring_info(r, &info);
	cr_assert_eq(info.dropped, 0);
	cr_assert_gt(info.blocked_ns, 0, "producer never had to wait: test proves nothing");
	shm_consumer_detach(a.c);
	shm_ring_close(r);
}

Test(ring, observer_never_blocks_and_counts_misses)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	struct shm_consumer *o;
	struct shm_rec recs[512];

	cr_assert_eq(shm_consumer_attach(r, "tap", SHM_OBSERVER, &o), 0);
	/* 10k records through a 4 KiB ring with only an observer: must not block */
	for (int i = 0; i < 10000; i++) {
		put(r, 56, (uint8_t)i);
		shm_publish(r);
	}
	uint64_t got = 0, last = 0;
	bool first = true;
	for (;;) {
		int n = shm_consumer_poll(o, recs, 512, 0);
		cr_assert_geq(n, 0);
		if (!n)
			break;
		for (int i = 0; i < n; i++) {
			if (!first)
				cr_assert_gt(recs[i].seq, last);
			first = false;
			last = recs[i].seq;
			cr_assert_eq(((const uint8_t *)recs[i].data)[0], (uint8_t)recs[i].seq);
		}
		got += (uint64_t)n;
		shm_consumer_release(o);
	}
	cr_assert_eq(last, 9999);
	cr_assert_eq(got + shm_consumer_missed(o), 10000, "got %lu missed %lu", got, shm_consumer_missed(o));
	cr_assert_gt(shm_consumer_missed(o), 0);
	shm_consumer_detach(o);
	shm_ring_close(r);
}

Test(ring, consumer_resumes_after_restart)
{
	struct shm_ring *r = mk(1 << 16, SHM_POLICY_BLOCK);
	struct shm_consumer *c;
	struct shm_rec recs[64];

	cr_assert_eq(shm_consumer_attach(r, "stage", SHM_REQUIRED, &c), 0);
	for (int i = 0; i < 20; i++)
		put(r, 16, (uint8_t)i);
	shm_publish(r);
	cr_assert_eq(shm_consumer_poll(c, recs, 5, 0), 5);
	shm_consumer_release(c);
	shm_consumer_abandon(c);   /* dies without detaching */

	/* While its owner lives, nobody else may take the slot. */
	struct shm_ring *r2;
	cr_assert_eq(shm_ring_open(dir, "t", &r2), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct shm_consumer *c2;
		int err = shm_consumer_attach(r2, "stage", SHM_REQUIRED, &c2);
		/* the owner (our parent) is alive: EBUSY */
		_exit(err == -EBUSY ? 0 : 1);
	}
	int st;
	waitpid(child, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "live owner's slot was taken");

	/* hand the slot to a dead pid, as if our process had crashed */
	child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, &st, 0);
	struct shm_ring_info info;
	shm_ring_info(r2, &info);
	cr_assert_eq(info.nconsumers, 1);
	/* rewrite owner pid to the reaped child */
	{
		char path[256];
		snprintf(path, sizeof(path), "%s/t", dir);
		int fd = open(path, O_RDWR);
		cr_assert_geq(fd, 0);
		struct shm_hdr *hh = mmap(NULL, SHM_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		cr_assert_neq(hh, MAP_FAILED);
		for (int i = 0; i < SHM_MAX_CONSUMERS; i++)
			if (!strcmp(hh->slots[i].name, "stage"))
				hh->slots[i].pid = child;
		munmap(hh, SHM_HDR_SIZE);
		close(fd);
	}
	cr_assert_eq(shm_consumer_attach(r2, "stage", SHM_REQUIRED, &c), 0);
	int n = shm_consumer_poll(c, recs, 64, 0);
	cr_assert_eq(n, 15, "resumed consumer saw %d records", n);
	cr_assert_eq(recs[0].seq, 5);
	cr_assert_eq(shm_consumer_missed(c), 0);
	shm_consumer_detach(c);
	shm_ring_close(r2);
	shm_ring_close(r);
}

Test(ring, dead_consumer_detached_after_grace)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	struct shm_rec recs[64];
	int st;

	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct shm_ring *rc;
		struct shm_consumer *c;
		if (shm_ring_open(dir, "t", &rc) || shm_consumer_attach(rc, "dead", SHM_REQUIRED, &c))
			_exit(1);
		_exit(0); /* dies holding the slot */
	}
	waitpid(child, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Block policy with a dead required consumer: the producer waits for the
	 * grace period (200 ms), then detaches it and carries on. */
	for (int i = 0; i < 200; i++) {
		put(r, 100, (uint8_t)i);
		shm_publish(r);
	}
	struct shm_ring_info info;
	shm_ring_info(r, &info);
	cr_assert_eq(info.nconsumers, 1);
	cr_assert_eq(info.consumers[0].state, 3, "dead consumer not detached");
	cr_assert_geq(info.blocked_ns, 150ull * 1000 * 1000, "producer did not hold for the grace period");

	/* It comes back: starts at the head, the gap is counted. */
	struct shm_consumer *c;
	cr_assert_eq(shm_consumer_attach(r, "dead", SHM_REQUIRED, &c), 0);
	cr_assert_eq(shm_consumer_missed(c), 200);
	cr_assert_eq(shm_consumer_poll(c, recs, 64, 0), 0);
	put(r, 8, 1);
	shm_publish(r);
	cr_assert_eq(shm_consumer_poll(c, recs, 64, 0), 1);
	cr_assert_eq(recs[0].seq, 200);
	shm_consumer_detach(c);
	shm_ring_close(r);
}

Test(ring, corrupt_header_rejected)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	char path[256];
	shm_ring_close(r);
	snprintf(path, sizeof(path), "%s/t", dir);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint64_t cap = 3;
	cr_assert_eq(pwrite(fd, &cap, sizeof(cap), offsetof(struct shm_hdr, capacity)), 8);
	close(fd);
	cr_assert_eq(shm_ring_open(dir, "t", &r), -EBADMSG);

	fd = open(path, O_RDWR);
	uint64_t junk = 0x1234;
	cr_assert_eq(pwrite(fd, &junk, sizeof(junk), 0), 8);
	close(fd);
	cr_assert_eq(shm_ring_open(dir, "t", &r), -EBADMSG);

	fd = open(path, O_RDWR | O_TRUNC);
	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
	cr_assert_eq(shm_ring_open(dir, "t", &r), -EBADMSG);
	cr_assert_eq(shm_ring_open(dir, "nonexistent", &r), -ENOENT);
}

Test(ring, layout_version_mismatch)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	char path[256];
	shm_ring_close(r);
	snprintf(path, sizeof(path), "%s/t", dir);
	int fd = open(path, O_RDWR);
	uint32_t v = SHM_LAYOUT_VERSION + 1;
	cr_assert_eq(pwrite(fd, &v, sizeof(v), offsetof(struct shm_hdr, layout_version)), 4);
	close(fd);
	cr_assert_eq(shm_ring_open(dir, "t", &r), -EPROTO);
}

Test(ring, oversized_record)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	void *p;
	uint64_t max = shm_ring_max_record(r);

	cr_assert_eq(shm_reserve(r, (uint32_t)max + 1, KL_REC_MARK, &p), -EMSGSIZE);
	cr_assert_eq(shm_reserve(r, (uint32_t)max, KL_REC_MARK, &p), 0);
	cr_assert_eq(shm_reserve(r, 8, KL_REC_PAD, &p), -EINVAL);
	shm_ring_close(r);
}

Test(ring, file_mode_and_reuse_keeps_cursors)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_DROP), *rc;
	struct shm_consumer *c;
	struct shm_rec recs[8];
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/t", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640);
	/* the consumer has its own mapping, as in another process */
	cr_assert_eq(shm_ring_open(dir, "t", &rc), 0);
	cr_assert_eq(shm_consumer_attach(rc, "c", SHM_REQUIRED, &c), 0);
	put(r, 8, 1);
	put(r, 8, 2);
	shm_publish(r);
	shm_ring_close(r);
	/* producer restarts: same ring, consumer's records still there */
	r = mk(4096, SHM_POLICY_DROP);
	put(r, 8, 3);
	shm_publish(r);
	cr_assert_eq(shm_consumer_poll(c, recs, 8, 0), 3);
	cr_assert_eq(recs[2].seq, 2);
	cr_assert_eq(((const uint8_t *)recs[2].data)[0], 3);
	shm_consumer_detach(c);
	shm_ring_close(rc);
	shm_ring_close(r);
}

Test(ring, opts_validation)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *r;

	o.capacity = 5000;
	cr_assert_eq(shm_ring_create(dir, "x", &o, &r), -EINVAL);
	o.capacity = 4096;
	cr_assert_eq(shm_ring_create(dir, "a/b", &o, &r), -EINVAL);
	cr_assert_eq(shm_ring_create(dir, "", &o, &r), -EINVAL);
	cr_assert_eq(shm_ring_create(dir, "0123456789012345678901234567890123456789", &o, &r), -EINVAL);
}

Test(ring, heap_memory_ring)
{
	size_t len = shm_ring_mem_size(4096);
	void *mem = aligned_alloc(4096, len);
	struct shm_ring *p, *v;
	struct shm_consumer *c;
	struct shm_rec recs[4];
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;

	o.capacity = 4096;
	cr_assert_eq(shm_ring_init_mem(mem, len, "heap", &o, &p), 0);
	cr_assert_eq(shm_ring_attach_mem(mem, len, &v), 0);
	cr_assert_eq(shm_consumer_attach(v, "c", SHM_REQUIRED, &c), 0);
	cr_assert_eq(shm_write(p, KL_REC_MARK, "abcdefgh", 8), 0);
	cr_assert_eq(shm_consumer_poll(c, recs, 4, 0), 1);
	cr_assert_eq(memcmp(recs[0].data, "abcdefgh", 8), 0);
	shm_consumer_detach(c);
	shm_ring_close(v);
	shm_ring_close(p);
	free(mem);
}

Test(ring, too_many_consumers)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_DROP);
	struct shm_consumer *c[SHM_MAX_CONSUMERS + 1];
	char name[16];

	for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		cr_assert_eq(shm_consumer_attach(r, name, SHM_OBSERVER, &c[i]), 0);
	}
	cr_assert_eq(shm_consumer_attach(r, "extra", SHM_OBSERVER, &c[SHM_MAX_CONSUMERS]), -ENOSPC);
	cr_assert_eq(shm_consumer_attach(r, "c3", SHM_OBSERVER, &c[SHM_MAX_CONSUMERS]), -EBUSY);
	for (int i = 0; i < SHM_MAX_CONSUMERS; i++)
		shm_consumer_detach(c[i]);
	shm_ring_close(r);
}

Test(ring, poll_waits_and_wakes)
{
	struct shm_ring *r = mk(4096, SHM_POLICY_BLOCK);
	struct shm_consumer *c;
	struct shm_rec recs[4];

	cr_assert_eq(shm_consumer_attach(r, "c", SHM_REQUIRED, &c), 0);
	cr_assert_eq(shm_consumer_poll(c, recs, 4, 50), 0, "timeout must return 0");
	pid_t child = fork();
	if (child == 0) {
		struct shm_ring *rp;
		usleep(100000);
		if (shm_ring_open(dir, "t", &rp))
			_exit(1);
		shm_write(rp, KL_REC_MARK, "x", 1);
		_exit(0);
	}
	cr_assert_eq(shm_consumer_poll(c, recs, 4, 5000), 1, "not woken by the producer");
	int st;
	waitpid(child, &st, 0);
	shm_consumer_detach(c);
	shm_ring_close(r);
}

Test(stats, publish_and_read)
{
	struct shm_stats *w, *rd;
	struct shm_metric m[8];

	cr_assert_eq(shm_stats_create(dir, "proc", 4, &w), 0);
	uint64_t *a = shm_stats_metric(w, "kl_events_total", "category=\"crit\"", "events", SHM_COUNTER);
	uint64_t *b = shm_stats_metric(w, "kl_level", NULL, "level", SHM_GAUGE);
	cr_assert_not_null(a);
	cr_assert_eq(shm_stats_metric(w, "kl_events_total", "category=\"crit\"", "x", SHM_COUNTER), a);
	shm_stats_add(a, 5);
	shm_stats_set(b, 2);
	cr_assert_eq(shm_stats_open(dir, "proc", &rd), 0);
	cr_assert_eq(shm_stats_read(rd, m, 8), 2);
	cr_assert_str_eq(m[0].name, "kl_events_total");
	cr_assert_str_eq(m[0].labels, "category=\"crit\"");
	cr_assert_eq(m[0].value, 5);
	cr_assert_eq(m[1].value, 2);
	cr_assert_eq(m[1].type, SHM_GAUGE);
	shm_stats_metric(w, "m3", NULL, NULL, SHM_COUNTER);
	shm_stats_metric(w, "m4", NULL, NULL, SHM_COUNTER);
	cr_assert_null(shm_stats_metric(w, "m5", NULL, NULL, SHM_COUNTER), "area overflow not refused");
	shm_stats_close(rd);
	shm_stats_close(w);

	char path[256];
	snprintf(path, sizeof(path), "%s/bad.stats", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_eq(write(fd, "garbagegarbagegarbage", 21), 21);
	close(fd);
	cr_assert_eq(shm_stats_open(dir, "bad", &rd), -EBADMSG);
}

/* Records larger than a reclaim segment (ring/64) make the producer skip
 * segments; an observer lapped over and over must still resync on record
 * boundaries and count every miss exactly. */
Test(ring, observer_resyncs_over_records_spanning_segments)
{
	struct shm_ring *r = mk(1 << 16, SHM_POLICY_DROP);
	struct shm_consumer *o;
	struct shm_rec recs[256];
	uint64_t got = 0, last = 0, x = 12345;
	bool first = true;

	cr_assert_eq(shm_consumer_attach(r, "tap", SHM_OBSERVER, &o), 0);
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		uint32_t len = 8 + (uint32_t)(x % 3000);
		void *p;
		cr_assert_eq(shm_reserve(r, len, KL_REC_MARK, &p), 0);
		memset(p, (uint8_t)i, len);
		memcpy(p, &len, 4);
		shm_publish(r);
		if (i % 37 == 0) {
			int n = shm_consumer_poll(o, recs, 256, 0);
			cr_assert_geq(n, 0);
			for (int k = 0; k < n; k++) {
				uint32_t l;
				memcpy(&l, recs[k].data, 4);
				cr_assert_eq(l, recs[k].len, "torn record at seq %lu", recs[k].seq);
				cr_assert_eq(((const uint8_t *)recs[k].data)[recs[k].len - 1], (uint8_t)recs[k].seq);
				if (!first)
					cr_assert_gt(recs[k].seq, last);
				first = false;
				last = recs[k].seq;
			}
			got += (uint64_t)n;
			shm_consumer_release(o);
		}
	}
	for (int n; (n = shm_consumer_poll(o, recs, 256, 0)) > 0; got += (uint64_t)n)
		shm_consumer_release(o);
	cr_assert_eq(got + shm_consumer_missed(o), 20000, "got %lu + missed %lu", got, shm_consumer_missed(o));
	cr_assert_gt(shm_consumer_missed(o), 0);
	shm_consumer_detach(o);
	shm_ring_close(r);
}
