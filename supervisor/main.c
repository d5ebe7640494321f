/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kloudlens - the supervisor (host mode). Creates the rings, starts each
 * stage as its own process with the right identity, restarts a crashed
 * stage with backoff (it resumes from its cursor in the ring), and on
 * SIGTERM/SIGINT stops the pipeline front to back so every stage drains
 * what is upstream of it before it goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/shm.h>

#include "config.h"
#include "controlplane.h"
#include "kubewatch.h"

#define KL_AGENT_VERSION "0.1.0"

struct stage {
	const char *bin;            /* binary name */
	const char *subdir;         /* its directory in a build tree */
	bool privileged;            /* keeps root (drops what it does not need itself) */
	char path[PATH_MAX];
	bool found;
	pid_t pid;
	uint64_t started;
	uint64_t next_start;        /* 0 = not scheduled */
	uint32_t backoff_ms;
	unsigned restarts;
};

static struct stage stages[KL_STAGE__COUNT] = {
	[KL_STAGE_COLLECTOR] = { "kl-collector", "collector", true },
	[KL_STAGE_ENRICHER] = { "kl-enricher", "enricher", false },
	[KL_STAGE_INTENTD] = { "kl-intentd", "intentd", false },
	[KL_STAGE_GRAPHD] = { "kl-graphd", "graphd", false },
	[KL_STAGE_BASELINED] = { "kl-baselined", "baselined", false },
	[KL_STAGE_EXPORTER] = { "kl-exporter", "exporter", false },
};

static struct kl_config cfg;
static uid_t run_uid;
static gid_t run_gid;
static pid_t viewer = -1;
static pid_t supervisor_pid;
extern char **environ;

/* The control plane (docker mode, and kubernetes mode with a mounted directory). */
static struct kl_cp *cp;
static int cp_fd = -1;
static struct kl_kw *kube;              /* kubernetes mode: the API-server watch */
static uint64_t cp_due;         /* rescan at this time (debounce), 0 = none */
static uint64_t cp_gen;
static char *cp_last;           /* the filter text last written, generation line aside */
static char filter_path[KL_CFG_STR + 24];    /* rings.dir + /collector.filter */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 3, 4)))
static void logf_(const char *level, const char *stage, const char *fmt, ...)
{
	char msg[768], ts[40];
	struct timespec t;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "ts=%s.%03ldZ level=%s component=kloudlens%s%s msg=\"%s\"\n", ts, t.tv_nsec / 1000000,
		level, stage ? " stage=" : "", stage ? stage : "", msg);
}

static bool executable(const char *p)
{
	return access(p, X_OK) == 0;
}

/* bin_dir, then the build tree next to us (build/supervisor/kloudlens), then our own dir, then PATH. */
static void locate(struct stage *s, const char *self_dir)
{
	const char *path = getenv("PATH");

	s->found = true;
	if (cfg.bin_dir[0]) {
		snprintf(s->path, sizeof(s->path), "%s/%s", cfg.bin_dir, s->bin);
		s->found = executable(s->path);
		return;
	}
	snprintf(s->path, sizeof(s->path), "%s/../%s/%s", self_dir, s->subdir, s->bin);
	if (executable(s->path))
		return;
	snprintf(s->path, sizeof(s->path), "%s/%s", self_dir, s->bin);
	if (executable(s->path))
		return;
	for (const char *p = path; p && *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		snprintf(s->path, sizeof(s->path), "%.*s/%s", (int)n, p, s->bin);
		if (executable(s->path))
			return;
		p = e ? e + 1 : NULL;
	}
	s->found = false;
}

