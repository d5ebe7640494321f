/* SPDX-License-Identifier: Apache-2.0 */
/* Rings -> kl-exporter -> subscribers: live, filtered, replay, restart, stalls, disconnects. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "client.h"
#include "exporter.h"
#include "helpers.h"

static struct test_env te;
static struct shm_ring *raw;

static void setup(void)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;

	test_env_init(&te);
	o.capacity = 32 << 20;
	o.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(te.rings, "raw", &o, &raw), 0);
}

static void teardown(void)
{
	shm_ring_close(raw);
	test_env_fini(&te);
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 180);

static struct kl_exporter *start_exporter_opts(const char *name, uint64_t seg, uint64_t max)
{
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;
	struct kl_exporter *ex;

	o.consumer_name = name;
	o.wal.segment_bytes = seg;
	o.wal.max_bytes = max;
	o.rings_dir = te.rings;
	o.wal_dir = te.wal;
	o.sub_url = te.sub;
	o.admin_url = te.admin;
	o.http_url = "";
	o.wal.fsync = KL_WAL_FSYNC_NONE;
	cr_assert_eq(test_exporter_create(&te, &o, &ex), 0);
	cr_assert_eq(kl_exporter_start(ex), 0);
	return ex;
}

static struct kl_exporter *start_exporter(void)
{
	return start_exporter_opts(NULL, 0, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

struct seen {
	uint64_t n, next, bad_order;
	uint64_t syscalls, containers;
	uint64_t loss_where, loss_from, loss_to, losses;
	bool check_path;
};

static int on_env(const Kloudlens__V1__EventEnvelope *e, void *ctx)
{
	struct seen *s = ctx;

	if (e->seq != s->next)
		s->bad_order++;
	s->next = e->seq + 1;
	s->n++;
	if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL) {
		s->syscalls++;
		if (s->check_path) {
			cr_assert_str_eq(e->syscall->name, "openat");
			cr_assert_str_eq(e->syscall->path, "/etc/hosts");
		}
	}
	if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_CONTAINER)
		s->containers++;
	if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS) {
		s->losses++;
		s->loss_where = e->loss->where;
		s->loss_from = e->loss->from_seq;
		s->loss_to = e->loss->to_seq;
	}
	return 0;
}

static void follow_until(struct kl_follow *f, struct seen *s, uint64_t want, int ms)
{
	uint64_t end = now_ms() + ms;

	while (s->n < want && now_ms() < end)
		cr_assert_geq(kl_follow_step(f, on_env, s, 100), 0);
	cr_assert_geq(s->n, want, "got %" PRIu64 " of %" PRIu64, s->n, want);
}

static void wait_published(struct kl_exporter *ex, uint64_t n)
{
	struct kl_exporter_counters c;
	uint64_t end = now_ms() + 30000;

	do {
		kl_exporter_counters(ex, &c);
		if (c.published >= n)
			return;
		usleep(5000);
	} while (now_ms() < end);
	cr_assert_fail("published %" PRIu64 " of %" PRIu64, c.published, n);
}

Test(stream, live_in_order)
{
	struct kl_exporter *ex = start_exporter();
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { .check_path = true };
	char err[256];

	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, false, 0,
				     err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(produce(raw, 0, 5000, 42), 0);
	follow_until(&f, &s, 5000, 30000);
	cr_assert_eq(s.n, 5000);
	cr_assert_eq(s.bad_order, 0);
	cr_assert_eq(s.syscalls, 5000);
	cr_assert_eq(f.dups, 0);
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_exporter_destroy(ex);
}

Test(stream, filters_are_server_side)
{
	struct kl_exporter *ex = start_exporter();
	Kloudlens__V1__Filter flt = KLOUDLENS__V1__FILTER__INIT;
	char *ns[] = { "prod" };
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { 0 };
	uint8_t buf[512];
	char err[256];

	flt.namespaces = ns;
	flt.n_namespaces = 1;
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", &flt, false, 0,
				     err, sizeof(err)), 0, "%s", err);
	shm_write(raw, KL_REC_CONTAINER, buf, make_container(buf, sizeof(buf), 77, KL_CTR_START, "abc123", "prod", "web-1"));
	shm_write(raw, KL_REC_CONTAINER, buf, make_container(buf, sizeof(buf), 88, KL_CTR_START, "def456", "dev", "web-2"));
	for (int i = 0; i < 1000; i++) {
		size_t len = make_syscall(buf, sizeof(buf), i, 100 + i % 2, 257, i % 2 ? 77 : 88, "/x");

		shm_write(raw, KL_REC_SYSCALL, buf, len);
	}
	/* 1 container record + 500 syscalls in namespace prod; the rest filtered by the exporter */
	follow_until(&f, &s, 501, 30000);
	cr_assert_eq(s.containers, 1);
	cr_assert_eq(s.syscalls, 500);
	wait_published(ex, 1002);
	usleep(200000);
	cr_assert_geq(kl_follow_step(&f, on_env, &s, 200), 0);
	cr_assert_eq(s.n, 501, "nothing from other namespaces");
	kl_follow_stop(&f);
	/* the same filter on a replay from the WAL */
	{
		struct kl_follow f2;
		struct seen s2 = { 0 };

		cr_assert_eq(kl_follow_start(&f2, &c, "/kloudlens.v1.EventService/SubscribeRaw", &flt, true, 0,
					     err, sizeof(err)), 0, "%s", err);
		follow_until(&f2, &s2, 501, 30000);
		cr_assert_eq(s2.containers, 1);
		cr_assert_eq(s2.syscalls, 500);
		kl_follow_stop(&f2);
	}
	kl_client_close(&c);
	kl_exporter_destroy(ex);
}

