/* SPDX-License-Identifier: Apache-2.0 */
/* Writing a contract back as IR YAML (used by `contractc generate`). */
#include <stdlib.h>
#include <string.h>

#include "cc.h"

static json_t *evidence(const struct cc_evidence *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "count", json_integer((json_int_t)e->count));
	if (e->first)
		json_object_set_new(o, "firstSeen", json_string(e->first));
	if (e->last)
		json_object_set_new(o, "lastSeen", json_string(e->last));
	return o;
}

static json_t *path_list(const struct cc_path_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		const struct cc_path_rule *r = &l->v[i];
		if (!r->nargs && !r->generalised && !r->ev.has) {
			json_array_append_new(a, json_string(r->path));
			continue;
		}
		json_t *o = json_object();
		json_object_set_new(o, "path", json_string(r->path));
		if (r->nargs) {
			json_t *args = json_array();
			for (size_t j = 0; j < r->nargs; j++)
				json_array_append_new(args, json_string(r->args[j]));
			json_object_set_new(o, "args", args);
		}
		if (r->generalised)
			json_object_set_new(o, "generalised", json_string(r->generalised));
		if (r->ev.has)
			json_object_set_new(o, "evidence", evidence(&r->ev));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *name_list(const struct cc_name_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i].ev.has) {
			json_array_append_new(a, json_string(l->v[i].name));
			continue;
		}
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(l->v[i].name));
		json_object_set_new(o, "evidence", evidence(&l->v[i].ev));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *net_list(const struct cc_net_list *l, const char *peer_key)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		const struct cc_net_rule *r = &l->v[i];
		json_t *o = json_object();
		if (r->peer != CC_PEER_ANY) {
			json_t *p = json_object();
			if (r->peer == CC_PEER_CIDR)
				json_object_set_new(p, "cidr", json_string(r->cidr));
			else if (r->peer == CC_PEER_DNS)
				json_object_set_new(p, "dns", json_string(r->dns));
			else {
				json_t *s = json_object();
				if (r->has_ns)
					json_object_set_new(s, "namespace", json_string(r->ns));
				if (r->labels.n)
					json_object_set_new(s, "podLabels", cc_labels_json(&r->labels));
				json_object_set_new(p, "selector", s);
			}
			json_object_set_new(o, peer_key, p);
		}
		if (r->nports) {
			json_t *ps = json_array();
			for (size_t j = 0; j < r->nports; j++) {
				json_t *p = json_object();
				json_object_set_new(p, "port", json_integer(r->ports[j].port));
				if (r->ports[j].end_port)
					json_object_set_new(p, "endPort",
							    json_integer(r->ports[j].end_port));
				json_object_set_new(p, "protocol", json_string(r->ports[j].proto));
				json_array_append_new(ps, p);
			}
			json_object_set_new(o, "ports", ps);
		}
		if (r->generalised)
			json_object_set_new(o, "generalised", json_string(r->generalised));
		if (r->ev.has)
			json_object_set_new(o, "evidence", evidence(&r->ev));
		json_array_append_new(a, o);
	}
	return a;
}

static void tri(json_t *o, const char *k, int v)
{
	if (v != CC_UNSET)
		json_object_set_new(o, k, v ? json_true() : json_false());
}

static json_t *profile_ref(const char *ref)
{
	json_t *o = json_object();
	if (!strncmp(ref, "Localhost:", 10)) {
		json_object_set_new(o, "type", json_string("Localhost"));
		json_object_set_new(o, "localhostProfile", json_string(ref + 10));
	} else {
		json_object_set_new(o, "type", json_string(ref));
	}
	return o;
}

