/* SPDX-License-Identifier: Apache-2.0 */
/* Matching used by gap analysis; semantics as in docs/contract-ir.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cc.h"

/*
 * Wildcard matching shared by paths and DNS names. '*' matches within one
 * component (up to @sep), '**' (paths only) across components, '?' one
 * character other than @sep. Failed (pattern, subject) positions are
 * memoised, so hostile patterns cost O(len(p) * len(s)), not exponential.
 */
struct wm {
	const char *p, *s;
	size_t np, ns;
	char sep;
	bool fold, dstar;
	unsigned char *failed; /* bitmap (np+1) x (ns+1) */
};

static bool wm_rec(struct wm *m, size_t pi, size_t si)
{
	while (pi < m->np) {
		size_t bit = pi * (m->ns + 1) + si;
		if (m->failed[bit / 8] & (1u << (bit % 8)))
			return false;
		char pc = m->p[pi];
		if (pc == '*') {
			bool any = m->dstar && pi + 1 < m->np && m->p[pi + 1] == '*';
			size_t next = pi + (any ? 2 : 1);
			for (size_t t = si;; t++) {
				if (wm_rec(m, next, t))
					return true;
				if (t == m->ns || (!any && m->s[t] == m->sep))
					break;
			}
			m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
			return false;
		}
		if (si == m->ns)
			return false;
		char sc = m->s[si];
		if (pc == '?' ? sc == m->sep :
		    (m->fold ? tolower((unsigned char)pc) != tolower((unsigned char)sc) : pc != sc)) {
			m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
			return false;
		}
		pi++;
		si++;
	}
	return si == m->ns;
}

static bool wild_match(const char *p, const char *s, char sep, bool fold, bool dstar)
{
	struct wm m = { .p = p, .s = s, .np = strlen(p), .ns = strlen(s), .sep = sep,
			.fold = fold, .dstar = dstar };
	size_t bits = (m.np + 1) * (m.ns + 1);
	bool r;

	/* paths and names here are bounded by the file size limit; refuse absurd sizes */
	if (m.np > 8192 || m.ns > 8192)
		return false;
	m.failed = calloc(bits / 8 + 1, 1);
	if (!m.failed)
		return false;
	r = wm_rec(&m, 0, 0);
	free(m.failed);
	return r;
}

bool cc_glob_match(const char *pat, const char *s)
{
	return wild_match(pat, s, '/', false, true);
}

bool cc_path_rule_match(const struct cc_path_rule *r, const char *path)
{
	switch (r->kind) {
	case CC_PATH_DIR:
		return !strncmp(r->path, path, strlen(r->path)) ||
		       (strlen(path) + 1 == strlen(r->path) && !strncmp(r->path, path, strlen(path)));
	case CC_PATH_GLOB:
		return cc_glob_match(r->path, path);
	default:
		return !strcmp(r->path, path);
	}
}

/* Cilium's matchPattern semantics: '*' matches within one DNS label, and a
 * lone '*' matches every name. Comparison is case-insensitive. */
bool cc_dns_match(const char *pat, const char *name)
{
	char n[256];
	size_t l = strlen(name);

	if (!strcmp(pat, "*"))
		return true;
	if (l >= sizeof(n))
		return false;
	memcpy(n, name, l + 1);
	if (l && n[l - 1] == '.') /* fully qualified form */
		n[l - 1] = '\0';
	return wild_match(pat, n, '.', true, false);
}

static int parse_cidr(const char *cidr, unsigned char *addr, int *fam, int *plen)
{
	char buf[64];
	const char *slash = strchr(cidr, '/');
	char *end;
	long l;

	if (!slash || (size_t)(slash - cidr) >= sizeof(buf))
		return -1;
	memcpy(buf, cidr, (size_t)(slash - cidr));
	buf[slash - cidr] = '\0';
	if (!isdigit((unsigned char)slash[1]))
		return -1;
	l = strtol(slash + 1, &end, 10);
	if (*end)
		return -1;
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*fam = AF_INET;
		if (l < 0 || l > 32)
			return -1;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*fam = AF_INET6;
		if (l < 0 || l > 128)
			return -1;
	} else {
		return -1;
	}
	*plen = (int)l;
	return 0;
}

bool cc_valid_cidr(const char *cidr)
{
	unsigned char a[16];
	int fam, plen;
	return parse_cidr(cidr, a, &fam, &plen) == 0;
}

bool cc_valid_ip(const char *ip)
{
	unsigned char a[16];
	return inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1;
}

bool cc_cidr_match(const char *cidr, const char *ip)
{
	unsigned char net[16], a[16];
	int fam, plen, afam;

	if (parse_cidr(cidr, net, &fam, &plen))
		return false;
	if (inet_pton(AF_INET, ip, a) == 1)
		afam = AF_INET;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		afam = AF_INET6;
	else
		return false;
	if (afam != fam)
		return false;
	for (int i = 0; i < plen; i++) {
		int byte = i / 8, bit = 7 - i % 8;
		if (((net[byte] >> bit) & 1) != ((a[byte] >> bit) & 1))
			return false;
	}
	return true;
}

bool cc_valid_dns(const char *name, bool allow_wild)
{
	size_t len = strlen(name), lab = 0;

	if (!len || len > 253)
		return false;
	if (allow_wild && !strcmp(name, "*"))
		return true;
	if (allow_wild && !strncmp(name, "*.", 2))
		name += 2;
	if (!*name || name[0] == '.' || name[strlen(name) - 1] == '.')
		return false;
	for (const char *c = name; *c; c++) {
		if (*c == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
			return false;
		if (++lab > 63)
			return false;
	}
	return true;
}

bool cc_labels_subset(const struct cc_labels *want, const struct cc_labels *have)
{
	for (size_t i = 0; i < want->n; i++) {
		bool found = false;
		for (size_t j = 0; j < have->n; j++)
			if (!strcmp(want->k[i], have->k[j]) && !strcmp(want->v[i], have->v[j]))
				found = true;
		if (!found)
			return false;
	}
	return true;
}
