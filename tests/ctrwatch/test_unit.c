/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for ctrwatch on fake state trees in a temp dir: every root
 * is overridden, the "init pids" are real children of the test (so
 * /proc, liveness and namespaces are real), and files are written the
 * way runtimes write them (temp + rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sched.h>
#include <jansson.h>
#include <kloudlens/recutil.h>

#include "common.h"

static char tmpdir[256];
static void init_roots(void);
static struct sink sink;
static pid_t kids[8];
static int nkids;

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ctrwatch-unit-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	memset(&sink, 0, sizeof(sink));
	nkids = 0;
	init_roots();
}

static void teardown(void)
{
	for (int i = 0; i < nkids; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	sink_reset(&sink);
	rmtree(tmpdir);
	arena_free();
}

/* A stand-in for a container's init process. */
/* A stand-in container init; @own_mnt: in a mount namespace of its own, as a real one is. */
static pid_t spawn_kid_ns(bool own_mnt)
{
	int fds[2];
	char ok = 0;
	pid_t p;

	cr_assert_eq(pipe(fds), 0);
	p = fork();
	cr_assert_geq(p, 0);
	if (p == 0) {
		char r = 1;

		if (own_mnt && unshare(CLONE_NEWNS) < 0)
			r = 0;
		if (write(fds[1], &r, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	cr_assert_eq(read(fds[0], &ok, 1), 1);
	close(fds[0]);
	close(fds[1]);
	kids[nkids++] = p;
	cr_assert(ok, "unshare(CLONE_NEWNS) failed (the test needs root)");
	return p;
}

static pid_t spawn_kid(void)
{
	return spawn_kid_ns(true);
}

static void reap_kid(pid_t p)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	for (int i = 0; i < nkids; i++)
		if (kids[i] == p)
			kids[i] = kids[--nkids];
}

static unsigned long long proc_start(pid_t p)
{
	char path[64], buf[1024], *s;
	unsigned long long st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", p);
	f = fopen(path, "r");
	cr_assert(f);
	cr_assert(fgets(buf, sizeof(buf), f));
	fclose(f);
	s = strrchr(buf, ')');
	cr_assert(sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &st) == 1);
	return st;
}

/* Roots under tmpdir: runc (depth 1), crun (depth 1), containerd task
 * (depth 2) and containerd's runc root (depth 2). */
static struct kl_ctrwatch_root roots[5];
static char *rp[5];

static void init_roots(void)
{
	rp[0] = tp("%s/run/runc", tmpdir);
	rp[1] = tp("%s/run/crun", tmpdir);
	rp[2] = tp("%s/run/containerd/io.containerd.runtime.v2.task", tmpdir);
	rp[3] = tp("%s/run/containerd/runc", tmpdir);
	rp[4] = tp("%s/run/docker/runtime-runc", tmpdir);
	roots[0] = (struct kl_ctrwatch_root){ rp[0], KL_CTRW_OCI_STATE, 1, KL_RT_RUNC };
	roots[1] = (struct kl_ctrwatch_root){ rp[1], KL_CTRW_OCI_STATE, 1, KL_RT_CRUN };
	roots[2] = (struct kl_ctrwatch_root){ rp[2], KL_CTRW_TASK, 2, KL_RT_CONTAINERD };
	roots[3] = (struct kl_ctrwatch_root){ rp[3], KL_CTRW_OCI_STATE, 2, KL_RT_CONTAINERD };
	roots[4] = (struct kl_ctrwatch_root){ rp[4], KL_CTRW_OCI_STATE, 2, KL_RT_DOCKER };
}

static struct kl_ctrwatch *mkwatch_hints(const char *docker_root, uint64_t hint_wait_ns)
{
	struct kl_ctrwatch_opts o = {
		.sz = sizeof(o),
		.roots = roots,
		.nroots = 5,
		.cgroup2_mount = NULL,
		.docker_root = docker_root ? docker_root : "",
		.liveness_interval_ns = 20000000ull,
		.pending_timeout_ns = 300000000ull,
		.log = sink_log,
		.log_ctx = &sink,
		.exec_hint_wait_ns = hint_wait_ns,
	};
	struct kl_ctrwatch *w = NULL;

	cr_assert_eq(kl_ctrwatch_new(&o, &w), 0);
	return w;
}

static struct kl_ctrwatch *mkwatch(const char *docker_root)
{
	return mkwatch_hints(docker_root, 0);
}

static void freewatch(struct kl_ctrwatch *w)
{
	kl_ctrwatch_free(w);
}

static const char *CRI_ANN =
	"\"io.kubernetes.cri.container-name\":\"web\","
	"\"io.kubernetes.cri.sandbox-name\":\"shop-7d4\","
	"\"io.kubernetes.cri.sandbox-namespace\":\"prod\","
	"\"io.kubernetes.cri.sandbox-uid\":\"uid-123\","
	"\"io.kubernetes.cri.sandbox-id\":\"sb-999\","
	"\"io.kubernetes.cri.image-name\":\"docker.io/library/nginx:1.25\","
	"\"io.kubernetes.cri.container-type\":\"container\"";

/* A runc state dir for @id pointing at bundle @bundle. */
static void mk_runc(const char *root, const char *id, pid_t pid, const char *bundle, const char *extra_labels)
{
	char *d = tp("%s/%s", root, id), *f = tp("%s/state.json", d);
	char *j = tp("{\"id\":\"%s\",\"init_process_pid\":%d,\"init_process_start\":%llu,"
			    "\"config\":{\"labels\":[%s\"bundle=%s\"]},\"cgroup_paths\":{}}",
			    id, pid, pid > 0 ? proc_start(pid) : 0ull, extra_labels ? extra_labels : "", bundle);

	mkdirs(d);
	write_file(f, j);
}

static char *mk_bundle(const char *name, const char *annotations)
{
	char *b = tp("%s/bundles/%s", tmpdir, name), *f = tp("%s/config.json", b);
	char *j = tp("{\"ociVersion\":\"1.0.2\",\"hostname\":\"h-%s\",\"annotations\":{%s},"
			    "\"linux\":{\"cgroupsPath\":\"/x/%s\"}}", name, annotations, name);

	mkdirs(b);
	write_file(f, j);
	return b;
}

TestSuite(ctrwatch, .init = setup, .fini = teardown, .timeout = 30);

Test(ctrwatch, opts_validation)
{
	struct {
		struct kl_ctrwatch_opts o;
		uint64_t future;
	} big = { .o = { .sz = sizeof(big) }, .future = 1 };
	struct kl_ctrwatch_root bad = { "relative/path", KL_CTRW_OCI_STATE, 1, KL_RT_RUNC };
	struct kl_ctrwatch_opts o = { .sz = sizeof(o), .roots = &bad, .nroots = 1 };
	struct kl_ctrwatch *w = NULL;

	cr_assert_eq(kl_ctrwatch_new(&big.o, &w), -E2BIG);
	big.future = 0;
	cr_assert_eq(kl_ctrwatch_new(&big.o, &w), 0);
	kl_ctrwatch_free(w);
	cr_assert_eq(kl_ctrwatch_new(&o, &w), -EINVAL);
	bad.path = "/x";
	bad.depth = 3;
	cr_assert_eq(kl_ctrwatch_new(&o, &w), -EINVAL);
	cr_assert_eq(kl_ctrwatch_new(NULL, &w), -EINVAL);
	kl_ctrwatch_free(NULL);
}

Test(ctrwatch, runc_snapshot_fields_then_stop_on_pid_death)
{
	pid_t p = spawn_kid();
	char *ann = tp("%s,\"com.docker.compose.service\":\"api\"", CRI_ANN);
	char *b, path[64];
	struct stat st;
	struct kl_ctrwatch *w;
	const struct rec *r;

	b = mk_bundle("b1", ann);
	mk_runc(rp[0], "c1", p, b, NULL);
	w = mkwatch(NULL);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "c1");
	cr_assert(r, "no snapshot record; log:\n%s", sink.log);
	cr_assert_eq(count_recs(&sink, KL_CTR_SNAPSHOT, "c1"), 1);
	cr_assert(r->c.ev.flags & KL_EV_BOOTSTRAP);
	cr_assert_eq(r->c.runtime, KL_RT_RUNC);
	cr_assert_eq(r->c.init_pid, (uint32_t)p);
	cr_assert_eq(r->c.ev.pid, (uint32_t)p);
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "web");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAMESPACE), "prod");
	cr_assert_str_eq(rec_str(r, KL_F_POD_UID), "uid-123");
	cr_assert_str_eq(rec_str(r, KL_F_SANDBOX_ID), "sb-999");
	cr_assert_str_eq(rec_str(r, KL_F_IMAGE), "docker.io/library/nginx:1.25");
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), "runc");
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), b);
	cr_assert_str_eq(rec_str(r, KL_F_NAME), "h-b1");
	cr_assert(rec_has_kv(r, KL_F_ANNOTATIONS, "io.kubernetes.cri.container-type=container"));
	cr_assert(rec_has_kv(r, KL_F_LABELS, "com.docker.compose.service=api"));
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", p);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(r->c.mnt_ns, (uint32_t)st.st_ino);
	cr_assert_eq(r->c.ev.mnt_ns, (uint32_t)st.st_ino);
	cr_assert_eq(r->c.pid_ns, 0, "the stand-in shares our pid namespace: not a key");
	cr_assert_eq(r->c.ev.start_ns / 1000000000ull, proc_start(p) / (unsigned long long)sysconf(_SC_CLK_TCK));

	/* a second snapshot reports it again */
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	cr_assert_eq(count_recs(&sink, KL_CTR_SNAPSHOT, "c1"), 2);

	reap_kid(p);
	r = wait_rec(w, &sink, KL_CTR_STOP, "c1", 3000);
	cr_assert(r, "no stop after the init pid died");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4");
	cr_assert_eq(r->c.exit_code, -1);
	cr_assert_not(r->c.ev.flags & KL_EV_BOOTSTRAP);
	/* the dir going away afterwards does not stop it twice */
	rmtree(tp("%s/c1", rp[0]));
	wait_rec(w, &sink, 0xdead, "c1", 200);
	cr_assert_eq(count_recs(&sink, KL_CTR_STOP, "c1"), 1);
	freewatch(w);
}

