/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graphd.h - kl-graphd's engine: the causal session graph (docs/graph.md).
 * Pure like the enricher's and intentd's engines: no I/O and no clock
 * (event time drives session close, retention and the match windows), so
 * golden tests are deterministic and the benchmark measures the
 * per-event work only. Graph updates leave through a callback as
 * struct kl_graph records; queries fill a struct kl_gq_result whose
 * strings point into the engine and stay valid until the next call that
 * changes it (the daemon holds its engine lock while it converts them).
 */
#ifndef KLOUDLENS_GRAPHD_H
#define KLOUDLENS_GRAPHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>

struct kl_graphd;

struct kl_graphd_opts {
	uint32_t max_nodes;         /* processes + files + endpoints + pipes (default 1 M) */
	uint32_t max_edges;         /* default 2 M */
	uint32_t max_sessions;      /* default 65536 */
	uint32_t max_containers;    /* default 4096 */
	uint64_t grace_ns;          /* a session closes this long after its last process exits (5 s) */
	uint64_t retention_ns;      /* a closed session is kept this long (1 h) */
	uint64_t shared_window_ns;  /* write in one container -> read in another links them (60 s) */
	uint64_t net_window_ns;     /* connect -> accept matching window (2 s) */
	uint64_t update_ns;         /* an edge's count is re-emitted at most this often (1 s) */
};

typedef int (*kl_graph_emit_fn)(void *ctx, const void *rec, size_t len);

struct kl_graphd_stats {
	uint64_t events;            /* enriched records consumed */
	uint64_t invalid;           /* rejected by validation */
	uint64_t records;           /* graph records emitted */
	uint64_t nodes, edges, sessions, sessions_open, containers;   /* gauges */
	uint64_t edges_by_kind[KL_GE__COUNT];                          /* created, by kind */
	uint64_t cross_container;   /* cross-container edges created */
	uint64_t sessions_opened, sessions_closed, sessions_evicted;
	uint64_t procs_evicted;     /* exited processes dropped early by a cap */
	uint64_t nodes_dropped;     /* not created: cap full and nothing evictable */
	uint64_t edges_dropped;
	uint64_t sessions_dropped;
	uint64_t unresolved;        /* signal/ptrace targets, pipe ends not found */
	uint64_t emit_errors;
	uint64_t bytes;             /* engine memory in tables and labels */
};

int kl_graphd_new(const struct kl_graphd_opts *opts, kl_graph_emit_fn emit, void *ctx,
		  struct kl_graphd **out);
void kl_graphd_free(struct kl_graphd *g);

/**
 * kl_graphd_process() - fold one record of the enriched ring (@type
 * KL_REC_ENRICHED; anything else is ignored) into the graph.
 * Return: graph records emitted (>= 0), -EBADMSG for an invalid record.
 */
int kl_graphd_process(struct kl_graphd *g, uint16_t type, const void *rec, size_t len);
/* Advance event time without an event (sessions close, retention expires). Return: records emitted. */
int kl_graphd_tick(struct kl_graphd *g, uint64_t now_ns);
/* Emit every edge update still held back by update_ns (shutdown). Return: records emitted. */
int kl_graphd_flush(struct kl_graphd *g);
void kl_graphd_stats(const struct kl_graphd *g, struct kl_graphd_stats *st);

/* ---- queries ---------------------------------------------------------- */

enum kl_gs_origin {             /* == GraphSession.Origin */
	KL_GS_CONTAINER_INIT = 1,
	KL_GS_EXEC_IN = 2,
	KL_GS_SETSID = 3,
	KL_GS_ORPHAN = 4,
};

struct kl_gq_ctr {
	uint64_t cgroup_id;
	const char *id, *name, *image, *pod, *pod_ns;
};

struct kl_gq_node {
	uint64_t id;
	uint16_t kind;              /* enum kl_graph_node_kind */
	const char *label;          /* exe, path, address */
	/* processes */
	uint32_t pid;
	uint64_t start_ns, exit_ns; /* exit_ns 0 while alive */
	uint64_t session_id;
	const char *comm;
	struct kl_gq_ctr ctr;       /* cgroup_id 0: the host */
	uint64_t parent_id;         /* the parent's node id, 0 unknown */
};

struct kl_gq_edge {
	uint64_t from, to;          /* node ids */
	uint16_t kind;              /* enum kl_graph_edge_kind */
	uint32_t flags;             /* KL_GF_* */
	uint64_t session_id;
	uint64_t first_ns, last_ns, count, first_seq, last_seq, arg;
	uint64_t seqs[4];
	uint32_t nseqs;
};

struct kl_gq_session {
	uint64_t id;
	uint16_t origin;            /* enum kl_gs_origin */
	bool open, cross, truncated;
	uint64_t root_id;
	uint32_t root_pid;
	uint64_t root_start_ns;
	const char *root_label, *root_comm;
	struct kl_gq_ctr ctr;
	uint64_t start_ns, end_ns;
	uint32_t procs, live, edges;
};

struct kl_gq_result {
	struct kl_gq_node *nodes;
	struct kl_gq_edge *edges;
	struct kl_gq_session *sessions;
	size_t nnodes, nedges, nsessions;
	size_t cap_nodes, cap_edges, cap_sessions;
	bool truncated;             /* a limit cut the answer or the graph dropped parts */
};
void kl_gq_result_reset(struct kl_gq_result *r);   /* empty it, keep the buffers */
void kl_gq_result_free(struct kl_gq_result *r);

struct kl_gq_filter {
	const char *const *namespaces; size_t nnamespaces;
	const char *const *pods; size_t npods;
	const char *const *containers; size_t ncontainers;   /* id prefix or name */
	uint64_t since_ns, until_ns;
	int state;                  /* 0 any, 1 open, 2 closed */
	uint32_t limit;             /* 0: 1000 */
};

/* Each returns 0, -ENOENT (unknown session/process) or -ENOMEM. */
int kl_graphd_sessions(struct kl_graphd *g, const struct kl_gq_filter *f, struct kl_gq_result *r);
int kl_graphd_session_graph(struct kl_graphd *g, uint64_t session_id, uint32_t max_edges,
			    struct kl_gq_result *r);
/* @start_ns 0: the newest process with @pid. Ancestors to the root, descendants to @max_depth. */
int kl_graphd_lineage(struct kl_graphd *g, uint32_t pid, uint64_t start_ns, uint32_t max_depth,
		      struct kl_gq_result *r);
int kl_graphd_file_touchers(struct kl_graphd *g, const char *path, const char *ctr, uint32_t max_edges,
			    struct kl_gq_result *r);
/* The session's graph plus every session reached over cross-container edges, @max_depth hops. */
int kl_graphd_reach(struct kl_graphd *g, uint64_t session_id, uint32_t max_depth, uint32_t max_edges,
		    struct kl_gq_result *r);

/* Node/session id helpers, shared with the tests. */
uint64_t kl_graph_proc_id(uint32_t pid, uint64_t start_ns);

#endif
