/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-graphd engine: realistic streams (raw records as the collector
 * writes them -> the real enricher engine -> the graph engine), the graph
 * records compared with tests/graphd/golden/NAME.jsonl
 * (KL_UPDATE_GOLDEN=1 rewrites them), plus direct assertions on the edges,
 * sessions and query answers each scenario is about, so a blindly
 * regenerated golden file cannot hide a regression.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <kloudlens/recutil.h>

#include "../common/golden.h"
#include "../common/rawgen.h"
#include "enrich.h"
#include "graphd.h"

#define S 1000000000ull
#define MS 1000000ull
#define HOST_MNT 4026531840u
#define HOST_PIDNS 4026531836u

struct stream {
	struct kl_enricher *en;
	struct kl_graphd *g;
	uint64_t seq;
	struct kl_buf out;
	json_t *all;
	struct kl_gq_result r;
	uint8_t rec[16384];
	uint8_t enr[65536];
};

static int on_rec(void *ctx, const void *rec, size_t len)
{
	struct stream *s = ctx;
	size_t st = s->out.len;

	cr_assert_eq(kl_rec_validate(KL_REC_GRAPH, rec, len), KL_REC_OK, "graph record invalid");
	kl_rec_to_json(&s->out, KL_REC_GRAPH, rec, len, UINT64_MAX);
	json_t *j = json_loadb(s->out.p + st, s->out.len - st, 0, NULL);
	cr_assert_not_null(j, "graph JSON does not parse: %s", s->out.p + st);
	json_array_append_new(s->all, j);
	kl_buf_putc(&s->out, '\n');
	return 0;
}

static void start_opts(struct stream *s, const struct kl_graphd_opts *o)
{
	struct kl_graphd_opts d = { .max_nodes = 4096, .max_edges = 8192, .max_sessions = 256,
				    .grace_ns = 2 * S, .retention_ns = 60 * S };

	memset(s, 0, sizeof(*s));
	cr_assert_eq(kl_enricher_new(NULL, &s->en), 0);
	cr_assert_eq(kl_graphd_new(o ? o : &d, on_rec, s, &s->g), 0);
	s->all = json_array();
}

static void start(struct stream *s)
{
	start_opts(s, NULL);
}

static void feed(struct stream *s, uint16_t type, size_t len)
{
	long n = kl_enricher_process(s->en, type, s->rec, len, s->enr, sizeof(s->enr));
	cr_assert_gt(n, 0, "enrich: %ld", n);
	cr_assert_geq(kl_graphd_process(s->g, KL_REC_ENRICHED, s->enr, (size_t)n), 0);
}

static uint32_t nr(const char *name)
{
	int v = kl_syscall_nr(name);
	cr_assert_geq(v, 0, "unknown syscall %s", name);
	return (uint32_t)v;
}

static void sc(struct stream *s, const struct rg_task *t, uint64_t ts, const char *name, struct rg_sc c)
{
	c.nr = nr(name);
	feed(s, KL_REC_SYSCALL, rg_syscall(s->rec, sizeof(s->rec), t, ++s->seq, ts, &c));
}

static void proc(struct stream *s, const struct rg_task *t, uint64_t ts, uint32_t kind, const struct rg_task *parent,
		 const char *exe)
{
	feed(s, KL_REC_PROC, rg_proc(s->rec, sizeof(s->rec), t, ++s->seq, ts, kind, parent, exe,
				     exe, exe ? strlen(exe) + 1 : 0, "/", 0));
}

static void ctr(struct stream *s, uint64_t ts, const struct rg_ctr *c)
{
	feed(s, KL_REC_CONTAINER, rg_container(s->rec, sizeof(s->rec), ++s->seq, ts, c));
}

static void finish(struct stream *s, const char *name)
{
	golden_check("graphd", name, s->out.p, s->out.len);
	json_decref(s->all);
	kl_buf_free(&s->out);
	kl_gq_result_free(&s->r);
	kl_graphd_free(s->g);
	kl_enricher_free(s->en);
}

/* ---- assertions on the emitted records --------------------------------------- */

static const char *STR(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	return json_is_string(v) ? json_string_value(v) : "";
}

static bool has_flag(json_t *j, const char *flag)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(j, "flags"), i, v)
		if (!strcmp(json_string_value(v), flag))
			return true;
	return false;
}

