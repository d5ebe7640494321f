/* SPDX-License-Identifier: Apache-2.0 */
/* BaselinePolicy YAML (docs/control-plane.md): strict, since no API server prunes here. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "policy.h"

int bl_parse_duration(const char *s, uint64_t *ns)
{
	double total = 0;
	bool any = false;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		char *end;
		double v;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = strtod(s, &end);
		if (end == s)
			return -EINVAL;
		s = end;
		if (!strncmp(s, "ms", 2)) {
			v *= 1e6;
			s += 2;
		} else if (*s == 's') {
			v *= 1e9;
			s++;
		} else if (*s == 'm') {
			v *= 60e9;
			s++;
		} else if (*s == 'h') {
			v *= 3600e9;
			s++;
		} else {
			return -EINVAL;
		}
		total += v;
		any = true;
	}
	if (!any || total > 1e19)
		return -EINVAL;
	*ns = (uint64_t)total;
	return 0;
}

struct pp {
	const char *file;
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	bool failed;
};

__attribute__((format(printf, 4, 5)))
static void perr(struct pp *p, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (p->failed)
		return;
	p->failed = true;
	k = snprintf(p->err, p->errlen, "%s:%zu:%zu: %s: ", p->file, n ? n->start_mark.line + 1 : 0,
		     n ? n->start_mark.column + 1 : 0, path);
	if (k < 0 || (size_t)k >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
	va_end(ap);
}

static yaml_node_t *node(struct pp *p, int id)
{
	return yaml_document_get_node(p->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Check a mapping's keys against @keys; returns false (error set) if not a mapping or a key is unknown. */
static bool map_keys(struct pp *p, yaml_node_t *m, const char *path, const char *const *keys)
{
	if (!m || m->type != YAML_MAPPING_NODE) {
		perr(p, m, path, "expected a mapping");
		return false;
	}
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(p, pr->key);
		const char *ks = scalar(k);
		bool ok = false;
		for (size_t i = 0; ks && keys && keys[i]; i++)
			if (!strcmp(ks, keys[i]))
				ok = true;
		if (!ok && keys) {
			char kp[256];
			snprintf(kp, sizeof(kp), "%s%s%s", path, *path ? "." : "", ks ? ks : "?");
			perr(p, k, kp, "unknown key");
			return false;
		}
	}
	return true;
}

static yaml_node_t *get(struct pp *p, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
		const char *ks = scalar(node(p, pr->key));
		if (ks && !strcmp(ks, key))
			return node(p, pr->value);
	}
	return NULL;
}

static bool get_bool(struct pp *p, yaml_node_t *m, const char *key, const char *path, bool *out)
{
	yaml_node_t *v = get(p, m, key);
	const char *s = scalar(v);
	char kp[256];

	if (!v)
		return true;
	snprintf(kp, sizeof(kp), "%s.%s", path, key);
	if (s && !strcmp(s, "true"))
		*out = true;
	else if (s && !strcmp(s, "false"))
		*out = false;
	else {
		perr(p, v, kp, "must be true or false");
		return false;
	}
	return true;
}

static bool get_str(struct pp *p, yaml_node_t *m, const char *key, const char *path, char *out, size_t cap)
{
	yaml_node_t *v = get(p, m, key);
	const char *s = scalar(v);
	char kp[256];

	if (!v)
		return true;
	snprintf(kp, sizeof(kp), "%s.%s", path, key);
	if (!s) {
		perr(p, v, kp, "must be a string");
		return false;
	}
	if (strlen(s) >= cap) {
		perr(p, v, kp, "longer than %zu bytes", cap - 1);
		return false;
	}
	memcpy(out, s, strlen(s) + 1);
	return true;
}

static bool get_int(struct pp *p, yaml_node_t *m, const char *key, const char *path, uint64_t min,
		    uint64_t *out)
{
	yaml_node_t *v = get(p, m, key);
	const char *s = scalar(v);
	char kp[256], *end;

	if (!v)
		return true;
	snprintf(kp, sizeof(kp), "%s.%s", path, key);
	if (!s || !*s || *s == '-') {
		perr(p, v, kp, "must be an integer >= %llu", (unsigned long long)min);
		return false;
	}
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (*end || errno || x < min) {
		perr(p, v, kp, "must be an integer >= %llu", (unsigned long long)min);
		return false;
	}
	*out = x;
	return true;
}

