/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live: kl-collector + kl-enricher, a real runc container with the
 * Kubernetes CRI annotations, and the enriched events of a command run
 * inside it must carry the container id, pod, namespace, container name,
 * image, the exe, and the path behind every fd; then the stop record.
 * With KLOUDLENS_REQUIRE_LIVE=1 a missing runc or BPF fails the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
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

static char dir[128], ctr_id[64];
static pid_t collector = -1, enricher = -1;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-enr-live.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);   /* the enricher runs unprivileged and maps rings here */
	snprintf(ctr_id, sizeof(ctr_id), "kl-enr-live-%d", (int)getpid());
}

static void teardown(void)
{
	lt_sh("runc delete -f %s >/dev/null 2>&1", ctr_id);
	lt_stop(&enricher, SIGTERM);
	lt_stop(&collector, SIGTERM);
	lt_sh("rm -rf '%s'", dir);
}

TestSuite(enricher_live, .init = setup, .fini = teardown, .timeout = 120);

static bool live_required(void)
{
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	return v && *v && strcmp(v, "0") != 0;
}

static const char *bin(const char *rel)
{
	static char p[2][512];
	static int i;
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");
	i ^= 1;
	snprintf(p[i], sizeof(p[i]), "%s/%s", b ? b : "build", rel);
	return p[i];
}

static bool field_is(const struct shm_rec *r, uint16_t id, const char *want)
{
	struct kl_field_view f;
	if (!kl_field_find(r->type, r->data, r->len, id, &f))
		return false;
	return strlen(want) == strnlen((const char *)f.data, f.len) && !memcmp(f.data, want, strlen(want));
}

/* kl-collector and kl-enricher on a private rings dir; a consumer on `enriched`. */
static struct shm_consumer *start_pipeline(struct shm_ring **en)
{
	char rings[200], ready[200];

	if (geteuid() != 0 || lt_sh("command -v runc >/dev/null") != 0) {
		if (live_required())
			cr_assert_fail("live test needs root and runc");
		cr_skip_test("needs root and runc");
	}
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);

	char *cargv[] = { (char *)bin("collector/kl-collector"), "--dir", rings, "--capacity", "16777216",
			  "--ready", ready, NULL };
	collector = lt_spawn(cargv);
	for (int i = 0; i < 300 && access(ready, F_OK) != 0; i++) {
		cr_assert_eq(waitpid(collector, NULL, WNOHANG), 0, "kl-collector exited before attaching");
		usleep(50000);
	}
	cr_assert_eq(access(ready, F_OK), 0, "kl-collector did not attach within 15 s");
	char *eargv[] = { (char *)bin("enricher/kl-enricher"), "--dir", rings, "--capacity", "16777216",
			  "--wait", "10", NULL };
	enricher = lt_spawn(eargv);
	*en = NULL;
	for (int i = 0; i < 200 && shm_ring_open(rings, "enriched", en); i++)
		usleep(50000);
	cr_assert_not_null(*en, "kl-enricher did not create the enriched ring");
	struct shm_consumer *c;
	cr_assert_eq(shm_consumer_attach(*en, "live-test", SHM_REQUIRED, &c), 0);
	return c;
}

/* A busybox-static bundle with the CRI annotations kubelet would set,
 * running `cat /etc/hostname > /tmp/copy; exit 3`. */
static void make_bundle(const char *bundle, const char *pod)
{
	cr_assert_eq(lt_sh("set -e; B=%s; mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys "
			"$B/rootfs/tmp $B/rootfs/etc; cp /bin/busybox $B/rootfs/bin/; "
			"for a in sh cat echo; do ln -s busybox $B/rootfs/bin/$a; done; "
			"echo kl-live-host > $B/rootfs/etc/hostname; cd $B; runc spec; "
			"jq '.process.terminal=false | .root.readonly=false "
			"| .process.args=[\"/bin/sh\",\"-c\",\"cat /etc/hostname > /tmp/copy; exit 3\"] "
			"| .annotations={\"io.kubernetes.cri.container-name\":\"web\","
			"\"io.kubernetes.cri.sandbox-name\":\"%s\","
			"\"io.kubernetes.cri.sandbox-namespace\":\"prod\","
			"\"io.kubernetes.cri.sandbox-uid\":\"0b5c-uid\","
			"\"io.kubernetes.cri.image-name\":\"docker.io/library/busybox:1.35\","
			"\"io.kubernetes.cri.container-type\":\"container\"}' config.json > c.json; mv c.json config.json",
			bundle, pod), 0);
}

struct seen {
	bool start, open_ok, read_ok, write_ok, stop_seen;
	uint32_t start_pid_ns;
};

/* Read `enriched` until cat's open, read and write and the container's
 * START and STOP were all seen, or 20 s. Every event of the container
 * must carry the pod's identity. */
