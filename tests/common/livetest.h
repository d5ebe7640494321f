/* SPDX-License-Identifier: Apache-2.0 */
/*
 * livetest.h - the small things every live test of the pipeline needs
 * (tests/<stage>/test_*_live.c): shell commands with printf formatting
 * (runc, jq), binaries of this build tree, and reading klctl's JSON.
 */
#ifndef KL_TESTS_LIVETEST_H
#define KL_TESTS_LIVETEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* system() of a formatted command; its exit status, or -1 when it did not exit. */
static int lt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int lt_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start a daemon: @argv[0] with @argv (a child that cannot exec exits 127). */
static inline pid_t lt_spawn(char *const argv[])
{
	pid_t p = fork();

	cr_assert_geq(p, 0);
	if (p == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	return p;
}

/*
 * Stop *@p with @sig, SIGKILL after 5 s, reap it; *@p = -1. No-op for <= 0
 * and for a child that already exited (reaped here, never signalled: its
 * pid may be someone else's by now).
 */
static inline void lt_stop(pid_t *p, int sig)
{
	if (*p <= 0)
		return;
	if (waitpid(*p, NULL, WNOHANG) != 0) {
		*p = -1;
		return;
	}
	kill(*p, sig);
	for (int k = 0; k < 100 && waitpid(*p, NULL, WNOHANG) == 0; k++)
		usleep(50000);
	kill(*p, SIGKILL);
	waitpid(*p, NULL, 0);
	*p = -1;
}

/* The build tree's file @rel; four results may be held at once. */
static inline const char *lt_bpath(const char *rel)
{
	static char p[4][512];
	static int i;
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", b ? b : "build", rel);
	return p[i];
}

/* A string member, "" when absent or not a string. */
static inline const char *lt_jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static inline json_int_t lt_jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

#endif