/* The newest edge record of @kind from pid @from (to pid @to, or to label @to_label). */
static json_t *edge(struct stream *s, const char *kind, uint32_t from, uint32_t to, const char *to_label)
{
	json_t *found = NULL, *j;
	size_t i;

	json_array_foreach(s->all, i, j) {
		if (strcmp(STR(j, "op"), "edge") || strcmp(STR(j, "kind"), kind))
			continue;
		if (json_integer_value(json_object_get(j, "pid")) != from)
			continue;
		if (to && json_integer_value(json_object_get(j, "to_pid")) != to)
			continue;
		if (to_label && strcmp(STR(j, "graph_to"), to_label))
			continue;
		found = j;
	}
	return found;
}

static size_t count_op(struct stream *s, const char *op)
{
	size_t n = 0, i;
	json_t *j;

	json_array_foreach(s->all, i, j)
		if (!strcmp(STR(j, "op"), op))
			n++;
	return n;
}

static json_t *session_rec(struct stream *s, const char *op, uint32_t root)
{
	size_t i;
	json_t *j;

	json_array_foreach(s->all, i, j)
		if (!strcmp(STR(j, "op"), op) && json_integer_value(json_object_get(j, "pid")) == root)
			return j;
	return NULL;
}

static const struct kl_gq_session *find_session(struct stream *s, uint32_t root)
{
	kl_gq_result_reset(&s->r);
	cr_assert_eq(kl_graphd_sessions(s->g, NULL, &s->r), 0);
	for (size_t i = 0; i < s->r.nsessions; i++)
		if (s->r.sessions[i].root_pid == root)
			return &s->r.sessions[i];
	return NULL;
}

static bool result_has_edge(const struct kl_gq_result *r, uint16_t kind, uint64_t from, uint64_t to)
{
	for (size_t i = 0; i < r->nedges; i++)
		if (r->edges[i].kind == kind && r->edges[i].from == from && r->edges[i].to == to)
			return true;
	return false;
}

/* ---- the scenarios --------------------------------------------------------- */

static const struct rg_ctr C1 = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 5000,
				  .init_pid = 100, .mnt_ns = 4026532100u, .pid_ns = 4026532101u,
				  .id = "c1c1c1c1c1c1c1c1c1c1", .name = "web", .image = "busybox",
				  .pod = "web-0", .pod_ns = "shop" };
static const struct rg_ctr C2 = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 6000,
				  .init_pid = 200, .mnt_ns = 4026532200u, .pid_ns = 4026532201u,
				  .id = "c2c2c2c2c2c2c2c2c2c2", .name = "db", .image = "busybox",
				  .pod = "db-0", .pod_ns = "shop" };

static const struct rg_task RUNC = { .pid = 50, .ppid = 1, .start_ns = 5 * S, .cgroup_id = 1,
				     .mnt_ns = HOST_MNT, .pid_ns = HOST_PIDNS, .comm = "runc" };

static struct rg_task in_ctr(const struct rg_ctr *c, uint32_t pid, uint32_t ppid, uint64_t start, const char *comm)
{
	struct rg_task t = { .pid = pid, .ppid = ppid, .start_ns = start, .cgroup_id = c->cgroup_id,
			     .mnt_ns = c->mnt_ns, .pid_ns = c->pid_ns, .comm = comm };
	return t;
}

/* runc starts container @c: its init (pid c->init_pid) runs @exe. */
static struct rg_task boot(struct stream *s, const struct rg_ctr *c, uint64_t ts, const char *exe)
{
	struct rg_task init = in_ctr(c, c->init_pid, RUNC.pid, ts, "sh");

	ctr(s, ts, c);
	proc(s, &init, ts + 1, KL_PROC_FORK, &RUNC, NULL);
	proc(s, &init, ts + 2, KL_PROC_EXEC, &RUNC, exe);
	return init;
}