/*
 * An init that still shares the agent's own namespaces (runc's state is
 * written before its init has unshared, or a container made without
 * them) must not be matched by them: every host process shares them too.
 * Before: the record carried the host's mount namespace and the enricher
 * put the host's processes (another runtime setting up its rootfs) into
 * this container.
 */
Test(ctrwatch, init_in_host_namespaces_is_not_matched_by_them)
{
	pid_t p = spawn_kid_ns(false);
	char *b;
	struct kl_ctrwatch *w;
	const struct rec *r;

	b = mk_bundle("bh", tp("%s", CRI_ANN));
	mk_runc(rp[0], "ch", p, b, NULL);
	w = mkwatch(NULL);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "ch");
	cr_assert(r, "no snapshot record; log:\n%s", sink.log);
	cr_assert_eq(r->c.mnt_ns, 0);
	cr_assert_eq(r->c.ev.mnt_ns, 0);
	cr_assert_eq(r->c.pid_ns, 0);
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4", "the rest of the record is intact");
	reap_kid(p);
	freewatch(w);
}

Test(ctrwatch, start_then_stop_when_state_dir_removed)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = mk_bundle("b2", CRI_ANN), *d;
	const struct rec *r;

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	wait_rec(w, &sink, 0xdead, "-", 100);
	mk_runc(rp[0], "c2", p, b, NULL);
	r = wait_rec(w, &sink, KL_CTR_START, "c2", 3000);
	cr_assert(r, "no START; log:\n%s", sink.log);
	cr_assert_not(r->c.ev.flags & KL_EV_BOOTSTRAP);
	d = tp("%s/c2", rp[0]);
	rmtree(d);
	r = wait_rec(w, &sink, KL_CTR_STOP, "c2", 3000);
	cr_assert(r, "no STOP after the state dir went");
	cr_assert_eq(count_recs(&sink, KL_CTR_START, "c2"), 1);
	freewatch(w);
}

