/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live, as a user runs it: build/supervisor/kloudlens with a private rings
 * dir, state dir and ports.
 *
 * e2e: the standard workload in a real runc container with CRI
 * annotations; `klctl --json stream intents|events` must show its intents
 * and events with the right pod, namespace and container, the intents
 * ring the right image, and /metrics no drops. Then kl-intentd is killed
 * with SIGKILL, a second identical container runs while it is down, the
 * supervisor restarts it, and the second run's intents equal the first's
 * (as a multiset: nothing lost, nothing twice).
 *
 * docker_mode: a HookSubscription dropped into the control-plane
 * directory changes the in-kernel filter within a second (openat of a
 * marker path stops arriving in `raw`), and an invalid file is refused
 * with file:line:column and key in the log while the previous filter
 * stays in force.
 *
 * KLOUDLENS_REQUIRE_LIVE=1: no root/runc/BPF fails instead of skipping.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "../common/livetest.h"

static char dir[128], ctr_a[64], ctr_b[64];
static pid_t sup = -1, subs[3] = { -1, -1, -1 };
static struct shm_ring *obs_ring;
static struct shm_consumer *obs;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-sup-live.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);   /* the stages run unprivileged and map rings here */
	snprintf(ctr_a, sizeof(ctr_a), "kl-sup-e2e-a-%d", (int)getpid());
	snprintf(ctr_b, sizeof(ctr_b), "kl-sup-e2e-b-%d", (int)getpid());
}

/* Every failure path ends here: no daemon, container or klctl survives a test. */
static void teardown(void)
{
	lt_sh("runc delete -f %s >/dev/null 2>&1; runc delete -f %s >/dev/null 2>&1", ctr_a, ctr_b);
	if (obs)
		shm_consumer_detach(obs);
	if (obs_ring)
		shm_ring_close(obs_ring);
	obs = NULL;
	obs_ring = NULL;
	for (int i = 0; i < 3; i++)
		lt_stop(&subs[i], SIGINT);
	lt_stop(&sup, SIGTERM);
	if (!getenv("KL_KEEP_TEST_DIR"))
		lt_sh("rm -rf '%s'", dir);
}

TestSuite(supervisor_live, .init = setup, .fini = teardown, .timeout = 240);

static void need_live(void)
{
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	bool required = v && *v && strcmp(v, "0") != 0;

	if (geteuid() != 0 || lt_sh("command -v runc >/dev/null && command -v jq >/dev/null && command -v curl "
				 ">/dev/null && test -r /sys/kernel/btf/vmlinux") != 0) {
		if (required)
			cr_assert_fail("live test needs root, runc, jq, curl and BTF");
		cr_skip_test("needs root, runc, jq, curl and BTF");
	}
}

/* Private everything: runs beside a live agent on 8180/8181/9090. */
static int port_base(void)
{
	return 21000 + (getpid() % 4000) * 3;
}

static pid_t start_supervisor(const char *mode, const char *extra_stages)
{
	char rings[256], state[256], cpd[256], sub[64], adm[64], met[64], log[256];
	int pb = port_base();

	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(cpd, sizeof(cpd), "%s/cp", dir);
	snprintf(sub, sizeof(sub), "tcp://127.0.0.1:%d", pb);
	snprintf(adm, sizeof(adm), "tcp://127.0.0.1:%d", pb + 1);
	snprintf(met, sizeof(met), "127.0.0.1:%d", pb + 2);
	snprintf(log, sizeof(log), "%s/kloudlens.log", dir);
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0) {
		/* a test killed by its timeout must not leave a pipeline behind (one that
		 * outlived a timed-out run loaded every later live test) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		dup2(fd, 1);
		execl(lt_bpath("supervisor/kloudlens"), "kloudlens", "--mode", mode, "--rings-dir", rings, "--state-dir",
		      state, "--control-plane-dir", cpd, "--subscribe", sub, "--admin", adm, "--metrics", met, "--show",
		      "none", "--stages", extra_stages, "--set", "rings.capacity=33554432", "--set",
		      "rings.raw_capacity=33554432",
		      /* long enough that the second container surely runs while kl-intentd is down */
		      "--set", "restart.backoff_initial_ms=1500", (char *)NULL);
		_exit(127);
	}
	return p;
}

