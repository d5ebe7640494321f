/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Multi-process stress of libshm: one producer process, three consumer
 * processes, KL_STRESS_RECORDS records of random sizes (8..512 bytes).
 * Every consumer checks order and a checksum of every payload. One
 * consumer is SIGKILLed mid-run and restarted; it must resume from its
 * cursor and still see every record in order. A second test runs the
 * drop policy and checks produced == consumed + dropped for each
 * consumer, exactly.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/shm.h>

#define NCONS 3

struct shared {
	_Atomic uint64_t progress[NCONS];   /* last record index verified */
	_Atomic uint64_t errors[NCONS];
	_Atomic uint64_t received[NCONS];   /* records seen (a restart may re-see a few) */
	_Atomic uint64_t consumed[NCONS];   /* shm_consumer_consumed() at exit */
	_Atomic uint64_t dropped[NCONS];
	_Atomic uint64_t resume_first;      /* first index the restarted consumer saw */
	_Atomic uint64_t attempts;          /* drop test: records the producer tried */
	_Atomic int producer_done;
	_Atomic int ready[NCONS];
	char errmsg[NCONS][160];
};

static char dir[128];
static struct shared *sh;
static uint64_t nrec;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint32_t rec_len(uint64_t idx)
{
	return 8 + (uint32_t)(mix(idx ^ 0x5bd1e995) % 505);
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 1099511628211ULL;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* [idx][checksum of the rest][rest...]; a record under 16 bytes carries idx + idx bytes */
static void fill(uint8_t *p, uint32_t len, uint64_t idx)
{
	memcpy(p, &idx, 8);
	if (len < 16) {
		for (uint32_t i = 8; i < len; i++)
			p[i] = (uint8_t)(idx >> (i - 8));
		return;
	}
	uint64_t s = mix(idx);
	uint32_t i = 16;
	for (; i + 8 <= len; i += 8) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &s, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)(s >> (i & 7));
	uint64_t sum = checksum(p + 16, len - 16);
	memcpy(p + 8, &sum, 8);
}

static int verify(const struct shm_rec *r, uint64_t idx, char *err, size_t n)
{
	const uint8_t *p = r->data;
	uint64_t got, sum;

	if (r->len != rec_len(idx)) {
		snprintf(err, n, "record %lu: len %u != %u", idx, r->len, rec_len(idx));
		return -1;
	}
	memcpy(&got, p, 8);
	if (got != idx) {
		snprintf(err, n, "order: expected %lu got %lu", idx, got);
		return -1;
	}
	if (r->len < 16) {
		for (uint32_t i = 8; i < r->len; i++)
			if (p[i] != (uint8_t)(idx >> (i - 8))) {
				snprintf(err, n, "record %lu: short payload corrupt", idx);
				return -1;
			}
		return 0;
	}
	memcpy(&sum, p + 8, 8);
	if (sum != checksum(p + 16, r->len - 16)) {
		snprintf(err, n, "record %lu: checksum mismatch", idx);
		return -1;
	}
	return 0;
}

static void producer(enum shm_policy pol)
{
	struct shm_ring *r;
	uint64_t attempts = 0;

	if (shm_ring_open(dir, "stress", &r))
		_exit(2);
	for (uint64_t idx = 0; idx < nrec;) {
		uint32_t len = rec_len(idx);
		void *p;
		int err = shm_reserve(r, len, KL_REC_MARK, &p);
		attempts++;
		if (err == -ENOBUFS) {
			/* dropped and counted by the ring; move on like the collector does */
			idx++;
			shm_publish(r);
			continue;
		}
		if (err)
			_exit(3);
		fill(p, len, idx);
		idx++;
		if ((idx & 63) == 0)
			shm_publish(r);
	}
	shm_publish(r);
	atomic_store(&sh->attempts, attempts);
	atomic_store(&sh->producer_done, 1);
	shm_ring_close(r);
	_exit(0);
}

/*
 * Block mode: indexes are contiguous. Drop mode: gaps are the dropped
 * records, so order is checked as strictly increasing, and the exact
 * accounting is checked at the end.
 */
static void consumer(int id, bool restarted, bool drop_mode, int slow)
{
	struct shm_ring *r;
	struct shm_consumer *c;
	struct shm_rec recs[256];
	char name[16];
	uint64_t expect = 0;
	bool first = true;

	snprintf(name, sizeof(name), "cons%d", id);
	if (shm_ring_open(dir, "stress", &r) || shm_consumer_attach(r, name, SHM_REQUIRED, &c))
		_exit(2);
	atomic_store(&sh->ready[id], 1);
	for (;;) {
		int n = shm_consumer_poll(c, recs, 256, 200);
		if (n < 0)
			_exit(4);
		if (n == 0) {
			if (atomic_load(&sh->producer_done) && atomic_load(&sh->progress[id]) + 1 >= nrec)
				break;
			if (drop_mode && atomic_load(&sh->producer_done)) {
				/* nothing left after the producer finished */
				n = shm_consumer_poll(c, recs, 256, 0);
				if (n == 0)
					break;
			} else {
				continue;
			}
		}
		for (int i = 0; i < n; i++) {
			uint64_t idx;
			memcpy(&idx, recs[i].data, 8);
			if (first && restarted) {
				atomic_store(&sh->resume_first, idx);
				expect = idx;
			}
			if (drop_mode && idx >= expect)
				expect = idx;
			first = false;
			if (verify(&recs[i], expect, sh->errmsg[id], sizeof(sh->errmsg[id]))) {
				atomic_fetch_add(&sh->errors[id], 1);
				_exit(5);
			}
			atomic_store(&sh->progress[id], expect);
			atomic_fetch_add(&sh->received[id], 1);
			expect++;
		}
		if (slow && (recs[0].seq % 4096) < 256)
			usleep((useconds_t)slow);
		shm_consumer_release(c);
	}
	atomic_store(&sh->consumed[id], shm_consumer_consumed(c));
	atomic_store(&sh->dropped[id], shm_consumer_dropped(c));
	shm_consumer_detach(c);
	shm_ring_close(r);
	_exit(0);
}

