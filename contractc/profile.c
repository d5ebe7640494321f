/* SPDX-License-Identifier: Apache-2.0 */
/* The observed Profile (docs/profile.md): JSON as written by kl-baselined;
 * YAML is accepted too since the loader reads both. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

static void obs_free(struct cc_obs *o)
{
	free(o->key);
	free(o->mode);
	evidence_free(&o->ev);
	free(o->addr);
	free(o->dns);
	free(o->ns);
	labels_free(&o->labels);
	for (size_t i = 0; i < o->nargs; i++)
		free(o->args[i]);
	free(o->args);
}

static void obs_list_free(struct cc_obs_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		obs_free(&l->v[i]);
	free(l->v);
}

void cc_profile_free(struct cc_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nw; i++) {
		struct cc_workload *w = &p->w[i];
		free(w->ns);
		free(w->container);
		free(w->image);
		labels_free(&w->pod_labels);
		free(w->w_start);
		free(w->w_end);
		obs_list_free(&w->exec);
		obs_list_free(&w->files);
		obs_list_free(&w->egress);
		obs_list_free(&w->ingress);
		obs_list_free(&w->listen);
		obs_list_free(&w->dns);
		obs_list_free(&w->syscalls);
		obs_list_free(&w->caps);
		obs_list_free(&w->uids);
	}
	free(p->w);
	free(p->file);
	free(p->id);
	free(p->generated_at);
	free(p->node);
	free(p);
}

enum obs_kind { OK_EXEC, OK_FILE, OK_CONN, OK_LISTEN, OK_DNS, OK_SYSCALL, OK_CAP, OK_UID };

static bool inline_evidence(struct pctx *p, const struct cc_node *n, const char *path,
			    struct cc_evidence *e)
{
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];
	int64_t cnt;
	bool ok = true;

	e->has = true;
	v = map_get(n, "count");
	path_key(kp, path, "count");
	if (req(p, n, v, path, "count") && get_int(p, v, kp, 1, INT64_MAX, &cnt))
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
	if (e->first && e->last && strcmp(e->first, e->last) > 0) {
		path_key(kp, path, "firstSeen");
		perr(p, map_get(n, "firstSeen"), kp, "is after lastSeen");
		ok = false;
	}
	return ok;
}

static bool parse_obs(struct pctx *p, const struct cc_node *n, const char *path,
		      enum obs_kind kind, struct cc_obs *o)
{
	static const char *const k_exec[] = { "path", "argv", "count", "firstSeen", "lastSeen", NULL };
	static const char *const k_file[] = { "path", "mode", "count", "firstSeen", "lastSeen", NULL };
	static const char *const k_conn[] = { "addr", "port", "protocol", "dns", "peer",
					      "count", "firstSeen", "lastSeen", NULL };
	static const char *const k_listen[] = { "port", "protocol", "count", "firstSeen",
						"lastSeen", NULL };
	static const char *const k_name[] = { "name", "count", "firstSeen", "lastSeen", NULL };
	static const char *const k_uid[] = { "uid", "count", "firstSeen", "lastSeen", NULL };
	static const char *const k_peer[] = { "namespace", "podLabels", NULL };
	const char *const *keys[] = { k_exec, k_file, k_conn, k_listen, k_name, k_name, k_name, k_uid };
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];
	bool ok = true;
	int64_t x;

	if (!map_check(p, n, path, keys[kind]))
		return false;
	ok &= inline_evidence(p, n, path, &o->ev);
	switch (kind) {
	case OK_EXEC:
	case OK_FILE:
		v = map_get(n, "path");
		path_key(kp, path, "path");
		if (!req(p, n, v, path, "path") || !get_str(p, v, kp, &o->key))
			return false;
		if (o->key[0] != '/') {
			perr(p, v, kp, "must be an absolute path");
			ok = false;
		}
		if (kind == OK_FILE) {
			v = map_get(n, "mode");
			path_key(kp, path, "mode");
			if (!req(p, n, v, path, "mode") || !get_str(p, v, kp, &o->mode))
				return false;
			bool bad = !*o->mode;
			for (const char *c = o->mode; *c; c++)
				if (!strchr("rwx", *c) || strchr(c + 1, *c))
					bad = true;
			if (bad) {
				perr(p, v, kp, "must be a combination of r, w and x");
				ok = false;
			}
		} else if ((v = map_get(n, "argv"))) {
			path_key(kp, path, "argv");
			if (!seq_check(p, v, kp))
				return false;
			o->args = calloc(v->n ? v->n : 1, sizeof(char *));
			if (!o->args) {
				p->oom = 1;
				return false;
			}
			for (size_t i = 0; i < v->n; i++) {
				char ip[PATH_MAX_LEN];
				path_idx(ip, kp, i);
				if (v->kids[i]->type != CC_SCALAR) {
					perr(p, v->kids[i], ip, "expected a string");
					ok = false;
					continue;
				}
				o->args[o->nargs] = strdup(v->kids[i]->str);
				if (!o->args[o->nargs]) {
					p->oom = 1;
					return false;
				}
				o->nargs++;
			}
		}
		break;
	case OK_CONN:
	case OK_LISTEN:
		v = map_get(n, "port");
		path_key(kp, path, "port");
		if (!req(p, n, v, path, "port") || !get_int(p, v, kp, 1, 65535, &x))
			return false;
		o->port = (int)x;
		strcpy(o->proto, "TCP");
		if ((v = map_get(n, "protocol"))) {
			path_key(kp, path, "protocol");
			if (v->type != CC_SCALAR ||
			    (strcmp(v->str, "TCP") && strcmp(v->str, "UDP") && strcmp(v->str, "SCTP"))) {
				perr(p, v, kp, "must be TCP, UDP or SCTP");
				ok = false;
			} else {
				snprintf(o->proto, sizeof(o->proto), "%s", v->str);
			}
		}
		if (kind == OK_LISTEN)
			break;
		v = map_get(n, "addr");
		path_key(kp, path, "addr");
		if (!req(p, n, v, path, "addr") || !get_str(p, v, kp, &o->addr))
			return false;
		if (!cc_valid_ip(o->addr)) {
			perr(p, v, kp, "not an IPv4 or IPv6 address");
			ok = false;
		}
		if ((v = map_get(n, "dns"))) {
			path_key(kp, path, "dns");
			if (get_str(p, v, kp, &o->dns) && !cc_valid_dns(o->dns, false)) {
				perr(p, v, kp, "not a DNS name");
				ok = false;
			}
		}
		if ((v = map_get(n, "peer"))) {
			const struct cc_node *w;
			path_key(kp, path, "peer");
			if (map_check(p, v, kp, k_peer)) {
				char sp[PATH_MAX_LEN];
				if ((w = map_get(v, "namespace"))) {
					path_key(sp, kp, "namespace");
					o->has_ns = get_str(p, w, sp, &o->ns);
					ok &= o->has_ns;
				}
				if ((w = map_get(v, "podLabels"))) {
					path_key(sp, kp, "podLabels");
					ok &= get_labels(p, w, sp, &o->labels);
				}
			} else {
				ok = false;
			}
		}
		break;
	case OK_DNS:
	case OK_SYSCALL:
	case OK_CAP:
		v = map_get(n, "name");
		path_key(kp, path, "name");
		if (!req(p, n, v, path, "name") || !get_str(p, v, kp, &o->key))
			return false;
		if (kind == OK_DNS && !cc_valid_dns(o->key, false)) {
			perr(p, v, kp, "not a DNS name");
			ok = false;
		} else if (kind == OK_SYSCALL && !cc_syscall_known(o->key)) {
			perr(p, v, kp, "unknown syscall \"%s\"", o->key);
			ok = false;
		} else if (kind == OK_CAP && !cc_capability_known(o->key)) {
			perr(p, v, kp, "unknown capability \"%s\" (upper case, no CAP_ prefix)", o->key);
			ok = false;
		}
		break;
	case OK_UID:
		v = map_get(n, "uid");
		path_key(kp, path, "uid");
		if (!req(p, n, v, path, "uid") || !get_int(p, v, kp, 0, 4294967294LL, &x))
			return false;
		if (asprintf(&o->key, "%lld", (long long)x) < 0) {
			o->key = NULL;
			p->oom = 1;
			return false;
		}
		break;
	}
	return ok;
}

static void parse_obs_list(struct pctx *p, const struct cc_node *n, const char *path,
			   enum obs_kind kind, struct cc_obs_list *l)
{
	if (!seq_check(p, n, path))
		return;
	l->v = calloc(n->n ? n->n : 1, sizeof(*l->v));
	if (!l->v) {
		p->oom = 1;
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		char ip[PATH_MAX_LEN];
		path_idx(ip, path, i);
		struct cc_obs *o = &l->v[l->n];
		if (!parse_obs(p, n->kids[i], ip, kind, o)) {
			obs_free(o);
			memset(o, 0, sizeof(*o));
			continue;
		}
		l->n++;
	}
}

static void parse_workload(struct pctx *p, const struct cc_node *n, const char *path,
			   struct cc_workload *w)
{
	static const char *const keys[] = { "selector", "window", "samples", "executables",
					    "files", "network", "dns", "syscalls",
					    "capabilities", "uids", "baseline", NULL };
	static const char *const selk[] = { "namespace", "podLabels", "container", "image", NULL };
	static const char *const wink[] = { "start", "end", NULL };
	static const char *const samk[] = { "events", "pods", "containers", NULL };
	static const char *const netk[] = { "egress", "ingress", "listen", NULL };
	const struct cc_node *v, *x;
	char kp[PATH_MAX_LEN], sp[PATH_MAX_LEN];

	w->s_events = w->s_pods = w->s_containers = -1;
	if (!map_check(p, n, path, keys))
		return;
	v = map_get(n, "selector");
	path_key(kp, path, "selector");
	if (req(p, n, v, path, "selector") && map_check(p, v, kp, selk)) {
		if ((x = map_get(v, "namespace"))) {
			path_key(sp, kp, "namespace");
			get_str(p, x, sp, &w->ns);
		}
		if ((x = map_get(v, "podLabels"))) {
			path_key(sp, kp, "podLabels");
			get_labels(p, x, sp, &w->pod_labels);
		}
		if ((x = map_get(v, "container"))) {
			path_key(sp, kp, "container");
			get_str(p, x, sp, &w->container);
		}
		if ((x = map_get(v, "image"))) {
			path_key(sp, kp, "image");
			get_str(p, x, sp, &w->image);
		}
	}
	v = map_get(n, "window");
	path_key(kp, path, "window");
	if (req(p, n, v, path, "window") && map_check(p, v, kp, wink)) {
		x = map_get(v, "start");
		path_key(sp, kp, "start");
		if (req(p, v, x, kp, "start"))
			get_timestamp(p, x, sp, &w->w_start);
		x = map_get(v, "end");
		path_key(sp, kp, "end");
		if (req(p, v, x, kp, "end"))
			get_timestamp(p, x, sp, &w->w_end);
		if (w->w_start && w->w_end && strcmp(w->w_start, w->w_end) > 0) {
			path_key(sp, kp, "start");
			perr(p, map_get(v, "start"), sp, "is after window.end");
		}
	}
	v = map_get(n, "samples");
	path_key(kp, path, "samples");
	if (req(p, n, v, path, "samples") && map_check(p, v, kp, samk)) {
		x = map_get(v, "events");
		path_key(sp, kp, "events");
		if (req(p, v, x, kp, "events"))
			get_int(p, x, sp, 0, INT64_MAX, &w->s_events);
		if ((x = map_get(v, "pods"))) {
			path_key(sp, kp, "pods");
			get_int(p, x, sp, 0, INT64_MAX, &w->s_pods);
		}
		if ((x = map_get(v, "containers"))) {
			path_key(sp, kp, "containers");
			get_int(p, x, sp, 0, INT64_MAX, &w->s_containers);
		}
	}
	/* kl-baselined's detection state (docs/baseline.md): not contractc's to read */
	if ((v = map_get(n, "baseline")) && v->type != CC_MAP) {
		path_key(kp, path, "baseline");
		perr(p, v, kp, "expected a mapping");
	}
