/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controlplane.c - the docker-mode object directory (controlplane.h).
 *
 * The schemas below are the CRDs' openAPIV3Schema (deployments/kubernetes/
 * crds/, docs/control-plane.md) in table form, applied strictly: no API
 * server prunes unknown keys here, so an unknown key is an error, as with
 * `kubectl apply --validate=strict`. BehaviorContracts go through
 * contractc's own parser when the build has it (the authority on them).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#ifdef KL_HAVE_CONTRACTC
#include "cc.h"
#endif
#include "controlplane.h"

const char *const kl_cp_kind_names[KL_CP__KINDS] = {
	"HookSubscription", "BaselinePolicy", "BehaviorContract", "NodeCapabilities",
};

/* ---- schema tables ----------------------------------------------------- */

enum st { S_STR, S_INT, S_BOOL, S_OBJ, S_LIST, S_MAPSTR, S_ANY };

struct field {
	const char *name;
	enum st type;
	bool required;
	const struct field *sub;        /* S_OBJ fields; S_LIST of objects */
	enum st item;                   /* S_LIST item type */
	const char *const *enums;       /* allowed strings (S_STR or S_LIST of S_STR) */
	long min, max;                  /* S_INT range; S_LIST min items (min) */
	bool unique;                    /* S_LIST: no duplicates */
};

#define END { NULL, 0, false, NULL, 0, NULL, 0, 0, false }

static const char *const cats[] = { "crit", "bulk_file", "bulk_net", "bulk_proc", "bulk_file_meta",
				    "dns", "proc_lc", "sock_lc", NULL };
static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist", NULL };
static const char *const modes[] = { "read", "write", "exec", NULL };
static const char *const emits[] = { "deviations", "none", NULL };
static const char *const cmodes[] = { "audit", "enforce", NULL };

static const struct field f_expr[] = {
	{ "key", S_STR, true }, { "operator", S_STR, true, NULL, 0, ops },
	{ "values", S_LIST, false, NULL, S_STR }, END,
};
static const struct field f_pods[] = {
	{ "matchLabels", S_MAPSTR }, { "matchExpressions", S_LIST, false, f_expr, S_OBJ }, END,
};
static const struct field f_hsel[] = {
	{ "namespaces", S_LIST, false, NULL, S_STR, NULL, 1, 0, true },
	{ "excludeNamespaces", S_LIST, false, NULL, S_STR, NULL, 1, 0, true },
	{ "pods", S_OBJ, false, f_pods },
	{ "containers", S_LIST, false, NULL, S_STR, NULL, 1, 0, true },
	{ "hostProcesses", S_BOOL }, END,
};
static const struct field f_percat[] = {
	{ "bulk_file", S_INT, false, NULL, 0, NULL, 1, 100 },
	{ "bulk_net", S_INT, false, NULL, 0, NULL, 1, 100 },
	{ "bulk_file_meta", S_INT, false, NULL, 0, NULL, 1, 100 }, END,
};
static const struct field f_sampling[] = {
	{ "percent", S_INT, false, NULL, 0, NULL, 1, 100 },
	{ "perCategory", S_OBJ, false, f_percat },
	{ "maxEventsPerSecond", S_INT, false, NULL, 0, NULL, 0, 0x7fffffffL }, END,
};
static const struct field f_hook[] = {
	{ "categories", S_LIST, true, NULL, S_STR, cats, 1, 0, true },
	{ "syscalls", S_LIST, false, NULL, S_STR, NULL, 1, 0, true },
	{ "selector", S_OBJ, false, f_hsel },
	{ "sampling", S_OBJ, false, f_sampling }, END,
};