char *cc_contract_to_yaml(const struct cc_contract *c, const char *const *header)
{
	json_t *doc = json_object(), *meta = json_object(), *spec = json_object();
	char *out;

	json_object_set_new(doc, "apiVersion", json_string("kloudlens.io/v1"));
	json_object_set_new(doc, "kind", json_string("BehaviorContract"));
	json_object_set_new(meta, "name", json_string(c->name));
	if (c->ns)
		json_object_set_new(meta, "namespace", json_string(c->ns));
	if (c->labels.n)
		json_object_set_new(meta, "labels", cc_labels_json(&c->labels));
	if (c->df_profile || c->df_start || c->df_samples >= 0) {
		json_t *df = json_object();
		if (c->df_profile)
			json_object_set_new(df, "profile", json_string(c->df_profile));
		if (c->df_start || c->df_end) {
			json_t *w = json_object();
			if (c->df_start)
				json_object_set_new(w, "start", json_string(c->df_start));
			if (c->df_end)
				json_object_set_new(w, "end", json_string(c->df_end));
			json_object_set_new(df, "window", w);
		}
		if (c->df_samples >= 0)
			json_object_set_new(df, "samples", json_integer(c->df_samples));
		json_object_set_new(meta, "derivedFrom", df);
	}
	json_object_set_new(doc, "metadata", meta);
	json_object_set_new(spec, "mode", json_string(c->audit ? "audit" : "enforce"));
	if (c->sel.ns || c->sel.pod_labels.n || c->sel.container || c->sel.image) {
		json_t *s = json_object();
		if (c->sel.ns)
			json_object_set_new(s, "namespace", json_string(c->sel.ns));
		if (c->sel.pod_labels.n)
			json_object_set_new(s, "podLabels", cc_labels_json(&c->sel.pod_labels));
		if (c->sel.container)
			json_object_set_new(s, "container", json_string(c->sel.container));
		if (c->sel.image)
			json_object_set_new(s, "image", json_string(c->sel.image));
		json_object_set_new(spec, "selector", s);
	}
	if (c->has_process) {
		json_t *p = json_object();
		if (c->proc_allow.n)
			json_object_set_new(p, "allow", path_list(&c->proc_allow));
		if (c->proc_deny.n)
			json_object_set_new(p, "deny", path_list(&c->proc_deny));
		if (!json_object_size(p))
			json_object_set_new(p, "allow", json_array());
		json_object_set_new(spec, "process", p);
	}
	if (c->has_files) {
		json_t *f = json_object();
		if (c->f_read.n)
			json_object_set_new(f, "read", path_list(&c->f_read));
		if (c->f_write.n)
			json_object_set_new(f, "write", path_list(&c->f_write));
		if (c->f_exec.n)
			json_object_set_new(f, "exec", path_list(&c->f_exec));
		if (c->f_deny.n)
			json_object_set_new(f, "deny", path_list(&c->f_deny));
		if (!json_object_size(f))
			json_object_set_new(f, "read", json_array());
		json_object_set_new(spec, "files", f);
	}
	if (c->has_network) {
		json_t *n = json_object();
		json_object_set_new(n, "dns", c->dns ? json_true() : json_false());
		if (c->has_egress)
			json_object_set_new(n, "egress", net_list(&c->egress, "to"));
		if (c->has_ingress)
			json_object_set_new(n, "ingress", net_list(&c->ingress, "from"));
		json_object_set_new(spec, "network", n);
	}
	if (c->has_syscalls) {
		static const char *const acts[] = { "errno", "kill", "log", "trap" };
		json_t *s = json_object();
		json_object_set_new(s, "default", json_string(c->sc_default_allow ? "allow" : "deny"));
		json_object_set_new(s, "action", json_string(acts[c->sc_action]));
		if (c->sc_action == CC_ACT_ERRNO)
			json_object_set_new(s, "errno", json_integer(c->sc_errno));
		if (!c->sc_default_allow)
			json_object_set_new(s, "allow", name_list(&c->sc_allow));
		else
			json_object_set_new(s, "deny", name_list(&c->sc_deny));
		json_object_set_new(spec, "syscalls", s);
	}
	if (c->has_caps) {
		json_t *k = json_object();
		json_object_set_new(k, "allow", name_list(&c->caps));
		json_object_set_new(spec, "capabilities", k);
	}
	if (c->has_pod) {
		json_t *p = json_object();
		tri(p, "runAsNonRoot", c->run_as_non_root);
		tri(p, "allowPrivilegeEscalation", c->allow_priv_esc);
		tri(p, "privileged", c->privileged);
		tri(p, "hostPID", c->host_pid);
		tri(p, "hostIPC", c->host_ipc);
		tri(p, "hostNetwork", c->host_network);
		if (c->has_host_paths) {
			json_t *a = json_array();
			for (size_t i = 0; i < c->host_paths.n; i++) {
				json_t *h = json_object();
				json_object_set_new(h, "path", json_string(c->host_paths.v[i].path));
				json_object_set_new(h, "readOnly",
						    c->host_path_ro[i] ? json_true() : json_false());
				json_array_append_new(a, h);
			}
			json_object_set_new(p, "hostPaths", a);
		}
		tri(p, "readOnlyRootFilesystem", c->ro_rootfs);
		if (c->seccomp_profile)
			json_object_set_new(p, "seccompProfile", profile_ref(c->seccomp_profile));
		if (c->apparmor_profile)
			json_object_set_new(p, "appArmorProfile", profile_ref(c->apparmor_profile));
		json_object_set_new(spec, "pod", p);
	}
	json_object_set_new(doc, "spec", spec);
	out = cc_yaml_emit(doc, header);
	json_decref(doc);
	return out;
}