Test(ctrwatch, runtime_root_appears_later)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = mk_bundle("b3", CRI_ANN), *ns;
	struct kl_ctrwatch_stats st;
	const struct rec *r;

	/* nothing under tmpdir/run exists yet: the watcher climbed to tmpdir */
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	cr_assert_eq(sink.n, 0);
	mk_runc(rp[0], "late", p, b, NULL);
	r = wait_rec(w, &sink, KL_CTR_START, "late", 3000);
	cr_assert(r, "root created later not picked up; log:\n%s", sink.log);
	/* a containerd namespace dir that appears later, too */
	ns = tp("%s/k8s.io/late2", rp[2]);
	mkdirs(ns);
	{
		char *f = tp("%s/config.json", ns), *pf = tp("%s/init.pid", ns);
		char *j = tp("{\"annotations\":{%s}}", CRI_ANN), *pid = tp("%d", p);

		write_file(f, j);
		write_file(pf, pid);
	}
	r = wait_rec(w, &sink, KL_CTR_START, "late2", 3000);
	cr_assert(r, "containerd root created later not picked up; log:\n%s", sink.log);
	cr_assert_eq(r->c.runtime, KL_RT_CONTAINERD);
	cr_assert(rec_has_kv(r, KL_F_LABELS, "kloudlens.io/containerd-namespace=k8s.io"));
	/* the whole tree goes: both stop, and the roots are watched for again */
	rmtree(tp("%s/run", tmpdir));
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "late", 3000));
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "late2", 3000));
	sink_reset(&sink);
	mk_runc(rp[0], "again", p, b, NULL);
	cr_assert(wait_rec(w, &sink, KL_CTR_START, "again", 3000), "root re-created not picked up");
	kl_ctrwatch_get_stats(w, &st);
	cr_assert_eq(st.running, 1);
	freewatch(w);
}

Test(ctrwatch, malformed_config_json_still_emits)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = tp("%s/bundles/bad", tmpdir), *f = tp("%s/config.json", b);
	const struct rec *r;

	mkdirs(b);
	write_file(f, "{\"annotations\": {\"io.kubernetes.cri.container-name\": \"web\",,}");
	mk_runc(rp[0], "bad1", p, b, NULL);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "bad1");
	cr_assert(r, "nothing emitted for a malformed config.json");
	cr_assert_eq(r->c.init_pid, (uint32_t)p);
	cr_assert_null(rec_str(r, KL_F_CONTAINER_NAME));
	cr_assert(strstr(sink.log, f), "log does not name the file:\n%s", sink.log);
	cr_assert(strstr(sink.log, "malformed JSON at line 1"), "log:\n%s", sink.log);
	freewatch(w);
}