static void host_runc(struct stream *s)
{
	proc(s, &RUNC, 5 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/runc");
}

Test(graphd, pipeline_cat_wc)
{
	struct stream s;
	int32_t fds[2] = { 3, 4 };

	start(&s);
	host_runc(&s);
	struct rg_task sh = boot(&s, &C1, 10 * S, "/bin/sh");
	struct rg_task cat = in_ctr(&C1, 101, 100, 11 * S, "sh"), wc = in_ctr(&C1, 102, 100, 11 * S + 1, "sh");
	sc(&s, &sh, 11 * S - 10, "pipe2", (struct rg_sc){ .fds = fds });
	proc(&s, &cat, 11 * S, KL_PROC_FORK, &sh, NULL);
	proc(&s, &wc, 11 * S + 1, KL_PROC_FORK, &sh, NULL);
	sc(&s, &cat, 11 * S + 10, "dup2", (struct rg_sc){ .args = { 4, 1 }, .ret = 1 });
	sc(&s, &cat, 11 * S + 11, "close", (struct rg_sc){ .args = { 3 } });
	sc(&s, &cat, 11 * S + 12, "close", (struct rg_sc){ .args = { 4 } });
	proc(&s, &cat, 11 * S + 20, KL_PROC_EXEC, &sh, "/bin/cat");
	sc(&s, &wc, 11 * S + 13, "dup2", (struct rg_sc){ .args = { 3, 0 }, .ret = 0 });
	sc(&s, &wc, 11 * S + 14, "close", (struct rg_sc){ .args = { 3 } });
	sc(&s, &wc, 11 * S + 15, "close", (struct rg_sc){ .args = { 4 } });
	proc(&s, &wc, 11 * S + 21, KL_PROC_EXEC, &sh, "/usr/bin/wc");
	sc(&s, &cat, 11 * S + 30, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
							 .path = "/data/f" });
	sc(&s, &cat, 11 * S + 31, "read", (struct rg_sc){ .args = { 3, 0, 4096 }, .ret = 12 });
	sc(&s, &cat, 11 * S + 32, "write", (struct rg_sc){ .args = { 1, 0, 12 }, .ret = 12 });
	sc(&s, &wc, 11 * S + 33, "read", (struct rg_sc){ .args = { 0, 0, 4096 }, .ret = 12 });
	sc(&s, &wc, 11 * S + 34, "write", (struct rg_sc){ .args = { 1, 0, 2 }, .ret = 2 });

	json_t *j = edge(&s, "FORK", 100, 101, NULL);
	cr_assert_not_null(j, "FORK sh -> cat");
	cr_assert(!has_flag(j, "cross_container"));
	cr_assert_not_null(edge(&s, "FORK", 100, 102, NULL));
	j = edge(&s, "FORK", 50, 100, NULL);
	cr_assert_not_null(j, "FORK runc -> init");
	cr_assert(has_flag(j, "cross_container"), "runc on the host starting the init crosses containers");
	j = edge(&s, "EXEC", 101, 101, NULL);
	cr_assert_not_null(j);
	cr_assert_str_eq(STR(j, "graph_from"), "/bin/sh");
	cr_assert_str_eq(STR(j, "graph_to"), "/bin/cat");
	cr_assert_not_null(edge(&s, "FILE_EXEC", 102, 0, "/usr/bin/wc"));
	j = edge(&s, "FILE_READ", 101, 0, "/data/f");
	cr_assert_not_null(j, "cat read /data/f");
	cr_assert_str_eq(STR(j, "graph_from_ctr"), "c1c1c1c1c1c1c1c1c1c1");
	cr_assert_str_eq(STR(j, "graph_pod"), "shop/web-0");
	j = edge(&s, "IPC", 101, 102, NULL);
	cr_assert_not_null(j, "pipe cat -> wc matched");
	cr_assert(has_flag(j, "pipe") && has_flag(j, "matched"));
	cr_assert(!has_flag(j, "cross_container"));
	cr_assert_null(edge(&s, "IPC", 102, 101, NULL), "a pipe has a direction");

	/* one session rooted at the container's init, with all three processes */
	const struct kl_gq_session *ss = find_session(&s, 100);
	cr_assert_not_null(ss);
	cr_assert_eq(ss->origin, KL_GS_CONTAINER_INIT);
	cr_assert_eq(ss->procs, 3);
	cr_assert_str_eq(ss->ctr.name, "web");
	uint64_t sid = ss->id;
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_session_graph(s.g, sid, 0, &s.r), 0);
	uint64_t p100 = kl_graph_proc_id(100, 10 * S), p101 = kl_graph_proc_id(101, 11 * S),
		 p102 = kl_graph_proc_id(102, 11 * S + 1);
	cr_assert(result_has_edge(&s.r, KL_GE_FORK, p100, p101));
	cr_assert(result_has_edge(&s.r, KL_GE_IPC, p101, p102));
	cr_assert(result_has_edge(&s.r, KL_GE_FORK, kl_graph_proc_id(50, 5 * S), p100),
		  "the edge into the session is part of its subgraph");

	/* lineage of wc: runc -> sh -> wc */
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_lineage(s.g, 102, 0, 0, &s.r), 0);
	cr_assert_eq(s.r.nedges, 2);
	cr_assert(result_has_edge(&s.r, KL_GE_FORK, p100, p102));
	/* who touched /data/f */
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_file_touchers(s.g, "/data/f", "web", 0, &s.r), 0);
	cr_assert_eq(s.r.nedges, 1);
	cr_assert_eq(s.r.edges[0].from, p101);
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_file_touchers(s.g, "/data/f", "db", 0, &s.r), -ENOENT);
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_file_touchers(s.g, "/nope", NULL, 0, &s.r), -ENOENT);
	finish(&s, "pipeline");
}

