/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profile -> least-privilege contract. Literal lists are kept except where
 * they are known to be brittle; each widening is one of the documented
 * generalisations (docs/contractc.md, "Generalisations") and is written into
 * the rule's `generalised` field so it is visible in the output.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

#define EPHEMERAL_LO 32768 /* Linux net.ipv4.ip_local_port_range default */
#define EPHEMERAL_HI 60999

static void ev_merge(struct cc_evidence *dst, const struct cc_evidence *src)
{
	if (!src->has)
		return;
	if (!dst->has) {
		dst->has = true;
		dst->count = src->count;
		dst->first = cc_strdup(src->first);
		dst->last = cc_strdup(src->last);
		return;
	}
	dst->count += src->count;
	if (src->first && (!dst->first || strcmp(src->first, dst->first) < 0)) {
		free(dst->first);
		dst->first = strdup(src->first);
	}
	if (src->last && (!dst->last || strcmp(src->last, dst->last) > 0)) {
		free(dst->last);
		dst->last = strdup(src->last);
	}
}

/* A path component that a program generated rather than named: digits in
 * it and either long (mkstemp-style "nginx-Xa3b9Q") or all digits. */
static bool generated_component(const char *s, size_t n)
{
	size_t digits = 0;
	for (size_t i = 0; i < n; i++)
		if (isdigit((unsigned char)s[i]))
			digits++;
	return digits && (n >= 6 || digits == n);
}

/*
 * Returns a malloc'd generalised path or NULL when the path stays literal;
 * @why receives the rule name.
 */
static char *generalise_path(const char *path, const char **why)
{
	static const char *const tmpdirs[] = { "/tmp/", "/var/tmp/", "/dev/shm/", NULL };
	struct cc_buf b = { 0 };
	bool changed = false;

	if (!strncmp(path, "/proc/", 6) && isdigit((unsigned char)path[6])) {
		const char *e = path + 6;
		while (isdigit((unsigned char)*e))
			e++;
		if (*e == '/' || !*e) {
			cc_buf_put(&b, "/proc/*");
			const char *rest = e;
			/* /proc/<pid>/task/<tid>/... as well */
			if (!strncmp(rest, "/task/", 6) && isdigit((unsigned char)rest[6])) {
				const char *t = rest + 6;
				while (isdigit((unsigned char)*t))
					t++;
				if (*t == '/' || !*t) {
					cc_buf_put(&b, "/task/*");
					rest = t;
				}
			}
			cc_buf_put(&b, rest);
			*why = "per-pid /proc path";
			return cc_buf_steal(&b);
		}
	}
	for (size_t i = 0; tmpdirs[i]; i++) {
		size_t l = strlen(tmpdirs[i]);
		if (strncmp(path, tmpdirs[i], l))
			continue;
		cc_buf_putn(&b, path, l);
		const char *c = path + l;
		while (*c) {
			const char *sl = strchr(c, '/');
			size_t n = sl ? (size_t)(sl - c) : strlen(c);
			if (generated_component(c, n)) {
				cc_buf_put(&b, "*");
				changed = true;
			} else {
				cc_buf_putn(&b, c, n);
			}
			if (!sl)
				break;
			cc_buf_put(&b, "/");
			c = sl + 1;
		}
		if (changed) {
			*why = "temporary file with a generated name";
			return cc_buf_steal(&b);
		}
		cc_buf_free(&b);
		return NULL;
	}
	return NULL;
}

struct gen_path {
	char *path;
	char *why;
	struct cc_buf examples;
	size_t nexamples;
	struct cc_evidence ev;
};

struct gen_paths {
	struct gen_path *v;
	size_t n;
};

