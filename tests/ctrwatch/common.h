/* SPDX-License-Identifier: Apache-2.0 */
/* common.h - helpers shared by the ctrwatch unit and live tests. */
#ifndef KL_TEST_CTRWATCH_COMMON_H
#define KL_TEST_CTRWATCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>
#include "ctrwatch.h"

#define MAX_RECS 256

struct rec {
	struct kl_container c;
	uint8_t *bytes;
	size_t len;
};

/* Everything a watcher emitted and logged, for assertions. */
struct sink {
	struct rec recs[MAX_RECS];
	int n;
	char log[65536];
	size_t loglen;
};

void sink_emit(const void *rec, size_t len, void *ctx);
void sink_log(int level, const char *msg, void *ctx);
void sink_reset(struct sink *s);

/* Field @id of record @r as a NUL-terminated copy in a static buffer
 * (NULL if absent). Validates the record first. */
const char *rec_str(const struct rec *r, uint16_t id);
/* Does the "k=v\0..." field @id hold exactly "k=v"? */
bool rec_has_kv(const struct rec *r, uint16_t id, const char *kv);

/* First record of @kind for container @id after index @from; NULL if none. */
const struct rec *find_rec(const struct sink *s, uint32_t kind, const char *id);
int count_recs(const struct sink *s, uint32_t kind, const char *id);

/* Dispatch (poll on the fd, plus liveness ticks) until a @kind record for
 * @id shows up or @timeout_ms passes. */
const struct rec *wait_rec(struct kl_ctrwatch *w, struct sink *s, uint32_t kind, const char *id,
			   int timeout_ms);

/* Write @text to @path atomically (temp + rename), as runtimes do. */
void write_file(const char *path, const char *text);
/* mkdir -p */
void mkdirs(const char *path);
/* rm -rf (via nftw) */
void rmtree(const char *path);
/* printf into a malloc'd string (aborts on OOM) */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like xasprintf, but freed by arena_free() (test teardown). */
char *tp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void arena_free(void);
/* Run a shell command; returns its exit status (-1 if it could not run). */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
