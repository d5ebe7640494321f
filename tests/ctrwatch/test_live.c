/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live tests: real runc, crun and containerd containers from a
 * busybox-static rootfs, watched through the runtimes' real state dirs.
 * Needs root. A missing runtime skips its test, or fails it when
 * KLOUDLENS_REQUIRE_LIVE=1. Containers, the private containerd daemon and
 * temp dirs are removed in .fini, so a failed assertion leaves nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <kloudlens/recutil.h>

#include "common.h"

static char tmpdir[256];
static char ctr_id[64];
static struct sink sink;
static struct kl_ctrwatch *w;
static const char *rt_bin;      /* runc or crun, for cleanup */
static pid_t ctrd_pid;          /* private containerd, for cleanup */
static char ctrd_ns[64];

static bool have(const char *bin)
{
	return sh("command -v %s >/dev/null 2>&1", bin) == 0;
}

/* Skip, or fail under KLOUDLENS_REQUIRE_LIVE=1, when we cannot run. */
static void require(const char *bin)
{
	const char *req = getenv("KLOUDLENS_REQUIRE_LIVE");
	bool must = req && !strcmp(req, "1");
	const char *why = NULL;

	if (geteuid() != 0)
		why = "not root";
	else if (bin && !have(bin))
		why = "runtime not installed";
	if (!why && bin && !have("busybox"))
		why = "busybox not installed";
	if (!why)
		return;
	/* a skip does not run .fini: leave no temp dir behind */
	rmtree(tmpdir);
	if (must)
		cr_assert_fail("%s: %s (KLOUDLENS_REQUIRE_LIVE=1)", bin ? bin : "live", why);
	cr_skip_test("%s: %s", bin ? bin : "live", why);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ctrwatch-live-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	snprintf(ctr_id, sizeof(ctr_id), "klctrw-%d", getpid());
	memset(&sink, 0, sizeof(sink));
	w = NULL;
	rt_bin = NULL;
	ctrd_pid = 0;
	snprintf(ctrd_ns, sizeof(ctrd_ns), "klctrw-%d", getpid());
}

static void stop_containerd(void)
{
	char *a = tp("--address %s/ctrd.sock -n %s", tmpdir, ctrd_ns);

	sh("ctr %s task kill -s KILL %s >/dev/null 2>&1", a, ctr_id);
	for (int i = 0; i < 20 && sh("ctr %s task rm %s >/dev/null 2>&1", a, ctr_id) != 0 &&
			sh("ctr %s task ls -q 2>/dev/null | grep -qx %s", a, ctr_id) == 0; i++)
		usleep(100000);
	sh("ctr %s container rm %s >/dev/null 2>&1", a, ctr_id);
	kill(ctrd_pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(ctrd_pid, NULL, WNOHANG) == ctrd_pid)
			goto done;
		usleep(100000);
	}
	kill(ctrd_pid, SIGKILL);
	waitpid(ctrd_pid, NULL, 0);
done:
	/* whatever containerd left mounted under the temp dir (snapshots) */
	sh("grep -o ' %s[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null", tmpdir);
	/* the shim's runc root for our namespace, empty once the task is gone */
	sh("rmdir /run/containerd/runc/%s 2>/dev/null", ctrd_ns);
	ctrd_pid = 0;
}

static void teardown(void)
{
	if (rt_bin)
		sh("%s delete -f %s >/dev/null 2>&1", rt_bin, ctr_id);
	if (ctrd_pid > 0)
		stop_containerd();
	kl_ctrwatch_free(w);
	sink_reset(&sink);
	rmtree(tmpdir);
	arena_free();
}

TestSuite(ctrwatch_live, .init = setup, .fini = teardown, .timeout = 90);

static const char *const ANN[][2] = {
	{ "io.kubernetes.cri.container-name", "web" },
	{ "io.kubernetes.cri.sandbox-name", "shop-7d4-live" },
	{ "io.kubernetes.cri.sandbox-namespace", "prod" },
	{ "io.kubernetes.cri.sandbox-uid", "0b5c-uid" },
	{ "io.kubernetes.cri.image-name", "docker.io/library/busybox:1.35" },
	{ "io.kubernetes.cri.container-type", "container" },
};

/* A busybox-static bundle whose config.json runs `sleep 60` with the CRI
 * annotations above. */