static int gp_add(struct gen_paths *l, const char *path, const struct cc_evidence *ev)
{
	const char *why = NULL;
	char *g = generalise_path(path, &why);
	const char *key = g ? g : path;
	struct gen_path *e = NULL;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, key))
			e = &l->v[i];
	if (!e) {
		struct gen_path *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
		if (!nv) {
			free(g);
			return -ENOMEM;
		}
		l->v = nv;
		e = &l->v[l->n++];
		memset(e, 0, sizeof(*e));
		e->path = strdup(key);
		e->why = cc_strdup(why);
	}
	if (g) {
		/* keep a few literal examples so the widening can be reviewed */
		if (e->nexamples < 3)
			cc_buf_printf(&e->examples, "%s%s", e->nexamples ? ", " : "", path);
		e->nexamples++;
	}
	ev_merge(&e->ev, ev);
	free(g);
	return e->path ? 0 : -ENOMEM;
}

static int cmp_gp(const void *a, const void *b)
{
	return strcmp(((const struct gen_path *)a)->path, ((const struct gen_path *)b)->path);
}

static int gp_to_list(struct gen_paths *g, struct cc_path_list *out)
{
	if (g->n > 1)
		qsort(g->v, g->n, sizeof(*g->v), cmp_gp);
	out->v = calloc(g->n ? g->n : 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		struct gen_path *e = &g->v[i];
		struct cc_path_rule *r = &out->v[out->n++];
		r->path = e->path;
		e->path = NULL;
		r->kind = strpbrk(r->path, "*?") ? CC_PATH_GLOB : CC_PATH_EXACT;
		r->ev = e->ev;
		memset(&e->ev, 0, sizeof(e->ev));
		if (e->why) {
			char *ex = cc_buf_steal(&e->examples);
			if (asprintf(&r->generalised, "%s; observed %zu path%s, e.g. %s%s", e->why,
				     e->nexamples, e->nexamples == 1 ? "" : "s", ex ? ex : "",
				     e->nexamples > 3 ? ", ..." : "") < 0)
				r->generalised = NULL;
			free(ex);
		}
	}
	return 0;
}

static void gp_free(struct gen_paths *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i].path);
		free(g->v[i].why);
		cc_buf_free(&g->v[i].examples);
		free(g->v[i].ev.first);
		free(g->v[i].ev.last);
	}
	free(g->v);
}

/* ------------------------------------------------------------- network */

struct gen_peer {
	struct cc_net_rule r; /* peer + ports + evidence */
	bool ephemeral;
	size_t neph;
};

static bool same_peer(const struct cc_net_rule *a, const struct cc_net_rule *b)
{
	if (a->peer != b->peer)
		return false;
	switch (a->peer) {
	case CC_PEER_CIDR:
		return !strcmp(a->cidr, b->cidr);
	case CC_PEER_DNS:
		return !strcmp(a->dns, b->dns);
	case CC_PEER_SELECTOR:
		if (a->has_ns != b->has_ns || (a->has_ns && strcmp(a->ns, b->ns)))
			return false;
		return cc_labels_subset(&a->labels, &b->labels) &&
		       cc_labels_subset(&b->labels, &a->labels);
	default:
		return true;
	}
}

