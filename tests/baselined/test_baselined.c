/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-baselined engine, profiles, merge and policies on generated streams
 * (deterministic: event time drives everything).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "gen.h"
#include "policy.h"
#include "profile.h"

#define S 1000000000ull

/* Deviations captured as JSON lines. */
struct cap {
	struct kl_buf out;
	int n;
	struct kl_deviation last;
};

static int cap_emit(void *ctx, const void *rec, size_t len)
{
	struct cap *c = ctx;
	cr_assert_eq(kl_rec_validate(KL_REC_DEVIATION, rec, len), KL_REC_OK);
	memcpy(&c->last, rec, sizeof(c->last));
	kl_rec_to_json(&c->out, KL_REC_DEVIATION, rec, len, UINT64_MAX);
	kl_buf_putc(&c->out, '\n');
	c->n++;
	return 0;
}

static const struct gen_ctx web = {
	.exe = "/usr/sbin/nginx", .parent_exe = "/usr/bin/runc", .ctr_id = "c0ffee01", .ctr_name = "nginx",
	.image = "registry.example.com/shop/nginx:1.4", .pod = "web-7d4b9c8f6d-x2x9z", .pod_ns = "shop",
	.pod_uid = "uid-1", .pid = 4242, .uid = 101, .start_ns = 5,
};

struct ev {
	int what;               /* 0 intent, 1 syscall */
	uint16_t kind;
	uint32_t iflags, dflags;
	const char *exe, *parent, *path, *peer;
	uint32_t nr;
	int64_t ret;
};

/* the training run: what the workload does normally */
static const struct ev training[] = {
	{ 0, KL_INTENT_PROCESS_START, 0, 0, "/usr/sbin/nginx", "/usr/bin/runc", NULL, NULL, 0, 0 },
	{ 0, KL_INTENT_PROCESS_START, 0, 0, "/bin/sh", "/usr/sbin/nginx", NULL, NULL, 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_READ, NULL, NULL, "/etc/nginx/nginx.conf", NULL, 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_READ, NULL, NULL, "/proc/4242/status", NULL, 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_WRITE | KL_IA_CREATE, NULL, NULL, "/var/log/nginx/access.log", NULL, 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_WRITE | KL_IA_CREATE, NULL, NULL, "/tmp/nginx-a81xk2.tmp", NULL, 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, KL_IN_FAILED, KL_IA_READ, NULL, NULL, "/etc/shadow", NULL, 0, 0 },
	{ 0, KL_INTENT_NETWORK_EXCHANGE, KL_IN_CONNECT, 0, NULL, NULL, NULL, "10.0.0.5:5432", 0, 0 },
	{ 0, KL_INTENT_NETWORK_EXCHANGE, KL_IN_CONNECT, 0, NULL, NULL, NULL, "10.0.0.53:40211", 0, 0 },
	{ 0, KL_INTENT_NETWORK_EXCHANGE, KL_IN_ACCEPT, 0, NULL, NULL, NULL, "0.0.0.0:8080", 0, 0 },
	{ 0, KL_INTENT_NETWORK_LISTEN, 0, 0, NULL, NULL, NULL, "0.0.0.0:8080", 0, 0 },
	{ 0, KL_INTENT_DNS_QUERY, 0, 0, NULL, NULL, "db.shop.svc.cluster.local", NULL, 0, 0 },
	{ 1, 0, 0, 0, NULL, NULL, NULL, NULL, 257, 3 },     /* openat */
	{ 1, 0, 0, 0, NULL, NULL, NULL, NULL, 0, 10 },      /* read */
	{ 1, 0, 0, 0, NULL, NULL, NULL, NULL, 1, 10 },      /* write */
	{ 1, 0, 0, 0, NULL, NULL, NULL, NULL, 165, -1 },    /* mount: EPERM, an attempt */
};

/* injected: each of these twice, in a training replay */
static const struct ev injected[] = {
	{ 0, KL_INTENT_PROCESS_START, 0, 0, "/usr/bin/nc", "/bin/sh", NULL, NULL, 0, 0 },
	{ 0, KL_INTENT_NETWORK_EXCHANGE, KL_IN_CONNECT, 0, NULL, NULL, NULL, "203.0.113.9:4444", 0, 0 },
	{ 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_WRITE, NULL, NULL, "/etc/passwd", NULL, 0, 0 },
};

static uint64_t seq;

