/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Existing policies -> IR, for gap analysis. Each importer keeps only what
 * its format says; a section the format cannot say stays "not constrained".
 * Shapes that are not understood are errors, never silently skipped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse-util.h"

static struct cc_contract *new_contract(const char *file, const char *name)
{
	struct cc_contract *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->run_as_non_root = c->allow_priv_esc = c->privileged = c->host_pid = c->host_ipc =
		c->host_network = c->ro_rootfs = CC_UNSET;
	c->df_samples = -1;
	c->sc_errno = 1;
	c->file = strdup(file);
	c->name = strdup(name ? name : "policy");
	if (!c->file || !c->name) {
		cc_contract_free(c);
		return NULL;
	}
	return c;
}

static const char *scalar(const struct cc_node *n)
{
	return n && n->type == CC_SCALAR ? n->str : NULL;
}

static int name_push(struct cc_name_list *l, const char *name, int line, int col)
{
	struct cc_name_rule *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	memset(&nv[l->n], 0, sizeof(*nv));
	nv[l->n].name = strdup(name);
	nv[l->n].line = line;
	nv[l->n].col = col;
	if (!nv[l->n].name)
		return -ENOMEM;
	l->n++;
	return 0;
}

static int path_push(struct cc_path_list *l, const char *path, enum cc_path_kind kind, int line)
{
	struct cc_path_rule *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	memset(&nv[l->n], 0, sizeof(*nv));
	nv[l->n].path = strdup(path);
	nv[l->n].kind = kind;
	nv[l->n].line = line;
	if (!nv[l->n].path)
		return -ENOMEM;
	l->n++;
	return 0;
}

static struct cc_net_rule *net_push(struct cc_net_list *l, int line)
{
	struct cc_net_rule *nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	l->v = nv;
	memset(&nv[l->n], 0, sizeof(*nv));
	nv[l->n].line = line;
	return &nv[l->n++];
}

static int port_push(struct cc_net_rule *r, int port, int end, const char *proto)
{
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

static int parse_port_num(const char *s)
{
	char *end;
	long v;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, &end, 10);
	return *end || v < 0 || v > 65535 ? -1 : (int)v;
}

/* --------------------------------------------------------------- seccomp */

static int import_seccomp(const char *file, const struct cc_node *root, struct cc_contract **out,
			  struct cc_diag *d)
{
	struct cc_contract *c = new_contract(file, "seccomp");
	const char *def = scalar(map_get(root, "defaultAction"));
	const struct cc_node *sys = map_get(root, "syscalls");

	if (!c)
		return -ENOMEM;
	c->has_syscalls = true;
	c->sc_default_allow = def && (!strcmp(def, "SCMP_ACT_ALLOW") || !strcmp(def, "SCMP_ACT_LOG"));
	if (!def) {
		cc_diag_add(d, "%s:%d:%d: defaultAction: must be a string", file, root->line, root->col);
		goto bad;
	}
	if (sys && sys->type != CC_SEQ) {
		cc_diag_add(d, "%s:%d:%d: syscalls: expected a list", file, sys->line, sys->col);
		goto bad;
	}
	for (size_t i = 0; sys && i < sys->n; i++) {
		const struct cc_node *e = sys->kids[i];
		const char *act = scalar(map_get(e, "action"));
		const struct cc_node *names = map_get(e, "names");
		const char *one = scalar(map_get(e, "name"));
		if (!act || (!names && !one)) {
			cc_diag_add(d, "%s:%d:%d: syscalls[%zu]: needs action and names", file, e->line,
				    e->col, i);
			goto bad;
		}
		bool allows = !strcmp(act, "SCMP_ACT_ALLOW") || !strcmp(act, "SCMP_ACT_LOG");
		/* A rule with argument filters allows only some calls; count it
		 * as an allowance, the conservative reading for "unused". */
		struct cc_name_list *l = c->sc_default_allow ? (allows ? NULL : &c->sc_deny) :
							     (allows ? &c->sc_allow : NULL);
		if (!l)
			continue;
		if (one && name_push(l, one, e->line, e->col))
			goto oom;
		for (size_t j = 0; names && names->type == CC_SEQ && j < names->n; j++)
			if (scalar(names->kids[j]) &&
			    name_push(l, names->kids[j]->str, names->kids[j]->line, names->kids[j]->col))
				goto oom;
	}
	*out = c;
	return 0;
oom:
	cc_contract_free(c);
	return -ENOMEM;
bad:
	cc_contract_free(c);
	return -EINVAL;
}