static int ensure_user(void)
{
	struct passwd *pw = getpwnam(cfg.user);

	if (!pw && geteuid() == 0) {
		logf_("info", NULL, "creating system user %s", cfg.user);
		pid_t p = fork();
		if (p == 0) {
			execlp("useradd", "useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
			       "/nonexistent", "--shell", "/usr/sbin/nologin", cfg.user, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(p, &st, 0);
		pw = getpwnam(cfg.user);
	}
	if (!pw) {
		logf_("error", NULL, "user %s does not exist and could not be created", cfg.user);
		return -ENOENT;
	}
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
	return 0;
}

static int mkdir_owned(const char *dir, mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return -errno;
	if (geteuid() == 0 && (chown(dir, uid, gid) < 0 || chmod(dir, mode) < 0))
		return -errno;
	return 0;
}

/*
 * The rings exist before any stage starts, group-writable for the
 * kloudlens group: a consumer writes its cursor into the ring, and the
 * stages run as the unprivileged user.
 */
static int create_rings(void)
{
	static const struct { const char *name; bool raw; enum shm_policy pol; } rings[] = {
		{ "raw", true, SHM_POLICY_DROP },
		{ "enriched", false, SHM_POLICY_BLOCK },
		{ "intents", false, SHM_POLICY_BLOCK },
	};
	int err = mkdir_owned(cfg.rings_dir, 0770, 0, run_gid);

	if (err) {
		logf_("error", NULL, "rings directory %s: %s (docs/troubleshooting.md#rings-directory-permissions)",
		      cfg.rings_dir, strerror(-err));
		return err;
	}
	for (size_t i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
		struct shm_ring_opts o = SHM_RING_OPTS_INIT;
		struct shm_ring *r;
		o.capacity = rings[i].raw ? cfg.raw_capacity : cfg.ring_capacity;
		o.policy = rings[i].pol;
		o.mode = 0660;
		o.gid = geteuid() == 0 ? run_gid : (gid_t)-1;
		o.grace_ms = cfg.ring_grace_ms;
		err = shm_ring_create(cfg.rings_dir, rings[i].name, &o, &r);
		if (err) {
			logf_("error", NULL, "create ring %s/%s: %s (docs/troubleshooting.md#rings-directory-permissions)",
			      cfg.rings_dir, rings[i].name, strerror(-err));
			return err;
		}
		shm_ring_close(r);
	}
	err = mkdir_owned(cfg.state_dir, 0750, run_uid, run_gid);
	if (err)
		logf_("warn", NULL, "state directory %s: %s", cfg.state_dir, strerror(-err));
	return 0;
}

static int build_args(enum kl_stage id, char **argv, char bufs[][KL_CFG_STR + 32], int max)
{
	int n = 0;
#define ARG(...) do { snprintf(bufs[n], sizeof(bufs[n]), __VA_ARGS__); argv[n] = bufs[n]; n++; } while (0)
	argv[n++] = stages[id].path;
	switch (id) {
	case KL_STAGE_COLLECTOR:
		ARG("--dir");
		ARG("%s", cfg.rings_dir);
		ARG("--capacity");
		ARG("%llu", (unsigned long long)cfg.raw_capacity);
		if (cfg.syscalls[0]) {
			ARG("--syscalls");
			ARG("%s", cfg.syscalls);
		}
		if (cfg.containers_only)
			ARG("--containers-only");
		if (cfg.bpf_ring_kb) {
			ARG("--ring-kb");
			ARG("%u", cfg.bpf_ring_kb);
		}
		if (cp) {
			ARG("--filter");
			ARG("%s", filter_path);
		}
		break;
	case KL_STAGE_EXPORTER:
		ARG("--rings");
		ARG("%s", cfg.rings_dir);
		ARG("--subscribe");
		ARG("%s", cfg.subscribe);
		ARG("--admin");
		ARG("%s", cfg.admin);
		ARG("--metrics");
		/* the config holds host:port (DESIGN §5); nng's HTTP server wants a URL */
		if (cfg.metrics[0] && !strstr(cfg.metrics, "://"))
			ARG("http://%s", cfg.metrics);
		else
			ARG("%s", cfg.metrics);
		ARG("--wal");
		ARG("%s/wal", cfg.state_dir);
		break;
	default:
		ARG("--dir");
		ARG("%s", cfg.rings_dir);
		ARG("--capacity");
		ARG("%llu", (unsigned long long)cfg.ring_capacity);
		/* profiles live in the state dir, which belongs to the stages' user */
		if (id == KL_STAGE_BASELINED) {
			ARG("--profiles");
			ARG("%s/profiles", cfg.state_dir);
		}
		/* kl-baselined reads the BaselinePolicy objects of the directory itself */
		if (id == KL_STAGE_BASELINED && cp) {
			ARG("--policy-dir");
			ARG("%s", cfg.cp_dir);
		}
		break;
	}
#undef ARG
	(void)max;
	argv[n] = NULL;
	return n;
}

/* In the child: become the unprivileged user with no capabilities at all. */
static int become_unprivileged(void)
{
	if (geteuid() != 0)
		return 0;
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	if (setgroups(1, &run_gid) < 0 || setresgid(run_gid, run_gid, run_gid) < 0 ||
	    setresuid(run_uid, run_uid, run_uid) < 0)
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static void start(enum kl_stage id)
{
	struct stage *s = &stages[id];
	char bufs[24][KL_CFG_STR + 32];
	char *argv[25];

	build_args(id, argv, bufs, 24);
	pid_t p = fork();
	if (p < 0) {
		logf_("error", kl_stage_names[id], "fork: %s", strerror(errno));
		s->next_start = now_ms() + s->backoff_ms;
		return;
	}
	if (p == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* Opened while still root: the binary may sit in a tree the
		 * unprivileged user cannot traverse (a build under /root). */
		int fd = open(argv[0], O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "kloudlens: open %s: %s\n", argv[0], strerror(errno));
			_exit(127);
		}
		if (!s->privileged && become_unprivileged() < 0) {
			fprintf(stderr, "kloudlens: %s: cannot drop privileges: %s\n", s->bin, strerror(errno));
			_exit(126);
		}
		/* If the supervisor dies, its stages go too (they resume from their
		 * cursors when it comes back). Set after the uid change, which clears it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (getppid() != supervisor_pid)
			_exit(0);
		fexecve(fd, argv, environ);
		fprintf(stderr, "kloudlens: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	s->pid = p;
	s->started = now_ms();
	s->next_start = 0;
	logf_("info", kl_stage_names[id], "started pid %d as %s", (int)p, s->privileged ? "root" : cfg.user);
}

static void start_viewer(void)
{
	char dir_arg[KL_CFG_STR], self[PATH_MAX];
	const char *ring = NULL;
	struct stage klrec = { "klrec", "klrec", false };

	if (!strcmp(cfg.show, "none"))
		return;
	if (!strcmp(cfg.show, "intents") && cfg.stage_enabled[KL_STAGE_INTENTD] && stages[KL_STAGE_INTENTD].found)
		ring = "intents";
	else if (cfg.stage_enabled[KL_STAGE_ENRICHER] && stages[KL_STAGE_ENRICHER].found)
		ring = "enriched";
	else
		ring = "raw";
	if (!strcmp(cfg.show, "intents") && strcmp(ring, "intents"))
		logf_("warn", NULL, "kl-intentd is not available: showing the %s ring instead of intents", ring);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	locate(&klrec, self);
	if (!klrec.found) {
		logf_("warn", NULL, "klrec not found: nothing shown in the terminal");
		return;
	}
	snprintf(dir_arg, sizeof(dir_arg), "%s", cfg.rings_dir);
	viewer = fork();
	if (viewer == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		char *args[] = { klrec.path, "print", "--ring", (char *)ring, "--dir", dir_arg, "--follow", NULL };
		int fd = open(klrec.path, O_RDONLY);
		if (fd < 0 || become_unprivileged() < 0)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (getppid() != supervisor_pid)
			_exit(0);
		fexecve(fd, args, environ);
		_exit(127);
	}
	logf_("info", NULL, "showing live %s (klrec print --ring %s --follow)", ring, ring);
}

static void reap(int *running)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == viewer) {
			viewer = -1;
			continue;
		}
		for (int i = 0; i < KL_STAGE__COUNT; i++) {
			struct stage *s = &stages[i];
			if (s->pid != p)
				continue;
			s->pid = 0;
			(*running)--;
			char why[64];
			if (WIFEXITED(st))
				snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(st));
			else
				snprintf(why, sizeof(why), "signal %d", WTERMSIG(st));
			/* A stage that stayed up a while earns a fresh backoff. */
			if (now_ms() - s->started > 30000)
				s->backoff_ms = cfg.backoff_initial_ms;
			s->next_start = now_ms() + s->backoff_ms;
			s->restarts++;
			logf_("warn", kl_stage_names[i], "pid %d ended (%s); restart %u in %u ms", (int)p, why,
			      s->restarts, s->backoff_ms);
			s->backoff_ms = s->backoff_ms * 2 > cfg.backoff_max_ms ? cfg.backoff_max_ms : s->backoff_ms * 2;
		}
	}
}

/* Stop front to back: each stage drains its input on SIGTERM before it exits. */
static void stop_all(void)
{
	if (viewer > 0) {
		kill(viewer, SIGTERM);
		waitpid(viewer, NULL, 0);
	}
	for (int i = 0; i < KL_STAGE__COUNT; i++) {
		struct stage *s = &stages[i];
		if (s->pid <= 0)
			continue;
		kill(s->pid, SIGTERM);
		uint64_t deadline = now_ms() + cfg.stop_timeout_ms;
		int st;
		while (waitpid(s->pid, &st, WNOHANG) == 0) {
			if (now_ms() > deadline) {
				logf_("warn", kl_stage_names[i], "did not stop within %u ms: killing", cfg.stop_timeout_ms);
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &st, 0);
				break;
			}
			usleep(10000);
		}
		logf_("info", kl_stage_names[i], "stopped");
		s->pid = 0;
	}
}