static void feed_ev(struct bl_engine *e, const struct ev *v, uint64_t ts)
{
	struct gen_rec r;
	struct gen_ctx c = web;

	if (v->exe) {
		c.exe = v->exe;
		c.parent_exe = v->parent;
	}
	if (v->what == 1)
		gen_syscall(&r, &c, ++seq, ts, v->nr, v->ret);
	else
		gen_intent(&r, &c, ++seq, ts, v->kind, v->iflags, v->dflags, v->path, v->peer, 0, 0);
	cr_assert_eq(bl_engine_feed(e, r.type, r.buf, r.len), 0);
}

static void feed_all(struct bl_engine *e, const struct ev *v, size_t n, uint64_t t0, int reps)
{
	for (int k = 0; k < reps; k++)
		for (size_t i = 0; i < n; i++)
			feed_ev(e, &v[i], t0 + (uint64_t)(k * n + i) * 1000);
}

static struct bl_engine *engine(struct cap *c, uint64_t window_ns, uint64_t min_samples)
{
	struct bl_config cfg;
	struct bl_policy def;
	struct bl_engine *e;

	bl_config_default(&cfg);
	snprintf(cfg.node, sizeof(cfg.node), "node-1");
	bl_policy_default(&def);
	def.window_ns = window_ns;
	def.min_samples = min_samples;
	cr_assert_eq(bl_engine_new(&cfg, cap_emit, c, &e), 0);
	cr_assert_eq(bl_engine_set_policies(e, NULL, 0, &def), 0);
	return e;
}

static struct bl_engine *trained(struct cap *c)
{
	struct bl_engine *e = engine(c, 3600 * S, 1);
	feed_all(e, training, sizeof(training) / sizeof(training[0]), 10 * S, 5);
	cr_assert_eq(bl_engine_promote(e, NULL), 1);
	cr_assert_eq(c->n, 0, "no deviations while learning");
	return e;
}

static const char *WKEY = "shop/web/nginx@registry.example.com/shop/nginx:1.4";

Test(baselined, workload_key_and_helpers)
{
	char b[256];
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);

	cr_assert_eq(bl_engine_nworkloads(e), 1);
	cr_assert_not_null(bl_engine_find(e, WKEY), "replicas share the key without the pod suffix");
	bl_pod_owner(b, sizeof(b), "db-0", 4);
	cr_assert_str_eq(b, "db");
	bl_pod_owner(b, sizeof(b), "agent-x2x9z", 11);
	cr_assert_str_eq(b, "agent");
	bl_pod_owner(b, sizeof(b), "plain", 5);
	cr_assert_str_eq(b, "plain");
	bl_generalise_path(b, sizeof(b), "/proc/412/task/419/stat", 23);
	cr_assert_str_eq(b, "/proc/*/task/*/stat");
	bl_generalise_path(b, sizeof(b), "/tmp/report-a81xk2.csv", 22);
	cr_assert_str_eq(b, "/tmp/*");
	bl_generalise_path(b, sizeof(b), "/tmp/cache/x", 12);
	cr_assert_str_eq(b, "/tmp/cache/x");
	bl_generalise_path(b, sizeof(b), "/etc/os-release2", 16);
	cr_assert_str_eq(b, "/etc/os-release2");
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

Test(baselined, replay_of_training_gives_zero_deviations)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);

	/* other pids, other tmp names, another ephemeral port: generalised the same way */
	feed_all(e, training, sizeof(training) / sizeof(training[0]), 7200 * S, 5);
	cr_assert_eq(c.n, 0, "deviations on replay:\n%s", c.out.p);
	bl_engine_free(e);
}

static void check_injected(struct cap *c)
{
	json_t *j;
	json_error_t je;
	int seen[3] = { 0 };
	char *save = NULL, *buf = strdup(c->out.p ? c->out.p : "");

	cr_assert_eq(c->n, 3, "exactly the three injected deviations, once each:\n%s", c->out.p);
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		j = json_loads(l, 0, &je);
		cr_assert_not_null(j);
		const char *kind = json_string_value(json_object_get(j, "kind"));
		const char *item = json_string_value(json_object_get(j, "item"));
		cr_assert_str_eq(json_string_value(json_object_get(j, "workload")), WKEY);
		cr_assert_not_null(json_object_get(j, "profile"));
		cr_assert_str_eq(json_string_value(json_object_get(j, "container_name")), "nginx");
		cr_assert(json_integer_value(json_object_get(j, "intent_seq")) > 0);
		if (!strcmp(kind, "new_exec")) {
			cr_assert_str_eq(item, "/usr/bin/nc");
			cr_assert_str_eq(json_string_value(json_object_get(j, "severity")), "high");
			seen[0]++;
		} else if (!strcmp(kind, "new_egress")) {
			cr_assert_str_eq(item, "203.0.113.9:4444/TCP");
			seen[1]++;
		} else if (!strcmp(kind, "new_file")) {
			cr_assert_str_eq(item, "/etc/passwd");
			cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "access"), 0)), "write");
			seen[2]++;
		} else {
			cr_assert_fail("unexpected deviation %s", l);
		}
		json_decref(j);
	}
	free(buf);
	cr_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
}

