/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graph.c - `klctl sessions` and `klctl graph` (docs/graph.md): the
 * causal session graph that kl-graphd answers through kl-exporter, as a
 * table, an indented process tree with the edges that leave each
 * process, JSON, or Graphviz dot.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <kloudlens/record.h>

#include "client.h"
#include "graph.h"
#include "kloudlens.pb-c.h"

typedef Kloudlens__V1__GraphNode Node;
typedef Kloudlens__V1__GraphEdge Edge;
typedef Kloudlens__V1__GraphSession Sess;
typedef Kloudlens__V1__GraphSnapshot Snap;

static const char *ename(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
	return e ? e->name : "?";
}

static const char *edge_kind(int k)
{
	return ename(&kloudlens__v1__graph_edge__kind__descriptor, k);
}

/* One unary call. Return: 0, or the exit code after printing why. */
static int call(const char *url, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
	struct kl_client c;
	char err[512] = "";
	int r = kl_client_open(&c, url, NULL, 5000);

	if (r) {
		fprintf(stderr, "klctl: cannot reach kl-exporter at %s: %s\n", url, strerror(-r));
		return 3;
	}
	r = kl_client_call(&c, method, req, desc, resp, err, sizeof(err));
	kl_client_close(&c);
	if (r < 0) {
		fprintf(stderr, "klctl: %s: %s\n", url, strerror(-r));
		return 3;
	}
	if (r) {
		fprintf(stderr, "klctl: %s: %s (gRPC status %d)\n", method + 1, err, r);
		return 4;
	}
	return 0;
}

static const char *short_id(const char *s, char *buf, size_t n)
{
	snprintf(buf, n, "%.12s", s ? s : "");
	return buf;
}

static json_t *j_ctr(const Kloudlens__V1__ContainerMeta *c)
{
	if (!c)
		return json_null();
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "cgroup_id", (json_int_t)c->cgroup_id, "id", c->container_id,
			 "name", c->name, "image", c->image, "pod", c->pod_name, "namespace", c->pod_namespace);
}

static json_t *j_node(const Node *n)
{
	char id[24];
	json_t *o;

	snprintf(id, sizeof(id), "%016" PRIx64, n->id);
	o = json_pack("{s:s,s:s,s:s}", "id", id, "kind", ename(&kloudlens__v1__graph_node__kind__descriptor, n->kind),
		      "label", n->label);
	if (n->process) {
		json_object_set_new(o, "pid", json_integer(n->process->pid));
		json_object_set_new(o, "start_ns", json_integer((json_int_t)n->process->start_ns));
		json_object_set_new(o, "comm", json_string(n->process->comm));
		json_object_set_new(o, "session_id", json_string(n->session_id));
		json_object_set_new(o, "container", j_ctr(n->container));
	}
	return o;
}

static json_t *j_edge(const Edge *e)
{
	char f[24], t[24];
	json_t *seqs = json_array();

	snprintf(f, sizeof(f), "%016" PRIx64, e->from);
	snprintf(t, sizeof(t), "%016" PRIx64, e->to);
	for (size_t i = 0; i < e->n_source_seqs; i++)
		json_array_append_new(seqs, json_integer((json_int_t)e->source_seqs[i]));
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:b,s:I,s:o}", "from", f, "to", t, "kind", edge_kind(e->kind),
			 "first_ns", (json_int_t)e->first_ns, "last_ns", (json_int_t)e->last_ns, "count",
			 (json_int_t)e->count, "session_id", e->session_id, "cross_container", e->cross_container,
			 "arg", (json_int_t)e->arg, "source_seqs", seqs);
}

