/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bootstrap.c - one KL_PROC_SNAPSHOT record per process already running
 * when the collector starts, read from /proc (privileged: other users'
 * exe and cwd), so no unprivileged stage ever has to open /proc.
 *
 * start_ns comes from /proc/<pid>/stat in clock ticks, so it has tick
 * precision; live events carry the exact start_boottime. Consumers match
 * a snapshot to live events on (pid, start_ns rounded to the tick).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <kloudlens/recutil.h>

#include "collector.h"

#define SNAP_CAP 8192

static ssize_t read_file(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)total < len && (n = read(fd, buf + total, len - total)) > 0)
		total += n;
	close(fd);
	return total;
}

static uint32_t ns_inum(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, 0) < 0)
		return 0;
	return (uint32_t)st.st_ino;
}

static uint64_t cgroup_id(int dirfd, const char *cgroup2)
{
	char buf[4096], path[4400];
	ssize_t n = read_file(dirfd, "cgroup", buf, sizeof(buf) - 1);
	struct stat st;
	char *line;

	if (n <= 0 || !cgroup2[0])
		return 0;
	buf[n] = 0;
	/* the v2 line is "0::/path"; its id is the directory's inode */
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "0::", 3))
			continue;
		snprintf(path, sizeof(path), "%s%s", cgroup2, line + 3);
		if (stat(path, &st) == 0)
			return st.st_ino;
	}
	return 0;
}

/*
 * Where @path (@n bytes, resolved against our root) starts as seen from the
 * process's own root @root (@rn bytes, 0 = ours): past the root's prefix
 * when it lies inside it, else 0 (a path outside its root stays whole).
 */
static size_t under_root(const char *path, size_t n, const char *root, ssize_t rn)
{
	if (rn <= 0 || (size_t)rn >= n || memcmp(path, root, (size_t)rn) || path[rn] != '/')
		return 0;
	return (size_t)rn;
}

static int snap_one(int procfd, const char *pidname, const char *cgroup2, long hz,
		    uint8_t *buf, kc_emit_fn emit, void *ctx)
{
	struct kl_proc *p = (struct kl_proc *)buf;
	struct kl_tail_builder tb;
	char stat[1024], status[4096], link[4096], root[4096];
	unsigned long long start = 0;
	int dirfd, ppid = 0, err = 0;
	ssize_t n, rn;
	char *s, *line;

	dirfd = openat(procfd, pidname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	memset(p, 0, sizeof(*p));
	n = read_file(dirfd, "stat", stat, sizeof(stat) - 1);
	if (n <= 0) {
		err = n < 0 ? (int)n : -ENOENT;
		goto out;
	}
	stat[n] = 0;
	/* comm may hold spaces and parens: fields resume after the last ')' */
	s = strrchr(stat, ')');
	if (!s || sscanf(s + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &ppid, &start) != 2) {
		err = -EBADMSG;
		goto out;
	}
	p->ev.pid = p->ev.tid = atoi(pidname);
	p->ev.ppid = ppid;
	p->ev.start_ns = start * (1000000000ull / (unsigned long long)hz);
	p->ev.ts_ns = kl_now_mono_ns();
	p->ev.flags = KL_EV_BOOTSTRAP;
	p->kind = KL_PROC_SNAPSHOT;
	p->parent_pid = ppid;
	n = read_file(dirfd, "status", status, sizeof(status) - 1);
	if (n > 0) {
		status[n] = 0;
		for (line = strtok(status, "\n"); line; line = strtok(NULL, "\n")) {
			unsigned a, b;
			unsigned long long cap;

			if (sscanf(line, "Name:\t%15s", p->ev.comm) == 1)
				continue;
			if (sscanf(line, "Uid:\t%u\t%u", &a, &b) == 2) {
				p->ev.uid = a;
				p->euid = b;
			} else if (sscanf(line, "Gid:\t%u", &a) == 1) {
				p->ev.gid = a;
			} else if (!strncmp(line, "NStgid:", 7)) {
				/* the last number is the pid in the innermost namespace */
				char *last = strrchr(line, '\t');

				p->ev.ns_pid = last ? strtoul(last + 1, NULL, 10) : p->ev.pid;
			} else if (sscanf(line, "Threads:\t%u", &a) == 1) {
				p->nthreads = a;
			} else if (sscanf(line, "CapEff:\t%llx", &cap) == 1) {
				p->cap_effective = cap;
			}
		}
	}
	p->ev.mnt_ns = ns_inum(dirfd, "ns/mnt");
	p->ev.pid_ns = ns_inum(dirfd, "ns/pid");
	p->net_ns = ns_inum(dirfd, "ns/net");
	p->ipc_ns = ns_inum(dirfd, "ns/ipc");
	p->uts_ns = ns_inum(dirfd, "ns/uts");
	p->ev.cgroup_id = cgroup_id(dirfd, cgroup2);

	kl_tail_init(&tb, buf, sizeof(*p), SNAP_CAP);
	n = read_file(dirfd, "cmdline", link, 2048);
	if (n > 0) {
		/* NUL-separated argv without the final NUL; kernel threads have none */
		if (link[n - 1] == 0)
			n--;
		kl_tail_add(&tb, KL_F_ARGV, link, n);
	}
	/* /proc links are resolved against our root; exec records (BPF) show paths
	 * as the process's own root sees them, so a container's prefix goes */
	rn = readlinkat(dirfd, "root", root, sizeof(root) - 1);
	if (rn == 1 && root[0] == '/')
		rn = 0;
	n = readlinkat(dirfd, "exe", link, sizeof(link) - 1);
	if (n > 0) {
		size_t off = under_root(link, (size_t)n, root, rn);

		kl_tail_add(&tb, KL_F_EXE, link + off, (size_t)n - off);
	}
	n = readlinkat(dirfd, "cwd", link, sizeof(link) - 1);
	if (n > 0) {
		size_t off = under_root(link, (size_t)n, root, rn);

		kl_tail_add(&tb, KL_F_CWD, link + off, (size_t)n - off);
	}
	err = emit(ctx, KL_REC_PROC, buf, (uint32_t)kl_tail_finish(&tb));
out:
	close(dirfd);
	return err;
}

int kc_bootstrap(const char *proc_root, const char *cgroup2, kc_emit_fn emit, void *ctx, uint64_t *count)
{
	long hz = sysconf(_SC_CLK_TCK);
	uint8_t *buf;
	struct dirent *de;
	DIR *d;
	int err = 0, procfd;

	*count = 0;
	if (hz <= 0)
		hz = 100;
	buf = malloc(SNAP_CAP);
	if (!buf)
		return -ENOMEM;
	d = opendir(proc_root);
	if (!d) {
		err = -errno;
		free(buf);
		return err;
	}
	procfd = dirfd(d);
	while ((de = readdir(d))) {
		int r;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		r = snap_one(procfd, de->d_name, cgroup2 ? cgroup2 : "", hz, buf, emit, ctx);
		if (r == 0)
			(*count)++;
		else if (r != -ENOENT && r != -ESRCH && !err)
			err = r; /* a process that exited meanwhile is not an error */
	}
	closedir(d);
	free(buf);
	return err;
}