static const struct field f_bsel[] = {
	{ "podLabels", S_MAPSTR }, { "container", S_STR }, { "image", S_STR }, END,
};
static const struct field f_learning[] = {
	{ "window", S_STR, true }, { "minSamples", S_INT, false, NULL, 0, NULL, 1, 0x7fffffffL },
	{ "minPods", S_INT, false, NULL, 0, NULL, 1, 0x7fffffffL }, END,
};
static const struct field f_files[] = {
	{ "enabled", S_BOOL }, { "modes", S_LIST, false, NULL, S_STR, modes, 1, 0, true }, END,
};
static const struct field f_net[] = { { "egress", S_BOOL }, { "ingress", S_BOOL }, { "listen", S_BOOL }, END };
static const struct field f_learn[] = {
	{ "executables", S_BOOL }, { "files", S_OBJ, false, f_files }, { "network", S_OBJ, false, f_net },
	{ "dns", S_BOOL }, { "syscalls", S_BOOL }, { "capabilities", S_BOOL }, { "uids", S_BOOL }, END,
};
static const struct field f_after[] = {
	{ "emit", S_STR, false, NULL, 0, emits }, { "generateContract", S_BOOL },
	{ "contractMode", S_STR, false, NULL, 0, cmodes }, END,
};
static const struct field f_base[] = {
	{ "selector", S_OBJ, true, f_bsel }, { "learning", S_OBJ, true, f_learning },
	{ "learn", S_OBJ, false, f_learn }, { "afterLearning", S_OBJ, false, f_after },
	{ "relearnEvery", S_STR }, END,
};

static const struct field f_meta[] = {
	{ "name", S_STR, true }, { "namespace", S_STR }, { "labels", S_MAPSTR }, { "annotations", S_MAPSTR },
	{ "generation", S_INT, false, NULL, 0, NULL, 0, 0x7fffffffL }, END,
};

/* ---- objects in force ----------------------------------------------------- */

struct obj {
	enum kl_cp_kind kind;
	char ns[64];
	char name[254];
	int line;
	char *rule;             /* HookSubscription: its filter rule text */
};

struct cpfile {
	char name[256];
	struct timespec mtime;
	off_t size;
	ino_t ino;
	bool seen;
	bool bad;               /* last read was refused */
	struct obj *objs;       /* last good content */
	size_t nobjs;
};

struct kl_cp {
	char dir[4096];
	kl_cp_log_fn log;
	void *ctx;
	struct cpfile *files;
	size_t nfiles;
};

__attribute__((format(printf, 3, 4)))
static void cplog(const struct kl_cp *cp, const char *level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!cp || !cp->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cp->log(level, msg, cp->ctx);
}

/* ---- validation ------------------------------------------------------------ */

struct vctx {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t n;
};

__attribute__((format(printf, 4, 5)))
static int verr(struct vctx *v, const yaml_node_t *at, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(v->err, v->n, "%s:%zu:%zu: %s: %s", v->file, at->start_mark.line + 1, at->start_mark.column + 1,
		 path[0] ? path : "(document)", msg);
	return -EINVAL;
}

static bool plain(const yaml_node_t *n)
{
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool looks_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static bool looks_bool(const char *s)
{
	return !strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "True") || !strcmp(s, "False") ||
	       !strcmp(s, "TRUE") || !strcmp(s, "FALSE");
}

static bool looks_null(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *type_name(enum st t)
{
	static const char *const names[] = { "a string", "an integer", "a boolean", "a mapping", "a list",
					     "a mapping of strings", "anything" };
	return names[t];
}

static int check_value(struct vctx *v, yaml_node_t *n, const char *path, enum st type, const struct field *f);

static int check_scalar(struct vctx *v, yaml_node_t *n, const char *path, enum st type, const struct field *f)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE)
		return verr(v, n, path, "expected %s", type_name(type));
	s = sval(n);
	switch (type) {
	case S_STR:
		if (plain(n) && (looks_int(s) || looks_bool(s) || looks_null(s)))
			return verr(v, n, path, "expected a string, got '%s' (quote it)", s);
		if (f && f->enums) {
			for (const char *const *e = f->enums; *e; e++)
				if (!strcmp(*e, s))
					return 0;
			char list[256] = "";
			for (const char *const *e = f->enums; *e; e++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", e == f->enums ? "" : ", ",
					 *e);
			return verr(v, n, path, "must be one of %s, got '%s'", list, s);
		}
		return 0;
	case S_INT: {
		if (!plain(n) || !looks_int(s))
			return verr(v, n, path, "expected an integer, got '%s'", s);
		errno = 0;
		long x = strtol(s, NULL, 10);
		if (errno || (f && (x < f->min || (f->max && x > f->max)))) {
			if (f && f->max)
				return verr(v, n, path, "must be %ld..%ld, got %s", f->min, f->max, s);
			return verr(v, n, path, "must be >= %ld, got %s", f ? f->min : 0, s);
		}
		return 0;
	}
	case S_BOOL:
		if (!plain(n) || !looks_bool(s))
			return verr(v, n, path, "expected true or false, got '%s'", s);
		return 0;
	default:
		return verr(v, n, path, "expected %s", type_name(type));
	}
}