static json_t *j_session(const Sess *s)
{
	json_t *o = json_pack("{s:s,s:s,s:b,s:I,s:I,s:i,s:i,s:i,s:b}", "session_id", s->session_id, "origin",
			      ename(&kloudlens__v1__graph_session__origin__descriptor, s->origin), "open", s->open,
			      "start_ns", (json_int_t)s->start_ns, "end_ns", (json_int_t)s->end_ns, "processes",
			      (int)s->processes, "live_processes", (int)s->live_processes, "edges", (int)s->edges,
			      "cross_container", s->cross_container);
	json_object_set_new(o, "root", s->root ? j_node(s->root) : json_null());
	json_object_set_new(o, "container", j_ctr(s->container));
	return o;
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

/* ---- sessions -------------------------------------------------------------- */

static int list(const char *url, Kloudlens__V1__ListSessionsRequest *q, Kloudlens__V1__ListSessionsResponse **out)
{
	return call(url, "/kloudlens.v1.GraphService/ListSessions", &q->base,
		    &kloudlens__v1__list_sessions_response__descriptor, (ProtobufCMessage **)out);
}

int klctl_sessions(int argc, char **argv, const char *admin_url, bool json)
{
	Kloudlens__V1__ListSessionsRequest q = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__INIT;
	Kloudlens__V1__ListSessionsResponse *r = NULL;
	char *ns[16], *pods[16], *ctrs[16];
	char b1[16], b2[16];
	int rc;

	q.namespaces = ns;
	q.pods = pods;
	q.containers = ctrs;
	for (int i = 1; i < argc; i++) {
		bool more = i + 1 < argc;
		if (!strcmp(argv[i], "--namespace") && more && q.n_namespaces < 16)
			ns[q.n_namespaces++] = argv[++i];
		else if (!strcmp(argv[i], "--pod") && more && q.n_pods < 16)
			pods[q.n_pods++] = argv[++i];
		else if (!strcmp(argv[i], "--container") && more && q.n_containers < 16)
			ctrs[q.n_containers++] = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--open"))
			q.state = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__STATE__OPEN;
		else if (!strcmp(argv[i], "--closed"))
			q.state = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__STATE__CLOSED;
		else if (!strcmp(argv[i], "--limit") && more)
			q.limit = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: klctl sessions [--namespace N] [--pod P] [--container C] "
					"[--open|--closed] [--limit N] [--json]\n");
			return 2;
		}
	}
	if ((rc = list(admin_url, &q, &r)))
		return rc;
	if (!json)
		printf("%-16s %-14s %-6s %7s %6s %-5s %-12s %-20s %s\n", "SESSION", "ORIGIN", "STATE", "PID",
		       "PROCS", "EDGES", "CONTAINER", "POD", "ROOT");
	for (size_t i = 0; i < r->n_sessions; i++) {
		const Sess *s = r->sessions[i];
		if (json) {
			print_json(j_session(s));
			continue;
		}
		char pod[160] = "-";
		if (s->container && s->container->pod_name[0])
			snprintf(pod, sizeof(pod), "%s/%s", s->container->pod_namespace, s->container->pod_name);
		printf("%-16s %-14s %-6s %7u %6u %5u%s %-12s %-20s %s\n", s->session_id,
		       ename(&kloudlens__v1__graph_session__origin__descriptor, s->origin), s->open ? "open" : "closed",
		       s->root && s->root->process ? s->root->process->pid : 0, s->processes, s->edges,
		       s->cross_container ? "*" : " ",
		       s->container ? short_id(s->container->container_id, b1, sizeof(b1)) : "host", pod,
		       s->root ? s->root->label : "");
		(void)b2;
	}
	if (!json && r->truncated)
		printf("(more sessions: raise --limit)\n");
	kloudlens__v1__list_sessions_response__free_unpacked(r, NULL);
	return 0;
}

/* ---- one session as a tree ------------------------------------------------- */

static const Node *find_node(const Snap *g, uint64_t id)
{
	for (size_t i = 0; i < g->n_nodes; i++)
		if (g->nodes[i]->id == id)
			return g->nodes[i];
	return NULL;
}

static void node_text(const Node *n, char *buf, size_t len)
{
	if (!n)
		snprintf(buf, len, "?");
	else if (n->process)
		snprintf(buf, len, "%s[%u] %s", n->process->comm, n->process->pid, n->label);
	else
		snprintf(buf, len, "%s", n->label);
}

/* --all: list the container runtime's setup edges instead of counting them */
static bool show_runtime;

