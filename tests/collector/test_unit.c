/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the collector's pure parts: no root, no BPF. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kloudlens/recutil.h>

#include "collector.h"

static uint64_t pop_key(struct kc_merge *m, uint64_t wm, uint64_t *payload)
{
	struct kc_item it;

	if (!kc_merge_peek(m, wm, &it))
		return UINT64_MAX;
	*payload = *(uint64_t *)it.rec;
	kc_merge_next(m, &it);
	return it.key;
}

Test(reorder, merges_rings_by_key_below_watermark_only)
{
	struct kc_merge m;
	uint64_t v;

	cr_assert_eq(kc_merge_init(&m, 1 << 20), 0);
	/* ring 0: 10 20 50; ring 3: 15 40; ring 7: 30 */
	uint64_t k0[] = { 10, 20, 50 }, k3[] = { 15, 40 }, k7[] = { 30 };
	for (int i = 0; i < 3; i++)
		cr_assert_not_null(kc_merge_push(&m, 0, k0[i], KL_REC_SYSCALL, &k0[i], 8));
	for (int i = 0; i < 2; i++)
		cr_assert_not_null(kc_merge_push(&m, 3, k3[i], KL_REC_SYSCALL, &k3[i], 8));
	cr_assert_not_null(kc_merge_push(&m, 7, k7[0], KL_REC_PROC, &k7[0], 8));
	uint64_t want[] = { 10, 15, 20, 30 };
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pop_key(&m, 35, &v), want[i]);
		cr_assert_eq(v, want[i], "payload travels with its key");
	}
	cr_assert_eq(pop_key(&m, 35, &v), UINT64_MAX, "40 is not below the watermark");
	cr_assert_eq(pop_key(&m, UINT64_MAX, &v), 40);
	cr_assert_eq(pop_key(&m, UINT64_MAX, &v), 50);
	cr_assert_eq(pop_key(&m, UINT64_MAX, &v), UINT64_MAX);
	cr_assert_eq(m.bytes, 0);
	cr_assert_eq(m.late, 0);
	kc_merge_free(&m);
}

Test(reorder, never_swaps_within_a_ring_and_counts_late)
{
	struct kc_merge m;
	uint64_t v, a = 100, b = 90, c = 95;

	cr_assert_eq(kc_merge_init(&m, 1 << 20), 0);
	/* ring order is submission order: 100 then 90 stay in that order */
	kc_merge_push(&m, 1, a, KL_REC_SYSCALL, &a, 8);
	kc_merge_push(&m, 1, b, KL_REC_SYSCALL, &b, 8);
	kc_merge_push(&m, 2, c, KL_REC_SYSCALL, &c, 8);
	cr_assert_eq(pop_key(&m, 1000, &v), 95);
	cr_assert_eq(pop_key(&m, 1000, &v), 100);
	cr_assert_eq(pop_key(&m, 1000, &v), 90);
	cr_assert_eq(m.late, 1);
	kc_merge_free(&m);
}