Test(graphd, exec_in_session)
{
	struct stream s;

	start(&s);
	host_runc(&s);
	struct rg_task sh = boot(&s, &C1, 10 * S, "/bin/sh");
	(void)sh;
	/* runc exec: a host runc forks a child that joins the container's namespaces and cgroup */
	struct rg_task runc2 = { .pid = 60, .ppid = 1, .start_ns = 20 * S, .cgroup_id = 1, .mnt_ns = HOST_MNT,
				 .pid_ns = HOST_PIDNS, .comm = "runc" };
	struct rg_task child = { .pid = 61, .ppid = 60, .start_ns = 20 * S + 5, .cgroup_id = 1, .mnt_ns = HOST_MNT,
				 .pid_ns = HOST_PIDNS, .comm = "runc:[2:INIT]" };
	proc(&s, &runc2, 20 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/runc");
	proc(&s, &child, 20 * S + 5, KL_PROC_FORK, &runc2, NULL);
	struct rg_task joined = in_ctr(&C1, 61, 60, 20 * S + 5, "sh");
	proc(&s, &joined, 20 * S + 100, KL_PROC_EXEC, &runc2, "/bin/sh");
	struct rg_task ls = in_ctr(&C1, 62, 61, 21 * S, "sh");
	proc(&s, &ls, 21 * S, KL_PROC_FORK, &joined, NULL);
	proc(&s, &ls, 21 * S + 1, KL_PROC_EXEC, &joined, "/bin/ls");
	sc(&s, &ls, 21 * S + 2, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
							.path = "/etc/passwd" });

	json_t *o = session_rec(&s, "session_open", 61);
	cr_assert_not_null(o, "runc exec opens a session rooted at the joining process");
	cr_assert(has_flag(o, "session_exec"));
	cr_assert_str_eq(STR(o, "graph_from_ctr"), "c1c1c1c1c1c1c1c1c1c1");
	const struct kl_gq_session *ss = find_session(&s, 61);
	cr_assert_not_null(ss);
	cr_assert_eq(ss->origin, KL_GS_EXEC_IN);
	cr_assert_eq(ss->procs, 2, "the exec'd shell and its child: %u", ss->procs);
	cr_assert_eq(ss->ctr.cgroup_id, 5000);
	json_t *f = edge(&s, "FORK", 60, 61, NULL);
	cr_assert_not_null(f);
	cr_assert(has_flag(f, "cross_container"), "re-emitted once the child entered the container");
	/* the container's own session is a different one */
	ss = find_session(&s, 100);
	cr_assert_not_null(ss);
	cr_assert_eq(ss->procs, 1);
	finish(&s, "exec_in");
}

/*
 * The runtime's init setting a container up (KL_EN_ENTERED: forked into the
 * container's pid namespace, not exec'd yet) makes edges marked "runtime";
 * once the workload makes the same edge it is the workload's.
 */
Test(graphd, runtime_setup_edges_are_marked)
{
	struct stream s;
	struct rg_task init = in_ctr(&C1, C1.init_pid, RUNC.pid, 10 * S, "runc:[2:INIT]");
	size_t n;

	start(&s);
	host_runc(&s);
	ctr(&s, 10 * S, &C1);
	n = rg_proc(s.rec, sizeof(s.rec), &init, ++s.seq, 10 * S + 1, KL_PROC_FORK, &RUNC, NULL, NULL, 0, "/", 0);
	((struct kl_proc *)s.rec)->ev.flags |= KL_EV_NEW_PIDNS;
	feed(&s, KL_REC_PROC, n);
	sc(&s, &init, 10 * S + 2, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
							  .path = "/proc/self/mountinfo" });
	json_t *e = edge(&s, "FILE_READ", C1.init_pid, 0, "/proc/self/mountinfo");
	cr_assert_not_null(e);
	cr_assert(has_flag(e, "runtime"), "the runtime's setup");
	proc(&s, &init, 10 * S + 3, KL_PROC_EXEC, &RUNC, "/bin/sh");
	sc(&s, &init, 10 * S + 4, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 4,
							  .path = "/etc/passwd" });
	e = edge(&s, "FILE_READ", C1.init_pid, 0, "/etc/passwd");
	cr_assert_not_null(e);
	cr_assert_not(has_flag(e, "runtime"), "the workload's own read");
	/* the workload reading what the runtime read: the edge becomes the workload's */
	sc(&s, &init, 10 * S + 5, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 5,
							  .path = "/proc/self/mountinfo" });
	kl_graphd_flush(s.g);   /* held-back updates out */
	e = edge(&s, "FILE_READ", C1.init_pid, 0, "/proc/self/mountinfo");
	cr_assert_not_null(e);
	cr_assert_not(has_flag(e, "runtime"), "read by the workload too: no longer only the runtime's");
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_gq_result_free(&s.r);
	kl_graphd_free(s.g);
	kl_enricher_free(s.en);
}