static size_t make_edge(uint8_t *buf, size_t cap, uint64_t seq, uint64_t session, uint16_t kind)
{
	struct kl_graph *g = (struct kl_graph *)buf;
	struct kl_tail_builder b;

	memset(buf, 0, sizeof(*g));
	g->ev.seq = seq;
	g->ev.pid = 10;
	g->op = KL_GOP_EDGE;
	g->kind = kind;
	g->from_kind = KL_GN_PROCESS;
	g->to_kind = KL_GN_FILE;
	g->session_id = session;
	g->count = 1;
	kl_tail_init(&b, g, sizeof(*g), cap);
	kl_tail_add_str(&b, KL_F_GRAPH_FROM, "/bin/cat");
	kl_tail_add_str(&b, KL_F_GRAPH_TO, "/etc/hosts");
	return kl_tail_finish(&b);
}

static int on_edge(const Kloudlens__V1__EventEnvelope *e, void *ctx)
{
	struct seen *s = ctx;

	cr_assert_eq(e->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE);
	cr_assert_str_eq(e->edge->session_id, "00000000000000aa", "only the session asked for");
	cr_assert_str_eq(e->edge->to_node->label, "/etc/hosts");
	s->n++;
	return 0;
}

Test(stream, graph_session_subscription)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	Kloudlens__V1__Filter flt = KLOUDLENS__V1__FILTER__INIT;
	Kloudlens__V1__SessionRequest sq = KLOUDLENS__V1__SESSION_REQUEST__INIT;
	Kloudlens__V1__SubscribeResponse *sr = NULL;
	char *sess[] = { "00000000000000aa" };
	struct shm_ring *graph;
	struct kl_exporter *ex;
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { 0 };
	uint8_t buf[512];
	char err[256];

	o.capacity = 1 << 20;
	cr_assert_eq(shm_ring_create(te.rings, "graph", &o, &graph), 0);
	ex = start_exporter();
	flt.graph_sessions = sess;
	flt.n_graph_sessions = 1;
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeGraph", &flt, false, 0,
				     err, sizeof(err)), 0, "%s", err);
	/* SubscribeSession is the same subscription, opened from a session id */
	sq.session_id = sess[0];
	cr_assert_eq(kl_client_call(&c, "/kloudlens.v1.EventService/SubscribeSession", &sq.base,
				    &kloudlens__v1__subscribe_response__descriptor, (ProtobufCMessage **)&sr,
				    err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sr->stream, KLOUDLENS__V1__STREAM__STREAM_GRAPH);
	kloudlens__v1__subscribe_response__free_unpacked(sr, NULL);
	for (int i = 0; i < 300; i++)
		shm_write(graph, KL_REC_GRAPH, buf,
			  make_edge(buf, sizeof(buf), i + 1, i % 3 ? 0xbb : 0xaa, KL_GE_FILE_READ));
	wait_published(ex, 300);
	for (uint64_t end = now_ms() + 10000; s.n < 100 && now_ms() < end;)
		cr_assert_geq(kl_follow_step(&f, on_edge, &s, 100), 0);
	usleep(200000);
	cr_assert_geq(kl_follow_step(&f, on_edge, &s, 200), 0);
	cr_assert_eq(s.n, 100);
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_exporter_destroy(ex);
	shm_ring_close(graph);
}