/*
 * Before anything starts: the exporter's three addresses must be free,
 * or it would die at bind and be restarted forever. tcp://HOST:PORT or HOST:PORT.
 */
static int check_port(const char *key, const char *addr)
{
	char host[128];
	const char *hp = strstr(addr, "://") ? strstr(addr, "://") + 3 : addr;
	const char *colon = strrchr(hp, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1, rc = 0;

	if (strncmp(addr, "tcp://", 6) && strncmp(addr, "http://", 7) && strstr(addr, "://"))
		return 0;       /* ipc://, inproc://: not a port */
	if (!colon || (size_t)(colon - hp) >= sizeof(host))
		return 0;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, strcmp(host, "*") && host[0] ? host : "0.0.0.0", &sa.sin_addr) != 1)
		return 0;       /* a name or IPv6: the exporter reports it itself */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EADDRINUSE) {
		logf_("error", NULL, "port in use: %s %s is taken by another process (another kloudlens?); choose "
		      "another with --set %s=... (docs/troubleshooting.md#port-in-use)", key, addr, key);
		rc = -EADDRINUSE;
	}
	close(fd);
	return rc;
}

static void cp_log(const char *level, const char *msg, void *ctx)
{
	(void)ctx;
	logf_(level, NULL, "%s", msg);
}

