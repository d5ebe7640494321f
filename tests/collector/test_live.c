/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live tests: a real kl-collector, real workloads, the raw ring read
 * back. They need root and a kernel with BPF tracepoints; without them
 * they skip, unless KLOUDLENS_REQUIRE_LIVE=1 (CI), where they fail.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <asm/unistd_64.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>
#include <kloudlens/recutil.h>

#include "harness.h"
#include "collector.h"

#define LIVE_OR_SKIP(err, what)                                                              \
	do {                                                                                 \
		if (err) {                                                                   \
			if (kh_require_live())                                               \
				cr_assert_fail("%s: %s (KLOUDLENS_REQUIRE_LIVE=1)", what, strerror(-(err))); \
			cr_skip_test("%s: %s", what, strerror(-(err)));                     \
		}                                                                            \
	} while (0)

static bool have_prog(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/* ---- shared record store ------------------------------------------------ */

struct rec {
	uint16_t type;
	uint32_t len;
	void *p;
};

struct store {
	pthread_mutex_t mu;
	struct rec *v;
	size_t n, cap;
	_Atomic pid_t root;          /* the workload; 0 until known */
	pid_t kids[64];              /* descendants seen in FORK records */
	bool counting[64];           /* count mode: this descendant is counted */
	int nkids;
	atomic_bool root_exited;
	uint64_t loss[8][8];         /* [where][category] from kl_loss records */
	/* count mode (no copies): per-nr counts for the tree, after the root's exec */
	bool count_only;
	atomic_bool root_execed;
	uint64_t counts[KL_NR_MAX];
	uint64_t cat_counts[KL_CAT__COUNT];
	uint64_t seq_prev;
	uint64_t seq_bad;            /* seq not strictly increasing */
	pid_t self_pid;              /* the collector: must never appear */
	uint64_t self_seen;
};

static bool in_tree(struct store *s, pid_t pid)
{
	if (pid == atomic_load(&s->root))
		return true;
	for (int i = 0; i < s->nkids; i++)
		if (s->kids[i] == pid)
			return true;
	return false;
}

/* Count mode: the root is the oracle (strace, perf): only its subtree after exec counts. */
static bool counted(struct store *s, pid_t pid)
{
	for (int i = 0; i < s->nkids; i++)
		if (s->kids[i] == pid)
			return s->counting[i];
	return false;
}

static void store_cb(void *ctx, uint16_t type, const void *rec, uint32_t len)
{
	struct store *s = ctx;
	const struct kl_event *ev = rec;
	pid_t root = atomic_load(&s->root);

	if (kl_rec_validate(type, rec, len) != KL_REC_OK)
		return;
	if (kl_rec_info(type)->has_event_head) {
		if (s->seq_prev && ev->seq <= s->seq_prev)
			s->seq_bad++;
		s->seq_prev = ev->seq;
		if (s->self_pid && (pid_t)ev->pid == s->self_pid)
			s->self_seen++;
	}
	if (type == KL_REC_LOSS) {
		const struct kl_loss *l = rec;

		if (l->where < 8 && l->category < 8)
			s->loss[l->where][l->category] += l->count;
		return;
	}
	if (!root)
		return;
	if (type == KL_REC_PROC) {
		const struct kl_proc *p = rec;

		if (p->kind == KL_PROC_FORK && in_tree(s, p->parent_pid) && s->nkids < 64 && !in_tree(s, p->ev.pid)) {
			/* the tracer's (strace, perf) child counts from its exec; its children from birth */
			s->counting[s->nkids] = (pid_t)p->parent_pid != root && counted(s, p->parent_pid);
			s->kids[s->nkids++] = p->ev.pid;
		}
		if (p->kind == KL_PROC_EXEC && (pid_t)p->parent_pid == root) {
			for (int i = 0; i < s->nkids; i++)
				if (s->kids[i] == (pid_t)p->ev.pid)
					s->counting[i] = true;
			atomic_store(&s->root_execed, true);
		}
	}
	if (!in_tree(s, ev->pid) && !(type == KL_REC_DNS && ev->pid == 0))
		return;
	if (s->count_only) {
		if (type == KL_REC_SYSCALL && counted(s, ev->pid)) {
			const struct kl_syscall *sc = rec;

			if (sc->nr < KL_NR_MAX)
				s->counts[sc->nr]++;
			s->cat_counts[sc->category & 7]++;
		}
	} else {
		pthread_mutex_lock(&s->mu);
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 1024;
			s->v = realloc(s->v, s->cap * sizeof(*s->v));
		}
		s->v[s->n].type = type;
		s->v[s->n].len = len;
		s->v[s->n].p = malloc(len);
		memcpy(s->v[s->n].p, rec, len);
		s->n++;
		pthread_mutex_unlock(&s->mu);
	}
	if (type == KL_REC_PROC && ((const struct kl_proc *)rec)->kind == KL_PROC_EXIT && (pid_t)ev->pid == root)
		atomic_store(&s->root_exited, true);
}

static void store_free(struct store *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].p);
	free(s->v);
}

static bool wait_flag(atomic_bool *f, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (atomic_load(f))
			return true;
		usleep(10000);
	}
	return atomic_load(f);
}

/* ---- known sequence -------------------------------------------------------- */

static const struct kl_syscall *sc_at(struct store *s, size_t i)
{
	return s->v[i].type == KL_REC_SYSCALL ? s->v[i].p : NULL;
}

/* Index of the single syscall of @pid, @nr matching @pred; asserts exactly one. */
typedef bool (*sc_pred)(const struct kl_syscall *sc, uint32_t len, const void *arg);

static size_t one_syscall(struct store *s, pid_t pid, int nr, sc_pred pred, const void *arg, const char *what)
{
	size_t idx = SIZE_MAX;
	int found = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct kl_syscall *sc = sc_at(s, i);

		if (!sc || sc->ev.pid != (uint32_t)pid || (int)sc->nr != nr)
			continue;
		if (pred && !pred(sc, s->v[i].len, arg))
			continue;
		found++;
		idx = i;
	}
	cr_assert_eq(found, 1, "%s: expected exactly once, found %d", what, found);
	return idx;
}