static void inject(struct bl_engine *e, uint64_t t0)
{
	feed_all(e, training, sizeof(training) / sizeof(training[0]), t0, 2);
	feed_all(e, injected, sizeof(injected) / sizeof(injected[0]), t0 + 100 * S, 2);
	feed_all(e, training, sizeof(training) / sizeof(training[0]), t0 + 200 * S, 1);
}

Test(baselined, injected_behaviour_gives_exactly_those_deviations_once)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);

	inject(e, 7200 * S);
	check_injected(&c);
	cr_assert_eq(bl_engine_stats(e)->suppressed, 3, "the repeats are counted, not emitted");
	/* after the rate window the same item is emitted again, carrying the suppressed count */
	feed_all(e, injected, 1, 9000 * S, 1);
	cr_assert_eq(c.n, 4);
	cr_assert_eq(c.last.suppressed, 1);
	cr_assert_eq(c.last.occurrences, 3);
	cr_assert(c.last.dflags & KL_DV_REPEAT);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

static char tmpdir[64];

static void mk_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kl-bl-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void save_profile(struct bl_engine *e, char *id, size_t idlen)
{
	struct bl_wview v;
	struct kl_buf b = { 0 };

	bl_workload_view(bl_engine_find(e, WKEY), &v);
	bl_profile_id_str(id, idlen, v.profile_id);
	cr_assert_eq(bl_profile_render(&b, &v, 1, id, "node-1", 1700000000ll * (int64_t)S, 1700000000ull * S), 0);
	cr_assert_eq(bl_profile_save(tmpdir, id, &b), 0);
	kl_buf_free(&b);
}

static struct bl_engine *reloaded(struct cap *c, const char *id)
{
	char path[256], err[512];
	struct bl_loaded *l;
	struct bl_engine *e = engine(c, 3600 * S, 1);

