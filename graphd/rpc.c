/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpc.c - GraphService and EventService/QueryGraph on kl-graphd's own
 * socket (docs/graph.md). Each handler runs the engine query under the
 * lock and converts its answer (whose strings point into the engine)
 * into a protobuf message built entirely from malloc, as rpcsrv.h asks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphd_rpc.h"
#include "kloudlens.pb-c.h"

typedef Kloudlens__V1__GraphNode PbNode;
typedef Kloudlens__V1__GraphEdge PbEdge;
typedef Kloudlens__V1__GraphSession PbSession;
typedef Kloudlens__V1__GraphSnapshot PbSnap;

int kl_graph_parse_id(const char *s, uint64_t *id)
{
	char *end;
	size_t n = s ? strlen(s) : 0;

	if (!n || n > 16)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return -EINVAL;
	errno = 0;
	*id = strtoull(s, &end, 16);
	return errno || *end ? -EINVAL : 0;
}

static char *dup_str(const char *s)
{
	return s && s[0] ? strdup(s) : (char *)protobuf_c_empty_string;
}

static char *hex_id(uint64_t id)
{
	char b[24];

	if (!id)
		return (char *)protobuf_c_empty_string;
	snprintf(b, sizeof(b), "%016llx", (unsigned long long)id);
	return strdup(b);
}

static Kloudlens__V1__ContainerMeta *pb_ctr(const struct kl_gq_ctr *c)
{
	Kloudlens__V1__ContainerMeta *m;

	if (!c->cgroup_id)
		return NULL;
	m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	kloudlens__v1__container_meta__init(m);
	m->cgroup_id = c->cgroup_id;
	m->container_id = dup_str(c->id);
	m->name = dup_str(c->name);
	m->image = dup_str(c->image);
	m->pod_name = dup_str(c->pod);
	m->pod_namespace = dup_str(c->pod_ns);
	return m;
}

static PbNode *pb_node(const struct kl_gq_node *n)
{
	PbNode *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	kloudlens__v1__graph_node__init(m);
	m->id = n->id;
	m->kind = (Kloudlens__V1__GraphNode__Kind)n->kind;
	m->label = dup_str(n->label);
	if (n->kind == KL_GN_PROCESS) {
		Kloudlens__V1__ProcessMeta *p = malloc(sizeof(*p));
		if (p) {
			kloudlens__v1__process_meta__init(p);
			p->pid = n->pid;
			p->start_ns = n->start_ns;
			p->comm = dup_str(n->comm);
			p->exe = dup_str(n->label);
			p->cgroup_id = n->ctr.cgroup_id;
			m->process = p;
		}
		m->container = pb_ctr(&n->ctr);
		m->session_id = hex_id(n->session_id);
	}
	return m;
}

static PbSession *pb_session(const struct kl_gq_session *s)
{
	PbSession *m = malloc(sizeof(*m));
	struct kl_gq_node root = { 0 };

	if (!m)
		return NULL;
	kloudlens__v1__graph_session__init(m);
	m->session_id = hex_id(s->id);
	m->origin = (Kloudlens__V1__GraphSession__Origin)s->origin;
	root.id = s->root_id;
	root.kind = KL_GN_PROCESS;
	root.label = s->root_label;
	root.pid = s->root_pid;
	root.start_ns = s->root_start_ns;
	root.comm = s->root_comm;
	root.session_id = s->id;
	root.ctr = s->ctr;
	m->root = pb_node(&root);
	m->container = pb_ctr(&s->ctr);
	m->start_ns = s->start_ns;
	m->end_ns = s->end_ns;
	m->open = s->open;
	m->processes = s->procs;
	m->live_processes = s->live;
	m->edges = s->edges;
	m->cross_container = s->cross;
	return m;
}