static int check_obj(struct vctx *v, yaml_node_t *n, const char *path, const struct field *fields)
{
	char sub[512];

	if (n->type != YAML_MAPPING_NODE)
		return verr(v, n, path, "expected a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(v->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(v->doc, p->value);
		const struct field *f;

		if (!k || !val || k->type != YAML_SCALAR_NODE)
			return verr(v, n, path, "keys must be plain strings");
		if (snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", sval(k)) >= (int)sizeof(sub))
			sub[sizeof(sub) - 1] = 0;
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *k2 = yaml_document_get_node(v->doc, q->key);
			if (k2 && k2->type == YAML_SCALAR_NODE && !strcmp(sval(k2), sval(k)))
				return verr(v, k, sub, "duplicate key");
		}
		for (f = fields; f->name && strcmp(f->name, sval(k)); f++)
			;
		if (!f->name)
			return verr(v, k, sub, "unknown field");
		int e = check_value(v, val, sub, f->type, f);
		if (e)
			return e;
	}
	for (const struct field *f = fields; f->name; f++) {
		bool have = false;

		if (!f->required)
			continue;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && !have; p++) {
			yaml_node_t *k = yaml_document_get_node(v->doc, p->key);
			have = k && k->type == YAML_SCALAR_NODE && !strcmp(sval(k), f->name);
		}
		if (!have) {
			if (snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", f->name) >= (int)sizeof(sub))
				sub[sizeof(sub) - 1] = 0;
			return verr(v, n, sub, "required field missing");
		}
	}
	return 0;
}

static int check_value(struct vctx *v, yaml_node_t *n, const char *path, enum st type, const struct field *f)
{
	char sub[512];
	int e;

	switch (type) {
	case S_ANY:
		return 0;
	case S_OBJ:
		return check_obj(v, n, path, f->sub);
	case S_MAPSTR:
		if (n->type != YAML_MAPPING_NODE)
			return verr(v, n, path, "expected a mapping of strings");
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(v->doc, p->key);
			yaml_node_t *val = yaml_document_get_node(v->doc, p->value);
			if (!k || !val || k->type != YAML_SCALAR_NODE)
				return verr(v, n, path, "keys must be plain strings");
			if (snprintf(sub, sizeof(sub), "%s.%s", path, sval(k)) >= (int)sizeof(sub))
				sub[sizeof(sub) - 1] = 0;
			e = check_scalar(v, val, sub, S_STR, NULL);
			if (e)
				return e;
		}
		return 0;
	case S_LIST: {
		size_t cnt = 0;

		if (n->type != YAML_SEQUENCE_NODE)
			return verr(v, n, path, "expected a list");
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, cnt++) {
			yaml_node_t *in = yaml_document_get_node(v->doc, *it);
			if (snprintf(sub, sizeof(sub), "%s[%zu]", path, cnt) >= (int)sizeof(sub))
				sub[sizeof(sub) - 1] = 0;
			if (!in)
				return verr(v, n, sub, "missing item");
			if (f->item == S_OBJ)
				e = check_obj(v, in, sub, f->sub);
			else
				e = check_scalar(v, in, sub, f->item, f);
			if (e)
				return e;
			if (f->unique && in->type == YAML_SCALAR_NODE)
				for (yaml_node_item_t *jt = n->data.sequence.items.start; jt < it; jt++) {
					yaml_node_t *jn = yaml_document_get_node(v->doc, *jt);
					if (jn && jn->type == YAML_SCALAR_NODE && !strcmp(sval(jn), sval(in)))
						return verr(v, in, sub, "duplicate '%s'", sval(in));
				}
		}
		if ((long)cnt < f->min)
			return verr(v, n, path, "needs at least %ld item%s", f->min, f->min == 1 ? "" : "s");
		return 0;
	}
	default:
		return check_scalar(v, n, path, type, f);
	}
}

