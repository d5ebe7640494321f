/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filter.c - the live filter file: what `kloudlens` (docker mode) compiles
 * the HookSubscriptions of its control-plane directory into, and what
 * kl-collector applies to its BPF maps while it runs.
 *
 * Why a file and not a socket: the supervisor writes it atomically
 * (write + rename) into the rings directory, so a collector restarted
 * later finds the last good filter without asking anyone, and the format
 * needs no YAML in the privileged process. Line format, one directive a
 * line, '#' comments:
 *
 *   kloudlens-filter 1
 *   generation N
 *   rule NAME                       up to KL_LIVE_RULES rules
 *     categories crit,bulk_file     required
 *     syscalls openat,close         optional: only these of the categories
 *     select all|host|containers    repeatable; none with terms = the terms
 *     namespace NS                  repeatable (OR); exclude-namespace NS
 *     container NAME                repeatable (OR)
 *     label KEY=VALUE               all must match
 *     expr KEY In|NotIn|Exists|DoesNotExist [v1,v2]
 *     sample CATEGORY PCT           1..100, bulk_file/bulk_net/bulk_file_meta
 *   end
 *
 * A file with no rule means "trace everything" (the built-in default).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kloudlens/recutil.h>

#include "collector.h"

static const char *const cat_names[KL_CAT__COUNT] = {
	"crit", "bulk_file", "bulk_net", "bulk_proc", "bulk_file_meta", "dns", "proc_lc", "sock_lc",
};

enum term_kind { T_NS, T_XNS, T_CTR, T_LABEL, T_EXPR };
enum expr_op { OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct term {
	enum term_kind kind;
	enum expr_op op;
	char key[128];
	char vals[384];         /* label value, or comma-separated values */
};

struct rule {
	char name[128];
	uint8_t cats;
	char syscalls[1024];    /* comma list; "" = every syscall of the categories */
	bool all, host, containers;
	struct term *terms;
	size_t nterms;
	uint8_t sample[KL_CAT__COUNT];
};

struct kc_filter {
	uint64_t generation;
	struct rule rules[KL_LIVE_RULES];
	size_t nrules;
};

void kc_filter_free(struct kc_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nrules; i++)
		free(f->rules[i].terms);
	free(f);
}

uint64_t kc_filter_generation(const struct kc_filter *f)
{
	return f ? f->generation : 0;
}

size_t kc_filter_nrules(const struct kc_filter *f)
{
	return f ? f->nrules : 0;
}

static int cat_index(const char *s)
{
	for (int k = 0; k < KL_CAT__COUNT; k++)
		if (!strcmp(s, cat_names[k]))
			return k;
	return -1;
}

