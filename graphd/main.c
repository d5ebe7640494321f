/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-graphd - enriched ring in, graph ring out, session queries on an
 * nng rep socket (docs/graph.md). Rings and the query socket are opened
 * while it may still be root (the socket is handed to the stage user),
 * then it drops to an unprivileged user with no capabilities before it
 * reads a single event. On SIGTERM it drains the input ring, flushes the
 * edge updates held back by --update-ms and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>
#include <kloudlens/stage.h>

#include "graphd_rpc.h"

#define BATCH 256
#define LIVE_NS (60ull * 1000000000ull)
#define C "kl-graphd"

static void usage(FILE *o)
{
	fputs("usage: kl-graphd [options]\n"
	      "  --dir DIR              rings directory (default " SHM_DEFAULT_DIR ")\n"
	      "  --input NAME           ring to read (default enriched)\n"
	      "  --output NAME          ring to write (default graph)\n"
	      "  --capacity BYTES       output ring capacity (default 64 MiB)\n"
	      "  --ring-mode MODE       output ring file mode, octal (default 0640)\n"
	      "  --user NAME            user to run as when started as root (default kloudlens)\n"
	      "  --wait SEC             wait this long for the input ring to appear (default 30)\n"
	      "  --rpc URL              query socket (default ipc://DIR/kl-graphd.sock; \"none\": off)\n"
	      "  --max-nodes N          node cap (default 1048576)\n"
	      "  --max-edges N          edge cap (default 2097152)\n"
	      "  --max-sessions N       session cap (default 65536)\n"
	      "  --grace-ms MS          session closes this long after its last exit (default 5000)\n"
	      "  --retention-s S        closed sessions kept (default 3600)\n"
	      "  --shared-window-ms MS  write->read across containers links them (default 60000)\n"
	      "  --net-window-ms MS     connect->accept matching window (default 2000)\n"
	      "  --update-ms MS         an edge's count re-emitted at most this often (default 1000)\n",
	      o);
}

/* kl_stage_setup's before_drop: the query socket, owned by the stage user */
struct query_socket {
	struct kl_graphd_rpc *x;
	const char *url, *user;
	struct kl_rpc_server *srv;
};

static int start_queries(void *ctx)
{
	struct query_socket *q = ctx;
	int err;

	if (!strcmp(q->url, "none"))
		return 0;
	err = kl_rpc_server_start(q->url, kl_graphd_rpc_defs, kl_graphd_rpc_ndefs, q->x, q->user, &q->srv);
	if (err)
		kl_log(C, "error", "query socket %s: %s", q->url, strerror(-err));
	return err;
}

struct own_ctx {
	struct kl_graphd_opts *go;
	const char **rpc_url;
};

/* kl_stage_args()' callback: graphd's own options */
static int own_opt(void *ctx, int opt, const char *arg)
{
	struct own_ctx *oc = ctx;
	struct kl_graphd_opts *go = oc->go;

	switch (opt) {
	case 'r': *oc->rpc_url = arg; return 0;
	case 'N': return kl_parse_u32(arg, &go->max_nodes);
	case 'E': return kl_parse_u32(arg, &go->max_edges);
	case 'S': return kl_parse_u32(arg, &go->max_sessions);
	case 'G': return kl_parse_u64(arg, 1000000ull, &go->grace_ns);
	case 'R': return kl_parse_u64(arg, 1000000000ull, &go->retention_ns);
	case 'F': return kl_parse_u64(arg, 1000000ull, &go->shared_window_ns);
	case 'T': return kl_parse_u64(arg, 1000000ull, &go->net_window_ns);
	case 'U': return kl_parse_u64(arg, 1000000ull, &go->update_ns);
	default: return -EINVAL;
	}
}

