/* SPDX-License-Identifier: Apache-2.0 */
/* BehaviorContract IR: parsing and checking (docs/contract-ir.md). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <seccomp.h>

#include "parse-util.h"

const char *const cc_capability_names[] = {
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM", NULL,
};

bool cc_capability_known(const char *name)
{
	for (size_t i = 0; cc_capability_names[i]; i++)
		if (!strcmp(cc_capability_names[i], name))
			return true;
	return false;
}

/* Names are checked against x86_64, the architecture the profiles target;
 * runc ignores unknown names silently, so an unknown one must fail here. */
bool cc_syscall_known(const char *name)
{
	return seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name) >= 0;
}

static void path_rule_free(struct cc_path_rule *r)
{
	free(r->path);
	for (size_t i = 0; i < r->nargs; i++)
		free(r->args[i]);
	free(r->args);
	free(r->generalised);
	evidence_free(&r->ev);
}

static void path_list_free(struct cc_path_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		path_rule_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void net_list_free(struct cc_net_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct cc_net_rule *r = &l->v[i];
		free(r->cidr);
		free(r->dns);
		free(r->ns);
		labels_free(&r->labels);
		free(r->ports);
		for (size_t k = 0; k < r->nexcept; k++)
			free(r->except[k]);
		free(r->except);
		free(r->generalised);
		evidence_free(&r->ev);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void name_list_free(struct cc_name_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		evidence_free(&l->v[i].ev);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void cc_contract_free(struct cc_contract *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->name);
	free(c->ns);
	labels_free(&c->labels);
	free(c->df_profile);
	free(c->df_start);
	free(c->df_end);
	free(c->sel.ns);
	free(c->sel.container);
	free(c->sel.image);
	labels_free(&c->sel.pod_labels);
	path_list_free(&c->proc_allow);
	path_list_free(&c->proc_deny);
	path_list_free(&c->f_read);
	path_list_free(&c->f_write);
	path_list_free(&c->f_exec);
	path_list_free(&c->f_deny);
	net_list_free(&c->egress);
	net_list_free(&c->ingress);
	name_list_free(&c->sc_allow);
	name_list_free(&c->sc_deny);
	name_list_free(&c->caps);
	path_list_free(&c->host_paths);
	path_list_free(&c->f_deny_write);
	name_list_free(&c->caps_deny);
	net_list_free(&c->egress_deny);
	net_list_free(&c->ingress_deny);
	free(c->host_path_ro);
	free(c->seccomp_profile);
	free(c->apparmor_profile);
	free(c);
}

/* ------------------------------------------------------------ path rules */

static bool check_path(struct pctx *p, const struct cc_node *n, const char *path, const char *s,
		       enum cc_path_kind *kind)
{
	if (s[0] != '/') {
		perr(p, n, path, "must be an absolute path (start with /)");
		return false;
	}
	if (strstr(s, "//") || strstr(s, "/./") || strstr(s, "/../") ||
	    (strlen(s) >= 3 && !strcmp(s + strlen(s) - 3, "/..")) ||
	    (strlen(s) >= 2 && !strcmp(s + strlen(s) - 2, "/."))) {
		perr(p, n, path, "must be a normalised path (no //, /./ or /../)");
		return false;
	}
	/* Only the wildcards every target can express: AppArmor, KubeArmor
	 * and the gap matcher agree on * ** ?; classes and alternations not. */
	if (strpbrk(s, "[]{}\"\\^")) {
		perr(p, n, path, "unsupported character in path (allowed wildcards: * ** ?)");
		return false;
	}
	for (const char *c = s; *c; c++)
		if (isspace((unsigned char)*c)) {
			perr(p, n, path, "whitespace is not allowed in paths");
			return false;
		}
	int stars = 0;
	for (const char *c = s; *c; c++)
		if ((*c == '*' && c[1] != '*') || *c == '?')
			stars++;
	/* bounds the backtracking of the gap matcher on hostile patterns */
	if (stars > 8) {
		perr(p, n, path, "too many wildcards (at most 8)");
		return false;
	}
	if (strstr(s, "***")) {
		perr(p, n, path, "*** is not a valid wildcard (use * or **)");
		return false;
	}
	if (s[strlen(s) - 1] == '/')
		*kind = CC_PATH_DIR;
	else if (strpbrk(s, "*?"))
		*kind = CC_PATH_GLOB;
	else
		*kind = CC_PATH_EXACT;
	return true;
}

static bool parse_path_rule(struct pctx *p, const struct cc_node *n, const char *path,
			    bool is_proc, struct cc_path_rule *r)
{
	static const char *const keys_file[] = { "path", "generalised", "evidence", NULL };
	static const char *const keys_proc[] = { "path", "args", "generalised", "evidence", NULL };
	const struct cc_node *pn = n, *v;
	char kp[PATH_MAX_LEN];
	bool ok = true;

	r->line = n->line;
	r->col = n->col;
	if (n->type == CC_MAP) {
		if (!map_check(p, n, path, is_proc ? keys_proc : keys_file))
			return false;
		pn = map_get(n, "path");
		if (!req(p, n, pn, path, "path"))
			return false;
		path_key(kp, path, "path");
	} else {
		snprintf(kp, sizeof(kp), "%s", path);
	}
	if (!get_str(p, pn, kp, &r->path))
		return false;
	if (!check_path(p, pn, kp, r->path, &r->kind))
		ok = false;
	if (n->type != CC_MAP)
		return ok;
	if ((v = map_get(n, "args"))) {
		path_key(kp, path, "args");
		if (seq_check(p, v, kp)) {
			if (!v->n) {
				perr(p, v, kp, "empty list (omit args to allow any arguments)");
				ok = false;
			}
			r->args = calloc(v->n ? v->n : 1, sizeof(char *));
			if (!r->args) {
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
				r->args[r->nargs] = strdup(v->kids[i]->str);
				if (!r->args[r->nargs]) {
					p->oom = 1;
					return false;
				}
				r->nargs++;
			}
		} else {
			ok = false;
		}
	}
	if ((v = map_get(n, "generalised"))) {
		path_key(kp, path, "generalised");
		ok &= get_str(p, v, kp, &r->generalised);
	}
	if ((v = map_get(n, "evidence"))) {
		path_key(kp, path, "evidence");
		ok &= get_evidence(p, v, kp, &r->ev);
	}
	return ok;
}

static bool parse_path_list(struct pctx *p, const struct cc_node *n, const char *path,
			    bool is_proc, struct cc_path_list *l)
{
	bool ok = true;

	if (!seq_check(p, n, path))
		return false;
	l->v = calloc(n->n ? n->n : 1, sizeof(*l->v));
	if (!l->v) {
		p->oom = 1;
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		char ip[PATH_MAX_LEN];
		path_idx(ip, path, i);
		struct cc_path_rule *r = &l->v[l->n];
		if (!parse_path_rule(p, n->kids[i], ip, is_proc, r)) {
			path_rule_free(r);
			memset(r, 0, sizeof(*r));
			ok = false;
			continue;
		}
		for (size_t j = 0; j < l->n; j++)
			if (!strcmp(l->v[j].path, r->path) && !r->nargs && !l->v[j].nargs) {
				perr(p, n->kids[i], ip, "duplicate rule for %s (first at line %d)",
				     r->path, l->v[j].line);
				ok = false;
				break;
			}
		l->n++;
	}
	return ok;
}

/* A deny rule that names exactly what an allow rule names contradicts it. */
static void contradict_paths(struct pctx *p, const struct cc_path_list *allow, const char *aname,
			     const struct cc_path_list *deny, const char *dpath)
{
	for (size_t i = 0; i < deny->n; i++)
		for (size_t j = 0; j < allow->n; j++)
			if (!strcmp(deny->v[i].path, allow->v[j].path)) {
				char ip[PATH_MAX_LEN];
				struct cc_node at = { .line = deny->v[i].line,
						      .col = deny->v[i].col };
				path_idx(ip, dpath, i);
				perr(p, &at, ip, "contradicts %s (line %d): %s is both allowed and denied",
				     aname, allow->v[j].line, deny->v[i].path);
			}
}

/* -------------------------------------------------------------- network */

static bool parse_port(struct pctx *p, const struct cc_node *n, const char *path,
		       struct cc_port *pt)
{
	static const char *const keys[] = { "port", "endPort", "protocol", NULL };
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];
	int64_t x;
	bool ok = true;

	strcpy(pt->proto, "TCP");
	if (n->type == CC_SCALAR) {
		if (!get_int(p, n, path, 1, 65535, &x))
			return false;
		pt->port = (int)x;
		return true;
	}
	if (!map_check(p, n, path, keys))
		return false;
	v = map_get(n, "port");
	path_key(kp, path, "port");
	if (!req(p, n, v, path, "port") || !get_int(p, v, kp, 1, 65535, &x))
		return false;
	pt->port = (int)x;
	if ((v = map_get(n, "endPort"))) {
		path_key(kp, path, "endPort");
		if (get_int(p, v, kp, 1, 65535, &x)) {
			if (x < pt->port) {
				perr(p, v, kp, "must not be below port (%d)", pt->port);
				ok = false;
			} else if (x > pt->port) {
				pt->end_port = (int)x;
			}
		} else {
			ok = false;
		}
	}
	if ((v = map_get(n, "protocol"))) {
		path_key(kp, path, "protocol");
		if (v->type != CC_SCALAR ||
		    (strcmp(v->str, "TCP") && strcmp(v->str, "UDP") && strcmp(v->str, "SCTP"))) {
			perr(p, v, kp, "must be TCP, UDP or SCTP");
			ok = false;
		} else {
			snprintf(pt->proto, sizeof(pt->proto), "%s", v->str);
		}
	}
	return ok;
}

static bool parse_peer(struct pctx *p, const struct cc_node *n, const char *path,
		       struct cc_net_rule *r)
{
	static const char *const keys[] = { "cidr", "dns", "selector", NULL };
	static const char *const skeys[] = { "namespace", "podLabels", NULL };
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];
	int set = 0;
	bool ok = true;

	if (!map_check(p, n, path, keys))
		return false;
	if ((v = map_get(n, "cidr"))) {
		set++;
		path_key(kp, path, "cidr");
		r->peer = CC_PEER_CIDR;
		if (get_str(p, v, kp, &r->cidr) && !cc_valid_cidr(r->cidr)) {
			perr(p, v, kp, "not a CIDR (like 10.0.0.0/8 or fd00::/8)");
			ok = false;
		}
	}
	if ((v = map_get(n, "dns"))) {
		set++;
		path_key(kp, path, "dns");
		r->peer = CC_PEER_DNS;
		if (get_str(p, v, kp, &r->dns) && !cc_valid_dns(r->dns, true)) {
			perr(p, v, kp,
			     "not a DNS name (letters, digits, - and ., optionally starting with *.)");
			ok = false;
		}
	}
	if ((v = map_get(n, "selector"))) {
		set++;
		path_key(kp, path, "selector");
		r->peer = CC_PEER_SELECTOR;
		if (map_check(p, v, kp, skeys)) {
			const struct cc_node *w;
			char sp[PATH_MAX_LEN];
			if (!v->n) {
				perr(p, v, kp, "empty selector (name a namespace or pod labels)");
				ok = false;
			}
			if ((w = map_get(v, "namespace"))) {
				path_key(sp, kp, "namespace");
				r->has_ns = get_str(p, w, sp, &r->ns);
				ok &= r->has_ns;
			}
			if ((w = map_get(v, "podLabels"))) {
				path_key(sp, kp, "podLabels");
				ok &= get_labels(p, w, sp, &r->labels);
			}
		} else {
			ok = false;
		}
	}
	if (set == 0) {
		perr(p, n, path, "empty peer (set one of cidr, dns, selector)");
		ok = false;
	} else if (set > 1) {
		perr(p, n, path, "contradictory peer: set only one of cidr, dns, selector");
		ok = false;
	}
	return ok;
}

