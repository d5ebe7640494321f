/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graphd-bench - the graph engine on one core:
 *  1. ingest: events/s, edges and records out, over an enriched stream with
 *     container sessions, fork/exec churn, file reads and writes, pipes and
 *     loopback connections (raw records through the real enricher once,
 *     untimed; or a klrec recording with --file);
 *  2. queries on a graph of --graph-edges edges (default 1 M) in sessions of
 *     --session-edges (default 10 k): session subgraph and lineage latency
 *     p50/p99, bytes per edge.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>

#include "../tests/common/benchstream.h"
#include "../tests/common/rawgen.h"
#include "enrich.h"
#include "graphd.h"

#define S 1000000000ull

static uint64_t records_out;

/* --dump: the graph records of the stream as JSON lines (to look at a recording) */
static int dump_emit(void *ctx, const void *rec, size_t len)
{
	struct kl_buf *b = ctx;

	kl_buf_reset(b);
	kl_rec_to_json(b, KL_REC_GRAPH, rec, len, UINT64_MAX);
	puts(b->p);
	return 0;
}

static int count_emit(void *ctx, const void *rec, size_t len)
{
	(void)ctx;
	(void)rec;
	(void)len;
	records_out++;
	return 0;
}

struct gen {
	struct kl_enricher *en;
	uint8_t raw[4096], enr[16384];
	uint64_t seq, ts;
	/* where the enriched records go: a stream (ingest) or an engine directly (graph build) */
	struct stream *s;
	struct kl_graphd *g;
};

static void put(struct gen *G, uint16_t type, size_t len)
{
	long n = kl_enricher_process(G->en, type, G->raw, len, G->enr, sizeof(G->enr));

	if (n <= 0) {
		fprintf(stderr, "graphd-bench: enrich: %ld\n", n);
		exit(1);
	}
	if (G->s)
		push(G->s, KL_REC_ENRICHED, G->enr, (size_t)n);
	else
		kl_graphd_process(G->g, KL_REC_ENRICHED, G->enr, (size_t)n);
}

static void g_sc(struct gen *G, const struct rg_task *t, const char *name, struct rg_sc c)
{
	c.nr = (uint32_t)kl_syscall_nr(name);
	G->ts += 1000;
	put(G, KL_REC_SYSCALL, rg_syscall(G->raw, sizeof(G->raw), t, ++G->seq, G->ts, &c));
}

static void g_proc(struct gen *G, const struct rg_task *t, uint32_t kind, const struct rg_task *parent,
		   const char *exe)
{
	G->ts += 1000;
	put(G, KL_REC_PROC, rg_proc(G->raw, sizeof(G->raw), t, ++G->seq, G->ts, kind, parent, exe, exe,
				    exe ? strlen(exe) + 1 : 0, "/", 0));
}

static void g_ctr(struct gen *G, const struct rg_ctr *c)
{
	G->ts += 1000;
	put(G, KL_REC_CONTAINER, rg_container(G->raw, sizeof(G->raw), ++G->seq, G->ts, c));
}

/*
 * A node's worth of work: 16 containers, each a shell whose children
 * fork, exec, read a few config files many times (edge updates, the
 * common case), write logs, talk through a pipe and connect to a
 * loopback listener of the next container, then exit (pids reused).
 */