static bool path_is(const struct kl_syscall *sc, uint32_t len, const void *arg)
{
	char b[512];

	return !strcmp(kh_field(KL_REC_SYSCALL, sc, len, KL_F_PATH, b, sizeof(b), NULL), arg);
}

static bool ret_is_len(const struct kl_syscall *sc, uint32_t len, const void *arg)
{
	return (int)sc->args[0] == ((const int *)arg)[0] && sc->ret == ((const int *)arg)[1];
}

static bool ret_pos(const struct kl_syscall *sc, uint32_t len, const void *arg)
{
	return sc->ret >= 0 && (int)sc->args[0] == *(const int *)arg;
}

static bool sock_inet(const struct kl_syscall *sc, uint32_t len, const void *arg)
{
	struct kl_field_view f;
	struct sockaddr_in a;

	if (!kl_field_find(KL_REC_SYSCALL, sc, len, KL_F_SOCKADDR, &f) || f.len < sizeof(a))
		return false;
	memcpy(&a, f.data, sizeof(a));
	return a.sin_family == AF_INET && ntohs(a.sin_port) == *(const int *)arg &&
	       a.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

static bool exit_code_is(const struct kl_syscall *sc, uint32_t len, const void *arg)
{
	return (int)sc->args[0] == *(const int *)arg && (sc->sflags & KL_SC_NO_EXIT);
}

Test(live, known_sequence, .timeout = 120)
{
	char dir[128], wdir[160], out[512], b[2048], path[300], path2[300];
	struct kh_collector k;
	struct kh_reader *rd = NULL;
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct kh_proc w;
	int err, status, fd = -1, port = -1, lfd = -1, cfd = -1, sfd = -1, child = -1;
	/* node-wide, as deployed; a big raw ring so a busy node cannot lap the reader */
	const char *extra[] = { "--no-bootstrap", "--capacity", "268435456", NULL };

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "seq"), 0);
	snprintf(wdir, sizeof(wdir), "%s/w", dir);
	mkdir(wdir, 0700);
	err = kh_start_collector(&k, dir, extra);
	LIVE_OR_SKIP(err, "start kl-collector");
	s.self_pid = k.pid;
	cr_assert_eq(kh_reader_start(&rd, dir, store_cb, &s), 0);

	{
		char *argv[] = { (char *)kh_bin("tests/collector/kl-workload"), "seq", wdir, NULL };

		cr_assert_eq(kh_spawn(&w, argv), 0);
	}
	atomic_store(&s.root, w.pid);
	kh_go(&w);
	status = kh_wait(&w, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "workload status %#x: %s", status, out);
	cr_assert(wait_flag(&s.root_exited, 10000), "no exit record for the workload");
	usleep(100000);
	kh_reader_stop(rd, NULL, NULL);
	kh_stop_collector(&k);
	int p0 = -1, p1 = -1;
	cr_assert_eq(sscanf(out, "fd=%d pipe=%d,%d port=%d lfd=%d cfd=%d sfd=%d child=%d", &fd, &p0, &p1, &port, &lfd,
			    &cfd, &sfd, &child), 8, "report: %s", out);
	cr_assert_eq(s.seq_bad, 0, "seq must increase");
	cr_assert_eq(s.self_seen, 0, "the collector traced itself %llu times", (unsigned long long)s.self_seen);

	pid_t W = w.pid;
	snprintf(path, sizeof(path), "%s/kl-file", wdir);
	snprintf(path2, sizeof(path2), "%s/kl-file2", wdir);

	/* file */
	size_t i_open = one_syscall(&s, W, __NR_openat, path_is, path, "openat kl-file");
	cr_assert_eq(sc_at(&s, i_open)->ret, fd);
	int wr[2] = { fd, 4096 };
	size_t i_write = one_syscall(&s, W, __NR_write, ret_is_len, wr, "write 4096");
	size_t i_read = one_syscall(&s, W, __NR_pread64, ret_is_len, wr, "pread 4096");
	cr_assert_eq(sc_at(&s, i_read)->args[2], 4096);
	size_t i_rename = one_syscall(&s, W, __NR_rename, path_is, path, "rename");
	cr_assert_str_eq(kh_field(KL_REC_SYSCALL, sc_at(&s, i_rename), s.v[i_rename].len, KL_F_PATH2, b, sizeof(b), NULL), path2);
	cr_assert_eq(sc_at(&s, i_rename)->ret, 0);
	size_t i_unlink = one_syscall(&s, W, __NR_unlink, path_is, path2, "unlink");
	cr_assert_eq(sc_at(&s, i_unlink)->ret, 0);
	/* exactly one close of the file's fd between its open and the rename */
	int closes = 0;
	size_t i_close = 0;
	for (size_t i = i_open; i < i_rename; i++) {
		const struct kl_syscall *sc = sc_at(&s, i);

		if (sc && sc->ev.pid == (uint32_t)W && sc->nr == __NR_close && (int)sc->args[0] == fd) {
			closes++;
			i_close = i;
			cr_assert_eq(sc->ret, 0);
		}
	}
	cr_assert_eq(closes, 1, "close(fd) %d times", closes);
	cr_assert(i_open < i_write && i_write < i_read && i_read < i_close && i_close < i_rename && i_rename < i_unlink,
		  "file calls out of order");

	/* pipe2: both new descriptors, read at exit */
	{
		size_t i_pipe = one_syscall(&s, W, __NR_pipe2, NULL, NULL, "pipe2");
		struct kl_field_view fv;
		int32_t fds[2];

		cr_assert(kl_field_find(KL_REC_SYSCALL, s.v[i_pipe].p, s.v[i_pipe].len, KL_F_FDS, &fv), "pipe2 fds");
		cr_assert_eq(fv.len, 8);
		memcpy(fds, fv.data, 8);
		cr_assert_eq(fds[0], p0);
		cr_assert_eq(fds[1], p1);
		cr_assert(i_pipe > i_unlink);
	}

	/* TCP: connect/accept with addresses, byte counts both ways */
	size_t i_conn = one_syscall(&s, W, __NR_connect, sock_inet, &port, "connect 127.0.0.1:port");
	cr_assert_eq(sc_at(&s, i_conn)->ret, 0);
	size_t i_acc = one_syscall(&s, W, __NR_accept, ret_pos, &lfd, "accept");
	cr_assert_eq(sc_at(&s, i_acc)->ret, sfd);
	int c2s[2] = { cfd, 1000 }, s2c[2] = { sfd, 333 };
	one_syscall(&s, W, __NR_sendto, ret_is_len, c2s, "send 1000");
	one_syscall(&s, W, __NR_sendto, ret_is_len, s2c, "send 333");
	int64_t rs = 0, rc = 0;
	/* fd numbers are reused by the DNS sockets later: count up to the fork */
	size_t i_tcp_end = s.n;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].type == KL_REC_PROC && ((struct kl_proc *)s.v[i].p)->kind == KL_PROC_FORK &&
		    ((struct kl_proc *)s.v[i].p)->parent_pid == (uint32_t)W) {
			i_tcp_end = i;
			break;
		}
	for (size_t i = i_conn; i < i_tcp_end; i++) {
		const struct kl_syscall *sc = sc_at(&s, i);

		if (!sc || sc->ev.pid != (uint32_t)W || sc->nr != __NR_recvfrom)
			continue;
		if ((int)sc->args[0] == sfd)
			rs += sc->ret;
		if ((int)sc->args[0] == cfd)
			rc += sc->ret;
	}
	cr_assert_eq(rs, 1000);
	cr_assert_eq(rc, 333);
	cr_assert(i_conn < i_acc);

	/* fork, exec with argv, lineage */
	int nfork = 0, nexec = 0, ncexit = 0, nwexit = 0;
	size_t i_fork = 0, i_exec = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct kl_proc *p = s.v[i].p;

		if (s.v[i].type != KL_REC_PROC)
			continue;
		if (p->kind == KL_PROC_FORK && p->ev.pid == (uint32_t)child) {
			nfork++;
			i_fork = i;
			cr_assert_eq(p->parent_pid, (uint32_t)W);
			cr_assert_eq(p->ev.ppid, (uint32_t)W);
		}
		if (p->kind == KL_PROC_EXEC && p->ev.pid == (uint32_t)child) {
			uint16_t fl;

			nexec++;
			i_exec = i;
			kh_field(KL_REC_PROC, p, s.v[i].len, KL_F_ARGV, b, sizeof(b), &fl);
			cr_assert_eq(fl, sizeof("true\0kl-arg1\0kl-arg2") - 1, "argv length %u", fl);
			cr_assert_eq(memcmp(b, "true\0kl-arg1\0kl-arg2", fl), 0, "argv");
			/* the filename exec was given, and the file that runs (symlinks resolved:
			 * /bin is a link to usr/bin on merged-/usr systems) */
			cr_assert_str_eq(kh_field(KL_REC_PROC, p, s.v[i].len, KL_F_FILENAME, b, sizeof(b), NULL),
					 "/bin/true");
			{
				char real[PATH_MAX];

				cr_assert_not_null(realpath("/bin/true", real));
				cr_assert_str_eq(kh_field(KL_REC_PROC, p, s.v[i].len, KL_F_EXE, b, sizeof(b), NULL),
						 real);
			}
			cr_assert_eq(p->ev.ppid, (uint32_t)W);
			cr_assert_str_eq(p->ev.comm, "true");
		}
		if (p->kind == KL_PROC_EXIT && p->ev.pid == (uint32_t)child) {
			ncexit++;
			cr_assert_eq(p->exit_code, 0);
		}
		if (p->kind == KL_PROC_EXIT && p->ev.pid == (uint32_t)W) {
			nwexit++;
			cr_assert_eq(p->exit_code, 7 << 8, "exit_code %#x", p->exit_code);
		}
	}
	cr_assert_eq(nfork, 1);
	cr_assert_eq(nexec, 1);
	cr_assert_eq(ncexit, 1);
	cr_assert_eq(nwexit, 1);
	cr_assert(i_fork < i_exec);
	{
		int nclone = 0, nexecve = 0;

		for (size_t i = 0; i < s.n; i++) {
			const struct kl_syscall *sc = sc_at(&s, i);

			if (!sc)
				continue;
			if (sc->ev.pid == (uint32_t)W && sc->nr == __NR_clone && sc->ret == child)
				nclone++;
			if (sc->ev.pid == (uint32_t)child && sc->nr == __NR_execve) {
				nexecve++;
				cr_assert(sc->sflags & KL_SC_NO_EXIT, "successful execve is NO_EXIT");
				cr_assert_eq(sc->ret, 0);
				cr_assert_str_eq(kh_field(KL_REC_SYSCALL, sc, s.v[i].len, KL_F_FILENAME, b, sizeof(b), NULL),
						 "/bin/true");
				cr_assert(i < i_exec, "execve before its exec event");
			}
		}
		cr_assert_eq(nclone, 1, "clone returning the child");
		cr_assert_eq(nexecve, 1);
	}

	/* DNS: the query leaves W once; the answer reaches W's socket once */
	{
		int q_out = 0, a_in = 0;

		for (size_t i = 0; i < s.n; i++) {
			const struct kl_dns *d = s.v[i].p;
			uint16_t fl;

			if (s.v[i].type != KL_REC_DNS)
				continue;
			kh_field(KL_REC_DNS, d, s.v[i].len, KL_F_DATA, b, sizeof(b), &fl);
			if (d->direction == KL_DIR_EGRESS && d->dport == 53) {
				q_out++;
				cr_assert_eq(d->ev.pid, (uint32_t)W);
				cr_assert_eq(d->proto, 17);
				cr_assert_eq(fl, 33, "query length %u", fl);
				cr_assert_eq(memcmp(b + 13, "kl-test", 7), 0);
			}
			if (d->direction == KL_DIR_INGRESS && d->sport == 53) {
				a_in++;
				cr_assert_eq(d->ev.pid, (uint32_t)W, "answer attributed to the querier");
				cr_assert((unsigned char)b[2] & 0x80, "QR bit");
			}
		}
		cr_assert_eq(q_out, 1, "dns query egress %d", q_out);
		cr_assert_eq(a_in, 1, "dns answer ingress %d", a_in);
	}

	/* exit_group(7), never returning */
	int seven = 7;
	one_syscall(&s, W, __NR_exit_group, exit_code_is, &seven, "exit_group(7)");

	/* identity fields */
	{
		const struct kl_syscall *sc = sc_at(&s, i_open);
		struct stat st;

		cr_assert_eq(sc->ev.tid, (uint32_t)W);
		cr_assert_eq(sc->ev.ns_pid, (uint32_t)W);
		cr_assert_eq(sc->ev.ppid, (uint32_t)getpid());
		cr_assert_eq(sc->ev.uid, getuid());
		cr_assert_str_eq(sc->ev.comm, "kl-workload");
		cr_assert_eq(stat("/proc/self/ns/mnt", &st), 0);
		cr_assert_eq(sc->ev.mnt_ns, (uint32_t)st.st_ino);
		cr_assert_eq(stat("/proc/self/ns/pid", &st), 0);
		cr_assert_eq(sc->ev.pid_ns, (uint32_t)st.st_ino);
		cr_assert_neq(sc->ev.cgroup_id, 0);
		cr_assert_neq(sc->ev.start_ns, 0);
		cr_assert(sc->duration_ns > 0);
	}
	store_free(&s);
	kh_rmdir(dir);
}