static char *mk_bundle(void)
{
	char *b = tp("%s/bundle", tmpdir), *cfgp = tp("%s/config.json", b);
	json_t *cfg, *proc, *ann;
	json_error_t je;

	mkdirs(tp("%s/rootfs/bin", b));
	for (const char *const *d = (const char *const[]){ "proc", "dev", "sys", "tmp", "etc", NULL }; *d; d++)
		mkdirs(tp("%s/rootfs/%s", b, *d));
	cr_assert_eq(sh("cp /bin/busybox %s/rootfs/bin/busybox", b), 0);
	cr_assert_eq(sh("for a in sh sleep; do ln -s busybox %s/rootfs/bin/$a; done", b), 0);
	cr_assert_eq(sh("cd %s && { runc spec 2>/dev/null || crun spec; } >/dev/null", b), 0);
	cfg = json_load_file(cfgp, 0, &je);
	cr_assert(cfg, "spec: %s", je.text);
	proc = json_object_get(cfg, "process");
	json_object_set_new(proc, "terminal", json_false());
	json_object_set_new(proc, "args", json_pack("[sss]", "/bin/sleep", "60", ""));
	json_array_remove(json_object_get(proc, "args"), 2);
	json_object_set_new(json_object_get(cfg, "root"), "readonly", json_false());
	ann = json_object();
	for (size_t i = 0; i < sizeof(ANN) / sizeof(ANN[0]); i++)
		json_object_set_new(ann, ANN[i][0], json_string(ANN[i][1]));
	json_object_set_new(cfg, "annotations", ann);
	cr_assert_eq(json_dump_file(cfg, cfgp, 0), 0);
	json_decref(cfg);
	return b;
}

static const char *cgroup2_mount(void)
{
	static char mnt[256];
	char dev[64], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	cr_assert(f);
	while (fscanf(f, "%63s %255s %63s %*[^\n]", dev, mnt, type) == 3)
		if (!strcmp(type, "cgroup2")) {
			fclose(f);
			return mnt;
		}
	fclose(f);
	cr_assert_fail("no cgroup2 mount");
	return NULL;
}

static struct kl_ctrwatch *mkwatch(const struct kl_ctrwatch_root *roots, size_t n)
{
	struct kl_ctrwatch_opts o = {
		.sz = sizeof(o), .roots = roots, .nroots = n,
		.liveness_interval_ns = 100000000ull,
		.log = sink_log, .log_ctx = &sink,
	};
	struct kl_ctrwatch *x = NULL;

	cr_assert_eq(kl_ctrwatch_new(&o, &x), 0);
	return x;
}

/* Assert what START/SNAPSHOT must say about a live container. */
static void check_live(const struct rec *r, uint32_t runtime, bool image_annotated)
{
	char path[128], line[512], *cg = NULL;
	uint32_t pid = r->c.init_pid;
	struct stat st;
	FILE *f;

	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_ID), ctr_id);
	cr_assert_eq(r->c.runtime, runtime, "runtime %u", r->c.runtime);
	cr_assert_str_eq(rec_str(r, KL_F_CONTAINER_NAME), "web");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4-live");
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAMESPACE), "prod");
	cr_assert_str_eq(rec_str(r, KL_F_POD_UID), "0b5c-uid");
	if (image_annotated)
		cr_assert_str_eq(rec_str(r, KL_F_IMAGE), "docker.io/library/busybox:1.35");
	cr_assert_gt(pid, 0);
	cr_assert_eq(r->c.ev.pid, pid);
	/* the init pid is the container's pid 1 */
	cr_assert_eq(r->c.ev.ns_pid, 1, "ns_pid %u", r->c.ev.ns_pid);
	/* runc writes its state before the init execs the workload */
	cr_assert(!strcmp(r->c.ev.comm, "sleep") || !strncmp(r->c.ev.comm, "runc:", 5) ||
		  !strncmp(r->c.ev.comm, "crun", 4), "comm %s", r->c.ev.comm);
	snprintf(path, sizeof(path), "/proc/%u/ns/mnt", pid);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(r->c.mnt_ns, (uint32_t)st.st_ino);
	cr_assert_eq(r->c.ev.mnt_ns, (uint32_t)st.st_ino);
	snprintf(path, sizeof(path), "/proc/%u/ns/pid", pid);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(r->c.pid_ns, (uint32_t)st.st_ino);
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			cg = tp("%s", line + 3);
		}
	fclose(f);
	cr_assert(cg);
	cr_assert_str_eq(rec_str(r, KL_F_CGROUP_PATH), cg);
	if (strcmp(cg, "/")) {
		cr_assert_eq(stat(tp("%s%s", cgroup2_mount(), cg), &st), 0);
		cr_assert_eq(r->c.ev.cgroup_id, (uint64_t)st.st_ino, "cgroup id %llu, inode %llu",
			     (unsigned long long)r->c.ev.cgroup_id, (unsigned long long)st.st_ino);
	} else {
		cr_assert_eq(r->c.ev.cgroup_id, 0, "a container at the cgroup2 root gets no id");
	}
}

