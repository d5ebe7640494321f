/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <kloudlens/recutil.h>

#include "harness.h"

uint64_t kh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int kh_tmpdir(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/kl-%s-XXXXXX", tag);
	return mkdtemp(buf) ? 0 : -errno;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

void kh_rmdir(const char *dir)
{
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

const char *kh_bin(const char *rel)
{
	static __thread char buf[4][512];
	static __thread int i;
	const char *root = getenv("KLOUDLENS_BUILD_ROOT");

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", root ? root : ".", rel);
	return buf[i];
}

bool kh_require_live(void)
{
	const char *v = getenv("KLOUDLENS_REQUIRE_LIVE");

	return v && *v && strcmp(v, "0");
}

int kh_start_collector(struct kh_collector *k, const char *dir, const char *const *extra)
{
	const char *argv[48];
	int n = 0, status;
	uint64_t deadline;

	memset(k, 0, sizeof(*k));
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	snprintf(k->ready, sizeof(k->ready), "%s/ready", dir);
	unlink(k->ready);
	argv[n++] = kh_bin("collector/kl-collector");
	argv[n++] = "--dir";
	argv[n++] = k->dir;
	argv[n++] = "--ready";
	argv[n++] = k->ready;
	for (int i = 0; extra && extra[i] && n < 46; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	k->pid = fork();
	if (k->pid < 0)
		return -errno;
	if (k->pid == 0) {
		/* a failed assertion ends the test process: take the collector with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	deadline = kh_now_ns() + 30ull * 1000000000ull;
	while (access(k->ready, F_OK) != 0) {
		if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
			k->pid = 0;
			return -ECHILD;
		}
		if (kh_now_ns() > deadline) {
			kh_stop_collector(k);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	return 0;
}

int kh_stop_collector(struct kh_collector *k)
{
	int status = 0;

	if (k->pid <= 0)
		return 0;
	kill(k->pid, SIGTERM);
	waitpid(k->pid, &status, 0);
	k->pid = 0;
	return status;
}

struct kh_reader {
	pthread_t th;
	struct shm_ring *ring;
	struct shm_consumer *c;
	kh_rec_fn fn;
	void *ctx;
	atomic_bool stop;
};

static void *reader_main(void *arg)
{
	struct kh_reader *r = arg;
	struct shm_rec recs[256];

	while (!atomic_load(&r->stop)) {
		int n = shm_consumer_poll(r->c, recs, 256, 20);

		for (int i = 0; i < n; i++)
			r->fn(r->ctx, recs[i].type, recs[i].data, recs[i].len);
		if (n > 0)
			shm_consumer_release(r->c);
	}
	/* drain what is left */
	for (;;) {
		int n = shm_consumer_poll(r->c, recs, 256, 0);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			r->fn(r->ctx, recs[i].type, recs[i].data, recs[i].len);
		shm_consumer_release(r->c);
	}
	return NULL;
}

int kh_reader_start(struct kh_reader **out, const char *dir, kh_rec_fn fn, void *ctx)
{
	struct kh_reader *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->ctx = ctx;
	err = shm_ring_open(dir, "raw", &r->ring);
	if (err)
		goto fail;
	err = shm_consumer_attach(r->ring, "kltest", SHM_REQUIRED, &r->c);
	if (err)
		goto fail;
	err = -pthread_create(&r->th, NULL, reader_main, r);
	if (err)
		goto fail;
	*out = r;
	return 0;
fail:
	if (r->c)
		shm_consumer_detach(r->c);
	if (r->ring)
		shm_ring_close(r->ring);
	free(r);
	return err;
}

void kh_reader_stop(struct kh_reader *r, uint64_t *dropped, uint64_t *missed)
{
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	if (dropped)
		*dropped = shm_consumer_dropped(r->c);
	if (missed)
		*missed = shm_consumer_missed(r->c);
	shm_consumer_detach(r->c);
	shm_ring_close(r->ring);
	free(r);
}

int kh_cgroup_create(char *buf, size_t len, const char *tag)
{
	const char *root = access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) == 0 ? "/sys/fs/cgroup/unified"
										    : "/sys/fs/cgroup";

	snprintf(buf, len, "%s/kl-%s-%d", root, tag, getpid());
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int kh_spawn(struct kh_proc *p, char *const argv[])
{
	return kh_spawn_in(p, argv, NULL);
}

int kh_spawn_in(struct kh_proc *p, char *const argv[], const char *cgroup)
{
	int gate[2], out[2];

	if (pipe2(gate, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		char c;

		close(gate[1]);
		dup2(out[1], 1);
		if (cgroup) {
			char procs[512], pid[32];
			int fd;

			snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup);
			snprintf(pid, sizeof(pid), "%d", getpid());
			fd = open(procs, O_WRONLY);
			if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
				_exit(125);
			close(fd);
		}
		if (read(gate[0], &c, 1) != 1)
			_exit(126);
		/* LeakSanitizer cannot run under ptrace (strace); workloads leak nothing that matters */
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(gate[0]);
	close(out[1]);
	p->gate = gate[1];
	p->out = out[0];
	return 0;
}

void kh_go(struct kh_proc *p)
{
	if (write(p->gate, "g", 1) != 1)
		abort();
	close(p->gate);
}

int kh_wait(struct kh_proc *p, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int status = -1;

	while (got + 1 < len && (n = read(p->out, buf + got, len - 1 - got)) > 0)
		got += n;
	buf[got] = 0;
	close(p->out);
	waitpid(p->pid, &status, 0);
	return status;
}

const char *kh_field(uint16_t type, const void *rec, uint32_t len, uint16_t id, char *buf, size_t blen, uint16_t *flen)
{
	struct kl_field_view f;
	size_t n = 0;

	if (kl_field_find(type, rec, len, id, &f)) {
		n = f.len < blen - 1 ? f.len : blen - 1;
		memcpy(buf, f.data, n);
	}
	buf[n] = 0;
	if (flen)
		*flen = (uint16_t)n;
	return buf;
}
