/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real kl-intentd process: started as root, it must drop to an
 * unprivileged user with no capabilities, read `enriched` and publish
 * `intents`, survive a garbage record, and on SIGTERM flush what it still
 * folds (marked "shutdown") and exit 0. The enriched records are made by
 * the real enricher engine from collector-shaped raw records.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "../common/rawgen.h"
#include "../common/stagetest.h"
#include "enrich.h"

static char dir[128];

static void setup(void)
{
	st_dir_setup(dir, sizeof(dir), "kl-intentd-test");
}

static void teardown(void)
{
	st_dir_teardown(dir);
}

TestSuite(intentd_proc, .init = setup, .fini = teardown, .timeout = 60);

static struct kl_enricher *en;
static uint64_t seq;

/* raw record -> enricher engine -> the enriched ring */
static void put(struct shm_ring *r, uint16_t type, const void *raw, size_t len)
{
	static uint8_t out[65536];
	long n = kl_enricher_process(en, type, raw, len, out, sizeof(out));
	cr_assert_gt(n, 0);
	cr_assert_eq(shm_write(r, KL_REC_ENRICHED, out, (uint32_t)n), 0);
}

static void sc(struct shm_ring *r, const struct rg_task *t, uint64_t ts, struct rg_sc c)
{
	uint8_t rec[4096];
	seq++;
	put(r, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), t, seq, ts, &c));
}

static bool str_field(const struct shm_rec *r, uint16_t id, const char *want)
{
	struct kl_field_view f;
	return kl_field_find(KL_REC_INTENT, r->data, r->len, id, &f) && f.len == strlen(want) &&
	       !memcmp(f.data, want, f.len);
}

Test(intentd_proc, unprivileged_end_to_end)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *enr, *out = NULL;
	struct shm_consumer *c;
	char bin[512];

	cr_assert_eq(kl_enricher_new(NULL, &en), 0);
	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(dir, "enriched", &o, &enr), 0);
	st_bin(bin, sizeof(bin), "intentd/kl-intentd");
	char *argv[] = { bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", "--node", "test-node", NULL };
	pid_t pid = st_spawn(argv);
	out = st_wait_ring(dir, "intents");
	cr_assert_eq(shm_consumer_attach(out, "test", SHM_REQUIRED, &c), 0);
	/* attached to enriched: past the privilege drop */
	st_wait_consumers(enr, 1);
	st_assert_unprivileged(pid, "kl-intentd");

	uint8_t rec[4096];
	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 4242, .init_pid = 77,
			      .mnt_ns = 4026533333u, .id = "abc123", .name = "api", .image = "api:2",
			      .pod = "api-0", .pod_ns = "prod", .pod_uid = "u-1" };
	struct rg_task t = { .pid = 77, .start_ns = 1, .cgroup_id = 4242, .comm = "api" };
	put(enr, KL_REC_CONTAINER, rec, rg_container(rec, sizeof(rec), ++seq, 10, &ctr));
	put(enr, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), &t, ++seq, 15, KL_PROC_SNAPSHOT, NULL, "/app/api",
					   "api\0", 4, "/app", 0));
	sc(enr, &t, 20, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/etc/hosts" });
	sc(enr, &t, 30, (struct rg_sc){ .nr = 0, .ret = 100, .args = { 3 } });
	sc(enr, &t, 31, (struct rg_sc){ .nr = 0, .ret = 23, .args = { 3 } });
	memset(rec, 0xee, 200);   /* garbage must not stop the stream */
	cr_assert_eq(shm_write(enr, KL_REC_ENRICHED, rec, 200), 0);
	sc(enr, &t, 40, (struct rg_sc){ .nr = 3, .ret = 0, .args = { 3 } });
	sc(enr, &t, 50, (struct rg_sc){ .nr = 2, .ret = 4, .path = "/var/lib/api/db" });
	sc(enr, &t, 51, (struct rg_sc){ .nr = 1, .ret = 9, .args = { 4 } });

	/* ProcessStart (bootstrap) and the FileAccess of /etc/hosts arrive at once */
	struct shm_rec recs[16];
	int got = 0;
	while (got < 2) {
		int n = shm_consumer_poll(c, recs, 16, 5000);
		cr_assert_gt(n, 0, "intents did not arrive (got %d)", got);
		for (int i = 0; i < n; i++, got++) {
			cr_assert_eq(recs[i].type, KL_REC_INTENT);
			cr_assert_eq(kl_rec_validate(recs[i].type, recs[i].data, recs[i].len), KL_REC_OK);
			struct kl_intent in;
			memcpy(&in, recs[i].data, sizeof(in));
			cr_assert(str_field(&recs[i], KL_F_NODE, "test-node"));
			cr_assert(str_field(&recs[i], KL_F_POD_NAME, "api-0"));
			cr_assert(str_field(&recs[i], KL_F_EXE, "/app/api"));
			if (got == 1) {
				cr_assert_eq(in.kind, KL_INTENT_FILE_ACCESS);
				cr_assert(str_field(&recs[i], KL_F_PATH, "/etc/hosts"));
				cr_assert_eq(in.bytes_in, 123);
				cr_assert_eq(in.count, 4);
				cr_assert_eq(in.ctr_cgroup_id, 4242);
			} else {
				cr_assert_eq(in.kind, KL_INTENT_PROCESS_START);
			}
		}
		shm_consumer_release(c);
	}
	cr_assert_eq(got, 2);

	/* SIGTERM: the still-open /var/lib/api/db comes out marked shutdown */
	int st = st_stop(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-intentd exit status %d", st);
	int n = shm_consumer_poll(c, recs, 16, 1000);
	cr_assert_eq(n, 1);
	struct kl_intent in;
	memcpy(&in, recs[0].data, sizeof(in));
	cr_assert_eq(in.kind, KL_INTENT_FILE_ACCESS);
	cr_assert(in.iflags & KL_IN_SHUTDOWN);
	cr_assert_eq(in.bytes_out, 9);
	cr_assert(str_field(&recs[0], KL_F_PATH, "/var/lib/api/db"));
	shm_consumer_release(c);
	shm_consumer_detach(c);
	shm_ring_close(out);
	shm_ring_close(enr);
	kl_enricher_free(en);
}