static void tree(const Snap *g, const Node *n, const char *sid, int depth, int *budget)
{
	char t[600], o[600], ctr[64] = "";
	unsigned runtime = 0;

	if (--*budget < 0 || depth > 64)
		return;
	node_text(n, t, sizeof(t));
	printf("%*s%s%s\n", depth * 2, "", depth ? "└─ " : "", t);
	/* edges that leave the tree: everything but the FORKs inside this session */
	for (size_t i = 0; i < g->n_edges; i++) {
		const Edge *e = g->edges[i];
		bool out = e->from == n->id, in = e->to == n->id && e->from != n->id;
		const Node *other;
		if (!out && !in)
			continue;
		other = find_node(g, out ? e->to : e->from);
		if (e->kind == KLOUDLENS__V1__GRAPH_EDGE__KIND__FORK && other && other->process &&
		    !strcmp(other->session_id, sid))
			continue;
		if (in && other && other->process && !strcmp(other->session_id, sid))
			continue;   /* listed under the other end */
		if (e->kind == KLOUDLENS__V1__GRAPH_EDGE__KIND__EXEC) {
			continue;   /* the image change shows in the label */
		}
		if ((e->flags & KL_GF_RUNTIME) && !show_runtime) {
			runtime++;   /* the container runtime's own setup: folded into one line */
			continue;
		}
		node_text(other, o, sizeof(o));
		ctr[0] = 0;
		if (e->cross_container)
			snprintf(ctr, sizeof(ctr), "  [cross-container: %s]",
				 other && other->container ? other->container->name : "host");
		printf("%*s%s %-12s %s %s  x%" PRIu64 "%s\n", depth * 2 + (depth ? 3 : 0), "", "·", edge_kind(e->kind),
		       out ? "->" : "<-", o, e->count, ctr);
	}
	if (runtime)
		printf("%*s· %u edge%s of the container runtime's setup before its exec (--all shows them)\n",
		       depth * 2 + (depth ? 3 : 0), "", runtime, runtime == 1 ? "" : "s");
	for (size_t i = 0; i < g->n_edges; i++) {
		const Edge *e = g->edges[i];
		const Node *c;
		if (e->from != n->id || e->kind != KLOUDLENS__V1__GRAPH_EDGE__KIND__FORK)
			continue;
		c = find_node(g, e->to);
		if (c && c->process && !strcmp(c->session_id, sid))
			tree(g, c, sid, depth + 1, budget);
	}
}

static void print_tree(const Snap *g)
{
	int budget = 100000;

	for (size_t k = 0; k < g->n_sessions; k++) {
		const Sess *s = g->sessions[k];
		char pod[160] = "";
		if (s->container && s->container->pod_name[0])
			snprintf(pod, sizeof(pod), " pod %s/%s", s->container->pod_namespace, s->container->pod_name);
		printf("session %s  %s  %s%s%s%s  %u processes, %u edges%s\n", s->session_id,
		       ename(&kloudlens__v1__graph_session__origin__descriptor, s->origin), s->open ? "open" : "closed",
		       s->container ? "  container " : "  host", s->container ? s->container->name : "", pod,
		       s->processes, s->edges, s->cross_container ? ", crosses containers" : "");
		/* roots: processes of the session with no FORK from inside it */
		for (size_t i = 0; i < g->n_nodes; i++) {
			const Node *n = g->nodes[i];
			bool child = false;
			if (!n->process || strcmp(n->session_id, s->session_id))
				continue;
			for (size_t j = 0; j < g->n_edges && !child; j++) {
				const Edge *e = g->edges[j];
				const Node *p;
				if (e->to != n->id || e->kind != KLOUDLENS__V1__GRAPH_EDGE__KIND__FORK)
					continue;
				p = find_node(g, e->from);
				child = p && p->process && !strcmp(p->session_id, s->session_id);
			}
			if (!child)
				tree(g, n, s->session_id, 0, &budget);
		}
	}
	if (g->truncated)
		printf("(truncated: a limit or the bounded graph cut this answer)\n");
}