static bool log_has(const char *needle)
{
	char path[256], buf[1 << 16];
	snprintf(path, sizeof(path), "%s/kloudlens.log", dir);
	FILE *f = fopen(path, "r");
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, needle) != NULL;
	fclose(f);
	return found;
}

static void wait_log(const char *needle, int ms)
{
	for (int i = 0; i < ms / 50 && !log_has(needle); i++) {
		cr_assert_eq(waitpid(sup, NULL, WNOHANG), 0, "kloudlens exited (see %s/kloudlens.log)", dir);
		usleep(50000);
	}
	cr_assert(log_has(needle), "'%s' not in %s/kloudlens.log", needle, dir);
}

/* Wait until a ring has @n attached consumers. */
static void wait_consumers(const char *ring, uint32_t n)
{
	char rings[256];
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	for (int i = 0; i < 200; i++) {
		struct shm_ring *r;
		struct shm_ring_info info;
		if (shm_ring_open(rings, ring, &r) == 0) {
			shm_ring_info(r, &info);
			shm_ring_close(r);
			if (info.nconsumers >= n)
				return;
		}
		usleep(50000);
	}
	cr_assert_fail("ring %s never had %u consumers", ring, n);
}

static pid_t start_klctl(const char *stream, const char *out)
{
	char sub[64], adm[64], path[256];
	int pb = port_base();

	snprintf(sub, sizeof(sub), "tcp://127.0.0.1:%d", pb);
	snprintf(adm, sizeof(adm), "tcp://127.0.0.1:%d", pb + 1);
	snprintf(path, sizeof(path), "%s/%s", dir, out);
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (p == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		/* --since 0: replayed from the WAL first, so nothing published before
		 * the subscription was up is missed (nng pub/sub drops those) */
		execl(lt_bpath("klctl/klctl"), "klctl", "--subscribe", sub, "--admin", adm, "--json", "stream", stream,
		      "--pod", "wl-pod", "--since", "0", (char *)NULL);
		_exit(127);
	}
	return p;
}

static void make_bundle(const char *name)
{
	cr_assert_eq(lt_sh("set -e; B=%s/%s; mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys "
			"$B/rootfs/tmp $B/rootfs/etc; cp /bin/busybox $B/rootfs/bin/; ln -s busybox $B/rootfs/bin/true; "
			"cp %s $B/rootfs/bin/kl-workload; cd $B; runc spec; "
			"jq '.process.terminal=false | .root.readonly=false "
			"| .process.args=[\"/bin/kl-workload\",\"seq\",\"/tmp\"] "
			"| .linux.namespaces |= map(select(.type != \"network\")) "
			"| .annotations={\"io.kubernetes.cri.container-name\":\"wl\","
			"\"io.kubernetes.cri.sandbox-name\":\"wl-pod\",\"io.kubernetes.cri.sandbox-namespace\":\"test\","
			"\"io.kubernetes.cri.image-name\":\"local/wl:1\"}' config.json > c.json; mv c.json config.json",
			dir, name, lt_bpath("tests/collector/kl-workload-static")),
		     0);
}

static void run_container(const char *bundle, const char *id)
{
	int rc = lt_sh("cd %s/%s && runc run %s </dev/null >%s/%s.report 2>%s/%s.err", dir, bundle, id, dir, bundle, dir,
		    bundle);
	cr_assert_eq(rc, 7, "workload in runc: exit %d (see %s/%s.err)", rc, dir, bundle);
}

