/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real kl-baselined process on rings the test writes: started as
 * root it must drop to an unprivileged user with no capabilities, learn
 * the workload from `intents` (+ `enriched`), be promoted by the
 * BaselinePromote call made on its own socket, then publish on
 * `deviations` exactly one record for the one new thing the workload does
 * (its learned behaviour replayed around it: nothing), answer
 * BaselineService/ListWorkloads, survive a malformed request
 * (INVALID_ARGUMENT) and on SIGTERM exit 0 with the profile on disk.
 * Then the same daemon behind a real kl-exporter, driven by `klctl
 * baseline ...` (list, promote, reset, activate, show, profiles, errors).
 */
#include <criterion/criterion.h>
#include <errno.h>
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

#include "../common/stagetest.h"
#include "../exporter/helpers.h"
#include "client.h"
#include "gen.h"
#include "profile.h"

#define S 1000000000ull
#define WKEY "prod/api/api@registry.example.com/api:2"

static char dir[128];

static void setup(void)
{
	st_dir_setup(dir, sizeof(dir), "kl-baselined-test");
}

static void teardown(void)
{
	st_dir_teardown(dir);
}

TestSuite(baselined_proc, .init = setup, .fini = teardown, .timeout = 60);

static const struct gen_ctx api = {
	.exe = "/app/api", .parent_exe = "/usr/bin/runc", .ctr_id = "ab12cd34", .ctr_name = "api",
	.image = "registry.example.com/api:2", .pod = "api-5f7c9d8b6-q2w3e", .pod_ns = "prod",
	.pod_uid = "uid-api-1", .pid = 77, .uid = 1000, .start_ns = 5,
};

struct ev {
	uint16_t kind;
	uint32_t iflags, dflags;
	const char *exe, *parent, *path, *peer;
};

/* what the workload does, over and over */
static const struct ev training[] = {
	{ KL_INTENT_PROCESS_START, 0, 0, "/app/api", "/usr/bin/runc", NULL, NULL },
	{ KL_INTENT_PROCESS_START, 0, 0, "/bin/sh", "/app/api", NULL, NULL },
	{ KL_INTENT_FILE_ACCESS, 0, KL_IA_READ, NULL, NULL, "/etc/api/config.yaml", NULL },
	{ KL_INTENT_FILE_ACCESS, 0, KL_IA_WRITE | KL_IA_CREATE, NULL, NULL, "/var/log/api.log", NULL },
	{ KL_INTENT_NETWORK_EXCHANGE, KL_IN_CONNECT, 0, NULL, NULL, NULL, "10.0.0.7:5432" },
	{ KL_INTENT_DNS_QUERY, 0, 0, NULL, NULL, "db.prod.svc.cluster.local", NULL },
};
#define NTRAIN (sizeof(training) / sizeof(training[0]))

static uint64_t seq, ts = 100 * S;

static void put_ev(struct shm_ring *r, const struct ev *v)
{
	struct gen_rec g;
	struct gen_ctx c = api;

	if (v->exe) {
		c.exe = v->exe;
		c.parent_exe = v->parent;
	}
	ts += 1000;
	gen_intent(&g, &c, ++seq, ts, v->kind, v->iflags, v->dflags, v->path, v->peer, 0, 0);
	cr_assert_eq(shm_write(r, g.type, g.buf, (uint32_t)g.len), 0);
}

static void put_training(struct shm_ring *in, struct shm_ring *en, int reps)
{
	for (int k = 0; k < reps; k++) {
		for (size_t i = 0; i < NTRAIN; i++)
			put_ev(in, &training[i]);
		/* the syscall set comes from the enriched ring: openat, read, write */
		static const uint32_t nrs[] = { 257, 0, 1 };
		for (size_t i = 0; i < 3; i++) {
			struct gen_rec g;
			gen_syscall(&g, &api, ++seq, ts, nrs[i], 3);
			cr_assert_eq(shm_write(en, g.type, g.buf, (uint32_t)g.len), 0);
		}
	}
}