Test(reorder, bounded_memory_forces_release)
{
	struct kc_merge m;
	uint64_t v, big[64] = { 0 };
	int n = 0;

	cr_assert_eq(kc_merge_init(&m, 4096), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_not_null(kc_merge_push(&m, i % 8, 100 + i, KL_REC_SYSCALL, big, sizeof(big)));
	while (pop_key(&m, 0, &v) != UINT64_MAX)
		n++;
	cr_assert_gt(n, 0);
	cr_assert_leq(m.bytes, 4096, "released down to the bound");
	cr_assert_lt(n, 20);
	kc_merge_free(&m);
}

Test(reorder, grows_and_compacts)
{
	struct kc_merge m;
	uint64_t v, i;

	cr_assert_eq(kc_merge_init(&m, SIZE_MAX), 0);
	for (i = 0; i < 200000; i++) {
		cr_assert_not_null(kc_merge_push(&m, 0, i, KL_REC_SYSCALL, &i, 8));
		if (i % 3 == 0)
			cr_assert_eq(pop_key(&m, UINT64_MAX, &v), v);
	}
	uint64_t prev = 0, n = 0;
	while ((v = pop_key(&m, UINT64_MAX, &i)) != UINT64_MAX) {
		cr_assert(n == 0 || v > prev);
		prev = v;
		n++;
	}
	cr_assert_eq(n, 200000 - 66667);
	kc_merge_free(&m);
}

Test(reorder, key_is_exit_time_for_syscalls)
{
	struct kl_syscall s = { 0 };
	struct kl_proc p = { 0 };

	s.ev.ts_ns = 1000;
	s.duration_ns = 234;
	p.ev.ts_ns = 777;
	cr_assert_eq(kc_record_key(KL_REC_SYSCALL, &s, sizeof(s)), 1234);
	cr_assert_eq(kc_record_key(KL_REC_PROC, &p, sizeof(p)), 777);
	cr_assert_eq(kc_record_key(KL_REC_PROC, &p, 10), 0);
}

Test(downgrade, steps_up_and_recovers_with_hysteresis)
{
	struct kc_downgrade d;

	kc_downgrade_init(&d, 3, 50, 20, 3);
	cr_assert_eq(kc_downgrade_tick(&d, 10), 0);
	cr_assert_eq(kc_downgrade_tick(&d, 60), 1);
	cr_assert_eq(kc_downgrade_tick(&d, 70), 2);
	cr_assert_eq(kc_downgrade_tick(&d, 90), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 99), 3, "never past max");
	/* between the marks: hold */
	cr_assert_eq(kc_downgrade_tick(&d, 30), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 10), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 10), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 30), 3, "calm streak broken");
	cr_assert_eq(kc_downgrade_tick(&d, 10), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 10), 3);
	cr_assert_eq(kc_downgrade_tick(&d, 10), 2, "one step down after 3 calm ticks");
	for (int i = 0; i < 6; i++)
		kc_downgrade_tick(&d, 0);
	cr_assert_eq(d.level, 0);
	cr_assert_eq(d.steps_up, 3);
	cr_assert_eq(d.steps_down, 3);
}

Test(syscalls, table_numbers_match_the_generated_names)
{
	const struct kc_sc_def *defs;
	size_t n = kc_syscall_defs(&defs);

	cr_assert_geq(n, 90);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(kl_syscall_nr(defs[i].name), (int)defs[i].nr, "%s", defs[i].name);
		cr_assert_lt(defs[i].cfg.category, KL_CAT__COUNT);
		/* never shed lifecycle or crit */
		if (defs[i].cfg.category == KL_CAT_CRIT || defs[i].cfg.category == KL_CAT_PROC_LC ||
		    defs[i].cfg.category == KL_CAT_SOCK_LC)
			cr_assert_eq(defs[i].cfg.shed, 0, "%s is shed", defs[i].name);
	}
}

Test(syscalls, restricted_set)
{
	static struct kl_sc_cfg cfg[KL_NR_MAX];
	int traced = 0;

	cr_assert_eq(kc_syscall_table(cfg, "openat,close"), 0);
	for (int i = 0; i < KL_NR_MAX; i++)
		traced += cfg[i].traced;
	cr_assert_eq(traced, 2);
	cr_assert(cfg[kl_syscall_nr("openat")].traced);
	cr_assert_eq(kc_syscall_table(cfg, "openat,nosuchcall"), -EINVAL);
	cr_assert_eq(kc_syscall_table(cfg, NULL), 0);
	cr_assert(cfg[kl_syscall_nr("execve")].traced);
	cr_assert(cfg[kl_syscall_nr("exit_group")].no_exit);
	cr_assert_not(cfg[kl_syscall_nr("getpid")].traced);
}

struct snap {
	int n, self;
	char argv[256];
	uint16_t argv_len;
	char exe[256];
	struct kl_proc me;
};