static void setup(void)
{
	const char *n = getenv("KL_STRESS_RECORDS");

	nrec = n ? strtoull(n, NULL, 10) : 2000000;
	snprintf(dir, sizeof(dir), "/dev/shm/kl-stress.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	munmap(sh, sizeof(*sh));
}

TestSuite(stress, .init = setup, .fini = teardown, .timeout = 800);

static pid_t spawn_consumer(int id, bool restarted, bool drop_mode, int slow)
{
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0)
		consumer(id, restarted, drop_mode, slow);
	return p;
}

static void wait_ok(pid_t p, const char *what)
{
	int st;
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed: status %d", what, st);
}

static void make_ring(enum shm_policy pol, uint64_t cap)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *r;

	o.capacity = cap;
	o.policy = pol;
	o.grace_ms = 10000;
	cr_assert_eq(shm_ring_create(dir, "stress", &o, &r), 0);
	shm_ring_close(r);
}

Test(stress, block_three_consumers_one_killed_and_restarted)
{
	pid_t cons[NCONS], prod;
	struct timespec t0, t1;

	make_ring(SHM_POLICY_BLOCK, 16u << 20);
	for (int i = 0; i < NCONS; i++)
		cons[i] = spawn_consumer(i, false, false, 0);
	for (int i = 0; i < NCONS; i++)
		while (!atomic_load(&sh->ready[i]))
			usleep(1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	prod = fork();
	cr_assert_geq(prod, 0);
	if (prod == 0)
		producer(SHM_POLICY_BLOCK);

	/* kill consumer 1 a third of the way through */
	while (atomic_load(&sh->progress[1]) < nrec / 3)
		usleep(1000);
	uint64_t before = atomic_load(&sh->progress[1]);
	kill(cons[1], SIGKILL);
	waitpid(cons[1], NULL, 0);
	uint64_t at_kill = atomic_load(&sh->progress[1]);
	usleep(50000);
	cons[1] = spawn_consumer(1, true, false, 0);

	wait_ok(prod, "producer");
	for (int i = 0; i < NCONS; i++)
		wait_ok(cons[i], "consumer");
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (int i = 0; i < NCONS; i++) {
		cr_assert_eq(atomic_load(&sh->errors[i]), 0, "consumer %d: %s", i, sh->errmsg[i]);
		cr_assert_eq(atomic_load(&sh->progress[i]), nrec - 1, "consumer %d stopped at %lu",
			     i, atomic_load(&sh->progress[i]));
	}
	uint64_t first = atomic_load(&sh->resume_first);
	cr_assert_leq(first, at_kill + 1, "restarted consumer skipped records: resumed at %lu, had verified %lu",
		      first, at_kill);
	cr_assert_geq(at_kill, before);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "stress block: %lu records x %d consumers in %.2f s (%.2f M rec/s); "
		"killed consumer resumed at %lu after verifying %lu\n",
		nrec, NCONS, s, (double)nrec / s / 1e6, first, at_kill);
}

Test(stress, drop_policy_exact_accounting)
{
	pid_t cons[NCONS], prod;

	nrec /= 5;
	make_ring(SHM_POLICY_DROP, 1u << 20);
	/* consumer 2 is slow in bursts: the small ring overflows and drops */
	for (int i = 0; i < NCONS; i++)
		cons[i] = spawn_consumer(i, false, true, i == 2 ? 2000 : 0);
	for (int i = 0; i < NCONS; i++)
		while (!atomic_load(&sh->ready[i]))
			usleep(1000);
	prod = fork();
	cr_assert_geq(prod, 0);
	if (prod == 0)
		producer(SHM_POLICY_DROP);
	wait_ok(prod, "producer");
	for (int i = 0; i < NCONS; i++)
		wait_ok(cons[i], "consumer");

	uint64_t attempts = atomic_load(&sh->attempts);
	cr_assert_eq(attempts, nrec);
	uint64_t drops = atomic_load(&sh->dropped[0]);
	cr_assert_gt(drops, 0, "nothing dropped: the test proves nothing");
	for (int i = 0; i < NCONS; i++) {
		cr_assert_eq(atomic_load(&sh->errors[i]), 0, "consumer %d: %s", i, sh->errmsg[i]);
		uint64_t c = atomic_load(&sh->consumed[i]), d = atomic_load(&sh->dropped[i]);
		cr_assert_eq(c + d, attempts, "consumer %d: consumed %lu + dropped %lu != produced %lu",
			     i, c, d, attempts);
		cr_assert_eq(atomic_load(&sh->received[i]), c);
	}
	fprintf(stderr, "stress drop: %lu attempts, %lu dropped (%.2f%%)\n", attempts, drops,
		100.0 * (double)drops / (double)attempts);
}
