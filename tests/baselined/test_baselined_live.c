/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live learn -> promote -> detect: the real chain kl-collector ->
 * kl-enricher -> kl-intentd -> kl-baselined -> kl-exporter on a private
 * rings directory and private ports, and a real runc container (CRI
 * annotations) running a small loop (cat a file, sleep). kl-baselined
 * learns it for a few seconds; `klctl baseline list` (through the
 * exporter) shows it active; the loop keeps running on its profile; then
 * `runc exec` runs a new executable reading a file the loop never read.
 * `klctl stream deviations --json` must carry new_exec and new_file for
 * exactly that, with the workload, profile, pod, namespace and container,
 * and nothing at all for the loop's own (learned) behaviour.
 * With KLOUDLENS_REQUIRE_LIVE=1 missing root, runc or BPF fails the test.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
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
#include "../common/stagetest.h"
#include "../exporter/helpers.h"

#define POD "web-7d4b9c8f6d-x2x9z"
#define CTR "app"
#define IMAGE "local/bl:1"
/* the process `runc exec` starts: a copy of busybox under a path the loop never ran */
#define NEW_EXE "/usr/local/bin/busybox2"
#define NEW_COMM "busybox2"
#define NEW_FILE "/etc/kl-secret"

static char dir[128], ctr_id[64], ns[64];

static void setup(void)
{
	st_dir_setup(dir, sizeof(dir), "kl-bl-live");
	snprintf(ctr_id, sizeof(ctr_id), "kl-bl-live-%d", (int)getpid());
	/* a namespace of its own: the workload key is new to this run whatever else runs here */
	snprintf(ns, sizeof(ns), "bl-%d", (int)getpid());
}

static void teardown(void)
{
	/* the container first, while the daemons that watch it still run */
	lt_sh("runc delete -f %s >/dev/null 2>&1", ctr_id);
	st_dir_teardown(dir);
}

TestSuite(baselined_live, .init = setup, .fini = teardown, .timeout = 150);

static bool live_required(void)
{
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	return v && *v && strcmp(v, "0") != 0;
}

static const char *bin(const char *rel)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	st_bin(p[i], sizeof(p[i]), rel);
	return p[i];
}

/* st_spawn with stdout and stderr to files; the pid is killed in teardown like the others. */
static pid_t spawn_to(char *const argv[], const char *out, const char *err)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < ST_MAX_SPAWNED; i++) {
		if (st_spawned[i] <= 0) {
			st_spawned[i] = pid;
			break;
		}
	}
	return pid;
}

/* Wait until @name holds a live consumer slot on ring @ring of @rings (10 s). */
static void wait_consumer(const char *rings, const char *ring, const char *name)
{
	for (int i = 0; i < 200; i++) {
		struct shm_ring *r;
		struct shm_ring_info info;
		if (shm_ring_open(rings, ring, &r) == 0) {
			shm_ring_info(r, &info);
			shm_ring_close(r);
			for (uint32_t k = 0; k < SHM_MAX_CONSUMERS; k++)
				if (!strcmp(info.consumers[k].name, name) && info.consumers[k].state == 1)
					return;
		}
		usleep(50000);
	}
	cr_assert_fail("%s never attached to ring %s", name, ring);
}

/* Run klctl with @args; its stdout lines parsed as JSON into an array. */
static json_t *klctl_json(const char *admin, const char *args, int *rc)
{
	char cmd[1024], line[65536];
	json_t *a = json_array();
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s --admin %s --json %s 2>/dev/null", bin("klctl/klctl"), admin, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		json_t *j = json_loads(line, 0, NULL);
		if (j)
			json_array_append_new(a, j);
	}
	int st = pclose(p);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return a;
}

/* The workload's deviations klctl printed so far (a line may be partial while it writes). */
static json_t *read_deviations(const char *path, const char *key, int *others)
{
	json_t *a = json_array();
	char line[65536];
	FILE *f = fopen(path, "r");

	*others = 0;
	if (!f)
		return a;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j)
			continue;
		if (!strcmp(lt_jstr(j, "type"), "deviation") && !strcmp(lt_jstr(j, "workload"), key))
			json_array_append_new(a, j);
		else {
			(*others)++;    /* other containers on this node, learned on their own */
			json_decref(j);
		}
	}
	fclose(f);
	return a;
}