Test(graphd, shared_volume)
{
	struct stream s;

	start(&s);
	host_runc(&s);
	struct rg_task a = boot(&s, &C1, 10 * S, "/bin/sh");
	struct rg_task b = boot(&s, &C2, 10 * S + 100, "/bin/sh");
	sc(&s, &a, 12 * S, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_WRONLY | O_CREAT | O_TRUNC, 0644 },
						   .ret = 3, .path = "/shared/msg" });
	sc(&s, &a, 12 * S + 1, "write", (struct rg_sc){ .args = { 3, 0, 5 }, .ret = 5 });
	sc(&s, &b, 13 * S, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
						   .path = "/shared/msg" });
	/* a private file of the same name in a container long after: outside the window, no link */
	sc(&s, &a, 200 * S, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_WRONLY | O_CREAT }, .ret = 4,
						    .path = "/tmp/x" });
	sc(&s, &b, 300 * S, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 4,
						    .path = "/tmp/x" });

	cr_assert_not_null(edge(&s, "FILE_WRITE", 100, 0, "/shared/msg"));
	cr_assert_not_null(edge(&s, "FILE_READ", 200, 0, "/shared/msg"));
	json_t *j = edge(&s, "FILE_SHARED", 100, 200, NULL);
	cr_assert_not_null(j, "writer in one container -> reader in another");
	cr_assert(has_flag(j, "cross_container"));
	cr_assert_str_eq(STR(j, "graph_to_ctr"), "c2c2c2c2c2c2c2c2c2c2");
	cr_assert_eq(json_integer_value(json_object_get(j, "count")), 1);
	/* two file nodes: each container has its own /shared/msg, linked by the FILE_SHARED edge */
	cr_assert_str_neq(STR(edge(&s, "FILE_WRITE", 100, 0, "/shared/msg"), "to_id"),
			  STR(edge(&s, "FILE_READ", 200, 0, "/shared/msg"), "to_id"));
	/* reach: C1's session reaches C2's through the file */
	const struct kl_gq_session *ss = find_session(&s, 100);
	cr_assert(ss && ss->cross);
	uint64_t sid = ss->id;
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_reach(s.g, sid, 0, 0, &s.r), 0);
	cr_assert_eq(s.r.nsessions, 2);
	cr_assert_eq(s.r.sessions[1].root_pid, 200);
	finish(&s, "shared_volume");
}

Test(graphd, net_loopback_cross_container)
{
	struct stream s;
	struct sockaddr_in any = rg_sin("0.0.0.0", 8080), lo = rg_sin("127.0.0.1", 8080),
			   peer = rg_sin("127.0.0.1", 40000), ext = rg_sin("93.184.216.34", 443);

	start(&s);
	host_runc(&s);
	struct rg_task cl = boot(&s, &C1, 10 * S, "/bin/wget");
	struct rg_task sv = boot(&s, &C2, 10 * S + 100, "/bin/httpd");
	sc(&s, &sv, 11 * S, "socket", (struct rg_sc){ .args = { AF_INET, SOCK_STREAM, 0 }, .ret = 3 });
	sc(&s, &sv, 11 * S + 1, "bind", (struct rg_sc){ .args = { 3 }, .sa = &any, .salen = sizeof(any) });
	sc(&s, &sv, 11 * S + 2, "listen", (struct rg_sc){ .args = { 3, 16 } });
	sc(&s, &cl, 12 * S, "socket", (struct rg_sc){ .args = { AF_INET, SOCK_STREAM, 0 }, .ret = 3 });
	sc(&s, &cl, 12 * S + 1, "connect", (struct rg_sc){ .args = { 3 }, .sa = &lo, .salen = sizeof(lo) });
	sc(&s, &sv, 12 * S + 2, "accept4", (struct rg_sc){ .args = { 3 }, .ret = 4, .sa2 = &peer,
							  .sa2len = sizeof(peer) });
	sc(&s, &cl, 12 * S + 3, "socket", (struct rg_sc){ .args = { AF_INET, SOCK_STREAM, 0 }, .ret = 5 });
	sc(&s, &cl, 12 * S + 4, "connect", (struct rg_sc){ .args = { 5 }, .sa = &ext, .salen = sizeof(ext),
							 .ret = -ECONNREFUSED });

	json_t *j = edge(&s, "NET_CONNECT", 100, 200, NULL);
	cr_assert_not_null(j, "connect matched to the listening process");
	cr_assert(has_flag(j, "matched") && has_flag(j, "loopback") && has_flag(j, "cross_container"));
	cr_assert_eq(json_integer_value(json_object_get(j, "arg")), 8080);
	j = edge(&s, "NET_ACCEPT", 200, 100, NULL);
	cr_assert_not_null(j, "accept matched to the connecting process");
	cr_assert(has_flag(j, "cross_container"));
	j = edge(&s, "NET_CONNECT", 100, 0, "93.184.216.34:443");
	cr_assert_not_null(j, "an outside endpoint");
	cr_assert(has_flag(j, "failed") && !has_flag(j, "matched"));
	finish(&s, "net");
}