Test(ctrwatch, wrong_types_and_missing_fields)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *d = tp("%s/nopid", rp[0]);
	char *b = tp("%s/bundles/odd", tmpdir), *f = tp("%s/config.json", b);
	char *d2 = tp("%s/typed", rp[0]);
	char *j;
	const struct rec *r;

	mkdirs(b);
	/* annotations of the wrong type, hostname a number */
	write_file(f, "{\"annotations\":[\"a\",\"b\"],\"hostname\":7,\"linux\":{\"cgroupsPath\":9}}");
	mkdirs(d);
	j = tp("{\"id\":\"nopid\",\"config\":{\"labels\":[\"bundle=%s\"]}}", b);
	write_file(tp("%s/state.json", d), j);
	/* pid as a string, labels as an object */
	mkdirs(d2);
	write_file(tp("%s/state.json", d2),
		   "{\"init_process_pid\":\"123\",\"init_process_start\":-5,\"config\":{\"labels\":{\"x\":1}}}");
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "nopid");
	cr_assert(r, "no record for a state without a pid; log:\n%s", sink.log);
	cr_assert_eq(r->c.init_pid, 0);
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), b);
	cr_assert(strstr(sink.log, "missing or invalid \"init_process_pid\""), "log:\n%s", sink.log);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "typed");
	cr_assert(r, "no record for a state with wrong types; log:\n%s", sink.log);
	cr_assert(strstr(sink.log, "no bundle recorded"), "log:\n%s", sink.log);
	/* the dir going away stops a pid-less container */
	rmtree(d);
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "nopid", 3000));
	(void)p;
	freewatch(w);
}

Test(ctrwatch, bundle_vanished_uses_runc_labels)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = tp("%s/bundles/gone", tmpdir);
	const struct rec *r;

	/* runc copies annotations into its state labels: they survive the bundle */
	mk_runc(rp[0], "gone1", p, b,
		"1,\"io.kubernetes.cri.sandbox-name=pod-x\","
		"\"io.kubernetes.cri.container-name=ctr-x\",");
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "gone1");
	cr_assert(r, "log:\n%s", sink.log);
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "pod-x");
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "ctr-x");
	cr_assert(rec_has_kv(r, KL_F_ANNOTATIONS, "io.kubernetes.cri.container-name=ctr-x"));
	cr_assert_not(rec_has_kv(r, KL_F_ANNOTATIONS, "bundle=gone"));
	cr_assert(strstr(sink.log, "/bundles/gone/config.json: No such file"), "log:\n%s", sink.log);
	freewatch(w);
}

Test(ctrwatch, state_dir_vanishes_before_state_written)
{
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *d = tp("%s/ghost", rp[0]);

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	mkdirs(d);
	wait_rec(w, &sink, 0xdead, "-", 100);   /* seen, pending: no state yet */
	rmdir(d);
	wait_rec(w, &sink, 0xdead, "-", 500);
	cr_assert_eq(sink.n, 0, "a dir with no state ever must emit nothing");
	freewatch(w);
}

Test(ctrwatch, pid_reuse_is_not_alive)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *d = tp("%s/reuse", rp[0]), *j;

	mkdirs(d);
	/* the recorded start time is not this process's: the pid was reused */
	j = tp("{\"init_process_pid\":%d,\"init_process_start\":%llu,"
		      "\"config\":{\"labels\":[\"bundle=/nonexistent\"]}}", p, proc_start(p) + 1);
	write_file(tp("%s/state.json", d), j);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	cr_assert_eq(sink.n, 0, "a dead (reused-pid) container must not be in the snapshot");
	freewatch(w);
}

Test(ctrwatch, short_lived_start_and_stop)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	unsigned long long st = proc_start(p);
	char *d = tp("%s/brief", rp[0]), *j;

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	reap_kid(p);
	mkdirs(d);
	j = tp("{\"init_process_pid\":%d,\"init_process_start\":%llu,"
		      "\"config\":{\"labels\":[\"bundle=/nonexistent\"]}}", p, st);
	write_file(tp("%s/state.json", d), j);
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "brief", 3000), "log:\n%s", sink.log);
	cr_assert(find_rec(&sink, KL_CTR_START, "brief"));
	freewatch(w);
}

/*
 * A container whose init has exited before its state is read (CI saw it:
 * a fast workload under `runc run` on a loaded node): the kernel's exec
 * record supplies the ids, the START is emitted inside exec_seen(), so
 * before the caller publishes the exec. A hint whose start differs (a
 * reused pid) is not taken; an exec in our own pid namespace is ignored.
 */