static bool parse_net_list(struct pctx *p, const struct cc_node *n, const char *path,
			   const char *peer_key, struct cc_net_list *l)
{
	const char *keys[] = { peer_key, "ports", "generalised", "evidence", NULL };
	bool ok = true;

	if (!seq_check(p, n, path))
		return false;
	l->v = calloc(n->n ? n->n : 1, sizeof(*l->v));
	if (!l->v) {
		p->oom = 1;
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct cc_node *rn = n->kids[i], *v;
		struct cc_net_rule *r = &l->v[l->n++];
		char ip[PATH_MAX_LEN], kp[PATH_MAX_LEN];

		path_idx(ip, path, i);
		r->line = rn->line;
		r->col = rn->col;
		if (!map_check(p, rn, ip, keys)) {
			ok = false;
			continue;
		}
		if ((v = map_get(rn, peer_key))) {
			path_key(kp, ip, peer_key);
			ok &= parse_peer(p, v, kp, r);
		}
		if ((v = map_get(rn, "ports"))) {
			path_key(kp, ip, "ports");
			if (seq_check(p, v, kp)) {
				if (!v->n) {
					perr(p, v, kp, "empty list (omit ports to allow every port)");
					ok = false;
				}
				r->ports = calloc(v->n ? v->n : 1, sizeof(*r->ports));
				if (!r->ports) {
					p->oom = 1;
					return false;
				}
				for (size_t j = 0; j < v->n; j++) {
					char pp[PATH_MAX_LEN];
					path_idx(pp, kp, j);
					if (parse_port(p, v->kids[j], pp, &r->ports[r->nports]))
						r->nports++;
					else
						ok = false;
				}
			} else {
				ok = false;
			}
		}
		if (!map_get(rn, peer_key) && !map_get(rn, "ports")) {
			perr(p, rn, ip, "empty rule: give %s, ports or both", peer_key);
			ok = false;
		}
		if ((v = map_get(rn, "generalised"))) {
			path_key(kp, ip, "generalised");
			ok &= get_str(p, v, kp, &r->generalised);
		}
		if ((v = map_get(rn, "evidence"))) {
			path_key(kp, ip, "evidence");
			ok &= get_evidence(p, v, kp, &r->ev);
		}
	}
	return ok;
}