Test(stream, replay_then_live_no_gap_no_dup)
{
	struct kl_exporter *ex = start_exporter();
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { .next = 100 };
	char err[256];

	cr_assert_eq(produce(raw, 0, 3000, 1), 0);
	wait_published(ex, 3000);
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, true, 100,
				     err, sizeof(err)), 0, "%s", err);
	/* live records arrive while the replay is still running */
	cr_assert_eq(produce(raw, 3000, 2000, 1), 0);
	follow_until(&f, &s, 4900, 30000);
	cr_assert_eq(s.n, 4900);
	cr_assert_eq(s.bad_order, 0);
	cr_assert_eq(s.next, 5000);
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_exporter_destroy(ex);
}

Test(stream, stalled_subscriber_does_not_stall_the_exporter)
{
	struct kl_exporter *ex = start_exporter();
	struct kl_exporter_counters cnt;
	struct kl_client stalled, c;
	struct kl_follow f;
	struct seen s = { 0 };
	struct kl_batch b = { 0 };
	uint64_t n = 50000, expect = 0, gaps = 0, got = 0, end;
	char err[256];

	/* a bare subscriber that never reads, with a tiny queue */
	cr_assert_eq(kl_client_open(&stalled, NULL, te.sub, 3000), 0);
	nng_socket_set_int(stalled.sub, NNG_OPT_RECVBUF, 2);
	cr_assert_eq(kl_client_subscribe_topic(&stalled, "kl.v1/raw/"), 0);
	/* and a session client that stops reading for a while */
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	nng_socket_set_int(c.sub, NNG_OPT_RECVBUF, 2);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, false, 0,
				     err, sizeof(err)), 0, "%s", err);
	usleep(100000);
	cr_assert_eq(produce(raw, 0, n, 9), 0);
	/* the exporter consumed the whole ring although nobody read a byte */
	wait_published(ex, n);
	kl_exporter_counters(ex, &cnt);
	cr_assert_eq(cnt.ring_records, n);
	/* the stalled bare subscriber lost messages, and sees exactly where: seq jumps */
	end = now_ms() + 2000;
	while (now_ms() < end && kl_client_recv(&stalled, &b, 200) == 0) {
		if (b.hdr->from_seq != expect)
			gaps += b.hdr->from_seq - expect;
		got += b.hdr->count;
		expect = b.hdr->to_seq + 1;
	}
	cr_assert_gt(gaps, 0, "a 2-message queue cannot hold %" PRIu64 " envelopes", n);
	cr_assert_lt(got, n);
	/* the session client resumes (with a normal queue again), counts what it missed, and repairs it from the WAL */
	nng_socket_set_int(c.sub, NNG_OPT_RECVBUF, 8192);
	follow_until(&f, &s, n, 90000);
	cr_assert_eq(s.n, n);
	cr_assert_eq(s.bad_order, 0);
	cr_assert_gt(f.missed, 0);
	/* the client reports what it missed on renewal; /metrics shows it per session */
	usleep(1100000);
	kl_follow_step(&f, on_env, &s, 10);
	{
		struct xbuf m = { 0 };
		char want[160];

		cr_assert_eq(kl_exporter_metrics(ex, &m), 0);
		xbuf_append(&m, "", 1);
		snprintf(want, sizeof(want), "kloudlens_exporter_subscriber_missed_total{session=\"%s\",stream=\"raw\"} %" PRIu64 "\n",
			 f.session, f.missed);
		cr_assert(strstr((char *)m.p, want), "want %s", want);
		xbuf_free(&m);
	}
	kl_batch_free(&b);
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_client_close(&stalled);
	kl_exporter_destroy(ex);
}