Test(ctrwatch, init_gone_takes_ids_from_the_exec)
{
	pid_t p = spawn_kid(), q = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	unsigned long long st = proc_start(p), sq = proc_start(q);
	uint64_t tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
	struct kl_proc ex = { 0 };
	struct stat self;
	const struct rec *r;

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	reap_kid(p);
	reap_kid(q);
	mkdirs(tp("%s/fast", rp[0]));
	write_file(tp("%s/fast/state.json", rp[0]),
		   tp("{\"init_process_pid\":%d,\"init_process_start\":%llu,"
		      "\"config\":{\"labels\":[\"bundle=/nonexistent\"]}}", p, st));

	/* our own pid namespace: not a container's exec, nothing dispatched */
	cr_assert_eq(stat("/proc/self/ns/pid", &self), 0);
	ex.kind = KL_PROC_EXEC;
	ex.ev.pid = (uint32_t)p;
	ex.ev.pid_ns = (uint32_t)self.st_ino;
	cr_assert_eq(kl_ctrwatch_exec_seen(w, &ex, sink_emit, &sink), 0);
	cr_assert_eq(sink.n, 0);

	ex.ev.pid_ns = 0xf00001u;
	ex.ev.mnt_ns = 0xf00002u;
	ex.ev.cgroup_id = 424242;
	ex.ev.ns_pid = 1;
	ex.ev.start_ns = st * tick + tick / 2;
	ex.net_ns = 0xf00003u;
	memcpy(ex.ev.comm, "kl-workload", 12);
	cr_assert_eq(kl_ctrwatch_exec_seen(w, &ex, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_START, "fast");
	cr_assert_not_null(r, "START must be emitted inside exec_seen; log:\n%s", sink.log);
	cr_assert_eq(r->c.pid_ns, 0xf00001u);
	cr_assert_eq(r->c.mnt_ns, 0xf00002u);
	cr_assert_eq(r->c.net_ns, 0xf00003u);
	cr_assert_eq(r->c.ev.pid_ns, 0xf00001u);
	cr_assert_eq(r->c.ev.cgroup_id, 424242);
	cr_assert_eq(r->c.ev.ns_pid, 1);
	cr_assert_str_eq(r->c.ev.comm, "kl-workload");

	/* same pid, another start: not this container's init */
	mkdirs(tp("%s/reused", rp[0]));
	write_file(tp("%s/reused/state.json", rp[0]),
		   tp("{\"init_process_pid\":%d,\"init_process_start\":%llu,"
		      "\"config\":{\"labels\":[\"bundle=/nonexistent\"]}}", q, sq));
	ex.ev.pid = (uint32_t)q;
	ex.ev.start_ns = (sq + 50) * tick;
	ex.ev.cgroup_id = 777;
	cr_assert_eq(kl_ctrwatch_exec_seen(w, &ex, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_START, "reused");
	cr_assert_not_null(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.pid_ns, 0);
	cr_assert_neq(r->c.ev.cgroup_id, 777);
	freewatch(w);
}

/*
 * The state is read before the exec that would hint its gone init (the
 * collector dispatched between two drains): the START waits for the
 * hint, and goes out with its ids the moment it comes. A container whose
 * hint never comes is reported without ids once the wait is over, and a
 * waiting container whose state dir vanishes is still reported.
 */
Test(ctrwatch, gone_init_waits_for_its_exec_hint)
{
	pid_t p = spawn_kid(), q = spawn_kid(), r3 = spawn_kid();
	struct kl_ctrwatch *w = mkwatch_hints(NULL, 400000000ull);
	unsigned long long st = proc_start(p), sq = proc_start(q), sr = proc_start(r3);
	uint64_t tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
	struct kl_proc ex = { 0 };
	const struct rec *r;

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	reap_kid(p);
	reap_kid(q);
	reap_kid(r3);
	for (int i = 0; i < 3; i++) {
		const char *id = i == 0 ? "hinted" : i == 1 ? "unhinted" : "vanishing";
		pid_t pid = i == 0 ? p : i == 1 ? q : r3;
		unsigned long long s0 = i == 0 ? st : i == 1 ? sq : sr;

		mkdirs(tp("%s/%s", rp[0], id));
		write_file(tp("%s/%s/state.json", rp[0], id),
			   tp("{\"init_process_pid\":%d,\"init_process_start\":%llu,"
			      "\"config\":{\"labels\":[\"bundle=/nonexistent\"]}}", pid, s0));
	}
	cr_assert_eq(kl_ctrwatch_dispatch(w, 0, sink_emit, &sink), 0);
	cr_assert_eq(sink.n, 0, "START must wait for the exec hint; log:\n%s", sink.log);

	ex.kind = KL_PROC_EXEC;
	ex.ev.pid = (uint32_t)p;
	ex.ev.pid_ns = 0xf00011u;
	ex.ev.mnt_ns = 0xf00012u;
	ex.ev.cgroup_id = 515151;
	ex.ev.start_ns = st * tick;
	cr_assert_eq(kl_ctrwatch_exec_seen(w, &ex, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_START, "hinted");
	cr_assert_not_null(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.mnt_ns, 0xf00012u);
	cr_assert_eq(r->c.ev.cgroup_id, 515151);
	cr_assert_null(find_rec(&sink, KL_CTR_START, "unhinted"));

	rmtree(tp("%s/vanishing", rp[0]));
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "vanishing", 300), "log:\n%s", sink.log);
	cr_assert_not_null(find_rec(&sink, KL_CTR_START, "vanishing"));

	r = wait_rec(w, &sink, KL_CTR_START, "unhinted", 3000);
	cr_assert_not_null(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.mnt_ns, 0);
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "unhinted", 3000));
	freewatch(w);
}

