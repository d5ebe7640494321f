/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <kloudlens/recutil.h>

void sink_emit(const void *rec, size_t len, void *ctx)
{
	struct sink *s = ctx;
	struct rec *r;

	cr_assert_geq(len, sizeof(struct kl_container));
	cr_assert_eq(kl_rec_validate(KL_REC_CONTAINER, rec, len), KL_REC_OK,
		     "emitted record fails validation");
	if (s->n >= MAX_RECS)
		return;
	r = &s->recs[s->n++];
	memcpy(&r->c, rec, sizeof(r->c));
	r->bytes = malloc(len);
	cr_assert(r->bytes);
	memcpy(r->bytes, rec, len);
	r->len = len;
}

void sink_log(int level, const char *msg, void *ctx)
{
	struct sink *s = ctx;
	int n;

	n = snprintf(s->log + s->loglen, sizeof(s->log) - s->loglen, "<%d>%s\n", level, msg);
	if (n > 0 && s->loglen + (size_t)n < sizeof(s->log))
		s->loglen += (size_t)n;
	if (getenv("CTRWATCH_TEST_VERBOSE"))
		fprintf(stderr, "log<%d> %s\n", level, msg);
}

void sink_reset(struct sink *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->recs[i].bytes);
	s->n = 0;
	s->loglen = 0;
	s->log[0] = 0;
}

const char *rec_str(const struct rec *r, uint16_t id)
{
	static char out[8][4096];
	static int slot;
	struct kl_field_view f;
	char *o;

	if (!kl_field_find(KL_REC_CONTAINER, r->bytes, r->len, id, &f))
		return NULL;
	o = out[slot++ % 8];
	size_t n = f.len < sizeof(out[0]) - 1 ? f.len : sizeof(out[0]) - 1;
	memcpy(o, f.data, n);
	o[n] = 0;
	return o;
}

bool rec_has_kv(const struct rec *r, uint16_t id, const char *kv)
{
	struct kl_field_view f;
	size_t i = 0, kl = strlen(kv);

	if (!kl_field_find(KL_REC_CONTAINER, r->bytes, r->len, id, &f))
		return false;
	while (i < f.len) {
		const char *e = (const char *)f.data + i;
		size_t el = strnlen(e, f.len - i);

		if (el == kl && !memcmp(e, kv, kl))
			return true;
		i += el + 1;
	}
	return false;
}

const struct rec *find_rec(const struct sink *s, uint32_t kind, const char *id)
{
	for (int i = 0; i < s->n; i++) {
		const char *rid = rec_str(&s->recs[i], KL_F_CONTAINER_ID);

		if (s->recs[i].c.kind == kind && rid && !strcmp(rid, id))
			return &s->recs[i];
	}
	return NULL;
}

int count_recs(const struct sink *s, uint32_t kind, const char *id)
{
	int n = 0;

	for (int i = 0; i < s->n; i++) {
		const char *rid = rec_str(&s->recs[i], KL_F_CONTAINER_ID);

		if (s->recs[i].c.kind == kind && rid && !strcmp(rid, id))
			n++;
	}
	return n;
}

const struct rec *wait_rec(struct kl_ctrwatch *w, struct sink *s, uint32_t kind, const char *id,
			   int timeout_ms)
{
	uint64_t end = kl_now_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	const struct rec *r;

	for (;;) {
		struct pollfd p = { .fd = kl_ctrwatch_fd(w), .events = POLLIN };
		int t = kl_ctrwatch_next_timeout_ms(w, 0);

		cr_assert_eq(kl_ctrwatch_dispatch(w, 0, sink_emit, s), 0);
		if ((r = find_rec(s, kind, id)))
			return r;
		if (kl_now_mono_ns() >= end)
			return NULL;
		if (t > 50 || t <= 0)
			t = 50;
		poll(&p, 1, t);
	}
}

void write_file(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.tmp%d", path, getpid());
	FILE *f = fopen(tmp, "w");

	cr_assert(f, "open %s: %s", tmp, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", path, strerror(errno));
	free(tmp);
}

void mkdirs(const char *path)
{
	char *p = strdup(path);

	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
	free(p);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

void rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static char *arena[4096];
static int narena;

char *tp(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	cr_assert_lt(narena, 4096);
	arena[narena++] = s;
	return s;
}

void arena_free(void)
{
	while (narena > 0)
		free(arena[--narena]);
}

int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (getenv("CTRWATCH_TEST_VERBOSE"))
		fprintf(stderr, "+ %s\n", cmd);
	rc = system(cmd);
	free(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}