/* ---- counts against strace and perf --------------------------------------- */

/*
 * Run @argv (a tracer wrapping the workload) in a private cgroup that the
 * collector alone watches: the counts are exact even on a busy node.
 * Exactness is what is tested here, so the rings hold the whole run: a
 * sanitizer-built collector drains at ~4 us per record, and 1 M
 * open+close outruns it by ~100 000 records, more than the default 4 MiB
 * BPF ring holds; and this test's own reader, sanitized too and sharing
 * two vCPUs with the workload and the collector, can fall behind `raw` by
 * most of the run's 2 M records (losses are counted, and storm_accounting
 * tests that).
 */
static int run_counted(const char *dir, const char *tag, char *const argv[], struct store *s, char *out, size_t olen,
		       const char *syscalls)
{
	char cg[256];
	const char *extra[] = { "--no-bootstrap", "--no-dns", "--no-shed", "--ring-kb", "32768", "--capacity", "536870912",
				"--cgroup", cg,
				syscalls ? "--syscalls" : NULL, syscalls, NULL };
	struct kh_collector k;
	struct kh_reader *rd = NULL;
	struct kh_proc w;
	uint64_t dropped = 0, missed = 0;
	int err, status;

	err = kh_cgroup_create(cg, sizeof(cg), tag);
	if (err)
		return err;
	err = kh_start_collector(&k, dir, extra);
	if (err) {
		rmdir(cg);
		return err;
	}
	err = kh_reader_start(&rd, dir, store_cb, s);
	cr_assert_eq(err, 0, "reader: %s", strerror(-err));
	cr_assert_eq(kh_spawn_in(&w, argv, cg), 0);
	atomic_store(&s->root, w.pid);
	kh_go(&w);
	status = kh_wait(&w, out, olen);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exited %#x", argv[0], status);
	/* the collector flushes everything at exit */
	usleep(200000);
	kh_stop_collector(&k);
	usleep(100000);
	kh_reader_stop(rd, &dropped, &missed);
	rmdir(cg);
	cr_assert_eq(dropped + missed, 0, "the test's reader lost %llu records at raw",
		     (unsigned long long)(dropped + missed));
	for (int w2 = 1; w2 < 8; w2++)
		for (int c = 0; c < KL_CAT__COUNT; c++)
			cr_assert_eq(s->loss[w2][c], 0, "loss where=%d category=%d: %llu", w2, c,
				     (unsigned long long)s->loss[w2][c]);
	return 0;
}