static PbEdge *pb_edge(const struct kl_gq_edge *e)
{
	PbEdge *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	kloudlens__v1__graph_edge__init(m);
	m->from = e->from;
	m->to = e->to;
	m->kind = (Kloudlens__V1__GraphEdge__Kind)e->kind;
	m->first_ns = e->first_ns;
	m->last_ns = e->last_ns;
	m->count = e->count;
	m->session_id = hex_id(e->session_id);
	if (e->nseqs) {
		m->source_seqs = malloc(e->nseqs * sizeof(uint64_t));
		if (m->source_seqs) {
			memcpy(m->source_seqs, e->seqs, e->nseqs * sizeof(uint64_t));
			m->n_source_seqs = e->nseqs;
		}
	}
	m->cross_container = (e->flags & KL_GF_CROSS_CTR) != 0;
	m->flags = e->flags;
	m->update = KLOUDLENS__V1__GRAPH_EDGE__UPDATE__EDGE;
	m->arg = e->arg;
	return m;
}

/* The query answer as a GraphSnapshot. Return: NULL on allocation failure. */
static PbSnap *pb_snapshot(const struct kl_gq_result *r, uint64_t session_id, uint64_t now)
{
	PbSnap *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	kloudlens__v1__graph_snapshot__init(m);
	m->session_id = hex_id(session_id);
	m->ts_ns = now;
	m->truncated = r->truncated;
	m->nodes = calloc(r->nnodes + 1, sizeof(*m->nodes));
	m->edges = calloc(r->nedges + 1, sizeof(*m->edges));
	m->sessions = calloc(r->nsessions + 1, sizeof(*m->sessions));
	if (!m->nodes || !m->edges || !m->sessions)
		goto fail;
	for (size_t i = 0; i < r->nnodes; i++, m->n_nodes++)
		if (!(m->nodes[i] = pb_node(&r->nodes[i])))
			goto fail;
	for (size_t i = 0; i < r->nedges; i++, m->n_edges++)
		if (!(m->edges[i] = pb_edge(&r->edges[i])))
			goto fail;
	for (size_t i = 0; i < r->nsessions; i++, m->n_sessions++)
		if (!(m->sessions[i] = pb_session(&r->sessions[i])))
			goto fail;
	return m;
fail:
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return NULL;
}

static int status_of(int err, const char *what, char *msg, size_t msglen)
{
	switch (err) {
	case 0:
		return KL_OK;
	case -ENOENT:
		snprintf(msg, msglen, "%s: not found", what);
		return KL_NOT_FOUND;
	case -EINVAL:
		snprintf(msg, msglen, "%s: invalid argument", what);
		return KL_INVALID_ARGUMENT;
	default:
		snprintf(msg, msglen, "%s: %s", what, strerror(-err));
		return KL_INTERNAL;
	}
}

static int finish(struct kl_graphd_rpc *x, int err, uint64_t sid, const char *what, ProtobufCMessage **resp,
		  char *msg, size_t msglen)
{
	PbSnap *s = NULL;

	x->queries++;
	if (!err) {
		s = pb_snapshot(&x->res, sid, 0);
		if (!s)
			err = -ENOMEM;
	}
	if (err)
		x->errors++;
	kl_gq_result_reset(&x->res);
	pthread_mutex_unlock(&x->mu);
	if (err)
		return status_of(err, what, msg, msglen);
	*resp = &s->base;
	return KL_OK;
}

static int session_graph(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	struct kl_graphd_rpc *x = ctx;
	const Kloudlens__V1__GraphQuery *q = (const void *)req;
	uint64_t sid;
	int err;

	if (kl_graph_parse_id(q->session_id, &sid))
		return status_of(-EINVAL, "session_id (16 hex digits)", msg, msglen);
	pthread_mutex_lock(&x->mu);
	err = kl_graphd_session_graph(x->g, sid, q->max_edges, &x->res);
	return finish(x, err, sid, "session", resp, msg, msglen);
}

static int lineage(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	struct kl_graphd_rpc *x = ctx;
	const Kloudlens__V1__LineageRequest *q = (const void *)req;
	int err;

	if (!q->pid)
		return status_of(-EINVAL, "pid", msg, msglen);
	pthread_mutex_lock(&x->mu);
	err = kl_graphd_lineage(x->g, q->pid, q->start_ns, q->max_depth, &x->res);
	return finish(x, err, 0, "process", resp, msg, msglen);
}