/* `klctl --json stream raw ARGS` as a real process: its stdout, *pid, and
 * back once the exporter counts its session. */
static FILE *klctl_stream(struct kl_exporter *ex, const char *args, long *pid)
{
	struct kl_exporter_counters cnt;
	char cmd[1024], line[64];
	uint64_t before, end;
	FILE *sub;

	kl_exporter_counters(ex, &cnt);
	before = cnt.sessions;
	snprintf(cmd, sizeof(cmd), "echo $$; exec %s/klctl/klctl --admin %s --subscribe %s --json stream raw %s",
		 getenv("KLOUDLENS_BUILD_ROOT"), te.admin, te.sub, args);
	sub = popen(cmd, "r");
	cr_assert_not_null(sub);
	cr_assert_not_null(fgets(line, sizeof(line), sub));
	*pid = strtol(line, NULL, 10);
	cr_assert_gt(*pid, 0);
	end = now_ms() + 10000;
	do {
		kl_exporter_counters(ex, &cnt);
		if (cnt.sessions > before)
			return sub;
		usleep(10000);
	} while (now_ms() < end);
	cr_assert_fail("klctl never subscribed");
	return NULL;
}

Test(stream, subscriber_disconnects_mid_stream)
{
	struct kl_exporter *ex = start_exporter();
	struct kl_client c2;
	struct kl_follow f2;
	struct seen s2 = { 0 };
	struct kl_exporter_counters cnt;
	char err[256];
	char line[8192];
	long pid = 0;
	int lines = 0;
	FILE *sub;

	/*
	 * The subscriber is a real klctl process, SIGKILLed mid-stream: it
	 * neither unsubscribes nor closes anything, the kernel drops its
	 * connections. (Closing an nng sub socket while its pipe still receives
	 * can hang in Debian's nng 1.5.2, nanomsg/nng#1713; a subscriber that
	 * vanishes is what this case is about anyway.)
	 */
	sub = klctl_stream(ex, "", &pid);
	cr_assert_eq(produce(raw, 0, 2000, 5), 0);
	/* bounds well under the test timeout: a stall shows which step, not just "timed out" */
	while (lines < 500 && fgets(line, sizeof(line), sub))
		lines++;
	kill((pid_t)pid, SIGKILL);
	pclose(sub);
	cr_assert_eq(lines, 500, "klctl printed %d envelopes", lines);
	cr_assert_eq(produce(raw, 2000, 3000, 5), 0);
	wait_published(ex, 5000);
	/* a new client sees everything, and the exporter is unharmed */
	cr_assert_eq(kl_client_open(&c2, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f2, &c2, "/kloudlens.v1.EventService/SubscribeRaw", NULL, true, 0,
				     err, sizeof(err)), 0);
	follow_until(&f2, &s2, 5000, 20000);
	cr_assert_eq(s2.n, 5000);
	cr_assert_eq(s2.bad_order, 0);
	kl_follow_stop(&f2);
	kl_client_close(&c2);
	kl_exporter_counters(ex, &cnt);
	cr_assert_eq(cnt.sessions, 1, "the vanished session lingers until its lease ends");
	kl_exporter_destroy(ex);
}

/* ---- restart: a separate kl-exporter process, killed and started again ---- */