	snprintf(path, sizeof(path), "%s/%s.json", tmpdir, id);
	cr_assert_eq(bl_profile_load(path, &l, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(l->id, id);
	cr_assert_eq(l->nw, 1);
	cr_assert_eq(bl_engine_install(e, &l->w[0]), 0);
	bl_loaded_free(l);
	return e;
}

Test(baselined, same_after_reload_from_disk)
{
	struct cap c1 = { 0 }, c2 = { 0 };
	struct bl_engine *e = trained(&c1);
	char id[32], id2[32];

	mk_tmp();
	save_profile(e, id, sizeof(id));
	inject(e, 7200 * S);
	check_injected(&c1);

	struct bl_engine *r = reloaded(&c2, id);
	feed_all(r, training, sizeof(training) / sizeof(training[0]), 7200 * S, 3);
	cr_assert_eq(c2.n, 0, "replay after reload:\n%s", c2.out.p);
	inject(r, 8000 * S);
	check_injected(&c2);
	/* and the reloaded profile writes back byte for byte (with the same id) */
	{
		char p1[256], *a, *b;
		struct bl_wview v;
		struct kl_buf kb = { 0 };
		FILE *f;
		long n;
		snprintf(p1, sizeof(p1), "%s/%s.json", tmpdir, id);
		f = fopen(p1, "r");
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		a = calloc(1, (size_t)n + 1);
		cr_assert_eq(fread(a, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		bl_workload_view(bl_engine_find(r, WKEY), &v);
		bl_profile_id_str(id2, sizeof(id2), v.profile_id);
		cr_assert_str_eq(id2, id, "stable profile id");
		bl_profile_render(&kb, &v, 1, id, "node-1", 1700000000ll * (int64_t)S, 1700000000ull * S);
		b = kb.p;
		cr_assert_eq(strlen(a), kb.len);
		cr_assert(!memcmp(a, b, kb.len), "round trip differs");
		free(a);
		kl_buf_free(&kb);
	}
	bl_engine_free(e);
	bl_engine_free(r);
	kl_buf_free(&c1.out);
	kl_buf_free(&c2.out);
}

Test(baselined, attempts_are_reported_never_learned)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);
	struct ev ok_shadow = { 0, KL_INTENT_FILE_ACCESS, 0, KL_IA_READ, NULL, NULL, "/etc/shadow", NULL, 0, 0 };
	struct ev fail_new = { 0, KL_INTENT_FILE_ACCESS, KL_IN_FAILED, KL_IA_READ, NULL, NULL, "/root/.ssh/id_rsa", NULL, 0, 0 };
	struct ev mount_ok = { 1, 0, 0, 0, NULL, NULL, NULL, NULL, 165, 0 };

	/* training saw /etc/shadow fail: succeeding now is a deviation */
	feed_ev(e, &ok_shadow, 7200 * S);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.last.kind, KL_DEV_NEW_FILE);
	cr_assert_eq(c.last.dflags & KL_DV_ATTEMPT, 0);
	/* a new failure is an attempt */
	feed_ev(e, &fail_new, 7201 * S);
	cr_assert_eq(c.n, 2);
	cr_assert(c.last.dflags & KL_DV_ATTEMPT);
	/* mount only ever failed in training (EPERM): a successful one deviates */
	feed_ev(e, &mount_ok, 7202 * S);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(c.last.kind, KL_DEV_NEW_SYSCALL);
	cr_assert(c.last.dflags & KL_DV_SYSCALL);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

/*
 * What a container runtime's init does while it puts a process into the
 * container (runc exec, kubectl exec: KL_IN_ENTERED on the intents,
 * KL_EN_ENTERED on the syscalls) is neither learned nor checked: every
 * exec-in would otherwise deviate on the runtime's own setup.
 */
Test(baselined, runtime_init_is_neither_learned_nor_checked)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);
	struct ev setup = { 0, KL_INTENT_FILE_ACCESS, KL_IN_ENTERED, KL_IA_READ, NULL, NULL,
			    "/proc/sys/kernel/cap_last_cap", NULL, 0, 0 };
	struct ev setup_exec = { 0, KL_INTENT_PROCESS_START, KL_IN_ENTERED, 0, "/usr/sbin/runc", "/usr/sbin/runc",
				 NULL, NULL, 0, 0 };
	struct ev cmd = { 0, KL_INTENT_PROCESS_START, 0, 0, "/usr/bin/nc", "/usr/sbin/runc", NULL, NULL, 0, 0 };
	struct gen_rec r;
	struct gen_ctx g = web;
	uint64_t skipped = bl_engine_stats(e)->runtime_skipped;

	feed_ev(e, &setup, 7200 * S);
	feed_ev(e, &setup_exec, 7201 * S);
	gen_syscall(&r, &g, ++seq, 7202 * S, 435 /* clone3: never seen */, 0);
	((struct kl_enriched *)r.buf)->eflags |= KL_EN_ENTERED;
	cr_assert_eq(bl_engine_feed(e, r.type, r.buf, r.len), 0);
	cr_assert_eq(c.n, 0, "the runtime's setup is not the workload's behaviour");
	cr_assert_eq(bl_engine_stats(e)->runtime_skipped, skipped + 3);
	/* what it was asked to run is the workload: checked as usual */
	feed_ev(e, &cmd, 7203 * S);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.last.kind, KL_DEV_NEW_EXEC);
	/* and the same syscall from the workload itself is a deviation */
	gen_syscall(&r, &g, ++seq, 7204 * S, 435, 0);
	cr_assert_eq(bl_engine_feed(e, r.type, r.buf, r.len), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.last.kind, KL_DEV_NEW_SYSCALL);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