static int touchers(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	struct kl_graphd_rpc *x = ctx;
	const Kloudlens__V1__FileTouchersRequest *q = (const void *)req;
	int err;

	if (!q->path || q->path[0] != '/')
		return status_of(-EINVAL, "path (absolute)", msg, msglen);
	pthread_mutex_lock(&x->mu);
	err = kl_graphd_file_touchers(x->g, q->path, q->container, q->max_edges, &x->res);
	return finish(x, err, 0, "file", resp, msg, msglen);
}

static int reach(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	struct kl_graphd_rpc *x = ctx;
	const Kloudlens__V1__ReachRequest *q = (const void *)req;
	uint64_t sid;
	int err;

	if (kl_graph_parse_id(q->session_id, &sid))
		return status_of(-EINVAL, "session_id (16 hex digits)", msg, msglen);
	pthread_mutex_lock(&x->mu);
	err = kl_graphd_reach(x->g, sid, q->max_depth, q->max_edges, &x->res);
	return finish(x, err, sid, "session", resp, msg, msglen);
}

static int list_sessions(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg,
			 size_t msglen)
{
	struct kl_graphd_rpc *x = ctx;
	const Kloudlens__V1__ListSessionsRequest *q = (const void *)req;
	Kloudlens__V1__ListSessionsResponse *m;
	struct kl_gq_filter f = {
		.namespaces = (const char *const *)q->namespaces, .nnamespaces = q->n_namespaces,
		.pods = (const char *const *)q->pods, .npods = q->n_pods,
		.containers = (const char *const *)q->containers, .ncontainers = q->n_containers,
		.since_ns = q->since_ns, .until_ns = q->until_ns, .state = (int)q->state, .limit = q->limit,
	};
	int err;

	if (q->state > 2)
		return status_of(-EINVAL, "state", msg, msglen);
	m = malloc(sizeof(*m));
	if (!m)
		return status_of(-ENOMEM, "list", msg, msglen);
	kloudlens__v1__list_sessions_response__init(m);
	pthread_mutex_lock(&x->mu);
	x->queries++;
	err = kl_graphd_sessions(x->g, &f, &x->res);
	if (!err) {
		m->sessions = calloc(x->res.nsessions + 1, sizeof(*m->sessions));
		if (!m->sessions)
			err = -ENOMEM;
		for (size_t i = 0; !err && i < x->res.nsessions; i++, m->n_sessions++)
			if (!(m->sessions[i] = pb_session(&x->res.sessions[i])))
				err = -ENOMEM;
		m->truncated = x->res.truncated;
	}
	kl_gq_result_reset(&x->res);
	pthread_mutex_unlock(&x->mu);
	if (err) {
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return status_of(err, "list", msg, msglen);
	}
	*resp = &m->base;
	return KL_OK;
}

const struct kl_rpc_def kl_graphd_rpc_defs[] = {
	{ "/kloudlens.v1.GraphService/ListSessions", &kloudlens__v1__list_sessions_request__descriptor, list_sessions },
	{ "/kloudlens.v1.GraphService/SessionGraph", &kloudlens__v1__graph_query__descriptor, session_graph },
	{ "/kloudlens.v1.GraphService/Lineage", &kloudlens__v1__lineage_request__descriptor, lineage },
	{ "/kloudlens.v1.GraphService/FileTouchers", &kloudlens__v1__file_touchers_request__descriptor, touchers },
	{ "/kloudlens.v1.GraphService/Reach", &kloudlens__v1__reach_request__descriptor, reach },
	{ "/kloudlens.v1.EventService/QueryGraph", &kloudlens__v1__graph_query__descriptor, session_graph },
};
const size_t kl_graphd_rpc_ndefs = sizeof(kl_graphd_rpc_defs) / sizeof(kl_graphd_rpc_defs[0]);