static bool get_dur(struct pp *p, yaml_node_t *m, const char *key, const char *path, uint64_t *out)
{
	yaml_node_t *v = get(p, m, key);
	char kp[256];

	if (!v)
		return true;
	snprintf(kp, sizeof(kp), "%s.%s", path, key);
	if (bl_parse_duration(scalar(v), out) || !*out) {
		perr(p, v, kp, "must be a duration like 24h, 90m, 1h30m");
		return false;
	}
	return true;
}

static bool parse_spec(struct pp *p, yaml_node_t *spec, struct bl_policy *pol)
{
	static const char *const sk[] = { "selector", "learning", "learn", "afterLearning", "relearnEvery", NULL };
	static const char *const selk[] = { "podLabels", "container", "image", NULL };
	static const char *const lk[] = { "window", "minSamples", "minPods", NULL };
	static const char *const learnk[] = { "executables", "files", "network", "dns", "syscalls",
					      "capabilities", "uids", NULL };
	static const char *const fk[] = { "enabled", "modes", NULL };
	static const char *const nk[] = { "egress", "ingress", "listen", NULL };
	static const char *const ak[] = { "emit", "generateContract", "contractMode", NULL };
	yaml_node_t *sel, *lrn, *learn, *after, *v;
	uint64_t x;

	if (!map_keys(p, spec, "spec", sk))
		return false;
	sel = get(p, spec, "selector");
	if (!sel) {
		perr(p, spec, "spec.selector", "required");
		return false;
	}
	if (!map_keys(p, sel, "spec.selector", selk))
		return false;
	if (!sel->data.mapping.pairs.top || sel->data.mapping.pairs.top == sel->data.mapping.pairs.start) {
		perr(p, sel, "spec.selector", "must not be empty");
		return false;
	}
	if (!get_str(p, sel, "container", "spec.selector", pol->container, sizeof(pol->container)) ||
	    !get_str(p, sel, "image", "spec.selector", pol->image, sizeof(pol->image)))
		return false;
	if ((v = get(p, sel, "podLabels"))) {
		if (!map_keys(p, v, "spec.selector.podLabels", NULL))
			return false;
		for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
			const char *k = scalar(node(p, pr->key)), *val = scalar(node(p, pr->value));
			if (!k || !val) {
				perr(p, node(p, pr->value), "spec.selector.podLabels", "labels are string: string");
				return false;
			}
			int w = snprintf(pol->labels + pol->labels_len, sizeof(pol->labels) - pol->labels_len,
					 "%s=%s", k, val);
			if (w < 0 || (size_t)w >= sizeof(pol->labels) - pol->labels_len) {
				perr(p, v, "spec.selector.podLabels", "too long");
				return false;
			}
			pol->labels_len += (uint32_t)w + 1;
		}
	}
	lrn = get(p, spec, "learning");
	if (!lrn) {
		perr(p, spec, "spec.learning", "required");
		return false;
	}
	if (!map_keys(p, lrn, "spec.learning", lk))
		return false;
	if (!get(p, lrn, "window")) {
		perr(p, lrn, "spec.learning.window", "required");
		return false;
	}
	if (!get_dur(p, lrn, "window", "spec.learning", &pol->window_ns) ||
	    !get_int(p, lrn, "minSamples", "spec.learning", 1, &pol->min_samples))
		return false;
	x = pol->min_pods;
	if (!get_int(p, lrn, "minPods", "spec.learning", 1, &x))
		return false;
	pol->min_pods = x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
	if ((learn = get(p, spec, "learn"))) {
		bool b;
		if (!map_keys(p, learn, "spec.learn", learnk))
			return false;
		pol->learn = BL_LEARN_ALL;
#define FLAG(key, bits)                                                      \
	b = true;                                                            \
	if (!get_bool(p, learn, key, "spec.learn", &b))                      \
		return false;                                                \
	if (!b)                                                              \
		pol->learn &= ~(uint32_t)(bits);
		FLAG("executables", BL_LEARN_EXEC)
		FLAG("dns", BL_LEARN_DNS)
		FLAG("syscalls", BL_LEARN_SYSCALLS)
		FLAG("capabilities", BL_LEARN_CAPS)
		FLAG("uids", BL_LEARN_UIDS)
#undef FLAG
		if ((v = get(p, learn, "files"))) {
			yaml_node_t *modes;
			b = true;
			if (!map_keys(p, v, "spec.learn.files", fk) || !get_bool(p, v, "enabled", "spec.learn.files", &b))
				return false;
			if (!b)
				pol->learn &= ~(uint32_t)(BL_LEARN_FILE_R | BL_LEARN_FILE_W | BL_LEARN_FILE_X);
			if ((modes = get(p, v, "modes"))) {
				uint32_t m = 0;
				if (modes->type != YAML_SEQUENCE_NODE ||
				    modes->data.sequence.items.top == modes->data.sequence.items.start) {
					perr(p, modes, "spec.learn.files.modes", "must be a non-empty list");
					return false;
				}
				for (yaml_node_item_t *it = modes->data.sequence.items.start;
				     it < modes->data.sequence.items.top; it++) {
					yaml_node_t *mn = node(p, *it);
					const char *s = scalar(mn);
					uint32_t bit = !s ? 0 : !strcmp(s, "read") ? BL_LEARN_FILE_R
							      : !strcmp(s, "write") ? BL_LEARN_FILE_W
							      : !strcmp(s, "exec") ? BL_LEARN_FILE_X : 0;
					char kp[64];
					snprintf(kp, sizeof(kp), "spec.learn.files.modes[%d]",
						 (int)(it - modes->data.sequence.items.start));
					if (!bit) {
						perr(p, mn, kp, "must be one of read, write, exec");
						return false;
					}
					if (m & bit) {
						perr(p, mn, kp, "duplicate");
						return false;
					}
					m |= bit;
				}
				if (b)
					pol->learn = (pol->learn & ~(uint32_t)(BL_LEARN_FILE_R | BL_LEARN_FILE_W |
									    BL_LEARN_FILE_X)) | m;
			}
		}
		if ((v = get(p, learn, "network"))) {
			if (!map_keys(p, v, "spec.learn.network", nk))
				return false;
			b = true;
			if (!get_bool(p, v, "egress", "spec.learn.network", &b))
				return false;
			if (!b)
				pol->learn &= ~(uint32_t)BL_LEARN_EGRESS;
			b = true;
			if (!get_bool(p, v, "ingress", "spec.learn.network", &b))
				return false;
			if (!b)
				pol->learn &= ~(uint32_t)BL_LEARN_INGRESS;
			b = true;
			if (!get_bool(p, v, "listen", "spec.learn.network", &b))
				return false;
			if (!b)
				pol->learn &= ~(uint32_t)BL_LEARN_LISTEN;
		}
	}
	if ((after = get(p, spec, "afterLearning"))) {
		char emit[16] = "deviations", mode[16] = "audit";
		if (!map_keys(p, after, "spec.afterLearning", ak) ||
		    !get_str(p, after, "emit", "spec.afterLearning", emit, sizeof(emit)) ||
		    !get_str(p, after, "contractMode", "spec.afterLearning", mode, sizeof(mode)) ||
		    !get_bool(p, after, "generateContract", "spec.afterLearning", &pol->generate_contract))
			return false;
		if (strcmp(emit, "deviations") && strcmp(emit, "none")) {
			perr(p, get(p, after, "emit"), "spec.afterLearning.emit", "must be one of deviations, none");
			return false;
		}
		if (strcmp(mode, "audit") && strcmp(mode, "enforce")) {
			perr(p, get(p, after, "contractMode"), "spec.afterLearning.contractMode",
			     "must be one of audit, enforce");
			return false;
		}
		pol->emit = !strcmp(emit, "deviations");
	}
	return get_dur(p, spec, "relearnEvery", "spec", &pol->relearn_ns);
}