Test(graphd, unix_signal_ptrace)
{
	struct stream s;
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/run/app.sock" };

	start(&s);
	host_runc(&s);
	struct rg_task sh = boot(&s, &C1, 10 * S, "/bin/sh");
	struct rg_task a = in_ctr(&C1, 101, 100, 11 * S, "srv"), b = in_ctr(&C1, 102, 100, 11 * S + 1, "cli");
	proc(&s, &a, 11 * S, KL_PROC_FORK, &sh, NULL);
	proc(&s, &b, 11 * S + 1, KL_PROC_FORK, &sh, NULL);
	sc(&s, &a, 12 * S, "socket", (struct rg_sc){ .args = { AF_UNIX, SOCK_STREAM, 0 }, .ret = 3 });
	sc(&s, &a, 12 * S + 1, "bind", (struct rg_sc){ .args = { 3 }, .sa = &un, .salen = sizeof(un) });
	sc(&s, &b, 12 * S + 2, "socket", (struct rg_sc){ .args = { AF_UNIX, SOCK_STREAM, 0 }, .ret = 3 });
	sc(&s, &b, 12 * S + 3, "connect", (struct rg_sc){ .args = { 3 }, .sa = &un, .salen = sizeof(un) });
	sc(&s, &b, 13 * S, "kill", (struct rg_sc){ .args = { 101, SIGTERM } });
	sc(&s, &b, 13 * S + 1, "kill", (struct rg_sc){ .args = { 101, 0 } });          /* probe: no edge */
	sc(&s, &b, 13 * S + 2, "kill", (struct rg_sc){ .args = { 102, SIGUSR1 } });    /* itself: no edge */
	sc(&s, &b, 13 * S + 3, "ptrace", (struct rg_sc){ .args = { 16 /* ATTACH */, 101 } });

	json_t *j = edge(&s, "IPC", 102, 101, NULL);
	cr_assert_not_null(j, "unix connect matched to the bound process");
	cr_assert(has_flag(j, "unix") && has_flag(j, "matched"));
	j = edge(&s, "SIGNAL", 102, 101, NULL);
	cr_assert_not_null(j);
	cr_assert_eq(json_integer_value(json_object_get(j, "arg")), SIGTERM);
	cr_assert_eq(json_integer_value(json_object_get(j, "count")), 1);
	cr_assert_null(edge(&s, "SIGNAL", 102, 102, NULL));
	j = edge(&s, "PTRACE", 102, 101, NULL);
	cr_assert_not_null(j);
	cr_assert_eq(json_integer_value(json_object_get(j, "arg")), 16);
	finish(&s, "unix_signal_ptrace");
}

