/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

void perr(struct pctx *p, const struct cc_node *n, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	p->errors++;
	if (!m) {
		p->oom = 1;
		return;
	}
	cc_diag_add(p->d, "%s:%d:%d: %s: %s", p->file, n ? n->line : 1, n ? n->col : 1,
		    path && *path ? path : "(document)", m);
	free(m);
}

void path_key(char *dst, const char *base, const char *key)
{
	if (!base || !*base)
		snprintf(dst, PATH_MAX_LEN, "%s", key);
	else
		snprintf(dst, PATH_MAX_LEN, "%s.%s", base, key);
}

void path_idx(char *dst, const char *base, size_t i)
{
	snprintf(dst, PATH_MAX_LEN, "%s[%zu]", base, i);
}

static const char *type_name(const struct cc_node *n)
{
	switch (n->type) {
	case CC_SCALAR:
		return "a scalar";
	case CC_SEQ:
		return "a list";
	default:
		return "a mapping";
	}
}

bool map_check(struct pctx *p, const struct cc_node *n, const char *path,
	       const char *const *allowed)
{
	if (n->type != CC_MAP) {
		perr(p, n, path, "expected a mapping, got %s", type_name(n));
		return false;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct cc_node *k = n->kids[i];
		char kp[PATH_MAX_LEN];

		if (k->type != CC_SCALAR) {
			perr(p, k, path, "mapping keys must be plain strings");
			continue;
		}
		path_key(kp, path, k->str);
		bool ok = false;
		for (size_t a = 0; allowed && allowed[a]; a++)
			if (!strcmp(allowed[a], k->str))
				ok = true;
		if (!ok) {
			char list[PATH_MAX_LEN] = "";
			size_t off = 0;
			for (size_t a = 0; allowed && allowed[a]; a++) {
				int w = snprintf(list + off, sizeof(list) - off, "%s%s",
						 a ? ", " : "", allowed[a]);
				if (w < 0 || (size_t)w >= sizeof(list) - off)
					break;
				off += (size_t)w;
			}
			perr(p, k, kp, "unknown key (expected one of: %s)", list);
			continue;
		}
		for (size_t j = 0; j < i; j += 2)
			if (n->kids[j]->type == CC_SCALAR && !strcmp(n->kids[j]->str, k->str)) {
				perr(p, k, kp, "duplicate key (first at line %d)",
				     n->kids[j]->line);
				break;
			}
	}
	return true;
}

const struct cc_node *map_get(const struct cc_node *n, const char *key)
{
	if (!n || n->type != CC_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < n->n; i += 2)
		if (n->kids[i]->type == CC_SCALAR && !strcmp(n->kids[i]->str, key))
			return n->kids[i + 1];
	return NULL;
}

bool seq_check(struct pctx *p, const struct cc_node *n, const char *path)
{
	if (n->type != CC_SEQ) {
		perr(p, n, path, "expected a list, got %s", type_name(n));
		return false;
	}
	return true;
}

bool req(struct pctx *p, const struct cc_node *map, const struct cc_node *v, const char *path,
	 const char *key)
{
	if (v)
		return true;
	perr(p, map, path, "required key \"%s\" is missing", key);
	return false;
}

static bool is_null(const struct cc_node *n)
{
	return n->type == CC_SCALAR && !n->quoted &&
	       (!strcmp(n->str, "") || !strcmp(n->str, "~") || !strcmp(n->str, "null"));
}

bool get_str(struct pctx *p, const struct cc_node *n, const char *path, char **out)
{
	if (n->type != CC_SCALAR || is_null(n)) {
		perr(p, n, path, "expected a string, got %s",
		     n->type == CC_SCALAR ? "null" : type_name(n));
		return false;
	}
	if (!*n->str) {
		perr(p, n, path, "must not be empty");
		return false;
	}
	for (const unsigned char *c = (const unsigned char *)n->str; *c; c++)
		if (*c < 0x20 || *c == 0x7f) {
			perr(p, n, path, "control characters are not allowed");
			return false;
		}
	free(*out);
	*out = strdup(n->str);
	if (!*out) {
		p->oom = 1;
		return false;
	}
	return true;
}

bool get_bool(struct pctx *p, const struct cc_node *n, const char *path, bool *out)
{
	if (n->type == CC_SCALAR && !n->quoted) {
		if (!strcmp(n->str, "true")) {
			*out = true;
			return true;
		}
		if (!strcmp(n->str, "false")) {
			*out = false;
			return true;
		}
	}
	perr(p, n, path, "expected a boolean (true or false)");
	return false;
}

bool get_int(struct pctx *p, const struct cc_node *n, const char *path, int64_t min, int64_t max,
	     int64_t *out)
{
	char *end;
	long long v;

	if (n->type != CC_SCALAR || n->quoted || !*n->str) {
		perr(p, n, path, "expected an integer");
		return false;
	}
	const char *s = n->str;
	if (*s == '+')
		s++;
	if (!isdigit((unsigned char)*s) && !(*s == '-' && isdigit((unsigned char)s[1]))) {
		perr(p, n, path, "expected an integer");
		return false;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end) {
		perr(p, n, path, "expected an integer");
		return false;
	}
	if (errno || v < min || v > max) {
		perr(p, n, path, "must be between %lld and %lld", (long long)min, (long long)max);
		return false;
	}
	*out = v;
	return true;
}

