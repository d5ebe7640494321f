/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stagetest.h - what the tests of a real stage process share: a private
 * rings directory, spawning the daemon (killed in teardown even when an
 * assertion aborted the test), and the check that a stage started as root
 * ended up unprivileged with no capability at all.
 */
#ifndef KL_TESTS_STAGETEST_H
#define KL_TESTS_STAGETEST_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/shm.h>

#include "livetest.h"

#define ST_MAX_SPAWNED 8
static pid_t st_spawned[ST_MAX_SPAWNED];

/* A private rings directory under /dev/shm, readable by the unprivileged stages. */
static inline void st_dir_setup(char *dir, size_t n, const char *prefix)
{
	snprintf(dir, n, "/dev/shm/%s.XXXXXX", prefix);
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);
}

/* Kill whatever a test started, then remove the directory. */
static inline void st_dir_teardown(const char *dir)
{
	char cmd[512];

	for (int i = 0; i < ST_MAX_SPAWNED; i++) {
		if (st_spawned[i] > 0) {
			kill(st_spawned[i], SIGKILL);
			waitpid(st_spawned[i], NULL, 0);
			st_spawned[i] = 0;
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* The build tree's binary @rel ("intentd/kl-intentd"). */
static inline void st_bin(char *buf, size_t n, const char *rel)
{
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");

	snprintf(buf, n, "%s/%s", b ? b : "build", rel);
}

/* fork + execv @argv (NULL-terminated); the pid is remembered for teardown. */
static inline pid_t st_spawn(char *const argv[])
{
	pid_t pid = lt_spawn(argv);

	for (int i = 0; i < ST_MAX_SPAWNED; i++) {
		if (st_spawned[i] <= 0) {
			st_spawned[i] = pid;
			break;
		}
	}
	return pid;
}

/* SIGTERM and reap; the exit status (as waitpid reports it). */
static inline int st_stop(pid_t pid)
{
	int st = -1;

	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	for (int i = 0; i < ST_MAX_SPAWNED; i++)
		if (st_spawned[i] == pid)
			st_spawned[i] = 0;
	return st;
}

static inline char *st_status_field(pid_t pid, const char *key, char *buf, size_t n)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	buf[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			char *v = line + strlen(key) + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			snprintf(buf, n, "%s", v);
			buf[strcspn(buf, "\n")] = 0;
		}
	}
	fclose(f);
	return buf;
}

/* Started as root, @pid must run as another user with every capability set empty. */
static inline void st_assert_unprivileged(pid_t pid, const char *name)
{
	char buf[256];

	if (getuid() != 0)
		return;
	cr_assert_neq(strncmp(st_status_field(pid, "Uid", buf, sizeof(buf)), "0\t", 2), 0,
		      "%s still runs as root: Uid %s", name, buf);
	cr_assert_str_eq(st_status_field(pid, "CapEff", buf, sizeof(buf)), "0000000000000000");
	cr_assert_str_eq(st_status_field(pid, "CapPrm", buf, sizeof(buf)), "0000000000000000");
	cr_assert_str_eq(st_status_field(pid, "CapBnd", buf, sizeof(buf)), "0000000000000000");
	cr_assert_str_eq(st_status_field(pid, "CapAmb", buf, sizeof(buf)), "0000000000000000");
	cr_assert_str_eq(st_status_field(pid, "NoNewPrivs", buf, sizeof(buf)), "1");
}

/* Open ring @name once its stage created it (5 s at most). */
static inline struct shm_ring *st_wait_ring(const char *dir, const char *name)
{
	struct shm_ring *r = NULL;

	for (int i = 0; i < 100 && shm_ring_open(dir, name, &r); i++)
		usleep(50000);
	cr_assert_not_null(r, "ring %s never appeared in %s", name, dir);
	return r;
}

/* Wait until @r has @n consumers attached (a stage attaches after its privilege drop). */
static inline void st_wait_consumers(struct shm_ring *r, uint32_t n)
{
	struct shm_ring_info info;

	for (int i = 0; i < 100; i++) {
		shm_ring_info(r, &info);
		if (info.nconsumers >= n)
			return;
		usleep(50000);
	}
	cr_assert_geq(info.nconsumers, n, "only %u consumers attached", info.nconsumers);
}

#endif