static void dot_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_dot(const Snap *g)
{
	char t[700];

	printf("digraph kloudlens {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n"
	       "  edge [fontname=\"monospace\", fontsize=9];\n");
	/* one cluster per session: the process tree sits together */
	for (size_t k = 0; k < g->n_sessions; k++) {
		const Sess *s = g->sessions[k];
		printf("  subgraph \"cluster_%s\" {\n    label=", s->session_id);
		snprintf(t, sizeof(t), "session %s (%s)%s%s", s->session_id,
			 ename(&kloudlens__v1__graph_session__origin__descriptor, s->origin),
			 s->container ? " container " : " host", s->container ? s->container->name : "");
		dot_str(t);
		printf(";\n    style=rounded;\n");
		for (size_t i = 0; i < g->n_nodes; i++) {
			const Node *n = g->nodes[i];
			if (!n->process || strcmp(n->session_id, s->session_id))
				continue;
			printf("    n%016" PRIx64 " [shape=box, label=", n->id);
			snprintf(t, sizeof(t), "%s [%u]\n%s", n->process->comm, n->process->pid, n->label);
			dot_str(t);
			printf("];\n");
		}
		printf("  }\n");
	}
	for (size_t i = 0; i < g->n_nodes; i++) {
		const Node *n = g->nodes[i];
		bool listed = false;
		for (size_t k = 0; n->process && k < g->n_sessions && !listed; k++)
			listed = !strcmp(n->session_id, g->sessions[k]->session_id);
		if (listed)
			continue;
		const char *shape = n->process ? "box" : n->kind == KLOUDLENS__V1__GRAPH_NODE__KIND__FILE ? "note"
				   : n->kind == KLOUDLENS__V1__GRAPH_NODE__KIND__ENDPOINT ? "ellipse" : "diamond";
		printf("  n%016" PRIx64 " [shape=%s, label=", n->id, shape);
		if (n->process)
			snprintf(t, sizeof(t), "%s [%u]\n%s", n->process->comm, n->process->pid, n->label);
		else
			snprintf(t, sizeof(t), "%s", n->label);
		dot_str(t);
		printf("];\n");
	}
	for (size_t i = 0; i < g->n_edges; i++) {
		const Edge *e = g->edges[i];
		if (e->kind == KLOUDLENS__V1__GRAPH_EDGE__KIND__EXEC)
			continue;
		printf("  n%016" PRIx64 " -> n%016" PRIx64 " [label=", e->from, e->to);
		snprintf(t, sizeof(t), "%s x%" PRIu64, edge_kind(e->kind), e->count);
		dot_str(t);
		if (e->cross_container)
			printf(", color=red, penwidth=2");
		else if (e->kind == KLOUDLENS__V1__GRAPH_EDGE__KIND__FORK)
			printf(", style=bold");
		printf("];\n");
	}
	printf("}\n");
}

static void print_snap_json(const Snap *g)
{
	json_t *o = json_object(), *n = json_array(), *e = json_array(), *s = json_array();

	for (size_t i = 0; i < g->n_sessions; i++)
		json_array_append_new(s, j_session(g->sessions[i]));
	for (size_t i = 0; i < g->n_nodes; i++)
		json_array_append_new(n, j_node(g->nodes[i]));
	for (size_t i = 0; i < g->n_edges; i++)
		json_array_append_new(e, j_edge(g->edges[i]));
	json_object_set_new(o, "session_id", json_string(g->session_id));
	json_object_set_new(o, "truncated", json_boolean(g->truncated));
	json_object_set_new(o, "sessions", s);
	json_object_set_new(o, "nodes", n);
	json_object_set_new(o, "edges", e);
	print_json(o);
}

/* A session id prefix (as `klctl sessions` shows it) names one session. */
static int resolve(const char *url, const char *prefix, char *out, size_t len)
{
	Kloudlens__V1__ListSessionsRequest q = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__INIT;
	Kloudlens__V1__ListSessionsResponse *r = NULL;
	size_t hits = 0;
	int rc;

	if (strlen(prefix) == 16) {
		snprintf(out, len, "%s", prefix);
		return 0;
	}
	q.limit = 100000;
	if ((rc = list(url, &q, &r)))
		return rc;
	for (size_t i = 0; i < r->n_sessions; i++)
		if (!strncmp(r->sessions[i]->session_id, prefix, strlen(prefix))) {
			snprintf(out, len, "%s", r->sessions[i]->session_id);
			hits++;
		}
	kloudlens__v1__list_sessions_response__free_unpacked(r, NULL);
	if (hits != 1) {
		fprintf(stderr, "klctl: session '%s' %s\n", prefix, hits ? "is ambiguous" : "not found");
		return 4;
	}
	return 0;
}