static void watch_container(struct shm_consumer *c, const char *pod, struct seen *s)
{
	uint64_t deadline = kl_now_mono_ns() + 20ull * 1000000000ull;
	struct shm_rec recs[256];

	memset(s, 0, sizeof(*s));
	while (kl_now_mono_ns() < deadline && !(s->start && s->open_ok && s->read_ok && s->write_ok && s->stop_seen)) {
		int n = shm_consumer_poll(c, recs, 256, 200);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			const struct shm_rec *r = &recs[i];
			struct kl_enriched e;
			uint16_t rt;
			const void *raw;
			size_t rl;
			if (r->type != KL_REC_ENRICHED || kl_rec_validate(r->type, r->data, r->len) ||
			    kl_enriched_raw(r->data, r->len, &rt, &raw, &rl))
				continue;
			memcpy(&e, r->data, sizeof(e));
			if (rt == KL_REC_CONTAINER) {
				struct kl_container kc;
				memcpy(&kc, raw, sizeof(kc));
				if (!field_is(r, KL_F_CONTAINER_ID, ctr_id))
					continue;
				if (kc.kind == KL_CTR_START || kc.kind == KL_CTR_SNAPSHOT) {
					s->start = true;
					s->start_pid_ns = kc.pid_ns;
				}
				if (kc.kind == KL_CTR_STOP)
					s->stop_seen = true;
				continue;
			}
			if (rt != KL_REC_SYSCALL || !field_is(r, KL_F_CONTAINER_ID, ctr_id))
				continue;
			cr_assert(field_is(r, KL_F_POD_NAME, pod));
			cr_assert(field_is(r, KL_F_POD_NAMESPACE, "prod"));
			cr_assert(field_is(r, KL_F_CONTAINER_NAME, "web"));
			cr_assert(field_is(r, KL_F_IMAGE, "docker.io/library/busybox:1.35"));
			struct kl_syscall sc;
			memcpy(&sc, raw, sizeof(sc));
			if (!strncmp(e.ev.comm, "cat", 3)) {
				if ((sc.nr == 257 || sc.nr == 2) && sc.ret >= 0 && field_is(r, KL_F_ABS_PATH, "/etc/hostname"))
					s->open_ok = true;
				/* busybox cat copies with sendfile(out, in) where it can */
				bool rd = (sc.nr == 0 && field_is(r, KL_F_FD_PATH, "/etc/hostname")) ||
					  (sc.nr == 40 && field_is(r, KL_F_FD_PATH2, "/etc/hostname"));
				bool wr = (sc.nr == 1 || sc.nr == 40) && field_is(r, KL_F_FD_PATH, "/tmp/copy");
				if (rd && sc.ret > 0) {
					/* busybox's shell runs applets by exec of /proc/self/exe, and
					 * the collector reports the exec'd filename (docs/events.md) */
					struct kl_field_view xf;
					cr_assert(kl_field_find(r->type, r->data, r->len, KL_F_EXE, &xf) && xf.len > 0,
						  "no exe for cat in the container");
					cr_assert(kl_field_find(r->type, r->data, r->len, KL_F_ARGV, &xf) &&
						  xf.len >= 3 && !memcmp(xf.data, "cat", 3), "argv of cat");
					s->read_ok = true;
				}
				if (wr && sc.ret > 0)
					s->write_ok = true;
			}
		}
		shm_consumer_release(c);
	}
}

static void assert_seen(const struct seen *s)
{
	cr_assert(s->start, "no container START/SNAPSHOT record for %s", ctr_id);
	cr_assert(s->open_ok, "open of /etc/hostname inside the container not seen with its pod");
	cr_assert(s->read_ok, "read on the fd of /etc/hostname not resolved to its path");
	cr_assert(s->write_ok, "write to the redirected stdout not resolved to /tmp/copy");
	cr_assert(s->stop_seen, "no container STOP record once the container was gone");
}

Test(enricher_live, runc_container_events_carry_pod_and_fd_paths)
{
	char bundle[200];
	struct shm_ring *en;
	struct shm_consumer *c = start_pipeline(&en);
	struct seen s;

	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	make_bundle(bundle, "shop-7d4-live");
	int rc = lt_sh("cd %s && runc run %s </dev/null >/dev/null 2>%s/run.err", bundle, ctr_id, dir);
	cr_assert_eq(rc, 3, "runc run: exit %d (see %s/run.err)", rc, dir);

	watch_container(c, "shop-7d4-live", &s);
	assert_seen(&s);
	shm_consumer_detach(c);
	shm_ring_close(en);
}

/*
 * The collector is stopped while the container is created, runs and
 * exits: by the time it reads the runtime's state the init is gone and
 * /proc has no namespaces to give. CI hit this for real with a fast
 * workload under `runc run` on a loaded node, and the container's events
 * lost their pod. The exec the kernel reported carries the ids, and the
 * container's START must go out before that exec does.
 */
Test(enricher_live, container_gone_before_its_state_is_read_keeps_its_pod)
{
	char bundle[200];
	struct shm_ring *en;
	struct shm_consumer *c = start_pipeline(&en);
	struct seen s;

	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	make_bundle(bundle, "brief-9f2");
	cr_assert_eq(kill(collector, SIGSTOP), 0);
	/* create + start, not run: run deletes the state once the init exits.
	 * Then the v2 cgroup goes too (as `runc run` removes it before the
	 * state), so nothing but the kernel's records can name the ids. */
	int rc = lt_sh("cd %s && runc create %s </dev/null >/dev/null 2>%s/run.err && runc start %s && "
		       "for i in $(seq 200); do [ \"$(runc state %s | jq -r .status)\" = stopped ] && break; "
		       "sleep 0.05; done; [ \"$(runc state %s | jq -r .status)\" = stopped ] && "
		       "cg=$(jq -r '.cgroup_paths[\"\"] // empty' /run/runc/%s/state.json) && "
		       "[ -n \"$cg\" ] && rmdir \"$cg\"", bundle, ctr_id, dir, ctr_id, ctr_id, ctr_id, ctr_id);
	kill(collector, SIGCONT);
	cr_assert_eq(rc, 0, "runc create/start, wait for exit, rmdir cgroup: exit %d (see %s/run.err)", rc, dir);

	watch_container(c, "brief-9f2", &s);
	cr_assert_neq(s.start_pid_ns, 0, "START without the init's pid namespace");
	assert_seen(&s);
	shm_consumer_detach(c);
	shm_ring_close(en);
}