static void generate(struct stream *s, uint64_t target)
{
	struct gen G = { .s = s, .ts = S };
	static const char *files[] = { "/etc/passwd", "/etc/app/config.yaml", "/usr/lib/libc.so.6",
				       "/var/www/index.html", "/srv/data/cache.db" };
	struct rg_task runc = { .pid = 10, .ppid = 1, .start_ns = 1, .cgroup_id = 1, .comm = "runc" };
	struct rg_task inits[16];
	struct sockaddr_in any, lo;
	uint32_t next_pid = 1000;

	kl_enricher_new(NULL, &G.en);
	g_proc(&G, &runc, KL_PROC_SNAPSHOT, NULL, "/usr/bin/runc");
	for (int c = 0; c < 16; c++) {
		char id[32];
		snprintf(id, sizeof(id), "ctr%02d0123456789abcdef", c);
		struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 5000 + c,
				      .init_pid = 100 + c, .mnt_ns = 4026532100u + c, .pid_ns = 4026532200u + c,
				      .id = id, .name = "web", .image = "busybox", .pod = "web-0", .pod_ns = "shop" };
		g_ctr(&G, &ctr);
		inits[c] = (struct rg_task){ .pid = 100 + c, .ppid = 10, .start_ns = G.ts, .cgroup_id = 5000 + c,
					     .mnt_ns = ctr.mnt_ns, .pid_ns = ctr.pid_ns, .comm = "sh" };
		g_proc(&G, &inits[c], KL_PROC_FORK, &runc, NULL);
		g_proc(&G, &inits[c], KL_PROC_EXEC, &runc, "/bin/sh");
		any = rg_sin("0.0.0.0", (uint16_t)(8000 + c));
		g_sc(&G, &inits[c], "socket", (struct rg_sc){ .args = { AF_INET, SOCK_STREAM }, .ret = 3 });
		g_sc(&G, &inits[c], "bind", (struct rg_sc){ .args = { 3 }, .sa = &any, .salen = sizeof(any) });
	}
	while (s->n < target) {
		for (int c = 0; c < 16 && s->n < target; c++) {
			int32_t fds[2] = { 5, 6 };
			struct rg_task a = inits[c], b = inits[c];
			a.pid = next_pid++;
			b.pid = next_pid++;
			if (next_pid > 60000)
				next_pid = 1000;
			a.ppid = b.ppid = inits[c].pid;
			g_sc(&G, &inits[c], "pipe2", (struct rg_sc){ .fds = fds });
			a.start_ns = G.ts + 1000;
			g_proc(&G, &a, KL_PROC_FORK, &inits[c], NULL);
			b.start_ns = G.ts + 1000;
			g_proc(&G, &b, KL_PROC_FORK, &inits[c], NULL);
			g_sc(&G, &a, "dup2", (struct rg_sc){ .args = { 6, 1 }, .ret = 1 });
			g_sc(&G, &b, "dup2", (struct rg_sc){ .args = { 5, 0 }, .ret = 0 });
			g_proc(&G, &a, KL_PROC_EXEC, &inits[c], "/usr/bin/app");
			g_proc(&G, &b, KL_PROC_EXEC, &inits[c], "/usr/bin/wc");
			for (int f = 0; f < 5; f++) {
				g_sc(&G, &a, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 7,
								      .path = files[f] });
				for (int r = 0; r < 8; r++)
					g_sc(&G, &a, "read", (struct rg_sc){ .args = { 7, 0, 4096 }, .ret = 4096 });
				g_sc(&G, &a, "close", (struct rg_sc){ .args = { 7 } });
			}
			g_sc(&G, &a, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_WRONLY | O_APPEND | O_CREAT },
							      .ret = 8, .path = "/var/log/app.log" });
			for (int r = 0; r < 10; r++) {
				g_sc(&G, &a, "write", (struct rg_sc){ .args = { 8, 0, 100 }, .ret = 100 });
				g_sc(&G, &a, "write", (struct rg_sc){ .args = { 1, 0, 100 }, .ret = 100 });
				g_sc(&G, &b, "read", (struct rg_sc){ .args = { 0, 0, 4096 }, .ret = 100 });
			}
			lo = rg_sin("127.0.0.1", (uint16_t)(8000 + (c + 1) % 16));
			g_sc(&G, &a, "socket", (struct rg_sc){ .args = { AF_INET, SOCK_STREAM }, .ret = 9 });
			g_sc(&G, &a, "connect", (struct rg_sc){ .args = { 9 }, .sa = &lo, .salen = sizeof(lo) });
			for (int r = 0; r < 10; r++)
				g_sc(&G, &a, "sendto", (struct rg_sc){ .args = { 9, 0, 100 }, .ret = 100 });
			g_proc(&G, &a, KL_PROC_EXIT, &inits[c], NULL);
			g_proc(&G, &b, KL_PROC_EXIT, &inits[c], NULL);
		}
	}
	kl_enricher_free(G.en);
}

