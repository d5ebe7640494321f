/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter-bench - envelopes/s from a ring through kl-exporter to 1 and 4
 * subscribers, with and without WAL, with and without compression.
 *
 * Everything runs in this process on loopback: a producer thread fills a
 * private ring with syscall records, the exporter (its real pump, WAL and
 * pub socket) serves it, and N subscriber threads follow sessions with the
 * C client, each receiving every envelope exactly once (repairing any
 * transport loss from the WAL). Own rings dir and ports: safe beside a
 * live agent.
 *
 *   exporter-bench [--records N] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "client.h"
#include "exporter.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

struct sub_arg {
	char admin[64], sub[64];
	uint64_t want, got, missed, bytes;
	uint64_t done_ns;
	bool topic_mode;
	int err;
	_Atomic int *ready;
};

static int count_env(const Kloudlens__V1__EventEnvelope *e, void *ctx)
{
	struct sub_arg *a = ctx;

	(void)e;
	a->got++;
	return 0;
}

/* A bare subscriber of the stream topic: no session, no repair; gaps are lost. */
static void *topic_main(struct sub_arg *a)
{
	struct kl_client c;
	struct kl_batch b = { 0 };
	uint64_t expected = 0, deadline;
	int r;

	r = kl_client_open(&c, NULL, a->sub, 5000);
	if (r == 0)
		r = kl_client_subscribe_topic(&c, "kl.v1/raw/");
	atomic_fetch_add(a->ready, 1);
	if (r) {
		a->err = r;
		return NULL;
	}
	deadline = now_ns() + 5000000000ull;
	while (expected < a->want && now_ns() < deadline) {
		r = kl_client_recv(&c, &b, 200);
		if (r == -ETIMEDOUT)
			continue;
		if (r) {
			a->err = r;
			break;
		}
		if (b.hdr->from_seq > expected)
			a->missed += b.hdr->from_seq - expected;
		a->got += b.n;
		a->bytes += b.wire_bytes;
		expected = b.hdr->to_seq + 1;
		a->done_ns = now_ns();
		deadline = a->done_ns + 5000000000ull;
	}
	kl_batch_free(&b);
	kl_client_close(&c);
	return NULL;
}

static void *sub_main(void *p)
{
	struct sub_arg *a = p;
	struct kl_client c;
	struct kl_follow f;
	char err[256];
	uint64_t deadline;
	int r;

	if (a->topic_mode)
		return topic_main(a);
	r = kl_client_open(&c, a->admin, a->sub, 5000);
	if (r) {
		a->err = r;
		atomic_fetch_add(a->ready, 1);
		return NULL;
	}
	r = kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, false, 0, err, sizeof(err));
	atomic_fetch_add(a->ready, 1);
	if (r) {
		a->err = r < 0 ? r : -EPROTO;
		kl_client_close(&c);
		return NULL;
	}
	/* without a WAL, lost envelopes cannot be re-fetched: stop when progress stops */
	deadline = now_ns() + 5000000000ull;
	while (f.expected < a->want && now_ns() < deadline) {
		uint64_t before = f.expected;

		r = kl_follow_step(&f, count_env, a, 200);
		if (r < 0) {
			a->err = r;
			break;
		}
		if (r > 0 || f.expected != before) {
			a->bytes += f.batch.wire_bytes;
			a->done_ns = now_ns();
			deadline = a->done_ns + 5000000000ull;
		}
	}
	a->missed = f.missed;
	kl_follow_stop(&f);
	kl_client_close(&c);
	return NULL;
}

struct result {
	bool topic_mode;
	int subs;
	bool wal, gzip;
	uint64_t records;
	double pump_rate, deliver_rate, mbps;
	uint64_t missed, lost;
	double wal_mb;
	int err;
};

