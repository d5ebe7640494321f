/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.c - per-process and per-stage counter areas in shared memory.
 * One writer (the owning process) registers metrics and bumps them with
 * relaxed atomics; any reader (the exporter's /metrics) snapshots them
 * without locks. A metric's descriptor is written before the count that
 * publishes it, so a reader never sees a half-registered entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kloudlens/atomics.h>

#include "shm-internal.h"

#define STATS_MAGIC 0x5354415453534c4bULL /* "KLSSTATS" */
#define STATS_VERSION 1u

struct stats_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t max;
	_Atomic uint32_t count;
	int32_t pid;
	uint64_t created_ns;
	uint8_t _pad[128 - 32];
	struct shm_metric m[];
};

struct shm_stats {
	struct stats_hdr *h;
	size_t len;
	bool writer;
};

static int stats_path(char *buf, size_t n, const char *dir, const char *name)
{
	if (!name || !*name || strchr(name, '/'))
		return -EINVAL;
	if ((size_t)snprintf(buf, n, "%s/%s.stats", dir ? dir : SHM_DEFAULT_DIR, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

int shm_stats_create(const char *dir, const char *name, uint32_t max, struct shm_stats **out)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	struct shm_stats *s;
	size_t len;
	void *m;
	int fd, err;

	if (!max || max > 65536)
		return -EINVAL;
	err = stats_path(path, sizeof(path), dir, name);
	if (err)
		return err;
	if (mkdir(dir ? dir : SHM_DEFAULT_DIR, 0750) < 0 && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	len = sizeof(struct stats_hdr) + (size_t)max * sizeof(struct shm_metric);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0640) < 0 || ftruncate(fd, (off_t)len) < 0) {
		err = -errno;
		goto fail;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		munmap(m, len);
		err = -ENOMEM;
		goto fail;
	}
	s->h = m;
	s->len = len;
	s->writer = true;
	s->h->magic = STATS_MAGIC;
	s->h->version = STATS_VERSION;
	s->h->max = max;
	s->h->pid = (int32_t)getpid();
	/* A fresh file per process start: counters restart at zero like any Prometheus target. */
	if (rename(tmp, path) < 0) {
		err = -errno;
		munmap(m, len);
		free(s);
		goto fail;
	}
	close(fd);
	*out = s;
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return err;
}

int shm_stats_open(const char *dir, const char *name, struct shm_stats **out)
{
	char path[PATH_MAX];
	struct shm_stats *s;
	struct stat st;
	void *m;
	int fd, err;

	err = stats_path(path, sizeof(path), dir, name);
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if ((size_t)st.st_size < sizeof(struct stats_hdr)) {
		close(fd);
		return -EBADMSG;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	const struct stats_hdr *h = m;
	if (h->magic != STATS_MAGIC || h->version != STATS_VERSION ||
	    sizeof(*h) + (size_t)h->max * sizeof(struct shm_metric) > (size_t)st.st_size) {
		munmap(m, (size_t)st.st_size);
		return h->magic == STATS_MAGIC && h->version != STATS_VERSION ? -EPROTO : -EBADMSG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		munmap(m, (size_t)st.st_size);
		return -ENOMEM;
	}
	s->h = m;
	s->len = (size_t)st.st_size;
	*out = s;
	return 0;
}

void shm_stats_close(struct shm_stats *s)
{
	if (!s)
		return;
	munmap(s->h, s->len);
	free(s);
}

uint64_t *shm_stats_metric(struct shm_stats *s, const char *name, const char *labels,
			   const char *help, enum shm_metric_type type)
{
	uint32_t n;

	if (!s || !s->writer || !name)
		return NULL;
	labels = labels ? labels : "";
	n = load_relaxed(&s->h->count);
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(s->h->m[i].name, name) && !strcmp(s->h->m[i].labels, labels))
			return &s->h->m[i].value;
	if (n >= s->h->max || strlen(name) >= sizeof(s->h->m[0].name) ||
	    strlen(labels) >= sizeof(s->h->m[0].labels))
		return NULL;
	struct shm_metric *m = &s->h->m[n];
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->labels, sizeof(m->labels), "%s", labels);
	snprintf(m->help, sizeof(m->help), "%s", help ? help : "");
	m->type = (uint32_t)type;
	m->value = 0;
	/* Publishes the descriptor; pairs with load_acquire(count) in shm_stats_read(). */
	store_release(&s->h->count, n + 1);
	return &m->value;
}

void shm_stats_add(uint64_t *cell, uint64_t n)
{
	if (cell)
		__atomic_fetch_add(cell, n, __ATOMIC_RELAXED);
}

void shm_stats_set(uint64_t *cell, uint64_t v)
{
	if (cell)
		__atomic_store_n(cell, v, __ATOMIC_RELAXED);
}

int shm_stats_read(struct shm_stats *s, struct shm_metric *out, int max)
{
	uint32_t n = load_acquire(&s->h->count);

	if (n > s->h->max)
		n = s->h->max;
	if ((int)n > max)
		n = (uint32_t)max;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(&out[i], &s->h->m[i], offsetof(struct shm_metric, value));
		out[i].name[sizeof(out[i].name) - 1] = 0;
		out[i].labels[sizeof(out[i].labels) - 1] = 0;
		out[i].help[sizeof(out[i].help) - 1] = 0;
		out[i].value = __atomic_load_n(&s->h->m[i].value, __ATOMIC_RELAXED);
	}
	return (int)n;
}