static yaml_node_t *get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp(sval(k), key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* ---- HookSubscription → filter rule ------------------------------------------ */

struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 512;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A scalar list as "a,b,c". */
static void sb_list(struct sbuf *b, yaml_document_t *doc, yaml_node_t *seq)
{
	size_t i = 0;

	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, i++)
		sb_printf(b, "%s%s", i ? "," : "", sval(yaml_document_get_node(doc, *it)));
}

/* Values that go into the line-based filter file must not break it. */
static int check_filter_words(struct vctx *v, yaml_document_t *doc, yaml_node_t *n, const char *path)
{
	if (!n)
		return 0;
	if (n->type == YAML_SCALAR_NODE) {
		for (const char *s = sval(n); *s; s++)
			if (isspace((unsigned char)*s) || *s == ',' || *s == '#')
				return verr(v, n, path, "blanks, commas and '#' are not allowed here");
		return 0;
	}
	if (n->type == YAML_SEQUENCE_NODE)
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			int e = check_filter_words(v, doc, yaml_document_get_node(doc, *it), path);
			if (e)
				return e;
		}
	if (n->type == YAML_MAPPING_NODE)
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			int e = check_filter_words(v, doc, yaml_document_get_node(doc, p->key), path);
			if (!e)
				e = check_filter_words(v, doc, yaml_document_get_node(doc, p->value), path);
			if (e)
				return e;
		}
	return 0;
}

static int hook_rule(struct vctx *v, yaml_node_t *root, const char *ns, const char *name, char **out)
{
	yaml_document_t *doc = v->doc;
	yaml_node_t *spec = get(doc, root, "spec"), *sel = get(doc, spec, "selector");
	yaml_node_t *samp = get(doc, spec, "sampling"), *x;
	struct sbuf b = { 0 };
	bool terms = false;
	int e;

	if ((e = check_filter_words(v, doc, get(doc, spec, "syscalls"), "spec.syscalls")) ||
	    (e = check_filter_words(v, doc, sel, "spec.selector")))
		return e;
	sb_printf(&b, "rule %s/%s\n  categories ", ns, name);
	sb_list(&b, doc, get(doc, spec, "categories"));
	sb_printf(&b, "\n");
	if ((x = get(doc, spec, "syscalls"))) {
		sb_printf(&b, "  syscalls ");
		sb_list(&b, doc, x);
		sb_printf(&b, "\n");
	}
	if (sel) {
		static const struct { const char *key, *dir; } lists[] = {
			{ "namespaces", "namespace" }, { "excludeNamespaces", "exclude-namespace" },
			{ "containers", "container" },
		};
		for (size_t i = 0; i < 3; i++)
			if ((x = get(doc, sel, lists[i].key)))
				for (yaml_node_item_t *it = x->data.sequence.items.start; it < x->data.sequence.items.top;
				     it++) {
					sb_printf(&b, "  %s %s\n", lists[i].dir, sval(yaml_document_get_node(doc, *it)));
					terms = true;
				}
		yaml_node_t *pods = get(doc, sel, "pods");
		if ((x = get(doc, pods, "matchLabels")))
			for (yaml_node_pair_t *p = x->data.mapping.pairs.start; p < x->data.mapping.pairs.top; p++) {
				sb_printf(&b, "  label %s=%s\n", sval(yaml_document_get_node(doc, p->key)),
					  sval(yaml_document_get_node(doc, p->value)));
				terms = true;
			}
		if ((x = get(doc, pods, "matchExpressions")))
			for (yaml_node_item_t *it = x->data.sequence.items.start; it < x->data.sequence.items.top; it++) {
				yaml_node_t *ex = yaml_document_get_node(doc, *it), *vals = get(doc, ex, "values");
				sb_printf(&b, "  expr %s %s ", sval(get(doc, ex, "key")), sval(get(doc, ex, "operator")));
				if (vals)
					sb_list(&b, doc, vals);
				sb_printf(&b, "\n");
				terms = true;
			}
		x = get(doc, sel, "hostProcesses");
		if (x && !strcasecmp(sval(x), "true"))
			sb_printf(&b, "  select host\n");
		if (!terms)
			sb_printf(&b, "  select containers\n");
	}
	if (samp) {
		static const char *const sampled[] = { "bulk_file", "bulk_net", "bulk_file_meta" };
		yaml_node_t *pct = get(doc, samp, "percent"), *per = get(doc, samp, "perCategory");
		for (size_t i = 0; i < 3; i++) {
			yaml_node_t *c = get(doc, per, sampled[i]);
			const char *p = c ? sval(c) : pct ? sval(pct) : NULL;
			if (p && strcmp(p, "100"))
				sb_printf(&b, "  sample %s %s\n", sampled[i], p);
		}
	}
	sb_printf(&b, "end\n");
	if (b.oom) {
		free(b.s);
		return -ENOMEM;
	}
	*out = b.s;
	return 0;
}