/* --------------------------------------------------------- NetworkPolicy */

static int labels_from(const struct cc_node *ml, struct cc_labels *l, const char *skip_key,
		       char **skipped, const char *strip)
{
	for (size_t i = 0; ml && ml->type == CC_MAP && i + 1 < ml->n; i += 2) {
		const char *k = scalar(ml->kids[i]), *v = scalar(ml->kids[i + 1]);
		if (!k || !v)
			continue;
		if (strip && !strncmp(k, strip, strlen(strip)))
			k += strlen(strip);
		if (skip_key && !strcmp(k, skip_key)) {
			if (skipped) {
				free(*skipped);
				*skipped = strdup(v);
			}
			continue;
		}
		if (labels_add(l, k, v))
			return -ENOMEM;
	}
	return 0;
}

static bool is_dns_rule(const struct cc_node *ports)
{
	for (size_t i = 0; ports && ports->type == CC_SEQ && i < ports->n; i++) {
		const char *p = scalar(map_get(ports->kids[i], "port"));
		if (!p || strcmp(p, "53"))
			return false;
	}
	return ports && ports->n;
}

static int np_rules(struct cc_contract *c, const struct cc_node *list, bool ingress)
{
	struct cc_net_list *l = ingress ? &c->ingress : &c->egress;
	const char *peer_key = ingress ? "from" : "to";

	for (size_t i = 0; list && list->type == CC_SEQ && i < list->n; i++) {
		const struct cc_node *rule = list->kids[i], *peers = map_get(rule, peer_key),
				     *ports = map_get(rule, "ports");
		if (!ingress && is_dns_rule(ports)) {
			c->dns = true;
			continue;
		}
		size_t np = peers && peers->type == CC_SEQ && peers->n ? peers->n : 1;
		for (size_t j = 0; j < np; j++) {
			struct cc_net_rule *r = net_push(l, rule->line);
			if (!r)
				return -ENOMEM;
			const struct cc_node *pe = peers && peers->type == CC_SEQ && peers->n ? peers->kids[j] : NULL;
			if (pe) {
				const struct cc_node *ib = map_get(pe, "ipBlock");
				if (ib) {
					const struct cc_node *ex = map_get(ib, "except");
					r->peer = CC_PEER_CIDR;
					r->cidr = cc_strdup(scalar(map_get(ib, "cidr")));
					if (!r->cidr)
						return -ENOMEM;
					for (size_t k = 0; ex && ex->type == CC_SEQ && k < ex->n; k++) {
						const char *e = scalar(ex->kids[k]);
						char **ne = realloc(r->except, (r->nexcept + 1) * sizeof(*ne));
						if (!e)
							continue;
						if (!ne)
							return -ENOMEM;
						r->except = ne;
						if (!(ne[r->nexcept] = strdup(e)))
							return -ENOMEM;
						r->nexcept++;
					}
				} else {
					r->peer = CC_PEER_SELECTOR;
					char *ns = NULL;
					const struct cc_node *nsel = map_get(pe, "namespaceSelector");
					if (labels_from(map_get(nsel, "matchLabels"), &r->labels, "kubernetes.io/metadata.name", &ns, NULL))
						return -ENOMEM;
					/* namespace labels other than the name are not peers' labels */
					labels_free(&r->labels);
					if (labels_from(map_get(map_get(pe, "podSelector"), "matchLabels"), &r->labels, NULL, NULL, NULL))
						return -ENOMEM;
					if (ns) {
						r->has_ns = true;
						r->ns = ns;
					} else if (nsel) {
						r->has_ns = true;
						r->ns = strdup("*"); /* any namespace */
					}
				}
			}
			for (size_t k = 0; ports && ports->type == CC_SEQ && k < ports->n; k++) {
				const struct cc_node *pt = ports->kids[k];
				int port = parse_port_num(scalar(map_get(pt, "port")));
				int end = parse_port_num(scalar(map_get(pt, "endPort")));
				const char *proto = scalar(map_get(pt, "protocol"));
				if (port < 0) { /* no port = every port; named ports are per pod */
					port = 1;
					end = 65535;
				}
				if (port_push(r, port, end > port ? end : 0, proto ? proto : "TCP"))
					return -ENOMEM;
			}
		}
	}
	return 0;
}

