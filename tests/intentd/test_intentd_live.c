/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live end to end: kl-collector -> kl-enricher -> kl-intentd, and the
 * collector's known-sequence workload (statically linked) run inside a
 * real runc container with CRI annotations. The container's intents must
 * be exactly the expected ones: kinds, counts, paths, peers, byte totals
 * (which equal the sums of the syscall return values the workload made),
 * each carrying the pod. With KLOUDLENS_REQUIRE_LIVE=1 a missing runc or
 * BPF fails the test.
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

static char dir[128], ctr_id[64];
static pid_t procs[3] = { -1, -1, -1 };

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-int-live.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755);   /* the stages run unprivileged and map rings here */
	snprintf(ctr_id, sizeof(ctr_id), "kl-int-live-%d", (int)getpid());
}

static void teardown(void)
{
	lt_sh("runc delete -f %s >/dev/null 2>&1", ctr_id);
	for (int i = 2; i >= 0; i--)
		lt_stop(&procs[i], SIGTERM);
	lt_sh("rm -rf '%s'", dir);
}

TestSuite(intentd_live, .init = setup, .fini = teardown, .timeout = 150);

static bool has_word(json_t *o, const char *k, const char *w)
{
	json_t *a = json_object_get(o, k), *v;
	size_t i;
	json_array_foreach(a, i, v)
		if (!strcmp(json_string_value(v), w))
			return true;
	return false;
}

