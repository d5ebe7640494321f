/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-workload - known syscall sequences for the collector's live tests
 * and benchmark. Prints nothing until the end, where it writes one line
 * of "key=value" results to stdout (one write(2) on fd 1).
 *
 *   seq DIR            the known sequence of the live test; exits 7
 *   loop N [PATH]      N x open+close of PATH (default /etc/hostname)
 *   orc N [PATH]       N x open+read+close
 *   mix N              deterministic mixed workload (strace comparison)
 *   storm N CGROUPDIR  move into CGROUPDIR, then N x {read,close,sendto}(-1)
 *   unshare            openat("/kl-ns/before"), unshare(CLONE_NEWNS), openat("/kl-ns/after");
 *                      prints both mount namespace inodes
 *   ident A B C        identity changes between calls: cgroup moves (its own,
 *                      and A->B->C by the test while it is stopped), comm
 *                      (its own, and a sibling thread's via /proc), reparenting,
 *                      uid/gid; each step is marked by openat("/kl-ident/<step>")
 *   killed             a child blocked in read(2) is SIGKILLed
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TCP_C2S 1000
#define TCP_S2C 333

static char report[4096];
static size_t rlen;

#define R(...) (rlen += snprintf(report + rlen, sizeof(report) - rlen, __VA_ARGS__))

static void die(const char *what)
{
	dprintf(2, "kl-workload: %s: %s\n", what, strerror(errno));
	_exit(99);
}

static void flush_report(void)
{
	report[rlen++] = '\n';
	if (write(1, report, rlen) != (ssize_t)rlen)
		_exit(98);
}

/* A DNS query for kl-test.example A IN, id 0x4b4c. */
static const unsigned char dns_query[] = {
	0x4b, 0x4c, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	7, 'k', 'l', '-', 't', 'e', 's', 't', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
	0x00, 0x01, 0x00, 0x01,
};

static int do_seq(const char *dir)
{
	char path[512], path2[512], buf[4096];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd, lfd, cfd, sfd, usrv, ucli, status;
	ssize_t n, got;
	pid_t child;

	snprintf(path, sizeof(path), "%s/kl-file", dir);
	snprintf(path2, sizeof(path2), "%s/kl-file2", dir);
	memset(buf, 'k', sizeof(buf));

	/* file: open, write, read, close, rename, unlink */
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	if (write(fd, buf, 4096) != 4096)
		die("write");
	if (pread(fd, buf, 4096, 0) != 4096)
		die("pread");
	if (close(fd))
		die("close");
	if (syscall(SYS_rename, path, path2))
		die("rename");
	if (syscall(SYS_unlink, path2))
		die("unlink");
	R("fd=%d", fd);
	{
		int pp[2];

		if (pipe2(pp, O_CLOEXEC))
			die("pipe2");
		close(pp[0]);
		close(pp[1]);
		R(" pipe=%d,%d", pp[0], pp[1]);
	}

	/* loopback TCP with known byte counts */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		die("listen");
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	sfd = accept(lfd, NULL, NULL);
	if (sfd < 0)
		die("accept");
	if (sendto(cfd, buf, TCP_C2S, 0, NULL, 0) != TCP_C2S)
		die("send c2s");
	for (got = 0; got < TCP_C2S; got += n)
		if ((n = recvfrom(sfd, buf, TCP_C2S - got, 0, NULL, NULL)) <= 0)
			die("recv c2s");
	if (sendto(sfd, buf, TCP_S2C, 0, NULL, 0) != TCP_S2C)
		die("send s2c");
	for (got = 0; got < TCP_S2C; got += n)
		if ((n = recvfrom(cfd, buf, TCP_S2C - got, 0, NULL, NULL)) <= 0)
			die("recv s2c");
	R(" port=%d lfd=%d cfd=%d sfd=%d", ntohs(a.sin_port), lfd, cfd, sfd);
	close(sfd);
	close(cfd);
	close(lfd);

	/* fork + exec /bin/true with known argv */
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		char *argv[] = { "true", "kl-arg1", "kl-arg2", NULL };

		execv("/bin/true", argv);
		_exit(127);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		die("child");
	R(" child=%d", child);

	/* DNS over UDP to a server of our own on 127.0.0.1:53 */
	a.sin_port = htons(53);
	usrv = socket(AF_INET, SOCK_DGRAM, 0);
	if (usrv < 0 || bind(usrv, (struct sockaddr *)&a, sizeof(a)))
		die("bind :53");
	ucli = socket(AF_INET, SOCK_DGRAM, 0);
	if (ucli < 0 || sendto(ucli, dns_query, sizeof(dns_query), 0, (struct sockaddr *)&a, sizeof(a)) !=
			      (ssize_t)sizeof(dns_query))
		die("dns query");
	{
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		unsigned char q[512];

		n = recvfrom(usrv, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			die("dns server recv");
		q[2] |= 0x80; /* QR: an answer with no records */
		if (sendto(usrv, q, n, 0, (struct sockaddr *)&from, fl) != n)
			die("dns answer");
		if (recvfrom(ucli, q, sizeof(q), 0, NULL, NULL) != n)
			die("dns client recv");
	}
	close(ucli);
	close(usrv);
	flush_report();
	_exit(7);
}

/* A child blocked in read(2) is killed: its call must come out once, ENTRY_ONLY. */
static int do_killed(void)
{
	int p[2], status;
	pid_t c;
	char b;

	if (pipe(p))
		die("pipe");
	c = fork();
	if (c < 0)
		die("fork");
	if (c == 0) {
		if (read(p[0], &b, 1) < 0) /* never returns: nothing is written */
			_exit(1);
		_exit(2);
	}
	usleep(200000);
	kill(c, SIGKILL);
	waitpid(c, &status, 0);
	R("child=%d rfd=%d", c, p[0]);
	flush_report();
	return 0;
}

static int do_loop(long n, const char *path, int do_read)
{
	char b[64];

	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);

		if (fd < 0)
			die("open");
		if (do_read && read(fd, b, sizeof(b)) < 0)
			die("read");
		close(fd);
	}
	return 0;
}