/* ----------------------------------------------------------- name lists */

static bool parse_name_list(struct pctx *p, const struct cc_node *n, const char *path, bool caps,
			    struct cc_name_list *l)
{
	static const char *const keys[] = { "name", "evidence", NULL };
	bool ok = true;

	if (!seq_check(p, n, path))
		return false;
	l->v = calloc(n->n ? n->n : 1, sizeof(*l->v));
	if (!l->v) {
		p->oom = 1;
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct cc_node *e = n->kids[i], *nn = e, *v;
		struct cc_name_rule *r = &l->v[l->n];
		char ip[PATH_MAX_LEN], kp[PATH_MAX_LEN];

		path_idx(ip, path, i);
		snprintf(kp, sizeof(kp), "%s", ip);
		r->line = e->line;
		r->col = e->col;
		if (e->type == CC_MAP) {
			if (!map_check(p, e, ip, keys)) {
				ok = false;
				continue;
			}
			nn = map_get(e, "name");
			if (!req(p, e, nn, ip, "name")) {
				ok = false;
				continue;
			}
			path_key(kp, ip, "name");
			if ((v = map_get(e, "evidence"))) {
				char ep[PATH_MAX_LEN];
				path_key(ep, ip, "evidence");
				ok &= get_evidence(p, v, ep, &r->ev);
			}
		}
		if (!get_str(p, nn, kp, &r->name)) {
			evidence_free(&r->ev);
			ok = false;
			continue;
		}
		bool known = caps ? cc_capability_known(r->name) : cc_syscall_known(r->name);
		if (!known) {
			if (caps && !strncmp(r->name, "CAP_", 4))
				perr(p, nn, kp, "write capabilities without the CAP_ prefix (%s)",
				     r->name + 4);
			else
				perr(p, nn, kp, "unknown %s \"%s\"", caps ? "capability" : "syscall",
				     r->name);
			ok = false;
		}
		for (size_t j = 0; j < l->n; j++)
			if (!strcmp(l->v[j].name, r->name)) {
				perr(p, nn, kp, "duplicate entry \"%s\" (first at line %d)", r->name,
				     l->v[j].line);
				ok = false;
				break;
			}
		l->n++;
	}
	return ok;
}