int labels_add(struct cc_labels *l, const char *k, const char *v)
{
	char **nk = realloc(l->k, (l->n + 1) * sizeof(*nk));
	if (!nk)
		return -ENOMEM;
	l->k = nk;
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	l->k[l->n] = strdup(k);
	l->v[l->n] = strdup(v);
	if (!l->k[l->n] || !l->v[l->n]) {
		free(l->k[l->n]);
		free(l->v[l->n]);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

void labels_free(struct cc_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->k[i]);
		free(l->v[i]);
	}
	free(l->k);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int labels_copy(struct cc_labels *dst, const struct cc_labels *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (labels_add(dst, src->k[i], src->v[i]))
			return -ENOMEM;
	return 0;
}

/* Kubernetes label rules (k8s.io/apimachinery validation): optional DNS
 * prefix + "/" + name of at most 63 [A-Za-z0-9._-] chars, alnum at both ends;
 * values the same without the prefix, possibly empty. */
static bool label_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');
	if (slash) {
		if (slash == k || slash - k > 253)
			return false;
		for (const char *c = k; c < slash; c++)
			if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) &&
			    *c != '-' && *c != '.')
				return false;
		k = slash + 1;
	}
	return label_name_ok(k, strlen(k));
}

bool get_labels(struct pctx *p, const struct cc_node *n, const char *path, struct cc_labels *l)
{
	if (n->type != CC_MAP) {
		perr(p, n, path, "expected a mapping of label names to values, got %s",
		     type_name(n));
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct cc_node *k = n->kids[i], *v = n->kids[i + 1];
		char kp[PATH_MAX_LEN];

		if (k->type != CC_SCALAR) {
			perr(p, k, path, "label names must be strings");
			ok = false;
			continue;
		}
		path_key(kp, path, k->str);
		if (!label_key_ok(k->str)) {
			perr(p, k, kp, "invalid label name");
			ok = false;
			continue;
		}
		if (v->type != CC_SCALAR || (!v->quoted && (!strcmp(v->str, "true") ||
							    !strcmp(v->str, "false")))) {
			perr(p, v, kp, "label values must be strings (quote true/false)");
			ok = false;
			continue;
		}
		if (*v->str && !label_name_ok(v->str, strlen(v->str))) {
			perr(p, v, kp, "invalid label value");
			ok = false;
			continue;
		}
		for (size_t j = 0; j < l->n; j++)
			if (!strcmp(l->k[j], k->str)) {
				perr(p, k, kp, "duplicate key");
				ok = false;
				goto next;
			}
		if (labels_add(l, k->str, v->str)) {
			p->oom = 1;
			return false;
		}
next:;
	}
	return ok;
}

/* RFC 3339 as Kubernetes writes it: 2026-11-24T22:57:00Z or with .frac / offset */
bool valid_timestamp(const char *s)
{
	const char *f = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; f[i]; i++) {
		if (f[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != f[i])
			return false;
	}
	s += i;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (!strcmp(s, "Z"))
		return true;
	if ((s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
	    isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
	    isdigit((unsigned char)s[5]) && !s[6])
		return true;
	return false;
}

bool get_timestamp(struct pctx *p, const struct cc_node *n, const char *path, char **out)
{
	if (!get_str(p, n, path, out))
		return false;
	if (!valid_timestamp(*out)) {
		perr(p, n, path, "expected an RFC 3339 timestamp like 2026-11-24T22:57:00Z");
		free(*out);
		*out = NULL;
		return false;
	}
	return true;
}

void evidence_free(struct cc_evidence *e)
{
	free(e->first);
	free(e->last);
	memset(e, 0, sizeof(*e));
}

bool get_evidence(struct pctx *p, const struct cc_node *n, const char *path, struct cc_evidence *e)
{
	static const char *const keys[] = { "count", "firstSeen", "lastSeen", NULL };
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];
	int64_t cnt;
	bool ok = true;

	if (!map_check(p, n, path, keys))
		return false;
	e->has = true;
	v = map_get(n, "count");
	path_key(kp, path, "count");
	if (req(p, n, v, path, "count") && get_int(p, v, kp, 0, INT64_MAX, &cnt))
		e->count = (uint64_t)cnt;
	else
		ok = false;
	if ((v = map_get(n, "firstSeen"))) {
		path_key(kp, path, "firstSeen");
		ok &= get_timestamp(p, v, kp, &e->first);
	}
	if ((v = map_get(n, "lastSeen"))) {
		path_key(kp, path, "lastSeen");
		ok &= get_timestamp(p, v, kp, &e->last);
	}
	/* Only comparable as text when both are UTC ("Z"), which is what we write. */
	if (e->first && e->last && strchr(e->first, 'Z') && strchr(e->last, 'Z') &&
	    strcmp(e->first, e->last) > 0) {
		path_key(kp, path, "firstSeen");
		perr(p, map_get(n, "firstSeen"), kp, "is after lastSeen");
		ok = false;
	}
	return ok;
}