static json_t *find_dev(json_t *devs, const char *kind, const char *item)
{
	size_t i;
	json_t *d;

	json_array_foreach(devs, i, d)
		if (!strcmp(lt_jstr(d, "kind"), kind) && !strcmp(lt_jstr(d, "path"), item))
			return d;
	return NULL;
}

static uint64_t now_ms(void)
{
	return kl_now_mono_ns() / 1000000u;
}

Test(baselined_live, learn_promote_then_runc_exec_deviates)
{
	char rings[200], ready[200], bundle[200], profiles[200], wal[200], key[256];
	char admin[64], sub[64], devout[200], deverr[200];
	bool required = live_required();
	uint64_t t_start = now_ms();

	if (geteuid() != 0 || lt_sh("command -v runc >/dev/null && command -v jq >/dev/null") != 0) {
		if (required)
			cr_assert_fail("live test needs root, runc and jq");
		cr_skip_test("needs root, runc and jq");
	}
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	snprintf(profiles, sizeof(profiles), "%s/profiles", dir);
	snprintf(wal, sizeof(wal), "%s/wal", dir);
	snprintf(devout, sizeof(devout), "%s/deviations.jsonl", dir);
	snprintf(deverr, sizeof(deverr), "%s/klctl.err", dir);
	snprintf(admin, sizeof(admin), "tcp://127.0.0.1:%d", free_port());
	snprintf(sub, sizeof(sub), "tcp://127.0.0.1:%d", free_port());
	snprintf(key, sizeof(key), "%s/web/%s@%s", ns, CTR, IMAGE);

	/* containers only: the host's own processes (these daemons included) are not the subject */
	char *cargv[] = { (char *)bin("collector/kl-collector"), "--dir", rings, "--capacity", "16777216",
			  "--containers-only", "--ready", ready, NULL };
	pid_t collector = st_spawn(cargv);
	for (int i = 0; i < 300 && access(ready, F_OK) != 0; i++) {
		if (waitpid(collector, NULL, WNOHANG) == collector) {
			if (required)
				cr_assert_fail("kl-collector exited before attaching (BPF unavailable?)");
			cr_skip_test("kl-collector could not attach (BPF unavailable?)");
		}
		usleep(50000);
	}
	cr_assert_eq(access(ready, F_OK), 0, "kl-collector did not attach");
	char *eargv[] = { (char *)bin("enricher/kl-enricher"), "--dir", rings, "--capacity", "16777216", "--wait",
			  "10", NULL };
	st_spawn(eargv);
	char *iargv[] = { (char *)bin("intentd/kl-intentd"), "--dir", rings, "--capacity", "16777216", "--wait",
			  "10", NULL };
	st_spawn(iargv);
	/* a short window and a small sample floor so the loop is learned in seconds */
	char *bargv[] = { (char *)bin("baselined/kl-baselined"), "--dir", rings, "--capacity", "4194304", "--wait",
			  "10", "--profiles", profiles, "--window", "4s", "--min-samples", "20", NULL };
	pid_t baselined = st_spawn(bargv);
	wait_consumer(rings, "enriched", "kl-intentd");
	wait_consumer(rings, "intents", "kl-baselined");
	wait_consumer(rings, "enriched", "kl-baselined");
	st_assert_unprivileged(baselined, "kl-baselined");
	char *xargv[] = { (char *)bin("exporter/kl-exporter"), "--rings", rings, "--wal", wal, "--wal-fsync", "none",
			  "--subscribe", sub, "--admin", admin, "--metrics", "", "--observer", NULL };
	st_spawn(xargv);
	wait_consumer(rings, "deviations", "kl-exporter");

	/* every deviation from the start of the stream: nothing can slip in before klctl subscribed */
	char *sargv[] = { (char *)bin("klctl/klctl"), "--admin", admin, "--subscribe", sub, "--json", "stream",
			  "deviations", "--since", "0", NULL };
	pid_t stream = spawn_to(sargv, devout, deverr);

	/* the container: a loop over a known command and a known file */
	cr_assert_eq(lt_sh("set -e; B=%s; mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys "
			"$B/rootfs/tmp $B/rootfs/etc $B/rootfs/usr/local/bin; cp /bin/busybox $B/rootfs/bin/; "
			"for a in sh cat sleep; do ln -s busybox $B/rootfs/bin/$a; done; "
			"cp /bin/busybox $B/rootfs" NEW_EXE "; echo data > $B/rootfs/etc/kl-data; "
			"echo secret > $B/rootfs" NEW_FILE "; cd $B; runc spec; "
			"jq '.process.terminal=false | .root.readonly=false "
			"| .process.args=[\"/bin/sh\",\"-c\",\"while :; do cat /etc/kl-data >/dev/null; sleep 0.2; done\"] "
			"| .annotations={\"io.kubernetes.cri.container-type\":\"container\","
			"\"io.kubernetes.cri.container-name\":\"" CTR "\",\"io.kubernetes.cri.sandbox-name\":\"" POD "\","
			"\"io.kubernetes.cri.sandbox-namespace\":\"%s\",\"io.kubernetes.cri.sandbox-uid\":\"uid-%s\","
			"\"io.kubernetes.cri.image-name\":\"" IMAGE "\"}' config.json > c.json; mv c.json config.json",
			bundle, ns, ns), 0);
	int rc = lt_sh("cd %s && runc run -d %s </dev/null >%s/run.out 2>%s/run.err", bundle, ctr_id, dir, dir);
	if (rc != 0) {
		if (required)
			cr_assert_fail("runc run -d: exit %d (see %s/run.err)", rc, dir);
		cr_skip_test("runc cannot start a container here (exit %d)", rc);
	}
	uint64_t t_ctr = now_ms();

	/* learning, then promotion: poll ListWorkloads through the exporter with klctl */
	char prof_id[64] = "";
	json_int_t samples = 0;
	while (!prof_id[0]) {
		cr_assert_lt(now_ms(), t_ctr + 30000, "workload %s never became active", key);
		cr_assert_eq(waitpid(stream, NULL, WNOHANG), 0, "klctl stream exited (see %s)", deverr);
		int krc;
		json_t *ws = klctl_json(admin, "baseline list", &krc);
		cr_assert_eq(krc, 0, "klctl baseline list: exit %d", krc);
		size_t i;
		json_t *w;
		json_array_foreach(ws, i, w) {
			if (strcmp(lt_jstr(w, "workload"), key))
				continue;
			if (!strcmp(lt_jstr(w, "state"), "active")) {
				snprintf(prof_id, sizeof(prof_id), "%s", lt_jstr(w, "profile_id"));
				samples = json_integer_value(json_object_get(w, "samples"));
			}
		}
		json_decref(ws);
		if (!prof_id[0])
			usleep(300000);
	}
	uint64_t t_active = now_ms();
	cr_assert_eq(strncmp(prof_id, "prof-", 5), 0, "profile id %s", prof_id);
	cr_assert_geq(samples, 20);

	/* the profile through the exporter: the shared format, this workload, on disk */
	int krc;
	char args[256];
	snprintf(args, sizeof(args), "baseline show %s", prof_id);
	json_t *doc = klctl_json(admin, args, &krc);
	cr_assert_eq(krc, 0);
	cr_assert_eq(json_array_size(doc), 1, "klctl baseline show printed %zu documents", json_array_size(doc));
	json_t *wl0 = json_array_get(json_object_get(json_array_get(doc, 0), "workloads"), 0);
	cr_assert_str_eq(lt_jstr(json_object_get(wl0, "baseline"), "key"), key);
	json_decref(doc);
	json_t *pl = klctl_json(admin, "baseline profiles", &krc);
	bool listed = false;
	size_t i;
	json_t *p;
	json_array_foreach(pl, i, p)
		listed |= !strcmp(lt_jstr(p, "profile_id"), prof_id) && !strcmp(lt_jstr(p, "workload"), key);
	json_decref(pl);
	cr_assert(listed, "klctl baseline profiles does not list %s", prof_id);

	/* the loop keeps running on its profile: nothing to report */
	usleep(2500000);
	int others;
	json_t *devs = read_deviations(devout, key, &others);
	if (json_array_size(devs)) {
		char *s = json_dumps(devs, JSON_COMPACT);
		cr_assert_fail("the learned loop deviated: %s", s);
	}
	json_decref(devs);

	/* something new through runc exec */
	uint64_t t_exec = now_ms();
	rc = lt_sh("runc exec %s " NEW_EXE " cat " NEW_FILE " >%s/exec.out 2>%s/exec.err", ctr_id, dir, dir);
	cr_assert_eq(rc, 0, "runc exec: exit %d (see %s/exec.err)", rc, dir);

	json_t *ex = NULL, *fl = NULL;
	for (;;) {
		devs = read_deviations(devout, key, &others);
		ex = find_dev(devs, "new_exec", NEW_EXE);
		fl = find_dev(devs, "new_file", NEW_FILE);
		if ((ex && fl) || now_ms() > t_exec + 15000)
			break;
		json_decref(devs);
		usleep(200000);
	}
	/* a moment for anything else the exec set off */
	json_decref(devs);
	usleep(1000000);
	devs = read_deviations(devout, key, &others);
	ex = find_dev(devs, "new_exec", NEW_EXE);
	fl = find_dev(devs, "new_file", NEW_FILE);
	char *all = json_dumps(devs, JSON_COMPACT);
	cr_assert_not_null(ex, "no new_exec %s in %s", NEW_EXE, all);
	cr_assert_not_null(fl, "no new_file %s in %s", NEW_FILE, all);

	json_t *d;
	json_array_foreach(devs, i, d) {
		json_t *proc = json_object_get(d, "process");
		const char *comm = lt_jstr(proc, "comm");
		/* only the exec'd command: never the loop, and never runc's init setting the
		 * exec up (its records are marked runtime_init and neither learned nor checked) */
		cr_assert_str_eq(comm, NEW_COMM, "deviation not caused by the exec'd command (comm %s): %s", comm,
				 all);
		cr_assert_str_eq(lt_jstr(d, "profile_id"), prof_id);
		cr_assert_str_eq(lt_jstr(d, "namespace"), ns);
		cr_assert_str_eq(lt_jstr(d, "pod"), POD);
		cr_assert_str_eq(lt_jstr(d, "container_name"), CTR);
		cr_assert_str_eq(lt_jstr(d, "container"), ctr_id);
	}
	cr_assert_str_eq(lt_jstr(ex, "severity"), "HIGH", "%s", all);
	cr_assert_str_eq(lt_jstr(json_object_get(ex, "process"), "exe"), NEW_EXE, "%s", all);
	cr_assert_eq(json_integer_value(json_object_get(ex, "occurrences")), 1);
	cr_assert_str_eq(lt_jstr(json_object_get(fl, "process"), "comm"), NEW_COMM, "%s", all);
	fprintf(stderr, "deviations of %s after runc exec: %s\n", key, all);
	free(all);
	json_decref(devs);

	/* the exporter's ListWorkloads answer counts them too */
	json_t *ws = klctl_json(admin, "baseline list", &krc);
	cr_assert_eq(krc, 0);
	json_array_foreach(ws, i, p)
		if (!strcmp(lt_jstr(p, "workload"), key))
			cr_assert_geq(json_integer_value(json_object_get(p, "deviations")), 2);
	json_decref(ws);

	/* clean exits (under the sanitizers: no leak either); the rest is killed in teardown */
	int st = st_stop(stream);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "klctl stream exit status %d (see %s)", st, deverr);
	st = st_stop(baselined);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-baselined exit status %d", st);
	fprintf(stderr, "baselined live: up %.1fs, learned+promoted %.1fs, detected %.1fs after exec; "
		    "%d other deviations on this node; total %.1fs\n",
		    (double)(t_ctr - t_start) / 1e3, (double)(t_active - t_ctr) / 1e3,
		    (double)(now_ms() - t_exec) / 1e3, others, (double)(now_ms() - t_start) / 1e3);
}
