/* SPDX-License-Identifier: Apache-2.0 */
/*
 * baselined-bench - intents/s through the engine in learn and in detect
 * mode, replayed from memory; profile size on disk; memory per workload.
 * A table, or one JSON object with --json (docs/performance.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine.h"
#include "gen.h"
#include "profile.h"

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t emitted;
static int count_emit(void *ctx, const void *rec, size_t len)
{
	(void)ctx;
	(void)rec;
	(void)len;
	emitted++;
	return 0;
}

struct stream {
	uint8_t *buf;
	size_t len, cap;
	uint64_t n;
};

static void push(struct stream *s, const struct gen_rec *r)
{
	size_t need = 8 + ((r->len + 7) & ~(size_t)7);
	if (s->len + need > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1 << 24;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf) {
			perror("realloc");
			exit(1);
		}
	}
	uint32_t l = (uint32_t)r->len;
	memcpy(s->buf + s->len, &l, 4);
	memcpy(s->buf + s->len + 4, &r->type, 2);
	memcpy(s->buf + s->len + 8, r->buf, r->len);
	s->len += need;
	s->n++;
}

static uint64_t rs = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

/* A realistic mix per workload: files (most), exec, egress, DNS, listen. */
static void gen(struct stream *s, uint64_t n, unsigned nwl, unsigned items, uint64_t t0)
{
	static char exes[8][32], ctrs[64][32], pods[64][48];
	struct gen_rec r;
	for (unsigned i = 0; i < 8; i++)
		snprintf(exes[i], sizeof(exes[i]), "/usr/bin/tool%u", i);
	for (unsigned i = 0; i < nwl && i < 64; i++) {
		snprintf(ctrs[i], sizeof(ctrs[i]), "app%u", i);
		snprintf(pods[i], sizeof(pods[i]), "app%u-7d4b9c8f6d-x2x9z", i);
	}
	for (uint64_t k = 0; k < n; k++) {
		unsigned w = (unsigned)(rnd() % nwl), it = (unsigned)(rnd() % items), kind = (unsigned)(rnd() % 10);
		struct gen_ctx c = { .exe = exes[it % 8], .parent_exe = "/bin/sh", .ctr_id = ctrs[w],
				     .ctr_name = ctrs[w], .image = "registry/app:1", .pod = pods[w],
				     .pod_ns = "bench", .pod_uid = pods[w], .pid = 100 + w, .uid = 1000,
				     .start_ns = 1 };
		char path[96], peer[48];
		uint64_t ts = t0 + k * 1000;
		if (kind < 6) {
			snprintf(path, sizeof(path), "/srv/data/dir%u/file%u.dat", it % 17, it);
			gen_intent(&r, &c, k + 1, ts, KL_INTENT_FILE_ACCESS, 0, kind & 1 ? KL_IA_WRITE : KL_IA_READ,
				   path, NULL, 0, 0);
		} else if (kind == 6) {
			gen_intent(&r, &c, k + 1, ts, KL_INTENT_PROCESS_START, 0, 0, NULL, NULL, 0, 0);
		} else if (kind == 7) {
			snprintf(peer, sizeof(peer), "10.0.%u.%u:%u", it % 7, it % 250, 8000 + it % 13);
			gen_intent(&r, &c, k + 1, ts, KL_INTENT_NETWORK_EXCHANGE, KL_IN_CONNECT, 0, NULL, peer, 0, 0);
		} else if (kind == 8) {
			snprintf(path, sizeof(path), "svc%u.bench.svc.cluster.local", it % 31);
			gen_intent(&r, &c, k + 1, ts, KL_INTENT_DNS_QUERY, 0, 0, path, NULL, 0, 0);
		} else {
			snprintf(peer, sizeof(peer), "0.0.0.0:%u", 8080 + it % 3);
			gen_intent(&r, &c, k + 1, ts, KL_INTENT_NETWORK_LISTEN, 0, 0, NULL, peer, 0, 0);
		}
		push(s, &r);
	}
}

static double run(struct bl_engine *e, const struct stream *s, int reps)
{
	double best = 0;
	for (int r = 0; r < reps; r++) {
		uint64_t t = cpu_ns();
		for (size_t off = 0; off < s->len;) {
			uint32_t l;
			uint16_t ty;
			memcpy(&l, s->buf + off, 4);
			memcpy(&ty, s->buf + off + 4, 2);
			bl_engine_feed(e, ty, s->buf + off + 8, l);
			off += 8 + ((l + 7) & ~(size_t)7);
		}
		double rate = (double)s->n / ((double)(cpu_ns() - t) / 1e9);
		if (rate > best)
			best = rate;
	}
	return best;
}