/* containerd: the task dir and the runc state its shim keeps are one container */
Test(ctrwatch, containerd_task_and_runc_state_dedup)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *task = tp("%s/k8s.io/abc123", rp[2]);
	char *j = tp("{\"hostname\":\"abc\",\"annotations\":{%s}}", CRI_ANN);
	char *pid = tp("%d\n", p);
	const struct rec *r;

	mkdirs(task);
	mkdirs(rp[3]);
	write_file(tp("%s/config.json", task), j);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	wait_rec(w, &sink, 0xdead, "-", 100);
	cr_assert_eq(sink.n, 0, "no pid yet: nothing to emit");
	mk_runc(tp("%s/k8s.io", rp[3]), "abc123", p, task, NULL);
	write_file(tp("%s/init.pid", task), pid);
	r = wait_rec(w, &sink, KL_CTR_START, "abc123", 3000);
	cr_assert(r, "log:\n%s", sink.log);
	wait_rec(w, &sink, 0xdead, "-", 200);
	cr_assert_eq(count_recs(&sink, KL_CTR_START, "abc123"), 1, "one container, two sources");
	cr_assert_eq(r->c.runtime, KL_RT_CONTAINERD);
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), "containerd/runc");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAMESPACE), "prod");
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), task);
	cr_assert_eq(r->c.init_pid, (uint32_t)p);
	/* the runc state goes first (task delete), then the bundle: one STOP, at the end */
	rmtree(tp("%s/k8s.io/abc123", rp[3]));
	wait_rec(w, &sink, 0xdead, "-", 200);
	cr_assert_eq(count_recs(&sink, KL_CTR_STOP, "abc123"), 0);
	rmtree(task);
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, "abc123", 3000));
	freewatch(w);
}

Test(ctrwatch, containerd_init_pid_garbage)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *task = tp("%s/default/g1", rp[2]);
	const struct rec *r;

	mkdirs(task);
	write_file(tp("%s/config.json", task), "{}");
	write_file(tp("%s/init.pid", task), "12ab");
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = wait_rec(w, &sink, KL_CTR_START, "g1", 3000);
	cr_assert(r, "a task with a garbage init.pid is still reported after the timeout");
	cr_assert_eq(r->c.init_pid, 0);
	cr_assert(strstr(sink.log, "init.pid: not a pid"), "log:\n%s", sink.log);
	(void)p;
	freewatch(w);
}

Test(ctrwatch, crun_status_and_config_copy)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *d = tp("%s/cr1", rp[1]), *j;
	const struct rec *r;

	mkdirs(d);
	/* crun keeps its own copy of config.json: the bundle need not exist */
	write_file(tp("%s/config.json", d), "{\"annotations\":{\"io.kubernetes.cri.container-name\":\"cw\"}}");
	j = tp("{\"pid\":%d,\"process-start-time\":%llu,\"cgroup-path\":\"/cr1\","
		      "\"bundle\":\"/nonexistent/b\",\"rootfs\":\"rootfs\"}", p, proc_start(p));
	write_file(tp("%s/status", d), j);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "cr1");
	cr_assert(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.runtime, KL_RT_CRUN);
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), "crun");
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "cw");
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), "/nonexistent/b");
	freewatch(w);
}

Test(ctrwatch, docker_moby_config_v2)
{
	pid_t p = spawn_kid();
	char *droot = tp("%s/docker", tmpdir);
	struct kl_ctrwatch *w = mkwatch(droot);
	char *task = tp("%s/moby/d0c", rp[2]), *cfg = tp("%s/containers/d0c", droot);
	const struct rec *r;

	mkdirs(task);
	mkdirs(cfg);
	write_file(tp("%s/config.json", task), "{\"hostname\":\"d0c\"}");
	write_file(tp("%s/init.pid", task), tp("%d", p));
	write_file(tp("%s/config.v2.json", cfg),
		   "{\"Name\":\"/shop-web-1\",\"Config\":{\"Image\":\"nginx:1.25\",\"Labels\":"
		   "{\"com.docker.compose.project\":\"shop\",\"com.docker.compose.service\":\"web\"}}}");
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "d0c");
	cr_assert(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.runtime, KL_RT_DOCKER);
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "shop-web-1");
	cr_assert_str_eq(rec_str(r, KL_F_IMAGE), "nginx:1.25");
	cr_assert(rec_has_kv(r, KL_F_LABELS, "com.docker.compose.project=shop"));
	cr_assert(rec_has_kv(r, KL_F_LABELS, "com.docker.compose.service=web"));
	freewatch(w);
}