Test(live, strace_counts, .timeout = 300)
{
	char dir[128], out[256], sfile[300], line[512];
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER, .count_only = true };
	static struct kl_sc_cfg traced[KL_NR_MAX];
	int err, checked = 0;
	FILE *f;

	cr_assert_eq(kc_syscall_table(traced, NULL), 0);
	if (!have_prog("strace"))
		cr_skip_test("strace not installed");
	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "strace"), 0);
	snprintf(sfile, sizeof(sfile), "%s/strace.out", dir);
	{
		char *argv[] = { "/usr/bin/strace", "-f", "-c", "-o", sfile,
				 (char *)kh_bin("tests/collector/kl-workload"), "mix", "2000", NULL };

		/* everything but ptrace: strace's own ptrace storm is not the workload */
		static char list[4096];
		const struct kc_sc_def *defs;
		size_t nd = kc_syscall_defs(&defs), at = 0;

		for (size_t i = 0; i < nd; i++)
			if (strcmp(defs[i].name, "ptrace"))
				at += snprintf(list + at, sizeof(list) - at, "%s%s", at ? "," : "", defs[i].name);
		err = run_counted(dir, "strace", argv, &s, out, sizeof(out), list);
	}
	LIVE_OR_SKIP(err, "start kl-collector");
	cr_assert(atomic_load(&s.root_execed), "never saw the exec of strace's child");
	f = fopen(sfile, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		double pct, secs;
		unsigned long usec, calls, errors = 0;
		char name[64];
		int nr;

		if (sscanf(line, "%lf %lf %lu %lu %lu %63s", &pct, &secs, &usec, &calls, &errors, name) != 6 &&
		    sscanf(line, "%lf %lf %lu %lu %63s", &pct, &secs, &usec, &calls, name) != 5)
			continue;
		nr = kl_syscall_nr(name);
		if (nr < 0 || nr >= KL_NR_MAX)
			continue;
		if (!traced[nr].traced)
			continue;
		if (!strcmp(name, "mmap") || !strcmp(name, "mprotect") || !strcmp(name, "fcntl") ||
		    !strcmp(name, "execve"))
			continue; /* traced only conditionally (PROT_EXEC, dup), or pre-exec */
		cr_expect_eq(s.counts[nr], calls, "%s: collector %llu, strace %lu", name,
			     (unsigned long long)s.counts[nr], calls);
		checked++;
	}
	fclose(f);
	cr_assert_geq(checked, 8, "compared only %d syscalls", checked);
	kh_rmdir(dir);
}

