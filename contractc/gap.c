/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gap analysis: every observation of a workload is checked against a policy
 * (already translated to the IR) and every allowance of the policy against
 * the observations. Categories the policy does not constrain are reported
 * as such and counted in neither direction.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

enum gcat { G_EXEC, G_FILES, G_EGRESS, G_INGRESS, G_SYSCALLS, G_CAPS, G_USER, G_COUNT };
static const char *const gcat_name[G_COUNT] = {
	"executables", "files", "network-egress", "network-ingress", "syscalls", "capabilities",
	"user",
};

struct gitem {
	char *item;
	char *reason; /* denied: why; unused: the rule */
	const struct cc_evidence *ev;
	int line;
};

struct glist {
	struct gitem *v;
	size_t n;
};

struct gap {
	bool constrained[G_COUNT];
	size_t observed[G_COUNT], allowed[G_COUNT], allowances[G_COUNT];
	struct glist denied[G_COUNT], unused[G_COUNT];
	char *policy_file, *workload;
};

/* the public type is opaque */
struct cc_gap {
	struct gap g;
};

static int gpush(struct glist *l, char *item, char *reason, const struct cc_evidence *ev, int line)
{
	struct gitem *nv;
	if (!item || !reason) {
		free(item);
		free(reason);
		return -ENOMEM;
	}
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		free(item);
		free(reason);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = (struct gitem){ item, reason, ev, line };
	return 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* which allow rules were used */
struct hits {
	bool *proc, *read, *write, *exec, *egress, *ingress, *sc, *caps;
};

static int match_path_list(const struct cc_path_list *l, const char *path, bool *hit)
{
	int found = -1;
	for (size_t i = 0; i < l->n; i++)
		if (cc_path_rule_match(&l->v[i], path)) {
			if (hit)
				hit[i] = true;
			if (found < 0)
				found = (int)i;
		}
	return found;
}

static bool args_match(const struct cc_path_rule *r, const struct cc_obs *o)
{
	if (!r->nargs)
		return true;
	if (!o->nargs)
		return true; /* argv not recorded: cannot refute */
	/* argv[0] is the program; the rule's patterns match argv[1..] */
	if (o->nargs - 1 != r->nargs)
		return false;
	for (size_t i = 0; i < r->nargs; i++)
		if (!cc_glob_match(r->args[i], o->args[i + 1]))
			return false;
	return true;
}

static bool peer_match(const struct cc_net_rule *r, const struct cc_obs *o, const char *wns)
{
	switch (r->peer) {
	case CC_PEER_ANY:
		return true;
	case CC_PEER_CIDR:
		if (!o->addr || !r->cidr || !cc_cidr_match(r->cidr, o->addr))
			return false;
		for (size_t i = 0; i < r->nexcept; i++)
			if (cc_cidr_match(r->except[i], o->addr))
				return false;
		return true;
	case CC_PEER_DNS:
		return o->dns && r->dns && cc_dns_match(r->dns, o->dns);
	case CC_PEER_SELECTOR: {
		if (!o->has_ns && !o->labels.n)
			return false;
		const char *ons = o->has_ns ? o->ns : wns;
		const char *rns = r->has_ns ? r->ns : wns;
		if (!(rns && !strcmp(rns, "*")) && (!ons || !rns || strcmp(ons, rns)))
			return false;
		return cc_labels_subset(&r->labels, &o->labels);
	}
	}
	return false;
}

static bool port_match(const struct cc_net_rule *r, int port, const char *proto)
{
	if (!r->nports)
		return true;
	for (size_t i = 0; i < r->nports; i++) {
		const struct cc_port *p = &r->ports[i];
		int hi = p->end_port ? p->end_port : p->port;
		if (port >= p->port && port <= hi && !strcmp(p->proto, proto))
			return true;
	}
	return false;
}

static const char *path_kind_name(const struct cc_path_rule *r)
{
	return r->kind == CC_PATH_DIR ? " (directory)" : r->kind == CC_PATH_GLOB ? " (glob)" : "";
}

int cc_gap_run(const struct cc_workload *w, const struct cc_contract *c, struct cc_gap **out)
{
	struct cc_gap *cg = calloc(1, sizeof(*cg));
	struct gap *g;
	struct hits h = { 0 };
	int r = -ENOMEM;

	*out = NULL;
	if (!cg)
		return -ENOMEM;
	g = &cg->g;
	g->policy_file = cc_strdup(c->file);
#define ALLOC(f, n) (h.f = calloc((n) ? (n) : 1, sizeof(bool)))
	if (!ALLOC(proc, c->proc_allow.n) || !ALLOC(read, c->f_read.n) ||
	    !ALLOC(write, c->f_write.n) || !ALLOC(exec, c->f_exec.n) ||
	    !ALLOC(egress, c->egress.n) || !ALLOC(ingress, c->ingress.n) ||
	    !ALLOC(sc, c->sc_allow.n) || !ALLOC(caps, c->caps.n))
		goto out;
#undef ALLOC

	/* executables */
	g->constrained[G_EXEC] = c->has_process || (c->has_files && c->f_exec.n);
	for (size_t i = 0; g->constrained[G_EXEC] && i < w->exec.n; i++) {
		const struct cc_obs *o = &w->exec.v[i];
		int d;
		g->observed[G_EXEC]++;
		if ((d = match_path_list(&c->proc_deny, o->key, NULL)) >= 0) {
			if (gpush(&g->denied[G_EXEC], strdup(o->key),
				  fmt("matches process deny rule %s (line %d)", c->proc_deny.v[d].path,
				      c->proc_deny.v[d].line), &o->ev, c->proc_deny.v[d].line))
				goto out;
			continue;
		}
		bool ok = false;
		for (size_t k = 0; k < c->proc_allow.n; k++)
			if (cc_path_rule_match(&c->proc_allow.v[k], o->key) &&
			    args_match(&c->proc_allow.v[k], o)) {
				h.proc[k] = true;
				ok = true;
			}
		if (!ok && match_path_list(&c->f_exec, o->key, h.exec) >= 0)
			ok = true;
		if (!ok && !c->proc_allow.n && !c->f_exec.n)
			ok = true; /* deny-list only */
		if (ok) {
			g->allowed[G_EXEC]++;
		} else if (gpush(&g->denied[G_EXEC], strdup(o->key),
				 strdup("not in the allowed executables"), &o->ev, 0)) {
			goto out;
		}
	}

	/* files: each requested right separately */
	g->constrained[G_FILES] = c->has_files;
	for (size_t i = 0; c->has_files && i < w->files.n; i++) {
		const struct cc_obs *o = &w->files.v[i];
		char why[256] = "";
		int d;
		g->observed[G_FILES]++;
		bool deny_list_only = !c->f_read.n && !c->f_write.n && !c->f_exec.n;
		int dw = strchr(o->mode, 'w') ? match_path_list(&c->f_deny_write, o->key, NULL) : -1;
		if ((d = match_path_list(&c->f_deny, o->key, NULL)) >= 0) {
			snprintf(why, sizeof(why), "matches deny rule %s (line %d)", c->f_deny.v[d].path,
				 c->f_deny.v[d].line);
		} else if (dw >= 0) {
			d = -1;
			snprintf(why, sizeof(why), "matches write-deny rule %s (line %d)",
				 c->f_deny_write.v[dw].path, c->f_deny_write.v[dw].line);
		} else if (!deny_list_only) {
			for (const char *m = o->mode; *m && !*why; m++) {
				bool ok = false;
				if (*m == 'r')
				{
					/* evaluate all three so every matching rule counts as used */
					bool a = match_path_list(&c->f_read, o->key, h.read) >= 0;
					bool b2 = match_path_list(&c->f_write, o->key, h.write) >= 0;
					bool e = match_path_list(&c->f_exec, o->key, h.exec) >= 0;
					ok = a || b2 || e;
				}
				else if (*m == 'w')
					ok = match_path_list(&c->f_write, o->key, h.write) >= 0;
				else if (*m == 'x')
					ok = match_path_list(&c->f_exec, o->key, h.exec) >= 0 ||
					     match_path_list(&c->proc_allow, o->key, h.proc) >= 0;
				if (!ok)
					snprintf(why, sizeof(why), "%s access not allowed",
						 *m == 'r' ? "read" : *m == 'w' ? "write" : "exec");
			}
		}
		if (!*why) {
			g->allowed[G_FILES]++;
		} else if (gpush(&g->denied[G_FILES], fmt("%s (%s)", o->key, o->mode), strdup(why),
				 &o->ev, d >= 0 ? c->f_deny.v[d].line : 0)) {
			goto out;
		}
	}

	/* network */
	for (int dir = 0; dir < 2; dir++) {
		enum gcat cat = dir ? G_INGRESS : G_EGRESS;
		const struct cc_net_list *l = dir ? &c->ingress : &c->egress;
		bool *hit = dir ? h.ingress : h.egress;
		const struct cc_obs_list *obs = dir ? &w->ingress : &w->egress;
		g->constrained[cat] = dir ? c->has_ingress : c->has_egress;
		if (!g->constrained[cat])
			continue;
		for (size_t i = 0; i < obs->n + (dir ? w->listen.n : 0); i++) {
			const struct cc_obs *o = i < obs->n ? &obs->v[i] : &w->listen.v[i - obs->n];
			bool listen = i >= obs->n;
			bool ok = false;
			g->observed[cat]++;
			if (!dir && o->port == 53 && c->dns) {
				g->allowed[cat]++;
				continue;
			}
			const struct cc_net_list *dl = dir ? &c->ingress_deny : &c->egress_deny;
			for (size_t k = 0; k < l->n; k++)
				if ((listen ? true : peer_match(&l->v[k], o, w->ns)) &&
				    port_match(&l->v[k], o->port, o->proto)) {
					hit[k] = true;
					ok = true;
				}
			if (!l->n && dl->n) /* deny list only (imported policies) */
				ok = true;
			for (size_t k = 0; k < dl->n; k++)
				if ((listen || peer_match(&dl->v[k], o, w->ns)) &&
				    port_match(&dl->v[k], o->port, o->proto))
					ok = false;
			if (ok) {
				g->allowed[cat]++;
				continue;
			}
			char *item = listen ? fmt("listen %d/%s", o->port, o->proto) :
				     fmt("%s %s%s%s:%d/%s", dir ? "from" : "to", o->addr,
					 o->dns ? " (" : "", o->dns ? o->dns : "", o->port, o->proto);
			if (o->dns && item) { /* close the bracket opened above */
				char *t = item;
				item = NULL;
				char *colon = strrchr(t, ':');
				if (colon) {
					*colon = '\0';
					item = fmt("%s):%s", t, colon + 1);
				}
				free(t);
			}
			if (gpush(&g->denied[cat], item, strdup("no network rule allows this peer and port"),
				  &o->ev, 0))
				goto out;
		}
	}

	/* syscalls */
	g->constrained[G_SYSCALLS] = c->has_syscalls;
	for (size_t i = 0; c->has_syscalls && i < w->syscalls.n; i++) {
		const struct cc_obs *o = &w->syscalls.v[i];
		bool ok;
		g->observed[G_SYSCALLS]++;
		if (c->sc_default_allow) {
			ok = true;
			for (size_t k = 0; k < c->sc_deny.n; k++)
				if (!strcmp(c->sc_deny.v[k].name, o->key))
					ok = false;
		} else {
			ok = false;
			for (size_t k = 0; k < c->sc_allow.n; k++)
				if (!strcmp(c->sc_allow.v[k].name, o->key)) {
					h.sc[k] = true;
					ok = true;
				}
		}
		if (ok)
			g->allowed[G_SYSCALLS]++;
		else if (gpush(&g->denied[G_SYSCALLS], strdup(o->key),
			       strdup(c->sc_default_allow ? "on the deny list" : "not on the allow list"),
			       &o->ev, 0))
			goto out;
	}

	/* capabilities */
	g->constrained[G_CAPS] = c->has_caps;
	for (size_t i = 0; c->has_caps && i < w->caps.n; i++) {
		const struct cc_obs *o = &w->caps.v[i];
		bool ok = false;
		g->observed[G_CAPS]++;
		for (size_t k = 0; k < c->caps.n; k++)
			if (!strcmp(c->caps.v[k].name, o->key)) {
				h.caps[k] = true;
				ok = true;
			}
		if (!c->caps.n && c->caps_deny.n) /* deny list only (imported policies) */
			ok = true;
		for (size_t k = 0; k < c->caps_deny.n; k++)
			if (!strcmp(c->caps_deny.v[k].name, o->key))
				ok = false;
		if (ok)
			g->allowed[G_CAPS]++;
		else if (gpush(&g->denied[G_CAPS], strdup(o->key), strdup("not an allowed capability"),
			       &o->ev, 0))
			goto out;
	}

	/* user: runAsNonRoot against uid 0 */
	g->constrained[G_USER] = c->run_as_non_root == 1;
	for (size_t i = 0; g->constrained[G_USER] && i < w->uids.n; i++) {
		const struct cc_obs *o = &w->uids.v[i];
		g->observed[G_USER]++;
		if (strcmp(o->key, "0"))
			g->allowed[G_USER]++;
		else if (gpush(&g->denied[G_USER], strdup("uid 0"), strdup("runAsNonRoot is true"),
			       &o->ev, 0))
			goto out;
	}

	/* unused allowances */
	struct {
		enum gcat cat;
		const struct cc_path_list *l;
		bool *hit;
		const char *what;
	} pl[] = {
		{ G_EXEC, &c->proc_allow, h.proc, "process.allow" },
		{ G_FILES, &c->f_read, h.read, "files.read" },
		{ G_FILES, &c->f_write, h.write, "files.write" },
		{ G_FILES, &c->f_exec, h.exec, "files.exec" },
	};
	for (size_t k = 0; k < sizeof(pl) / sizeof(pl[0]); k++) {
		if (!g->constrained[pl[k].cat])
			continue;
		for (size_t i = 0; i < pl[k].l->n; i++) {
			const struct cc_path_rule *pr = &pl[k].l->v[i];
			g->allowances[pl[k].cat]++;
			if (pl[k].hit[i])
				continue;
			if (gpush(&g->unused[pl[k].cat], fmt("%s%s", pr->path, path_kind_name(pr)),
				  fmt("%s[%zu]", pl[k].what, i), &pr->ev, pr->line))
				goto out;
		}
	}
	for (int dir = 0; dir < 2; dir++) {
		enum gcat cat = dir ? G_INGRESS : G_EGRESS;
		const struct cc_net_list *l = dir ? &c->ingress : &c->egress;
		bool *hit = dir ? h.ingress : h.egress;
		if (!g->constrained[cat])
			continue;
		for (size_t i = 0; i < l->n; i++) {
			const struct cc_net_rule *nr = &l->v[i];
			struct cc_buf b = { 0 };
			g->allowances[cat]++;
			if (hit[i])
				continue;
			switch (nr->peer) {
			case CC_PEER_CIDR:
				cc_buf_put(&b, nr->cidr ? nr->cidr : "?");
				break;
			case CC_PEER_DNS:
				cc_buf_put(&b, nr->dns ? nr->dns : "?");
				break;
			case CC_PEER_SELECTOR:
				cc_buf_printf(&b, "selector namespace=%s", nr->has_ns ? nr->ns : "(same)");
				for (size_t j = 0; j < nr->labels.n; j++)
					cc_buf_printf(&b, " %s=%s", nr->labels.k[j], nr->labels.v[j]);
				break;
			default:
				cc_buf_put(&b, "any peer");
			}
			for (size_t j = 0; j < nr->nports; j++) {
				if (nr->ports[j].end_port)
					cc_buf_printf(&b, "%s%d-%d/%s", j ? "," : " ports ", nr->ports[j].port,
						      nr->ports[j].end_port, nr->ports[j].proto);
				else
					cc_buf_printf(&b, "%s%d/%s", j ? "," : " ports ", nr->ports[j].port,
						      nr->ports[j].proto);
			}
			if (gpush(&g->unused[cat], cc_buf_steal(&b),
				  fmt("network.%s[%zu]", dir ? "ingress" : "egress", i), &nr->ev, nr->line))
				goto out;
		}
	}
	if (g->constrained[G_SYSCALLS] && !c->sc_default_allow)
		for (size_t i = 0; i < c->sc_allow.n; i++) {
			g->allowances[G_SYSCALLS]++;
			if (!h.sc[i] && gpush(&g->unused[G_SYSCALLS], strdup(c->sc_allow.v[i].name),
					      fmt("syscalls.allow[%zu]", i), &c->sc_allow.v[i].ev,
					      c->sc_allow.v[i].line))
				goto out;
		}
	if (g->constrained[G_CAPS])
		for (size_t i = 0; i < c->caps.n; i++) {
			g->allowances[G_CAPS]++;
			if (!h.caps[i] && gpush(&g->unused[G_CAPS], strdup(c->caps.v[i].name),
						fmt("capabilities.allow[%zu]", i), &c->caps.v[i].ev,
						c->caps.v[i].line))
				goto out;
		}
	r = 0;
	*out = cg;
	cg = NULL;
out:
	free(h.proc);
	free(h.read);
	free(h.write);
	free(h.exec);
	free(h.egress);
	free(h.ingress);
	free(h.sc);
	free(h.caps);
	cc_gap_free(cg);
	return r;
}

void cc_gap_free(struct cc_gap *cg)
{
	if (!cg)
		return;
	for (int c = 0; c < G_COUNT; c++) {
		for (int k = 0; k < 2; k++) {
			struct glist *l = k ? &cg->g.unused[c] : &cg->g.denied[c];
			for (size_t i = 0; i < l->n; i++) {
				free(l->v[i].item);
				free(l->v[i].reason);
			}
			free(l->v);
		}
	}
	free(cg->g.policy_file);
	free(cg->g.workload);
	free(cg);
}

size_t cc_gap_denied(const struct cc_gap *cg)
{
	size_t n = 0;
	for (int c = 0; c < G_COUNT; c++)
		n += cg->g.denied[c].n;
	return n;
}

size_t cc_gap_unused(const struct cc_gap *cg)
{
	size_t n = 0;
	for (int c = 0; c < G_COUNT; c++)
		n += cg->g.unused[c].n;
	return n;
}

/* per-mille as "83.3": integer arithmetic keeps output byte-identical */
static char *percent(size_t num, size_t den)
{
	if (!den)
		return strdup("n/a");
	unsigned long long pm = ((unsigned long long)num * 1000 + den / 2) / den;
	return fmt("%llu.%llu", pm / 10, pm % 10);
}

static void totals(const struct gap *g, size_t *obs, size_t *allowed, size_t *allowances,
		   size_t *unused)
{
	*obs = *allowed = *allowances = *unused = 0;
	for (int c = 0; c < G_COUNT; c++) {
		*obs += g->observed[c];
		*allowed += g->allowed[c];
		*allowances += g->allowances[c];
		*unused += g->unused[c].n;
	}
}

static json_t *ev_json(const struct cc_evidence *e)
{
	json_t *o = json_object();
	if (!e || !e->has)
		return o;
	json_object_set_new(o, "count", json_integer((json_int_t)e->count));
	if (e->first)
		json_object_set_new(o, "firstSeen", json_string(e->first));
	if (e->last)
		json_object_set_new(o, "lastSeen", json_string(e->last));
	return o;
}

json_t *cc_gap_json(const struct cc_gap *cg, const char *format)
{
	const struct gap *g = &cg->g;
	size_t obs, allowed, allowances, unused;
	json_t *doc = json_object(), *sum = json_object(), *cats = json_array();
	char *p1, *p2;

	totals(g, &obs, &allowed, &allowances, &unused);
	json_t *pol = json_object();
	json_object_set_new(pol, "file", json_string(g->policy_file ? g->policy_file : ""));
	json_object_set_new(pol, "format", json_string(format));
	json_object_set_new(doc, "policy", pol);
	json_object_set_new(sum, "observed", json_integer((json_int_t)obs));
	json_object_set_new(sum, "allowed", json_integer((json_int_t)allowed));
	json_object_set_new(sum, "denied", json_integer((json_int_t)cc_gap_denied(cg)));
	json_object_set_new(sum, "allowances", json_integer((json_int_t)allowances));
	json_object_set_new(sum, "unusedAllowances", json_integer((json_int_t)unused));
	p1 = percent(allowances - unused, allowances);
	p2 = percent(allowed, obs);
	json_t *cov = json_object();
	json_object_set_new(cov, "allowancesUsedPercent", json_string(p1 ? p1 : ""));
	json_object_set_new(cov, "observedAllowedPercent", json_string(p2 ? p2 : ""));
	json_object_set_new(sum, "coverage", cov);
	free(p1);
	free(p2);
	json_object_set_new(doc, "summary", sum);
	for (int c = 0; c < G_COUNT; c++) {
		json_t *o = json_object(), *den = json_array(), *un = json_array();
		json_object_set_new(o, "category", json_string(gcat_name[c]));
		json_object_set_new(o, "constrained", json_boolean(g->constrained[c]));
		json_object_set_new(o, "observed", json_integer((json_int_t)g->observed[c]));
		json_object_set_new(o, "allowed", json_integer((json_int_t)g->allowed[c]));
		json_object_set_new(o, "allowances", json_integer((json_int_t)g->allowances[c]));
		for (size_t i = 0; i < g->denied[c].n; i++) {
			const struct gitem *it = &g->denied[c].v[i];
			json_t *e = json_object();
			json_object_set_new(e, "item", json_string(it->item));
			json_object_set_new(e, "reason", json_string(it->reason));
			if (it->line)
				json_object_set_new(e, "policyLine", json_integer(it->line));
			json_object_set_new(e, "evidence", ev_json(it->ev));
			json_array_append_new(den, e);
		}
		for (size_t i = 0; i < g->unused[c].n; i++) {
			const struct gitem *it = &g->unused[c].v[i];
			json_t *e = json_object();
			json_object_set_new(e, "item", json_string(it->item));
			json_object_set_new(e, "rule", json_string(it->reason));
			if (it->line)
				json_object_set_new(e, "policyLine", json_integer(it->line));
			json_array_append_new(un, e);
		}
		json_object_set_new(o, "observedButDenied", den);
		json_object_set_new(o, "unusedAllowances", un);
		json_array_append_new(cats, o);
	}
	json_object_set_new(doc, "categories", cats);
	return doc;
}

char *cc_gap_text(const struct cc_gap *cg, const char *format)
{
	const struct gap *g = &cg->g;
	struct cc_buf b = { 0 };
	size_t obs, allowed, allowances, unused;
	char *p1, *p2;

	totals(g, &obs, &allowed, &allowances, &unused);
	cc_buf_printf(&b, "policy %s (%s)\n", g->policy_file ? g->policy_file : "", format);
	for (int c = 0; c < G_COUNT; c++) {
		if (!g->constrained[c]) {
			cc_buf_printf(&b, "\n%s: not constrained by this policy\n", gcat_name[c]);
			continue;
		}
		cc_buf_printf(&b, "\n%s: %zu observed, %zu allowed, %zu denied; %zu allowances, %zu unused\n",
			      gcat_name[c], g->observed[c], g->allowed[c], g->denied[c].n,
			      g->allowances[c], g->unused[c].n);
		for (size_t i = 0; i < g->denied[c].n; i++) {
			const struct gitem *it = &g->denied[c].v[i];
			cc_buf_printf(&b, "  DENIED  %s: %s", it->item, it->reason);
			if (it->ev && it->ev->has)
				cc_buf_printf(&b, " [count %llu, first %s, last %s]",
					      (unsigned long long)it->ev->count,
					      it->ev->first ? it->ev->first : "?",
					      it->ev->last ? it->ev->last : "?");
			cc_buf_put(&b, "\n");
		}
		for (size_t i = 0; i < g->unused[c].n; i++) {
			const struct gitem *it = &g->unused[c].v[i];
			cc_buf_printf(&b, "  UNUSED  %s: %s", it->item, it->reason);
			if (it->line)
				cc_buf_printf(&b, " (policy line %d)", it->line);
			cc_buf_put(&b, "\n");
		}
	}
	p1 = percent(allowances - unused, allowances);
	p2 = percent(allowed, obs);
	cc_buf_printf(&b, "\nsummary: %zu observed, %zu allowed, %zu denied; %zu of %zu allowances unused\n",
		      obs, allowed, cc_gap_denied(cg), unused, allowances);
	cc_buf_printf(&b, "coverage: %s%s of allowances exercised, %s%s of observations allowed\n",
		      p1 ? p1 : "?", p1 && strcmp(p1, "n/a") ? "%" : "", p2 ? p2 : "?",
		      p2 && strcmp(p2, "n/a") ? "%" : "");
	free(p1);
	free(p2);
	return cc_buf_steal(&b);
}