/* ----------------------------------------------------------------- spec */

static bool parse_profile_ref(struct pctx *p, const struct cc_node *n, const char *path,
			      char **out)
{
	static const char *const keys[] = { "type", "localhostProfile", NULL };
	const struct cc_node *t, *lp;
	char kp[PATH_MAX_LEN];
	char *type = NULL, *local = NULL;
	bool ok = false;

	if (!map_check(p, n, path, keys))
		return false;
	t = map_get(n, "type");
	lp = map_get(n, "localhostProfile");
	path_key(kp, path, "type");
	if (!req(p, n, t, path, "type") || !get_str(p, t, kp, &type))
		goto out;
	if (strcmp(type, "RuntimeDefault") && strcmp(type, "Localhost") &&
	    strcmp(type, "Unconfined")) {
		perr(p, t, kp, "must be RuntimeDefault, Localhost or Unconfined");
		goto out;
	}
	path_key(kp, path, "localhostProfile");
	if (!strcmp(type, "Localhost")) {
		if (!lp) {
			perr(p, n, path, "type Localhost needs localhostProfile");
			goto out;
		}
		if (!get_str(p, lp, kp, &local))
			goto out;
	} else if (lp) {
		perr(p, lp, kp, "only valid with type Localhost");
		goto out;
	}
	if (local) {
		if (asprintf(out, "Localhost:%s", local) < 0) {
			p->oom = 1;
			goto out;
		}
	} else {
		*out = strdup(type);
	}
	ok = true;
out:
	free(type);
	free(local);
	return ok;
}