static int do_mix(long n)
{
	char b[256];
	int p[2], status;
	pid_t c;

	for (long i = 0; i < n; i++) {
		int fd = open("/etc/hostname", O_RDONLY), fd2;

		if (fd < 0)
			die("open");
		if (read(fd, b, sizeof(b)) < 0)
			die("read");
		fd2 = dup(fd);
		close(fd2);
		close(fd);
		if (pipe(p))
			die("pipe");
		if (write(p[1], "x", 1) != 1 || read(p[0], b, 1) != 1)
			die("pipe io");
		close(p[0]);
		close(p[1]);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		close(fd);
		/* failing calls count too */
		syscall(SYS_unlink, "/nonexistent/kl");
		syscall(SYS_openat, AT_FDCWD, "/nonexistent/kl", O_RDONLY);
	}
	c = fork();
	if (c == 0) {
		for (long i = 0; i < n; i++)
			close(open("/etc/hostname", O_RDONLY));
		_exit(0);
	}
	waitpid(c, &status, 0);
	return 0;
}

static int do_storm(long n, const char *cg)
{
	char pid[32];
	int fd = open(cg, O_WRONLY);
	struct timespec t0, t1;
	long i;

	if (fd < 0)
		die("open cgroup.procs");
	snprintf(pid, sizeof(pid), "%d", getpid());
	/* from here on every call of this process is in the watched cgroup */
	if (write(fd, pid, strlen(pid)) < 0)
		die("move to cgroup");
	clock_gettime(CLOCK_MONOTONIC, &t0); /* vDSO: no syscall */
	for (i = 0; i < n; i++) {
		syscall(SYS_read, -1, NULL, 0);
		syscall(SYS_close, -1);
		syscall(SYS_sendto, -1, NULL, 0, 0, NULL, 0);
	}
	/* one write (bulk_file) and exit_group (proc_lc) follow the loop: the test counts them */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	R("read=%ld close=%ld sendto=%ld ns=%lld", n, n, n,
	  (long long)(t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
	flush_report();
	_exit(0);
}

/* A step marker the test finds by path: openat fails (ENOENT) but is recorded with its path. */
static void mark(const char *step)
{
	char p[128];

	snprintf(p, sizeof(p), "/kl-ident/%s", step);
	syscall(SYS_openat, AT_FDCWD, p, O_RDONLY);
}

static void move_to(const char *cgdir)
{
	char procs[512];
	int fd;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgdir);
	fd = open(procs, O_WRONLY);
	/* "0": the writer itself */
	if (fd < 0 || write(fd, "0", 1) != 1)
		die("move to cgroup");
	close(fd);
}

static int thr_gate[2];
static pid_t thr_tid;

static void *named_thread(void *arg)
{
	char c;

	mark("thread-before");
	__atomic_store_n(&thr_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (read(thr_gate[0], &c, 1) != 1)
		die("thread gate");
	mark("thread-renamed");
	return NULL;
}

static int do_ident(const char *a, const char *b)
{
	int fds[2], status;
	pid_t mid, g;
	pthread_t th;
	char path[96];

	mark("start");
	move_to(a);
	mark("in-a");
	move_to(b);
	mark("in-b");
	move_to(a);
	mark("back-in-a");
	/* the test moves this process to B, then C, while it is stopped */
	kill(getpid(), SIGSTOP);
	mark("moved-while-stopped");

	prctl(PR_SET_NAME, "kl-renamed");
	mark("renamed");
	/* a sibling thread renamed from here, through /proc */
	if (pipe(thr_gate) || pthread_create(&th, NULL, named_thread, NULL))
		die("thread");
	while (!__atomic_load_n(&thr_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(50000); /* it has cached its identity (thread-before) */
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)thr_tid);
	{
		int fd = open(path, O_WRONLY);

		if (fd < 0 || write(fd, "kl-thr-named", 12) != 12)
			die("rename the thread");
		close(fd);
	}
	if (write(thr_gate[1], "g", 1) != 1 || pthread_join(th, NULL))
		die("thread gate");

	/* reparenting: a grandchild whose parent exits moves to this subreaper */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(fds))
		die("pipe");
	mid = fork();
	if (mid == 0) {
		g = fork();
		if (g == 0) {
			char c, step[64];
			pid_t first = getppid();

			close(fds[1]);
			mark("orphan-before");
			if (read(fds[0], &c, 1) != 0) /* EOF: the middle process is gone */
				_exit(1);
			while (getppid() == first)
				usleep(1000);
			snprintf(step, sizeof(step), "orphan-after-%d", (int)getppid());
			mark(step);
			_exit(0);
		}
		usleep(50000); /* let the grandchild cache its parent */
		_exit(0);
	}
	close(fds[0]);
	close(fds[1]);
	while (wait(&status) > 0) {
	}

	if (setresgid(4321, 4321, 4321) || setresuid(4321, 4321, 4321))
		die("setresuid");
	mark("uid");
	R("pid=%d", (int)getpid());
	flush_report();
	return 0;
}

static unsigned long mnt_ino(void)
{
	struct stat st;

	if (stat("/proc/self/ns/mnt", &st))
		die("stat /proc/self/ns/mnt");
	return (unsigned long)st.st_ino;
}

static int do_unshare(void)
{
	unsigned long before = mnt_ino(), after;

	syscall(SYS_openat, AT_FDCWD, "/kl-ns/before", O_RDONLY);
	if (unshare(CLONE_NEWNS))
		die("unshare");
	after = mnt_ino();
	syscall(SYS_openat, AT_FDCWD, "/kl-ns/after", O_RDONLY);
	R("before=%lu after=%lu", before, after);
	flush_report();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "seq"))
		return do_seq(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "killed"))
		return do_killed();
	if (argc >= 3 && !strcmp(argv[1], "loop"))
		return do_loop(atol(argv[2]), argc > 3 ? argv[3] : "/etc/hostname", 0);
	if (argc >= 3 && !strcmp(argv[1], "orc"))
		return do_loop(atol(argv[2]), argc > 3 ? argv[3] : "/etc/hostname", 1);
	if (argc >= 3 && !strcmp(argv[1], "mix"))
		return do_mix(atol(argv[2]));
	if (argc >= 4 && !strcmp(argv[1], "storm"))
		return do_storm(atol(argv[2]), argv[3]);
	if (argc >= 2 && !strcmp(argv[1], "unshare"))
		return do_unshare();
	if (argc >= 4 && !strcmp(argv[1], "ident"))
		return do_ident(argv[2], argv[3]);
	fprintf(stderr, "usage: kl-workload seq DIR | loop N [PATH] | orc N [PATH] | mix N | storm N CGROUP_PROCS\n");
	return 2;
}