Test(graphd, setsid_close_evict)
{
	struct stream s;
	struct rg_task sshd = { .pid = 10, .ppid = 1, .start_ns = 1 * S, .cgroup_id = 1, .mnt_ns = HOST_MNT,
				.pid_ns = HOST_PIDNS, .comm = "sshd" };
	struct rg_task login = sshd, bash = sshd;

	login.pid = 11; login.ppid = 10; login.start_ns = 2 * S; login.comm = "sshd";
	bash.pid = 12; bash.ppid = 11; bash.start_ns = 3 * S; bash.comm = "bash";
	start(&s);
	proc(&s, &sshd, 1 * S, KL_PROC_SNAPSHOT, NULL, "/usr/sbin/sshd");
	proc(&s, &login, 2 * S, KL_PROC_FORK, &sshd, NULL);
	sc(&s, &login, 2 * S + 1, "setsid", (struct rg_sc){ .ret = 11 });
	proc(&s, &bash, 3 * S, KL_PROC_FORK, &login, NULL);
	proc(&s, &bash, 3 * S + 1, KL_PROC_EXEC, &login, "/bin/bash");
	sc(&s, &bash, 3 * S + 2, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 3,
							 .path = "/etc/shadow" });
	json_t *o = session_rec(&s, "session_open", 11);
	cr_assert_not_null(o);
	cr_assert(has_flag(o, "session_setsid"));
	const struct kl_gq_session *ss = find_session(&s, 11);
	cr_assert(ss && ss->open && ss->procs == 2 && ss->origin == KL_GS_SETSID);
	uint64_t sid = ss->id;
	ss = find_session(&s, 10);
	cr_assert(ss && ss->procs == 1, "sshd's own session lost the leader");

	proc(&s, &bash, 4 * S, KL_PROC_EXIT, &login, NULL);
	proc(&s, &login, 4 * S + 5, KL_PROC_EXIT, &sshd, NULL);
	/* within the grace: still open */
	kl_graphd_tick(s.g, 5 * S);
	cr_assert_null(session_rec(&s, "session_close", 11));
	kl_gq_result_reset(&s.r);
	struct kl_gq_filter closed = { .state = 2 };
	cr_assert_eq(kl_graphd_sessions(s.g, &closed, &s.r), 0);
	cr_assert_eq(s.r.nsessions, 0);
	kl_graphd_tick(s.g, 7 * S);
	json_t *c = session_rec(&s, "session_close", 11);
	cr_assert_not_null(c, "closed after the grace");
	cr_assert_eq(json_integer_value(json_object_get(c, "last_ns")), 4 * S + 5);
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_sessions(s.g, &closed, &s.r), 0);
	cr_assert_eq(s.r.nsessions, 1);
	/* kept for the retention, then evicted with its nodes and edges */
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_session_graph(s.g, sid, 0, &s.r), 0);
	cr_assert_geq(s.r.nedges, 3);
	struct kl_graphd_stats st;
	kl_graphd_stats(s.g, &st);
	uint64_t edges_before = st.edges;
	kl_graphd_tick(s.g, 70 * S);
	cr_assert_not_null(session_rec(&s, "session_evict", 11));
	cr_assert_eq(count_op(&s, "session_close"), 1);
	kl_gq_result_reset(&s.r);
	cr_assert_eq(kl_graphd_session_graph(s.g, sid, 0, &s.r), -ENOENT);
	kl_graphd_stats(s.g, &st);
	cr_assert_eq(st.sessions_evicted, 1);
	cr_assert_lt(st.edges, edges_before);
	cr_assert_eq(st.nodes, 1, "only sshd is left: %llu", (unsigned long long)st.nodes);
	finish(&s, "setsid_close_evict");
}

/* Bounded: many short sessions under small caps; nothing grows past them, evictions counted. */
Test(graphd, bounded_caps)
{
	struct stream s;
	struct kl_graphd_opts o = { .max_nodes = 300, .max_edges = 400, .max_sessions = 20, .grace_ns = 1 * MS,
				    .retention_ns = 3600 * S };
	struct kl_graphd_stats st;
	char path[64];

	start_opts(&s, &o);
	for (uint32_t k = 0; k < 500; k++) {
		uint64_t t0 = (10 + k) * S;
		struct rg_task leader = { .pid = 1000 + k * 10, .ppid = 1, .start_ns = t0, .cgroup_id = 1,
					  .mnt_ns = HOST_MNT, .pid_ns = HOST_PIDNS, .comm = "job" };
		proc(&s, &leader, t0, KL_PROC_SNAPSHOT, NULL, "/bin/job");
		sc(&s, &leader, t0 + 1, "setsid", (struct rg_sc){ .ret = leader.pid });
		for (uint32_t c = 1; c <= 3; c++) {
			struct rg_task ch = leader;
			ch.pid = leader.pid + c;
			ch.ppid = leader.pid;
			ch.start_ns = t0 + c * 10;
			proc(&s, &ch, t0 + c * 10, KL_PROC_FORK, &leader, NULL);
			snprintf(path, sizeof(path), "/var/job/%u/%u", k, c);
			sc(&s, &ch, t0 + c * 10 + 1, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY },
									    .ret = 3, .path = path });
			proc(&s, &ch, t0 + c * 10 + 2, KL_PROC_EXIT, &leader, NULL);
		}
		proc(&s, &leader, t0 + 100, KL_PROC_EXIT, NULL, NULL);
		kl_graphd_stats(s.g, &st);
		cr_assert_leq(st.nodes, 300);
		cr_assert_leq(st.edges, 400);
		cr_assert_leq(st.sessions, 20);
	}
	kl_graphd_stats(s.g, &st);
	cr_assert_gt(st.sessions_evicted, 400, "closed sessions evicted under the session cap: %llu",
		     (unsigned long long)st.sessions_evicted);
	cr_assert_eq(st.edges_dropped, 0);
	/* the newest session is intact */
	const struct kl_gq_session *ss = find_session(&s, 1000 + 499 * 10);
	cr_assert_not_null(ss);
	cr_assert_eq(ss->procs, 4);
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_gq_result_free(&s.r);
	kl_graphd_free(s.g);
	kl_enricher_free(s.en);
}