static int tri(struct pctx *p, const struct cc_node *m, const char *path, const char *key)
{
	const struct cc_node *v = map_get(m, key);
	char kp[PATH_MAX_LEN];
	bool b;

	if (!v)
		return CC_UNSET;
	path_key(kp, path, key);
	if (!get_bool(p, v, kp, &b))
		return CC_UNSET;
	return b;
}

static void parse_pod(struct pctx *p, const struct cc_node *n, const char *path,
		      struct cc_contract *c)
{
	static const char *const keys[] = {
		"runAsNonRoot", "allowPrivilegeEscalation", "privileged", "hostPID", "hostIPC",
		"hostNetwork", "hostPaths", "readOnlyRootFilesystem", "seccompProfile",
		"appArmorProfile", NULL,
	};
	static const char *const hkeys[] = { "path", "readOnly", NULL };
	const struct cc_node *v;
	char kp[PATH_MAX_LEN];

	if (!map_check(p, n, path, keys))
		return;
	c->has_pod = true;
	c->run_as_non_root = tri(p, n, path, "runAsNonRoot");
	c->allow_priv_esc = tri(p, n, path, "allowPrivilegeEscalation");
	c->privileged = tri(p, n, path, "privileged");
	c->host_pid = tri(p, n, path, "hostPID");
	c->host_ipc = tri(p, n, path, "hostIPC");
	c->host_network = tri(p, n, path, "hostNetwork");
	c->ro_rootfs = tri(p, n, path, "readOnlyRootFilesystem");
	/* The API server rejects this pair (validation.go: "cannot set
	 * allowPrivilegeEscalation to false and privileged to true"). */
	if (c->privileged == 1 && c->allow_priv_esc == 0) {
		path_key(kp, path, "allowPrivilegeEscalation");
		perr(p, map_get(n, "allowPrivilegeEscalation"), kp,
		     "contradicts privileged: true (a privileged container can always escalate)");
	}
	if ((v = map_get(n, "hostPaths"))) {
		path_key(kp, path, "hostPaths");
		c->has_host_paths = true;
		if (seq_check(p, v, kp)) {
			c->host_paths.v = calloc(v->n ? v->n : 1, sizeof(*c->host_paths.v));
			c->host_path_ro = calloc(v->n ? v->n : 1, sizeof(bool));
			if (!c->host_paths.v || !c->host_path_ro) {
				p->oom = 1;
				return;
			}
			for (size_t i = 0; i < v->n; i++) {
				const struct cc_node *h = v->kids[i], *w;
				char ip[PATH_MAX_LEN], hp[PATH_MAX_LEN];
				struct cc_path_rule *r = &c->host_paths.v[c->host_paths.n];
				path_idx(ip, kp, i);
				if (!map_check(p, h, ip, hkeys))
					continue;
				w = map_get(h, "path");
				path_key(hp, ip, "path");
				if (!req(p, h, w, ip, "path") || !get_str(p, w, hp, &r->path))
					continue;
				r->line = h->line;
				r->col = h->col;
				if (!check_path(p, w, hp, r->path, &r->kind) ||
				    r->kind == CC_PATH_GLOB) {
					if (r->kind == CC_PATH_GLOB)
						perr(p, w, hp, "hostPath mounts cannot be globs");
					free(r->path);
					r->path = NULL;
					continue;
				}
				bool ro = false;
				if ((w = map_get(h, "readOnly"))) {
					path_key(hp, ip, "readOnly");
					get_bool(p, w, hp, &ro);
				}
				c->host_path_ro[c->host_paths.n++] = ro;
			}
		}
	}
	if ((v = map_get(n, "seccompProfile"))) {
		path_key(kp, path, "seccompProfile");
		parse_profile_ref(p, v, kp, &c->seccomp_profile);
	}
	if ((v = map_get(n, "appArmorProfile"))) {
		path_key(kp, path, "appArmorProfile");
		parse_profile_ref(p, v, kp, &c->apparmor_profile);
	}
}

