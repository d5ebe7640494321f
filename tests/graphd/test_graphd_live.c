/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live end to end: kl-collector -> kl-enricher -> kl-graphd on a private
 * rings directory, with real runc containers (busybox, CRI annotations):
 *  - a shell running `cat f | wc -l`: FORK, EXEC, pipe IPC, FILE_READ;
 *  - `runc exec` into a running container: a new EXEC_IN session there;
 *  - two containers sharing a bind-mounted host directory, one writes a
 *    file the other reads: a CROSS_CONTAINER FILE_SHARED edge;
 *  - two containers on the host network, one connects to the other's
 *    listener: NET_CONNECT matched process to process, cross-container;
 *  - sessions close after the grace and are evicted after the retention.
 * Queries go to kl-graphd's socket; klctl draws the session.
 * With KLOUDLENS_REQUIRE_LIVE=1 a missing runc or BPF fails the test.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "../common/livetest.h"
#include "client.h"
#include "kloudlens.pb-c.h"
#include "rpcsrv.h"

#define NPROCS 3
static char dir[128], tag[32];
static pid_t procs[NPROCS] = { -1, -1, -1 };
static const char *const ctrs[] = { "warm", "pipe", "bg", "wr", "rd", "srv", "cli" };

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-graph-live.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);   /* the stages run unprivileged and map rings here */
	snprintf(tag, sizeof(tag), "klg%d", (int)getpid());
}

static void teardown(void)
{
	for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++)
		lt_sh("runc delete -f %s-%s >/dev/null 2>&1", tag, ctrs[i]);
	for (int i = NPROCS - 1; i >= 0; i--)
		lt_stop(&procs[i], SIGTERM);
	lt_sh("rm -rf '%s'", dir);
}

TestSuite(graphd_live, .init = setup, .fini = teardown, .timeout = 200);

/*
 * A busybox bundle NAME running @args (a JSON array), with CRI
 * annotations (pod NAME-pod in namespace graph), optionally the host's
 * network namespace and the host directory DIR/shared at /shared.
 */
static void bundle(const char *name, const char *args, bool hostnet, bool shared)
{
	cr_assert_eq(lt_sh("set -e; B=%s/b-%s; mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys "
			"$B/rootfs/tmp $B/rootfs/etc $B/rootfs/shared; cp /bin/busybox $B/rootfs/bin/; "
			"for a in sh cat wc echo sleep nc ls; do ln -sf busybox $B/rootfs/bin/$a; done; "
			"echo 'one\ntwo\nthree' > $B/rootfs/etc/f; cd $B; runc spec; "
			"jq '.process.terminal=false | .root.readonly=false | .process.args=%s "
			"%s %s"
			"| .annotations={\"io.kubernetes.cri.container-name\":\"%s\","
			"\"io.kubernetes.cri.sandbox-name\":\"%s-pod\",\"io.kubernetes.cri.sandbox-namespace\":\"graph\","
			"\"io.kubernetes.cri.image-name\":\"local/bb:1\"}' config.json > c.json; mv c.json config.json",
			dir, name, args,
			hostnet ? "| .linux.namespaces |= map(select(.type != \"network\"))" : "",
			shared ? "| .mounts += [{\"destination\":\"/shared\",\"type\":\"bind\",\"source\":\"SHARED\","
				 "\"options\":[\"rbind\",\"rw\"]}]" : "",
			name, name), 0);
	if (shared)
		cr_assert_eq(lt_sh("sed -i 's|SHARED|%s/shared|' %s/b-%s/config.json", dir, dir, name), 0);
}

static int run_fg(const char *name)
{
	return lt_sh("cd %s/b-%s && runc run %s-%s </dev/null >%s/%s.out 2>%s/%s.err", dir, name, tag, name, dir, name,
		  dir, name);
}

static void run_bg(const char *name)
{
	cr_assert_eq(lt_sh("cd %s/b-%s && runc run -d %s-%s </dev/null >%s/%s.out 2>%s/%s.err", dir, name, tag, name, dir,
			name, dir, name), 0, "runc run -d %s", name);
}

/* ---- the graph ring, as JSON ------------------------------------------------ */

static struct shm_consumer *gc;
static json_t *recs;