static int add_port(struct cc_net_rule *r, int port, int end, const char *proto)
{
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i].port == port && r->ports[i].end_port == end &&
		    !strcmp(r->ports[i].proto, proto))
			return 0;
	struct cc_port *np = realloc(r->ports, (r->nports + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	r->ports = np;
	memset(&np[r->nports], 0, sizeof(*np));
	np[r->nports].port = port;
	np[r->nports].end_port = end;
	snprintf(np[r->nports].proto, sizeof(np->proto), "%s", proto);
	r->nports++;
	return 0;
}

static int cmp_port(const void *a, const void *b)
{
	const struct cc_port *x = a, *y = b;
	int c = strcmp(x->proto, y->proto);
	return c ? c : x->port - y->port;
}

/* peer identity from one observation: name > in-cluster selector > address */
static int obs_peer(const struct cc_obs *o, const char *wns, struct cc_net_rule *r)
{
	if (o->dns) {
		r->peer = CC_PEER_DNS;
		r->dns = strdup(o->dns);
		return r->dns ? 0 : -ENOMEM;
	}
	if (o->has_ns || o->labels.n) {
		r->peer = CC_PEER_SELECTOR;
		/* same namespace as the workload: leave it implicit */
		if (o->has_ns && !(wns && !strcmp(wns, o->ns))) {
			r->has_ns = true;
			r->ns = strdup(o->ns);
			if (!r->ns)
				return -ENOMEM;
		}
		return labels_copy(&r->labels, &o->labels);
	}
	r->peer = CC_PEER_CIDR;
	if (asprintf(&r->cidr, "%s/%d", o->addr, strchr(o->addr, ':') ? 128 : 32) < 0) {
		r->cidr = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void net_rule_free(struct cc_net_rule *r)
{
	free(r->cidr);
	free(r->dns);
	free(r->ns);
	labels_free(&r->labels);
	free(r->ports);
	free(r->generalised);
	evidence_free(&r->ev);
}

static int peer_key_cmp(const void *a, const void *b)
{
	const struct cc_net_rule *x = a, *y = b;
	if (x->peer != y->peer)
		return (int)x->peer - (int)y->peer;
	const char *kx = x->peer == CC_PEER_CIDR ? x->cidr : x->peer == CC_PEER_DNS ? x->dns : x->ns;
	const char *ky = y->peer == CC_PEER_CIDR ? y->cidr : y->peer == CC_PEER_DNS ? y->dns : y->ns;
	int c = strcmp(kx ? kx : "", ky ? ky : "");
	if (c)
		return c;
	if (x->labels.n && y->labels.n) {
		c = strcmp(x->labels.k[0], y->labels.k[0]);
		if (!c)
			c = strcmp(x->labels.v[0], y->labels.v[0]);
	}
	return c;
}

static int build_net(const struct cc_obs_list *obs, const struct cc_obs_list *listen,
		     const char *wns, bool skip_dns, bool ingress, struct cc_net_list *out)
{
	struct cc_net_rule *v = NULL;
	size_t n = 0;
	size_t *neph = NULL;
	int r = 0;

	for (size_t i = 0; i < obs->n + (listen ? listen->n : 0); i++) {
		const struct cc_obs *o = i < obs->n ? &obs->v[i] : &listen->v[i - obs->n];
		struct cc_net_rule cand = { 0 };
		bool is_listen = i >= obs->n;

		if (skip_dns && o->port == 53)
			continue; /* name resolution: covered by spec.network.dns */
		/* Ingress peers are clients; their addresses are not stable,
		 * so ingress is keyed by local port and selector only. */
		if (ingress && (is_listen || !(o->has_ns || o->labels.n))) {
			cand.peer = CC_PEER_ANY;
		} else if ((r = obs_peer(o, wns, &cand))) {
			net_rule_free(&cand);
			goto fail;
		}
		size_t k;
		for (k = 0; k < n; k++)
			if (same_peer(&v[k], &cand))
				break;
		if (k == n) {
			struct cc_net_rule *nv = realloc(v, (n + 1) * sizeof(*nv));
			size_t *ne = realloc(neph, (n + 1) * sizeof(*ne));
			if (nv)
				v = nv;
			if (ne)
				neph = ne;
			if (!nv || !ne) {
				net_rule_free(&cand);
				r = -ENOMEM;
				goto fail;
			}
			v[n] = cand;
			neph[n] = 0;
			n++;
			if (ingress && cand.peer == CC_PEER_ANY)
				v[k].generalised = strdup("ingress clients not restricted: client addresses are not stable");
		} else {
			net_rule_free(&cand);
		}
		if (o->port >= EPHEMERAL_LO && o->port <= EPHEMERAL_HI) {
			r = add_port(&v[k], EPHEMERAL_LO, EPHEMERAL_HI, o->proto);
			neph[k]++;
		} else {
			r = add_port(&v[k], o->port, 0, o->proto);
		}
		if (r)
			goto fail;
		ev_merge(&v[k].ev, &o->ev);
	}
	for (size_t k = 0; k < n; k++) {
		if (v[k].nports > 1)
			qsort(v[k].ports, v[k].nports, sizeof(*v[k].ports), cmp_port);
		if (neph[k]) {
			char *g = NULL;
			if (asprintf(&g, "%s%sephemeral ports: %zu observation%s in %d-%d collapsed to the range",
				     v[k].generalised ? v[k].generalised : "",
				     v[k].generalised ? "; " : "", neph[k], neph[k] == 1 ? "" : "s",
				     EPHEMERAL_LO, EPHEMERAL_HI) < 0) {
				r = -ENOMEM;
				goto fail;
			}
			free(v[k].generalised);
			v[k].generalised = g;
		}
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), peer_key_cmp);
	out->v = v ? v : calloc(1, sizeof(*v));
	out->n = n;
	free(neph);
	return out->v ? 0 : -ENOMEM;
fail:
	for (size_t k = 0; k < n; k++)
		net_rule_free(&v[k]);
	free(v);
	free(neph);
	return r;
}

/* ------------------------------------------------------------ names */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct cc_name_rule *)a)->name, ((const struct cc_name_rule *)b)->name);
}