/*
 * 1 M iterations, the figure, in the plain build. The sanitizer
 * build's collector drains ~6x slower than the loop now issues calls, so
 * no ring of sane size holds a 1 M run there: it checks the same
 * exactness on 250 000.
 */
#ifdef __SANITIZE_ADDRESS__
#define PERF_LOOP 250000
#else
#define PERF_LOOP 1000000
#endif

Test(live, perf_stat_1m_open_close, .timeout = 300)
{
	char dir[128], out[256], pfile[300], line[512], loops[16];
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER, .count_only = true };
	unsigned long long po = 0, pc = 0, v;
	char ev[128];
	int err;
	FILE *f;

	if (!have_prog("perf"))
		cr_skip_test("perf not installed");
	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "perf"), 0);
	snprintf(pfile, sizeof(pfile), "%s/perf.out", dir);
	{
		char *argv[] = { "/usr/bin/perf", "stat", "-x,", "-o", pfile,
				 "-e", "syscalls:sys_enter_openat,syscalls:sys_enter_close", "--",
				 (char *)kh_bin("tests/collector/kl-workload"), "loop", loops, NULL };

		snprintf(loops, sizeof(loops), "%d", PERF_LOOP);
		err = run_counted(dir, "perf", argv, &s, out, sizeof(out), NULL);
	}
	LIVE_OR_SKIP(err, "start kl-collector");
	f = fopen(pfile, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llu,,%127[^,]", &v, ev) != 2)
			continue;
		if (!strcmp(ev, "syscalls:sys_enter_openat"))
			po = v;
		if (!strcmp(ev, "syscalls:sys_enter_close"))
			pc = v;
	}
	fclose(f);
	cr_assert_geq(po, PERF_LOOP);
	cr_assert_geq(pc, PERF_LOOP);
	cr_assert_eq(s.counts[__NR_openat], po, "openat: collector %llu, perf %llu",
		     (unsigned long long)s.counts[__NR_openat], po);
	cr_assert_eq(s.counts[__NR_close], pc, "close: collector %llu, perf %llu",
		     (unsigned long long)s.counts[__NR_close], pc);
	kh_rmdir(dir);
}

/* ---- storm: captured + counted losses == issued, per category ------------------ */

struct storm {
	_Atomic pid_t pid;
	uint64_t got[KL_CAT__COUNT];
	uint64_t lost[8][KL_CAT__COUNT];
	atomic_bool exited;
};

static void storm_cb(void *ctx, uint16_t type, const void *rec, uint32_t len)
{
	struct storm *st = ctx;
	const struct kl_event *ev = rec;

	if (kl_rec_validate(type, rec, len) != KL_REC_OK)
		return;
	if (type == KL_REC_LOSS) {
		const struct kl_loss *l = rec;

		if (l->where < 8 && l->category < KL_CAT__COUNT)
			st->lost[l->where][l->category] += l->count;
		return;
	}
	if (ev->pid != (uint32_t)atomic_load(&st->pid))
		return;
	if (type == KL_REC_SYSCALL)
		st->got[((const struct kl_syscall *)rec)->category & 7]++;
	if (type == KL_REC_PROC && ((const struct kl_proc *)rec)->kind == KL_PROC_EXIT)
		atomic_store(&st->exited, true);
}

Test(live, storm_accounting, .timeout = 300)
{
	char dir[128], cg[256], procs[300], out[256], cgpath[128];
	struct kh_collector k;
	struct kh_reader *rd = NULL;
	struct storm st = { 0 };
	struct kh_proc w;
	long n = 1000000, r, c, sd;
	long long ns;
	int err, status;

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "storm"), 0);
	if (access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0)
		snprintf(cgpath, sizeof(cgpath), "/sys/fs/cgroup/unified");
	else
		snprintf(cgpath, sizeof(cgpath), "/sys/fs/cgroup");
	snprintf(cg, sizeof(cg), "%s/kl-storm-%d", cgpath, getpid());
	err = mkdir(cg, 0755) ? -errno : 0;
	LIVE_OR_SKIP(err, "mkdir cgroup v2 dir");
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	{
		/* small BPF rings and a slow drain: losses happen and must all be counted */
		const char *extra[] = { "--no-bootstrap", "--no-dns", "--cgroup", cg, "--ring-kb", "256",
					"--drain-ms", "20", NULL };

		err = kh_start_collector(&k, dir, extra);
	}
	if (err)
		rmdir(cg);
	LIVE_OR_SKIP(err, "start kl-collector");
	cr_assert_eq(kh_reader_start(&rd, dir, storm_cb, &st), 0);
	{
		char nbuf[32];
		char *argv[] = { (char *)kh_bin("tests/collector/kl-workload"), "storm", nbuf, procs, NULL };

		snprintf(nbuf, sizeof(nbuf), "%ld", n);
		cr_assert_eq(kh_spawn(&w, argv), 0);
	}
	atomic_store(&st.pid, w.pid);
	kh_go(&w);
	status = kh_wait(&w, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	wait_flag(&st.exited, 10000);
	usleep(200000);
	kh_stop_collector(&k);
	usleep(100000);
	kh_reader_stop(rd, NULL, NULL);
	rmdir(cg);
	cr_assert_eq(sscanf(out, "read=%ld close=%ld sendto=%ld ns=%lld", &r, &c, &sd, &ns), 4, "%s", out);
	{
		/* the stats area says the same as the loss records */
		static struct shm_metric m[256];
		struct shm_stats *stats;
		uint64_t shed_bf = UINT64_MAX, lost_meta = UINT64_MAX, level = UINT64_MAX;
		int nm;

		cr_assert_eq(shm_stats_open(dir, "kl-collector", &stats), 0);
		nm = shm_stats_read(stats, m, 256);
		for (int i = 0; i < nm; i++) {
			if (!strcmp(m[i].name, "kloudlens_collector_shed_total") && !strcmp(m[i].labels, "category=\"bulk_file\""))
				shed_bf = m[i].value;
			if (!strcmp(m[i].name, "kloudlens_collector_bpf_lost_total") &&
			    !strcmp(m[i].labels, "category=\"bulk_file_meta\""))
				lost_meta = m[i].value;
			if (!strcmp(m[i].name, "kloudlens_collector_downgrade_level"))
				level = m[i].value;
		}
		shm_stats_close(stats);
		cr_assert_eq(shed_bf, st.lost[KL_LOSS_SHED][KL_CAT_BULK_FILE]);
		cr_assert_eq(lost_meta, st.lost[KL_LOSS_BPF_RESERVE][KL_CAT_BULK_FILE_META]);
		cr_assert_leq(level, 3);
	}

	uint64_t issued[KL_CAT__COUNT] = { 0 };
	issued[KL_CAT_BULK_FILE] = r + 1;       /* + the report's write(1) */
	issued[KL_CAT_BULK_FILE_META] = c;
	issued[KL_CAT_BULK_NET] = sd;
	issued[KL_CAT_PROC_LC] = 1;             /* exit_group */
	double rate = 3.0 * n / (ns / 1e9);
	cr_log_info("storm: %.0f syscalls/s; bulk_file got %llu shed %llu lost %llu; meta got %llu shed %llu lost %llu; "
		    "net got %llu shed %llu lost %llu",
		    rate,
		    (unsigned long long)st.got[1], (unsigned long long)st.lost[KL_LOSS_SHED][1],
		    (unsigned long long)st.lost[KL_LOSS_BPF_RESERVE][1],
		    (unsigned long long)st.got[4], (unsigned long long)st.lost[KL_LOSS_SHED][4],
		    (unsigned long long)st.lost[KL_LOSS_BPF_RESERVE][4],
		    (unsigned long long)st.got[2], (unsigned long long)st.lost[KL_LOSS_SHED][2],
		    (unsigned long long)st.lost[KL_LOSS_BPF_RESERVE][2]);
	fprintf(stderr, "storm: %.0f syscalls/s\n", rate);
	for (int cat = 0; cat < KL_CAT__COUNT; cat++) {
		uint64_t lost = st.lost[KL_LOSS_SHED][cat] + st.lost[KL_LOSS_BPF_RESERVE][cat] +
				st.lost[KL_LOSS_PENDING][cat];

		cr_expect_eq(st.got[cat] + lost, issued[cat], "category %d: captured %llu + lost %llu != issued %llu",
			     cat, (unsigned long long)st.got[cat], (unsigned long long)lost,
			     (unsigned long long)issued[cat]);
	}
	/*
	 * The invariant is the accounting above. The issue rate is what one
	 * thread reaches here: reported, not asserted, because an untraced
	 * syscall alone costs ~1.1 us in this VM and the box is shared.
	 */
	if (rate < 500000.0)
		fprintf(stderr, "storm: %.0f syscalls/s is below the 500k/s target\n", rate);
	kh_rmdir(dir);
}

