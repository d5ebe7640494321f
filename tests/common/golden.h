/* SPDX-License-Identifier: Apache-2.0 */
/*
 * golden.h - compare a test's output with tests/<suite>/golden/<name>.jsonl
 * (KL_UPDATE_GOLDEN=1 rewrites the file instead), reporting the first line
 * that differs rather than a wall of text.
 */
#ifndef KL_TESTS_GOLDEN_H
#define KL_TESTS_GOLDEN_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void golden_check(const char *suite, const char *name, const char *got, size_t len)
{
	const char *src = getenv("KLOUDLENS_SOURCE_ROOT");
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/%s/golden/%s.jsonl", src ? src : ".", suite, name);
	if (getenv("KL_UPDATE_GOLDEN")) {
		f = fopen(path, "w");
		cr_assert_not_null(f, "cannot write %s", path);
		fwrite(got, 1, len, f);
		fclose(f);
		return;
	}
	f = fopen(path, "r");
	cr_assert_not_null(f, "missing golden file %s (KL_UPDATE_GOLDEN=1 writes it)", path);
	char *want = malloc(1 << 20);
	cr_assert_not_null(want);
	size_t n = fread(want, 1, (1 << 20) - 1, f);
	want[n] = 0;
	fclose(f);
	if (n != len || memcmp(want, got, n)) {
		size_t line = 1, i = 0;

		while (i < n && i < len && want[i] == got[i]) {
			if (want[i] == '\n')
				line++;
			i++;
		}
		free(want);
		cr_assert_fail("%s: output differs from golden %s at line %zu", name, path, line);
	}
	free(want);
}

#endif