static int build_names(const struct cc_obs_list *obs, struct cc_name_list *out)
{
	out->v = calloc(obs->n ? obs->n : 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (size_t i = 0; i < obs->n; i++) {
		size_t k;
		for (k = 0; k < out->n; k++)
			if (!strcmp(out->v[k].name, obs->v[i].key))
				break;
		if (k == out->n) {
			out->v[k].name = strdup(obs->v[i].key);
			if (!out->v[k].name)
				return -ENOMEM;
			out->n++;
		}
		ev_merge(&out->v[k].ev, &obs->v[i].ev);
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_name);
	return 0;
}

static void sanitize_name(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; in[i] && o + 1 < len && o < 50; i++) {
		char ch = (char)tolower((unsigned char)in[i]);
		if (isalnum((unsigned char)ch))
			out[o++] = ch;
		else if (o && out[o - 1] != '-')
			out[o++] = '-';
	}
	while (o && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

int cc_generate(const struct cc_profile *p, size_t wi, const char *name, struct cc_contract **out,
		struct cc_diag *d)
{
	const struct cc_workload *w;
	struct cc_contract *c;
	struct gen_paths rd = { 0 }, wr = { 0 }, ex = { 0 }, pr = { 0 };
	char nm[64] = "";
	int r = -ENOMEM;

	*out = NULL;
	if (wi >= p->nw) {
		cc_diag_add(d, "%s: workload %zu does not exist (the profile has %zu)", p->file, wi,
			    p->nw);
		return -EINVAL;
	}
	w = &p->w[wi];
	if (name) {
		sanitize_name(name, nm, sizeof(nm));
	} else {
		for (size_t i = 0; i < w->pod_labels.n && !*nm; i++)
			if (!strcmp(w->pod_labels.k[i], "app") ||
			    !strcmp(w->pod_labels.k[i], "app.kubernetes.io/name"))
				sanitize_name(w->pod_labels.v[i], nm, sizeof(nm));
		if (!*nm && w->container)
			sanitize_name(w->container, nm, sizeof(nm));
	}
	if (!*nm)
		snprintf(nm, sizeof(nm), "workload-%zu", wi);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->run_as_non_root = c->allow_priv_esc = c->privileged = c->host_pid = c->host_ipc =
		c->host_network = c->ro_rootfs = CC_UNSET;
	c->file = strdup(p->file);
	c->name = strdup(nm);
	c->ns = cc_strdup(w->ns);
	c->df_profile = cc_strdup(p->id);
	c->df_start = cc_strdup(w->w_start);
	c->df_end = cc_strdup(w->w_end);
	c->df_samples = w->s_events;
	c->sel.ns = cc_strdup(w->ns);
	c->sel.container = cc_strdup(w->container);
	c->sel.image = cc_strdup(w->image);
	if (!c->file || !c->name || labels_copy(&c->sel.pod_labels, &w->pod_labels))
		goto fail;

	/* process and files */
	for (size_t i = 0; i < w->exec.n; i++)
		if (gp_add(&pr, w->exec.v[i].key, &w->exec.v[i].ev))
			goto fail;
	bool writes_rootfs = false;
	for (size_t i = 0; i < w->files.n; i++) {
		const struct cc_obs *o = &w->files.v[i];
		struct gen_paths *dst = strchr(o->mode, 'x') ? &ex : strchr(o->mode, 'w') ? &wr : &rd;
		if (gp_add(dst, o->key, &o->ev))
			goto fail;
		/* an exec'd file that is also written keeps both rights */
		if (strchr(o->mode, 'x') && strchr(o->mode, 'w') && gp_add(&wr, o->key, &o->ev))
			goto fail;
		if (strchr(o->mode, 'w') && strncmp(o->key, "/dev/", 5) && strncmp(o->key, "/proc/", 6))
			writes_rootfs = true;
	}
	c->has_process = true;
	c->has_files = true;
	if (gp_to_list(&pr, &c->proc_allow) || gp_to_list(&rd, &c->f_read) ||
	    gp_to_list(&wr, &c->f_write) || gp_to_list(&ex, &c->f_exec))
		goto fail;

	/* network */
	c->has_network = c->has_egress = c->has_ingress = true;
	c->dns = w->dns.n > 0;
	for (size_t i = 0; i < w->egress.n; i++)
		if (w->egress.v[i].port == 53)
			c->dns = true;
	if ((r = build_net(&w->egress, NULL, w->ns, c->dns, false, &c->egress)) ||
	    (r = build_net(&w->ingress, &w->listen, w->ns, false, true, &c->ingress)))
		goto fail;
	r = -ENOMEM;

	/* syscalls and capabilities */
	c->has_syscalls = w->syscalls.n > 0;
	c->sc_action = CC_ACT_ERRNO;
	c->sc_errno = 1;
	if (build_names(&w->syscalls, &c->sc_allow))
		goto fail;
	if (!c->has_syscalls)
		cc_diag_add(d, "%s: workload %zu has no syscall observations: spec.syscalls left out",
			    p->file, wi);
	c->has_caps = true;
	if (build_names(&w->caps, &c->caps))
		goto fail;

	/* pod: least privilege wherever the profile shows nothing needing more */
	c->has_pod = true;
	bool root = false;
	for (size_t i = 0; i < w->uids.n; i++)
		if (!strcmp(w->uids.v[i].key, "0"))
			root = true;
	c->run_as_non_root = w->uids.n ? !root : CC_UNSET;
	c->allow_priv_esc = 0;
	c->privileged = 0;
	c->host_pid = c->host_ipc = c->host_network = 0;
	c->has_host_paths = true;
	c->host_path_ro = calloc(1, sizeof(bool));
	c->host_paths.v = calloc(1, sizeof(*c->host_paths.v));
	c->ro_rootfs = !writes_rootfs;
	if (asprintf(&c->seccomp_profile, "Localhost:kloudlens/%s.json", c->name) < 0)
		c->seccomp_profile = NULL;
	if (asprintf(&c->apparmor_profile, "Localhost:kloudlens-%s", c->name) < 0)
		c->apparmor_profile = NULL;
	if (!c->host_path_ro || !c->host_paths.v || !c->seccomp_profile || !c->apparmor_profile)
		goto fail;
	gp_free(&rd);
	gp_free(&wr);
	gp_free(&ex);
	gp_free(&pr);
	*out = c;
	return 0;
fail:
	gp_free(&rd);
	gp_free(&wr);
	gp_free(&ex);
	gp_free(&pr);
	cc_contract_free(c);
	return r;
}