/* What identifies an intent across two identical runs (no pids, ports, times). */
static void intent_key(json_t *j, char *key, size_t n)
{
	json_t *p = json_object_get(j, "process");
	snprintf(key, n, "%s|%s|%s|%s|%lld|%lld|%lld", lt_jstr(j, "kind"), lt_jstr(p, "comm"), lt_jstr(j, "path"), lt_jstr(j, "path2"),
		 (long long)json_integer_value(json_object_get(j, "bytes_in")),
		 (long long)json_integer_value(json_object_get(j, "bytes_out")),
		 (long long)json_integer_value(json_object_get(j, "exit_code")));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted intent keys of one container's run, checking pod metadata on the way. */
static size_t collect(const char *file, const char *ctr_id, char **keys, size_t max, int *exits)
{
	char path[256], line[1 << 16];
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	*exits = 0;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j)
			continue;
		if (strcmp(lt_jstr(j, "container"), ctr_id) || !strcmp(lt_jstr(json_object_get(j, "process"), "comm"), "runc:[2:INIT]")) {
			json_decref(j);
			continue;
		}
		cr_assert_str_eq(lt_jstr(j, "pod"), "wl-pod", "%s", line);
		cr_assert_str_eq(lt_jstr(j, "namespace"), "test", "%s", line);
		cr_assert_str_eq(lt_jstr(j, "container_name"), "wl", "%s", line);
		if (json_object_get(j, "image"))
			cr_assert_str_eq(lt_jstr(j, "image"), "local/wl:1", "%s", line);
		if (!strcmp(lt_jstr(j, "kind"), "PROCESS_EXIT") && !strcmp(lt_jstr(json_object_get(j, "process"), "comm"), "kl-workload"))
			(*exits)++;
		if (n < max) {
			keys[n] = malloc(512);
			intent_key(j, keys[n], 512);
			n++;
		}
		json_decref(j);
	}
	fclose(f);
	qsort(keys, n, sizeof(*keys), cmp_str);
	return n;
}

/* Wait for the workload's ProcessExit intent of @ctr_id in the klctl output, then a quiet second. */
static void wait_run(const char *ctr_id)
{
	char *keys[512];
	int exits = 0;
	for (int i = 0; i < 600 && !exits; i++) {
		size_t n = collect("intents.json", ctr_id, keys, 512, &exits);
		for (size_t k = 0; k < n; k++)
			free(keys[k]);
		if (!exits)
			usleep(100000);
	}
	cr_assert_eq(exits, 1, "the ProcessExit intent of the workload in %s never arrived", ctr_id);
	sleep(1);
}

/* The image travels in the intents ring (klctl's JSON does not print it). */
static void check_image_in_ring(struct shm_consumer *c)
{
	struct shm_rec recs[256];
	struct kl_buf b = { 0 };
	int seen = 0, n;
	/* the node's own activity never stops: look for a while, not until it is quiet */
	uint64_t end = kl_now_mono_ns() + 5000000000ull;

	while (kl_now_mono_ns() < end && (n = shm_consumer_poll(c, recs, 256, 100)) > 0) {
		for (int i = 0; i < n; i++) {
			if (recs[i].type != KL_REC_INTENT)
				continue;
			kl_buf_reset(&b);
			kl_rec_to_json(&b, recs[i].type, recs[i].data, recs[i].len, UINT64_MAX);
			json_t *j = json_loads(b.p, 0, NULL);
			if (j && !strcmp(lt_jstr(j, "pod_name"), "wl-pod")) {
				cr_assert_str_eq(lt_jstr(j, "image"), "local/wl:1", "%s", b.p);
				cr_assert_str_eq(lt_jstr(j, "pod_namespace"), "test");
				seen++;
			}
			json_decref(j);
		}
		shm_consumer_release(c);
	}
	kl_buf_free(&b);
	cr_assert_gt(seen, 0, "no intent of pod wl-pod in the intents ring");
}

static pid_t stage_pid(const char *stage)
{
	char cmd[512], out[64] = "";
	/* the supervisor's own log names every pid it started; take the last one of the stage */
	snprintf(cmd, sizeof(cmd), "grep 'stage=%s msg=\"started pid' %s/kloudlens.log | tail -1 | "
		 "sed 's/.*started pid \\([0-9]*\\).*/\\1/'", stage, dir);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = 0;
	pclose(p);
	return (pid_t)atoi(out);
}