/* runc/crun: START with every field, then STOP when the init dies. */
static void oci_start_stop(const char *bin, uint32_t rt)
{
	char *b;
	const struct rec *r;

	require(bin);
	b = mk_bundle();
	w = mkwatch(NULL, 0);   /* the real default roots */
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	cr_assert_null(find_rec(&sink, KL_CTR_SNAPSHOT, ctr_id));
	rt_bin = bin;
	cr_assert_eq(sh("cd %s && %s run -d %s </dev/null >/dev/null 2>%s/run.err", b, bin, ctr_id, tmpdir), 0,
		     "%s run failed", bin);
	r = wait_rec(w, &sink, KL_CTR_START, ctr_id, 10000);
	cr_assert(r, "no START from %s; log:\n%s", bin, sink.log);
	check_live(r, rt, true);
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), bin);
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), b);
	cr_assert_eq(count_recs(&sink, KL_CTR_START, ctr_id), 1);
	cr_assert_eq(sh("%s kill %s KILL", bin, ctr_id), 0);
	r = wait_rec(w, &sink, KL_CTR_STOP, ctr_id, 10000);
	cr_assert(r, "no STOP after the container exited; log:\n%s", sink.log);
	cr_assert_str_eq(rec_str(r, KL_F_POD_NAME), "shop-7d4-live");
	sh("%s delete -f %s >/dev/null 2>&1", bin, ctr_id);
	wait_rec(w, &sink, 0xdead, "-", 300);
	cr_assert_eq(count_recs(&sink, KL_CTR_STOP, ctr_id), 1, "one STOP only");
}

Test(ctrwatch_live, runc_start_stop)
{
	oci_start_stop("runc", KL_RT_RUNC);
}

Test(ctrwatch_live, crun_start_stop)
{
	/* crun refuses the hybrid layout while hugetlb sits on cgroup2 (MACHINE.md) */
	if (geteuid() == 0 && have("crun") && access("/sys/fs/cgroup/hugetlb/cgroup.procs", F_OK) < 0)
		sh("mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb"
		   " 2>/dev/null");
	oci_start_stop("crun", KL_RT_CRUN);
}

/* A container running before the watcher exists is in the snapshot. */
Test(ctrwatch_live, runc_before_watcher_in_snapshot)
{
	const struct rec *r;
	char *b;

	require("runc");
	b = mk_bundle();
	rt_bin = "runc";
	cr_assert_eq(sh("cd %s && runc run -d %s </dev/null >/dev/null 2>%s/run.err", b, ctr_id, tmpdir), 0);
	w = mkwatch(NULL, 0);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);
	r = find_rec(&sink, KL_CTR_SNAPSHOT, ctr_id);
	cr_assert(r, "not in the snapshot; log:\n%s", sink.log);
	cr_assert(r->c.ev.flags & KL_EV_BOOTSTRAP);
	check_live(r, KL_RT_RUNC, true);
	/* delete -f kills and removes the state dir: STOP either way */
	cr_assert_eq(sh("runc delete -f %s", ctr_id), 0);
	cr_assert(wait_rec(w, &sink, KL_CTR_STOP, ctr_id, 10000), "no STOP; log:\n%s", sink.log);
	cr_assert_null(find_rec(&sink, KL_CTR_START, ctr_id));
}

/* containerd: a private daemon (own socket, root and state dir under the
 * temp dir), an image imported from a tarball, `ctr run -d`. */