Test(live, probe_json_and_caps_dropped, .timeout = 60)
{
	char cmd[600], buf[4096], dir[128], path[64], line[256];
	const char *extra[] = { "--no-bootstrap", NULL };
	struct kh_collector k;
	unsigned long long capeff = ~0ull;
	size_t n;
	FILE *f;
	int err;

	snprintf(cmd, sizeof(cmd), "%s --probe --json", kh_bin("collector/kl-collector"));
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	pclose(f);
	cr_assert(strstr(buf, "\"tracepoint\":{\"available\":true}") || !kh_require_live(), "%s", buf);
	cr_assert(strstr(buf, "\"hooks\":{"), "%s", buf);
	cr_assert(strstr(buf, "\"syscall_attach\":"), "%s", buf);

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "caps"), 0);
	err = kh_start_collector(&k, dir, extra);
	LIVE_OR_SKIP(err, "start kl-collector");
	snprintf(path, sizeof(path), "/proc/%d/status", k.pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "CapEff: %llx", &capeff);
	fclose(f);
	kh_stop_collector(&k);
	/* CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19) only */
	cr_assert_eq(capeff, (1ull << 2) | (1ull << 19), "CapEff %#llx", capeff);
	kh_rmdir(dir);
}

/*
 * kl-collector (--dir @dir, @extra) and a reader into @s around one run of
 * kl-workload @mode, which must exit 0; its stdout in @out. Return: its pid.
 */
static pid_t run_workload(const char *dir, const char *const *extra, const char *mode, struct store *s, char *out,
			  size_t olen)
{
	struct kh_collector k;
	struct kh_reader *rd = NULL;
	struct kh_proc w;
	int err, status;

	err = kh_start_collector(&k, dir, extra);
	LIVE_OR_SKIP(err, "start kl-collector");
	cr_assert_eq(kh_reader_start(&rd, dir, store_cb, s), 0);
	{
		char *argv[] = { (char *)kh_bin("tests/collector/kl-workload"), (char *)mode, NULL };

		cr_assert_eq(kh_spawn(&w, argv), 0);
	}
	atomic_store(&s->root, w.pid);
	kh_go(&w);
	status = kh_wait(&w, out, olen);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x: %s", mode, status, out);
	cr_assert(wait_flag(&s->root_exited, 10000));
	usleep(100000);
	kh_reader_stop(rd, NULL, NULL);
	kh_stop_collector(&k);
	return w.pid;
}

Test(live, killed_mid_call_leaves_nothing_dangling, .timeout = 60)
{
	char dir[128], out[256];
	const char *extra[] = { "--no-bootstrap", "--no-dns", NULL };
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	int child = -1, rfd = -1, n = 0, exits = 0;

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "killed"), 0);
	run_workload(dir, extra, "killed", &s, out, sizeof(out));
	cr_assert_eq(sscanf(out, "child=%d rfd=%d", &child, &rfd), 2, "%s", out);
	for (size_t i = 0; i < s.n; i++) {
		const struct kl_syscall *sc = sc_at(&s, i);
		const struct kl_proc *p = s.v[i].p;

		if (sc && sc->ev.pid == (uint32_t)child && sc->nr == __NR_read && (int)sc->args[0] == rfd) {
			n++;
			/* the kernel unwinds the call (-ERESTARTSYS) before the task dies, so
			 * the exit usually fires; if it did not, sched_process_exit emits
			 * the entry as ENTRY_ONLY. Either way: once, never left pending. */
			cr_assert((sc->sflags & KL_SC_ENTRY_ONLY) || sc->ret == -512, "sflags %#x ret %lld", sc->sflags,
				  (long long)sc->ret);
			cr_assert_gt(sc->duration_ns, 100000000ull, "blocked ~200 ms, got %llu ns",
				     (unsigned long long)sc->duration_ns);
		}
		if (s.v[i].type == KL_REC_PROC && p->kind == KL_PROC_EXIT && p->ev.pid == (uint32_t)child) {
			exits++;
			cr_assert_eq(p->exit_code, SIGKILL, "killed by SIGKILL: %#x", p->exit_code);
		}
	}
	cr_assert_eq(n, 1, "the interrupted read appears %d times", n);
	cr_assert_eq(exits, 1);
	store_free(&s);
	kh_rmdir(dir);
}