Test(supervisor_live, e2e_runc_container_intents_events_and_intentd_kill)
{
	char rings[256];
	need_live();
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	sup = start_supervisor("host", "collector,enricher,intentd,exporter");
	wait_log("stage=exporter msg=\"started pid", 10000);
	wait_consumers("enriched", 2);  /* intentd and the exporter */
	wait_consumers("intents", 1);
	cr_assert_eq(shm_ring_open(rings, "intents", &obs_ring), 0);
	cr_assert_eq(shm_consumer_attach(obs_ring, "sup-live-test", SHM_OBSERVER, &obs), 0);
	subs[0] = start_klctl("intents", "intents.json");
	subs[1] = start_klctl("events", "events.json");
	sleep(1);       /* the subscriptions are up */
	make_bundle("a");
	make_bundle("b");

	/* run A: nothing disturbed */
	run_container("a", ctr_a);
	wait_run(ctr_a);
	check_image_in_ring(obs);

	/* run B: kl-intentd SIGKILLed first; the container runs while it is down */
	pid_t ipid = stage_pid("intentd");
	cr_assert_gt(ipid, 0);
	cr_assert_eq(kill(ipid, SIGKILL), 0);
	run_container("b", ctr_b);
	wait_log("stage=intentd msg=\"pid", 5000);
	wait_log("(signal 9); restart 1", 5000);
	for (int i = 0; i < 100 && stage_pid("intentd") == ipid; i++)
		usleep(50000);
	cr_assert_neq(stage_pid("intentd"), ipid, "kl-intentd was not restarted");
	wait_run(ctr_b);

	char *ka[512], *kb[512];
	int ea, eb;
	size_t na = collect("intents.json", ctr_a, ka, 512, &ea), nb = collect("intents.json", ctr_b, kb, 512, &eb);
	cr_assert_gt(na, 10, "run A: only %zu intents", na);
	bool same = na == nb;
	for (size_t i = 0; same && i < na; i++)
		same = !strcmp(ka[i], kb[i]);
	if (!same) {
		for (size_t i = 0; i < na || i < nb; i++)
			fprintf(stderr, "%-70s | %s\n", i < na ? ka[i] : "", i < nb ? kb[i] : "");
	}
	cr_assert(same, "the intents of the run across the kl-intentd kill differ (A %zu, B %zu; listed above)", na, nb);
	for (size_t i = 0; i < na; i++)
		free(ka[i]);
	for (size_t i = 0; i < nb; i++)
		free(kb[i]);

	/* events (the enriched stream) carry the pod too */
	int dummy;
	char *ke[4096];
	size_t ne = collect("events.json", ctr_a, ke, 4096, &dummy);
	cr_assert_gt(ne, 10, "only %zu events of container A", ne);
	for (size_t i = 0; i < ne; i++)
		free(ke[i]);

	/* /metrics: every ring and consumer drop counter is zero */
	cr_assert_eq(lt_sh("curl -sf http://127.0.0.1:%d/metrics > %s/metrics.txt", port_base() + 2, dir), 0);
	cr_assert_eq(lt_sh("grep -q '^kloudlens_ring_dropped_total' %s/metrics.txt", dir), 0, "no drop counters");
	cr_assert_neq(lt_sh("grep -E '^kloudlens_(ring_dropped|ring_consumer_dropped)_total' %s/metrics.txt | "
			 "grep -qv ' 0$'", dir),
		      0, "drops in /metrics (see %s/metrics.txt)", dir);
}

/* ---- docker mode ----------------------------------------------------------------- */

static void put_cp(const char *name, const char *content)
{
	char path[256], tmp[256];
	snprintf(path, sizeof(path), "%s/cp/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/cp/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(content, f);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0);
}

/* Open marker files for @ms, one every 10 ms; returns how many of them `raw` showed. */
static int markers_seen(struct shm_consumer *c, int ms, uint64_t *last_seen_ns)
{
	struct shm_rec recs[512];
	char want[160], path[200];
	int opened = 0, seen = 0;
	uint64_t end = kl_now_mono_ns() + (uint64_t)ms * 1000000ull;

	snprintf(want, sizeof(want), "%s/marker-", dir);
	while (kl_now_mono_ns() < end) {
		snprintf(path, sizeof(path), "%s%d", want, opened++);
		int fd = open(path, O_RDONLY | O_CREAT, 0644);
		if (fd >= 0)
			close(fd);
		int n = shm_consumer_poll(c, recs, 512, 10);
		for (int i = 0; i < n; i++) {
			struct kl_field_view f;
			if (recs[i].type != KL_REC_SYSCALL ||
			    !kl_field_find(recs[i].type, recs[i].data, recs[i].len, KL_F_PATH, &f))
				continue;
			if (f.len > strlen(want) && !strncmp((const char *)f.data, want, strlen(want))) {
				seen++;
				if (last_seen_ns)
					*last_seen_ns = kl_now_mono_ns();
			}
		}
		shm_consumer_release(c);
	}
	return seen;
}

static uint64_t applied_generation(void)
{
	char path[256], line[128];
	unsigned long long g = 0;
	snprintf(path, sizeof(path), "%s/rings/collector.filter.applied", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f))
		sscanf(line, "generation %llu", &g);
	fclose(f);
	return g;
}