static int import_netpol(const char *file, const struct cc_node *root, struct cc_contract **out)
{
	const struct cc_node *spec = map_get(root, "spec"), *types = map_get(spec, "policyTypes");
	struct cc_contract *c = new_contract(file, scalar(map_get(map_get(root, "metadata"), "name")));
	if (!c)
		return -ENOMEM;
	c->has_network = true;
	c->has_ingress = true; /* the API defaults policyTypes to Ingress */
	c->has_egress = map_get(spec, "egress") != NULL;
	if (types && types->type == CC_SEQ) {
		c->has_ingress = c->has_egress = false;
		for (size_t i = 0; i < types->n; i++) {
			const char *t = scalar(types->kids[i]);
			if (t && !strcmp(t, "Ingress"))
				c->has_ingress = true;
			if (t && !strcmp(t, "Egress"))
				c->has_egress = true;
		}
	}
	if (labels_from(map_get(map_get(spec, "podSelector"), "matchLabels"), &c->sel.pod_labels, NULL, NULL, NULL) ||
	    np_rules(c, map_get(spec, "egress"), false) || np_rules(c, map_get(spec, "ingress"), true)) {
		cc_contract_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* ---------------------------------------------------------------- Cilium */

static int cil_rules(struct cc_contract *c, const struct cc_node *list, bool ingress)
{
	struct cc_net_list *l = ingress ? &c->ingress : &c->egress;

	for (size_t i = 0; list && list->type == CC_SEQ && i < list->n; i++) {
		const struct cc_node *rule = list->kids[i];
		const struct cc_node *tp = map_get(rule, "toPorts");
		const struct cc_node *cidr = map_get(rule, ingress ? "fromCIDR" : "toCIDR");
		const struct cc_node *fq = ingress ? NULL : map_get(rule, "toFQDNs");
		const struct cc_node *eps = map_get(rule, ingress ? "fromEndpoints" : "toEndpoints");
		const struct cc_node *ports = NULL;
		bool l7dns = false;

		for (size_t k = 0; tp && tp->type == CC_SEQ && k < tp->n; k++) {
			if (!ports)
				ports = map_get(tp->kids[k], "ports");
			if (map_get(map_get(tp->kids[k], "rules"), "dns"))
				l7dns = true;
		}
		if (!ingress && l7dns && is_dns_rule(ports)) {
			c->dns = true;
			continue;
		}
		struct { const struct cc_node *n; enum cc_peer_kind k; } groups[] = {
			{ cidr, CC_PEER_CIDR }, { fq, CC_PEER_DNS }, { eps, CC_PEER_SELECTOR },
		};
		size_t made = 0;
		for (size_t g = 0; g < 3; g++) {
			const struct cc_node *gl = groups[g].n;
			for (size_t j = 0; gl && gl->type == CC_SEQ && j < gl->n; j++) {
				struct cc_net_rule *r = net_push(l, rule->line);
				if (!r)
					return -ENOMEM;
				made++;
				r->peer = groups[g].k;
				if (g == 0) {
					r->cidr = cc_strdup(scalar(gl->kids[j]));
				} else if (g == 1) {
					const char *nm = scalar(map_get(gl->kids[j], "matchName"));
					const char *pt = scalar(map_get(gl->kids[j], "matchPattern"));
					r->dns = cc_strdup(nm ? nm : pt ? pt : "");
				} else {
					char *ns = NULL;
					if (labels_from(map_get(gl->kids[j], "matchLabels"), &r->labels,
							"io.kubernetes.pod.namespace", &ns, "k8s:"))
						return -ENOMEM;
					if (ns) {
						r->has_ns = true;
						r->ns = ns;
					}
				}
				const struct cc_node *ps = ports;
				for (size_t k = 0; ps && ps->type == CC_SEQ && k < ps->n; k++) {
					int port = parse_port_num(scalar(map_get(ps->kids[k], "port")));
					int end = parse_port_num(scalar(map_get(ps->kids[k], "endPort")));
					const char *proto = scalar(map_get(ps->kids[k], "protocol"));
					if (port <= 0) {
						port = 1;
						end = 65535;
					}
					if (!proto || !strcmp(proto, "ANY")) {
						if (port_push(r, port, end > port ? end : 0, "TCP") ||
						    port_push(r, port, end > port ? end : 0, "UDP"))
							return -ENOMEM;
					} else if (port_push(r, port, end > port ? end : 0, proto)) {
						return -ENOMEM;
					}
				}
			}
		}
		if (!made && (tp || map_get(rule, ingress ? "fromEntities" : "toEntities"))) {
			/* entities (world, all, cluster) or ports only: any peer */
			struct cc_net_rule *r = net_push(l, rule->line);
			if (!r)
				return -ENOMEM;
			r->peer = CC_PEER_ANY;
			for (size_t k = 0; ports && ports->type == CC_SEQ && k < ports->n; k++) {
				int port = parse_port_num(scalar(map_get(ports->kids[k], "port")));
				const char *proto = scalar(map_get(ports->kids[k], "protocol"));
				if (port_push(r, port > 0 ? port : 1, port > 0 ? 0 : 65535,
					      proto && strcmp(proto, "ANY") ? proto : "TCP"))
					return -ENOMEM;
			}
		}
	}
	return 0;
}

static int import_cilium(const char *file, const struct cc_node *root, struct cc_contract **out)
{
	const struct cc_node *spec = map_get(root, "spec");
	struct cc_contract *c = new_contract(file, scalar(map_get(map_get(root, "metadata"), "name")));
	if (!c)
		return -ENOMEM;
	c->has_network = true;
	c->has_egress = map_get(spec, "egress") != NULL;
	c->has_ingress = map_get(spec, "ingress") != NULL;
	if (labels_from(map_get(map_get(spec, "endpointSelector"), "matchLabels"), &c->sel.pod_labels, NULL, NULL, "k8s:") ||
	    cil_rules(c, map_get(spec, "egress"), false) || cil_rules(c, map_get(spec, "ingress"), true)) {
		cc_contract_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------------- KubeArmor */

/*
 * KubeArmor: the effective action of a rule is its own, else its section's,
 * else the policy's. Allow rules are an allow list; Block rules a deny list
 * (with readOnly: true a Block rule blocks only writes). Audit rules only
 * report, so they neither allow nor deny.
 */
static const char *ka_action(const struct cc_node *e, const struct cc_node *sec, const char *top)
{
	const char *a = scalar(map_get(e, "action"));
	if (!a)
		a = scalar(map_get(sec, "action"));
	return a ? a : top ? top : "Block"; /* KubeArmor's default action is Block */
}

static int ka_paths(const struct cc_node *sec, const char *top, struct cc_path_list *allow,
		    struct cc_path_list *allow_ro, struct cc_path_list *deny,
		    struct cc_path_list *deny_write)
{
	static const char *const kinds[] = { "matchPaths", "matchDirectories", "matchPatterns" };
	for (int k = 0; k < 3; k++) {
		const struct cc_node *l = map_get(sec, kinds[k]);
		for (size_t i = 0; l && l->type == CC_SEQ && i < l->n; i++) {
			const struct cc_node *e = l->kids[i];
			const char *act = ka_action(e, sec, top);
			const char *ro = scalar(map_get(e, "readOnly"));
			const char *p = scalar(map_get(e, k == 0 ? "path" : k == 1 ? "dir" : "pattern"));
			bool readonly = ro && !strcmp(ro, "true");
			struct cc_path_list *dst;
			if (!p)
				continue;
			if (!strcmp(act, "Allow"))
				dst = readonly && allow_ro ? allow_ro : allow;
			else if (!strcmp(act, "Block"))
				dst = readonly && deny_write ? deny_write : deny;
			else
				continue;
			if (path_push(dst, p, k == 1 ? CC_PATH_DIR : k == 2 ? CC_PATH_GLOB : CC_PATH_EXACT, e->line))
				return -ENOMEM;
		}
	}
	return 0;
}

static int import_kubearmor(const char *file, const struct cc_node *root, struct cc_contract **out)
{
	const struct cc_node *spec = map_get(root, "spec"), *s;
	const char *act = scalar(map_get(spec, "action"));
	struct cc_contract *c = new_contract(file, scalar(map_get(map_get(root, "metadata"), "name")));
	if (!c)
		return -ENOMEM;
	c->audit = act && !strcmp(act, "Audit");
	if (labels_from(map_get(map_get(spec, "selector"), "matchLabels"), &c->sel.pod_labels, "kubearmor.io/container.name", NULL, NULL))
		goto oom;
	if ((s = map_get(spec, "process"))) {
		if (ka_paths(s, act, &c->proc_allow, NULL, &c->proc_deny, NULL))
			goto oom;
		c->has_process = c->proc_allow.n || c->proc_deny.n;
	}
	if ((s = map_get(spec, "file"))) {
		if (ka_paths(s, act, &c->f_write, &c->f_read, &c->f_deny, &c->f_deny_write))
			goto oom;
		c->has_files = c->f_write.n || c->f_read.n || c->f_deny.n || c->f_deny_write.n;
	}
	if ((s = map_get(spec, "capabilities"))) {
		const struct cc_node *l = map_get(s, "matchCapabilities");
		for (size_t i = 0; l && l->type == CC_SEQ && i < l->n; i++) {
			const char *cap = scalar(map_get(l->kids[i], "capability"));
			const char *a = ka_action(l->kids[i], s, act);
			char up[64];
			size_t k;
			if (!cap || !strcmp(a, "Audit"))
				continue;
			for (k = 0; cap[k] && k < sizeof(up) - 1; k++)
				up[k] = (char)toupper((unsigned char)cap[k]);
			up[k] = '\0';
			if (name_push(!strcmp(a, "Allow") ? &c->caps : &c->caps_deny, up,
				      l->kids[i]->line, l->kids[i]->col))
				goto oom;
		}
		c->has_caps = c->caps.n || c->caps_deny.n;
	}
	if ((s = map_get(spec, "network"))) {
		const struct cc_node *l = map_get(s, "matchProtocols");
		/* protocol-level rules: any peer, any port of that protocol */
		for (size_t i = 0; l && l->type == CC_SEQ && i < l->n; i++) {
			const char *pr = scalar(map_get(l->kids[i], "protocol"));
			const char *a = ka_action(l->kids[i], s, act);
			if (!pr || !strcmp(a, "Audit"))
				continue;
			const char *P = !strcasecmp(pr, "udp") ? "UDP" : !strcasecmp(pr, "tcp") ? "TCP" : NULL;
			if (!P)
				continue;
			bool allow = !strcmp(a, "Allow");
			if (allow && !strcmp(P, "UDP"))
				c->dns = true;
			for (int dir = 0; dir < 2; dir++) {
				struct cc_net_list *dst = allow ? (dir ? &c->ingress : &c->egress) :
							  (dir ? &c->ingress_deny : &c->egress_deny);
				struct cc_net_rule *r = net_push(dst, l->kids[i]->line);
				if (!r || port_push(r, 1, 65535, P))
					goto oom;
			}
		}
		c->has_network = c->has_egress = c->has_ingress = c->egress.n || c->egress_deny.n;
	}
	*out = c;
	return 0;
oom:
	cc_contract_free(c);
	return -ENOMEM;
}

/* -------------------------------------------------------------- AppArmor */

static bool aa_looks(const char *data)
{
	const char *p = data;
	while ((p = strstr(p, "profile "))) {
		if (p == data || p[-1] == '\n' || p[-1] == ' ' || p[-1] == '\t')
			return strchr(p, '{') != NULL;
		p++;
	}
	return false;
}

static int import_apparmor(const char *file, const char *data, struct cc_contract **out,
			   struct cc_diag *d)
{
	struct cc_contract *c = new_contract(file, "apparmor");
	char *copy = strdup(data), *save = NULL, *line;
	int ln = 0, depth = 0;
	bool any_file = false, any_net = false, any_cap = false;

	if (!c || !copy) {
		free(copy);
		cc_contract_free(c);
		return -ENOMEM;
	}
	c->has_process = c->has_files = c->has_caps = c->has_network = true;
	c->has_egress = c->has_ingress = true;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ln++;
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (!strncmp(s, "#include ", 9) || !strncmp(s, "include ", 8)) {
			/* abstractions are not expanded: say what gap cannot see */
			if (depth > 0)
				cc_diag_add(d, "%s:%d: warning: %s is not expanded; what it allows shows up as denied",
					    file, ln, s);
			continue;
		}
		char *hash = strchr(s, '#');
		if (hash && (hash == s || isspace((unsigned char)hash[-1])))
			*hash = '\0';
		size_t l = strlen(s);
		while (l && isspace((unsigned char)s[l - 1]))
			s[--l] = '\0';
		if (!l)
			continue;
		if (!strncmp(s, "profile ", 8) || (s[0] == '/' && s[l - 1] == '{')) {
			if (strstr(s, "complain"))
				c->audit = true;
			depth++;
			continue;
		}
		if (!strcmp(s, "}")) {
			depth--;
			continue;
		}
		if (depth <= 0 || s[l - 1] != ',')
			continue;
		s[--l] = '\0';
		bool deny = false;
		for (;;) {
			if (!strncmp(s, "deny ", 5)) {
				deny = true;
				s += 5;
			} else if (!strncmp(s, "audit ", 6) || !strncmp(s, "owner ", 6) ||
				   !strncmp(s, "allow ", 6)) {
				s += 6;   /* qualifiers that do not change what is allowed */
			} else {
				break;
			}
			while (isspace((unsigned char)*s))
				s++;
		}
		if (!strcmp(s, "capability")) {
			any_cap = true;
		} else if (!strncmp(s, "capability ", 11)) {
			char *tok, *sv = NULL;
			for (tok = strtok_r(s + 11, " ", &sv); tok; tok = strtok_r(NULL, " ", &sv)) {
				char up[64];
				size_t k;
				for (k = 0; tok[k] && k < sizeof(up) - 1; k++)
					up[k] = (char)toupper((unsigned char)tok[k]);
				up[k] = '\0';
				if (!deny && name_push(&c->caps, up, ln, 1))
					goto oom;
			}
		} else if (!strcmp(s, "network")) {
			any_net = true;
		} else if (!strncmp(s, "network ", 8) && !deny) {
			const char *P = strstr(s, "stream") || strstr(s, "tcp") ? "TCP" :
					strstr(s, "dgram") || strstr(s, "udp") ? "UDP" : NULL;
			if (!strncmp(s + 8, "unix", 4) || !P)
				continue;
			if (!strcmp(P, "UDP"))
				c->dns = true;
			for (int dir = 0; dir < 2; dir++) {
				struct cc_net_rule *r = net_push(dir ? &c->ingress : &c->egress, ln);
				if (!r || port_push(r, 1, 65535, P))
					goto oom;
			}
		} else if (!strcmp(s, "file")) {
			any_file = true;
		} else if (s[0] == '/' || s[0] == '"') {
			char *sp = strrchr(s, ' ');
			if (!sp)
				continue;
			*sp = '\0';
			char *perm = sp + 1, *path = s;
			size_t pl = strlen(path);
			if (path[0] == '"' && pl > 1 && path[pl - 1] == '"') {
				path[pl - 1] = '\0';
				path++;
				pl -= 2;
			}
			if (strchr(perm, '-')) /* "->" transition targets */
				continue;
			enum cc_path_kind kind = CC_PATH_EXACT;
			char buf[4096];
			snprintf(buf, sizeof(buf), "%s", path);
			if (pl >= 3 && !strcmp(buf + pl - 3, "/**")) {
				buf[pl - 2] = '\0';
				kind = CC_PATH_DIR;
			} else if (strpbrk(buf, "*?[{")) {
				kind = CC_PATH_GLOB;
			}
			if (deny) {
				if (path_push(&c->f_deny, buf, kind, ln) ||
				    (strchr(perm, 'x') && path_push(&c->proc_deny, buf, kind, ln)))
					goto oom;
				continue;
			}
			/* the strongest permission decides where the rule counts */
			int err = 0;

			if (strchr(perm, 'x'))
				err = path_push(&c->proc_allow, buf, kind, ln) ||
				      path_push(&c->f_exec, buf, kind, ln);
			else if (strchr(perm, 'w') || strchr(perm, 'a'))
				err = path_push(&c->f_write, buf, kind, ln);
			else if (strpbrk(perm, "rm"))
				err = path_push(&c->f_read, buf, kind, ln);
			if (err)
				goto oom;
		}
	}
	if (any_file)
		c->has_files = false;
	if (any_file && !c->proc_allow.n)
		c->has_process = false;
	if (any_net) {
		c->has_network = c->has_egress = c->has_ingress = false;
	}
	if (any_cap)
		c->has_caps = false;
	free(copy);
	*out = c;
	return 0;
oom:
	free(copy);
	cc_contract_free(c);
	return -ENOMEM;
}

int cc_policy_load(const char *file, const char *data, size_t len, struct cc_contract **out,
		   const char **format, struct cc_diag *d)
{
	struct cc_node *root = NULL;
	int r;

	*out = NULL;
	*format = "unknown";
	if (memchr(data, '\0', len)) {
		cc_diag_add(d, "%s: binary data is not a policy", file);
		return -EINVAL;
	}
	/* the text scanners below need a terminated string; callers pass a length */
	char *text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, data, len);
	text[len] = '\0';
	bool aa = aa_looks(text);
	if (aa) {
		*format = "apparmor";
		r = import_apparmor(file, text, out, d);
	}
	free(text);
	if (aa)
		return r;
	r = cc_yaml_load(file, data, len, &root, d);
	if (r)
		return r;
	if (root->type != CC_MAP) {
		cc_diag_add(d, "%s:%d:%d: (document): not a policy (expected a mapping)", file,
			    root->line, root->col);
		cc_node_free(root);
		return -EINVAL;
	}
	const char *api = scalar(map_get(root, "apiVersion"));
	const char *kind = scalar(map_get(root, "kind"));
	if (map_get(root, "defaultAction")) {
		*format = "seccomp";
		r = import_seccomp(file, root, out, d);
	} else if (api && kind && !strcmp(api, "kloudlens.io/v1") && !strcmp(kind, "BehaviorContract")) {
		*format = "contract";
		r = cc_contract_from_node(file, root, out, d);
	} else if (api && kind && !strcmp(api, "networking.k8s.io/v1") && !strcmp(kind, "NetworkPolicy")) {
		*format = "netpol";
		r = import_netpol(file, root, out);
	} else if (api && kind && !strcmp(api, "cilium.io/v2") && !strcmp(kind, "CiliumNetworkPolicy")) {
		*format = "cilium";
		r = import_cilium(file, root, out);
	} else if (api && kind && !strcmp(api, "security.kubearmor.com/v1") && !strcmp(kind, "KubeArmorPolicy")) {
		*format = "kubearmor";
		r = import_kubearmor(file, root, out);
	} else {
		cc_diag_add(d, "%s:%d:%d: (document): unsupported policy (apiVersion %s, kind %s); supported: BehaviorContract, OCI seccomp JSON, NetworkPolicy, CiliumNetworkPolicy, KubeArmorPolicy, AppArmor",
			    file, root->line, root->col, api ? api : "-", kind ? kind : "-");
		r = -EINVAL;
	}
	cc_node_free(root);
	return r;
}
