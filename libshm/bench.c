/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libshm-bench - records/s across processes through a libshm ring, and
 * the same transfer over a unix SOCK_SEQPACKET socket and over a pipe,
 * in one run, with ratios.
 *
 * Every transfer: one producer process, K consumer processes, N records
 * of a fixed size. The producer fills each payload from a buffer (one
 * memcpy, like a real producer); each consumer reads every record and
 * folds its first word into a checksum that is verified, so no side
 * can skip work. Sockets and pipes carry one record per syscall (what a
 * naive pipeline would do); with K consumers the producer writes each
 * record to K sockets. Wall time is from the start barrier until the
 * last consumer has seen the last record.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/shm.h>

#define MAXC 4

struct shared {
	_Atomic int ready;
	_Atomic int go;
	_Atomic uint64_t sum[MAXC];
	_Atomic uint64_t count[MAXC];
};

static struct shared *sh;
static char dir[128];
static uint64_t ring_capacity = 4u << 20;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wait_go(void)
{
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		;
}

static uint64_t expected_sum(uint64_t n)
{
	return n * (n - 1) / 2;
}

enum transport { T_RING, T_SEQPACKET, T_PIPE };

static int die(const char *what)
{
	perror(what);
	_exit(10);
}

static void ring_producer(uint64_t n, uint32_t size)
{
	struct shm_ring *r;
	uint8_t src[1024];

	memset(src, 0xab, sizeof(src));
	if (shm_ring_open(dir, "bench", &r))
		die("ring open");
	wait_go();
	for (uint64_t i = 0; i < n; i++) {
		void *p;
		if (shm_reserve(r, size, KL_REC_MARK, &p))
			die("reserve");
		memcpy(p, src, size);
		memcpy(p, &i, 8);
		if ((i & 63) == 63)
			shm_publish(r);
	}
	shm_publish(r);
	shm_ring_close(r);
	_exit(0);
}

static void ring_consumer(int id, uint64_t n)
{
	struct shm_ring *r;
	struct shm_consumer *c;
	struct shm_rec recs[256];
	char name[16];
	uint64_t sum = 0, got = 0;

	snprintf(name, sizeof(name), "c%d", id);
	if (shm_ring_open(dir, "bench", &r) || shm_consumer_attach(r, name, SHM_REQUIRED, &c))
		die("attach");
	wait_go();
	while (got < n) {
		int k = shm_consumer_poll(c, recs, 256, 1000);
		if (k < 0)
			die("poll");
		for (int i = 0; i < k; i++) {
			uint64_t v;
			memcpy(&v, recs[i].data, 8);
			sum += v;
		}
		got += (uint64_t)k;
		shm_consumer_release(c);
	}
	sh->sum[id] = sum;
	sh->count[id] = got;
	shm_consumer_detach(c);
	shm_ring_close(r);
	_exit(0);
}

static void fd_producer(int *fds, int k, uint64_t n, uint32_t size)
{
	uint8_t src[1024];

	memset(src, 0xab, sizeof(src));
	wait_go();
	for (uint64_t i = 0; i < n; i++) {
		memcpy(src, &i, 8);
		for (int j = 0; j < k; j++) {
			size_t off = 0;
			while (off < size) {
				ssize_t w = write(fds[j], src + off, size - off);
				if (w < 0) {
					if (errno == EINTR)
						continue;
					die("write");
				}
				off += (size_t)w;
			}
		}
	}
	_exit(0);
}

static void fd_consumer(int id, int fd, uint64_t n, uint32_t size)
{
	uint8_t buf[1024];
	uint64_t sum = 0, got = 0;

	wait_go();
	while (got < n) {
		size_t off = 0;
		while (off < size) {
			ssize_t r = read(fd, buf + off, size - off);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				die("read");
			}
			off += (size_t)r;
		}
		uint64_t v;
		memcpy(&v, buf, 8);
		sum += v;
		got++;
	}
	sh->sum[id] = sum;
	sh->count[id] = got;
	_exit(0);
}

struct result {
	enum transport t;
	uint32_t size;
	int consumers;
	uint64_t n;
	double secs;
	double rps;
	double ns_per;
};

static int run(enum transport t, uint32_t size, int k, uint64_t n, struct result *res)
{
	pid_t pids[MAXC + 1];
	int np = 0, ok = 1;

	memset(sh, 0, sizeof(*sh));
	if (t == T_RING) {
		struct shm_ring_opts o = SHM_RING_OPTS_INIT;
		struct shm_ring *r;
		o.capacity = ring_capacity;
		o.policy = SHM_POLICY_BLOCK;
		shm_ring_unlink(dir, "bench");
		if (shm_ring_create(dir, "bench", &o, &r))
			return -1;
		shm_ring_close(r);
		for (int i = 0; i < k; i++)
			if ((pids[np++] = fork()) == 0)
				ring_consumer(i, n);
		/* consumers must be attached before the producer runs */
		while (atomic_load(&sh->ready) < k)
			usleep(1000);
		if ((pids[np++] = fork()) == 0)
			ring_producer(n, size);
	} else {
		int wfd[MAXC], rfd[MAXC];
		for (int i = 0; i < k; i++) {
			int p[2];
			if (t == T_SEQPACKET) {
				if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) < 0)
					return -1;
				rfd[i] = p[0];
				wfd[i] = p[1];
			} else {
				if (pipe(p) < 0)
					return -1;
				rfd[i] = p[0];
				wfd[i] = p[1];
			}
		}
		for (int i = 0; i < k; i++)
			if ((pids[np++] = fork()) == 0)
				fd_consumer(i, rfd[i], n, size);
		if ((pids[np++] = fork()) == 0)
			fd_producer(wfd, k, n, size);
		for (int i = 0; i < k; i++) {
			close(rfd[i]);
			close(wfd[i]);
		}
	}
	while (atomic_load(&sh->ready) < np)
		usleep(100);
	uint64_t t0 = now_ns();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < np; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
	}
	uint64_t t1 = now_ns();
	for (int i = 0; i < k; i++)
		if (sh->count[i] != n || sh->sum[i] != expected_sum(n))
			ok = 0;
	if (!ok)
		return -1;
	res->t = t;
	res->size = size;
	res->consumers = k;
	res->n = n;
	res->secs = (double)(t1 - t0) / 1e9;
	res->rps = (double)n / res->secs;
	res->ns_per = (double)(t1 - t0) / (double)n;
	return 0;
}

