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
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kloudlens/shm.h>

#include "collector.h"
#include "floor.skel.h"

#define LOOP_COMM "kl-bench-loop"

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
};

static char self_exe[PATH_MAX];
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

/* ---- kl-collector with a consumer on raw ---------------------------------- */

struct counter {
	struct shm_consumer *c;
	atomic_bool stop;
	uint64_t n;
	uint64_t all;        /* every record, node-wide */
};

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
			if (recs[i].type == KL_REC_SYSCALL && recs[i].len >= sizeof(*ev) &&
			    !strncmp(ev->comm, LOOP_COMM, sizeof(ev->comm)))
				k->n++;
		}
		if (n > 0)
			shm_consumer_release(k->c);
	}
	return NULL;
}

static void bench_kl(struct result *r, long n, uint64_t base)
{
	char dir[] = "/tmp/kl-bench-XXXXXX", ready[64], coll[PATH_MAX + 16];
	struct shm_ring *ring = NULL;
	struct counter k = { 0 };
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
	all0 = k.all;
	rt0 = prog_runtime("kl_");
	cpu0 = proc_cpu_ns(cp);
	err = run_plain(n, &ns);
	rt1 = prog_runtime("kl_");
	usleep(100000); /* the reorder window and a drain tick */
	cpu1 = proc_cpu_ns(cp);
	all1 = k.all;
	atomic_store(&k.stop, true);
	pthread_join(th, NULL);
	if (err) {
		snprintf(r->why, sizeof(r->why), "loop: %s", strerror(-err));
		goto out_cons;
	}
	r->ok = true;
	r->iters = n;
	r->ns_per_iter = (double)ns / n;
	r->events = k.n;
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

/* ---- the floor: reserve + submit of a fixed record, drained on a timer ---- */

struct floor_drain {
	struct ring_buffer *rb;
	atomic_bool stop;
	uint64_t n;
	uint64_t all;        /* every record, node-wide */
};

static int floor_cb(void *ctx, void *data, size_t size)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

static void *floor_main(void *arg)
{
	struct floor_drain *d = arg;

	while (!atomic_load(&d->stop)) {
		ring_buffer__poll(d->rb, 5);
		ring_buffer__consume(d->rb);
	}
	ring_buffer__consume(d->rb);
	return NULL;
}

static void bench_floor(struct result *r, long n, uint64_t base)
{
	struct floor_bpf *skel = NULL;
	struct floor_drain d = { 0 };
	int gate[2], out[2], status;
	char buf[64] = { 0 }, nb[32];
	pthread_t th;
	ssize_t got;
	uint64_t rt0 = 0, rt1 = 0;
	pid_t pid;

	r->name = "floor probe";
	if (pipe(gate) || pipe(out)) {
		snprintf(r->why, sizeof(r->why), "pipe: %s", strerror(errno));
		return;
	}
	snprintf(nb, sizeof(nb), "%ld", n);
	pid = fork();
	if (pid == 0) {
		char c;

		close(gate[1]);
		dup2(out[1], 1);
		if (read(gate[0], &c, 1) != 1)
			_exit(1);
		execl(self_exe, self_exe, "--loop", nb, NULL);
		_exit(127);
	}
	close(gate[0]);
	close(out[1]);
	skel = floor_bpf__open();
	if (!skel)
		goto fail;
	skel->rodata->target_tgid = pid;
	if (floor_bpf__load(skel) || floor_bpf__attach(skel))
		goto fail;
	d.rb = ring_buffer__new(bpf_map__fd(skel->maps.floor_rb), floor_cb, &d.n, NULL);
	if (!d.rb)
		goto fail;
	pthread_create(&th, NULL, floor_main, &d);
	rt0 = prog_runtime("floor_");
	if (write(gate[1], "g", 1) != 1)
		goto fail;
	got = read(out[0], buf, sizeof(buf) - 1);
	waitpid(pid, &status, 0);
	rt1 = prog_runtime("floor_");
	atomic_store(&d.stop, true);
	pthread_join(th, NULL);
	if (got > 0 && strtoull(buf, NULL, 10)) {
		uint64_t ns = strtoull(buf, NULL, 10);

		r->ok = true;
		r->iters = n;
		r->ns_per_iter = (double)ns / n;
		r->events = d.n;
		r->bpf_ns_per_event = ((double)ns - (double)base * n) / (3.0 * n);
		if (d.n)
			r->prog_ns_per_event = (double)(rt1 - rt0) / d.n;
	}
	ring_buffer__free(d.rb);
	floor_bpf__destroy(skel);
	close(gate[1]);
	close(out[0]);
	return;
fail:
	snprintf(r->why, sizeof(r->why), "floor probe: %s", strerror(errno));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ring_buffer__free(d.rb);
	floor_bpf__destroy(skel);
	close(gate[1]);
	close(out[0]);
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
	if (err) {
		snprintf(r->why, sizeof(r->why), "loop: %s", strerror(-err));
		return;
	}
	r->ok = true;
	r->iters = n;
	r->ns_per_iter = (double)ns / n;
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
	if (err) {
		snprintf(r->why, sizeof(r->why), "%s failed: %s", name, strerror(-err));
		return;
	}
	r->ok = true;
	r->iters = n;
	r->ns_per_iter = (double)ns / n;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, 0, 'j' }, { "iterations", required_argument, 0, 'n' },
		{ "slow-iterations", required_argument, 0, 's' }, { "loop", required_argument, 0, 'l' },
		{ "only", required_argument, 0, 'o' }, { "help", no_argument, 0, 'h' }, { 0 },
	};
	struct result res[8] = { 0 };
	long n = 200000, slow = 0;
	const char *only = NULL;
	bool json = false;
	uint64_t base_ns;
	double base;
	int opt, nr = 0;
	char *p;

	while ((opt = getopt_long(argc, argv, "jn:s:l:o:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'n': n = atol(optarg); break;
		case 's': slow = atol(optarg); break;
		case 'l': return run_loop(atol(optarg));
		case 'o': only = optarg; break;
		case 'h':
			printf("usage: collector-bench [--json] [--iterations N] [--slow-iterations N] [--only a,b]\n"
			       "  tracers: none kl floor bpftrace perf strace\n");
			return 0;
		default: return 2;
		}
	}
	if (!slow)
		slow = n / 20 > 1000 ? n / 20 : 1000;
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
	/* untraced twice, keep the faster: the machine is shared */
	{
		uint64_t a = 0, b = 0;

		if (run_plain(n, &a) || run_plain(n, &b)) {
			fprintf(stderr, "collector-bench: the loop itself failed\n");
			return 1;
		}
		base_ns = a < b ? a : b;
	}
	base = (double)base_ns / n;
	res[nr++] = (struct result){ .name = "none", .ok = true, .iters = n, .ns_per_iter = base };
	if (WANT("kl"))
		bench_kl(&res[nr++], n, (uint64_t)base);
	if (WANT("floor"))
		bench_floor(&res[nr++], n, (uint64_t)base);
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

	if (json) {
		printf("{\"iterations\":%ld,\"slow_iterations\":%ld,\"syscalls_per_iteration\":3,\"tracers\":[", n, slow);
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
		printf("],\"bpf_vs_floor\":%.3f}\n", floor_bpf > 0 ? kl_bpf / floor_bpf : 0.0);
		return 0;
	}
	printf("open+read+close of /etc/hostname; %ld iterations (%ld under perf trace and strace)\n\n", n, slow);
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
	return 0;
}