static void parse_syscalls(struct pctx *p, const struct cc_node *n, const char *path,
			   struct cc_contract *c)
{
	static const char *const keys[] = { "default", "action", "errno", "allow", "deny", NULL };
	const struct cc_node *v, *dv;
	char kp[PATH_MAX_LEN];
	char *s = NULL;

	if (!map_check(p, n, path, keys))
		return;
	c->has_syscalls = true;
	c->sc_errno = 1; /* EPERM, what a denied call should look like to the workload */
	dv = map_get(n, "default");
	path_key(kp, path, "default");
	if (req(p, n, dv, path, "default") && get_str(p, dv, kp, &s)) {
		if (!strcmp(s, "allow"))
			c->sc_default_allow = true;
		else if (strcmp(s, "deny"))
			perr(p, dv, kp, "must be allow or deny");
	}
	free(s);
	s = NULL;
	if ((v = map_get(n, "action"))) {
		path_key(kp, path, "action");
		if (get_str(p, v, kp, &s)) {
			if (!strcmp(s, "errno"))
				c->sc_action = CC_ACT_ERRNO;
			else if (!strcmp(s, "kill"))
				c->sc_action = CC_ACT_KILL;
			else if (!strcmp(s, "log"))
				c->sc_action = CC_ACT_LOG;
			else if (!strcmp(s, "trap"))
				c->sc_action = CC_ACT_TRAP;
			else
				perr(p, v, kp, "must be errno, kill, log or trap");
		}
		free(s);
	}
	if ((v = map_get(n, "errno"))) {
		int64_t e;
		path_key(kp, path, "errno");
		if (get_int(p, v, kp, 1, 4095, &e))
			c->sc_errno = (int)e;
		if (c->sc_action != CC_ACT_ERRNO)
			perr(p, v, kp, "only valid with action errno");
	}
	if ((v = map_get(n, "allow"))) {
		path_key(kp, path, "allow");
		parse_name_list(p, v, kp, false, &c->sc_allow);
		if (c->sc_default_allow)
			perr(p, v, kp, "contradicts default: allow (list what to deny instead)");
	}
	if ((v = map_get(n, "deny"))) {
		path_key(kp, path, "deny");
		parse_name_list(p, v, kp, false, &c->sc_deny);
		if (dv && !c->sc_default_allow)
			perr(p, v, kp, "contradicts default: deny (everything not allowed is already denied)");
	}
	if (!c->sc_default_allow && dv && !c->sc_allow.n && !map_get(n, "allow"))
		perr(p, n, path, "default: deny needs an allow list");
	if (c->sc_default_allow && !c->sc_deny.n && !map_get(n, "deny"))
		perr(p, n, path, "default: allow needs a deny list");
}

