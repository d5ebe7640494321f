/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real kl-graphd process: started as root with no arguments but
 * --dir, it drops to an unprivileged user, reads `enriched`, publishes
 * `graph`, survives a garbage record, and answers GraphService and
 * QueryGraph on ipc://DIR/kl-graphd.sock — including malformed requests
 * (INVALID_ARGUMENT, never a crash). klctl renders the session as a tree,
 * JSON and Graphviz dot, and `dot -Tpng` turns that into a PNG.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "../common/rawgen.h"
#include "../common/stagetest.h"
#include "client.h"
#include "enrich.h"
#include "graphd.h"
#include "kloudlens.pb-c.h"
#include "rpcsrv.h"

#define S 1000000000ull

static char dir[128];

static void setup(void)
{
	st_dir_setup(dir, sizeof(dir), "kl-graphd-test");
}

static void teardown(void)
{
	st_dir_teardown(dir);
}

TestSuite(graphd_proc, .init = setup, .fini = teardown, .timeout = 60);

static struct kl_enricher *en;
static uint64_t seq;

static void put(struct shm_ring *r, uint16_t type, const void *raw, size_t len)
{
	static uint8_t out[65536];
	long n = kl_enricher_process(en, type, raw, len, out, sizeof(out));
	cr_assert_gt(n, 0);
	cr_assert_eq(shm_write(r, KL_REC_ENRICHED, out, (uint32_t)n), 0);
}

static void sc(struct shm_ring *r, const struct rg_task *t, uint64_t ts, const char *name, struct rg_sc c)
{
	uint8_t rec[4096];
	c.nr = (uint32_t)kl_syscall_nr(name);
	put(r, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), t, ++seq, ts, &c));
}

static void proc(struct shm_ring *r, const struct rg_task *t, uint64_t ts, uint32_t kind, const struct rg_task *parent,
		 const char *exe)
{
	uint8_t rec[4096];
	put(r, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), t, ++seq, ts, kind, parent, exe, exe,
					 exe ? strlen(exe) + 1 : 0, "/", 0));
}

static int rpc(struct kl_client *c, const char *method, const ProtobufCMessage *req,
	       const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
	char err[256];
	return kl_client_call(c, method, req, d, resp, err, sizeof(err));
}