Test(ctrwatch_live, containerd_ctr_run)
{
	const char *mkimg = getenv("KLOUDLENS_CTRWATCH_MKIMAGE");
	struct kl_ctrwatch_root roots[2];
	char *a, *cfg, *taskroot;
	const struct rec *r;
	FILE *f;

	require("containerd");
	require("ctr");
	if (!mkimg && getenv("KLOUDLENS_SOURCE_ROOT"))
		mkimg = tp("%s/tests/ctrwatch/mk-busybox-oci.sh", getenv("KLOUDLENS_SOURCE_ROOT"));
	if (!mkimg)
		mkimg = "tests/ctrwatch/mk-busybox-oci.sh";
	cfg = tp("%s/config.toml", tmpdir);
	f = fopen(cfg, "w");
	cr_assert(f);
	/* CRI is not needed and would want CNI; runc's own root stays the
	 * default /run/containerd/runc/<ns>, the namespace is ours alone */
	fprintf(f, "version = 2\nroot = \"%s/root\"\nstate = \"%s/state\"\n"
		"disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
		"[grpc]\n  address = \"%s/ctrd.sock\"\n[ttrpc]\n  address = \"%s/ctrd.sock.ttrpc\"\n",
		tmpdir, tmpdir, tmpdir, tmpdir);
	fclose(f);
	taskroot = tp("%s/state/io.containerd.runtime.v2.task", tmpdir);
	roots[0] = (struct kl_ctrwatch_root){ taskroot, KL_CTRW_TASK, 2, KL_RT_CONTAINERD };
	roots[1] = (struct kl_ctrwatch_root){ "/run/containerd/runc", KL_CTRW_OCI_STATE, 2, KL_RT_CONTAINERD };
	/* watcher first: the state dir does not exist until the daemon runs */
	w = mkwatch(roots, 2);
	cr_assert_eq(kl_ctrwatch_snapshot(w, sink_emit, &sink), 0);

	ctrd_pid = fork();
	cr_assert_geq(ctrd_pid, 0);
	if (ctrd_pid == 0) {
		char *log = tp("%s/containerd.log", tmpdir);

		if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
			_exit(126);
		execlp("containerd", "containerd", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	a = tp("--address %s/ctrd.sock -n %s", tmpdir, ctrd_ns);
	for (int i = 0; i < 100 && sh("ctr %s version >/dev/null 2>&1", a) != 0; i++)
		usleep(100000);
	cr_assert_eq(sh("sh %s %s/bb.tar localhost/bb:latest >/dev/null", mkimg, tmpdir), 0);
	cr_assert_eq(sh("ctr %s image import %s/bb.tar >/dev/null", a, tmpdir), 0);
	cr_assert_eq(sh("ctr %s run -d"
			" --annotation io.kubernetes.cri.container-name=web"
			" --annotation io.kubernetes.cri.sandbox-name=shop-7d4-live"
			" --annotation io.kubernetes.cri.sandbox-namespace=prod"
			" --annotation io.kubernetes.cri.sandbox-uid=0b5c-uid"
			" --label com.docker.compose.service=api"
			" localhost/bb:latest %s /bin/sleep 60 >/dev/null", a, ctr_id), 0);
	r = wait_rec(w, &sink, KL_CTR_START, ctr_id, 10000);
	cr_assert(r, "no START for the containerd task; log:\n%s", sink.log);
	/* plain ctr run puts no image name in the bundle (docs/containers.md) */
	check_live(r, KL_RT_CONTAINERD, false);
	cr_assert_null(rec_str(r, KL_F_IMAGE));
	cr_assert_str_eq(rec_str(r, KL_F_RUNTIME), "containerd/runc");
	cr_assert_str_eq(rec_str(r, KL_F_BUNDLE), tp("%s/%s/%s", taskroot, ctrd_ns, ctr_id));
	cr_assert(rec_has_kv(r, KL_F_LABELS, tp("kloudlens.io/containerd-namespace=%s", ctrd_ns)));
	cr_assert(rec_has_kv(r, KL_F_LABELS, "com.docker.compose.service=api"));
	cr_assert_str_eq(rec_str(r, KL_F_CGROUP_PATH), tp("/%s/%s", ctrd_ns, ctr_id));
	wait_rec(w, &sink, 0xdead, "-", 300);
	cr_assert_eq(count_recs(&sink, KL_CTR_START, ctr_id), 1, "task dir + runc state = one container");

	cr_assert_eq(sh("ctr %s task kill -s KILL %s", a, ctr_id), 0);
	r = wait_rec(w, &sink, KL_CTR_STOP, ctr_id, 10000);
	cr_assert(r, "no STOP after the task was killed; log:\n%s", sink.log);
	stop_containerd();
	wait_rec(w, &sink, 0xdead, "-", 300);
	cr_assert_eq(count_recs(&sink, KL_CTR_STOP, ctr_id), 1);
}