static void parse_spec(struct pctx *p, const struct cc_node *n, struct cc_contract *c)
{
	static const char *const keys[] = { "mode", "selector", "process", "files", "network",
					    "syscalls", "capabilities", "pod", NULL };
	static const char *const selk[] = { "namespace", "podLabels", "container", "image", NULL };
	static const char *const prock[] = { "allow", "deny", NULL };
	static const char *const filek[] = { "read", "write", "exec", "deny", NULL };
	static const char *const netk[] = { "dns", "egress", "ingress", NULL };
	static const char *const capk[] = { "allow", NULL };
	const struct cc_node *v, *w;
	char kp[PATH_MAX_LEN];

	if (!map_check(p, n, "spec", keys))
		return;
	if ((v = map_get(n, "mode"))) {
		char *s = NULL;
		if (get_str(p, v, "spec.mode", &s)) {
			if (!strcmp(s, "audit"))
				c->audit = true;
			else if (strcmp(s, "enforce"))
				perr(p, v, "spec.mode", "must be audit or enforce");
		}
		free(s);
	}
	if ((v = map_get(n, "selector")) && map_check(p, v, "spec.selector", selk)) {
		if ((w = map_get(v, "namespace")))
			get_str(p, w, "spec.selector.namespace", &c->sel.ns);
		if ((w = map_get(v, "podLabels")))
			get_labels(p, w, "spec.selector.podLabels", &c->sel.pod_labels);
		if ((w = map_get(v, "container")))
			get_str(p, w, "spec.selector.container", &c->sel.container);
		if ((w = map_get(v, "image")))
			get_str(p, w, "spec.selector.image", &c->sel.image);
		if (!v->n)
			perr(p, v, "spec.selector", "empty selector");
		if (c->ns && c->sel.ns && strcmp(c->ns, c->sel.ns))
			perr(p, map_get(v, "namespace"), "spec.selector.namespace",
			     "contradicts metadata.namespace (%s)", c->ns);
	}
	if ((v = map_get(n, "process")) && map_check(p, v, "spec.process", prock)) {
		c->has_process = true;
		if ((w = map_get(v, "allow")))
			parse_path_list(p, w, "spec.process.allow", true, &c->proc_allow);
		if ((w = map_get(v, "deny")))
			parse_path_list(p, w, "spec.process.deny", true, &c->proc_deny);
		if (!v->n)
			perr(p, v, "spec.process", "empty section (give allow, deny or both)");
		contradict_paths(p, &c->proc_allow, "spec.process.allow", &c->proc_deny,
				 "spec.process.deny");
	}
	if ((v = map_get(n, "files")) && map_check(p, v, "spec.files", filek)) {
		c->has_files = true;
		if ((w = map_get(v, "read")))
			parse_path_list(p, w, "spec.files.read", false, &c->f_read);
		if ((w = map_get(v, "write")))
			parse_path_list(p, w, "spec.files.write", false, &c->f_write);
		if ((w = map_get(v, "exec")))
			parse_path_list(p, w, "spec.files.exec", false, &c->f_exec);
		if ((w = map_get(v, "deny")))
			parse_path_list(p, w, "spec.files.deny", false, &c->f_deny);
		if (!v->n)
			perr(p, v, "spec.files", "empty section (give read, write, exec or deny)");
		contradict_paths(p, &c->f_read, "spec.files.read", &c->f_deny, "spec.files.deny");
		contradict_paths(p, &c->f_write, "spec.files.write", &c->f_deny, "spec.files.deny");
		contradict_paths(p, &c->f_exec, "spec.files.exec", &c->f_deny, "spec.files.deny");
	}
	if ((v = map_get(n, "network")) && map_check(p, v, "spec.network", netk)) {
		c->has_network = true;
		c->dns = true;
		if ((w = map_get(v, "dns")))
			get_bool(p, w, "spec.network.dns", &c->dns);
		if ((w = map_get(v, "egress"))) {
			c->has_egress = true;
			parse_net_list(p, w, "spec.network.egress", "to", &c->egress);
		}
		if ((w = map_get(v, "ingress"))) {
			c->has_ingress = true;
			parse_net_list(p, w, "spec.network.ingress", "from", &c->ingress);
		}
		if (!v->n)
			perr(p, v, "spec.network", "empty section (give dns, egress or ingress)");
		for (size_t i = 0; i < c->ingress.n; i++)
			if (c->ingress.v[i].peer == CC_PEER_DNS) {
				struct cc_node at = { .line = c->ingress.v[i].line,
						      .col = c->ingress.v[i].col };
				char ip[PATH_MAX_LEN];
				path_idx(ip, "spec.network.ingress", i);
				perr(p, &at, ip, "ingress peers cannot be DNS names (no enforcer can match a client by name)");
			}
		/* A name can only be matched after it is resolved, so a DNS
		 * peer with resolution forbidden could never be reached. */
		if (!c->dns)
			for (size_t i = 0; i < c->egress.n; i++)
				if (c->egress.v[i].peer == CC_PEER_DNS) {
					struct cc_node at = { .line = c->egress.v[i].line,
							      .col = c->egress.v[i].col };
					char ip[PATH_MAX_LEN];
					path_idx(ip, "spec.network.egress", i);
					perr(p, &at, ip,
					     "DNS peer %s contradicts spec.network.dns: false",
					     c->egress.v[i].dns);
				}
	}
	if ((v = map_get(n, "syscalls")))
		parse_syscalls(p, v, "spec.syscalls", c);
	if ((v = map_get(n, "capabilities")) && map_check(p, v, "spec.capabilities", capk)) {
		c->has_caps = true;
		w = map_get(v, "allow");
		if (req(p, v, w, "spec.capabilities", "allow"))
			parse_name_list(p, w, "spec.capabilities.allow", true, &c->caps);
	}
	if ((v = map_get(n, "pod")))
		parse_pod(p, v, "spec.pod", c);
	(void)kp;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

int cc_contract_from_node(const char *file, const struct cc_node *root, struct cc_contract **out,
			  struct cc_diag *d)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const mkeys[] = { "name", "namespace", "labels", "derivedFrom", NULL };
	static const char *const dkeys[] = { "profile", "window", "samples", NULL };
	static const char *const wkeys[] = { "start", "end", NULL };
	struct pctx p = { .file = file, .d = d };
	struct cc_contract *c;
	const struct cc_node *v, *m, *w, *x;
	char *s = NULL;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->file = strdup(file);
	c->df_samples = -1;
	c->run_as_non_root = c->allow_priv_esc = c->privileged = c->host_pid = c->host_ipc =
		c->host_network = c->ro_rootfs = CC_UNSET;
	if (!map_check(&p, root, "", keys))
		goto done;
	v = map_get(root, "apiVersion");
	if (req(&p, root, v, "", "apiVersion") && get_str(&p, v, "apiVersion", &s) &&
	    strcmp(s, "kloudlens.io/v1"))
		perr(&p, v, "apiVersion", "must be kloudlens.io/v1");
	free(s);
	s = NULL;
	v = map_get(root, "kind");
	if (req(&p, root, v, "", "kind") && get_str(&p, v, "kind", &s) &&
	    strcmp(s, "BehaviorContract"))
		perr(&p, v, "kind", "must be BehaviorContract");
	free(s);
	s = NULL;
	m = map_get(root, "metadata");
	if (req(&p, root, m, "", "metadata") && map_check(&p, m, "metadata", mkeys)) {
		v = map_get(m, "name");
		if (req(&p, m, v, "metadata", "name") && get_str(&p, v, "metadata.name", &c->name) &&
		    !name_ok(c->name))
			perr(&p, v, "metadata.name",
			     "must be a DNS-1123 label (lower-case letters, digits and -, at most 63)");
		if ((v = map_get(m, "namespace")) &&
		    get_str(&p, v, "metadata.namespace", &c->ns) && !name_ok(c->ns))
			perr(&p, v, "metadata.namespace", "must be a DNS-1123 label");
		if ((v = map_get(m, "labels")))
			get_labels(&p, v, "metadata.labels", &c->labels);
		if ((v = map_get(m, "derivedFrom")) &&
		    map_check(&p, v, "metadata.derivedFrom", dkeys)) {
			if ((w = map_get(v, "profile")))
				get_str(&p, w, "metadata.derivedFrom.profile", &c->df_profile);
			if ((w = map_get(v, "samples")))
				get_int(&p, w, "metadata.derivedFrom.samples", 0, INT64_MAX,
					&c->df_samples);
			if ((w = map_get(v, "window")) &&
			    map_check(&p, w, "metadata.derivedFrom.window", wkeys)) {
				if ((x = map_get(w, "start")))
					get_timestamp(&p, x, "metadata.derivedFrom.window.start",
						      &c->df_start);
				if ((x = map_get(w, "end")))
					get_timestamp(&p, x, "metadata.derivedFrom.window.end",
						      &c->df_end);
				if (c->df_start && c->df_end && strcmp(c->df_start, c->df_end) > 0)
					perr(&p, map_get(w, "start"),
					     "metadata.derivedFrom.window.start", "is after end");
			}
		}
	}
	v = map_get(root, "spec");
	if (req(&p, root, v, "", "spec"))
		parse_spec(&p, v, c);
done:
	if (p.oom) {
		cc_contract_free(c);
		return -ENOMEM;
	}
	if (p.errors) {
		cc_contract_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

int cc_contract_parse(const char *file, const char *data, size_t len, struct cc_contract **out,
		      struct cc_diag *d)
{
	struct cc_node *root = NULL;
	int r;

	*out = NULL;
	r = cc_yaml_load(file, data, len, &root, d);
	if (r)
		return r;
	r = cc_contract_from_node(file, root, out, d);
	cc_node_free(root);
	return r;
}
