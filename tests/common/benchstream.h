/* SPDX-License-Identifier: Apache-2.0 */
/*
 * benchstream.h - an in-memory record stream for the stage benchmarks
 * (enricher-bench, intentd-bench): generated with rawgen.h or loaded
 * from a klrec recording, then replayed through an engine at full speed.
 * Each entry: u32 len, u16 type, 2 bytes pad, the record padded to 8.
 */
#ifndef KLOUDLENS_TEST_BENCHSTREAM_H
#define KLOUDLENS_TEST_BENCHSTREAM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <kloudlens/recfile.h>

struct stream {
	uint8_t *buf;
	size_t len, cap;
	uint64_t n;
	uint64_t seq;
};

static inline void push(struct stream *s, uint16_t type, const void *rec, size_t len)
{
	size_t need = 8 + ((len + 7) & ~(size_t)7);

	if (s->len + need > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1 << 24;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf) {
			perror("realloc");
			exit(1);
		}
	}
	uint32_t l = (uint32_t)len;
	memcpy(s->buf + s->len, &l, 4);
	memcpy(s->buf + s->len + 4, &type, 2);
	memcpy(s->buf + s->len + 8, rec, len);
	s->len += need;
	s->n++;
}

/* Deterministic xorshift: the same stream every run. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static inline uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Append the records of @path whose type is at most @max_type; -1 if it cannot be opened. */
static inline int load_file(struct stream *s, const char *path, const char *tool, uint16_t max_type)
{
	struct kl_recfile_reader *r;
	struct kl_recfile_rec rec;
	char msg[300];
	int got;

	if (kl_recr_open(path, &r, msg, sizeof(msg))) {
		fprintf(stderr, "%s: %s\n", tool, msg);
		return -1;
	}
	while ((got = kl_recr_next(r, &rec)) > 0)
		if (rec.type <= max_type)
			push(s, rec.type, rec.data, rec.len);
	if (got < 0)
		fprintf(stderr, "%s: %s: %s (using the %llu records before it)\n", tool, path,
			kl_recr_error(r), (unsigned long long)s->n);
	kl_recr_close(r);
	return 0;
}

/* CPU time of this thread: what the engine spent, whatever else the machine does. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline long peak_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

#endif