static pid_t spawn_exporter(void)
{
	const char *root = getenv("KLOUDLENS_BUILD_ROOT");
	char bin[512];
	pid_t pid;

	cr_assert(root, "KLOUDLENS_BUILD_ROOT not set");
	snprintf(bin, sizeof(bin), "%s/exporter/kl-exporter", root);
	pid = fork();
	if (pid == 0) {
		execl(bin, bin, "--rings", te.rings, "--wal", te.wal, "--subscribe", te.sub, "--admin",
		      te.admin, "--metrics", "", "--wal-fsync", "none", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static uint64_t remote_head(struct kl_client *c)
{
	Kloudlens__V1__StatusResponse *s;
	uint64_t head = 0;

	if (kl_client_call(c, "/kloudlens.v1.AdminService/GetStatus", NULL,
			   &kloudlens__v1__status_response__descriptor, (ProtobufCMessage **)&s, NULL, 0))
		return 0;
	for (size_t i = 0; i < s->n_streams; i++)
		if (s->streams[i]->stream == KLOUDLENS__V1__STREAM__STREAM_RAW)
			head = s->streams[i]->head_seq;
	kloudlens__v1__status_response__free_unpacked(s, NULL);
	return head;
}

static bool remote_attached(struct kl_client *c)
{
	Kloudlens__V1__StatusResponse *s;
	bool att = false;

	if (kl_client_call(c, "/kloudlens.v1.AdminService/GetStatus", NULL,
			   &kloudlens__v1__status_response__descriptor, (ProtobufCMessage **)&s, NULL, 0))
		return false;
	for (size_t i = 0; i < s->n_streams; i++)
		if (s->streams[i]->stream == KLOUDLENS__V1__STREAM__STREAM_RAW)
			att = s->streams[i]->attached;
	kloudlens__v1__status_response__free_unpacked(s, NULL);
	return att;
}

/* A new consumer starts at the ring's head: produce only once it is attached. */
static void wait_attached(void)
{
	struct kl_client c;
	uint64_t end = now_ms() + 30000;

	while (kl_client_open(&c, te.admin, NULL, 500) != 0) {
		cr_assert_lt(now_ms(), end, "kl-exporter never came up");
		usleep(20000);
	}
	while (!remote_attached(&c)) {
		cr_assert_lt(now_ms(), end, "kl-exporter never attached to the ring");
		usleep(20000);
	}
	kl_client_close(&c);
}

static void wait_remote_head(uint64_t want)
{
	struct kl_client c;
	uint64_t end = now_ms() + 30000, h = 0;

	/* the process may not listen yet: dialling is refused until it does */
	while (kl_client_open(&c, te.admin, NULL, 500) != 0) {
		cr_assert_lt(now_ms(), end, "kl-exporter never came up");
		usleep(20000);
	}
	while (now_ms() < end && (h = remote_head(&c)) < want)
		usleep(20000);
	kl_client_close(&c);
	cr_assert_eq(h, want, "remote head %" PRIu64 ", want %" PRIu64, h, want);
}

struct uniq {
	uint64_t n, next, bad_order, src_next, bad_src;
};

static int on_uniq(const Kloudlens__V1__EventEnvelope *e, void *ctx)
{
	struct uniq *u = ctx;

	if (e->seq != u->next)
		u->bad_order++;
	u->next = e->seq + 1;
	/* each source record exactly once: source_seq runs 0, 1, 2, ... */
	if (e->payload_case != KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL ||
	    e->syscall->source_seq != u->src_next)
		u->bad_src++;
	u->src_next++;
	u->n++;
	return 0;
}

static void restart_case(int sig)
{
	struct kl_client c;
	struct kl_follow f;
	struct uniq u = { 0 };
	char err[256];
	pid_t pid;
	int st;
	uint64_t end;

	pid = spawn_exporter();
	wait_attached();
	cr_assert_eq(produce(raw, 0, 1000, 3), 0);
	wait_remote_head(1000);
	kill(pid, sig);
	waitpid(pid, &st, 0);
	/* written while the exporter is down: its ring slot holds them */
	cr_assert_eq(produce(raw, 1000, 1500, 3), 0);
	pid = spawn_exporter();
	wait_remote_head(2500);
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, true, 0,
				     err, sizeof(err)), 0, "%s", err);
	end = now_ms() + 30000;
	while (u.n < 2500 && now_ms() < end)
		cr_assert_geq(kl_follow_step(&f, on_uniq, &u, 100), 0);
	cr_assert_eq(u.n, 2500);
	cr_assert_eq(u.bad_order, 0, "no gap, no duplicate in the envelope sequence");
	cr_assert_eq(u.bad_src, 0, "every ring record exactly once");
	kl_follow_stop(&f);
	kl_client_close(&c);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit on SIGTERM");
}

Test(stream, resume_after_crash) { restart_case(SIGKILL); }
Test(stream, resume_after_clean_restart) { restart_case(SIGTERM); }

/* ---- klctl, the binary ---- */

static FILE *klctl(const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s/klctl/klctl --admin %s --subscribe %s %s", getenv("KLOUDLENS_BUILD_ROOT"),
		 te.admin, te.sub, args);
	return popen(cmd, "r");
}