/* ---- one document ------------------------------------------------------------ */

#ifdef KL_HAVE_CONTRACTC
/* contractc is the authority on BehaviorContracts: hand it this document's text. */
static int check_contract(struct vctx *v, yaml_document_t *doc, const char *data, size_t len)
{
	size_t start = doc->start_mark.index, end = doc->end_mark.index, line = doc->start_mark.line;
	struct cc_contract *c = NULL;
	struct cc_diag d = { 0 };
	char *buf;
	int rc;

	if (end > len || start > end)
		return -EINVAL;
	/* leading newlines keep contractc's line numbers those of the file */
	buf = malloc(line + (end - start) + 1);
	if (!buf)
		return -ENOMEM;
	memset(buf, '\n', line);
	memcpy(buf + line, data + start, end - start);
	buf[line + end - start] = 0;
	rc = cc_contract_parse(v->file, buf, line + end - start, &c, &d);
	if (rc)
		snprintf(v->err, v->n, "%s", d.n ? d.msgs[0] : "invalid BehaviorContract");
	cc_contract_free(c);
	cc_diag_free(&d);
	free(buf);
	return rc ? -EINVAL : 0;
}
#endif

static int check_doc(struct vctx *v, yaml_node_t *root, const char *data, size_t len, struct obj *o)
{
	static const struct field top[] = {
		{ "apiVersion", S_STR, true }, { "kind", S_STR, true }, { "metadata", S_OBJ, true, f_meta },
		{ "spec", S_ANY, true }, { "status", S_ANY }, END,
	};
	static const struct field *const specs[KL_CP__KINDS] = { f_hook, f_base, NULL, NULL };
	yaml_node_t *api, *kind, *meta, *spec, *x;
	int e, k;

	if (root->type != YAML_MAPPING_NODE)
		return verr(v, root, "", "expected a mapping (a Kubernetes-style object)");
	e = check_obj(v, root, "", top);
	if (e)
		return e;
	api = get(v->doc, root, "apiVersion");
	if (strcmp(sval(api), "kloudlens.io/v1"))
		return verr(v, api, "apiVersion", "must be kloudlens.io/v1, got '%s'", sval(api));
	kind = get(v->doc, root, "kind");
	for (k = 0; k < KL_CP__KINDS && strcmp(kl_cp_kind_names[k], sval(kind)); k++)
		;
	if (k == KL_CP__KINDS)
		return verr(v, kind, "kind", "must be HookSubscription, BaselinePolicy, BehaviorContract or "
				     "NodeCapabilities, got '%s'", sval(kind));
	meta = get(v->doc, root, "metadata");
	spec = get(v->doc, root, "spec");
	memset(o, 0, sizeof(*o));
	o->kind = (enum kl_cp_kind)k;
	o->line = (int)root->start_mark.line + 1;
	snprintf(o->name, sizeof(o->name), "%s", sval(get(v->doc, meta, "name")));
	x = get(v->doc, meta, "namespace");
	if (x && (k == KL_CP_HOOK || k == KL_CP_NODECAPS))
		return verr(v, x, "metadata.namespace", "%s is cluster-scoped: no namespace", kl_cp_kind_names[k]);
	snprintf(o->ns, sizeof(o->ns), "%s", x ? sval(x) : k == KL_CP_HOOK || k == KL_CP_NODECAPS ? "" : "default");
	if (specs[k]) {
		e = check_obj(v, spec, "spec", specs[k]);
		if (e)
			return e;
	} else if (spec->type != YAML_MAPPING_NODE) {
		return verr(v, spec, "spec", "expected a mapping");
	}
	if (k == KL_CP_HOOK)
		return hook_rule(v, root, o->ns[0] ? o->ns : "-", o->name, &o->rule);
#ifdef KL_HAVE_CONTRACTC
	if (k == KL_CP_CONTRACT)
		return check_contract(v, v->doc, data, len);
#else
	(void)data;
	(void)len;
#endif
	return 0;
}