int main(int argc, char **argv)
{
	const char *rpc_url = NULL;
	struct kl_graphd_opts go = { 0 };
	struct kl_graphd_rpc x = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct query_socket qs = { .x = &x };
	struct kl_stage sg;
	struct shm_consumer *c = NULL;
	struct shm_stats *stats = NULL;
	char url[512];
	struct own_ctx oc = { &go, &rpc_url };
	int err, rc = 1;
	static const struct option opts[] = {
		KL_STAGE_LONGOPTS,
		{ "rpc", required_argument, NULL, 'r' },
		{ "max-nodes", required_argument, NULL, 'N' },
		{ "max-edges", required_argument, NULL, 'E' },
		{ "max-sessions", required_argument, NULL, 'S' },
		{ "grace-ms", required_argument, NULL, 'G' },
		{ "retention-s", required_argument, NULL, 'R' },
		{ "shared-window-ms", required_argument, NULL, 'F' },
		{ "net-window-ms", required_argument, NULL, 'T' },
		{ "update-ms", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct kl_stage_spec spec = {
		.component = C, .user = "kloudlens", .wait_s = 30,
		.inputs = { "enriched" }, .output = "graph", .out_type = KL_REC_GRAPH, .ro = SHM_RING_OPTS_INIT,
		.before_drop = start_queries, .ctx = &qs,
	};

	spec.ro.policy = SHM_POLICY_BLOCK;
	rc = kl_stage_args(argc, argv, opts, &spec, own_opt, &oc, usage);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (!rpc_url)
		kl_rpc_stage_url(url, sizeof(url), spec.dir, C);
	else
		snprintf(url, sizeof(url), "%s", rpc_url);
	qs.url = url;
	qs.user = spec.user;
	err = kl_graphd_new(&go, kl_stage_emit, &sg.out, &x.g);
	if (err) {
		kl_log(C, "error", "engine: %s", strerror(-err));
		return 1;
	}
	if (kl_stage_setup(&spec, &sg)) {
		kl_rpc_server_stop(qs.srv);
		kl_graphd_free(x.g);
		return 1;
	}
	c = sg.cons[0];
	stats = sg.stats;

	uint64_t *m_events = shm_stats_metric(stats, "kloudlens_graphd_events_total", NULL,
					      "Enriched records consumed", SHM_COUNTER);
	uint64_t *m_invalid = shm_stats_metric(stats, "kloudlens_graphd_invalid_total", NULL,
					       "Enriched records rejected by validation", SHM_COUNTER);
	uint64_t *m_records = shm_stats_metric(stats, "kloudlens_graphd_records_total", NULL,
					       "Graph records emitted (edge and session updates)", SHM_COUNTER);
	uint64_t *m_nodes = shm_stats_metric(stats, "kloudlens_graphd_nodes", NULL, "Graph nodes", SHM_GAUGE);
	uint64_t *m_edges = shm_stats_metric(stats, "kloudlens_graphd_edges", NULL, "Graph edges", SHM_GAUGE);
	uint64_t *m_sess = shm_stats_metric(stats, "kloudlens_graphd_sessions", NULL,
					    "Sessions held (open and retained)", SHM_GAUGE);
	uint64_t *m_sess_open = shm_stats_metric(stats, "kloudlens_graphd_sessions_open", NULL,
						 "Open sessions", SHM_GAUGE);
	uint64_t *m_opened = shm_stats_metric(stats, "kloudlens_graphd_sessions_opened_total", NULL,
					      "Sessions opened", SHM_COUNTER);
	uint64_t *m_closed = shm_stats_metric(stats, "kloudlens_graphd_sessions_closed_total", NULL,
					      "Sessions closed", SHM_COUNTER);
	uint64_t *m_evicted = shm_stats_metric(stats, "kloudlens_graphd_sessions_evicted_total", NULL,
					       "Sessions evicted (retention or a cap)", SHM_COUNTER);
	uint64_t *m_pevict = shm_stats_metric(stats, "kloudlens_graphd_processes_evicted_total", NULL,
					      "Exited processes of open sessions dropped by a cap", SHM_COUNTER);
	uint64_t *m_ndrop = shm_stats_metric(stats, "kloudlens_graphd_nodes_dropped_total", NULL,
					     "Nodes not created: cap full, nothing evictable", SHM_COUNTER);
	uint64_t *m_edrop = shm_stats_metric(stats, "kloudlens_graphd_edges_dropped_total", NULL,
					     "Edges not created: cap full, nothing evictable", SHM_COUNTER);
	uint64_t *m_sdrop = shm_stats_metric(stats, "kloudlens_graphd_sessions_dropped_total", NULL,
					     "Sessions not created: cap full", SHM_COUNTER);
	uint64_t *m_cross = shm_stats_metric(stats, "kloudlens_graphd_cross_container_edges_total", NULL,
					     "Cross-container edges created", SHM_COUNTER);
	uint64_t *m_unres = shm_stats_metric(stats, "kloudlens_graphd_unresolved_total", NULL,
					     "Signal/ptrace targets and pipe ends not found", SHM_COUNTER);
	uint64_t *m_bytes = shm_stats_metric(stats, "kloudlens_graphd_memory_bytes", NULL,
					     "Engine memory: tables and labels", SHM_GAUGE);
	uint64_t *m_emit_err = shm_stats_metric(stats, "kloudlens_graphd_emit_errors_total", NULL,
						"Graph records that could not be written to the ring", SHM_COUNTER);

	kl_log(C, "info", "running: %s -> %s, queries on %s, as uid %d", spec.inputs[0], spec.output, url, (int)getuid());

	struct shm_rec recs[BATCH];
	uint64_t last_ts = 0;
	for (;;) {
		int n = kl_stage_next(&sg, 0, recs, BATCH, 200);
		if (n < 0)
			break;   /* stopped and drained, or the ring failed (logged) */
		pthread_mutex_lock(&x.mu);
		if (n == 0 && last_ts) {
			/* Quiet stream: sessions still close on the clock the events are
			 * stamped with, but only for a live stream (a replayed recording's
			 * timestamps are far in the past). */
			uint64_t mono = kl_now_mono_ns();
			if (mono >= last_ts && mono - last_ts < LIVE_NS)
				kl_graphd_tick(x.g, mono);
		}
		for (int i = 0; i < n; i++) {
			kl_graphd_process(x.g, recs[i].type, recs[i].data, recs[i].len);
			if (recs[i].len >= sizeof(struct kl_event)) {
				struct kl_event ev;
				memcpy(&ev, recs[i].data, sizeof(ev));
				if (ev.ts_ns > last_ts)
					last_ts = ev.ts_ns;
			}
		}
		struct kl_graphd_stats st;
		kl_graphd_stats(x.g, &st);
		pthread_mutex_unlock(&x.mu);
		kl_stage_out_publish(&sg.out);
		shm_consumer_release(c);
		if (sg.out.err == -EPIPE)
			break;
		shm_stats_set(m_events, st.events);
		shm_stats_set(m_invalid, st.invalid);
		shm_stats_set(m_records, st.records);
		shm_stats_set(m_nodes, st.nodes);
		shm_stats_set(m_edges, st.edges);
		shm_stats_set(m_sess, st.sessions);
		shm_stats_set(m_sess_open, st.sessions_open);
		shm_stats_set(m_opened, st.sessions_opened);
		shm_stats_set(m_closed, st.sessions_closed);
		shm_stats_set(m_evicted, st.sessions_evicted);
		shm_stats_set(m_pevict, st.procs_evicted);
		shm_stats_set(m_ndrop, st.nodes_dropped);
		shm_stats_set(m_edrop, st.edges_dropped);
		shm_stats_set(m_sdrop, st.sessions_dropped);
		shm_stats_set(m_cross, st.cross_container);
		shm_stats_set(m_unres, st.unresolved);
		shm_stats_set(m_bytes, st.bytes);
		shm_stats_set(m_emit_err, st.emit_errors);
	}
	pthread_mutex_lock(&x.mu);
	kl_graphd_flush(x.g);
	pthread_mutex_unlock(&x.mu);
	rc = 0;
	kl_log(C, "info", "stopped");
	/* queries stop first: they read the engine the teardown is about to free */
	kl_rpc_server_stop(qs.srv);
	kl_stage_teardown(&sg);
	kl_gq_result_free(&x.res);
	kl_graphd_free(x.g);
	return rc;
}