/* A graph of @sessions x @per edges: each session a container init, children reading shared files. */
static void build(struct kl_graphd *g, uint32_t sessions, uint32_t per, uint32_t *kids_per_session)
{
	struct gen G = { .g = g, .ts = S };
	struct rg_task runc = { .pid = 10, .ppid = 1, .start_ns = 1, .cgroup_id = 1, .comm = "runc" };
	uint32_t kids = 100, files = per / kids;
	char path[64];
	struct kl_enricher_opts eo = { .max_procs = 1u << 20 };

	*kids_per_session = kids;
	kl_enricher_new(&eo, &G.en);
	g_proc(&G, &runc, KL_PROC_SNAPSHOT, NULL, "/usr/bin/runc");
	for (uint32_t s = 0; s < sessions; s++) {
		char id[32];
		snprintf(id, sizeof(id), "ctr%05u0123456789", s);
		struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 5000 + s,
				      .init_pid = 100000 + s * 1000, .mnt_ns = 4026540000u + s,
				      .pid_ns = 4026560000u + s, .id = id, .name = "job", .image = "busybox" };
		g_ctr(&G, &ctr);
		struct rg_task init = { .pid = ctr.init_pid, .ppid = 10, .start_ns = s + 1, .cgroup_id = ctr.cgroup_id,
					.mnt_ns = ctr.mnt_ns, .pid_ns = ctr.pid_ns, .comm = "sh" };
		g_proc(&G, &init, KL_PROC_FORK, &runc, NULL);
		for (uint32_t k = 0; k < kids; k++) {
			struct rg_task ch = init;
			ch.pid = init.pid + 1 + k;
			ch.ppid = init.pid;
			ch.start_ns = (uint64_t)s * 100000 + k + 7;
			g_proc(&G, &ch, KL_PROC_FORK, &init, NULL);
			for (uint32_t f = 0; f < files; f++) {
				snprintf(path, sizeof(path), "/data/set/%u", f);
				g_sc(&G, &ch, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
								       .path = path });
			}
		}
	}
	kl_enricher_free(G.en);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t touch_sink;

