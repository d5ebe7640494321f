/* SPDX-License-Identifier: Apache-2.0 */
/*
 * path.c - lexical path normalisation. The enricher cannot see the
 * filesystem (it is unprivileged and may be in another mount namespace),
 * so ".." is resolved textually; a symlinked directory followed by ".."
 * can therefore differ from what the kernel resolved (documented in
 * docs/enricher.md).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "enrich.h"

void kl_path_normalize(char *path)
{
	/*
	 * Output never outgrows the input except "" -> "."; segments are
	 * written with a leading separator, so the write position stays at or
	 * behind the read position and the walk can run in place.
	 */
	bool abs = path[0] == '/';
	char *out = path;          /* write position */
	char *floor = path;        /* ".." may not pop below this */
	const char *p = path;

	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *seg = p;
		size_t n = 0;
		while (seg[n] && seg[n] != '/')
			n++;
		p = seg + n;
		if (n == 1 && seg[0] == '.')
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			if (out > floor) {
				while (out > floor && *--out != '/')
					;
				continue;
			}
			if (abs)
				continue;      /* "/.." is "/" */
			/* a relative path keeps leading ".." segments */
			if (out > path)
				*out++ = '/';
			memcpy(out, "..", 2);
			out += 2;
			floor = out;
			continue;
		}
		if (out > path || abs)
			*out++ = '/';
		memmove(out, seg, n);
		out += n;
	}
	if (out == path) {
		if (abs)
			*out++ = '/';
		else
			*out++ = '.';
	}
	*out = 0;
}

int kl_path_join(const char *base, const char *rel, char *out, size_t cap)
{
	size_t bl, rl;

	if (rel[0] == '/' || !base || !*base) {
		rl = strlen(rel);
		if (rl + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, rel, rl + 1);
	} else {
		bl = strlen(base);
		rl = strlen(rel);
		if (bl + 1 + rl + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, base, bl);
		out[bl] = '/';
		memcpy(out + bl + 1, rel, rl + 1);
	}
	kl_path_normalize(out);
	return 0;
}