static void drain(int ms)
{
	struct shm_rec r[256];
	struct kl_buf b = { 0 };
	uint64_t until = kl_now_mono_ns() + (uint64_t)ms * 1000000ull;

	while (kl_now_mono_ns() < until) {
		int n = shm_consumer_poll(gc, r, 256, 100);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			if (r[i].type != KL_REC_GRAPH)
				continue;
			kl_buf_reset(&b);
			kl_rec_to_json(&b, r[i].type, r[i].data, r[i].len, UINT64_MAX);
			json_t *j = json_loads(b.p, 0, NULL);
			cr_assert_not_null(j, "%s", b.p);
			json_array_append_new(recs, j);
		}
		shm_consumer_release(gc);
	}
	kl_buf_free(&b);
}

static bool flag(json_t *o, const char *w)
{
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(o, "flags"), i, v)
		if (!strcmp(json_string_value(v), w))
			return true;
	return false;
}

/* An edge record of @kind whose ends are in containers named by pod (NULL: any) and match @to_label. */
static json_t *find_edge(const char *kind, const char *from_pod, const char *to_pod, const char *to_label_sub,
			 const char *from_comm)
{
	json_t *j;
	size_t i;
	char fp[64], tp[64];

	snprintf(fp, sizeof(fp), "graph/%s-pod", from_pod ? from_pod : "");
	snprintf(tp, sizeof(tp), "%s", to_pod ? to_pod : "");
	json_array_foreach(recs, i, j) {
		if (strcmp(lt_jstr(j, "op"), "edge") || strcmp(lt_jstr(j, "kind"), kind))
			continue;
		if (from_pod && strcmp(lt_jstr(j, "graph_pod"), fp))
			continue;
		if (to_label_sub && !strstr(lt_jstr(j, "graph_to"), to_label_sub))
			continue;
		if (from_comm && strcmp(lt_jstr(j, "comm"), from_comm))
			continue;
		if (to_pod && !json_integer_value(json_object_get(j, "to_ctr_cgroup_id")))
			continue;
		return j;
	}
	return NULL;
}

static void dump(const char *why)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/graph.jsonl", dir);
	FILE *f = fopen(p, "w");
	json_t *j;
	size_t i;
	json_array_foreach(recs, i, j) {
		char *s = json_dumps(j, JSON_COMPACT);
		fprintf(f, "%s\n", s);
		free(s);
	}
	fclose(f);
	lt_sh("cp %s /tmp/kl-graph-live-last.jsonl", p);
	cr_log_error("%s (graph records in /tmp/kl-graph-live-last.jsonl)", why);
}

#define EXPECT(cond, ...) do { if (!(cond)) { dump(#cond); cr_assert_fail(__VA_ARGS__); } } while (0)