Test(ctrwatch, crio_annotations)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = mk_bundle("crio",
		"\"io.kubernetes.cri-o.ContainerType\":\"container\","
		"\"io.kubernetes.cri-o.SandboxID\":\"sbx\","
		"\"io.kubernetes.cri-o.ImageName\":\"quay.io/x/y:1\","
		"\"io.kubernetes.cri-o.Labels\":\"{\\\"io.kubernetes.pod.name\\\":\\\"p1\\\","
		"\\\"io.kubernetes.pod.namespace\\\":\\\"ns1\\\",\\\"io.kubernetes.pod.uid\\\":\\\"u1\\\","
		"\\\"io.kubernetes.container.name\\\":\\\"c1\\\"}\"");
	const struct rec *r;

	mk_runc(rp[0], "crio1", p, b, NULL);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "crio1");
	cr_assert(r, "log:\n%s", sink.log);
	cr_assert_eq(r->c.runtime, KL_RT_CRIO);
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), "cri-o/runc");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "p1");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAMESPACE), "ns1");
	cr_assert_str_eq(rec_str(r, KL_F_POD_UID), "u1");
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "c1");
	cr_assert_str_eq(rec_str(r, KL_F_SANDBOX_ID), "sbx");
	cr_assert_str_eq(rec_str(r, KL_F_IMAGE), "quay.io/x/y:1");
	cr_assert(rec_has_kv(r, KL_F_LABELS, "io.kubernetes.pod.name=p1"));
	freewatch(w);
}

/* A FIFO, a directory and garbage where state files belong: nothing
 * blocks, nothing crashes, each is logged. */
Test(ctrwatch, hostile_files_do_not_block)
{
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *d1 = tp("%s/fifo", rp[0]), *d2 = tp("%s/dir", rp[0]);
	char *d3 = tp("%s/bin", rp[0]), *f;
	int fd;

	mkdirs(d1);
	mkdirs(d2);
	mkdirs(d3);
	f = tp("%s/state.json", d1);
	cr_assert_eq(mkfifo(f, 0600), 0);
	f = tp("%s/state.json", d2);
	mkdirs(f);
	f = tp("%s/state.json", d3);
	fd = open(f, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(write(fd, "\0\xff{[\"", 6), 6);
	close(fd);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	wait_rec(w, &sink, 0xdead, "-", 600);
	cr_assert(strstr(sink.log, "fifo/state.json: not a regular file"), "log:\n%s", sink.log);
	cr_assert(strstr(sink.log, "bin/state.json: malformed JSON"), "log:\n%s", sink.log);
	freewatch(w);
}

/* Many containers at once and a burst that overflows nothing. */
Test(ctrwatch, many_containers)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = mk_bundle("many", CRI_ANN);
	struct kl_ctrwatch_stats st;

	mkdirs(rp[0]);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	for (int i = 0; i < 100; i++) {
		char id[32];

		snprintf(id, sizeof(id), "m%03d", i);
		mk_runc(rp[0], id, p, b, NULL);
	}
	cr_assert(wait_rec(w, &sink, KL_CTR_START, "m099", 5000));
	wait_rec(w, &sink, 0xdead, "-", 200);
	kl_ctrwatch_get_stats(w, &st);
	cr_assert_eq(st.running, 100, "running %u; log:\n%s", st.running, sink.log);
	cr_assert_eq(sink.n, 100);
	reap_kid(p);
	wait_rec(w, &sink, 0xdead, "-", 300);
	kl_ctrwatch_get_stats(w, &st);
	cr_assert_eq(st.running, 0);
	cr_assert_eq(st.stopped, 100);
	freewatch(w);
}

Test(ctrwatch, truncated_tail_is_flagged)
{
	pid_t p = spawn_kid();
	char big[3000];
	char *ann, *b;
	struct kl_ctrwatch_opts o = { .sz = sizeof(o), .nroots = 1, .docker_root = "",
				      .max_record = 1024, .log = sink_log, .log_ctx = &sink };
	struct kl_ctrwatch_root r1;
	struct kl_ctrwatch *w;
	const struct rec *r;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ann = tp("%s,\"zz.big\":\"%s\"", CRI_ANN, big);
	b = mk_bundle("big", ann);
	r1 = (struct kl_ctrwatch_root){ tp("%s/r", tmpdir), KL_CTRW_OCI_STATE, 1, KL_RT_RUNC };
	o.roots = &r1;
	mk_runc(r1.path, "big1", p, b, NULL);
	cr_assert_eq(kl_ctrwatch_new(&o, &w), 0);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "big1");
	cr_assert(r);
	cr_assert_leq(r->len, 1024);
	cr_assert(r->c.ev.flags & KL_EV_TRUNCATED);
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4");
	kl_ctrwatch_free(w);
}

