/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real kl-enricher process: started as root, it must drop to an
 * unprivileged user with no capabilities, read `raw` and publish
 * `enriched`, and stop cleanly on SIGTERM.
 */
#include <criterion/criterion.h>
#include <errno.h>
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

static char dir[128];

static void setup(void)
{
	st_dir_setup(dir, sizeof(dir), "kl-enr-test");
}

static void teardown(void)
{
	st_dir_teardown(dir);
}

TestSuite(enricher_proc, .init = setup, .fini = teardown, .timeout = 60);

Test(enricher_proc, unprivileged_and_enriches)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *raw, *en = NULL;
	struct shm_consumer *c;
	char bin[512];

	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_DROP;
	cr_assert_eq(shm_ring_create(dir, "raw", &o, &raw), 0);
	st_bin(bin, sizeof(bin), "enricher/kl-enricher");
	char *argv[] = { bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", NULL };
	pid_t pid = st_spawn(argv);
	en = st_wait_ring(dir, "enriched");
	cr_assert_eq(shm_consumer_attach(en, "test", SHM_REQUIRED, &c), 0);
	/* attached to raw: past the privilege drop */
	st_wait_consumers(raw, 1);

	st_assert_unprivileged(pid, "kl-enricher");

	uint8_t rec[2048];
	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 4242, .init_pid = 77,
			      .mnt_ns = 4026533333u, .id = "abc123", .name = "api", .image = "api:2",
			      .pod = "api-0", .pod_ns = "prod", .pod_uid = "u-1" };
	struct rg_task t = { .pid = 77, .start_ns = 1, .cgroup_id = 4242, .comm = "api" };
	struct rg_sc sc = { .nr = 2, .ret = 3, .path = "/etc/hosts" };
	cr_assert_eq(shm_write(raw, KL_REC_CONTAINER, rec, (uint32_t)rg_container(rec, sizeof(rec), 1, 10, &ctr)), 0);
	cr_assert_eq(shm_write(raw, KL_REC_SYSCALL, rec, (uint32_t)rg_syscall(rec, sizeof(rec), &t, 2, 20, &sc)), 0);
	sc = (struct rg_sc){ .nr = 0, .ret = 10, .args = { 3 } };
	cr_assert_eq(shm_write(raw, KL_REC_SYSCALL, rec, (uint32_t)rg_syscall(rec, sizeof(rec), &t, 3, 30, &sc)), 0);
	memset(rec, 0xee, 200);   /* garbage must not stop the stream */
	cr_assert_eq(shm_write(raw, KL_REC_SYSCALL, rec, 200), 0);
	sc = (struct rg_sc){ .nr = 3, .ret = 0, .args = { 3 } };
	cr_assert_eq(shm_write(raw, KL_REC_SYSCALL, rec, (uint32_t)rg_syscall(rec, sizeof(rec), &t, 4, 40, &sc)), 0);

	struct shm_rec recs[16];
	int got = 0;
	struct kl_field_view f;
	while (got < 4) {
		int n = shm_consumer_poll(c, recs, 16, 5000);
		cr_assert_gt(n, 0, "enriched records did not arrive (got %d)", got);
		for (int i = 0; i < n; i++, got++) {
			cr_assert_eq(recs[i].type, KL_REC_ENRICHED);
			cr_assert_eq(kl_rec_validate(recs[i].type, recs[i].data, recs[i].len), KL_REC_OK);
			cr_assert(kl_field_find(KL_REC_ENRICHED, recs[i].data, recs[i].len, KL_F_POD_NAME, &f));
			cr_assert_eq(memcmp(f.data, "api-0", 5), 0);
			if (got == 2) {
				cr_assert(kl_field_find(KL_REC_ENRICHED, recs[i].data, recs[i].len, KL_F_FD_PATH, &f));
				cr_assert_eq(memcmp(f.data, "/etc/hosts", 10), 0);
			}
		}
		shm_consumer_release(c);
	}
	cr_assert_eq(got, 4, "the invalid raw record should be dropped, the rest delivered");

	int st = st_stop(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-enricher exit status %d", st);
	shm_consumer_detach(c);
	shm_ring_close(en);
	shm_ring_close(raw);
}