/* ---- identity between calls: the cache in the pending slot must follow every change ---- */

/* The one openat of /kl-ident/<step>; asserts exactly one. */
static const struct kl_syscall *mark_of(struct store *s, const char *step)
{
	const struct kl_syscall *hit = NULL;
	char want[128], b[256];
	int found = 0;

	snprintf(want, sizeof(want), "/kl-ident/%s", step);
	for (size_t i = 0; i < s->n; i++) {
		const struct kl_syscall *sc = sc_at(s, i);

		if (!sc || sc->nr != __NR_openat)
			continue;
		if (strcmp(kh_field(KL_REC_SYSCALL, sc, s->v[i].len, KL_F_PATH, b, sizeof(b), NULL), want))
			continue;
		found++;
		hit = sc;
	}
	cr_assert_eq(found, 1, "mark %s: expected exactly once, found %d", step, found);
	return hit;
}

static uint64_t ino_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

static void move_pid(const char *cg, pid_t pid)
{
	char procs[512], b[32];
	int fd, n;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	n = snprintf(b, sizeof(b), "%d", pid);
	fd = open(procs, O_WRONLY);
	cr_assert(fd >= 0 && write(fd, b, n) == n, "move %d to %s: %s", pid, cg, strerror(errno));
	close(fd);
}

static bool is_stopped(pid_t pid)
{
	char path[64], b[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = 0;
	p = strrchr(b, ')');
	return p && p[1] == ' ' && p[2] == 'T';
}

/*
 * uid/gid, ppid and the cgroup id are cached per task between calls
 * (bpf/kl.bpf.c fill_ident): a cgroup move (its own, and two by another
 * process while it is stopped: the second css_set may reuse the first's
 * address), a rename (its own, and a sibling thread's through /proc),
 * a reparenting to a subreaper and setresuid must each show in the next
 * record.
 */
Test(live, identity_follows_changes_between_calls, .timeout = 120)
{
	char dir[128], out[256], cga[256], cgb[256], cgc[256], b[64];
	const char *extra[] = { "--no-bootstrap", "--no-dns", NULL };
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const struct kl_syscall *m, *before;
	struct kh_collector k;
	struct kh_reader *rd = NULL;
	struct kh_proc w;
	int err, status, i, subreaper = 0;

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "ident"), 0);
	err = kh_start_collector(&k, dir, extra);
	LIVE_OR_SKIP(err, "start kl-collector");
	cr_assert_eq(kh_cgroup_create(cga, sizeof(cga), "ida"), 0);
	cr_assert_eq(kh_cgroup_create(cgb, sizeof(cgb), "idb"), 0);
	cr_assert_eq(kh_cgroup_create(cgc, sizeof(cgc), "idc"), 0);
	cr_assert_eq(kh_reader_start(&rd, dir, store_cb, &s), 0);
	{
		char *argv[] = { (char *)kh_bin("tests/collector/kl-workload"), "ident", cga, cgb, NULL };

		cr_assert_eq(kh_spawn(&w, argv), 0);
	}
	atomic_store(&s.root, w.pid);
	kh_go(&w);
	for (i = 0; i < 1000 && !is_stopped(w.pid); i++)
		usleep(10000);
	cr_assert(is_stopped(w.pid), "the workload never stopped itself");
	move_pid(cgb, w.pid);
	move_pid(cgc, w.pid);
	kill(w.pid, SIGCONT);
	status = kh_wait(&w, out, sizeof(out));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s", status, out);
	cr_assert(wait_flag(&s.root_exited, 10000));
	usleep(100000);
	kh_reader_stop(rd, NULL, NULL);
	kh_stop_collector(&k);

	/* cgroups */
	m = mark_of(&s, "start");
	cr_assert_neq(m->ev.cgroup_id, ino_of(cga));
	cr_assert_eq(mark_of(&s, "in-a")->ev.cgroup_id, ino_of(cga), "after its own move to A");
	cr_assert_eq(mark_of(&s, "in-b")->ev.cgroup_id, ino_of(cgb), "after its own move to B");
	cr_assert_eq(mark_of(&s, "back-in-a")->ev.cgroup_id, ino_of(cga), "after its own move back to A");
	cr_assert_eq(mark_of(&s, "moved-while-stopped")->ev.cgroup_id, ino_of(cgc),
		     "moved A->B->C by another process while stopped");
	/* comm */
	cr_assert_str_eq(mark_of(&s, "back-in-a")->ev.comm, "kl-workload");
	cr_assert_str_eq(mark_of(&s, "renamed")->ev.comm, "kl-renamed", "after its own prctl(PR_SET_NAME)");
	before = mark_of(&s, "thread-before");
	m = mark_of(&s, "thread-renamed");
	cr_assert_eq(before->ev.tid, m->ev.tid);
	cr_assert_neq(m->ev.tid, m->ev.pid, "the mark comes from the second thread");
	cr_assert_str_eq(before->ev.comm, "kl-renamed");
	cr_assert_str_eq(m->ev.comm, "kl-thr-named", "renamed by its sibling through /proc");
	/* reparenting */
	before = mark_of(&s, "orphan-before");
	cr_assert_neq(before->ev.ppid, (uint32_t)w.pid, "first the middle process's child");
	for (size_t j = 0; j < s.n; j++) {
		const struct kl_syscall *sc = sc_at(&s, j);

		if (sc && sc->nr == __NR_openat && sc->ev.pid == before->ev.pid &&
		    sscanf(kh_field(KL_REC_SYSCALL, sc, s.v[j].len, KL_F_PATH, b, sizeof(b), NULL),
			   "/kl-ident/orphan-after-%d", &subreaper) == 1) {
			cr_assert_eq(subreaper, w.pid, "reparented to the subreaper");
			cr_assert_eq(sc->ev.ppid, (uint32_t)w.pid, "ppid after the parent exited");
			break;
		}
	}
	cr_assert_eq(subreaper, w.pid, "orphan-after mark not found");
	/* credentials */
	cr_assert_eq(mark_of(&s, "renamed")->ev.uid, 0);
	m = mark_of(&s, "uid");
	cr_assert_eq(m->ev.uid, 4321, "after setresuid");
	cr_assert_eq(m->ev.gid, 4321, "after setresgid");

	store_free(&s);
	rmdir(cga);
	rmdir(cgb);
	rmdir(cgc);
	kh_rmdir(dir);
}