/* Run a shell command, return its exit status; stdout into @out (may be NULL). */
static int sh(const char *cmd, char *out, size_t n)
{
	FILE *p = popen(cmd, "r");
	size_t got = 0;

	cr_assert_not_null(p);
	if (out) {
		got = fread(out, 1, n - 1, p);
		out[got] = 0;
	} else {
		char b[4096];
		while (fread(b, 1, sizeof(b), p) > 0)
			;
	}
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(graphd_proc, end_to_end_queries_klctl)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *enr, *out;
	struct shm_consumer *c;
	struct kl_client cl;
	char bin[512], url[300], cmd[2048], buf[1 << 16];
	uint8_t rec[4096];
	int32_t fds[2] = { 3, 4 };

	cr_assert_eq(kl_enricher_new(NULL, &en), 0);
	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(dir, "enriched", &o, &enr), 0);
	st_bin(bin, sizeof(bin), "graphd/kl-graphd");
	char *argv[] = { bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", "--grace-ms", "500", NULL };
	pid_t pid = st_spawn(argv);
	out = st_wait_ring(dir, "graph");
	cr_assert_eq(shm_consumer_attach(out, "test", SHM_REQUIRED, &c), 0);
	st_wait_consumers(enr, 1);
	st_assert_unprivileged(pid, "kl-graphd");

	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 4242, .init_pid = 77,
			      .mnt_ns = 4026533333u, .id = "abc123def456", .name = "api", .image = "api:2",
			      .pod = "api-0", .pod_ns = "prod" };
	struct rg_task runc = { .pid = 7, .start_ns = 1, .cgroup_id = 1, .comm = "runc" };
	struct rg_task init = { .pid = 77, .ppid = 7, .start_ns = 2 * S, .cgroup_id = 4242, .mnt_ns = 4026533333u,
				.comm = "sh" };
	struct rg_task cat = init, wc = init;
	cat.pid = 78; cat.ppid = 77; cat.start_ns = 3 * S; cat.comm = "cat";
	wc.pid = 79; wc.ppid = 77; wc.start_ns = 3 * S + 1; wc.comm = "wc";
	put(enr, KL_REC_CONTAINER, rec, rg_container(rec, sizeof(rec), ++seq, 1 * S, &ctr));
	proc(enr, &runc, 1 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/runc");
	proc(enr, &init, 2 * S, KL_PROC_FORK, &runc, NULL);
	proc(enr, &init, 2 * S + 1, KL_PROC_EXEC, &runc, "/bin/sh");
	sc(enr, &init, 3 * S - 1, "pipe2", (struct rg_sc){ .fds = fds });
	proc(enr, &cat, 3 * S, KL_PROC_FORK, &init, NULL);
	proc(enr, &wc, 3 * S + 1, KL_PROC_FORK, &init, NULL);
	sc(enr, &cat, 3 * S + 2, "dup2", (struct rg_sc){ .args = { 4, 1 }, .ret = 1 });
	sc(enr, &wc, 3 * S + 3, "dup2", (struct rg_sc){ .args = { 3, 0 }, .ret = 0 });
	memset(rec, 0xee, 200);   /* garbage must not stop the stream */
	cr_assert_eq(shm_write(enr, KL_REC_ENRICHED, rec, 200), 0);
	sc(enr, &cat, 3 * S + 4, "openat", (struct rg_sc){ .args = { (uint64_t)-100, 0, O_RDONLY }, .ret = 5,
							.path = "/data/f" });
	sc(enr, &cat, 3 * S + 5, "read", (struct rg_sc){ .args = { 5 }, .ret = 10 });
	sc(enr, &cat, 3 * S + 6, "write", (struct rg_sc){ .args = { 1 }, .ret = 10 });
	sc(enr, &wc, 3 * S + 7, "read", (struct rg_sc){ .args = { 0 }, .ret = 10 });

	/* the graph ring carries the edges live */
	struct shm_rec recs[64];
	bool ipc = false;
	for (int tries = 0; tries < 50 && !ipc; tries++) {
		int n = shm_consumer_poll(c, recs, 64, 200);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			struct kl_graph g;
			cr_assert_eq(recs[i].type, KL_REC_GRAPH);
			cr_assert_eq(kl_rec_validate(recs[i].type, recs[i].data, recs[i].len), KL_REC_OK);
			memcpy(&g, recs[i].data, sizeof(g));
			if (g.op == KL_GOP_EDGE && g.kind == KL_GE_IPC && g.ev.pid == 78 && g.to_pid == 79)
				ipc = true;
		}
		shm_consumer_release(c);
	}
	cr_assert(ipc, "IPC cat -> wc on the graph ring");

	kl_rpc_stage_url(url, sizeof(url), dir, "kl-graphd");
	cr_assert_eq(kl_client_open(&cl, url, NULL, 3000), 0);
	/* ListSessions */
	Kloudlens__V1__ListSessionsRequest lq = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__INIT;
	char *pods[] = { "api-0" };
	lq.pods = pods;
	lq.n_pods = 1;
	Kloudlens__V1__ListSessionsResponse *ls = NULL;
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/ListSessions", &lq.base,
			 &kloudlens__v1__list_sessions_response__descriptor, (ProtobufCMessage **)&ls), 0);
	cr_assert_eq(ls->n_sessions, 1);
	char sid[32];
	snprintf(sid, sizeof(sid), "%s", ls->sessions[0]->session_id);
	cr_assert_eq(ls->sessions[0]->origin, KLOUDLENS__V1__GRAPH_SESSION__ORIGIN__CONTAINER_INIT);
	cr_assert_str_eq(ls->sessions[0]->container->name, "api");
	cr_assert_eq(ls->sessions[0]->processes, 3);
	kloudlens__v1__list_sessions_response__free_unpacked(ls, NULL);
	/* QueryGraph (what the exporter forwards) */
	Kloudlens__V1__GraphQuery gq = KLOUDLENS__V1__GRAPH_QUERY__INIT;
	gq.session_id = sid;
	Kloudlens__V1__GraphSnapshot *snap = NULL;
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.EventService/QueryGraph", &gq.base,
			 &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap), 0);
	cr_assert_str_eq(snap->session_id, sid);
	bool fr = false;
	for (size_t i = 0; i < snap->n_edges; i++)
		if (snap->edges[i]->kind == KLOUDLENS__V1__GRAPH_EDGE__KIND__FILE_READ)
			fr = true;
	cr_assert(fr);
	kloudlens__v1__graph_snapshot__free_unpacked(snap, NULL);
	/* Lineage, FileTouchers, Reach */
	Kloudlens__V1__LineageRequest lr = KLOUDLENS__V1__LINEAGE_REQUEST__INIT;
	lr.pid = 79;
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/Lineage", &lr.base, &kloudlens__v1__graph_snapshot__descriptor,
			 (ProtobufCMessage **)&snap), 0);
	cr_assert_eq(snap->n_edges, 2, "runc -> sh -> wc");
	kloudlens__v1__graph_snapshot__free_unpacked(snap, NULL);
	Kloudlens__V1__FileTouchersRequest fq = KLOUDLENS__V1__FILE_TOUCHERS_REQUEST__INIT;
	fq.path = "/data/f";
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/FileTouchers", &fq.base,
			 &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap), 0);
	cr_assert_eq(snap->n_edges, 1);
	kloudlens__v1__graph_snapshot__free_unpacked(snap, NULL);
	Kloudlens__V1__ReachRequest rq = KLOUDLENS__V1__REACH_REQUEST__INIT;
	rq.session_id = sid;
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/Reach", &rq.base, &kloudlens__v1__graph_snapshot__descriptor,
			 (ProtobufCMessage **)&snap), 0);
	cr_assert_eq(snap->n_sessions, 1);
	kloudlens__v1__graph_snapshot__free_unpacked(snap, NULL);

	/* broken requests: status codes, and the server keeps serving */
	const char *bad_ids[] = { "", "xyz", "12345678901234567", "-1", "0x10" };
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		gq.session_id = (char *)bad_ids[i];
		cr_assert_eq(rpc(&cl, "/kloudlens.v1.EventService/QueryGraph", &gq.base,
				 &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap), 3,
			     "session id '%s'", bad_ids[i]);
	}
	gq.session_id = "00000000000000ff";
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.EventService/QueryGraph", &gq.base,
			 &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap), 5);
	fq.path = "relative";
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/FileTouchers", &fq.base,
			 &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap), 3);
	lr.pid = 0;
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/Lineage", &lr.base, &kloudlens__v1__graph_snapshot__descriptor,
			 (ProtobufCMessage **)&snap), 3);
	cr_assert_eq(rpc(&cl, "/kloudlens.v1.GraphService/Nope", &lr.base, &kloudlens__v1__graph_snapshot__descriptor,
			 (ProtobufCMessage **)&snap), 12);
	/* raw garbage: every prefix of a valid request and random bytes */
	static const char good[] = "/kloudlens.v1.GraphService/Lineage\0\0\0\0\0\x02\x08\x4f";
	for (size_t n = 0; n < sizeof(good); n++) {
		void *reply = NULL;
		size_t rl = 0;
		cr_assert_eq(kl_client_call_raw(&cl, good, n, &reply, &rl), 0, "prefix %zu: no reply", n);
		cr_assert_gt(rl, 0);
		free(reply);
	}
	uint8_t junk[300];
	for (int k = 0; k < 20; k++) {
		void *reply = NULL;
		size_t rl = 0;
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		memcpy(junk, "/kloudlens.v1.GraphService/Reach", 33);
		cr_assert_eq(kl_client_call_raw(&cl, junk, sizeof(junk), &reply, &rl), 0);
		free(reply);
	}
	kl_client_close(&cl);

	/* klctl against kl-graphd's socket directly: tree, JSON, dot -> PNG */
	char klctl[512];
	st_bin(klctl, sizeof(klctl), "klctl/klctl");
	snprintf(cmd, sizeof(cmd), "%s --admin %s sessions --json", klctl, url);
	cr_assert_eq(sh(cmd, buf, sizeof(buf)), 0);
	cr_assert_not_null(strstr(buf, sid), "sessions --json: %s", buf);
	snprintf(cmd, sizeof(cmd), "%s --admin %s graph %.6s --tree", klctl, url, sid);
	cr_assert_eq(sh(cmd, buf, sizeof(buf)), 0, "klctl graph (prefix) failed");
	fprintf(stderr, "klctl graph --tree:\n%s", buf);
	cr_assert_not_null(strstr(buf, "cat[78]"), "tree: %s", buf);
	cr_assert_not_null(strstr(buf, "FILE_READ"), "tree: %s", buf);
	cr_assert_not_null(strstr(buf, "IPC"), "tree: %s", buf);
	snprintf(cmd, sizeof(cmd), "%s --admin %s graph %s --json", klctl, url, sid);
	cr_assert_eq(sh(cmd, buf, sizeof(buf)), 0);
	cr_assert_not_null(strstr(buf, "\"kind\":\"IPC\""), "json: %s", buf);
	snprintf(cmd, sizeof(cmd), "%s --admin %s graph %s --dot > %s/g.dot && dot -Tpng %s/g.dot -o %s/g.png",
		 klctl, url, sid, dir, dir, dir);
	if (system("command -v dot >/dev/null") == 0) {
		cr_assert_eq(sh(cmd, NULL, 0), 0, "dot -Tpng failed");
		char png[300];
		snprintf(png, sizeof(png), "%s/g.png", dir);
		FILE *f = fopen(png, "rb");
		cr_assert_not_null(f);
		uint8_t magic[8];
		cr_assert_eq(fread(magic, 1, 8, f), 8);
		fclose(f);
		cr_assert(!memcmp(magic, "\x89PNG", 4), "not a PNG");
	} else {
		cr_log_warn("graphviz not installed: dot rendering not checked");
	}
	snprintf(cmd, sizeof(cmd), "%s --admin %s graph nosuch --tree 2>/dev/null", klctl, url);
	cr_assert_eq(sh(cmd, buf, sizeof(buf)), 4, "unknown session");

	int st = st_stop(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-graphd exit status %d", st);
	shm_consumer_detach(c);
	shm_ring_close(out);
	shm_ring_close(enr);
	kl_enricher_free(en);
}

/* Flags are parsed strictly: a bad number is an error, not a zero. */
Test(graphd_proc, bad_flags)
{
	char bin[512], cmd[1024];

	st_bin(bin, sizeof(bin), "graphd/kl-graphd");
	snprintf(cmd, sizeof(cmd), "%s --dir %s --max-edges lots --wait 0 2>/dev/null", bin, dir);
	cr_assert_eq(sh(cmd, NULL, 0), 2);
	snprintf(cmd, sizeof(cmd), "%s --dir %s --grace-ms -5 --wait 0 2>/dev/null", bin, dir);
	cr_assert_eq(sh(cmd, NULL, 0), 2);
	snprintf(cmd, sizeof(cmd), "%s --dir %s --bogus 2>/dev/null", bin, dir);
	cr_assert_eq(sh(cmd, NULL, 0), 2);
	snprintf(cmd, sizeof(cmd), "%s --help", bin);
	cr_assert_eq(sh(cmd, NULL, 0), 0);
}