int bl_policy_parse(const char *file, const char *data, size_t len, struct bl_policy **pol,
		    size_t *n, char *err, size_t errlen)
{
	yaml_parser_t parser;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	for (;;) {
		yaml_document_t doc;
		struct pp p = { .file = file, .doc = &doc, .err = err, .errlen = errlen };
		yaml_node_t *root, *v;
		const char *s;

		if (!yaml_parser_load(&parser, &doc)) {
			snprintf(err, errlen, "%s:%zu:%zu: %s", file, parser.problem_mark.line + 1,
				 parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
			r = -EINVAL;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;          /* end of stream */
		}
		s = scalar(get(&p, root, "kind"));
		if (root->type != YAML_MAPPING_NODE || !s || strcmp(s, "BaselinePolicy")) {
			yaml_document_delete(&doc);
			continue;       /* other kinds live in the same directory */
		}
		struct bl_policy pol1;
		static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };
		bl_policy_default(&pol1);
		snprintf(pol1.file, sizeof(pol1.file), "%s", file);
		if (map_keys(&p, root, "", top)) {
			s = scalar(get(&p, root, "apiVersion"));
			if (!s || strcmp(s, "kloudlens.io/v1"))
				perr(&p, get(&p, root, "apiVersion") ? get(&p, root, "apiVersion") : root,
				     "apiVersion", "must be kloudlens.io/v1");
			v = get(&p, root, "metadata");
			const char *name = scalar(get(&p, v, "name"));
			const char *ns = scalar(get(&p, v, "namespace"));
			if (!p.failed && !name)
				perr(&p, v ? v : root, "metadata.name", "required");
			if (!p.failed) {
				snprintf(pol1.ns, sizeof(pol1.ns), "%s", ns ? ns : "");
				snprintf(pol1.name, sizeof(pol1.name), "%s/%s", ns ? ns : "default", name);
				v = get(&p, root, "spec");
				if (!v)
					perr(&p, root, "spec", "required");
				else
					parse_spec(&p, v, &pol1);
			}
		}
		yaml_document_delete(&doc);
		if (p.failed) {
			r = -EINVAL;
			break;
		}
		struct bl_policy *np = realloc(*pol, (*n + 1) * sizeof(*np));
		if (!np) {
			r = -ENOMEM;
			break;
		}
		np[(*n)++] = pol1;
		*pol = np;
	}
	yaml_parser_delete(&parser);
	return r;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bl_policy_load_dir(const char *dir, struct bl_policy **pol, size_t *n, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t nn = 0;
	struct bl_policy *out = NULL;
	size_t nout = 0;
	int r = 0;

	*pol = NULL;
	*n = 0;
	if (!d) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (!(l > 5 && !strcmp(de->d_name + l - 5, ".yaml")) && !(l > 4 && !strcmp(de->d_name + l - 4, ".yml")))
			continue;
		char **nn2 = realloc(names, (nn + 1) * sizeof(*names));
		if (!nn2 || !(nn2[nn] = strdup(de->d_name))) {
			names = nn2 ? nn2 : names;
			r = -ENOMEM;
			break;
		}
		names = nn2;
		nn++;
	}
	closedir(d);
	if (!r)
		qsort(names, nn, sizeof(*names), cmpstr);
	for (size_t i = 0; !r && i < nn; i++) {
		char path[4096];
		FILE *f;
		char *data;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "re");
		if (!f)
			continue;       /* removed between readdir and open */
		data = malloc(1 << 20);
		len = data ? fread(data, 1, 1 << 20, f) : 0;
		fclose(f);
		if (!data) {
			r = -ENOMEM;
			break;
		}
		r = bl_policy_parse(path, data, len, &out, &nout, err, errlen);
		free(data);
	}
	/* kind + namespace + name identify an object: two definitions are an error for both */
	for (size_t i = 0; !r && i < nout; i++)
		for (size_t k = i + 1; k < nout; k++)
			if (!strcmp(out[i].name, out[k].name)) {
				snprintf(err, errlen, "%s: BaselinePolicy %s is also defined in %s", out[k].file,
					 out[k].name, out[i].file);
				r = -EINVAL;
				break;
			}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	if (r) {
		free(out);
		return r;
	}
	*pol = out;
	*n = nout;
	return 0;
}