static int run(bool topic_mode, int nsubs, bool wal, bool gzip, uint64_t records, struct result *res)
{
	char rings[] = "/dev/shm/kl-bench.XXXXXX", waldir[] = "/var/tmp/kl-bench-wal.XXXXXX", cmd[256];
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;
	struct shm_ring_opts ro = SHM_RING_OPTS_INIT;
	struct kl_exporter_counters cnt;
	struct kl_exporter *ex = NULL;
	struct shm_ring *ring = NULL;
	struct sub_arg args[4];
	pthread_t th[4];
	_Atomic int ready = 0;
	uint64_t t0, t_pump = 0, t_end = 0;
	uint8_t rec[512];
	size_t len;
	int r;

	memset(res, 0, sizeof(*res));
	res->subs = nsubs;
	res->topic_mode = topic_mode;
	res->wal = wal;
	res->gzip = gzip;
	res->records = records;
	if (!mkdtemp(rings) || !mkdtemp(waldir))
		return -errno;
	ro.capacity = 64 << 20;
	ro.policy = SHM_POLICY_BLOCK;
	r = shm_ring_create(rings, "raw", &ro, &ring);
	if (r)
		goto out;
	o.rings_dir = rings;
	o.wal_dir = wal ? waldir : "";
	o.http_url = "";
	/* nng pub sends every message to every subscriber: publish only what the mode reads */
	o.no_stream_topics = !topic_mode;
	o.compress_threshold = gzip ? 64 : 0;
	o.wal.fsync = KL_WAL_FSYNC_INTERVAL;
	o.pub_sendbuf = 4096;
	{
		static char sub[64], admin[64];

		snprintf(sub, sizeof(sub), "tcp://127.0.0.1:%d", free_port());
		snprintf(admin, sizeof(admin), "tcp://127.0.0.1:%d", free_port());
		o.sub_url = sub;
		o.admin_url = admin;
		r = kl_exporter_create(&o, &ex);
		if (r)
			goto out;
		r = kl_exporter_start(ex);
		if (r)
			goto out;
		for (int i = 0; i < nsubs; i++) {
			memset(&args[i], 0, sizeof(args[i]));
			snprintf(args[i].admin, sizeof(args[i].admin), "%s", admin);
			snprintf(args[i].sub, sizeof(args[i].sub), "%s", sub);
			args[i].want = records;
			args[i].ready = &ready;
			args[i].topic_mode = topic_mode;
			pthread_create(&th[i], NULL, sub_main, &args[i]);
		}
	}
	while (atomic_load(&ready) < nsubs)
		usleep(1000);
	usleep(100000);   /* let the sub pipes settle before the burst */
	{
		struct kl_syscall *s = (struct kl_syscall *)rec;
		struct kl_tail_builder b;

		memset(rec, 0, sizeof(rec));
		s->ev.pid = s->ev.tid = 4242;
		snprintf(s->ev.comm, sizeof(s->ev.comm), "bench");
		s->nr = 257;
		s->ret = 3;
		s->duration_ns = 1200;
		kl_tail_init(&b, s, sizeof(*s), sizeof(rec));
		kl_tail_add_str(&b, KL_F_PATH, "/usr/lib/x86_64-linux-gnu/libc.so.6");
		len = kl_tail_finish(&b);
	}
	t0 = now_ns();
	for (uint64_t i = 0; i < records; i++) {
		void *p;

		((struct kl_syscall *)rec)->ev.seq = i;
		((struct kl_syscall *)rec)->ev.ts_ns = i;
		r = shm_reserve(ring, len, KL_REC_SYSCALL, &p);
		if (r)
			goto join;
		memcpy(p, rec, len);
		if ((i & 63) == 63)
			shm_publish(ring);   /* batched, as the collector does */
	}
	shm_publish(ring);
	for (;;) {
		kl_exporter_counters(ex, &cnt);
		if (cnt.published >= records) {
			t_pump = now_ns();
			break;
		}
		usleep(200);
	}
join:
	for (int i = 0; i < nsubs; i++) {
		pthread_join(th[i], NULL);
		if (args[i].done_ns > t_end)
			t_end = args[i].done_ns;
		res->missed += args[i].missed;
		res->mbps += args[i].bytes;
		if (args[i].err && !res->err)
			res->err = args[i].err;
		res->lost += records - args[i].got;
		if (topic_mode)
			res->missed = 0;   /* nothing is repaired without a session */
	}
	if (t_pump)
		res->pump_rate = records / ((t_pump - t0) / 1e9);
	if (t_end > t0)
		res->deliver_rate = records / ((t_end - t0) / 1e9);
	if (t_end > t0)
		res->mbps = res->mbps / nsubs / ((t_end - t0) / 1e9) / 1e6;
	{
		struct stat sb;
		char seg[512];

		snprintf(seg, sizeof(seg), "%s/raw", waldir);
		if (wal && stat(seg, &sb) == 0) {
			snprintf(cmd, sizeof(cmd), "du -sk %s/raw", waldir);
			FILE *p = popen(cmd, "r");
			unsigned long kb = 0;

			if (p) {
				if (fscanf(p, "%lu", &kb) != 1)
					kb = 0;
				pclose(p);
			}
			res->wal_mb = kb / 1024.0;
		}
	}
out:
	kl_exporter_destroy(ex);
	if (ring)
		shm_ring_close(ring);
	shm_ring_unlink(rings, "raw");
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", rings, waldir);
	if (system(cmd) != 0)
		fprintf(stderr, "exporter-bench: cleanup of %s failed\n", waldir);
	return r ? r : res->err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "records", required_argument, 0, 'n' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	uint64_t records = 200000;
	bool json = false;
	struct result res[12];
	int n = 0, c, rc = 0;

	while ((c = getopt_long(argc, argv, "n:jh", lo, NULL)) != -1) {
		switch (c) {
		case 'n': records = strtoull(optarg, NULL, 10); break;
		case 'j': json = true; break;
		case 'h': printf("usage: exporter-bench [--records N] [--json]\n"); return 0;
		default: return 2;
		}
	}
	for (int mode = 0; mode < 2; mode++)
		for (int subs = 1; subs <= 4; subs += 3)
			for (int wal = 0; wal < 2; wal++)
				for (int gz = 0; gz < 2; gz++) {
					int r;

					if (mode == 1 && gz)
						continue;   /* gzip cost is the same per frame in both modes */
					r = run(mode, subs, wal, gz, records, &res[n]);
					if (r) {
						fprintf(stderr, "exporter-bench: %s %d sub(s) wal=%d gzip=%d: %s\n",
							mode ? "topic" : "session", subs, wal, gz, strerror(-r));
						rc = 1;
					}
					n++;
				}
	if (json) {
		printf("{\"bench\":\"exporter\",\"records\":%" PRIu64 ",\"results\":[", records);
		for (int i = 0; i < n; i++)
			printf("%s{\"mode\":\"%s\",\"subscribers\":%d,\"wal\":%s,\"gzip\":%s,\"pump_env_per_s\":%.0f,"
			       "\"delivered_env_per_s\":%.0f,\"mb_per_s_per_sub\":%.1f,\"bytes_per_env\":%.0f,\"repaired\":%" PRIu64
			       ",\"lost\":%" PRIu64 ",\"wal_mb\":%.1f,\"ok\":%s}", i ? "," : "", res[i].topic_mode ? "topic" : "session", res[i].subs, res[i].wal ? "true" : "false",
			       res[i].gzip ? "true" : "false", res[i].pump_rate, res[i].deliver_rate, res[i].mbps,
			       res[i].deliver_rate > 0 ? res[i].mbps * 1e6 / res[i].deliver_rate : 0, res[i].missed, res[i].lost, res[i].wal_mb, res[i].err ? "false" : "true");
		printf("]}\n");
	} else {
		printf("exporter-bench: %" PRIu64 " syscall records per run, loopback\n\n", records);
		printf("%-8s %4s %4s %5s %12s %16s %9s %6s %9s %9s %7s %s\n", "MODE", "SUBS", "WAL", "GZIP",
		       "PUMP env/s", "DELIVERED env/s", "MB/s/sub", "B/env", "REPAIRED", "LOST", "WAL MB", "");
		for (int i = 0; i < n; i++)
			printf("%-8s %4d %4s %5s %12.0f %16.0f %9.1f %6.0f %9" PRIu64 " %9" PRIu64 " %7.1f %s\n",
			       res[i].topic_mode ? "topic" : "session", res[i].subs,
			       res[i].wal ? "on" : "off", res[i].gzip ? "on" : "off", res[i].pump_rate,
			       res[i].deliver_rate, res[i].mbps,
			       res[i].deliver_rate > 0 ? res[i].mbps * 1e6 / res[i].deliver_rate : 0,
			       res[i].missed, res[i].lost, res[i].wal_mb,
			       res[i].err ? strerror(-res[i].err) : "");
		printf("\nPUMP: ring -> envelopes -> WAL -> pub, until the exporter has published all.\n"
		       "DELIVERED: until the slowest subscriber has every envelope (session: exactly once).\n"
		       "session: filtered/replayable session per subscriber (kl_follow); topic: bare sub of kl.v1/raw/.\n"
		       "GZIP on: every frame >= 64 B is gzip'ed if that shrinks it (default threshold is 1024).\n"
		       "REPAIRED: envelopes lost in transport and re-fetched from the WAL (sum over subs).\n"
		       "LOST: envelopes a subscriber never got (only possible without the WAL).\n");
	}
	return rc;
}