/* The filter text without its generation line, to tell a real change. */
static char *strip_gen(const char *t)
{
	const char *g = strstr(t, "\ngeneration ");
	char *r;

	if (!g)
		return strdup(t);
	const char *e = strchr(g + 1, '\n');
	r = malloc(strlen(t) + 1);
	if (!r)
		return NULL;
	memcpy(r, t, (size_t)(g - t));
	strcpy(r + (g - t), e ? e : "");
	return r;
}

/* Re-read the directory; write a new filter file only when the rules changed. */
static void cp_apply(bool initial)
{
	bool changed = false;
	int err = kl_cp_rescan(cp, &changed);

	if (err) {
		logf_("error", NULL, "control plane: read %s: %s; the last good configuration stays in force",
		      cfg.cp_dir, strerror(-err));
		return;
	}
	if (!changed && !initial)
		return;
	char *text = kl_cp_filter_text(cp, cp_gen + 1), *body = text ? strip_gen(text) : NULL;
	if (!text || !body) {
		logf_("error", NULL, "control plane: out of memory");
		free(text);
		free(body);
		return;
	}
	if (!initial && cp_last && !strcmp(body, cp_last)) {
		free(text);
		free(body);
		goto summary;
	}
	err = kl_cp_write_atomic(filter_path, text);
	free(text);
	if (err) {
		logf_("error", NULL, "control plane: write %s: %s", filter_path, strerror(-err));
		free(body);
		return;
	}
	cp_gen++;
	free(cp_last);
	cp_last = body;
	logf_("info", NULL, "control plane: filter generation %llu written to %s", (unsigned long long)cp_gen,
	      filter_path);
summary:
	logf_("info", NULL, "control plane: in force: %zu HookSubscription(s), %zu BaselinePolicy(ies), "
	      "%zu BehaviorContract(s); %zu file(s) rejected", kl_cp_count(cp, KL_CP_HOOK),
	      kl_cp_count(cp, KL_CP_BASELINE), kl_cp_count(cp, KL_CP_CONTRACT), kl_cp_rejected(cp));
}