static const char *tname(enum transport t)
{
	return t == T_RING ? "libshm" : t == T_SEQPACKET ? "unix-seqpacket" : "pipe";
}

int main(int argc, char **argv)
{
	bool json = false;
	uint64_t n_ring = 20000000, n_fd = 1000000;
	int reps = 3;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "records", required_argument, NULL, 'n' },
		{ "baseline-records", required_argument, NULL, 'b' },
		{ "reps", required_argument, NULL, 'r' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "jn:b:r:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'n': n_ring = strtoull(optarg, NULL, 10); break;
		case 'b': n_fd = strtoull(optarg, NULL, 10); break;
		case 'r': reps = atoi(optarg); break;
		case 'c': ring_capacity = strtoull(optarg, NULL, 0); break;
		case 'h':
			printf("usage: libshm-bench [--json] [--records N] [--baseline-records N] [--reps R] [--capacity BYTES]\n"
			       "  best of R runs per cell; ring cells move N records, socket/pipe cells N_baseline\n");
			return 0;
		default:
			return 2;
		}
	}
	if (n_ring < 2 || n_fd < 2 || reps < 1) {
		fprintf(stderr, "libshm-bench: record counts must be >= 2 and reps >= 1\n");
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	snprintf(dir, sizeof(dir), "/dev/shm/kl-bench.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	static const uint32_t sizes[] = { 64, 512 };
	static const int cons[] = { 1, 3 };
	struct result best[2][2][3];
	int rc = 0;

	for (int si = 0; si < 2; si++)
		for (int ci = 0; ci < 2; ci++)
			for (int t = 0; t < 3; t++) {
				struct result r = { 0 };
				best[si][ci][t].rps = 0;
				for (int rep = 0; rep < reps; rep++) {
					if (run((enum transport)t, sizes[si], cons[ci], t == T_RING ? n_ring : n_fd, &r)) {
						fprintf(stderr, "libshm-bench: %s %u B x%d failed\n",
							tname((enum transport)t), sizes[si], cons[ci]);
						rc = 1;
						continue;
					}
					if (r.rps > best[si][ci][t].rps)
						best[si][ci][t] = r;
				}
			}

	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "libshm-bench: could not remove %s\n", dir);

	if (json) {
		printf("{\"bench\":\"libshm\",\"reps\":%d,\"ring_capacity\":%llu,\"cells\":[", reps,
		       (unsigned long long)ring_capacity);
		bool first = true;
		for (int si = 0; si < 2; si++)
			for (int ci = 0; ci < 2; ci++)
				for (int t = 0; t < 3; t++) {
					struct result *r = &best[si][ci][t];
					printf("%s{\"transport\":\"%s\",\"record_bytes\":%u,\"consumers\":%d,\"records\":%llu,"
					       "\"seconds\":%.4f,\"records_per_s\":%.0f,\"ns_per_record\":%.2f}",
					       first ? "" : ",", tname((enum transport)t), sizes[si], cons[ci],
					       (unsigned long long)r->n, r->secs, r->rps, r->ns_per);
					first = false;
				}
		printf("],\"ratios\":[");
		first = true;
		for (int si = 0; si < 2; si++)
			for (int ci = 0; ci < 2; ci++) {
				struct result *b = best[si][ci];
				printf("%s{\"record_bytes\":%u,\"consumers\":%d,\"vs_unix_seqpacket\":%.2f,\"vs_pipe\":%.2f}",
				       first ? "" : ",", sizes[si], cons[ci],
				       b[T_SEQPACKET].rps > 0 ? b[T_RING].rps / b[T_SEQPACKET].rps : 0,
				       b[T_PIPE].rps > 0 ? b[T_RING].rps / b[T_PIPE].rps : 0);
				first = false;
			}
		struct result *h = &best[0][0][T_RING];
		printf("],\"headline\":{\"records_per_s_64B_1c\":%.0f,\"target_records_per_s\":20000000,"
		       "\"vs_unix_seqpacket\":%.2f,\"target_ratio\":10}}\n",
		       h->rps, best[0][0][T_SEQPACKET].rps > 0 ? h->rps / best[0][0][T_SEQPACKET].rps : 0);
	} else {
		printf("%-15s %6s %5s %12s %14s %10s %10s\n", "transport", "bytes", "cons", "records",
		       "records/s", "ns/rec", "ring x");
		for (int si = 0; si < 2; si++)
			for (int ci = 0; ci < 2; ci++)
				for (int t = 0; t < 3; t++) {
					struct result *r = &best[si][ci][t];
					double ratio = r->rps > 0 ? best[si][ci][T_RING].rps / r->rps : 0;
					printf("%-15s %6u %5d %12llu %14.0f %10.2f %9.1fx\n", tname((enum transport)t),
					       sizes[si], cons[ci], (unsigned long long)r->n, r->rps, r->ns_per, ratio);
				}
		printf("(best of %d; 'ring x' = libshm records/s divided by this row's)\n", reps);
	}
	return rc;
}