/* One open session that never ends: exited processes are evicted oldest first, counted. */
Test(graphd, bounded_open_session)
{
	struct stream s;
	struct kl_graphd_opts o = { .max_nodes = 100, .max_edges = 150, .max_sessions = 4 };
	struct kl_graphd_stats st;
	struct rg_task init = { .pid = 1, .start_ns = 1, .cgroup_id = 1, .mnt_ns = HOST_MNT, .pid_ns = HOST_PIDNS,
				.comm = "init" };

	start_opts(&s, &o);
	proc(&s, &init, 1, KL_PROC_SNAPSHOT, NULL, "/sbin/init");
	for (uint32_t k = 0; k < 2000; k++) {
		struct rg_task ch = { .pid = 100 + k, .ppid = 1, .start_ns = (k + 1) * MS, .cgroup_id = 1,
				      .mnt_ns = HOST_MNT, .pid_ns = HOST_PIDNS, .comm = "cron" };
		proc(&s, &ch, (k + 1) * MS, KL_PROC_FORK, &init, NULL);
		proc(&s, &ch, (k + 1) * MS + 1, KL_PROC_EXEC, &init, "/usr/bin/cron-job");
		proc(&s, &ch, (k + 1) * MS + 2, KL_PROC_EXIT, &init, NULL);
	}
	kl_graphd_stats(s.g, &st);
	cr_assert_leq(st.nodes, 100);
	cr_assert_leq(st.edges, 150);
	cr_assert_gt(st.procs_evicted, 1800);
	const struct kl_gq_session *ss = find_session(&s, 1);
	cr_assert(ss && ss->truncated && ss->open);
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_gq_result_free(&s.r);
	kl_graphd_free(s.g);
	kl_enricher_free(s.en);
}

Test(graphd, invalid_records)
{
	struct stream s;
	uint8_t junk[300];
	struct kl_graphd_stats st;

	start(&s);
	memset(junk, 0xa5, sizeof(junk));
	cr_assert_eq(kl_graphd_process(s.g, KL_REC_ENRICHED, junk, sizeof(junk)), -EBADMSG);
	cr_assert_eq(kl_graphd_process(s.g, KL_REC_ENRICHED, junk, 10), -EBADMSG);
	cr_assert_eq(kl_graphd_process(s.g, KL_REC_SYSCALL, junk, sizeof(junk)), 0, "not ours: ignored");
	/* every prefix of a real enriched record: rejected or folded, never a crash */
	struct rg_task t = RUNC;
	int32_t fds[2] = { 3, 4 };
	size_t len = rg_syscall(s.rec, sizeof(s.rec), &t, 1, 1, &(struct rg_sc){ .nr = nr("pipe2"), .fds = fds });
	long n = kl_enricher_process(s.en, KL_REC_SYSCALL, s.rec, len, s.enr, sizeof(s.enr));
	cr_assert_gt(n, 0);
	for (long k = 0; k < n; k++)
		cr_assert_leq(kl_graphd_process(s.g, KL_REC_ENRICHED, s.enr, (size_t)k), 0);
	kl_graphd_stats(s.g, &st);
	cr_assert_geq(st.invalid, 2);
	cr_assert_eq(kl_graphd_new(&(struct kl_graphd_opts){ .max_nodes = 1 }, on_rec, &s, &(struct kl_graphd *){ 0 }),
		     -EINVAL);
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_gq_result_free(&s.r);
	kl_graphd_free(s.g);
	kl_enricher_free(s.en);
}