Test(baselined, window_and_min_samples_promote_automatically)
{
	struct cap c = { 0 };
	struct bl_engine *e = engine(&c, 60 * S, 50);
	struct ev nc = injected[0];
	const size_t n = sizeof(training) / sizeof(training[0]);
	struct bl_wview v;

	feed_all(e, training, n, 10 * S, 2);                /* 24 intents */
	feed_ev(e, &training[2], 100 * S);                    /* window over, too few */
	bl_workload_view(bl_engine_find(e, WKEY), &v);
	cr_assert_eq(v.state, BL_INSUFFICIENT);
	feed_all(e, training, n, 110 * S, 3);
	bl_workload_view(bl_engine_find(e, WKEY), &v);
	cr_assert_eq(v.state, BL_ACTIVE);
	cr_assert_neq(v.profile_id, 0);
	cr_assert(bl_engine_next_dirty(e) != NULL, "promotion marks the profile for saving");
	feed_ev(e, &nc, 200 * S);
	cr_assert_eq(c.n, 1);
	/* reset: learning again, nothing emitted */
	cr_assert_eq(bl_engine_reset(e, WKEY), 1);
	feed_ev(e, &nc, 210 * S);
	cr_assert_eq(c.n, 1);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

Test(baselined, emit_none_until_activated)
{
	struct cap c = { 0 };
	struct bl_config cfg;
	struct bl_policy def;
	struct bl_engine *e;

	bl_config_default(&cfg);
	bl_policy_default(&def);
	def.emit = false;
	def.min_samples = 1;
	cr_assert_eq(bl_engine_new(&cfg, cap_emit, &c, &e), 0);
	bl_engine_set_policies(e, NULL, 0, &def);
	feed_all(e, training, sizeof(training) / sizeof(training[0]), 10 * S, 1);
	bl_engine_promote(e, NULL);
	feed_all(e, injected, 1, 20 * S, 1);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(bl_engine_activate(e, WKEY), 1);
	feed_all(e, injected, 1, 30 * S, 1);
	cr_assert_eq(c.n, 1);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(s, f);
	fclose(f);
}

static int run(const char *cmd)
{
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

Test(baselined, contractc_accepts_profiles)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);
	char id[32], cmd[1024];
	const char *root = getenv("KLOUDLENS_BUILD_ROOT");

	mk_tmp();
	save_profile(e, id, sizeof(id));
	if (!root)
		cr_skip_test("KLOUDLENS_BUILD_ROOT not set");
	snprintf(cmd, sizeof(cmd), "%s/contractc/contractc generate --from-profile %s/%s.json -o %s/c.yaml",
		 root, tmpdir, id, tmpdir);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof(cmd), "%s/contractc/contractc gap --profile %s/%s.json --policy %s/c.yaml >/dev/null",
		 root, tmpdir, id, tmpdir);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	/* merged profiles too */
	snprintf(cmd, sizeof(cmd), "%s/baselined/kl-baselined merge %s/%s.json %s/%s.json -o %s/m.json && "
		 "%s/contractc/contractc generate --from-profile %s/m.json >/dev/null",
		 root, tmpdir, id, tmpdir, id, tmpdir, root, tmpdir);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	bl_engine_free(e);
}

