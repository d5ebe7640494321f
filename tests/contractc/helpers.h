/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the contractc criterion suites (header-only, static). */
#ifndef KLOUDLENS_TESTS_CONTRACTC_HELPERS_H
#define KLOUDLENS_TESTS_CONTRACTC_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cc.h"

static inline const char *src_root(void)
{
	const char *r = getenv("KLOUDLENS_SOURCE_ROOT");
	cr_assert(r, "KLOUDLENS_SOURCE_ROOT is not set (run through meson test)");
	return r;
}

/* malloc'd "$KLOUDLENS_SOURCE_ROOT/rel" */
static inline char *src_path(const char *rel)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", src_root(), rel) >= 0);
	return p;
}

static inline char *slurp(const char *path)
{
	char *d = NULL;
	size_t l = 0;
	int r = cc_read_file(path, &d, &l);
	cr_assert_eq(r, 0, "read %s: %s", path, strerror(-r));
	return d;
}

struct cli_result {
	int rc;
	char *out, *err;
};

/* Runs contractc in-process with captured stdout/stderr. */
static inline struct cli_result run_cli(int argc, char **argv)
{
	struct cli_result r = { 0 };
	size_t ol = 0, el = 0;
	FILE *o = open_memstream(&r.out, &ol), *e = open_memstream(&r.err, &el);
	cr_assert(o && e);
	r.rc = contractc_main(argc, argv, o, e);
	fclose(o);
	fclose(e);
	return r;
}

static inline void cli_free(struct cli_result *r)
{
	free(r->out);
	free(r->err);
}

static inline char *make_tmpdir(void)
{
	char *t = strdup("/tmp/contractc-test.XXXXXX");
	cr_assert(t && mkdtemp(t), "mkdtemp: %s", strerror(errno));
	return t;
}

static inline void rm_rf(const char *dir)
{
	char *cmd = NULL;
	if (!dir || strncmp(dir, "/tmp/contractc-test.", 20))
		return; /* only ever remove what make_tmpdir created */
	if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0 && system(cmd)) {
	}
	free(cmd);
}

/* sorted list of files in @dir ending in @suffix; NULL-terminated */
static inline char **list_dir(const char *dir, const char *suffix)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);
	char **v;
	size_t k = 0;

	cr_assert(n >= 0, "scandir %s: %s", dir, strerror(errno));
	v = calloc((size_t)n + 1, sizeof(char *));
	cr_assert(v);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(ents[i]->d_name), s = strlen(suffix);
		if (l > s && !strcmp(ents[i]->d_name + l - s, suffix))
			cr_assert(asprintf(&v[k++], "%s/%s", dir, ents[i]->d_name) >= 0);
		free(ents[i]);
	}
	free(ents);
	return v;
}

static inline void list_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static inline bool tool_exists(const char *name)
{
	char *cmd = NULL;
	int r;
	cr_assert(asprintf(&cmd, "command -v %s >/dev/null 2>&1", name) >= 0);
	r = system(cmd);
	free(cmd);
	return r == 0;
}

static inline bool require_live(void)
{
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	return v && !strcmp(v, "1");
}

/* Missing tool: skip, or fail when KLOUDLENS_REQUIRE_LIVE=1 (CI on a full machine). */
#define NEED_TOOL(name)                                                                   \
	do {                                                                              \
		if (!tool_exists(name)) {                                                 \
			if (require_live())                                               \
				cr_assert_fail("%s is missing and KLOUDLENS_REQUIRE_LIVE=1", \
					       name);                                     \
			cr_skip_test("%s is not installed", name);                        \
		}                                                                         \
	} while (0)

#endif