int klctl_graph(int argc, char **argv, const char *admin_url, bool json)
{
	const char *sid = NULL, *file = NULL, *ctr = "", *lineage = NULL;
	bool dot = false, reach = false;
	uint32_t depth = 0, max_edges = 0;
	char id[32];
	Snap *g = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		bool more = i + 1 < argc;
		if (!strcmp(argv[i], "--dot"))
			dot = true;
		else if (!strcmp(argv[i], "--tree"))
			json = false;   /* the tree even when stdout is not a terminal */
		else if (!strcmp(argv[i], "--all"))
			show_runtime = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--reach"))
			reach = true;
		else if (!strcmp(argv[i], "--depth") && more)
			depth = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--max-edges") && more)
			max_edges = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--file") && more)
			file = argv[++i];
		else if (!strcmp(argv[i], "--container") && more)
			ctr = argv[++i];
		else if (!strcmp(argv[i], "--lineage") && more)
			lineage = argv[++i];
		else if (argv[i][0] != '-' && !sid)
			sid = argv[i];
		else
			goto usage;
	}
	if (file) {
		Kloudlens__V1__FileTouchersRequest q = KLOUDLENS__V1__FILE_TOUCHERS_REQUEST__INIT;
		q.path = (char *)file;
		q.container = (char *)ctr;
		q.max_edges = max_edges;
		rc = call(admin_url, "/kloudlens.v1.GraphService/FileTouchers", &q.base,
			  &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&g);
	} else if (lineage) {
		Kloudlens__V1__LineageRequest q = KLOUDLENS__V1__LINEAGE_REQUEST__INIT;
		char *end;
		q.pid = (uint32_t)strtoul(lineage, &end, 10);
		if (*end == ':')
			q.start_ns = strtoull(end + 1, &end, 10);
		if (*end || !q.pid)
			goto usage;
		q.max_depth = depth;
		rc = call(admin_url, "/kloudlens.v1.GraphService/Lineage", &q.base,
			  &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&g);
	} else {
		if (!sid)
			goto usage;
		if ((rc = resolve(admin_url, sid, id, sizeof(id))))
			return rc;
		if (reach) {
			Kloudlens__V1__ReachRequest q = KLOUDLENS__V1__REACH_REQUEST__INIT;
			q.session_id = id;
			q.max_depth = depth;
			q.max_edges = max_edges;
			rc = call(admin_url, "/kloudlens.v1.GraphService/Reach", &q.base,
				  &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&g);
		} else {
			Kloudlens__V1__GraphQuery q = KLOUDLENS__V1__GRAPH_QUERY__INIT;
			q.session_id = id;
			q.max_edges = max_edges;
			rc = call(admin_url, "/kloudlens.v1.EventService/QueryGraph", &q.base,
				  &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&g);
		}
	}
	if (rc)
		return rc;
	if (dot)
		print_dot(g);
	else if (json)
		print_snap_json(g);
	else if (g->n_sessions)
		print_tree(g);
	else
		for (size_t i = 0; i < g->n_edges; i++) {
			char a[600], b[600];
			node_text(find_node(g, g->edges[i]->from), a, sizeof(a));
			node_text(find_node(g, g->edges[i]->to), b, sizeof(b));
			printf("%-40s %-12s -> %s  x%" PRIu64 "%s\n", a, edge_kind(g->edges[i]->kind), b,
			       g->edges[i]->count, g->edges[i]->cross_container ? "  [cross-container]" : "");
		}
	kloudlens__v1__graph_snapshot__free_unpacked(g, NULL);
	return 0;
usage:
	fprintf(stderr, "usage: klctl graph SESSION [--tree|--dot|--json] [--all] [--reach [--depth N]] [--max-edges N]\n"
			"       klctl graph --lineage PID[:START_NS] [--depth N]\n"
			"       klctl graph --file PATH [--container C]\n");
	return 2;
}