/* Run `kl-collector --probe --json` and keep what it prints. */
static char *run_probe(void)
{
	int pfd[2];
	char *buf = NULL;
	size_t len = 0;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return NULL;
	pid_t p = fork();
	if (p == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(pfd[1], 1);
		execl(stages[KL_STAGE_COLLECTOR].path, stages[KL_STAGE_COLLECTOR].path, "--probe", "--json",
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (p < 0) {
		close(pfd[0]);
		return NULL;
	}
	/* a probe that hangs must not hold the pipeline's start: 10 s, then killed */
	uint64_t deadline = now_ms() + 10000;
	bool killed = false;
	for (;;) {
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		uint64_t now = now_ms();
		char *nb;

		if (now >= deadline || poll(&pf, 1, (int)(deadline - now)) == 0) {
			logf_("warn", NULL, "NodeCapabilities: %s --probe still running after 10 s: killed",
			      stages[KL_STAGE_COLLECTOR].path);
			kill(p, SIGKILL);
			killed = true;
			break;
		}
		nb = realloc(buf, len + 4097);
		if (!nb)
			break;
		buf = nb;
		ssize_t r = read(pfd[0], buf + len, 4096);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || len > (1u << 20))
			break;
		len += (size_t)r;
	}
	close(pfd[0]);
	int st;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (killed) {
		free(buf);
		return NULL;
	}
	if (!buf || !len || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		free(buf);
		return NULL;
	}
	buf[len] = 0;
	return buf;
}

/* NodeCapabilities: into the directory, or the state dir when that is read-only. */
/* What a probe run elsewhere left in the rings directory (the DaemonSet's
 * init container writes <rings>/node-capabilities.json). */
static char *probe_file(char *path, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f;

	snprintf(path, len, "%s/node-capabilities.json", cfg.rings_dir);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (getdelim(&buf, &n, '\0', f) <= 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void write_nodecaps(void)
{
	char host[256] = "localhost", path[PATH_MAX];
	bool here = cfg.stage_enabled[KL_STAGE_COLLECTOR];
	char *json = here ? run_probe() : probe_file(path, sizeof(path)), *yaml;
	int err;

	if (!json) {
		logf_("warn", NULL, "NodeCapabilities: %s failed; not written",
		      here ? stages[KL_STAGE_COLLECTOR].path : path);
		return;
	}
	gethostname(host, sizeof(host) - 1);
	yaml = kl_cp_nodecaps_yaml(host, json, KL_AGENT_VERSION);
	free(json);
	if (!yaml)
		return;
	snprintf(path, sizeof(path), "%s/%s", cfg.cp_dir, KL_CP_CAPS_FILE);
	err = kl_cp_write_atomic(path, yaml);
	if (err == -EROFS || err == -EACCES || err == -EPERM) {
		logf_("info", NULL, "NodeCapabilities: %s is read-only (%s); writing to the state directory",
		      cfg.cp_dir, strerror(-err));
		snprintf(path, sizeof(path), "%s/%s", cfg.state_dir, KL_CP_CAPS_FILE);
		err = kl_cp_write_atomic(path, yaml);
	}
	free(yaml);
	if (err)
		logf_("warn", NULL, "NodeCapabilities: write %s: %s", path, strerror(-err));
	else
		logf_("info", NULL, "NodeCapabilities written to %s", path);
}

static void kube_log(const char *level, const char *msg, void *ctx)
{
	(void)ctx;
	logf_(level, NULL, "%s", msg);
}

/*
 * kubernetes mode with an API server (kubernetes.api, or in a pod): its
 * kloudlens.io objects are mirrored into <state_dir>/kubernetes, which
 * then is the control-plane directory, handled exactly as docker mode's.
 * Return: 1 when the watch runs, 0 when there is no API server, -errno.
 */
static int kube_setup(void)
{
	char api[KL_CFG_STR], dir[sizeof(cfg.cp_dir)];
	bool incluster = false;
	int err;

	if (cfg.kube_api[0]) {
		snprintf(api, sizeof(api), "%s", cfg.kube_api);
	} else if (kl_kw_incluster_api(api, sizeof(api)) == 0) {
		incluster = true;
	} else {
		return 0;
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/kubernetes", cfg.state_dir) >= sizeof(dir)) {
		logf_("error", NULL, "kubernetes: state_dir %s is too long", cfg.state_dir);
		return -ENAMETOOLONG;
	}
	if ((err = mkdir_owned(dir, 0755, 0, 0)) != 0 && err != -EEXIST) {
		logf_("error", NULL, "kubernetes: object directory %s: %s", dir, strerror(-err));
		return err;
	}
	struct kl_kw_opts o = {
		.api = api, .token_file = cfg.kube_token_file, .ca_file = cfg.kube_ca_file,
		/* the service IP is not a name this TLS library can check; the
		 * API server's certificate always carries this one */
		.server_name = cfg.kube_server_name[0] ? cfg.kube_server_name :
			       incluster ? "kubernetes.default.svc" : NULL,
		.dir = dir, .log = kube_log,
	};
	err = kl_kw_start(&o, &kube);
	if (err)
		return err;
	memcpy(cfg.cp_dir, dir, sizeof(dir));
	return 1;
}

/*
 * docker mode: the directory is the control plane (created if missing).
 * kubernetes mode: the API server's objects, mirrored by kubewatch into a
 * directory handled the same way; without an API server (not in a pod,
 * no kubernetes.api), a control_plane.dir that exists (a mounted
 * ConfigMap) is read instead, else nothing.
 */
static int cp_setup(void)
{
	struct stat st;
	int err;

	if (!strcmp(cfg.mode, "host"))
		return 0;
	if (!strcmp(cfg.mode, "kubernetes") && (err = kube_setup()) != 0) {
		if (err < 0)
			return err;
	} else if (!strcmp(cfg.mode, "kubernetes")) {
		logf_("warn", NULL, "mode kubernetes: no API server (not in a pod and kubernetes.api unset); "
		      "objects are read from control_plane.dir %s when it exists", cfg.cp_dir);
		if (stat(cfg.cp_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			logf_("warn", NULL, "mode kubernetes: %s absent: running with the host-mode settings", cfg.cp_dir);
			return 0;
		}
	} else if (stat(cfg.cp_dir, &st) < 0 && (err = mkdir_owned(cfg.cp_dir, 0755, 0, 0)) != 0) {
		logf_("error", NULL, "control plane directory %s: %s", cfg.cp_dir, strerror(-err));
		return err;
	}
	err = kl_cp_new(cfg.cp_dir, cp_log, NULL, &cp);
	if (err)
		return err;
	snprintf(filter_path, sizeof(filter_path), "%s/collector.filter", cfg.rings_dir);
	cp_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (cp_fd < 0 || inotify_add_watch(cp_fd, cfg.cp_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
					   IN_DELETE | IN_ATTRIB) < 0) {
		err = -errno;
		logf_("error", NULL, "control plane: inotify on %s: %s", cfg.cp_dir, strerror(errno));
		return err;
	}
	logf_("info", NULL, "mode %s: watching %s for HookSubscription, BaselinePolicy and BehaviorContract objects",
	      cfg.mode, cfg.cp_dir);
	cp_apply(true);
	return 0;
}

/* Drain the watch; any event but our own NodeCapabilities file schedules a rescan. */
static void cp_event(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(cp_fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (!e->len || strncmp(e->name, KL_CP_CAPS_FILE, strlen(KL_CP_CAPS_FILE)))
				/* editors write in bursts: settle for 50 ms, well inside the 1 s budget */
				if (!cp_due)
					cp_due = now_ms() + 50;
			p += sizeof(*e) + e->len;
		}
}

static void usage(FILE *o)
{
	fputs("usage: kloudlens [--config FILE] [--set KEY=VALUE]... [--print-config] [options]\n"
	      "  --config FILE        YAML configuration (default /etc/kloudlens/config.yaml if present)\n"
	      "  --set KEY=VALUE      any configuration key, e.g. --set rings.capacity=16777216\n"
	      "  --mode MODE          host | docker | kubernetes\n"
	      "  --control-plane-dir DIR  (control_plane.dir) docker mode's object directory\n"
	      "  --rings-dir DIR      (rings.dir)\n"
	      "  --state-dir DIR      (state_dir)\n"
	      "  --user NAME          (user)\n"
	      "  --bin-dir DIR        (bin_dir)\n"
	      "  --subscribe ADDR     (exporter.subscribe)\n"
	      "  --admin ADDR         (exporter.admin)\n"
	      "  --metrics ADDR       (exporter.metrics)\n"
	      "  --show WHAT          intents | events | none\n"
	      "  --stages LIST        e.g. collector,enricher,intentd,exporter\n"
	      "  --syscalls LIST      (collector.syscalls)\n"
	      "  --containers-only    (collector.containers_only)\n"
	      "  --print-config       print the effective configuration as YAML and exit\n",
	      o);
}

int main(int argc, char **argv)
{
	const char *config = NULL;
	bool print = false;
	char err[512], self[PATH_MAX];
	int opt;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'M' }, { "rings-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 'S' }, { "user", required_argument, NULL, 'u' },
		{ "bin-dir", required_argument, NULL, 'b' }, { "subscribe", required_argument, NULL, 'p' },
		{ "admin", required_argument, NULL, 'a' }, { "metrics", required_argument, NULL, 'm' },
		{ "show", required_argument, NULL, 'w' }, { "stages", required_argument, NULL, 'g' },
		{ "syscalls", required_argument, NULL, 'y' }, { "containers-only", no_argument, NULL, 'C' },
		{ "control-plane-dir", required_argument, NULL, 'D' },
		{ "print-config", no_argument, NULL, 'P' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	static const struct { int opt; const char *key; } flag_keys[] = {
		{ 'M', "mode" }, { 'r', "rings.dir" }, { 'S', "state_dir" }, { 'u', "user" }, { 'b', "bin_dir" },
		{ 'p', "exporter.subscribe" }, { 'a', "exporter.admin" }, { 'm', "exporter.metrics" },
		{ 'w', "show" }, { 'g', "stages" }, { 'y', "collector.syscalls" }, { 'D', "control_plane.dir" },
	};

	kl_config_defaults(&cfg);
	/* The file first, so flags override it wherever they appear. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if (!config && access("/etc/kloudlens/config.yaml", R_OK) == 0)
		config = "/etc/kloudlens/config.yaml";
	if (config && kl_config_load(&cfg, config, err, sizeof(err))) {
		fprintf(stderr, "kloudlens: %s\n", err);
		return 2;
	}
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *key = NULL, *val = optarg;
		char kv[512];
		switch (opt) {
		case 'c': continue;
		case 'P': print = true; continue;
		case 'h': usage(stdout); return 0;
		case 'C': key = "collector.containers_only"; val = "true"; break;
		case 's': {
			snprintf(kv, sizeof(kv), "%s", optarg);
			char *eq = strchr(kv, '=');
			if (!eq) {
				fprintf(stderr, "kloudlens: --set %s: expected KEY=VALUE\n", optarg);
				return 2;
			}
			*eq = 0;
			key = kv;
			val = eq + 1;
			break;
		}
		default:
			for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
				if (flag_keys[i].opt == opt)
					key = flag_keys[i].key;
			if (!key) {
				usage(stderr);
				return 2;
			}
		}
		if (kl_config_set(&cfg, key, val, err, sizeof(err))) {
			fprintf(stderr, "kloudlens: %s\n", err);
			return 2;
		}
	}
	/* the file was checked as a whole when loaded; the flags on top of it too */
	if (kl_config_check(&cfg, err, sizeof(err))) {
		fprintf(stderr, "kloudlens: %s\n", err);
		return 2;
	}
	if (print) {
		kl_config_print(&cfg, stdout);
		return 0;
	}

	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	for (int i = 0; i < KL_STAGE__COUNT; i++) {
		if (!cfg.stage_enabled[i])
			continue;
		locate(&stages[i], self);
		if (!stages[i].found) {
			logf_(i == KL_STAGE_COLLECTOR ? "error" : "warn", kl_stage_names[i], "%s not found: stage disabled",
			      stages[i].bin);
			cfg.stage_enabled[i] = false;
		}
		stages[i].backoff_ms = cfg.backoff_initial_ms;
	}
	bool cp_only = true;
	for (int i = 0; i < KL_STAGE__COUNT; i++)
		cp_only &= !cfg.stage_enabled[i];
	if (!cp_only && !cfg.stage_enabled[KL_STAGE_COLLECTOR])
		return 1;
	if (!cp_only && geteuid() != 0)
		logf_("warn", NULL, "not root: the collector will fail to load BPF programs");
	if (cfg.stage_enabled[KL_STAGE_EXPORTER] &&
	    (check_port("exporter.subscribe", cfg.subscribe) | check_port("exporter.admin", cfg.admin) |
	     check_port("exporter.metrics", cfg.metrics)))
		return 1;
	if (cp_only)
		logf_("info", NULL, "stages: none: the control plane only; the stages run elsewhere and read %s",
		      cfg.rings_dir);
	else if (ensure_user() || create_rings())
		return 1;
	/* before the collector starts, so its first filter is the directory's */
	if (cp_setup())
		return 1;
	if (cp)
		write_nodecaps();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	supervisor_pid = getpid();
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		logf_("error", NULL, "signalfd: %s", strerror(errno));
		return 1;
	}

	int running = 0;
	for (int i = 0; i < KL_STAGE__COUNT; i++)
		if (cfg.stage_enabled[i]) {
			start((enum kl_stage)i);
			if (stages[i].pid > 0)
				running++;
		}
	start_viewer();

	bool quit = false;
	while (!quit) {
		uint64_t now = now_ms(), next = now + 1000;
		for (int i = 0; i < KL_STAGE__COUNT; i++)
			if (stages[i].next_start && stages[i].next_start < next)
				next = stages[i].next_start;
		if (cp_due && cp_due < next)
			next = cp_due;
		struct pollfd pfds[2] = { { .fd = sfd, .events = POLLIN }, { .fd = cp_fd, .events = POLLIN } };
		struct pollfd *pfd = &pfds[0];
		int r = poll(pfds, cp_fd >= 0 ? 2 : 1, (int)(next > now ? next - now : 0));
		if (r > 0 && (pfds[1].revents & POLLIN))
			cp_event();
		if (r > 0 && (pfds[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD) {
					reap(&running);
				} else {
					logf_("info", NULL, "signal %u: stopping the pipeline", si.ssi_signo);
					quit = true;
					break;
				}
				pfd->revents = 0;
				if (poll(pfd, 1, 0) <= 0)
					break;
			}
		}
		now = now_ms();
		if (cp_due && cp_due <= now && !quit) {
			cp_due = 0;
			cp_apply(false);
		}
		for (int i = 0; i < KL_STAGE__COUNT && !quit; i++)
			if (stages[i].next_start && stages[i].next_start <= now) {
				start((enum kl_stage)i);
				if (stages[i].pid > 0)
					running++;
			}
	}
	stop_all();
	kl_kw_stop(kube);
	logf_("info", NULL, "stopped");
	close(sfd);
	if (cp_fd >= 0)
		close(cp_fd);
	kl_cp_free(cp);
	free(cp_last);
	return 0;
}