/* Wait until kl-baselined's cursor on @r reached what the test wrote. */
static void wait_consumed(struct shm_ring *r)
{
	struct shm_ring_info info;

	for (int i = 0; i < 200; i++) {
		shm_ring_info(r, &info);
		for (uint32_t k = 0; k < SHM_MAX_CONSUMERS; k++)
			if (!strcmp(info.consumers[k].name, "kl-baselined") && info.consumers[k].state == 1 &&
			    info.consumers[k].next_seq >= info.produced)
				return;
		usleep(25000);
	}
	cr_assert_fail("kl-baselined did not consume ring %s", info.name);
}

static Kloudlens__V1__ListWorkloadsResponse *list(const char *url)
{
	Kloudlens__V1__ListWorkloadsRequest q = KLOUDLENS__V1__LIST_WORKLOADS_REQUEST__INIT;
	Kloudlens__V1__ListWorkloadsResponse *r = NULL;
	struct kl_client c;
	char err[256];

	cr_assert_eq(kl_client_open(&c, url, NULL, 3000), 0);
	int code = kl_client_call(&c, "/kloudlens.v1.BaselineService/ListWorkloads", &q.base,
				  &kloudlens__v1__list_workloads_response__descriptor, (ProtobufCMessage **)&r,
				  err, sizeof(err));
	kl_client_close(&c);
	cr_assert_eq(code, 0, "ListWorkloads: %d %s", code, err);
	return r;
}

static bool str_field(const struct shm_rec *r, uint16_t id, const char *want)
{
	struct kl_field_view f;
	return kl_field_find(r->type, r->data, r->len, id, &f) && f.len == strlen(want) &&
	       !memcmp(f.data, want, f.len);
}