Test(intentd_live, workload_in_runc_container_gives_exact_intents)
{
	char rings[200], ready[200], bundle[200];
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");
	bool required = v && *v && strcmp(v, "0") != 0;

	if (geteuid() != 0 || lt_sh("command -v runc >/dev/null") != 0) {
		if (required)
			cr_assert_fail("live test needs root and runc");
		cr_skip_test("needs root and runc");
	}
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);

	char *cargv[] = { (char *)lt_bpath("collector/kl-collector"), "--dir", rings, "--capacity",
			  "33554432", "--ready", ready, NULL };
	procs[0] = lt_spawn(cargv);
	for (int i = 0; i < 300 && access(ready, F_OK) != 0; i++) {
		cr_assert_eq(waitpid(procs[0], NULL, WNOHANG), 0, "kl-collector exited before attaching");
		usleep(50000);
	}
	cr_assert_eq(access(ready, F_OK), 0, "kl-collector did not attach");
	char *eargv[] = { (char *)lt_bpath("enricher/kl-enricher"), "--dir", rings, "--capacity", "33554432",
			  "--wait", "10", NULL };
	procs[1] = lt_spawn(eargv);
	char *iargv[] = { (char *)lt_bpath("intentd/kl-intentd"), "--dir", rings, "--capacity", "33554432",
			  "--wait", "10", NULL };
	procs[2] = lt_spawn(iargv);
	struct shm_ring *ir = NULL;
	for (int i = 0; i < 200 && shm_ring_open(rings, "intents", &ir); i++)
		usleep(50000);
	cr_assert_not_null(ir, "kl-intentd did not create the intents ring");
	struct shm_consumer *c;
	cr_assert_eq(shm_consumer_attach(ir, "live-test", SHM_REQUIRED, &c), 0);
	/* the enricher and intentd must be attached before the workload runs */
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

	cr_assert_eq(lt_sh("set -e; B=%s; mkdir -p $B/rootfs/bin $B/rootfs/proc $B/rootfs/dev $B/rootfs/sys "
			"$B/rootfs/tmp $B/rootfs/etc; cp /bin/busybox $B/rootfs/bin/; ln -s busybox $B/rootfs/bin/true; "
			"cp %s $B/rootfs/bin/kl-workload; cd $B; runc spec; "
			/* the host's network namespace: the workload talks to itself on 127.0.0.1 */
			"jq '.process.terminal=false | .root.readonly=false "
			"| .process.args=[\"/bin/kl-workload\",\"seq\",\"/tmp\"] "
			"| .linux.namespaces |= map(select(.type != \"network\")) "
			"| .annotations={\"io.kubernetes.cri.container-name\":\"wl\","
			"\"io.kubernetes.cri.sandbox-name\":\"wl-pod\",\"io.kubernetes.cri.sandbox-namespace\":\"test\","
			"\"io.kubernetes.cri.image-name\":\"local/wl:1\"}' config.json > c.json; mv c.json config.json",
			bundle, lt_bpath("tests/collector/kl-workload-static")), 0);
	int rc = lt_sh("cd %s && runc run %s </dev/null >%s/report 2>%s/run.err", bundle, ctr_id, dir, dir);
	cr_assert_eq(rc, 7, "workload in runc: exit %d (see %s/run.err)", rc, dir);
	char report[512] = "";
	FILE *f = fopen(strcat(strcpy(report, dir), "/report"), "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(report, sizeof(report), f));
	fclose(f);
	const char *pp = strstr(report, "port=");
	cr_assert_not_null(pp, "workload report: %s", report);
	int port = atoi(pp + 5);

	/* collect the pod's intents until the workload's ProcessExit and a quiet second */
	json_t *got = json_array();
	struct kl_buf b = { 0 };
	struct shm_rec recs[256];
	uint64_t deadline = kl_now_mono_ns() + 30ull * 1000000000ull, quiet_until = 0;
	while (kl_now_mono_ns() < deadline && (!quiet_until || kl_now_mono_ns() < quiet_until)) {
		int n = shm_consumer_poll(c, recs, 256, 200);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			if (recs[i].type != KL_REC_INTENT)
				continue;
			kl_buf_reset(&b);
			kl_rec_to_json(&b, recs[i].type, recs[i].data, recs[i].len, UINT64_MAX);
			json_t *j = json_loads(b.p, 0, NULL);
			cr_assert_not_null(j, "%s", b.p);
			if (strcmp(lt_jstr(j, "pod_name"), "wl-pod") || strcmp(lt_jstr(j, "comm"), "runc:[2:INIT]") == 0) {
				json_decref(j);
				continue;
			}
			cr_assert_str_eq(lt_jstr(j, "pod_namespace"), "test");
			cr_assert_str_eq(lt_jstr(j, "container_name"), "wl");
			cr_assert_str_eq(lt_jstr(j, "image"), "local/wl:1");
			if (!strcmp(lt_jstr(j, "kind"), "ProcessExit") && !strcmp(lt_jstr(j, "comm"), "kl-workload"))
				quiet_until = kl_now_mono_ns() + 1000000000ull;
			json_array_append_new(got, j);
		}
		shm_consumer_release(c);
	}
	kl_buf_free(&b);

	/* tally by kind, and check each expected intent's content */
	int n_start = 0, n_exit = 0, n_file = 0, n_rename = 0, n_unlink = 0, n_ipc = 0, n_listen = 0;
	int n_connect = 0, n_accept = 0, n_dns = 0, n_true_start = 0, n_true_exit = 0;
	size_t i;
	json_t *j;
	json_array_foreach(got, i, j) {
		const char *k = lt_jstr(j, "kind"), *comm = lt_jstr(j, "comm");
		if (!strcmp(comm, "true")) {
			if (!strcmp(k, "ProcessStart")) {
				json_t *argv = json_object_get(j, "argv");
				cr_assert_eq(json_array_size(argv), 3);
				cr_assert_str_eq(json_string_value(json_array_get(argv, 1)), "kl-arg1");
				cr_assert_str_eq(json_string_value(json_array_get(argv, 2)), "kl-arg2");
				n_true_start++;
			} else if (!strcmp(k, "ProcessExit")) {
				cr_assert_eq(lt_jint(j, "exit_code"), 0);
				n_true_exit++;
			}
			continue;
		}
		if (strcmp(comm, "kl-workload"))
			continue;
		if (!strcmp(k, "ProcessStart")) {
			n_start++;
		} else if (!strcmp(k, "ProcessExit")) {
			cr_assert_eq(lt_jint(j, "exit_code"), 7);
			n_exit++;
		} else if (!strcmp(k, "FileAccess") && !strcmp(lt_jstr(j, "path"), "/tmp/kl-file")) {
			cr_assert_eq(lt_jint(j, "bytes_out"), 4096, "write(4096) returned 4096");
			cr_assert_eq(lt_jint(j, "bytes_in"), 4096, "pread(4096) returned 4096");
			cr_assert(has_word(j, "access", "create") && has_word(j, "access", "truncate") &&
				  has_word(j, "access", "read") && has_word(j, "access", "write"));
			n_file++;
		} else if (!strcmp(k, "FileMetaChange")) {
			if (!strcmp(lt_jstr(j, "path"), "/tmp/kl-file") && !strcmp(lt_jstr(j, "path2"), "/tmp/kl-file2"))
				n_rename++;
			else if (!strcmp(lt_jstr(j, "path"), "/tmp/kl-file2"))
				n_unlink++;
		} else if (!strcmp(k, "IPC")) {
			n_ipc++;
		} else if (!strcmp(k, "NetworkListen")) {
			n_listen++;
		} else if (!strcmp(k, "NetworkExchange") && has_word(j, "flags", "connect")) {
			json_t *peer = json_object_get(j, "peer_addr");
			cr_assert_str_eq(lt_jstr(peer, "addr"), "127.0.0.1");
			cr_assert_eq(lt_jint(peer, "port"), port);
			cr_assert_eq(lt_jint(j, "bytes_out"), 1000);
			cr_assert_eq(lt_jint(j, "bytes_in"), 333);
			n_connect++;
		} else if (!strcmp(k, "NetworkExchange") && has_word(j, "flags", "accept")) {
			cr_assert_eq(lt_jint(j, "bytes_in"), 1000);
			cr_assert_eq(lt_jint(j, "bytes_out"), 333);
			n_accept++;
		} else if (!strcmp(k, "DNSQuery")) {
			cr_assert_str_eq(lt_jstr(j, "dns_name"), "kl-test.example");
			n_dns++;
		}
	}
	cr_assert_eq(n_start, 1, "ProcessStart of the workload: %d", n_start);
	cr_assert_eq(n_exit, 1, "ProcessExit of the workload: %d", n_exit);
	cr_assert_eq(n_file, 1, "FileAccess of /tmp/kl-file: %d", n_file);
	cr_assert_eq(n_rename, 1, "rename: %d", n_rename);
	cr_assert_eq(n_unlink, 1, "unlink: %d", n_unlink);
	cr_assert_eq(n_ipc, 1, "IPC (pipe2): %d", n_ipc);
	cr_assert_eq(n_listen, 1, "NetworkListen: %d", n_listen);
	cr_assert_eq(n_connect, 1, "NetworkExchange connect side: %d", n_connect);
	cr_assert_eq(n_accept, 1, "NetworkExchange accept side: %d", n_accept);
	cr_assert_eq(n_dns, 1, "DNSQuery (loopback shows each packet twice): %d", n_dns);
	cr_assert_eq(n_true_start, 1, "ProcessStart of /bin/true: %d", n_true_start);
	cr_assert_eq(n_true_exit, 1, "ProcessExit of /bin/true: %d", n_true_exit);
	json_decref(got);
	shm_consumer_detach(c);
	shm_ring_close(ir);
}