static long rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
	uint64_t n = 1000000;
	unsigned nwl = 16, items = 2000;
	int reps = 3;
	bool json = false;
	struct stream s = { 0 };
	struct bl_config cfg;
	struct bl_policy def;
	struct bl_engine *e;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--intents") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--workloads") && i + 1 < argc)
			nwl = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--items") && i + 1 < argc)
			items = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: baselined-bench [--json] [--intents N] [--workloads W] [--items I] [--reps R]\n");
			return 2;
		}
	}
	if (nwl < 1 || nwl > 64 || items < 1 || reps < 1) {
		fprintf(stderr, "baselined-bench: --workloads 1..64, --items >= 1, --reps >= 1\n");
		return 2;
	}
	gen(&s, n, nwl, items, 1000000000ull);
	long rss0 = rss_kb();
	bl_config_default(&cfg);
	bl_policy_default(&def);
	def.window_ns = UINT64_MAX / 4;
	def.min_samples = 1;

	/* learn: a fresh engine per rep so every rep learns from scratch */
	double learn = 0;
	for (int r = 0; r < reps; r++) {
		if (bl_engine_new(&cfg, count_emit, NULL, &e))
			return 1;
		bl_engine_set_policies(e, NULL, 0, &def);
		double x = run(e, &s, 1);
		if (x > learn)
			learn = x;
		if (r + 1 < reps)
			bl_engine_free(e);
	}
	bl_engine_promote(e, NULL);
	long rss_learned = rss_kb();
	/* detect: the same behaviour replayed, every item is a hit (the common case) */
	emitted = 0;
	double detect = run(e, &s, reps);
	uint64_t dev_replay = emitted;
	/* detect with new behaviour: 1 in 10 items unseen (misses go through the rate limiter) */
	struct stream s2 = { 0 };
	rs = 0x1234567;
	gen(&s2, n, nwl, items * 10 / 9 + 1, 2000000000000ull);
	emitted = 0;
	double detect_new = run(e, &s2, 1);
	uint64_t dev_new = emitted;

	/* profile size on disk: the largest workload's file */
	size_t prof_bytes = 0, prof_items = 0;
	for (size_t i = 0; i < bl_engine_nworkloads(e); i++) {
		struct bl_wview v;
		struct kl_buf b = { 0 };
		bl_workload_view(bl_engine_workload(e, i), &v);
		bl_profile_render(&b, &v, 1, "prof-0000000000000000", "node-1", 0, 0);
		if (b.len > prof_bytes) {
			prof_bytes = b.len;
			prof_items = v.nitems;
		}
		kl_buf_free(&b);
	}
	long mem_per_wl = (rss_learned - rss0) / (long)nwl;

	if (json) {
		printf("{\"bench\":\"baselined\",\"intents\":%llu,\"workloads\":%u,\"items_per_workload\":%zu,"
		       "\"reps\":%d,\"learn_intents_per_s\":%.0f,\"detect_intents_per_s\":%.0f,"
		       "\"detect_new_intents_per_s\":%.0f,\"deviations_replay\":%llu,\"deviations_new\":%llu,"
		       "\"profile_bytes\":%zu,\"memory_per_workload_kb\":%ld,\"peak_rss_kb\":%ld,"
		       "\"target_detect_intents_per_s\":1000000}\n",
		       (unsigned long long)n, nwl, prof_items, reps, learn, detect, detect_new,
		       (unsigned long long)dev_replay, (unsigned long long)dev_new, prof_bytes, mem_per_wl, rss_kb());
	} else {
		printf("baselined-bench: %llu intents, %u workloads, %zu items in the largest profile, best of %d\n",
		       (unsigned long long)n, nwl, prof_items, reps);
		printf("%-34s %14s\n", "measure", "value");
		printf("%-34s %14.0f\n", "learn intents/s (1 core)", learn);
		printf("%-34s %14.0f\n", "detect intents/s, replay", detect);
		printf("%-34s %14.0f\n", "detect intents/s, ~10% new items", detect_new);
		printf("%-34s %14llu\n", "deviations on replay", (unsigned long long)dev_replay);
		printf("%-34s %14llu\n", "deviations with new items", (unsigned long long)dev_new);
		printf("%-34s %14zu\n", "profile bytes (largest workload)", prof_bytes);
		printf("%-34s %14ld\n", "memory per workload (KiB)", mem_per_wl);
		printf("%-34s %14ld\n", "peak RSS (KiB)", rss_kb());
	}
	bl_engine_free(e);
	free(s.buf);
	free(s2.buf);
	return dev_replay == 0 ? 0 : 1;
}