Test(baselined_proc, unprivileged_learn_promote_detect)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *in, *en, *dev;
	struct shm_consumer *c;
	char bin[512], profiles[256], url[300], err[256];

	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(dir, "intents", &o, &in), 0);
	cr_assert_eq(shm_ring_create(dir, "enriched", &o, &en), 0);
	snprintf(profiles, sizeof(profiles), "%s/profiles", dir);
	snprintf(url, sizeof(url), "ipc://%s/kl-baselined.sock", dir);
	st_bin(bin, sizeof(bin), "baselined/kl-baselined");
	/* a one-hour window: only the call promotes it */
	char *argv[] = { bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", "--node", "test-node",
			 "--profiles", profiles, "--window", "1h", "--min-samples", "5", NULL };
	pid_t pid = st_spawn(argv);
	dev = st_wait_ring(dir, "deviations");
	cr_assert_eq(shm_consumer_attach(dev, "test", SHM_REQUIRED, &c), 0);
	/* attached to both inputs: past the privilege drop */
	st_wait_consumers(in, 1);
	st_wait_consumers(en, 1);
	st_assert_unprivileged(pid, "kl-baselined");

	/* learn */
	put_training(in, en, 3);
	wait_consumed(in);
	wait_consumed(en);
	Kloudlens__V1__ListWorkloadsResponse *lw = list(url);
	cr_assert_eq(lw->n_workloads, 1);
	cr_assert_str_eq(lw->workloads[0]->workload, WKEY);
	cr_assert_str_eq(lw->workloads[0]->state, "learning");
	cr_assert_eq(lw->workloads[0]->samples, 3 * NTRAIN);
	kloudlens__v1__list_workloads_response__free_unpacked(lw, NULL);

	/* promote on the stage's own socket */
	Kloudlens__V1__BaselineRequest bq = KLOUDLENS__V1__BASELINE_REQUEST__INIT;
	Kloudlens__V1__BaselineResponse *br = NULL;
	struct kl_client cl;
	bq.workload = WKEY;
	cr_assert_eq(kl_client_open(&cl, url, NULL, 3000), 0);
	int code = kl_client_call(&cl, "/kloudlens.v1.AdminService/BaselinePromote", &bq.base,
				  &kloudlens__v1__baseline_response__descriptor, (ProtobufCMessage **)&br, err,
				  sizeof(err));
	cr_assert_eq(code, 0, "BaselinePromote: %d %s", code, err);
	cr_assert_eq(br->workloads, 1);
	cr_assert_str_eq(br->state, "active");
	cr_assert_eq(strncmp(br->profile_id, "prof-", 5), 0, "profile id %s", br->profile_id);
	char prof_id[32], prof_path[400];
	snprintf(prof_id, sizeof(prof_id), "%s", br->profile_id);
	snprintf(prof_path, sizeof(prof_path), "%s/%s.json", profiles, prof_id);
	kloudlens__v1__baseline_response__free_unpacked(br, NULL);

	/* a malformed request: INVALID_ARGUMENT, and the socket keeps serving */
	static const uint8_t bad[] = "/kloudlens.v1.BaselineService/ListWorkloads\0\0\0\0\0\x64xyz";
	void *reply = NULL;
	size_t rlen = 0;
	ProtobufCMessage *none = NULL;
	cr_assert_eq(kl_client_call_raw(&cl, bad, sizeof(bad) - 1, &reply, &rlen), 0);
	code = kl_client_parse_reply(&cl, reply, rlen, &kloudlens__v1__list_workloads_response__descriptor, &none,
				     err, sizeof(err));
	free(reply);
	cr_assert_eq(code, 3, "malformed request: status %d (%s), want INVALID_ARGUMENT", code, err);
	cr_assert_null(none);
	static const uint8_t nonul[] = "no method name terminator";
	cr_assert_eq(kl_client_call_raw(&cl, nonul, sizeof(nonul) - 1, &reply, &rlen), 0);
	code = kl_client_parse_reply(&cl, reply, rlen, &kloudlens__v1__list_workloads_response__descriptor, &none,
				     err, sizeof(err));
	free(reply);
	cr_assert_eq(code, 3, "request without a method: status %d (%s)", code, err);
	kl_client_close(&cl);
	lw = list(url);
	cr_assert_eq(lw->n_workloads, 1);
	cr_assert_str_eq(lw->workloads[0]->state, "active");
	cr_assert_str_eq(lw->workloads[0]->profile_id, prof_id);
	kloudlens__v1__list_workloads_response__free_unpacked(lw, NULL);
	struct stat sb;
	cr_assert_eq(stat(prof_path, &sb), 0, "profile %s not written at promotion", prof_path);

	/* detect: the learned behaviour around one new executable */
	put_training(in, en, 2);
	static const struct ev nc = { KL_INTENT_PROCESS_START, 0, 0, "/usr/bin/nc", "/bin/sh", NULL, NULL };
	put_ev(in, &nc);
	put_training(in, en, 2);
	wait_consumed(in);
	wait_consumed(en);

	struct shm_rec recs[16];
	int got = 0;
	/* kl-baselined publishes after each input batch; the consumed cursor says the batch was fed */
	for (int tries = 0; tries < 5; tries++) {
		int n = shm_consumer_poll(c, recs, 16, 200);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++, got++) {
			struct kl_deviation d;
			cr_assert_eq(recs[i].type, KL_REC_DEVIATION);
			cr_assert_eq(kl_rec_validate(recs[i].type, recs[i].data, recs[i].len), KL_REC_OK);
			memcpy(&d, recs[i].data, sizeof(d));
			cr_assert_eq(d.kind, KL_DEV_NEW_EXEC, "deviation kind %u", d.kind);
			cr_assert_eq(d.severity, KL_DEV_SEV_HIGH);
			cr_assert_eq(d.intent_kind, KL_INTENT_PROCESS_START);
			cr_assert_eq(d.occurrences, 1);
			cr_assert(str_field(&recs[i], KL_F_DEV_ITEM, "/usr/bin/nc"));
			cr_assert(str_field(&recs[i], KL_F_DEV_WORKLOAD, WKEY));
			cr_assert(str_field(&recs[i], KL_F_DEV_PROFILE, prof_id));
			cr_assert(str_field(&recs[i], KL_F_POD_NAME, api.pod));
			cr_assert(str_field(&recs[i], KL_F_POD_NAMESPACE, "prod"));
			cr_assert(str_field(&recs[i], KL_F_CONTAINER_NAME, "api"));
			cr_assert(str_field(&recs[i], KL_F_EXE, "/usr/bin/nc"));
		}
		if (n > 0)
			shm_consumer_release(c);
	}
	cr_assert_eq(got, 1, "deviations: %d, want exactly the new executable", got);
	lw = list(url);
	cr_assert_eq(lw->workloads[0]->deviations, 1);
	kloudlens__v1__list_workloads_response__free_unpacked(lw, NULL);

	/* SIGTERM: exit 0, the profile on disk loads back for the workload */
	int st = st_stop(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-baselined exit status %d", st);
	struct bl_loaded *pl = NULL;
	char perr[512];
	cr_assert_eq(bl_profile_load(prof_path, &pl, perr, sizeof(perr)), 0, "%s", perr);
	cr_assert_str_eq(pl->id, prof_id);
	cr_assert_eq(pl->nw, 1);
	cr_assert_str_eq(pl->w[0].key, WKEY);
	bl_loaded_free(pl);
	cr_assert_eq(shm_consumer_poll(c, recs, 16, 0), 0, "nothing more after SIGTERM");
	shm_consumer_detach(c);
	shm_ring_close(dev);
	shm_ring_close(in);
	shm_ring_close(en);
}