Test(baselined, merge_unites_replicas)
{
	struct cap c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
	struct bl_engine *a = trained(&c1), *b = engine(&c2, 3600 * S, 1);
	char ida[32], idb[32], pa[128], pb[128], err[512];
	const char *paths[2] = { pa, pb };
	struct kl_buf m = { 0 };
	struct bl_loaded *l;

	mk_tmp();
	save_profile(a, ida, sizeof(ida));
	/* replica B saw the training plus the new exec, on another node */
	/* (its window starts elsewhere: the id is the key and the window, so it differs from A's) */
	feed_all(b, training, sizeof(training) / sizeof(training[0]), 11 * S, 1);
	feed_all(b, injected, 1, 20 * S, 1);
	bl_engine_promote(b, NULL);
	save_profile(b, idb, sizeof(idb));
	snprintf(pa, sizeof(pa), "%s/%s.json", tmpdir, ida);
	snprintf(pb, sizeof(pb), "%s/%s.json", tmpdir, idb);
	cr_assert_eq(bl_profile_merge(paths, 2, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(bl_profile_parse("merged", m.p, m.len, &l, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(l->nw, 1);
	cr_assert_eq(l->w[0].samples, 5 * 11 + 11 + 1, "samples add up (failed intents and syscalls are not samples): %llu", (unsigned long long)l->w[0].samples);
	struct bl_engine *e = engine(&c3, 3600 * S, 1);
	cr_assert_eq(bl_engine_install(e, &l->w[0]), 0);
	inject(e, 7200 * S);
	cr_assert_eq(c3.n, 2, "nc is known from replica B:\n%s", c3.out.p);
	bl_loaded_free(l);
	kl_buf_free(&m);
	bl_engine_free(a);
	bl_engine_free(b);
	bl_engine_free(e);
	kl_buf_free(&c3.out);
}

static void expect_bad(const char *doc, const char *what)
{
	char err[512];
	struct bl_loaded *l = NULL;
	int r = bl_profile_parse("bad.json", doc, strlen(doc), &l, err, sizeof(err));
	cr_assert_eq(r, -EINVAL, "accepted: %s", doc);
	cr_assert(strstr(err, what), "error \"%s\" lacks \"%s\"", err, what);
	cr_assert(!strncmp(err, "bad.json:", 9), "error names the file: %s", err);
}

Test(baselined, corrupt_profiles_are_rejected_with_where)
{
	struct cap c = { 0 };
	struct bl_engine *e = trained(&c);
	struct bl_wview v;
	struct kl_buf b = { 0 };
	char err[512];
	struct bl_loaded *l;

	bl_workload_view(bl_engine_find(e, WKEY), &v);
	bl_profile_render(&b, &v, 1, "prof-0000000000000001", "n", 0, 0);
	/* every truncation fails cleanly, naming line and column */
	for (size_t cut = 0; cut + 2 < b.len; cut += 97) {
		int r = bl_profile_parse("cut.json", b.p, cut, &l, err, sizeof(err));
		cr_assert_eq(r, -EINVAL, "truncated at %zu accepted", cut);
		cr_assert(!strncmp(err, "cut.json:1:", 11), "%s", err);
	}
	expect_bad("{\"apiVersion\":\"kloudlens.io/v1\",\"kind\":\"Profile\",\"metadata\":{\"id\":\"x\"},\"workloads\":[]}",
		   "workloads: must be a non-empty list");
	expect_bad("{\"apiVersion\":\"kloudlens.io/v1\",\"kind\":\"Profile\",\"metadata\":{\"id\":\"x\"},"
		   "\"workloads\":[{\"selector\":{},\"samples\":{\"events\":1}}]}",
		   "workloads[0].baseline: missing");
	/* a bad count deep inside, and a damaged sketch */
	char *bad = strdup(b.p);
	char *p = strstr(bad, "\"count\":");
	cr_assert_not_null(p);
	memcpy(p + 8, "0", 1);
	expect_bad(bad, "\"count\" must be an integer >= 1");
	free(bad);
	bad = strdup(b.p);
	p = strstr(bad, "\"rows\":[\"");
	cr_assert_not_null(p);
	memcpy(p + 9, "!!!!", 4);
	expect_bad(bad, "workloads[0].baseline.sketch: rows[0]: not 2048 bytes of base64");
	free(bad);
	cr_assert_eq(bl_profile_load("/nonexistent/p.json", &l, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/p.json"));
	kl_buf_free(&b);
	bl_engine_free(e);
}

Test(baselined, policies_parse_and_reject_with_file_line_key)
{
	struct bl_policy *pol = NULL;
	size_t n = 0;
	char err[512], path[512];
	const char *src = getenv("KLOUDLENS_SOURCE_ROOT");

	if (src) {
		snprintf(path, sizeof(path), "%s/deployments/examples", src);
		cr_assert_eq(bl_policy_load_dir(path, &pol, &n, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(n, 2);
		cr_assert_str_eq(pol[0].name, "shop/web");
		cr_assert_eq(pol[0].window_ns, 24 * 3600 * S);
		cr_assert_eq(pol[0].min_samples, 100000);
		cr_assert_eq(pol[0].min_pods, 2);
		cr_assert_eq(pol[0].learn & BL_LEARN_CAPS, 0);
		cr_assert_eq(pol[0].relearn_ns, 168 * 3600 * S);
		cr_assert_str_eq(pol[1].name, "reports/batch");
		cr_assert_eq(pol[1].window_ns, 90 * 60 * S);
		free(pol);
	}
	static const struct { const char *doc, *want; } bad[] = {
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {container: x}\n  learning: {window: 24x}\n",
		  "x.yaml:6:22: spec.learning.window: must be a duration" },
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {container: x}\n  learning: {window: 1h}\n  bogus: 1\n",
		  "x.yaml:7:3: spec.bogus: unknown key" },
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {container: x}\n  learning: {window: 1h, minSamples: 0}\n",
		  "spec.learning.minSamples: must be an integer >= 1" },
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {}\n  learning: {window: 1h}\n",
		  "spec.selector: must not be empty" },
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {container: x}\n  learning: {window: 1h}\n  learn: {files: {modes: [read, append]}}\n",
		  "spec.learn.files.modes[1]: must be one of read, write, exec" },
		{ "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\nspec:\n  selector: {container: x}\n",
		  "spec.learning: required" },
		{ "kind: BaselinePolicy\n  bad: [\n", "x.yaml:2:" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pol = NULL;
		n = 0;
		int r = bl_policy_parse("x.yaml", bad[i].doc, strlen(bad[i].doc), &pol, &n, err, sizeof(err));
		cr_assert_eq(r, -EINVAL, "accepted #%zu", i);
		cr_assert(strstr(err, bad[i].want), "#%zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
		free(pol);
	}
	/* other kinds are skipped; a directory with a bad file gives nothing (the last good set stays) */
	mk_tmp();
	snprintf(path, sizeof(path), "%s/a.yaml", tmpdir);
	write_file(path, "kind: HookSubscription\napiVersion: kloudlens.io/v1\nmetadata: {name: h}\nspec: {categories: [crit]}\n"
			 "---\nkind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: a}\n"
			 "spec:\n  selector: {container: nginx}\n  learning: {window: 10s, minSamples: 5}\n");
	cr_assert_eq(bl_policy_load_dir(tmpdir, &pol, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 1);
	free(pol);
	snprintf(path, sizeof(path), "%s/b.yml", tmpdir);
	write_file(path, "kind: BaselinePolicy\napiVersion: kloudlens.io/v1\nmetadata: {name: b}\nspec: {selector: {container: y}}\n");
	cr_assert_eq(bl_policy_load_dir(tmpdir, &pol, &n, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "b.yml:4:") && strstr(err, "spec.learning: required"), "%s", err);
	cr_assert_null(pol);
	uint64_t d;
	cr_assert_eq(bl_parse_duration("1h30m", &d), 0);
	cr_assert_eq(d, 90 * 60 * S);
	cr_assert_eq(bl_parse_duration("500ms", &d), 0);
	cr_assert_eq(d, S / 2);
	cr_assert_eq(bl_parse_duration("1d", &d), -EINVAL);
}

Test(baselined, policy_selects_workloads)
{
	struct cap c = { 0 };
	struct bl_config cfg;
	struct bl_policy p, def;
	struct bl_engine *e;
	struct bl_wview v;

	bl_config_default(&cfg);
	cfg.policies_only = true;
	cr_assert_eq(bl_engine_new(&cfg, cap_emit, &c, &e), 0);
	bl_policy_default(&def);
	bl_policy_default(&p);
	snprintf(p.name, sizeof(p.name), "shop/web");
	snprintf(p.container, sizeof(p.container), "nginx");
	snprintf(p.image, sizeof(p.image), "registry.example.com/shop/nginx");  /* any tag */
	p.min_samples = 1;
	bl_engine_set_policies(e, NULL, 0, &def);
	feed_all(e, training, 3, 10 * S, 1);
	bl_workload_view(bl_engine_find(e, WKEY), &v);
	cr_assert_eq(v.state, BL_IDLE, "no policy: not learned");
	bl_engine_set_policies(e, &p, 1, &def);
	feed_all(e, training, sizeof(training) / sizeof(training[0]), 20 * S, 1);
	bl_workload_view(bl_engine_find(e, WKEY), &v);
	cr_assert_eq(v.state, BL_LEARNING);
	cr_assert_str_eq(v.policy, "shop/web");
	bl_engine_free(e);
}

Test(baselined, rare_items_under_the_floor)
{
	struct cap c = { 0 };
	struct bl_config cfg;
	struct bl_policy def;
	struct bl_engine *e;

	bl_config_default(&cfg);
	cfg.rare_floor = 3;
	bl_policy_default(&def);
	def.min_samples = 1;
	cr_assert_eq(bl_engine_new(&cfg, cap_emit, &c, &e), 0);
	bl_engine_set_policies(e, NULL, 0, &def);
	feed_all(e, training, sizeof(training) / sizeof(training[0]), 10 * S, 5);
	feed_all(e, injected, 1, 20 * S, 1);                /* nc seen once in training */
	bl_engine_promote(e, NULL);
	feed_all(e, injected, 1, 30 * S, 1);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.last.kind, KL_DEV_RARE);
	cr_assert_eq(c.last.estimate, 1);
	cr_assert_eq(c.last.number, KL_DEV_NEW_EXEC);
	bl_engine_free(e);
	kl_buf_free(&c.out);
}