static int snap_cb(void *ctx, uint16_t type, const void *rec, uint32_t len)
{
	struct snap *s = ctx;
	const struct kl_proc *p = rec;
	struct kl_field_view f;

	cr_assert_eq(type, KL_REC_PROC);
	cr_assert_eq(kl_rec_validate(type, rec, len), KL_REC_OK);
	cr_assert_eq(p->kind, KL_PROC_SNAPSHOT);
	cr_assert(p->ev.flags & KL_EV_BOOTSTRAP);
	s->n++;
	if (p->ev.pid == (uint32_t)getpid()) {
		s->self++;
		s->me = *p;
		if (kl_field_find(type, rec, len, KL_F_ARGV, &f)) {
			s->argv_len = f.len < 255 ? f.len : 255;
			memcpy(s->argv, f.data, s->argv_len);
		}
		if (kl_field_find(type, rec, len, KL_F_EXE, &f) && f.len < 255)
			memcpy(s->exe, f.data, f.len);
	}
	return 0;
}

Test(bootstrap, snapshots_this_process)
{
	struct snap s = { 0 };
	uint64_t n = 0;
	char exe[256] = { 0 };

	cr_assert_eq(kc_bootstrap("/proc", "", snap_cb, &s, &n), 0);
	cr_assert_eq((uint64_t)s.n, n);
	cr_assert_geq(s.n, 2);
	cr_assert_eq(s.self, 1);
	cr_assert_eq(s.me.ev.ppid, (uint32_t)getppid());
	cr_assert_eq(s.me.ev.uid, getuid());
	cr_assert_neq(s.me.ev.mnt_ns, 0);
	cr_assert_neq(s.me.ev.start_ns, 0);
	cr_assert_geq(s.argv_len, 1);
	cr_assert_eq(readlink("/proc/self/exe", exe, sizeof(exe) - 1) > 0, 1);
	cr_assert_str_eq(s.exe, exe);
}

/* A fake /proc/<pid> whose links point into a container's root, as /proc shows them to the agent. */
static void fake_proc(const char *dir, const char *exe, const char *cwd, const char *root)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "set -e; d=%s/%d; mkdir -p $d; cp /proc/self/stat /proc/self/status /proc/self/cmdline $d/; "
		 "ln -sfn '%s' $d/exe; ln -sfn '%s' $d/cwd; ln -sfn '%s' $d/root", dir, (int)getpid(), exe, cwd,
		 root);
	cr_assert_eq(system(cmd), 0);
}

Test(bootstrap, container_paths_are_seen_from_the_process_root)
{
	char dir[] = "/tmp/kl-fakeproc.XXXXXX", cmd[128];
	struct snap s = { 0 };
	uint64_t n = 0;

	cr_assert_not_null(mkdtemp(dir));
	fake_proc(dir, "/var/lib/c1/rootfs/usr/bin/app", "/var/lib/c1/rootfs/srv", "/var/lib/c1/rootfs");
	cr_assert_eq(kc_bootstrap(dir, "", snap_cb, &s, &n), 0);
	cr_assert_eq(s.self, 1);
	cr_assert_str_eq(s.exe, "/usr/bin/app", "exec records (BPF) name it so: the two must agree");
	/* a link outside the root (or a root that is only a prefix of a name) stays whole */
	memset(&s, 0, sizeof(s));
	fake_proc(dir, "/var/lib/c1/rootfs2/bin/x", "/", "/var/lib/c1/rootfs");
	cr_assert_eq(kc_bootstrap(dir, "", snap_cb, &s, &n), 0);
	cr_assert_str_eq(s.exe, "/var/lib/c1/rootfs2/bin/x");
	memset(&s, 0, sizeof(s));
	fake_proc(dir, "/usr/bin/app", "/", "/");
	cr_assert_eq(kc_bootstrap(dir, "", snap_cb, &s, &n), 0);
	cr_assert_str_eq(s.exe, "/usr/bin/app");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