/* ---- klctl baseline through kl-exporter ------------------------------------------ */

/* Run klctl; stdout lines parsed as JSON into an array (a pipe gets JSON anyway). */
static json_t *klctl(const char *admin, int *rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static json_t *klctl(const char *admin, int *rc, const char *fmt, ...)
{
	char args[512], cmd[1200], line[65536], bin[512];
	json_t *a = json_array();
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	st_bin(bin, sizeof(bin), "klctl/klctl");
	snprintf(cmd, sizeof(cmd), "%s --admin %s %s 2>/dev/null", bin, admin, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		json_t *j = json_loads(line, 0, NULL);
		cr_assert_not_null(j, "klctl %s printed a line that is not JSON: %s", args, line);
		json_array_append_new(a, j);
	}
	int st = pclose(p);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return a;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* the one workload klctl baseline list printed */
static json_t *only(json_t *a)
{
	cr_assert_eq(json_array_size(a), 1, "%zu lines", json_array_size(a));
	return json_array_get(a, 0);
}

Test(baselined_proc, klctl_baseline_through_exporter)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *in, *en;
	char bin[512], xbin[512], profiles[256], admin[64], sub[64], wal[256];
	int rc;

	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(dir, "intents", &o, &in), 0);
	cr_assert_eq(shm_ring_create(dir, "enriched", &o, &en), 0);
	snprintf(profiles, sizeof(profiles), "%s/profiles", dir);
	snprintf(wal, sizeof(wal), "%s/wal", dir);
	snprintf(admin, sizeof(admin), "tcp://127.0.0.1:%d", free_port());
	snprintf(sub, sizeof(sub), "tcp://127.0.0.1:%d", free_port());
	st_bin(bin, sizeof(bin), "baselined/kl-baselined");
	st_bin(xbin, sizeof(xbin), "exporter/kl-exporter");
	char *argv[] = { bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", "--profiles", profiles,
			 "--window", "1h", "--min-samples", "5", NULL };
	st_spawn(argv);
	st_wait_consumers(in, 1);
	st_wait_consumers(en, 1);
	char *xargv[] = { xbin, "--rings", dir, "--wal", wal, "--wal-fsync", "none", "--subscribe", sub, "--admin",
			  admin, "--metrics", "", "--observer", NULL };
	st_spawn(xargv);
	put_training(in, en, 2);
	wait_consumed(in);

	/* list: learning; the exporter may need a moment to come up */
	json_t *a = NULL;
	for (int i = 0; i < 50; i++) {
		a = klctl(admin, &rc, "baseline list");
		if (!rc)
			break;
		json_decref(a);
		a = NULL;
		usleep(100000);
	}
	cr_assert_not_null(a, "klctl baseline list never answered (exit %d)", rc);
	json_t *w = only(a);
	cr_assert_str_eq(jstr(w, "workload"), WKEY);
	cr_assert_str_eq(jstr(w, "state"), "learning");
	cr_assert_str_eq(jstr(w, "policy"), "default");
	cr_assert_eq(json_integer_value(json_object_get(w, "samples")), 2 * NTRAIN);
	cr_assert_eq(json_integer_value(json_object_get(w, "window_ns")), 3600 * S);
	json_decref(a);
	a = klctl(admin, &rc, "baseline list no/such/workload");
	cr_assert_eq(rc, 0);
	cr_assert_eq(json_array_size(a), 0);
	json_decref(a);

	/* promote -> active with a profile on disk */
	a = klctl(admin, &rc, "--json baseline promote %s", WKEY);
	cr_assert_eq(rc, 0);
	w = only(a);
	cr_assert_str_eq(jstr(w, "call"), "promote");
	cr_assert_str_eq(jstr(w, "state"), "active");
	cr_assert_eq(json_integer_value(json_object_get(w, "workloads")), 1);
	char id[64];
	snprintf(id, sizeof(id), "%s", jstr(w, "profile_id"));
	cr_assert_eq(strncmp(id, "prof-", 5), 0, "%s", id);
	json_decref(a);
	a = klctl(admin, &rc, "baseline profiles");
	cr_assert_eq(rc, 0);
	w = only(a);
	cr_assert_str_eq(jstr(w, "profile_id"), id);
	cr_assert_str_eq(jstr(w, "workload"), WKEY);
	cr_assert_gt(json_integer_value(json_object_get(w, "size_bytes")), 100);
	json_decref(a);
	a = klctl(admin, &rc, "baseline show %s", id);
	cr_assert_eq(rc, 0);
	w = only(a);
	json_t *b = json_object_get(json_array_get(json_object_get(w, "workloads"), 0), "baseline");
	cr_assert_str_eq(jstr(b, "key"), WKEY);
	cr_assert_str_eq(jstr(b, "state"), "active");
	json_decref(a);

	/* reset -> learning again; activate the saved profile by id -> active with the same id */
	a = klctl(admin, &rc, "baseline reset %s", WKEY);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(jstr(only(a), "state"), "learning");
	json_decref(a);
	a = klctl(admin, &rc, "baseline list %s", WKEY);
	cr_assert_str_eq(jstr(only(a), "state"), "learning");
	json_decref(a);
	a = klctl(admin, &rc, "baseline activate --profile %s", id);
	cr_assert_eq(rc, 0);
	cr_assert_eq(json_integer_value(json_object_get(only(a), "workloads")), 1);
	json_decref(a);
	a = klctl(admin, &rc, "baseline list");
	w = only(a);
	cr_assert_str_eq(jstr(w, "state"), "active");
	cr_assert_str_eq(jstr(w, "profile_id"), id);
	json_decref(a);
	a = klctl(admin, &rc, "baseline show --workload %s", WKEY);
	cr_assert_eq(rc, 0);
	cr_assert_eq(json_array_size(a), 1);
	json_decref(a);

	/* errors: the stage's NOT_FOUND comes through (exit 4); usage is 2; no exporter is 3 */
	a = klctl(admin, &rc, "baseline promote no/such/workload");
	cr_assert_eq(rc, 4);
	json_decref(a);
	a = klctl(admin, &rc, "baseline activate --profile prof-0000000000000000");
	cr_assert_eq(rc, 4);
	json_decref(a);
	a = klctl(admin, &rc, "baseline show");
	cr_assert_eq(rc, 2);
	json_decref(a);
	a = klctl(admin, &rc, "baseline frobnicate");
	cr_assert_eq(rc, 2);
	json_decref(a);
	a = klctl(admin, &rc, "baseline reset --profile %s", id);
	cr_assert_eq(rc, 2, "--profile belongs to activate only");
	json_decref(a);
	char dead[64];
	snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", free_port());
	a = klctl(dead, &rc, "baseline list");
	cr_assert_eq(rc, 3);
	json_decref(a);
	shm_ring_close(in);
	shm_ring_close(en);
}