/*
 * collector-bench itself, small: its figures go into docs/performance.md,
 * so a bench that stopped measuring (nothing delivered, a ratio of 0, a
 * storm with calls unaccounted for) must fail here rather than there.
 */
Test(live, collector_bench_smoke, .timeout = 300)
{
	char cmd[1024], buf[16384];
	json_error_t jerr;
	json_t *j, *t, *st, *same;
	size_t i, n = 0;
	bool kl = false, floor = false;
	FILE *p;
	int status;

	snprintf(cmd, sizeof(cmd), "%s --json --iterations 3000 --repeat 1 --storm-iterations 30000 --only kl,floor,storm",
		 kh_bin("collector/collector-bench"));
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	status = pclose(p);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "collector-bench: status %#x\n%s", status, buf);
	j = json_loads(buf, 0, &jerr);
	cr_assert_not_null(j, "not JSON (%s): %s", jerr.text, buf);
	json_array_foreach(json_object_get(j, "tracers"), i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));

		if (!json_is_true(json_object_get(t, "ok")))
			LIVE_OR_SKIP(-ENOTSUP, name ? name : "a tracer");
		if (name && !strcmp(name, "kl-collector")) {
			kl = true;
			/* 3 per iteration, then the loop's own few after it (more in a sanitizer build,
			 * whose runtime reads /proc at exit) */
			cr_assert(json_integer_value(json_object_get(t, "events")) >= 9000 &&
				  json_integer_value(json_object_get(t, "events")) <= 9200, "every loop event: %s", buf);
			cr_assert_gt(json_number_value(json_object_get(t, "bpf_prog_ns_per_event")), 0.0);
		}
		if (name && !strcmp(name, "floor probe")) {
			floor = true;
			cr_assert_geq(json_integer_value(json_object_get(t, "events")), 9000);
		}
	}
	cr_assert(kl && floor, "%s", buf);
	cr_assert_gt(json_number_value(json_object_get(j, "bpf_vs_floor")), 0.0);
	same = json_object_get(j, "same_loop");
	cr_assert_not_null(same, "%s", buf);
	cr_assert_gt(json_number_value(json_object_get(same, "bpf_vs_floor")), 0.0);
	cr_assert_gt(json_number_value(json_object_get(same, "paired_floor_vs_floor")), 0.0);
	st = json_object_get(j, "storm");
	cr_assert_not_null(st, "%s", buf);
	cr_assert_gt(json_number_value(json_object_get(st, "kl_per_s")), 0.0);
	cr_assert_eq(json_integer_value(json_object_get(st, "missing")), 0, "storm calls neither captured nor counted: %s",
		     buf);
	/* losses are counted per category node-wide: they can cover more than the storm's own */
	for (i = 0; i < 3; i++) {
		json_int_t got = json_integer_value(json_array_get(json_object_get(st, "captured"), i));
		json_int_t lost = json_integer_value(json_array_get(json_object_get(st, "counted_lost"), i));

		cr_assert(got <= 30000 && got + lost >= 30000, "storm slot %zu: captured %lld, counted lost %lld",
			  i, (long long)got, (long long)lost);
	}
	json_decref(j);
}

/*
 * The namespaces are cached per task and dropped at the exit of the calls
 * that change them, traced or not: with --syscalls openat, the unshare
 * between two opens is not captured, yet the second open must carry the
 * new mount namespace (it carried the old one until the exit programs
 * looked at untraced calls).
 */
Test(live, untraced_unshare_still_refreshes_namespaces, .timeout = 60)
{
	char dir[128], out[256], b[64];
	const char *extra[] = { "--no-bootstrap", "--no-dns", "--syscalls", "openat", NULL };
	struct store s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const struct kl_syscall *before = NULL, *after = NULL;
	unsigned long mb = 0, ma = 0;
	pid_t pid;

	cr_assert_eq(kh_tmpdir(dir, sizeof(dir), "unshare"), 0);
	pid = run_workload(dir, extra, "unshare", &s, out, sizeof(out));
	cr_assert_eq(sscanf(out, "before=%lu after=%lu", &mb, &ma), 2, "%s", out);
	cr_assert_neq(mb, ma);
	for (size_t i = 0; i < s.n; i++) {
		const struct kl_syscall *sc = sc_at(&s, i);
		const char *path;

		if (!sc || sc->ev.pid != (uint32_t)pid)
			continue;
		cr_assert_neq(sc->nr, __NR_unshare, "unshare is not traced here");
		path = kh_field(KL_REC_SYSCALL, sc, s.v[i].len, KL_F_PATH, b, sizeof(b), NULL);
		if (!strcmp(path, "/kl-ns/before"))
			before = sc;
		if (!strcmp(path, "/kl-ns/after"))
			after = sc;
	}
	cr_assert(before && after, "both marks");
	cr_assert_eq(before->ev.mnt_ns, mb);
	cr_assert_eq(after->ev.mnt_ns, ma, "mnt_ns after an untraced unshare: %u, expected %lu", after->ev.mnt_ns, ma);
	store_free(&s);
	kh_rmdir(dir);
}
