/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector-bench - what tracing costs a workload: N x open+read+close of
 * /etc/hostname, timed inside the workload, untraced and under each
 * tracer in one run: kl-collector draining to `raw` with a consumer,
 * the floor probe (reserve+submit of a fixed record), bpftrace counting
 * in-kernel, perf trace, strace. Prints a table, or one JSON object with
 * --json. Needs root for every tracer; a missing tool is reported, not
 * fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kloudlens/shm.h>

#include "collector.h"
#include "floor.skel.h"

#define LOOP_COMM "kl-bench-loop"
#define STORM_COMM "kl-bench-storm"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The measured loop; prints its own elapsed ns so tracer start-up is not counted. */
static int run_loop(long n)
{
	char b[64];
	uint64_t t0, t1;

	prctl(PR_SET_NAME, LOOP_COMM);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = open("/etc/hostname", O_RDONLY);

		if (fd < 0)
			return 1;
		if (read(fd, b, sizeof(b)) < 0)
			return 1;
		close(fd);
	}
	t1 = now_ns();
	printf("%llu\n", (unsigned long long)(t1 - t0));
	return 0;
}

/*
 * The storm: one thread issuing syscalls as fast as it can, each failing
 * at once on fd -1 (read: bulk_file, close: bulk_file_meta, sendto:
 * bulk_net), so the kernel's own work is as small as it gets and the
 * tracer's share is as large as it gets.
 */
static int run_storm(long n)
{
	uint64_t t0, t1;

	prctl(PR_SET_NAME, STORM_COMM);
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		syscall(SYS_read, -1, NULL, 0);
		syscall(SYS_close, -1);
		syscall(SYS_sendto, -1, NULL, 0, 0, NULL, 0);
	}
	t1 = now_ns();
	printf("%llu\n", (unsigned long long)(t1 - t0));
	return 0;
}

/* What the storm under kl-collector delivered, per loop syscall. */
struct storm_res {
	uint64_t got[3];           /* read, close, sendto records of the storm thread (fd -1) */
	uint64_t lost[3];          /* counted losses (loss records) of their categories, node-wide */
};

struct result {
	const char *name;
	bool ok;
	char why[128];
	long iters;
	double ns_per_iter;
	double ratio;
	uint64_t events;           /* delivered to user space (0 if the tracer only counts) */
	double cpu_ns_per_event;   /* tracer process CPU per event */
	double bpf_ns_per_event;   /* added wall time per event vs untraced */
	double prog_ns_per_event;  /* BPF run time (bpf_stats) per record delivered, node-wide */
	double side_floor_ns_per_event; /* kl only: the floor probe attached in the same loop */
	double side_pair_ns_per_event;  /* kl only: the paired floor, same loop */
};

/* One loop run's outcome: the time of @n iterations, or why there is none (@err < 0). Return: @err == 0. */
static bool loop_result(struct result *r, long n, uint64_t ns, int err, const char *what)
{
	if (err) {
		snprintf(r->why, sizeof(r->why), "%s: %s", what, strerror(-err));
		return false;
	}
	r->ok = true;
	r->iters = n;
	r->ns_per_iter = (double)ns / n;
	return true;
}

static char self_exe[PATH_MAX];
/* --ring-kb: kl-collector's BPF rings and the floor's, the same size (0: kl-collector's default, 4 MiB) */
static long ring_kb;
static char self_dir[PATH_MAX];

