/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syscalls.c - the traced syscall set: which ring each call goes to,
 * when it is shed under pressure, and what is copied from user memory.
 * docs/events.md explains the choice of categories.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <asm/unistd_64.h>

#include "collector.h"

#define CRIT KL_CAT_CRIT
#define BF KL_CAT_BULK_FILE
#define BN KL_CAT_BULK_NET
#define BP KL_CAT_BULK_PROC
#define BM KL_CAT_BULK_FILE_META
#define PLC KL_CAT_PROC_LC
#define SLC KL_CAT_SOCK_LC

#define SC(n, cat, shed_, plan_, ...) \
	{ #n, __NR_##n, { .traced = 1, .category = cat, .shed = shed_, .plan = plan_, __VA_ARGS__ } }

static const struct kc_sc_def defs[] = {
	/* process lifecycle: never shed; same ring as the sched events */
	SC(fork, PLC, 0, KL_PLAN_NONE),
	SC(vfork, PLC, 0, KL_PLAN_NONE),
	SC(clone, PLC, 0, KL_PLAN_NONE),
	SC(clone3, PLC, 0, KL_PLAN_NONE),
	SC(exit, PLC, 0, KL_PLAN_NONE, .no_exit = 1),
	SC(exit_group, PLC, 0, KL_PLAN_NONE, .no_exit = 1),
	/* critical: exec, privilege, namespaces, kernel surface */
	SC(execve, CRIT, 0, KL_PLAN_EXEC0, .refresh = 1),
	SC(execveat, CRIT, 0, KL_PLAN_EXEC1, .refresh = 1),
	SC(kill, CRIT, 0, KL_PLAN_NONE),
	SC(tkill, CRIT, 0, KL_PLAN_NONE),
	SC(tgkill, CRIT, 0, KL_PLAN_NONE),
	SC(ptrace, CRIT, 0, KL_PLAN_NONE),
	SC(setuid, CRIT, 0, KL_PLAN_NONE),
	SC(setgid, CRIT, 0, KL_PLAN_NONE),
	SC(setreuid, CRIT, 0, KL_PLAN_NONE),
	SC(setregid, CRIT, 0, KL_PLAN_NONE),
	SC(setresuid, CRIT, 0, KL_PLAN_NONE),
	SC(setresgid, CRIT, 0, KL_PLAN_NONE),
	SC(setgroups, CRIT, 0, KL_PLAN_NONE),
	SC(capset, CRIT, 0, KL_PLAN_NONE),
	SC(prctl, CRIT, 0, KL_PLAN_NONE, .refresh = 1),
	SC(unshare, CRIT, 0, KL_PLAN_NONE, .refresh = 1),
	SC(setns, CRIT, 0, KL_PLAN_NONE, .refresh = 1),
	SC(chroot, CRIT, 0, KL_PLAN_P0),
	SC(pivot_root, CRIT, 0, KL_PLAN_P0_P1),
	SC(mount, CRIT, 0, KL_PLAN_P0_P1),
	SC(umount2, CRIT, 0, KL_PLAN_P0),
	SC(init_module, CRIT, 0, KL_PLAN_NONE),
	SC(finit_module, CRIT, 0, KL_PLAN_NONE),
	SC(delete_module, CRIT, 0, KL_PLAN_NAME0),
	SC(bpf, CRIT, 0, KL_PLAN_NONE),
	SC(memfd_create, CRIT, 0, KL_PLAN_NAME0),
	SC(personality, CRIT, 0, KL_PLAN_NONE),
	SC(mmap, CRIT, 0, KL_PLAN_NONE, .cond = KL_COND_PROT_EXEC),
	SC(mprotect, CRIT, 0, KL_PLAN_NONE, .cond = KL_COND_PROT_EXEC),
	/* file data path: the first thing shed */
	SC(read, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(pread64, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(readv, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(write, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(pwrite64, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(writev, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(sendfile, BF, KL_SHED_RW, KL_PLAN_NONE),
	SC(splice, BF, KL_SHED_RW, KL_PLAN_NONE),
	/* file metadata and fd lifetime: shed second */
	SC(open, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(openat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(openat2, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(creat, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(close, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(close_range, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(dup, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(dup2, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(dup3, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(fcntl, BM, KL_SHED_FILE_META, KL_PLAN_NONE, .cond = KL_COND_FCNTL_DUP),
	SC(rename, BM, KL_SHED_FILE_META, KL_PLAN_P0_P1),
	SC(renameat, BM, KL_SHED_FILE_META, KL_PLAN_P1_P3),
	SC(renameat2, BM, KL_SHED_FILE_META, KL_PLAN_P1_P3),
	SC(unlink, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(unlinkat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(mkdir, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(mkdirat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(rmdir, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(link, BM, KL_SHED_FILE_META, KL_PLAN_P0_P1),
	SC(linkat, BM, KL_SHED_FILE_META, KL_PLAN_P1_P3),
	SC(symlink, BM, KL_SHED_FILE_META, KL_PLAN_P0_P1),
	SC(symlinkat, BM, KL_SHED_FILE_META, KL_PLAN_P0_P2),
	SC(chmod, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(fchmod, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(fchmodat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(chown, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(fchown, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(fchownat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	SC(lchown, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(truncate, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(ftruncate, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	SC(mknod, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(mknodat, BM, KL_SHED_FILE_META, KL_PLAN_P1),
	/* the enricher resolves relative paths against the cwd */
	SC(chdir, BM, KL_SHED_FILE_META, KL_PLAN_P0),
	SC(fchdir, BM, KL_SHED_FILE_META, KL_PLAN_NONE),
	/* network data path: shed third */
	SC(sendto, BN, KL_SHED_NET, KL_PLAN_ADDR4),
	SC(recvfrom, BN, KL_SHED_NET, KL_PLAN_PEER4),
	SC(sendmsg, BN, KL_SHED_NET, KL_PLAN_MSG1),
	SC(recvmsg, BN, KL_SHED_NET, KL_PLAN_NONE),
	SC(sendmmsg, BN, KL_SHED_NET, KL_PLAN_NONE),
	SC(recvmmsg, BN, KL_SHED_NET, KL_PLAN_NONE),
	/* socket lifecycle: never shed */
	SC(socket, SLC, 0, KL_PLAN_NONE),
	SC(socketpair, SLC, 0, KL_PLAN_FDS3),
	SC(connect, SLC, 0, KL_PLAN_ADDR1),
	SC(accept, SLC, 0, KL_PLAN_PEER1),
	SC(accept4, SLC, 0, KL_PLAN_PEER1),
	SC(bind, SLC, 0, KL_PLAN_ADDR1),
	SC(listen, SLC, 0, KL_PLAN_NONE),
	SC(shutdown, SLC, 0, KL_PLAN_NONE),
	/* IPC plumbing: low volume, never shed */
	SC(pipe, BP, 0, KL_PLAN_FDS0),
	SC(pipe2, BP, 0, KL_PLAN_FDS0),
};

size_t kc_syscall_defs(const struct kc_sc_def **out)
{
	*out = defs;
	return sizeof(defs) / sizeof(defs[0]);
}

static const struct kc_sc_def *find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strlen(defs[i].name) == len && !strncmp(defs[i].name, name, len))
			return &defs[i];
	return NULL;
}

int kc_syscall_table(struct kl_sc_cfg *cfg, const char *only)
{
	memset(cfg, 0, sizeof(*cfg) * KL_NR_MAX);
	if (!only || !*only) {
		for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
			if (defs[i].nr < KL_NR_MAX)
				cfg[defs[i].nr] = defs[i].cfg;
		return 0;
	}
	for (const char *p = only; *p;) {
		size_t len = strcspn(p, ",");
		const struct kc_sc_def *d = find(p, len);

		if (!d)
			return -EINVAL;
		cfg[d->nr] = d->cfg;
		p += len;
		if (*p == ',')
			p++;
	}
	/*
	 * Calls that change what the sensor caches per task (namespaces at
	 * setns/unshare, everything at exec) drop the cache at their exit
	 * even when they are not traced (cfg.traced 0, refresh 1).
	 */
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (defs[i].nr < KL_NR_MAX && defs[i].cfg.refresh)
			cfg[defs[i].nr].refresh = 1;
	return 0;
}