static void objs_free(struct obj *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(o[i].rule);
	free(o);
}

/* Parse every document of @path into @objs. */
static int load_file(const char *path, struct obj **objs, size_t *nobjs, char *err, size_t n)
{
	yaml_parser_t parser;
	struct vctx v = { .file = path, .err = err, .n = n };
	struct obj *list = NULL;
	size_t cnt = 0;
	char *data = NULL;
	size_t len = 0;
	int rc = 0;
	FILE *f;

	*objs = NULL;
	*nobjs = 0;
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return rc;
	}
	/* the whole text too: a contract's document is handed to contractc as text */
	for (;;) {
		char *d = realloc(data, len + 65536 + 1);
		if (!d) {
			rc = -ENOMEM;
			break;
		}
		data = d;
		size_t r = fread(data + len, 1, 65536, f);
		len += r;
		if (r < 65536)
			break;
		if (len > (16u << 20)) {
			snprintf(err, n, "%s: larger than 16 MiB", path);
			rc = -EFBIG;
			break;
		}
	}
	fclose(f);
	if (rc) {
		free(data);
		return rc;
	}
	data[len] = 0;
	if (!yaml_parser_initialize(&parser)) {
		free(data);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		if (!yaml_parser_load(&parser, &doc)) {
			snprintf(err, n, "%s:%zu:%zu: (syntax): %s", path, parser.problem_mark.line + 1,
				 parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML syntax error");
			rc = -EINVAL;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {            /* end of stream */
			yaml_document_delete(&doc);
			break;
		}
		/* an empty document ("---" alone) is allowed, as kubectl does */
		if (root->type == YAML_SCALAR_NODE && looks_null(sval(root)) && plain(root)) {
			yaml_document_delete(&doc);
			continue;
		}
		struct obj *nl = realloc(list, (cnt + 1) * sizeof(*nl));
		if (!nl) {
			yaml_document_delete(&doc);
			rc = -ENOMEM;
			break;
		}
		list = nl;
		/* check_doc() may fail before it fills the object: nothing to free then */
		memset(&list[cnt], 0, sizeof(list[cnt]));
		v.doc = &doc;
		rc = check_doc(&v, root, data, len, &list[cnt]);
		yaml_document_delete(&doc);
		if (rc) {
			free(list[cnt].rule);
			break;
		}
		cnt++;
	}
	yaml_parser_delete(&parser);
	free(data);
	if (rc) {
		objs_free(list, cnt);
		return rc;
	}
	*objs = list;
	*nobjs = cnt;
	return 0;
}

int kl_cp_validate_file(const char *path, char *err, size_t errlen)
{
	struct obj *o;
	size_t n;
	int rc = load_file(path, &o, &n, err, errlen);

	if (rc)
		return rc;
	objs_free(o, n);
	return (int)n;
}

/* ---- the directory ------------------------------------------------------------ */

int kl_cp_new(const char *dir, kl_cp_log_fn log, void *ctx, struct kl_cp **out)
{
	struct kl_cp *cp = calloc(1, sizeof(*cp));

	if (!cp)
		return -ENOMEM;
	snprintf(cp->dir, sizeof(cp->dir), "%s", dir);
	cp->log = log;
	cp->ctx = ctx;
	*out = cp;
	return 0;
}

void kl_cp_free(struct kl_cp *cp)
{
	if (!cp)
		return;
	for (size_t i = 0; i < cp->nfiles; i++)
		objs_free(cp->files[i].objs, cp->files[i].nobjs);
	free(cp->files);
	free(cp);
}

static bool wanted(const char *name)
{
	size_t l = strlen(name);

	if (name[0] == '.' || !strcmp(name, KL_CP_CAPS_FILE))
		return false;
	return (l > 5 && !strcmp(name + l - 5, ".yaml")) || (l > 4 && !strcmp(name + l - 4, ".yml"));
}

/* Another file (in force) already defines kind/ns/name? */
static const char *duplicate(const struct kl_cp *cp, const struct cpfile *self, const struct obj *o)
{
	for (size_t i = 0; i < cp->nfiles; i++) {
		const struct cpfile *f = &cp->files[i];
		if (f == self)
			continue;
		for (size_t j = 0; j < f->nobjs; j++)
			if (f->objs[j].kind == o->kind && !strcmp(f->objs[j].ns, o->ns) &&
			    !strcmp(f->objs[j].name, o->name))
				return f->name;
	}
	return NULL;
}

static int reload_file(struct kl_cp *cp, struct cpfile *f, bool *changed)
{
	char path[4400], err[1024] = "";
	struct obj *objs;
	size_t n, hooks = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", cp->dir, f->name);
	rc = load_file(path, &objs, &n, err, sizeof(err));
	for (size_t i = 0; !rc && i < n; i++) {
		const char *other = duplicate(cp, f, &objs[i]);
		for (size_t j = 0; j < i && !other; j++)
			if (objs[j].kind == objs[i].kind && !strcmp(objs[j].ns, objs[i].ns) &&
			    !strcmp(objs[j].name, objs[i].name))
				other = f->name;
		if (other) {
			if (snprintf(err, sizeof(err), "%s:%d:1: metadata.name: %s %s%s%s is also defined in %s", path,
				     objs[i].line, kl_cp_kind_names[objs[i].kind], objs[i].ns, objs[i].ns[0] ? "/" : "",
				     objs[i].name, other) >= (int)sizeof(err))
				err[sizeof(err) - 1] = 0;
			rc = -EINVAL;
		}
	}
	if (rc) {
		objs_free(objs, n);
		f->bad = true;
		cplog(cp, "error", "control plane: rejected %s%s", err,
		      f->nobjs ? " (its previous content stays in force)" : " (nothing from it is in force)");
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		hooks += objs[i].kind == KL_CP_HOOK;
		if (objs[i].kind == KL_CP_NODECAPS)
			cplog(cp, "warn", "control plane: %s:%d: NodeCapabilities %s is written by the agent, not read",
			      path, objs[i].line, objs[i].name);
	}
	objs_free(f->objs, f->nobjs);
	f->objs = objs;
	f->nobjs = n;
	f->bad = false;
	*changed = true;
	cplog(cp, "info", "control plane: loaded %s (%zu object%s, %zu HookSubscription%s)", path, n,
	      n == 1 ? "" : "s", hooks, hooks == 1 ? "" : "s");
	return 0;
}

int kl_cp_rescan(struct kl_cp *cp, bool *changed)
{
	DIR *d = opendir(cp->dir);
	struct dirent *de;

	*changed = false;
	if (!d)
		return -errno;
	for (size_t i = 0; i < cp->nfiles; i++)
		cp->files[i].seen = false;
	while ((de = readdir(d))) {
		char path[4400];
		struct stat st;
		struct cpfile *f = NULL;

		if (!wanted(de->d_name) || strlen(de->d_name) >= sizeof(f->name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", cp->dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		for (size_t i = 0; i < cp->nfiles; i++)
			if (!strcmp(cp->files[i].name, de->d_name))
				f = &cp->files[i];
		if (!f) {
			struct cpfile *nf = realloc(cp->files, (cp->nfiles + 1) * sizeof(*nf));
			if (!nf) {
				closedir(d);
				return -ENOMEM;
			}
			cp->files = nf;
			f = &cp->files[cp->nfiles++];
			memset(f, 0, sizeof(*f));
			snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		} else if (f->mtime.tv_sec == st.st_mtim.tv_sec && f->mtime.tv_nsec == st.st_mtim.tv_nsec &&
			   f->size == st.st_size && f->ino == st.st_ino) {
			f->seen = true;
			continue;
		}
		f->seen = true;
		f->mtime = st.st_mtim;
		f->size = st.st_size;
		f->ino = st.st_ino;
		reload_file(cp, f, changed);
	}
	closedir(d);
	for (size_t i = 0; i < cp->nfiles;) {
		if (cp->files[i].seen) {
			i++;
			continue;
		}
		cplog(cp, "info", "control plane: %s/%s removed (%zu object%s dropped)", cp->dir, cp->files[i].name,
		      cp->files[i].nobjs, cp->files[i].nobjs == 1 ? "" : "s");
		if (cp->files[i].nobjs)
			*changed = true;
		objs_free(cp->files[i].objs, cp->files[i].nobjs);
		cp->files[i] = cp->files[--cp->nfiles];
	}
	return 0;
}

size_t kl_cp_count(const struct kl_cp *cp, enum kl_cp_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < cp->nfiles; i++)
		for (size_t j = 0; j < cp->files[i].nobjs; j++)
			n += cp->files[i].objs[j].kind == kind;
	return n;
}

size_t kl_cp_rejected(const struct kl_cp *cp)
{
	size_t n = 0;

	for (size_t i = 0; i < cp->nfiles; i++)
		n += cp->files[i].bad;
	return n;
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = *(const struct obj *const *)a, *y = *(const struct obj *const *)b;
	return strcmp(x->name, y->name);
}

char *kl_cp_filter_text(const struct kl_cp *cp, uint64_t gen)
{
	struct sbuf b = { 0 };
	const struct obj **hooks = NULL;
	size_t n = 0, cap = 0;

	sb_printf(&b, "kloudlens-filter 1\n# written by kloudlens from the HookSubscriptions in %s\ngeneration %llu\n",
		  cp->dir, (unsigned long long)gen);
	for (size_t i = 0; i < cp->nfiles; i++)
		for (size_t j = 0; j < cp->files[i].nobjs; j++) {
			if (cp->files[i].objs[j].kind != KL_CP_HOOK)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				const struct obj **nh = realloc(hooks, cap * sizeof(*nh));
				if (!nh) {
					free(hooks);
					free(b.s);
					return NULL;
				}
				hooks = nh;
			}
			hooks[n++] = &cp->files[i].objs[j];
		}
	/* by name: the same objects give the same file whatever the directory order */
	if (n)
		qsort(hooks, n, sizeof(*hooks), cmp_obj);
	for (size_t i = 0; i < n; i++) {
		if (i == 8) {
			cplog(cp, "error", "control plane: more than 8 HookSubscriptions; %s and later ones are not "
			      "applied (the collector has 8 rule slots)", hooks[i]->name);
			break;
		}
		sb_printf(&b, "%s", hooks[i]->rule);
	}
	free(hooks);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

int kl_cp_write_atomic(const char *path, const char *text)
{
	char tmp[4400];
	size_t len = strlen(text);
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

char *kl_cp_nodecaps_yaml(const char *node, const char *probe_json, const char *version)
{
	struct sbuf b = { 0 };
	char ts[40];
	time_t now = time(NULL);
	struct tm tm;
	size_t l = strlen(probe_json);

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	while (l && (probe_json[l - 1] == '\n' || probe_json[l - 1] == ' '))
		l--;
	sb_printf(&b,
		  "# Written by kloudlens from `kl-collector --probe --json` (spec.probe, verbatim:\n"
		  "# JSON is YAML). Not read back: edits are overwritten at the next start.\n"
		  "apiVersion: kloudlens.io/v1\nkind: NodeCapabilities\nmetadata:\n  name: \"%s\"\n"
		  "spec:\n  nodeName: \"%s\"\n  probedAt: '%s'\n  agentVersion: %s\n  probe: %.*s\n",
		  node, node, ts, version, (int)l, probe_json);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