Test(stream, klctl_stream_and_get)
{
	struct kl_exporter *ex = start_exporter();
	char line[4096];
	uint64_t n = 0;
	int st;
	FILE *p;

	cr_assert_eq(produce(raw, 0, 300, 77), 0);
	wait_published(ex, 300);
	/* get: what the WAL holds from --since, then exit */
	p = klctl("--json get raw --since 100");
	while (fgets(line, sizeof(line), p)) {
		char want[64];

		snprintf(want, sizeof(want), "{\"seq\":%" PRIu64 ",", 100 + n);
		cr_assert(!strncmp(line, want, strlen(want)), "line %" PRIu64 ": %s", n, line);
		cr_assert(strstr(line, "\"syscall\":\"openat\""), "%s", line);
		n++;
	}
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(n, 200);
	/* stream --since replays then follows; --count ends it */
	p = klctl("stream raw --since 290 --count 20");
	usleep(300000);
	cr_assert_eq(produce(raw, 300, 10, 77), 0);
	n = 0;
	while (fgets(line, sizeof(line), p))
		n++;
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(n, 20, "not a terminal: JSON lines");
	/* the graph stage has not landed: clear message, non-zero exit */
	p = klctl("graph s1 2>&1");
	cr_assert(fgets(line, sizeof(line), p));
	cr_assert(strstr(line, "UNAVAILABLE") || strstr(line, "status 14"), "%s", line);
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4);
	kl_exporter_destroy(ex);
}

/*
 * Ctrl-C on `klctl stream` while envelopes keep arriving must end it at
 * once. Closing an nng sub socket whose pipe still receives can hang in
 * Debian's nng 1.5.2 (nanomsg/nng#1713 and kin): klctl used to sit in
 * its close for minutes, about one exit in fifteen.
 */
Test(stream, klctl_interrupted_mid_stream_exits_promptly, .timeout = 120)
{
	struct kl_exporter *ex = start_exporter();
	uint64_t base = 0;
	char line[8192];

	for (int round = 0; round < 15; round++) {
		uint64_t t0;
		long pid;
		int lines = 0, st = 0;
		pid_t w = 0;
		FILE *sub;

		sub = klctl_stream(ex, "--follow", &pid);
		cr_assert_eq(produce(raw, base, 4000, 9), 0);
		base += 4000;
		while (lines < 100 && fgets(line, sizeof(line), sub))
			lines++;
		cr_assert_eq(lines, 100, "round %d: klctl printed %d envelopes", round, lines);
		/* interrupted while the rest is still on its way */
		t0 = now_ms();
		kill((pid_t)pid, SIGINT);
		/* keep its stdout drained (a full pipe would block it, not nng),
		 * without blocking on a klctl that never exits */
		fcntl(fileno(sub), F_SETFL, fcntl(fileno(sub), F_GETFL) | O_NONBLOCK);
		/* WNOWAIT: look without reaping, pclose() does that */
		for (;;) {
			siginfo_t si = { 0 };

			while (read(fileno(sub), line, sizeof(line)) > 0)
				;

			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
				w = si.si_pid;
				break;
			}
			if (now_ms() >= t0 + 5000)
				break;
			usleep(10000);
		}
		if (w == 0)
			kill((pid_t)pid, SIGKILL);
		st = pclose(sub);
		cr_assert_eq(w, (pid_t)pid, "round %d: klctl still running 5 s after SIGINT", round);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: klctl status %#x", round, st);
		wait_published(ex, base);
	}
	kl_exporter_destroy(ex);
}