int main(int argc, char **argv)
{
	uint64_t events = 2000000, graph_edges = 1000000;
	uint32_t per = 10000, queries = 200;
	int reps = 3;
	const char *file = NULL;
	bool json = false, dump = false;
	int c;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "events", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'f' }, { "graph-edges", required_argument, NULL, 'g' },
		{ "session-edges", required_argument, NULL, 'p' }, { "queries", required_argument, NULL, 'q' },
		{ "reps", required_argument, NULL, 'r' }, { "dump", no_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};

	while ((c = getopt_long(argc, argv, "jn:f:g:p:q:r:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'd': dump = true; break;
		case 'n': events = strtoull(optarg, NULL, 0); break;
		case 'f': file = optarg; break;
		case 'g': graph_edges = strtoull(optarg, NULL, 0); break;
		case 'p': per = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'q': queries = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		default:
			puts("usage: graphd-bench [--json] [--events N] [--file REC.klrec] [--graph-edges N]\n"
			     "                    [--session-edges N] [--queries N] [--reps R] [--dump]");
			return c == 'h' ? 0 : 2;
		}
	}
	if (per < 100 || !graph_edges || !queries) {
		fprintf(stderr, "graphd-bench: --session-edges >= 100, --graph-edges and --queries > 0\n");
		return 2;
	}

	/* 1. ingest */
	struct stream s = { 0 };
	if (file) {
		if (load_file(&s, file, "graphd-bench", KL_REC_ENRICHED))
			return 1;
	} else {
		generate(&s, events);
	}
	if (dump) {
		struct kl_buf b = { 0 };
		struct kl_graphd *d;
		if (kl_graphd_new(NULL, dump_emit, &b, &d))
			return 1;
		for (size_t off = 0; off < s.len;) {
			uint32_t l;
			uint16_t ty;
			memcpy(&l, s.buf + off, 4);
			memcpy(&ty, s.buf + off + 4, 2);
			kl_graphd_process(d, ty, s.buf + off + 8, l);
			off += 8 + ((l + 7) & ~(size_t)7);
		}
		kl_graphd_flush(d);
		kl_graphd_free(d);
		kl_buf_free(&b);
		free(s.buf);
		return 0;
	}
	struct kl_graphd *g = NULL;
	struct kl_graphd_stats st;
	uint64_t ingest_ns = UINT64_MAX;
	/* Read the stream once, untimed: the first read of the freshly generated buffer
	 * cost this VM ~0.7 us/event (measured), which is the bench's input, not the engine
	 * (the daemon reads a ring whose pages are long mapped). */
	{
		uint64_t sum = 0;
		for (size_t off = 0; off < s.len; off += 64)
			sum += s.buf[off];
		touch_sink = sum;   /* kept, so the reads are not optimised away */
	}
	for (int rep = 0; rep < reps; rep++) {
		kl_graphd_free(g);
		records_out = 0;
		if (kl_graphd_new(NULL, count_emit, NULL, &g)) {
			fprintf(stderr, "graphd-bench: engine\n");
			return 1;
		}
		uint64_t t0 = now_ns();
		for (size_t off = 0; off < s.len;) {
			uint32_t l;
			uint16_t ty;
			memcpy(&l, s.buf + off, 4);
			memcpy(&ty, s.buf + off + 4, 2);
			kl_graphd_process(g, ty, s.buf + off + 8, l);
			off += 8 + ((l + 7) & ~(size_t)7);
		}
		uint64_t t = now_ns() - t0;
		if (getenv("GRAPHD_BENCH_VERBOSE"))
			fprintf(stderr, "rep %d: %.1f ns/event\n", rep, t / (double)s.n);
		if (t < ingest_ns)
			ingest_ns = t;   /* the best of --reps: the least disturbed run */
	}
	kl_graphd_stats(g, &st);
	uint64_t ing_edges = 0;
	for (int k = 0; k < KL_GE__COUNT; k++)
		ing_edges += st.edges_by_kind[k];
	double eps = s.n * 1e9 / (double)ingest_ns;
	uint64_t ing_records = records_out;
	kl_graphd_free(g);
	free(s.buf);

	/* 2. a big graph and queries on it */
	uint32_t sessions = (uint32_t)((graph_edges + per - 1) / per), kids;
	struct kl_graphd_opts go = { .max_edges = (uint32_t)(graph_edges + graph_edges / 4 + 1000),
				     .max_nodes = sessions * 110 + 2000, .max_sessions = sessions + 16 };
	if (go.max_nodes < 1 << 16)
		go.max_nodes = 1 << 16;
	if (kl_graphd_new(&go, count_emit, NULL, &g)) {
		fprintf(stderr, "graphd-bench: engine for the graph\n");
		return 1;
	}
	uint64_t b0 = mono();
	build(g, sessions, per, &kids);
	uint64_t build_ns = mono() - b0;
	kl_graphd_stats(g, &st);
	struct kl_gq_result r = { 0 };
	uint64_t *lat_s = calloc(queries, 8), *lat_l = calloc(queries, 8);
	uint64_t edges_seen = 0;
	rnd_state = 0x9e3779b97f4a7c15ULL;
	kl_gq_result_reset(&r);
	kl_graphd_sessions(g, &(struct kl_gq_filter){ .limit = sessions + 16 }, &r);
	size_t nsess = r.nsessions;
	uint64_t *ids = calloc(nsess + 1, 8);
	uint32_t *roots = calloc(nsess + 1, 4);
	for (size_t k = 0; k < nsess; k++) {
		ids[k] = r.sessions[k].id;
		roots[k] = r.sessions[k].root_pid;
	}
	/* warm-up: the answer buffers grow once, as in the daemon, which reuses them */
	kl_gq_result_reset(&r);
	kl_graphd_session_graph(g, ids[0], per * 2, &r);
	for (uint32_t q = 0; q < queries; q++) {
		size_t k = rnd() % nsess;
		kl_gq_result_reset(&r);
		uint64_t q0 = mono();
		kl_graphd_session_graph(g, ids[k], per * 2, &r);
		lat_s[q] = mono() - q0;
		edges_seen += r.nedges;
		uint32_t pid = roots[k] + 1 + (uint32_t)(rnd() % kids);
		kl_gq_result_reset(&r);
		q0 = mono();
		kl_graphd_lineage(g, pid, (uint64_t)(roots[k] - 100000) / 1000 * 100000 + (pid - roots[k] - 1) + 7, 0, &r);
		lat_l[q] = mono() - q0;
	}
	qsort(lat_s, queries, 8, cmp_u64);
	qsort(lat_l, queries, 8, cmp_u64);
	size_t i50 = queries / 2, i99 = (queries * 99) / 100;   /* ranks of the percentiles */
	double s50 = (double)lat_s[i50] / 1e6, s99 = (double)lat_s[i99] / 1e6;
	double l50 = (double)lat_l[i50] / 1e3, l99 = (double)lat_l[i99] / 1e3;
	double bpe = (double)st.bytes / (double)(st.edges ? st.edges : 1);
	double avg_edges = (double)edges_seen / queries;

	if (json) {
		printf("{\"bench\":\"graphd\",\"source\":\"%s\",\"events\":%llu,\"ingest_events_per_s\":%.0f,"
		       "\"ingest_ns_per_event\":%.1f,\"edges_created\":%llu,\"records_out\":%llu,"
		       "\"graph_edges\":%llu,\"graph_nodes\":%llu,\"graph_sessions\":%llu,\"build_s\":%.2f,"
		       "\"session_edges_avg\":%.0f,\"session_graph_p50_ms\":%.3f,\"session_graph_p99_ms\":%.3f,"
		       "\"lineage_p50_us\":%.1f,\"lineage_p99_us\":%.1f,\"bytes_per_edge\":%.1f,\"peak_rss_kb\":%ld}\n",
		       file ? file : "generated", (unsigned long long)s.n, eps, ingest_ns / (double)s.n,
		       (unsigned long long)ing_edges, (unsigned long long)ing_records, (unsigned long long)st.edges,
		       (unsigned long long)st.nodes, (unsigned long long)st.sessions, build_ns / 1e9, avg_edges,
		       s50, s99, l50, l99, bpe, peak_kb());
	} else {
		printf("%-34s %14s %12s\n", "ingest (one core, CPU time)", "events/s", "ns/event");
		printf("%-34s %14.0f %12.1f\n", "kl-graphd engine", eps, ingest_ns / (double)s.n);
		printf("events %llu (%s), edges created %llu, graph records out %llu\n", (unsigned long long)s.n,
		       file ? file : "generated", (unsigned long long)ing_edges, (unsigned long long)ing_records);
		printf("\n%-34s %10s %10s\n", "query (graph below, wall time)", "p50", "p99");
		printf("%-34s %8.3fms %8.3fms\n", "session subgraph", s50, s99);
		printf("%-34s %8.1fus %8.1fus\n", "lineage (ancestors+descendants)", l50, l99);
		printf("graph: %llu edges, %llu nodes, %llu sessions (built in %.2f s); %.0f edges per session answer\n",
		       (unsigned long long)st.edges, (unsigned long long)st.nodes, (unsigned long long)st.sessions,
		       build_ns / 1e9, avg_edges);
		printf("memory: %.1f bytes per edge (slabs, buckets, labels); peak RSS %ld KiB\n", bpe, peak_kb());
	}
	kl_gq_result_free(&r);
	free(lat_s);
	free(lat_l);
	free(ids);
	free(roots);
	kl_graphd_free(g);
	return 0;
}