/* Run argv (a tracer wrapping `self --loop n`, or just that) and read the loop's ns. */
static int run_cmd(char *const argv[], uint64_t *loop_ns)
{
	int out[2], status;
	char buf[128] = { 0 };
	ssize_t got = 0, r;
	pid_t pid;

	if (pipe(out))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(out[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		close(out[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	while (got < (ssize_t)sizeof(buf) - 1 && (r = read(out[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += r;
	close(out[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return -ECHILD;
	*loop_ns = strtoull(buf, NULL, 10);
	return *loop_ns ? 0 : -EBADMSG;
}

static int run_plain(long n, uint64_t *loop_ns)
{
	char nb[32];
	char *argv[] = { self_exe, "--loop", nb, NULL };

	snprintf(nb, sizeof(nb), "%ld", n);
	return run_cmd(argv, loop_ns);
}

/*
 * The loop, held at a gate until @armed(pid) has run: a probe that
 * filters by pid can be pointed at it before its first syscall.
 */
static int run_loop_gated(long n, const char *mode, uint64_t *loop_ns, void (*armed)(pid_t, void *), void *ctx)
{
	int gate[2], out[2], status, err = 0;
	char buf[64] = { 0 }, nb[32];
	ssize_t got = 0, r;
	pid_t pid;

	if (pipe(gate))
		return -errno;
	if (pipe(out)) {
		err = -errno;
		goto out_gate;
	}
	snprintf(nb, sizeof(nb), "%ld", n);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto out_pipes;
	}
	if (pid == 0) {
		char c;

		close(gate[1]);
		dup2(out[1], 1);
		if (read(gate[0], &c, 1) != 1)
			_exit(1);
		execl(self_exe, self_exe, mode, nb, NULL);
		_exit(127);
	}
	close(out[1]);
	out[1] = -1;
	if (armed)
		armed(pid, ctx);
	if (write(gate[1], "g", 1) != 1)
		err = -errno;
	while (got < (ssize_t)sizeof(buf) - 1 && (r = read(out[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += r;
	waitpid(pid, &status, 0);
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status) || !strtoull(buf, NULL, 10)))
		err = -EIO;
	if (!err)
		*loop_ns = strtoull(buf, NULL, 10);
out_pipes:
	close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
out_gate:
	close(gate[0]);
	close(gate[1]);
	return err;
}

static bool have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* Sum run_time_ns of the loaded programs whose name starts with @prefix (bpf_stats must be on). */
static uint64_t prog_runtime(const char *prefix)
{
	uint32_t id = 0;
	uint64_t sum = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = { 0 };
		uint32_t len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, prefix, strlen(prefix)))
			sum += info.run_time_ns;
		close(fd);
	}
	return sum;
}

/* Per-program run counts and times, to say which program the time goes to. */
#define PROG_SNAP_MAX 32
struct prog_snap {
	int n;
	struct { uint32_t id; char name[16]; uint64_t cnt, ns; } p[PROG_SNAP_MAX];
};

static void prog_snapshot(const char *prefix, struct prog_snap *s)
{
	uint32_t id = 0;

	s->n = 0;
	while (s->n < PROG_SNAP_MAX && !bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = { 0 };
		uint32_t len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strncmp(info.name, prefix, strlen(prefix))) {
			s->p[s->n].id = id;
			snprintf(s->p[s->n].name, sizeof(s->p[s->n].name), "%s", info.name);
			s->p[s->n].cnt = info.run_cnt;
			s->p[s->n].ns = info.run_time_ns;
			s->n++;
		}
		close(fd);
	}
}

/* kl's programs that ran during the loop: name, runs, ns per run (filled by bench_kl) */
static struct prog_snap kl_progs;

/* Add what each program of @before ran until @after to kl_progs (by name: repeats reload them). */
static void prog_delta(const struct prog_snap *before, const struct prog_snap *after)
{
	for (int i = 0; i < before->n; i++)
		for (int j = 0; j < after->n; j++) {
			int k;

			if (before->p[i].id != after->p[j].id)
				continue;
			for (k = 0; k < kl_progs.n; k++)
				if (!strcmp(kl_progs.p[k].name, before->p[i].name))
					break;
			if (k == kl_progs.n) {
				if (k == PROG_SNAP_MAX)
					continue;
				kl_progs.n++;
				memcpy(kl_progs.p[k].name, before->p[i].name, sizeof(kl_progs.p[k].name));
			}
			kl_progs.p[k].cnt += after->p[j].cnt - before->p[i].cnt;
			kl_progs.p[k].ns += after->p[j].ns - before->p[i].ns;
		}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Field-wise median of @n runs of one tracer (the machine is shared: one run can be unlucky). */
static void median_result(struct result *out, struct result *runs, int n)
{
	double v[n];
	int ok = 0;

#define MEDIAN_OF(field)                                   \
	do {                                               \
		int m = 0;                                 \
		for (int i = 0; i < n; i++)                \
			if (runs[i].ok)                    \
				v[m++] = (double)runs[i].field; \
		qsort(v, m, sizeof(v[0]), cmp_double);     \
		out->field = v[m / 2];                     \
	} while (0)
	for (int i = 0; i < n; i++)
		ok += runs[i].ok;
	*out = runs[0];
	for (int i = 0; i < n && !ok; i++)
		if (!runs[i].ok)
			return; /* every run failed: keep the first reason */
	for (int i = 0; i < n; i++)
		if (runs[i].ok) {
			*out = runs[i];
			break;
		}
	MEDIAN_OF(ns_per_iter);
	MEDIAN_OF(events);
	MEDIAN_OF(cpu_ns_per_event);
	MEDIAN_OF(bpf_ns_per_event);
	MEDIAN_OF(prog_ns_per_event);
	MEDIAN_OF(side_floor_ns_per_event);
	MEDIAN_OF(side_pair_ns_per_event);
#undef MEDIAN_OF
}

/* ---- the floor: reserve + submit of a fixed record, drained on a timer ---- */

#define FLOOR_PLAIN 1   /* floor_exit: reserve+submit at exit */
#define FLOOR_PAIRED 2  /* floor_pair_*: the same, paired with a timestamp kept at entry */

struct floor_run {
	struct floor_bpf *skel;
	struct ring_buffer *rb;
	pthread_t th;
	bool running;
	atomic_bool stop;
	uint64_t n;          /* records drained (FLOOR_PLAIN) */
	uint64_t npair;      /* records drained (FLOOR_PAIRED) */
};

static int floor_cb(void *ctx, void *data, size_t size)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

static void *floor_main(void *arg)
{
	struct floor_run *f = arg;

	while (!atomic_load(&f->stop)) {
		ring_buffer__poll(f->rb, 5);
		ring_buffer__consume(f->rb);
	}
	ring_buffer__consume(f->rb);
	return NULL;
}

/* Load and attach the floor probes of @mode, tracing nobody until floor_target(). */
static int floor_start(struct floor_run *f, int mode)
{
	uint32_t rsz = (ring_kb ? ring_kb : 4096) * 1024u;
	int err;

	memset(f, 0, sizeof(*f));
	f->skel = floor_bpf__open();
	if (!f->skel)
		return -errno;
	bpf_program__set_autoload(f->skel->progs.floor_exit, mode & FLOOR_PLAIN);
	bpf_program__set_autoload(f->skel->progs.floor_pair_enter, mode & FLOOR_PAIRED);
	bpf_program__set_autoload(f->skel->progs.floor_pair_exit, mode & FLOOR_PAIRED);
	/* the same ring size as kl's: a ring's size is its writer's working set (cache, TLB) */
	if (bpf_map__set_max_entries(f->skel->maps.floor_rb, rsz) || bpf_map__set_max_entries(f->skel->maps.pair_rb, rsz) ||
	    floor_bpf__load(f->skel) || floor_bpf__attach(f->skel))
		goto fail;
	f->rb = ring_buffer__new(bpf_map__fd(f->skel->maps.floor_rb), floor_cb, &f->n, NULL);
	if (!f->rb || ring_buffer__add(f->rb, bpf_map__fd(f->skel->maps.pair_rb), floor_cb, &f->npair))
		goto fail;
	err = pthread_create(&f->th, NULL, floor_main, f);
	if (err) {
		errno = err;
		goto fail;
	}
	f->running = true;
	return 0;
fail:
	err = -errno;
	ring_buffer__free(f->rb);
	floor_bpf__destroy(f->skel);
	f->skel = NULL;
	return err;
}

static void floor_target(struct floor_run *f, pid_t pid)
{
	__atomic_store_n(&f->skel->bss->target_tgid, (uint32_t)pid, __ATOMIC_RELEASE);
}

static void floor_stop(struct floor_run *f)
{
	if (!f->skel)
		return;
	if (f->running) {
		atomic_store(&f->stop, true);
		pthread_join(f->th, NULL);
	}
	ring_buffer__free(f->rb);
	floor_bpf__destroy(f->skel);
	f->skel = NULL;
}

static void floor_armed(pid_t pid, void *ctx)
{
	floor_target(ctx, pid);
}

static void bench_floor(struct result *r, long n, uint64_t base)
{
	struct floor_run f;
	uint64_t rt0, rt1, ns = 0;
	int err;

	r->name = "floor probe";
	err = floor_start(&f, FLOOR_PLAIN);
	if (err) {
		snprintf(r->why, sizeof(r->why), "floor probe: %s", strerror(-err));
		return;
	}
	rt0 = prog_runtime("floor_");
	err = run_loop_gated(n, "--loop", &ns, floor_armed, &f);
	rt1 = prog_runtime("floor_");
	floor_stop(&f);
	if (!loop_result(r, n, ns, err, "loop"))
		return;
	r->events = f.n;
	r->bpf_ns_per_event = ((double)ns - (double)base * n) / (3.0 * n);
	if (f.n)
		r->prog_ns_per_event = (double)(rt1 - rt0) / f.n;
}

/* ---- kl-collector with a consumer on raw ---------------------------------- */

struct counter {
	struct shm_consumer *c;
	atomic_bool stop;
	const char *comm;    /* the measured loop's */
	uint64_t n;
	uint64_t all;        /* every record, node-wide */
	struct storm_res st; /* storm: per loop syscall, and losses per category */
};

static int storm_slot(const struct kl_syscall *sc)
{
	if ((int)sc->args[0] != -1) /* an int: the upper half of the register is not defined */
		return -1;
	return sc->nr == SYS_read ? 0 : sc->nr == SYS_close ? 1 : sc->nr == SYS_sendto ? 2 : -1;
}

static void *count_main(void *arg)
{
	struct counter *k = arg;
	struct shm_rec recs[512];

	while (!atomic_load(&k->stop)) {
		int n = shm_consumer_poll(k->c, recs, 512, 20);

		if (n > 0)
			k->all += n;
		for (int i = 0; i < n; i++) {
			const struct kl_event *ev = recs[i].data;

			/* only the loop's own events: the node is busy with other work */
			if (recs[i].type == KL_REC_SYSCALL && recs[i].len >= sizeof(struct kl_syscall) &&
			    !strncmp(ev->comm, k->comm, sizeof(ev->comm))) {
				int slot = storm_slot(recs[i].data);

				k->n++;
				if (slot >= 0)
					k->st.got[slot]++;
			}
			if (recs[i].type == KL_REC_LOSS && recs[i].len >= sizeof(struct kl_loss)) {
				const struct kl_loss *l = recs[i].data;

				if (l->category == KL_CAT_BULK_FILE)
					k->st.lost[0] += l->count;
				if (l->category == KL_CAT_BULK_FILE_META)
					k->st.lost[1] += l->count;
				if (l->category == KL_CAT_BULK_NET)
					k->st.lost[2] += l->count;
			}
		}
		if (n > 0)
			shm_consumer_release(k->c);
	}
	return NULL;
}

/*
 * kl-collector (default flags) with a consumer on raw, around the open
 * loop, or around the storm when @storm. @side: see below.
 */
static void bench_kl(struct result *r, long n, uint64_t base, struct floor_run *side, struct storm_res *storm)
{
	char dir[] = "/tmp/kl-bench-XXXXXX", ready[64], coll[PATH_MAX + 16];
	struct shm_ring *ring = NULL;
	struct counter k = { .comm = storm ? STORM_COMM : LOOP_COMM };
	pthread_t th;
	uint64_t ns, cpu0, cpu1, rt0, rt1, all0, all1;
	pid_t cp;
	int err;

	r->name = "kl-collector";
	if (!mkdtemp(dir)) {
		snprintf(r->why, sizeof(r->why), "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(coll, sizeof(coll), "%s/kl-collector", self_dir);
	cp = fork();
	if (cp == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, 2);
		char rkb[32];

		snprintf(rkb, sizeof(rkb), "%ld", ring_kb);
		if (ring_kb)
			execl(coll, coll, "--dir", dir, "--ready", ready, "--no-bootstrap", "--ring-kb", rkb, NULL);
		execl(coll, coll, "--dir", dir, "--ready", ready, "--no-bootstrap", NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && access(ready, F_OK); i++) {
		if (waitpid(cp, NULL, WNOHANG) == cp) {
			snprintf(r->why, sizeof(r->why), "kl-collector did not start (root? BPF?)");
			goto out_dir;
		}
		usleep(20000);
	}
	err = shm_ring_open(dir, "raw", &ring);
	if (!err)
		err = shm_consumer_attach(ring, "bench", SHM_REQUIRED, &k.c);
	if (err) {
		snprintf(r->why, sizeof(r->why), "attach raw: %s", strerror(-err));
		goto out_coll;
	}
	pthread_create(&th, NULL, count_main, &k);
	usleep(100000);
	k.n = 0;
	memset(&k.st, 0, sizeof(k.st));
	all0 = k.all;
	/*
	 * With @side, the floor probe runs on the same loop: both see the same
	 * caches and the same neighbours, so their ratio does not depend on
	 * what the shared machine did between two runs.
	 */
	if (side && floor_start(side, FLOOR_PLAIN | FLOOR_PAIRED))
		side = NULL;
	rt0 = prog_runtime("kl_");
	{
		struct prog_snap before, after;
		uint64_t f0 = side ? prog_runtime("floor_exit") : 0, f1;
		uint64_t p0 = side ? prog_runtime("floor_pair") : 0, p1;

		prog_snapshot("kl_", &before);
		cpu0 = proc_cpu_ns(cp);
		err = run_loop_gated(n, storm ? "--storm-loop" : "--loop", &ns, side ? floor_armed : NULL, side);
		rt1 = prog_runtime("kl_");
		f1 = side ? prog_runtime("floor_exit") : 0;
		p1 = side ? prog_runtime("floor_pair") : 0;
		prog_snapshot("kl_", &after);
		if (!side && !storm)
			prog_delta(&before, &after);
		if (side) {
			floor_stop(side);
			if (side->n)
				r->side_floor_ns_per_event = (double)(f1 - f0) / side->n;
			if (side->npair)
				r->side_pair_ns_per_event = (double)(p1 - p0) / side->npair;
		}
	}
	/* the reorder window, a drain tick, and the loss report after it */
	usleep(storm ? 400000 : 100000);
	cpu1 = proc_cpu_ns(cp);
	all1 = k.all;
	atomic_store(&k.stop, true);
	pthread_join(th, NULL);
	if (!loop_result(r, n, ns, err, "loop"))
		goto out_cons;
	r->events = k.n;
	if (storm)
		*storm = k.st;
	/* the collector drains the whole node: its CPU is shared by every record it moved */
	if (all1 > all0) {
		r->cpu_ns_per_event = (double)(cpu1 - cpu0) / (all1 - all0);
		r->prog_ns_per_event = (double)(rt1 - rt0) / (all1 - all0);
	}

	r->bpf_ns_per_event = ((double)ns - (double)base * n) / (3.0 * n);
out_cons:
	shm_consumer_detach(k.c);
out_coll:
	if (ring)
		shm_ring_close(ring);
	kill(cp, SIGTERM);
	waitpid(cp, NULL, 0);
out_dir:
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd)) {
			/* leftovers in /tmp are harmless */
		}
	}
}

/* ---- bpftrace, perf trace, strace ------------------------------------------- */

static void bench_bpftrace(struct result *r, long n)
{
	char script[] = "/tmp/kl-bench-bt-XXXXXX", log[64];
	uint64_t ns;
	pid_t bt;
	int fd, err;
	FILE *f;

	r->name = "bpftrace (count)";
	if (!have("bpftrace")) {
		snprintf(r->why, sizeof(r->why), "bpftrace not installed");
		return;
	}
	fd = mkstemp(script);
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	fprintf(f, "tracepoint:syscalls:sys_enter_openat /comm == \"%s\"/ { @o = count(); }\n"
		   "tracepoint:syscalls:sys_enter_read /comm == \"%s\"/ { @r = count(); }\n"
		   "tracepoint:syscalls:sys_enter_close /comm == \"%s\"/ { @c = count(); }\n",
		LOOP_COMM, LOOP_COMM, LOOP_COMM);
	fclose(f);
	snprintf(log, sizeof(log), "%s.out", script);
	bt = fork();
	if (bt == 0) {
		int o = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(o, 2);
		execlp("bpftrace", "bpftrace", script, NULL);
		_exit(127);
	}
	/* wait for "Attaching N probes..." */
	for (int i = 0; i < 300; i++) {
		char line[256] = { 0 };
		FILE *l = fopen(log, "r");
		bool attached = false;

		while (l && fgets(line, sizeof(line), l))
			if (strstr(line, "Attaching"))
				attached = true;
		if (l)
			fclose(l);
		if (attached)
			break;
		usleep(50000);
	}
	usleep(300000);
	err = run_plain(n, &ns);
	kill(bt, SIGINT);
	waitpid(bt, NULL, 0);
	unlink(script);
	unlink(log);
	loop_result(r, n, ns, err, "loop");
}

static void bench_wrapped(struct result *r, const char *name, char *const pre[], int npre, long n)
{
	char *argv[16], nb[32];
	uint64_t ns;
	int i, err;

	r->name = name;
	if (!have(pre[0])) {
		snprintf(r->why, sizeof(r->why), "%s not installed", pre[0]);
		return;
	}
	snprintf(nb, sizeof(nb), "%ld", n);
	for (i = 0; i < npre; i++)
		argv[i] = pre[i];
	argv[i++] = self_exe;
	argv[i++] = "--loop";
	argv[i++] = nb;
	argv[i] = NULL;
	err = run_cmd(argv, &ns);
	loop_result(r, n, ns, err, name);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' }, { "iterations", required_argument, 0, 'n' },
		{ "slow-iterations", required_argument, 0, 's' }, { "loop", required_argument, 0, 'l' },
		{ "only", required_argument, 0, 'o' }, { "repeat", required_argument, 0, 'r' },
		{ "ring-kb", required_argument, 0, 'K' }, { "storm-loop", required_argument, 0, 'S' }, { "storm-iterations", required_argument, 0, 'N' },
		{ "help", no_argument, 0, 'h' }, { 0 },
	};
	struct result res[8] = { 0 };
	long n = 200000, slow = 0, repeat = 3, sn = 1000000;
	/* storm: syscalls/s untraced and under kl-collector, per run; accounting of the median run */
	double storm_plain[15], storm_kl[15];
	struct storm_res storm_st[15];
	int nstorm = 0, nstorm_plain = 0;
	struct result same = { 0 };  /* kl with the floor attached to the same loop */
	double same_ratio[15], pair_ratio[15], kl_pair_ratio[15];
	int nsame = 0;
	const char *only = NULL;
	bool json = false;
	double base;
	int opt, nr = 0;
	char *p;

	while ((opt = getopt_long(argc, argv, "jn:s:l:o:r:S:N:K:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'n': n = atol(optarg); break;
		case 's': slow = atol(optarg); break;
		case 'l': return run_loop(atol(optarg));
		case 'o': only = optarg; break;
		case 'r': repeat = atol(optarg); break;
		case 'S': return run_storm(atol(optarg));
		case 'N': sn = atol(optarg); break;
		case 'K': ring_kb = atol(optarg); break;
		case 'h':
			printf("usage: collector-bench [--json] [--iterations N] [--slow-iterations N] [--only a,b] [--repeat R]\n"
			       "                       [--storm-iterations N] [--ring-kb N]\n"
			       "  tracers: none kl floor bpftrace perf strace storm\n"
			       "  none, kl, floor and storm run R times interleaved (default 3); each figure is the median\n"
			       "  storm: one thread, N x {read, close, sendto} on fd -1 (default 1000000), untraced\n"
			       "  and under kl-collector: syscalls/s, and captured + counted losses against issued\n");
			return 0;
		default: return 2;
		}
	}
	if (!slow)
		slow = n / 20 > 1000 ? n / 20 : 1000;
	if (n <= 0 || sn <= 0 || repeat < 1 || repeat > 15 || ring_kb < 0 || (ring_kb && (ring_kb & (ring_kb - 1)))) {
		fprintf(stderr, "collector-bench: --iterations and --storm-iterations must be > 0, --repeat 1..15,"
				" --ring-kb a power of two\n");
		return 2;
	}
	if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
		return 1;
	snprintf(self_dir, sizeof(self_dir), "%s", self_exe);
	p = strrchr(self_dir, '/');
	if (p)
		*p = 0;
	{
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		setrlimit(RLIMIT_MEMLOCK, &rl);
	}
	/* BPF run-time accounting while the bench runs (closed at exit) */
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	(void)stats_fd;
#define WANT(x) (!only || strstr(only, x))
	/*
	 * untraced, kl and floor interleaved @repeat times, each figure the
	 * median: the machine is shared, and a neighbour's burst during one
	 * run would otherwise decide a ratio
	 */
	{
		struct result none_r[15] = { 0 }, kl_r[15] = { 0 }, floor_r[15] = { 0 }, same_r[15] = { 0 };
		uint64_t t = 0;

		if (run_plain(n, &t)) { /* warm-up: page cache, dentries */
			fprintf(stderr, "collector-bench: the loop itself failed\n");
			return 1;
		}
		for (long i = 0; i < repeat; i++) {
			if (run_plain(n, &t)) {
				fprintf(stderr, "collector-bench: the loop itself failed\n");
				return 1;
			}
			none_r[i] = (struct result){ .name = "none", .ok = true, .iters = n, .ns_per_iter = (double)t / n };
			if (WANT("kl"))
				bench_kl(&kl_r[i], n, (uint64_t)none_r[i].ns_per_iter, NULL, NULL);
			if (WANT("floor"))
				bench_floor(&floor_r[i], n, (uint64_t)none_r[i].ns_per_iter);
			if (WANT("storm")) {
				struct result sr = { 0 };
				uint64_t sns = 0;

				if (!run_loop_gated(sn, "--storm-loop", &sns, NULL, NULL) && sns)
					storm_plain[nstorm_plain++] = 3.0 * sn / (sns / 1e9);
				bench_kl(&sr, sn, 0, NULL, &storm_st[nstorm]);
				if (sr.ok) {
					storm_kl[nstorm] = 3.0 / (sr.ns_per_iter / 1e9);
					nstorm++;
				}
			}
			if (WANT("kl") && WANT("floor")) {
				struct floor_run f;

				bench_kl(&same_r[i], n, (uint64_t)none_r[i].ns_per_iter, &f, NULL);
				same_ratio[nsame] = same_r[i].side_floor_ns_per_event > 0
					? same_r[i].prog_ns_per_event / same_r[i].side_floor_ns_per_event : 0;
				if (same_ratio[nsame] > 0 && same_r[i].side_pair_ns_per_event > 0) {
					pair_ratio[nsame] = same_r[i].side_pair_ns_per_event / same_r[i].side_floor_ns_per_event;
					kl_pair_ratio[nsame] = same_r[i].prog_ns_per_event / same_r[i].side_pair_ns_per_event;
					nsame++;
				}
			}
		}
		median_result(&res[nr++], none_r, (int)repeat);
		base = res[0].ns_per_iter;
		if (WANT("kl"))
			median_result(&res[nr++], kl_r, (int)repeat);
		if (WANT("floor"))
			median_result(&res[nr++], floor_r, (int)repeat);
		if (nsame) {
			median_result(&same, same_r, (int)repeat);
			qsort(same_ratio, nsame, sizeof(same_ratio[0]), cmp_double);
			qsort(pair_ratio, nsame, sizeof(pair_ratio[0]), cmp_double);
			qsort(kl_pair_ratio, nsame, sizeof(kl_pair_ratio[0]), cmp_double);
		}
	}
	if (WANT("bpftrace"))
		bench_bpftrace(&res[nr++], n);
	if (WANT("perf")) {
		char *pre[] = { "perf", "trace", "-s", "-o", "/dev/null", "--" };

		bench_wrapped(&res[nr++], "perf trace", pre, 6, slow);
	}
	if (WANT("strace")) {
		char *pre[] = { "strace", "-f", "-o", "/dev/null", "--" };

		bench_wrapped(&res[nr++], "strace -f", pre, 5, slow);
	}
	for (int i = 0; i < nr; i++)
		if (res[i].ok)
			res[i].ratio = res[i].ns_per_iter / base;

	/* BPF side against the floor: added ns per event, kl over floor */
	double kl_bpf = 0, floor_bpf = 0;
	for (int i = 0; i < nr; i++) {
		if (res[i].ok && !strcmp(res[i].name, "kl-collector"))
			kl_bpf = res[i].prog_ns_per_event;
		if (res[i].ok && !strcmp(res[i].name, "floor probe"))
			floor_bpf = res[i].prog_ns_per_event;
	}

	/* storm: the median run by traced rate, and what any run left unaccounted */
	double storm_plain_med = 0, storm_kl_med = 0;
	struct storm_res storm_med = { 0 };
	uint64_t storm_missing = 0;
	if (nstorm_plain) {
		qsort(storm_plain, nstorm_plain, sizeof(storm_plain[0]), cmp_double);
		storm_plain_med = storm_plain[nstorm_plain / 2];
	}
	if (nstorm) {
		int order[15];

		for (int i = 0; i < nstorm; i++)
			order[i] = i;
		for (int i = 1; i < nstorm; i++)
			for (int j = i; j > 0 && storm_kl[order[j]] < storm_kl[order[j - 1]]; j--) {
				int t = order[j];

				order[j] = order[j - 1];
				order[j - 1] = t;
			}
		storm_kl_med = storm_kl[order[nstorm / 2]];
		storm_med = storm_st[order[nstorm / 2]];
		/* losses are counted per category node-wide, so they can only over-cover */
		for (int i = 0; i < nstorm; i++)
			for (int c = 0; c < 3; c++)
				if (storm_st[i].got[c] + storm_st[i].lost[c] < (uint64_t)sn)
					storm_missing += (uint64_t)sn - storm_st[i].got[c] - storm_st[i].lost[c];
	}

	if (json) {
		printf("{\"iterations\":%ld,\"slow_iterations\":%ld,\"repeat\":%ld,\"ring_kb\":%ld,"
		       "\"syscalls_per_iteration\":3,\"tracers\":[",
		       n, slow, repeat, ring_kb ? ring_kb : 4096);
		for (int i = 0; i < nr; i++) {
			printf("%s{\"name\":\"%s\",\"ok\":%s", i ? "," : "", res[i].name, res[i].ok ? "true" : "false");
			if (res[i].ok)
				printf(",\"iterations\":%ld,\"ns_per_iteration\":%.1f,\"ratio\":%.3f,\"events\":%llu,"
				       "\"events_per_s\":%.0f,\"cpu_ns_per_event\":%.1f,\"added_ns_per_syscall\":%.1f,"
				       "\"bpf_prog_ns_per_event\":%.1f",
				       res[i].iters, res[i].ns_per_iter, res[i].ratio, (unsigned long long)res[i].events,
				       res[i].events ? res[i].events / (res[i].ns_per_iter * res[i].iters / 1e9) : 0.0,
				       res[i].cpu_ns_per_event, res[i].bpf_ns_per_event, res[i].prog_ns_per_event);
			else
				printf(",\"reason\":\"%s\"", res[i].why);
			printf("}");
		}
		printf("],\"bpf_vs_floor\":%.3f", floor_bpf > 0 ? kl_bpf / floor_bpf : 0.0);
		if (nsame)
			printf(",\"same_loop\":{\"kl_bpf_ns_per_event\":%.1f,\"floor_bpf_ns_per_event\":%.1f,"
			       "\"bpf_vs_floor\":%.3f,\"paired_floor_bpf_ns_per_event\":%.1f,"
			       "\"paired_floor_vs_floor\":%.3f,\"bpf_vs_paired_floor\":%.3f}",
			       same.prog_ns_per_event, same.side_floor_ns_per_event, same_ratio[nsame / 2],
			       same.side_pair_ns_per_event, pair_ratio[nsame / 2], kl_pair_ratio[nsame / 2]);
		if (nstorm)
			printf(",\"storm\":{\"iterations\":%ld,\"syscalls_per_iteration\":3,\"untraced_per_s\":%.0f,"
			       "\"kl_per_s\":%.0f,\"ratio\":%.3f,\"captured\":[%llu,%llu,%llu],\"counted_lost\":[%llu,%llu,%llu],"
			       "\"missing\":%llu}",
			       sn, storm_plain_med, storm_kl_med, storm_kl_med > 0 ? storm_plain_med / storm_kl_med : 0.0,
			       (unsigned long long)storm_med.got[0], (unsigned long long)storm_med.got[1],
			       (unsigned long long)storm_med.got[2], (unsigned long long)storm_med.lost[0],
			       (unsigned long long)storm_med.lost[1], (unsigned long long)storm_med.lost[2],
			       (unsigned long long)storm_missing);
		printf(",\"kl_programs\":[");
		for (int i = 0, k = 0; i < kl_progs.n; i++) {
			if (!kl_progs.p[i].cnt)
				continue;
			printf("%s{\"name\":\"%s\",\"runs\":%llu,\"ns_per_run\":%.1f}", k++ ? "," : "",
			       kl_progs.p[i].name, (unsigned long long)kl_progs.p[i].cnt,
			       (double)kl_progs.p[i].ns / kl_progs.p[i].cnt);
		}
		printf("]}\n");
		return 0;
	}
	printf("open+read+close of /etc/hostname; %ld iterations (%ld under perf trace and strace); "
	       "none, kl and floor: median of %ld interleaved runs; BPF rings %ld KiB\n\n", n, slow, repeat,
	       ring_kb ? ring_kb : 4096);
	printf("%-18s %10s %7s %10s %10s %13s %12s %13s\n", "tracer", "ns/iter", "ratio", "events", "events/s",
	       "cpu ns/event", "+ns/syscall", "bpf ns/event");
	for (int i = 0; i < nr; i++) {
		if (!res[i].ok) {
			printf("%-18s %s\n", res[i].name, res[i].why);
			continue;
		}
		printf("%-18s %10.0f %6.2fx %10llu %10.0f %13.1f %12.1f %13.1f\n", res[i].name, res[i].ns_per_iter,
		       res[i].ratio, (unsigned long long)res[i].events,
		       res[i].events ? res[i].events / (res[i].ns_per_iter * res[i].iters / 1e9) : 0.0,
		       res[i].cpu_ns_per_event, res[i].bpf_ns_per_event, res[i].prog_ns_per_event);
	}
	if (floor_bpf > 0)
		printf("\nBPF side (bpf_stats run time per delivered record): kl %.0f ns vs floor %.0f ns = %.2fx the floor\n",
		       kl_bpf, floor_bpf, kl_bpf / floor_bpf);
	if (nstorm) {
		printf("\nstorm: one thread, %ld x {read, close, sendto} on fd -1; median of %d runs\n", sn, nstorm);
		printf("  untraced      %10.0f syscalls/s\n", storm_plain_med);
		printf("  kl-collector  %10.0f syscalls/s  (%.2fx the untraced time per call)\n", storm_kl_med,
		       storm_kl_med > 0 ? storm_plain_med / storm_kl_med : 0.0);
		printf("  captured read %llu, close %llu, sendto %llu of %ld each; counted losses %llu, %llu, %llu;"
		       " missing in any run: %llu\n",
		       (unsigned long long)storm_med.got[0], (unsigned long long)storm_med.got[1],
		       (unsigned long long)storm_med.got[2], sn, (unsigned long long)storm_med.lost[0],
		       (unsigned long long)storm_med.lost[1], (unsigned long long)storm_med.lost[2],
		       (unsigned long long)storm_missing);
	}
	if (nsame) {
		printf("BPF side, floor attached to the same loop: kl %.0f ns vs floor %.0f ns = %.2fx the floor\n",
		       same.prog_ns_per_event, same.side_floor_ns_per_event, same_ratio[nsame / 2]);
		printf("  paired floor (timestamp at entry, record at exit) %.0f ns = %.2fx the floor; kl = %.2fx the paired floor\n",
		       same.side_pair_ns_per_event, pair_ratio[nsame / 2], kl_pair_ratio[nsame / 2]);
	}
	for (int i = 0; i < kl_progs.n; i++)
		if (kl_progs.p[i].cnt)
			printf("  %-16s %10llu runs %8.1f ns/run\n", kl_progs.p[i].name,
			       (unsigned long long)kl_progs.p[i].cnt, (double)kl_progs.p[i].ns / kl_progs.p[i].cnt);
	return 0;
}
