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

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/kl-enr-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(enricher_proc, .init = setup, .fini = teardown, .timeout = 60);

static char *status_field(pid_t pid, const char *key, char *buf, size_t n)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	buf[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			char *v = line + strlen(key) + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			snprintf(buf, n, "%s", v);
			buf[strcspn(buf, "\n")] = 0;
		}
	fclose(f);
	return buf;
}

Test(enricher_proc, unprivileged_and_enriches)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *raw, *en = NULL;
	struct shm_consumer *c;
	char bin[512], buf[256];
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");

	o.capacity = 1 << 20;
	o.policy = SHM_POLICY_DROP;
	cr_assert_eq(shm_ring_create(dir, "raw", &o, &raw), 0);
	snprintf(bin, sizeof(bin), "%s/enricher/kl-enricher", b ? b : "build");
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(bin, bin, "--dir", dir, "--capacity", "1048576", "--wait", "5", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && shm_ring_open(dir, "enriched", &en); i++)
		usleep(50000);
	cr_assert_not_null(en, "kl-enricher never created the enriched ring");
	cr_assert_eq(shm_consumer_attach(en, "test", SHM_REQUIRED, &c), 0);
	/* wait until it is attached to raw, i.e. past the privilege drop */
	struct shm_ring_info info;
	for (int i = 0; i < 100; i++) {
		shm_ring_info(raw, &info);
		if (info.nconsumers)
			break;
		usleep(50000);
	}
	cr_assert_eq(info.nconsumers, 1);

	if (getuid() == 0) {
		cr_assert_neq(strncmp(status_field(pid, "Uid", buf, sizeof(buf)), "0\t", 2), 0,
			      "kl-enricher still runs as root: Uid %s", buf);
		cr_assert_str_eq(status_field(pid, "CapEff", buf, sizeof(buf)), "0000000000000000");
		cr_assert_str_eq(status_field(pid, "CapPrm", buf, sizeof(buf)), "0000000000000000");
		cr_assert_str_eq(status_field(pid, "CapBnd", buf, sizeof(buf)), "0000000000000000");
		cr_assert_str_eq(status_field(pid, "CapAmb", buf, sizeof(buf)), "0000000000000000");
		cr_assert_str_eq(status_field(pid, "NoNewPrivs", buf, sizeof(buf)), "1");
	}

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

	kill(pid, SIGTERM);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kl-enricher exit status %d", st);
	shm_consumer_detach(c);
	shm_ring_close(en);
	shm_ring_close(raw);
}