/*
 * Random garbage and random cuts of valid files in every place a runtime
 * writes: must never crash, hang or leak (run under ASan/UBSan too).
 */
Test(ctrwatch, random_garbage_never_crashes)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *valid_state = tp("{\"id\":\"x\",\"init_process_pid\":%d,\"init_process_start\":%llu,"
			       "\"config\":{\"labels\":[\"io.kubernetes.cri.sandbox-name=p\",\"bundle=%s/bundles/r\"]},"
			       "\"cgroup_paths\":{\"\":\"/sys/fs/cgroup/unified/x\"}}", p, proc_start(p), tmpdir);
	char *valid_cfg = tp("{\"hostname\":\"h\",\"annotations\":{%s},\"linux\":{\"cgroupsPath\":\"/a\"}}", CRI_ANN);
	char *valid_status = tp("{\"pid\":%d,\"process-start-time\":%llu,\"bundle\":\"%s/bundles/r\","
				"\"cgroup-path\":\"/r\"}", p, proc_start(p), tmpdir);
	unsigned seed = 12345;

	mkdirs(tp("%s/bundles/r", tmpdir));
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	for (int i = 0; i < 120; i++) {
		const char *valid;
		char *dir, *file, buf[600];
		size_t vl, cut;
		int kind = rand_r(&seed) % 4;

		switch (kind) {
		case 0: dir = tp("%s/g%d", rp[0], i); file = tp("%s/state.json", dir); valid = valid_state; break;
		case 1: dir = tp("%s/g%d", rp[1], i); file = tp("%s/status", dir); valid = valid_status; break;
		case 2: dir = tp("%s/ns%d/g%d", rp[2], i % 3, i); file = tp("%s/init.pid", dir); valid = "12345678901234567890"; break;
		default: dir = tp("%s/bundles/r", tmpdir); file = tp("%s/config.json", dir); valid = valid_cfg; break;
		}
		vl = strlen(valid);
		cut = (size_t)rand_r(&seed) % (vl + 1);
		if (cut >= sizeof(buf))
			cut = sizeof(buf) - 1;
		memcpy(buf, valid, cut);
		/* flip a few bytes in what is kept */
		for (int k = 0; cut && k < rand_r(&seed) % 4; k++)
			buf[rand_r(&seed) % cut] = (char)(rand_r(&seed) % 256);
		buf[cut] = 0;
		mkdirs(dir);
		{
			FILE *f = fopen(file, "w");

			cr_assert(f);
			fwrite(buf, 1, cut, f);
			fclose(f);
		}
		if (kind == 2)
			write_file(tp("%s/config.json", dir), i % 2 ? valid_cfg : "[1,2");
		if (i % 7 == 0)
			rmtree(dir);
		if (i % 10 == 0)
			wait_rec(w, &sink, 0xdead, "-", 20);
	}
	/* let pending ones time out and be emitted with what is known */
	wait_rec(w, &sink, 0xdead, "-", 800);
	rmtree(tp("%s/run", tmpdir));
	wait_rec(w, &sink, 0xdead, "-", 300);
	{
		struct kl_ctrwatch_stats st;

		kl_ctrwatch_get_stats(w, &st);
		cr_assert_eq(st.running, 0, "everything went away, %u still running", st.running);
		cr_assert_eq(st.started, st.stopped);
		/* only the ancestor watch remains (shared by all five roots) */
		cr_assert_eq(st.watches, 1, "watches %u", st.watches);
	}
	freewatch(w);
}

/* What klrec and the exporter print: the shared JSON encoder reads it. */
Test(ctrwatch, record_renders_as_json)
{
	pid_t p = spawn_kid();
	struct kl_ctrwatch *w = mkwatch(NULL);
	char *b = mk_bundle("js", CRI_ANN);
	struct kl_buf out = { 0 };
	const struct rec *r;
	json_error_t je;
	json_t *j;

	mk_runc(rp[0], "js1", p, b, NULL);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, "js1");
	cr_assert(r);
	kl_rec_to_json(&out, KL_REC_CONTAINER, r->bytes, r->len, UINT64_MAX);
	cr_assert_not(out.oom);
	j = json_loadb(out.p, out.len, 0, &je);
	cr_assert(j, "not JSON: %s: %.*s", je.text, (int)out.len, out.p);
	cr_assert_str_eq(json_string_value(json_object_get(j, "container_id")), "js1");
	cr_assert_str_eq(json_string_value(json_object_get(j, "pod_name")), "shop-7d4");
	cr_assert_eq(json_integer_value(json_object_get(j, "init_pid")), p);
	json_decref(j);
	kl_buf_free(&out);
	freewatch(w);
}