#define LIST(key, kind, field)                                   \
	if ((v = map_get(n, key))) {                             \
		path_key(kp, path, key);                         \
		parse_obs_list(p, v, kp, kind, &w->field);       \
	}
	LIST("executables", OK_EXEC, exec)
	LIST("files", OK_FILE, files)
	LIST("dns", OK_DNS, dns)
	LIST("syscalls", OK_SYSCALL, syscalls)
	LIST("capabilities", OK_CAP, caps)
	LIST("uids", OK_UID, uids)
#undef LIST
	if ((v = map_get(n, "network"))) {
		path_key(kp, path, "network");
		if (map_check(p, v, kp, netk)) {
			if ((x = map_get(v, "egress"))) {
				path_key(sp, kp, "egress");
				parse_obs_list(p, x, sp, OK_CONN, &w->egress);
			}
			if ((x = map_get(v, "ingress"))) {
				path_key(sp, kp, "ingress");
				parse_obs_list(p, x, sp, OK_CONN, &w->ingress);
			}
			if ((x = map_get(v, "listen"))) {
				path_key(sp, kp, "listen");
				parse_obs_list(p, x, sp, OK_LISTEN, &w->listen);
			}
		}
	}
}

int cc_profile_parse(const char *file, const char *data, size_t len, struct cc_profile **out,
		     struct cc_diag *d)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "workloads", NULL };
	static const char *const mkeys[] = { "id", "generatedAt", "node", NULL };
	struct pctx p = { .file = file, .d = d };
	struct cc_node *root = NULL;
	struct cc_profile *pr;
	const struct cc_node *v, *m, *x;
	char *s = NULL;
	int r;

	*out = NULL;
	r = cc_yaml_load(file, data, len, &root, d);
	if (r)
		return r;
	pr = calloc(1, sizeof(*pr));
	if (!pr) {
		cc_node_free(root);
		return -ENOMEM;
	}
	pr->file = strdup(file);
	if (!map_check(&p, root, "", keys))
		goto done;
	v = map_get(root, "apiVersion");
	if (req(&p, root, v, "", "apiVersion") && get_str(&p, v, "apiVersion", &s) &&
	    strcmp(s, "kloudlens.io/v1"))
		perr(&p, v, "apiVersion", "must be kloudlens.io/v1");
	free(s);
	s = NULL;
	v = map_get(root, "kind");
	if (req(&p, root, v, "", "kind") && get_str(&p, v, "kind", &s) && strcmp(s, "Profile"))
		perr(&p, v, "kind", "must be Profile");
	free(s);
	m = map_get(root, "metadata");
	if (req(&p, root, m, "", "metadata") && map_check(&p, m, "metadata", mkeys)) {
		x = map_get(m, "id");
		if (req(&p, m, x, "metadata", "id"))
			get_str(&p, x, "metadata.id", &pr->id);
		if ((x = map_get(m, "generatedAt")))
			get_timestamp(&p, x, "metadata.generatedAt", &pr->generated_at);
		if ((x = map_get(m, "node")))
			get_str(&p, x, "metadata.node", &pr->node);
	}
	v = map_get(root, "workloads");
	if (req(&p, root, v, "", "workloads") && seq_check(&p, v, "workloads")) {
		if (!v->n)
			perr(&p, v, "workloads", "empty list");
		pr->w = calloc(v->n ? v->n : 1, sizeof(*pr->w));
		if (!pr->w) {
			p.oom = 1;
			goto done;
		}
		for (size_t i = 0; i < v->n; i++) {
			char ip[PATH_MAX_LEN];
			path_idx(ip, "workloads", i);
			parse_workload(&p, v->kids[i], ip, &pr->w[pr->nw++]);
		}
	}
done:
	cc_node_free(root);
	if (p.oom) {
		cc_profile_free(pr);
		return -ENOMEM;
	}
	if (p.errors) {
		cc_profile_free(pr);
		return -EINVAL;
	}
	*out = pr;
	return 0;
}