Test(stream, klctl_unreachable)
{
	char cmd[512], line[512] = "";
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/klctl/klctl --admin tcp://127.0.0.1:%d status 2>&1",
		 getenv("KLOUDLENS_BUILD_ROOT"), free_port());
	p = popen(cmd, "r");
	cr_assert(fgets(line, sizeof(line), p));
	st = pclose(p);
	cr_assert(strstr(line, "cannot reach kl-exporter"), "%s", line);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
}

Test(stream, replay_reports_retention_gap)
{
	/* 32 KiB segments, 96 KiB kept: most of 20000 envelopes are deleted */
	struct kl_exporter *ex = start_exporter_opts("exp-ret", 32 << 10, 96 << 10);
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { 0 };
	char err[256];

	cr_assert_eq(produce(raw, 0, 20000, 2), 0);
	wait_published(ex, 20000);
	usleep(1500000);   /* retention runs once a second */
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, true, 0,
				     err, sizeof(err)), 0, "%s", err);
	while (s.next < 20000)
		cr_assert_geq(kl_follow_step(&f, on_env, &s, 200), 0);
	cr_assert_eq(s.losses, 1);
	cr_assert_eq(s.loss_where, KLOUDLENS__V1__LOSS_EVENT__WHERE__WAL_RETENTION);
	cr_assert_eq(s.loss_from, 0);
	cr_assert_gt(s.loss_to, 1000);
	cr_assert_eq(s.bad_order, 1, "one jump, at the reported gap");
	cr_assert_eq(s.n, 1 + 20000 - (s.loss_to + 1));
	cr_assert_eq(f.server_gaps, s.loss_to + 1);
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_exporter_destroy(ex);
}

Test(stream, replay_reports_wal_corruption)
{
	struct kl_exporter *ex = start_exporter_opts("exp-c1", 0, 0);
	struct kl_client c;
	struct kl_follow f;
	struct seen s = { 0 };
	Kloudlens__V1__StatusResponse *st;
	char err[256], path[512], cmd[600];
	struct stat sb;
	FILE *p;
	int fd;

	cr_assert_eq(produce(raw, 0, 5000, 2), 0);
	wait_published(ex, 5000);
	kl_exporter_destroy(ex);
	/* damage the middle of the (single) raw segment */
	snprintf(cmd, sizeof(cmd), "ls %s/raw/wal-*.seg", te.wal);
	p = popen(cmd, "r");
	cr_assert(fgets(path, sizeof(path), p));
	pclose(p);
	path[strcspn(path, "\n")] = 0;
	cr_assert_eq(stat(path, &sb), 0);
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "CORRUPTCORRUPT", 14, sb.st_size / 2), 14);
	close(fd);
	ex = start_exporter_opts("exp-c2", 0, 0);
	cr_assert_eq(kl_client_open(&c, te.admin, te.sub, 3000), 0);
	cr_assert_eq(kl_client_call(&c, "/kloudlens.v1.AdminService/GetStatus", NULL,
				    &kloudlens__v1__status_response__descriptor, (ProtobufCMessage **)&st, err,
				    sizeof(err)), 0);
	cr_assert_gt(st->wal_corrupt_records, 0, "reported");
	kloudlens__v1__status_response__free_unpacked(st, NULL);
	cr_assert_eq(kl_follow_start(&f, &c, "/kloudlens.v1.EventService/SubscribeRaw", NULL, true, 0,
				     err, sizeof(err)), 0, "%s", err);
	while (s.next < 5000)
		cr_assert_geq(kl_follow_step(&f, on_env, &s, 200), 0);
	cr_assert_eq(s.losses, 1);
	cr_assert_eq(s.loss_where, KLOUDLENS__V1__LOSS_EVENT__WHERE__WAL_CORRUPT);
	cr_assert_gt(s.loss_from, 0);
	cr_assert_lt(s.loss_to, 4999);
	/* everything else served, the damaged range never */
	cr_assert_eq(s.syscalls, 5000 - (s.loss_to - s.loss_from + 1));
	kl_follow_stop(&f);
	kl_client_close(&c);
	kl_exporter_destroy(ex);
}