Test(graphd_live, containers_sessions_and_cross_container_edges)
{
	char rings[200], ready[200], url[300];
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	bool required = v && *v && strcmp(v, "0") != 0;

	if (geteuid() != 0 || lt_sh("command -v runc >/dev/null && command -v jq >/dev/null") != 0) {
		if (required)
			cr_assert_fail("live test needs root, runc and jq");
		cr_skip_test("needs root, runc and jq");
	}
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	cr_assert_eq(lt_sh("mkdir -p %s/shared && chmod 0777 %s/shared", dir, dir), 0);

	char *cargv[] = { (char *)lt_bpath("collector/kl-collector"), "--dir", rings, "--capacity",
			  "33554432", "--ready", ready, NULL };
	procs[0] = lt_spawn(cargv);
	for (int i = 0; i < 300 && access(ready, F_OK) != 0; i++) {
		if (waitpid(procs[0], NULL, WNOHANG) != 0) {
			procs[0] = -1;
			if (required)
				cr_assert_fail("kl-collector exited before attaching");
			cr_skip_test("kl-collector cannot attach here (BPF)");
		}
		usleep(50000);
	}
	cr_assert_eq(access(ready, F_OK), 0, "kl-collector did not attach");
	char *eargv[] = { (char *)lt_bpath("enricher/kl-enricher"), "--dir", rings, "--capacity", "33554432",
			  "--wait", "10", NULL };
	procs[1] = lt_spawn(eargv);
	char *gargv[] = { (char *)lt_bpath("graphd/kl-graphd"), "--dir", rings, "--capacity", "33554432",
			  "--wait", "10", "--grace-ms", "1000", "--retention-s", "6", "--update-ms", "200", NULL };
	procs[2] = lt_spawn(gargv);
	struct shm_ring *gr = NULL;
	for (int i = 0; i < 200 && shm_ring_open(rings, "graph", &gr); i++)
		usleep(50000);
	cr_assert_not_null(gr, "kl-graphd did not create the graph ring");
	cr_assert_eq(shm_consumer_attach(gr, "live-test", SHM_REQUIRED, &gc), 0);
	for (int i = 0; i < 100; i++) {
		struct shm_ring *en;
		struct shm_ring_info info;
		if (shm_ring_open(rings, "enriched", &en) == 0) {
			shm_ring_info(en, &info);
			shm_ring_close(en);
			if (info.nconsumers >= 1)
				break;
		}
		usleep(50000);
	}
	recs = json_array();

	/* warm-up: a first container's session must come out before the scenarios run, so a
	 * pipeline still starting (sanitized builds are slow) cannot lose their first events */
	bundle("warm", "[\"/bin/sh\",\"-c\",\"true\"]", false, false);
	bool warm = false;
	for (int k = 0; k < 5 && !warm; k++) {
		cr_assert_eq(run_fg("warm"), 0, "warm-up container");
		lt_sh("runc delete -f %s-warm >/dev/null 2>&1", tag);
		drain(1000);
		json_t *w;
		size_t wi;
		json_array_foreach(recs, wi, w)
			if (!strcmp(lt_jstr(w, "op"), "session_open") && !strcmp(lt_jstr(w, "graph_pod"), "graph/warm-pod"))
				warm = true;
	}
	cr_assert(warm, "no graph record for the warm-up container");

	/* Each workload sleeps a second first: the collector reports a container when the
	 * runtime's state appears, and what runs before that is attributed to the host. */
	/* 1. cat f | wc -l */
	bundle("pipe", "[\"/bin/sh\",\"-c\",\"sleep 1; cat /etc/f | wc -l\"]", false, false);
	cr_assert_eq(run_fg("pipe"), 0, "pipe container (see %s/pipe.err)", dir);
	/* 2. runc exec into a running container */
	bundle("bg", "[\"/bin/sleep\",\"30\"]", false, false);
	run_bg("bg");
	cr_assert_eq(lt_sh("runc exec %s-bg /bin/sh -c 'cat /etc/f | wc -l' >%s/exec.out 2>&1", tag, dir), 0,
		     "runc exec");
	/* 3. shared volume: one container writes, the other reads */
	bundle("wr", "[\"/bin/sh\",\"-c\",\"sleep 1; echo data > /shared/msg\"]", false, true);
	bundle("rd", "[\"/bin/sh\",\"-c\",\"sleep 1; cat /shared/msg\"]", false, true);
	cr_assert_eq(run_fg("wr"), 0, "writer container");
	cr_assert_eq(run_fg("rd"), 0, "reader container");
	/* 4. host network: a listener and a client in two containers */
	bundle("srv", "[\"/bin/nc\",\"-l\",\"-p\",\"47311\"]", true, false);
	bundle("cli", "[\"/bin/sh\",\"-c\",\"sleep 1; echo hi | nc -w 2 127.0.0.1 47311\"]", true, false);
	run_bg("srv");
	usleep(500000);
	int rc = run_fg("cli");
	cr_assert(rc == 0 || rc == 1, "client container: %d", rc);
	drain(2500);

	/* pipeline */
	json_t *e = find_edge("FILE_READ", "pipe", NULL, "/etc/f", "cat");
	EXPECT(e, "cat read /etc/f in the pipe container");
	e = find_edge("IPC", "pipe", "pipe", NULL, NULL);
	EXPECT(e && flag(e, "pipe") && flag(e, "matched"), "pipe IPC cat -> wc matched");
	EXPECT(find_edge("FORK", "pipe", NULL, NULL, NULL), "FORK inside the pipe container");
	EXPECT(find_edge("EXEC", "pipe", NULL, NULL, NULL), "EXEC inside the pipe container");
	/* exec-in session */
	json_t *j;
	size_t i;
	bool exec_sess = false, init_sess = false;
	json_array_foreach(recs, i, j) {
		if (strcmp(lt_jstr(j, "op"), "session_open") || strcmp(lt_jstr(j, "graph_pod"), "graph/bg-pod"))
			continue;
		if (flag(j, "session_exec"))
			exec_sess = true;
		if (flag(j, "session_container"))
			init_sess = true;
	}
	EXPECT(exec_sess, "runc exec opened an exec-in session in the bg container");
	(void)init_sess;
	EXPECT(find_edge("FILE_READ", "bg", NULL, "/etc/f", "cat"), "the exec'd cat read /etc/f");
	/* shared volume */
	e = find_edge("FILE_SHARED", "wr", "rd", "/shared/msg", NULL);
	EXPECT(e && flag(e, "cross_container"), "FILE_SHARED wr -> rd, cross-container");
	/* network */
	e = find_edge("NET_CONNECT", "cli", "srv", NULL, "nc");
	EXPECT(e && flag(e, "matched") && flag(e, "cross_container"), "NET_CONNECT cli -> srv matched");

	/* queries on kl-graphd's socket: the client's session reaches the server's */
	struct kl_client cl;
	char err[256];
	kl_rpc_stage_url(url, sizeof(url), rings, "kl-graphd");
	cr_assert_eq(kl_client_open(&cl, url, NULL, 3000), 0);
	Kloudlens__V1__ListSessionsRequest lq = KLOUDLENS__V1__LIST_SESSIONS_REQUEST__INIT;
	char *pods[] = { "cli-pod" };
	lq.pods = pods;
	lq.n_pods = 1;
	Kloudlens__V1__ListSessionsResponse *ls = NULL;
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.GraphService/ListSessions", &lq.base,
				    &kloudlens__v1__list_sessions_response__descriptor, (ProtobufCMessage **)&ls, err,
				    sizeof(err)), 0, "%s", err);
	EXPECT(ls->n_sessions >= 1, "a session for the client container");
	/* the pod may hold more than one session (runc's helpers can open one): any of them */
	char sid[32] = "";
	bool reached = false;
	for (size_t s = 0; s < ls->n_sessions && !reached; s++) {
		Kloudlens__V1__ReachRequest rq = KLOUDLENS__V1__REACH_REQUEST__INIT;
		Kloudlens__V1__GraphSnapshot *snap = NULL;
		rq.session_id = ls->sessions[s]->session_id;
		cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.GraphService/Reach", &rq.base,
					    &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&snap, err,
					    sizeof(err)), 0, "%s", err);
		for (size_t k = 0; k < snap->n_sessions; k++)
			if (snap->sessions[k]->container && !strcmp(snap->sessions[k]->container->pod_name, "srv-pod")) {
				reached = true;
				snprintf(sid, sizeof(sid), "%s", ls->sessions[s]->session_id);
			}
		kloudlens__v1__graph_snapshot__free_unpacked(snap, NULL);
	}
	kloudlens__v1__list_sessions_response__free_unpacked(ls, NULL);
	EXPECT(reached, "the client's session reached the server's container");
	kl_client_close(&cl);
	/* what an operator sees */
	lt_sh("%s --admin %s graph %s --tree > %s/tree.txt 2>&1; cat %s/tree.txt >&2", lt_bpath("klctl/klctl"), url,
	   sid, dir, dir);
	cr_assert_eq(lt_sh("grep -q NET_CONNECT %s/tree.txt && grep -q 'cross-container: srv' %s/tree.txt", dir, dir), 0,
		     "klctl graph shows the reached container");

	/* session close (grace 1 s) and eviction (retention 6 s) */
	lt_sh("runc delete -f %s-srv >/dev/null 2>&1; runc delete -f %s-bg >/dev/null 2>&1", tag, tag);
	bool closed = false, evicted = false;
	for (int k = 0; k < 40 && !(closed && evicted); k++) {
		drain(500);
		json_array_foreach(recs, i, j) {
			if (strcmp(lt_jstr(j, "graph_pod"), "graph/pipe-pod"))
				continue;
			if (!strcmp(lt_jstr(j, "op"), "session_close"))
				closed = true;
			if (!strcmp(lt_jstr(j, "op"), "session_evict"))
				evicted = true;
		}
	}
	EXPECT(closed, "the pipe container's session closed after its last exit");
	EXPECT(evicted, "and was evicted after the retention");
	shm_consumer_detach(gc);
	shm_ring_close(gr);
	json_decref(recs);
}