static bool in_list(const char *list, const char *s)
{
	size_t n = strlen(s);

	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncmp(p, s, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static int add_term(struct rule *r, enum term_kind kind, const char *key, const char *vals, enum expr_op op)
{
	struct term *t = realloc(r->terms, (r->nterms + 1) * sizeof(*t));

	if (!t)
		return -ENOMEM;
	r->terms = t;
	t = &t[r->nterms++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->op = op;
	if (strlen(key) >= sizeof(t->key) || strlen(vals) >= sizeof(t->vals))
		return -ENAMETOOLONG;
	strcpy(t->key, key);
	strcpy(t->vals, vals);
	return 0;
}

/* One directive inside a rule. Returns 0, or -EINVAL with @err set. */
static int rule_line(struct rule *r, char *kw, char *rest, char *err, size_t n)
{
	char *a, *b, *save = NULL;
	int e;

	if (!strcmp(kw, "categories")) {
		for (a = strtok_r(rest, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
			int k = cat_index(a);
			if (k < 0) {
				snprintf(err, n, "categories: unknown category '%.64s'", a);
				return -EINVAL;
			}
			r->cats |= 1u << k;
		}
		return 0;
	}
	if (!strcmp(kw, "syscalls")) {
		if (strlen(rest) >= sizeof(r->syscalls)) {
			snprintf(err, n, "syscalls: list too long");
			return -EINVAL;
		}
		strcpy(r->syscalls, rest);
		return 0;
	}
	if (!strcmp(kw, "select")) {
		if (!strcmp(rest, "all"))
			r->all = true;
		else if (!strcmp(rest, "host"))
			r->host = true;
		else if (!strcmp(rest, "containers"))
			r->containers = true;
		else {
			snprintf(err, n, "select: expected all, host or containers, got '%.64s'", rest);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(kw, "namespace") || !strcmp(kw, "exclude-namespace") || !strcmp(kw, "container"))
		return add_term(r, kw[0] == 'n' ? T_NS : kw[0] == 'e' ? T_XNS : T_CTR, rest, "", OP_IN);
	if (!strcmp(kw, "label")) {
		b = strchr(rest, '=');
		if (!b) {
			snprintf(err, n, "label: expected KEY=VALUE, got '%.64s'", rest);
			return -EINVAL;
		}
		*b++ = 0;
		return add_term(r, T_LABEL, rest, b, OP_IN);
	}
	if (!strcmp(kw, "expr")) {
		char *key = strtok_r(rest, " ", &save), *op = strtok_r(NULL, " ", &save);
		char *vals = strtok_r(NULL, " ", &save);
		enum expr_op o;

		if (!key || !op) {
			snprintf(err, n, "expr: expected KEY OPERATOR [VALUES]");
			return -EINVAL;
		}
		if (!strcmp(op, "In"))
			o = OP_IN;
		else if (!strcmp(op, "NotIn"))
			o = OP_NOTIN;
		else if (!strcmp(op, "Exists"))
			o = OP_EXISTS;
		else if (!strcmp(op, "DoesNotExist"))
			o = OP_NOTEXISTS;
		else {
			snprintf(err, n, "expr: unknown operator '%s'", op);
			return -EINVAL;
		}
		return add_term(r, T_EXPR, key, vals ? vals : "", o);
	}
	if (!strcmp(kw, "sample")) {
		a = strtok_r(rest, " ", &save);
		b = strtok_r(NULL, " ", &save);
		int k = a ? cat_index(a) : -1;
		long pct = b ? strtol(b, NULL, 10) : 0;

		if (k != KL_CAT_BULK_FILE && k != KL_CAT_BULK_NET && k != KL_CAT_BULK_FILE_META) {
			snprintf(err, n, "sample: only bulk_file, bulk_net and bulk_file_meta are sampled");
			return -EINVAL;
		}
		if (pct < 1 || pct > 100) {
			snprintf(err, n, "sample: percentage must be 1..100");
			return -EINVAL;
		}
		r->sample[k] = (uint8_t)pct;
		return 0;
	}
	e = -EINVAL;
	snprintf(err, n, "unknown directive '%.64s'", kw);
	return e;
}

int kc_filter_parse(const char *path, struct kc_filter **out, char *err, size_t n)
{
	char line[2048], msg[256] = "";
	struct kc_filter *f;
	struct rule *cur = NULL;
	bool header = false;
	unsigned lineno = 0;
	FILE *fp;
	int rc = 0;

	*out = NULL;
	fp = fopen(path, "r");
	if (!fp) {
		rc = -errno;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return rc;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		fclose(fp);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), fp)) {
		char *kw, *rest, *p;

		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		for (kw = line; *kw == ' ' || *kw == '\t'; kw++)
			;
		if (!*kw || *kw == '#')
			continue;
		for (p = kw; *p && *p != ' ' && *p != '\t'; p++)
			;
		rest = p;
		if (*p) {
			*p = 0;
			for (rest = p + 1; *rest == ' ' || *rest == '\t'; rest++)
				;
		}
		if (!header) {
			if (strcmp(kw, "kloudlens-filter") || strcmp(rest, "1")) {
				snprintf(msg, sizeof(msg), "expected 'kloudlens-filter 1' first");
				rc = -EINVAL;
				break;
			}
			header = true;
			continue;
		}
		if (!strcmp(kw, "generation") && !cur) {
			f->generation = strtoull(rest, NULL, 10);
			continue;
		}
		if (!strcmp(kw, "rule")) {
			if (cur) {
				snprintf(msg, sizeof(msg), "rule %s: missing 'end'", cur->name);
				rc = -EINVAL;
				break;
			}
			if (f->nrules == KL_LIVE_RULES) {
				snprintf(msg, sizeof(msg), "more than %d rules", KL_LIVE_RULES);
				rc = -E2BIG;
				break;
			}
			cur = &f->rules[f->nrules++];
			snprintf(cur->name, sizeof(cur->name), "%.127s", rest);
			continue;
		}
		if (!strcmp(kw, "end")) {
			if (!cur || !cur->cats) {
				snprintf(msg, sizeof(msg), cur ? "rule %s: no categories" : "'end' outside a rule",
					 cur ? cur->name : "");
				rc = -EINVAL;
				break;
			}
			/* no selector at all: everything on the node */
			if (!cur->all && !cur->host && !cur->containers && !cur->nterms)
				cur->all = true;
			cur = NULL;
			continue;
		}
		if (!cur) {
			snprintf(msg, sizeof(msg), "'%.64s' outside a rule", kw);
			rc = -EINVAL;
			break;
		}
		rc = rule_line(cur, kw, rest, msg, sizeof(msg));
		if (rc)
			break;
	}
	fclose(fp);
	if (!rc && !header) {
		snprintf(msg, sizeof(msg), "empty file (expected 'kloudlens-filter 1')");
		rc = -EINVAL;
	}
	if (!rc && cur) {
		snprintf(msg, sizeof(msg), "rule %s: missing 'end'", cur->name);
		rc = -EINVAL;
	}
	if (rc) {
		snprintf(err, n, "%s:%u: %s", path, lineno, msg);
		kc_filter_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int kc_filter_compile(const struct kc_filter *f, const struct kl_sc_cfg *traced, uint32_t host_pidns,
		      struct kl_live *L, char *err, size_t n)
{
	const struct kc_sc_def *defs;
	size_t ndefs = kc_syscall_defs(&defs);

	memset(L, 0, sizeof(*L));
	L->host_pidns = host_pidns;
	L->generation = f ? f->generation : 0;
	if (!f || !f->nrules) {
		/* the built-in default: rule 0 traces everything the collector traces */
		L->all_rules = 1;
		memset(L->cat_rules, 1, sizeof(L->cat_rules));
		for (size_t i = 0; i < ndefs; i++)
			if (defs[i].nr < KL_NR_MAX)
				L->sc_rules[defs[i].nr] = 1;
		return 0;
	}
	for (size_t r = 0; r < f->nrules; r++) {
		const struct rule *ru = &f->rules[r];
		uint8_t bit = (uint8_t)(1u << r);

		/* every name must be one the collector knows, or the file is refused */
		for (const char *p = ru->syscalls; *p;) {
			const char *e = strchr(p, ',');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			bool ok = false;

			for (size_t i = 0; i < ndefs && !ok; i++)
				ok = strlen(defs[i].name) == l && !strncmp(defs[i].name, p, l);
			if (!ok) {
				snprintf(err, n, "rule %s: syscalls: '%.*s' is not a syscall the collector traces", ru->name,
					 (int)l, p);
				return -EINVAL;
			}
			p = e ? e + 1 : p + l;
		}
		for (int k = 0; k < KL_CAT__COUNT; k++) {
			if (ru->cats & (1u << k))
				L->cat_rules[k] |= bit;
			L->sample_pct[r][k] = ru->sample[k];
		}
		for (size_t i = 0; i < ndefs; i++) {
			uint32_t nr = defs[i].nr;

			if (nr >= KL_NR_MAX || (traced && !traced[nr].traced))
				continue;
			if (!(ru->cats & (1u << defs[i].cfg.category)))
				continue;
			if (ru->syscalls[0] && !in_list(ru->syscalls, defs[i].name))
				continue;
			L->sc_rules[nr] |= bit;
		}
		if (ru->all)
			L->all_rules |= bit;
		if (ru->host)
			L->host_rules |= bit;
		if (ru->containers)
			L->ctr_rules |= bit;
		if (ru->nterms)
			L->sel_rules |= bit;
	}
	return 0;
}

/* "k=v\0k=v\0" lookup */
static const char *label_get(const struct kl_field_view *lv, const char *key)
{
	size_t kl = strlen(key);

	if (!lv)
		return NULL;
	for (const char *p = (const char *)lv->data, *end = p + lv->len; p < end;) {
		size_t l = strnlen(p, (size_t)(end - p));

		if (l > kl && p[kl] == '=' && !strncmp(p, key, kl))
			return p + kl + 1;
		p += l + 1;
	}
	return NULL;
}

static bool field_eq(const struct kl_field_view *f, bool have, const char *s)
{
	size_t l;

	if (!have)
		return false;
	l = strnlen((const char *)f->data, f->len);
	return l == strlen(s) && !strncmp((const char *)f->data, s, l);
}

uint32_t kc_filter_match_container(const struct kc_filter *f, const void *rec, size_t len)
{
	struct kl_field_view name, ns, labels;
	bool hn, hns, hl;
	uint32_t mask = 0;

	if (!f)
		return 0;
	hn = kl_field_find(KL_REC_CONTAINER, rec, len, KL_F_CONTAINER_NAME, &name);
	hns = kl_field_find(KL_REC_CONTAINER, rec, len, KL_F_POD_NAMESPACE, &ns);
	hl = kl_field_find(KL_REC_CONTAINER, rec, len, KL_F_LABELS, &labels);
	for (size_t r = 0; r < f->nrules; r++) {
		const struct rule *ru = &f->rules[r];
		bool any_ns = false, ns_ok = false, any_ctr = false, ctr_ok = false, ok = true;

		if (!ru->nterms)
			continue;
		for (size_t i = 0; i < ru->nterms && ok; i++) {
			const struct term *t = &ru->terms[i];
			const char *v;

			switch (t->kind) {
			case T_NS:
				any_ns = true;
				ns_ok |= field_eq(&ns, hns, t->key);
				break;
			case T_XNS:
				if (field_eq(&ns, hns, t->key))
					ok = false;
				break;
			case T_CTR:
				any_ctr = true;
				ctr_ok |= field_eq(&name, hn, t->key);
				break;
			case T_LABEL:
				v = label_get(hl ? &labels : NULL, t->key);
				ok = v && !strcmp(v, t->vals);
				break;
			case T_EXPR:
				v = label_get(hl ? &labels : NULL, t->key);
				if (t->op == OP_EXISTS)
					ok = v != NULL;
				else if (t->op == OP_NOTEXISTS)
					ok = v == NULL;
				else if (t->op == OP_IN)
					ok = v && in_list(t->vals, v);
				else
					ok = !v || !in_list(t->vals, v);
				break;
			}
		}
		if (ok && (!any_ns || ns_ok) && (!any_ctr || ctr_ok))
			mask |= 1u << r;
	}
	return mask;
}