#define HOOK(name, cats) \
	"apiVersion: kloudlens.io/v1\nkind: HookSubscription\nmetadata:\n  name: " name "\nspec:\n" \
	"  categories: " cats "\n  selector:\n    hostProcesses: true\n"

Test(supervisor_live, docker_mode_hooksubscription_applies_within_a_second)
{
	char rings[256], cpd[256];
	need_live();
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(cpd, sizeof(cpd), "%s/cp", dir);
	mkdir(cpd, 0755);
	/* start with file metadata (openat) traced for host processes */
	put_cp("hooks.yaml", HOOK("marker", "[crit, proc_lc, bulk_file_meta]"));
	sup = start_supervisor("docker", "collector");
	wait_log("control plane: filter generation 1 written", 5000);
	wait_log("NodeCapabilities written to", 10000);
	char caps[300];
	snprintf(caps, sizeof(caps), "%s/cp/node-capabilities.yaml", dir);
	cr_assert_eq(access(caps, R_OK), 0);
	for (int i = 0; i < 200 && applied_generation() < 1; i++)
		usleep(50000);
	cr_assert_eq(applied_generation(), 1, "the collector never applied generation 1");
	cr_assert_eq(shm_ring_open(rings, "raw", &obs_ring), 0);
	cr_assert_eq(shm_consumer_attach(obs_ring, "sup-docker-test", SHM_OBSERVER, &obs), 0);
	struct shm_consumer *c = obs;
	cr_assert_gt(markers_seen(c, 500, NULL), 10, "openat of the markers not traced under generation 1");

	/* drop bulk_file_meta: openat must stop within a second */
	uint64_t t0 = kl_now_mono_ns(), last = 0;
	put_cp("hooks.yaml", HOOK("marker", "[crit, proc_lc]"));
	markers_seen(c, 1500, &last);
	cr_assert_eq(applied_generation(), 2);
	cr_assert(last == 0 || last - t0 < 1000000000ull, "openat still traced %.3f s after the change",
		  (last - t0) / 1e9);
	cr_assert_eq(markers_seen(c, 500, NULL), 0, "openat traced again after the filter changed");

	/* an invalid file is refused with file:line:column and key; generation 2 stays */
	put_cp("bad.yaml", HOOK("other", "[crit, bulk_file_meta]") "  bogus: 1\n");
	char want[300];
	snprintf(want, sizeof(want), "rejected %s/cp/bad.yaml:9:3: spec.bogus: unknown field", dir);
	wait_log(want, 3000);
	/* the HookSubscription itself turning bad keeps its last good content */
	put_cp("hooks.yaml", HOOK("marker", "[crit, proc_lc, bulk_file_meta, nope]"));
	snprintf(want, sizeof(want), "rejected %s/cp/hooks.yaml:6:47: spec.categories[3]: must be one of", dir);
	wait_log(want, 3000);
	cr_assert_eq(markers_seen(c, 600, NULL), 0, "a rejected file changed the filter");
	cr_assert_eq(applied_generation(), 2);
	cr_assert(log_has("previous content stays in force"));

	/* fixed again: applied */
	put_cp("bad.yaml", HOOK("other", "[crit, bulk_file_meta]"));
	for (int i = 0; i < 40 && applied_generation() < 3; i++)
		usleep(50000);
	cr_assert_eq(applied_generation(), 3);
	cr_assert_gt(markers_seen(c, 500, NULL), 10, "openat not traced again after the fix");
}
