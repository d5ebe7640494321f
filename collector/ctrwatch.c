/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrwatch.c - container lifecycle from the runtimes' state directories.
 *
 * Model. A *root* is a state directory (/run/runc, a containerd task
 * root, ...). Its *parent dirs* are the directories whose entries are
 * container dirs: the root itself (depth 1) or each namespace dir under
 * it (depth 2). Each container dir is a *source*. One container may be
 * seen through several sources (containerd's task bundle and the runc
 * state containerd's shim keeps for it), so sources are joined into a
 * *container* keyed by (id, bundle path): runc and crun record the
 * bundle, and containerd's bundle is its task dir.
 *
 * Events only say "look here again": every inotify event marks a watch
 * dirty and the dir behind it is re-listed and reconciled with what we
 * hold. That makes an overflowed queue (IN_Q_OVERFLOW) a full rescan and
 * nothing more, and keeps the code free of per-event state machines.
 *
 * START is emitted once the init pid is known (state file or init.pid),
 * or, after pending_timeout_ns, with whatever is known. STOP is emitted
 * when the last source of a started container goes away or its init pid
 * dies (checked on the liveness tick, pid identity = pid + start time).
 */
#include "ctrwatch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <kloudlens/recutil.h>

#define DEFAULT_MAX_RECORD 16384u
#define DEFAULT_LIVENESS_NS 1000000000ull
#define DEFAULT_PENDING_NS 5000000000ull
/* config.json carries seccomp profiles and can be large; a state file
 * larger than this is not something a runtime wrote. */
#define MAX_JSON_FILE (8u << 20)
#define SMALL_FILE 4096

/* Every watch gets the same mask, so re-adding a watch on an inode that
 * another user already watches (same wd) never narrows it. */
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		    IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct watch {
	int wd;
	int refs;
	bool dirty;
	char *path;
};

struct container;

struct source {
	struct source *next;
	struct pdir *pd;
	char *id;               /* the container dir's name */
	char *dir;              /* full path */
	int wd;                 /* while unresolved: waiting for files */
	bool resolved;          /* state read (or given up on) */
	bool seen;              /* rescan mark */
	bool is_crun;           /* OCI root holding crun's status */
	struct container *ctr;
};

struct pdir {
	struct pdir *next;
	struct root *root;
	char *ns;               /* namespace (depth 2), else NULL */
	char *path;
	int wd;
	bool seen;
	struct source *srcs;
};

struct root {
	struct kl_ctrwatch_root cfg;
	char *path;
	int wd;                 /* watch on the root itself, or -1 */
	int anc_wd;             /* watch on the nearest existing ancestor, or -1 */
	bool warned;            /* a watch failure was logged: retries stay quiet */
	struct pdir *pdirs;
};

enum ctr_state { CTR_PENDING, CTR_RUNNING, CTR_STOPPED };

struct container {
	struct container *next;
	char *id;
	char *bundle;           /* "" when unknown */
	int nsrc;
	enum ctr_state state;
	uint64_t first_seen_ns;
	uint32_t pid;
	uint64_t pid_start;     /* clock ticks since boot, from the state file or /proc */
	bool has_oci_state;     /* a runc/crun state file was read */
	bool crun;
	char *state_cgroup;     /* cgroup path the state file recorded */
	json_t *runc_labels;    /* runc state config.labels: annotations + bundle= */
	bool snap_done;         /* reported by the current snapshot */
	uint64_t hint_until;    /* init gone, no exec hint yet: START waits until then */
	void *rec;              /* the START record, replayed as STOP */
	size_t rec_len;
};

struct kl_ctrwatch {
	int fd;
	struct root *roots;
	size_t nroots;
	struct watch *watches;
	size_t nwatches, capwatches;
	struct container *ctrs;
	char *cg2;              /* cgroup2 mount, "" if none */
	uint32_t self_mnt_ns;   /* the agent's own (host) namespaces */
	uint32_t self_pid_ns;
	char *docker_root;      /* "" disables */
	uint32_t max_record;
	uint64_t liveness_ns, pending_ns, hint_wait_ns;
	bool awaiting;          /* some container's START waits for an exec hint */
	uint64_t next_live_ns;
	long hz;
	kl_ctrwatch_log_fn log;
	void *log_ctx;
	bool snapshotted;
	bool in_snapshot;       /* discoveries now are SNAPSHOT, not START */
	bool rescan_all;
	kl_ctrwatch_emit_fn emit;
	void *emit_ctx;
	uint8_t *buf;
	struct kl_ctrwatch_stats st;
	/* the kernel's view of recent execs in other pid namespaces: the ids
	 * of an init that exited before its state was read (see build_record) */
	struct kl_proc hints[KL_CTRW_HINTS];
	unsigned hint_next;
};

static const struct kl_ctrwatch_root default_roots[] = {
	{ "/run/containerd/io.containerd.runtime.v2.task", KL_CTRW_TASK, 2, KL_RT_CONTAINERD },
	{ "/run/k3s/containerd/io.containerd.runtime.v2.task", KL_CTRW_TASK, 2, KL_RT_CONTAINERD },
	/* containerd's runc shim: --root /run/containerd/runc/<ns> (runc or crun) */
	{ "/run/containerd/runc", KL_CTRW_OCI_STATE, 2, KL_RT_CONTAINERD },
	{ "/run/docker/runtime-runc", KL_CTRW_OCI_STATE, 2, KL_RT_DOCKER },
	/* standalone runc/crun, and CRI-O, which runs them with these roots */
	{ "/run/runc", KL_CTRW_OCI_STATE, 1, KL_RT_RUNC },
	{ "/run/crun", KL_CTRW_OCI_STATE, 1, KL_RT_CRUN },
};

const struct kl_ctrwatch_root *kl_ctrwatch_default_roots(size_t *n)
{
	if (n)
		*n = sizeof(default_roots) / sizeof(default_roots[0]);
	return default_roots;
}

/* ---- logging ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static void wlog(struct kl_ctrwatch *w, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level <= KL_CTRW_WARN)
		w->st.errors++;
	if (!w->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->log(level, msg, w->log_ctx);
}

/* ---- small helpers ------------------------------------------------------ */

static char *path_join(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

/*
 * Read a whole regular file. O_NONBLOCK and the S_ISREG check are why a
 * FIFO or device planted where a state file should be cannot block us.
 * Return: bytes read (buffer NUL-terminated, caller frees) or -errno.
 */
static ssize_t read_file(const char *path, size_t max, char **out)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	ssize_t n, ret;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	if (cap < 64)
		cap = 64;
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (len + 1 >= cap) {
			char *nb;

			/* the file grew after fstat: read on, within max */
			if (cap > max) {
				ret = -EFBIG;
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*out = buf;
	buf = NULL;
	ret = (ssize_t)len;
out:
	free(buf);
	close(fd);
	return ret;
}

static const char *errstr(int neg)
{
	switch (neg) {
	case -EINVAL: return "not a regular file";
	case -EFBIG: return "file too large";
	default: return strerror(-neg);
	}
}

/*
 * Parse a JSON object from @path. Every failure is logged with the file
 * and the reason, at @enoent_level when the file is simply absent.
 */
static json_t *load_json(struct kl_ctrwatch *w, const char *path, const char *what,
			 int enoent_level, int bad_level, int *err)
{
	json_error_t je;
	json_t *j = NULL;
	char *text = NULL;
	ssize_t n;

	n = read_file(path, MAX_JSON_FILE, &text);
	if (n < 0) {
		*err = (int)n;
		wlog(w, n == -ENOENT ? enoent_level : bad_level, "ctrwatch: %s %s: %s",
		     what, path, errstr((int)n));
		return NULL;
	}
	j = json_loadb(text, (size_t)n, 0, &je);
	free(text);
	if (!j) {
		*err = -EBADMSG;
		wlog(w, bad_level, "ctrwatch: %s %s: malformed JSON at line %d column %d: %s",
		     what, path, je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		*err = -EBADMSG;
		wlog(w, bad_level, "ctrwatch: %s %s: top level is not a JSON object", what, path);
		json_decref(j);
		return NULL;
	}
	*err = 0;
	return j;
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A positive integer field that fits in 32 bits (a pid), else 0. */
static uint32_t jpid(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	json_int_t i;

	if (!json_is_integer(v))
		return 0;
	i = json_integer_value(v);
	return i > 0 && i <= INT32_MAX ? (uint32_t)i : 0;
}

/* ---- /proc ---------------------------------------------------------------- */

struct procinfo {
	bool alive;
	char state;
	uint32_t ppid;
	uint64_t start;         /* ticks */
	char comm[KL_COMM_LEN];
	uint32_t uid, gid, ns_pid;
};

static int read_proc_stat(uint32_t pid, struct procinfo *pi)
{
	char path[64], *text = NULL, *s;
	unsigned long long start;
	int ppid, ret = 0;
	char st;
	ssize_t n;

	memset(pi, 0, sizeof(*pi));
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	n = read_file(path, 1 << 16, &text);
	/* /proc files report size 0; read_file still reads them to EOF */
	if (n < 0)
		return (int)n;
	/* comm may hold spaces and ')': the fields resume after the last ')' */
	s = strrchr(text, ')');
	if (!s || sscanf(s + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &st, &ppid, &start) != 3) {
		ret = -EBADMSG;
		goto out;
	}
	pi->alive = st != 'Z' && st != 'X' && st != 'x';
	pi->state = st;
	pi->ppid = ppid > 0 ? (uint32_t)ppid : 0;
	pi->start = start;
out:
	free(text);
	return ret;
}

static void read_proc_status(uint32_t pid, struct procinfo *pi)
{
	char path[64], *text = NULL, *line, *save = NULL;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	if (read_file(path, 1 << 16, &text) < 0)
		return;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned a;

		if (!strncmp(line, "Name:\t", 6))
			snprintf(pi->comm, sizeof(pi->comm), "%s", line + 6);
		else if (sscanf(line, "Uid:\t%u", &a) == 1)
			pi->uid = a;
		else if (sscanf(line, "Gid:\t%u", &a) == 1)
			pi->gid = a;
		else if (!strncmp(line, "NSpid:", 6)) {
			/* the last entry is the pid in the innermost namespace */
			char *last = strrchr(line, '\t');

			if (last)
				pi->ns_pid = (uint32_t)strtoul(last + 1, NULL, 10);
		}
	}
	free(text);
}

static uint32_t ns_inum(uint32_t pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%u/ns/%s", pid, ns);
	if (stat(path, &st) < 0)
		return 0;
	return (uint32_t)st.st_ino;
}

/* The cgroup v2 path ("0::" line) of @pid; NULL if none or gone. */
static char *proc_cgroup2(uint32_t pid)
{
	char path[64], *text = NULL, *line, *save = NULL, *r = NULL;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	if (read_file(path, 1 << 16, &text) < 0)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "0::", 3)) {
			size_t n = strlen(line + 3), d = strlen(" (deleted)");

			/* a removed cgroup is still named: by its path, not the marker */
			if (n > d && !strcmp(line + 3 + n - d, " (deleted)"))
				line[3 + n - d] = 0;
			r = strdup(line + 3);
			break;
		}
	free(text);
	return r;
}

/* Unescape mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

/* Where cgroup2 is mounted (hybrid hosts: /sys/fs/cgroup/unified). */
static char *find_cgroup2(void)
{
	char *text = NULL, *line, *save = NULL, *r = NULL;

	if (read_file("/proc/self/mountinfo", 1 << 22, &text) < 0)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype src superopts */
		char *sep = strstr(line, " - "), *f[5], *sp = NULL;
		int i;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		*sep = 0;
		for (i = 0; i < 5; i++) {
			f[i] = strtok_r(i ? NULL : line, " ", &sp);
			if (!f[i])
				break;
		}
		if (i == 5) {
			unescape_octal(f[4]);
			r = strdup(f[4]);
		}
	}
	free(text);
	return r;
}

/* ---- watches -------------------------------------------------------------- */

static struct watch *watch_find(struct kl_ctrwatch *w, int wd)
{
	for (size_t i = 0; i < w->nwatches; i++)
		if (w->watches[i].wd == wd)
			return &w->watches[i];
	return NULL;
}

/* Watch @path (shared and ref-counted per wd). Return: wd or -errno. */
static int watch_get(struct kl_ctrwatch *w, const char *path)
{
	struct watch *x;
	int wd;

	wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	if (wd < 0)
		return -errno;
	x = watch_find(w, wd);
	if (x) {
		x->refs++;
		return wd;
	}
	if (w->nwatches == w->capwatches) {
		size_t nc = w->capwatches ? w->capwatches * 2 : 16;
		struct watch *nw = realloc(w->watches, nc * sizeof(*nw));

		if (!nw)
			goto nomem;
		w->watches = nw;
		w->capwatches = nc;
	}
	x = &w->watches[w->nwatches];
	x->path = strdup(path);
	if (!x->path)
		goto nomem;
	x->wd = wd;
	x->refs = 1;
	x->dirty = false;
	w->nwatches++;
	return wd;
nomem:
	inotify_rm_watch(w->fd, wd);
	return -ENOMEM;
}

static void watch_put(struct kl_ctrwatch *w, int wd)
{
	struct watch *x;

	if (wd < 0)
		return;
	x = watch_find(w, wd);
	if (!x || --x->refs > 0)
		return;
	inotify_rm_watch(w->fd, wd);
	free(x->path);
	*x = w->watches[--w->nwatches];
}

/* The kernel dropped @wd (IN_IGNORED: the inode is gone): forget it. */
static void watch_gone(struct kl_ctrwatch *w, int wd)
{
	struct watch *x = watch_find(w, wd);

	if (!x)
		return;
	free(x->path);
	*x = w->watches[--w->nwatches];
}

static bool watch_alive(struct kl_ctrwatch *w, int wd)
{
	return wd >= 0 && watch_find(w, wd);
}

/* ---- containers ------------------------------------------------------------ */

static void emit_rec(struct kl_ctrwatch *w, const void *rec, size_t len)
{
	if (w->emit)
		w->emit(rec, len, w->emit_ctx);
}

static struct container *ctr_get_exact(struct kl_ctrwatch *w, const char *id, const char *bundle)
{
	struct container *c;

	for (c = w->ctrs; c; c = c->next)
		if (!strcmp(c->id, id) && !strcmp(c->bundle, bundle))
			return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = strdup(id);
	c->bundle = strdup(bundle);
	if (!c->id || !c->bundle) {
		free(c->id);
		free(c->bundle);
		free(c);
		return NULL;
	}
	c->first_seen_ns = kl_now_mono_ns();
	c->next = w->ctrs;
	w->ctrs = c;
	return c;
}

/*
 * The container (id, bundle), created if new. The bundle is compared in
 * canonical form: the runtime may have been given /var/run/... for what
 * we watch as /run/...; one that no longer exists is taken as written.
 */
static struct container *ctr_get(struct kl_ctrwatch *w, const char *id, const char *bundle_in)
{
	char *canon = *bundle_in ? realpath(bundle_in, NULL) : NULL;
	const char *bundle = canon ? canon : bundle_in;
	struct container *c;

	c = ctr_get_exact(w, id, bundle);
	free(canon);
	return c;
}

static void ctr_free(struct container *c)
{
	free(c->id);
	free(c->bundle);
	free(c->state_cgroup);
	json_decref(c->runc_labels);
	free(c->rec);
	free(c);
}

/* --- building the record --- */

/* Annotations, labels and sources of metadata for one container. */
struct meta {
	json_t *config;         /* OCI config.json */
	json_t *docker;         /* Docker's config.v2.json */
	json_t *crio_labels;    /* CRI-O's io.kubernetes.cri-o.Labels, parsed */
	json_t *runc_labels;    /* borrowed: runc state labels (k=v strings) */
};

static const char *ann(const struct meta *m, const char *key)
{
	const json_t *a = m->config ? json_object_get(m->config, "annotations") : NULL;
	const char *v = jstr(a, key);
	size_t kl = strlen(key), i;
	json_t *e;

	if (v || m->config || !json_is_array(m->runc_labels))
		return v;
	/* no config.json: runc copied the annotations into its state labels */
	json_array_foreach(m->runc_labels, i, e) {
		const char *s = json_string_value(e);

		if (s && !strncmp(s, key, kl) && s[kl] == '=')
			return s + kl + 1;
	}
	return NULL;
}

static const char *label(const struct meta *m, const char *key)
{
	const char *v = NULL;
	const json_t *cfg;

	if (m->docker && (cfg = json_object_get(m->docker, "Config")))
		v = jstr(json_object_get(cfg, "Labels"), key);
	if (!v)
		v = jstr(m->crio_labels, key);
	return v;
}

/* First non-empty of the annotation or label keys, in order. */
static const char *pick(const struct meta *m, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = ann(m, *keys);

		if (!v || !*v)
			v = label(m, *keys);
		if (v && *v)
			return v;
	}
	return NULL;
}

static void kv_put(struct kl_buf *b, const char *k, const char *v)
{
	kl_buf_puts(b, k);
	kl_buf_putc(b, '=');
	kl_buf_puts(b, v);
	kl_buf_putc(b, 0);
}

static void kv_obj(struct kl_buf *b, const json_t *o, const char *prefix)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return;
	json_object_foreach((json_t *)o, k, v)
		if (json_is_string(v) && (!prefix || !strncmp(k, prefix, strlen(prefix))))
			kv_put(b, k, json_string_value(v));
}

static const char *const K_NAME[] = {
	"io.kubernetes.cri.container-name", "io.kubernetes.container.name", "nerdctl/name", NULL };
static const char *const K_POD[] = {
	"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name", "io.kubernetes.cri-o.KubeName", NULL };
static const char *const K_PODNS[] = {
	"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace",
	"io.kubernetes.cri-o.Namespace", NULL };
static const char *const K_PODUID[] = {
	"io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid", NULL };
static const char *const K_SANDBOX[] = {
	"io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID", NULL };
static const char *const K_IMAGE[] = {
	"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName", NULL };

/* The sources currently joined to @c (at most @max). */
static int ctr_sources(struct kl_ctrwatch *w, const struct container *c, struct source **out, int max)
{
	int n = 0;

	for (size_t i = 0; i < w->nroots; i++)
		for (struct pdir *pd = w->roots[i].pdirs; pd; pd = pd->next)
			for (struct source *s = pd->srcs; s; s = s->next)
				if (s->ctr == c && n < max)
					out[n++] = s;
	return n;
}

#define MAX_SRC 8

/* Load config.json from the best place: containerd's task dir, crun's own
 * copy in its state dir, then the bundle runc/crun recorded. */
static void load_config(struct kl_ctrwatch *w, struct container *c, struct meta *m)
{
	struct source *src[MAX_SRC], *task = NULL, *crun = NULL;
	char *cand[3] = { NULL, NULL, NULL };
	int nsrc = ctr_sources(w, c, src, MAX_SRC), n = 0, err;

	for (int i = 0; i < nsrc; i++) {
		if (src[i]->pd->root->cfg.layout == KL_CTRW_TASK)
			task = src[i];
		else if (src[i]->is_crun)
			crun = src[i];
	}
	if (task)
		cand[n++] = path_join(task->dir, "config.json");
	if (crun)
		cand[n++] = path_join(crun->dir, "config.json");
	if (*c->bundle && (!task || strcmp(c->bundle, task->dir)))
		cand[n++] = path_join(c->bundle, "config.json");
	for (int i = 0; i < n && !m->config; i++) {
		if (!cand[i])
			continue;
		/* a later candidate may still have it: only the last absence is an error */
		m->config = load_json(w, cand[i], "OCI config", i == n - 1 ? KL_CTRW_ERR : KL_CTRW_DEBUG,
				      KL_CTRW_ERR, &err);
	}
	for (int i = 0; i < n; i++)
		free(cand[i]);
	if (!n)
		wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: no bundle known, no config.json to read", c->id);
	else if (!m->config && c->runc_labels)
		wlog(w, KL_CTRW_INFO, "ctrwatch: container %s: annotations taken from runc's state labels",
		     c->id);
}

static uint32_t ctr_runtime(struct kl_ctrwatch *w, const struct container *c, const struct meta *m)
{
	const json_t *a = m->config ? json_object_get(m->config, "annotations") : NULL;
	struct source *src[MAX_SRC];
	int nsrc = ctr_sources(w, c, src, MAX_SRC);
	bool docker = false, containerd = false;
	uint32_t rt = KL_RT_UNKNOWN;
	const char *k;
	json_t *v;

	if (json_is_object(a))
		json_object_foreach((json_t *)a, k, v)
			if (!strncmp(k, "io.kubernetes.cri-o.", 20))
				return KL_RT_CRIO;
	for (int i = 0; i < nsrc; i++) {
		uint32_t r = src[i]->pd->root->cfg.runtime;

		/* Docker runs its containers in containerd namespace "moby" */
		if (r == KL_RT_DOCKER || (src[i]->pd->ns && !strcmp(src[i]->pd->ns, "moby")))
			docker = true;
		else if (r == KL_RT_CONTAINERD)
			containerd = true;
		else
			rt = r;
	}
	/* the manager wins over the low-level runtime it drives */
	if (docker)
		return KL_RT_DOCKER;
	if (containerd)
		return KL_RT_CONTAINERD;
	/* what the state file says beats where it was found */
	if (c->has_oci_state)
		return c->crun ? KL_RT_CRUN : KL_RT_RUNC;
	return rt;
}

static const char *rt_name(uint32_t rt)
{
	static const char *const n[] = { "unknown", "containerd", "runc", "crun", "cri-o", "docker" };

	return rt < sizeof(n) / sizeof(n[0]) ? n[rt] : "unknown";
}

static const char *ctr_ns(struct kl_ctrwatch *w, const struct container *c)
{
	for (size_t i = 0; i < w->nroots; i++)
		for (struct pdir *pd = w->roots[i].pdirs; pd; pd = pd->next)
			for (struct source *s = pd->srcs; s; s = s->next)
				if (s->ctr == c && pd->ns)
					return pd->ns;
	return NULL;
}

static void load_docker(struct kl_ctrwatch *w, const struct container *c, struct meta *m, uint32_t rt)
{
	char *p = NULL;
	int err;

	if (rt != KL_RT_DOCKER || !*w->docker_root)
		return;
	if (asprintf(&p, "%s/containers/%s/config.v2.json", w->docker_root, c->id) < 0)
		return;
	/* absent when Docker's data root is elsewhere: not an error */
	m->docker = load_json(w, p, "Docker container config", KL_CTRW_DEBUG, KL_CTRW_WARN, &err);
	free(p);
}

static void load_crio_labels(struct kl_ctrwatch *w, struct meta *m)
{
	const char *s = ann(m, "io.kubernetes.cri-o.Labels");
	json_error_t je;

	if (!s)
		return;
	m->crio_labels = json_loads(s, 0, &je);
	if (!json_is_object(m->crio_labels)) {
		wlog(w, KL_CTRW_WARN, "ctrwatch: annotation io.kubernetes.cri-o.Labels is not a JSON object");
		json_decref(m->crio_labels);
		m->crio_labels = NULL;
	}
}

/* The latest exec hint for @c's init: same pid and, when the state gave
 * one, the same start (to the tick: /proc's resolution). */
static const struct kl_proc *find_hint(const struct kl_ctrwatch *w, const struct container *c)
{
	uint64_t tick = 1000000000ull / (unsigned long long)w->hz;

	for (unsigned i = 0; i < KL_CTRW_HINTS; i++) {
		const struct kl_proc *h = &w->hints[(w->hint_next - 1 - i) % KL_CTRW_HINTS];
		uint64_t ticks = h->ev.start_ns / tick;

		if (!h->ev.pid || h->ev.pid != c->pid)
			continue;
		if (c->pid_start && ticks + 1 < c->pid_start)
			continue;
		if (c->pid_start && ticks > c->pid_start + 1)
			continue;
		return h;
	}
	return NULL;
}

/* Absolute, with no ".." component: joined to the cgroup2 mount it stays inside. */
static bool cg_path_ok(const char *p)
{
	size_t n = strlen(p);

	return p[0] == '/' && !strstr(p, "/../") && !(n >= 3 && !strcmp(p + n - 3, "/.."));
}

/*
 * Gather everything about @c and build its record in w->buf. Every
 * source of information is optional: what cannot be read is logged and
 * left out. Return: record length.
 */
static size_t build_record(struct kl_ctrwatch *w, struct container *c, uint32_t kind)
{
	struct kl_container *r = (struct kl_container *)w->buf;
	struct kl_tail_builder tb;
	struct meta m = { 0 };
	struct kl_buf labels = { 0 }, anns = { 0 };
	struct procinfo pi = { 0 };
	const struct kl_proc *h;
	char *cg = NULL, *ver = NULL;
	const char *v, *ns;
	bool st_cg_known = false, alive;
	uint32_t rt;
	size_t len;

	memset(r, 0, sizeof(*r));
	load_config(w, c, &m);
	m.runc_labels = c->runc_labels;
	rt = ctr_runtime(w, c, &m);
	load_docker(w, c, &m, rt);
	load_crio_labels(w, &m);

	r->kind = kind;
	r->runtime = rt;
	r->init_pid = c->pid;
	r->exit_code = -1;      /* not observable from state dirs */
	r->ev.ts_ns = kl_now_mono_ns();
	r->ev.flags = kind == KL_CTR_SNAPSHOT ? KL_EV_BOOTSTRAP : 0;
	alive = c->pid && read_proc_stat(c->pid, &pi) == 0 && (!c->pid_start || pi.start == c->pid_start);
	if (alive) {
		read_proc_status(c->pid, &pi);
		r->ev.pid = r->ev.tid = c->pid;
		r->ev.ppid = pi.ppid;
		r->ev.ns_pid = pi.ns_pid;
		r->ev.uid = pi.uid;
		r->ev.gid = pi.gid;
		r->ev.start_ns = pi.start * (1000000000ull / (unsigned long long)w->hz);
		memcpy(r->ev.comm, pi.comm, sizeof(r->ev.comm));
		r->mnt_ns = ns_inum(c->pid, "mnt");
		r->pid_ns = ns_inum(c->pid, "pid");
		r->net_ns = ns_inum(c->pid, "net");
		r->ipc_ns = ns_inum(c->pid, "ipc");
		r->uts_ns = ns_inum(c->pid, "uts");
		cg = proc_cgroup2(c->pid);
		if (!c->pid_start)
			c->pid_start = pi.start;
	}
	/* A zombie keeps its pid namespace but has released its mount ns, and
	 * its cgroup may be removed already: as good as gone. */
	if (c->pid && (!alive || pi.state == 'Z' || !r->mnt_ns) && (h = find_hint(w, c))) {
		/* Gone before we read it: a short-lived container, or a collector
		 * that fell behind. The kernel saw its exec, and that is the ground
		 * truth for the ids events are matched by. */
		wlog(w, KL_CTRW_INFO, "ctrwatch: container %s: init pid %u already gone; ids from its exec",
		     c->id, c->pid);
		r->ev.pid = r->ev.tid = c->pid;
		r->ev.ppid = h->ev.ppid;
		r->ev.ns_pid = h->ev.ns_pid;
		r->ev.uid = h->ev.uid;
		r->ev.gid = h->ev.gid;
		r->ev.start_ns = h->ev.start_ns;
		memcpy(r->ev.comm, h->ev.comm, sizeof(r->ev.comm));
		r->mnt_ns = h->ev.mnt_ns;
		r->pid_ns = h->ev.pid_ns;
		r->net_ns = h->net_ns;
		r->ipc_ns = h->ipc_ns;
		r->uts_ns = h->uts_ns;
		r->ev.cgroup_id = h->ev.cgroup_id;
		st_cg_known = h->ev.cgroup_id != 0;
	} else if (c->pid && !alive) {
		wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: init pid %u already gone; "
		     "no namespaces, cgroup from the runtime's state", c->id, c->pid);
		r->ev.pid = r->ev.tid = c->pid;
	}
	/* An init still in our own namespaces (runc writes its state before the
	 * init has unshared, or a container made without them) shares them with
	 * every host process: matched by them, the host would join the container. */
	if (r->mnt_ns && r->mnt_ns == w->self_mnt_ns)
		r->mnt_ns = 0;
	if (r->pid_ns && r->pid_ns == w->self_pid_ns)
		r->pid_ns = 0;
	r->ev.mnt_ns = r->mnt_ns;
	r->ev.pid_ns = r->pid_ns;
	if (!cg && c->state_cgroup)
		cg = strdup(c->state_cgroup);
	if (!cg && m.config) {
		const char *p = jstr(json_object_get(m.config, "linux"), "cgroupsPath");

		/* "slice:prefix:name" (systemd driver) is not a path: skip it */
		if (p && p[0] == '/')
			cg = strdup(p);
	}
	/* a path from a state file must not climb out of the cgroup2 mount */
	if (cg && !cg_path_ok(cg)) {
		wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: cgroup path \"%s\" is not absolute and "
		     "normalised; ignored", c->id, cg);
		free(cg);
		cg = NULL;
	}
	if (cg && *w->cg2 && strcmp(cg, "/") && !st_cg_known) {
		char *full = path_join(w->cg2, cg);
		struct stat st;

		/* The cgroup id is the v2 dir's inode. A container left at the
		 * cgroup2 root shares it with the host, so it gets no id and is
		 * matched by namespaces instead (cgroup_id 0). */
		if (full && stat(full, &st) == 0)
			r->ev.cgroup_id = st.st_ino;
		else if (full)
			wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: cgroup %s: %s", c->id, full,
			     strerror(errno));
		free(full);
	}

	kl_tail_init(&tb, r, sizeof(*r), w->max_record);
	/* most useful first: a cut tail loses annotations, not the id */
	kl_tail_add_str(&tb, KL_F_CONTAINER_ID, c->id);
	if ((v = pick(&m, K_NAME)))
		kl_tail_add_str(&tb, KL_F_CONTAINER_NAME, v);
	else if (m.docker && (v = jstr(m.docker, "Name")))
		kl_tail_add_str(&tb, KL_F_CONTAINER_NAME, v[0] == '/' ? v + 1 : v);
	if ((v = pick(&m, K_POD)))
		kl_tail_add_str(&tb, KL_F_POD_NAME, v);
	if ((v = pick(&m, K_PODNS)))
		kl_tail_add_str(&tb, KL_F_POD_NAMESPACE, v);
	if ((v = pick(&m, K_PODUID)))
		kl_tail_add_str(&tb, KL_F_POD_UID, v);
	if ((v = pick(&m, K_SANDBOX)))
		kl_tail_add_str(&tb, KL_F_SANDBOX_ID, v);
	v = pick(&m, K_IMAGE);
	if (!v && m.docker)
		v = jstr(json_object_get(m.docker, "Config"), "Image");
	if (v)
		kl_tail_add_str(&tb, KL_F_IMAGE, v);
	if (cg)
		kl_tail_add_str(&tb, KL_F_CGROUP_PATH, cg);
	ns = ctr_ns(w, c);
	/* "containerd/runc": the manager and, when its state was read, the
	 * OCI runtime under it */
	if (c->has_oci_state && rt != KL_RT_RUNC && rt != KL_RT_CRUN &&
	    asprintf(&ver, "%s/%s", rt_name(rt), c->crun ? "crun" : "runc") < 0)
		ver = NULL;
	kl_tail_add_str(&tb, KL_F_RUNTIME, ver ? ver : rt_name(rt));
	if (*c->bundle)
		kl_tail_add_str(&tb, KL_F_BUNDLE, c->bundle);
	if (m.config && (v = jstr(m.config, "hostname")))
		kl_tail_add_str(&tb, KL_F_NAME, v);

	/* labels: Docker's (compose ones included), CRI-O's CRI labels, compose
	 * labels some tools put in annotations, and the containerd namespace */
	if (m.docker)
		kv_obj(&labels, json_object_get(json_object_get(m.docker, "Config"), "Labels"), NULL);
	kv_obj(&labels, m.crio_labels, NULL);
	if (!m.docker)
		kv_obj(&labels, m.config ? json_object_get(m.config, "annotations") : NULL,
		       "com.docker.compose.");
	if (ns && rt != KL_RT_CRIO)
		kv_put(&labels, "kloudlens.io/containerd-namespace", ns);
	if (labels.len && !labels.oom)
		kl_tail_add(&tb, KL_F_LABELS, labels.p, labels.len);
	if (m.config) {
		kv_obj(&anns, json_object_get(m.config, "annotations"), NULL);
	} else if (json_is_array(c->runc_labels)) {
		size_t i;
		json_t *e;

		json_array_foreach(c->runc_labels, i, e) {
			const char *s = json_string_value(e);

			if (s && strncmp(s, "bundle=", 7) && strchr(s, '=')) {
				kl_buf_puts(&anns, s);
				kl_buf_putc(&anns, 0);
			}
		}
	}
	if (anns.len && !anns.oom)
		kl_tail_add(&tb, KL_F_ANNOTATIONS, anns.p, anns.len);
	len = kl_tail_finish(&tb);

	free(ver);
	free(cg);
	kl_buf_free(&labels);
	kl_buf_free(&anns);
	json_decref(m.config);
	json_decref(m.docker);
	json_decref(m.crio_labels);
	return len;
}

static bool pid_alive(struct kl_ctrwatch *w, struct container *c)
{
	struct procinfo pi;

	if (!c->pid)
		return true;    /* nothing to check: the state dir decides */
	if (read_proc_stat(c->pid, &pi) < 0 || !pi.alive)
		return false;
	/* a reused pid is a different process */
	return !c->pid_start || pi.start == c->pid_start;
}

static void ctr_stop(struct kl_ctrwatch *w, struct container *c, const char *why)
{
	struct kl_container r;

	if (c->state != CTR_RUNNING)
		return;
	c->state = CTR_STOPPED;
	w->st.running--;
	if (!c->rec)
		return;
	memcpy(&r, c->rec, sizeof(r));
	r.kind = KL_CTR_STOP;
	r.ev.ts_ns = kl_now_mono_ns();
	r.ev.flags &= ~(uint32_t)KL_EV_BOOTSTRAP;
	memcpy(c->rec, &r, sizeof(r));
	emit_rec(w, c->rec, c->rec_len);
	w->st.stopped++;
	wlog(w, KL_CTRW_DEBUG, "ctrwatch: container %s stopped (%s)", c->id, why);
}

static void ctr_start(struct kl_ctrwatch *w, struct container *c, bool timed_out)
{
	uint32_t kind = w->in_snapshot ? KL_CTR_SNAPSHOT : KL_CTR_START;
	size_t len;

	if (c->state != CTR_PENDING)
		return;
	/* Already dead at snapshot time: it is not running, report nothing. */
	if (w->in_snapshot && !pid_alive(w, c)) {
		c->state = CTR_STOPPED;
		return;
	}
	/* Its init is gone and no exec of it was hinted yet: the caller may
	 * still hold the exec, committed before the init died, unread. */
	if (!w->in_snapshot && !timed_out && w->hint_wait_ns && c->pid && !pid_alive(w, c) &&
	    !find_hint(w, c)) {
		uint64_t now = kl_now_mono_ns();

		if (!c->hint_until)
			c->hint_until = now + w->hint_wait_ns;
		if (now < c->hint_until) {
			w->awaiting = true;
			return;
		}
	}
	c->hint_until = 0;
	if (timed_out)
		wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: init pid unknown after %llu ms; "
		     "reporting without it", c->id, (unsigned long long)(w->pending_ns / 1000000));
	len = build_record(w, c, kind);
	c->rec = malloc(len);
	if (c->rec) {
		memcpy(c->rec, w->buf, len);
		c->rec_len = len;
	}
	c->state = CTR_RUNNING;
	c->snap_done = w->in_snapshot;
	w->st.running++;
	w->st.started++;
	emit_rec(w, w->buf, len);
	/* short-lived: started and died before we looked */
	if (!w->in_snapshot && !pid_alive(w, c))
		ctr_stop(w, c, "init pid already exited");
}

/* ---- sources ---------------------------------------------------------------- */

static void src_detach(struct kl_ctrwatch *w, struct source *s, const char *why)
{
	struct container *c = s->ctr, **pp;

	s->ctr = NULL;
	if (!c || --c->nsrc > 0)
		return;
	if (c->state == CTR_PENDING && c->hint_until) {
		c->hint_until = 1;      /* waited long enough: it is gone */
		ctr_start(w, c, false);
	} else if (c->state == CTR_PENDING) {
		wlog(w, KL_CTRW_WARN, "ctrwatch: container %s: state dir %s vanished before its "
		     "state could be read", c->id, s->dir);
	}
	ctr_stop(w, c, why);
	for (pp = &w->ctrs; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ctr_free(c);
}

static void src_free(struct kl_ctrwatch *w, struct source *s)
{
	src_detach(w, s, "state dir removed");
	watch_put(w, s->wd);
	free(s->id);
	free(s->dir);
	free(s);
}

/*
 * Read the runc state.json / crun status of an OCI state dir. A file
 * that does not parse may be one being written in place: until @final
 * (the pending timeout) that is "not yet", logged at debug level only.
 * Return: 1 resolved, 0 not yet, <0 gone.
 */
static int read_oci_state(struct kl_ctrwatch *w, struct source *s, bool final, char **bundle,
			  uint32_t *pid, uint64_t *start, char **cgpath, json_t **labels)
{
	char *p = path_join(s->dir, "state.json");
	json_t *j = NULL, *cfg;
	const char *b, *cgp;
	struct stat st;
	int err, ret = 1;
	size_t i;
	json_t *e;

	if (!p)
		return -ENOMEM;
	s->is_crun = false;
	if (access(p, F_OK) < 0) {
		free(p);
		p = path_join(s->dir, "status");
		if (!p)
			return -ENOMEM;
		if (access(p, F_OK) < 0) {
			free(p);
			/* neither file yet: runc/crun is still creating it */
			return stat(s->dir, &st) < 0 ? -ENOENT : 0;
		}
		s->is_crun = true;
	}
	j = load_json(w, p, s->is_crun ? "crun status" : "runc state", final ? KL_CTRW_ERR : KL_CTRW_DEBUG,
		      final ? KL_CTRW_ERR : KL_CTRW_DEBUG, &err);
	if (!j) {
		/* vanished between access() and open(): the dir is going away */
		if (err == -ENOENT && stat(s->dir, &st) < 0)
			ret = -ENOENT;
		else
			ret = final ? 1 : 0;
		goto out;
	}
	if (s->is_crun) {
		*pid = jpid(j, "pid");
		if (!*pid)
			wlog(w, KL_CTRW_ERR, "ctrwatch: crun status %s: missing or invalid \"pid\"", p);
		if (json_is_integer(json_object_get(j, "process-start-time")))
			*start = (uint64_t)json_integer_value(json_object_get(j, "process-start-time"));
		b = jstr(j, "bundle");
		cgp = jstr(j, "cgroup-path");
		if (cgp && cgp[0] == '/')
			*cgpath = strdup(cgp);
	} else {
		*pid = jpid(j, "init_process_pid");
		if (!*pid)
			wlog(w, KL_CTRW_ERR, "ctrwatch: runc state %s: missing or invalid \"init_process_pid\"", p);
		if (json_is_integer(json_object_get(j, "init_process_start")))
			*start = (uint64_t)json_integer_value(json_object_get(j, "init_process_start"));
		b = NULL;
		cfg = json_object_get(j, "config");
		/* runc records the bundle as a "bundle=<dir>" label, next to the
		 * annotations it also turns into labels */
		json_array_foreach(json_object_get(cfg, "labels"), i, e) {
			const char *l = json_string_value(e);

			if (l && !strncmp(l, "bundle=", 7))
				b = l + 7;
		}
		if (json_is_array(json_object_get(cfg, "labels")))
			*labels = json_incref(json_object_get(cfg, "labels"));
		cgp = jstr(json_object_get(j, "cgroup_paths"), "");
		if (cgp && *w->cg2 && !strncmp(cgp, w->cg2, strlen(w->cg2)) &&
		    cgp[strlen(w->cg2)] == '/')
			*cgpath = strdup(cgp + strlen(w->cg2));
	}
	if (b && *b)
		*bundle = strdup(b);
	else
		wlog(w, KL_CTRW_ERR, "ctrwatch: %s: no bundle recorded; config.json cannot be read", p);
out:
	json_decref(j);
	free(p);
	return ret;
}

/* containerd's init.pid: written by the shim once the task is created. */
static int read_init_pid(struct kl_ctrwatch *w, struct source *s, uint32_t *pid)
{
	char *p = path_join(s->dir, "init.pid"), *text = NULL, *end;
	unsigned long v;
	ssize_t n;

	if (!p)
		return -ENOMEM;
	n = read_file(p, SMALL_FILE, &text);
	if (n == -ENOENT) {
		free(p);
		return 0;
	}
	if (n < 0) {
		wlog(w, KL_CTRW_ERR, "ctrwatch: init pid %s: %s", p, errstr((int)n));
	} else if (n > 0) {
		errno = 0;
		v = strtoul(text, &end, 10);
		while (*end && isspace((unsigned char)*end))
			end++;
		if (errno || *end || !v || v > INT32_MAX)
			wlog(w, KL_CTRW_ERR, "ctrwatch: init pid %s: not a pid: \"%.32s\"", p, text);
		else
			*pid = (uint32_t)v;
	}
	free(text);
	free(p);
	/* empty: the shim writes it in place, we caught it half-written */
	return n == 0 ? 0 : 1;
}

/* Try to learn what @s says; join it to its container; start that when
 * its init pid is known. */
static void src_resolve(struct kl_ctrwatch *w, struct source *s, bool final)
{
	struct root *r = s->pd->root;
	char *bundle = NULL, *cgpath = NULL;
	json_t *labels = NULL;
	uint32_t pid = 0;
	uint64_t start = 0;
	struct container *c;
	int rc;

	if (r->cfg.layout == KL_CTRW_TASK) {
		/* the task dir is the bundle: join right away, the pid may follow */
		if (!s->ctr) {
			c = ctr_get(w, s->id, s->dir);
			if (!c)
				return;
			s->ctr = c;
			c->nsrc++;
		}
		if (s->ctr->pid || s->resolved)
			goto check;
		rc = read_init_pid(w, s, &pid);
		if (rc > 0)
			s->resolved = true;
		if (pid && !s->ctr->pid)
			s->ctr->pid = pid;
		goto check;
	}
	if (s->resolved)
		goto check;
	rc = read_oci_state(w, s, final, &bundle, &pid, &start, &cgpath, &labels);
	if (rc <= 0)
		goto out;
	s->resolved = true;
	c = ctr_get(w, s->id, bundle ? bundle : "");
	if (!c)
		goto out;
	s->ctr = c;
	c->nsrc++;
	c->has_oci_state = true;
	c->crun = s->is_crun;
	if (pid && !c->pid) {
		c->pid = pid;
		c->pid_start = start;
	}
	if (cgpath && !c->state_cgroup) {
		c->state_cgroup = cgpath;
		cgpath = NULL;
	}
	if (labels && !c->runc_labels) {
		c->runc_labels = labels;
		labels = NULL;
	}
	/* a malformed state file will not get better: report what we have */
	if (!pid && c->state == CTR_PENDING)
		ctr_start(w, c, false);
check:
	if (s->ctr && s->ctr->pid && s->ctr->state == CTR_PENDING)
		ctr_start(w, s->ctr, false);
	/* nothing more to wait for in this dir */
	if (s->resolved && s->wd >= 0) {
		watch_put(w, s->wd);
		s->wd = -1;
	}
out:
	free(bundle);
	free(cgpath);
	json_decref(labels);
}

static struct source *src_new(struct kl_ctrwatch *w, struct pdir *pd, const char *name)
{
	struct source *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pd = pd;
	s->id = strdup(name);
	s->dir = path_join(pd->path, name);
	if (!s->id || !s->dir) {
		free(s->id);
		free(s->dir);
		free(s);
		return NULL;
	}
	/* watch first, then read: a file written in between is not missed */
	s->wd = watch_get(w, s->dir);
	if (s->wd < 0 && s->wd != -ENOENT && s->wd != -ENOTDIR)
		wlog(w, KL_CTRW_WARN, "ctrwatch: watch %s: %s; relying on the pending timeout",
		     s->dir, strerror(-s->wd));
	s->next = pd->srcs;
	pd->srcs = s;
	return s;
}

static bool is_dir_entry(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_name[0] == '.')
		return false;   /* ., .., and lock/temp files runtimes keep */
	if (de->d_type == DT_DIR)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Re-list a parent dir and reconcile its sources. */
static void pdir_rescan(struct kl_ctrwatch *w, struct pdir *pd)
{
	struct source *s, **pp;
	struct dirent *de;
	DIR *d;

	for (s = pd->srcs; s; s = s->next)
		s->seen = false;
	d = opendir(pd->path);
	if (d) {
		while ((de = readdir(d))) {
			if (!is_dir_entry(dirfd(d), de))
				continue;
			for (s = pd->srcs; s; s = s->next)
				if (!strcmp(s->id, de->d_name))
					break;
			if (!s) {
				s = src_new(w, pd, de->d_name);
				if (!s) {
					wlog(w, KL_CTRW_ERR, "ctrwatch: %s/%s: out of memory", pd->path, de->d_name);
					continue;
				}
			}
			s->seen = true;
		}
		closedir(d);
	} else if (errno != ENOENT) {
		wlog(w, KL_CTRW_ERR, "ctrwatch: list %s: %s", pd->path, strerror(errno));
		return;     /* keep what we hold rather than stop everything */
	}
	for (pp = &pd->srcs; *pp;) {
		s = *pp;
		if (!s->seen) {
			*pp = s->next;
			src_free(w, s);
			continue;
		}
		pp = &s->next;
	}
	for (s = pd->srcs; s; s = s->next)
		src_resolve(w, s, false);
}

static void pdir_free(struct kl_ctrwatch *w, struct pdir *pd)
{
	while (pd->srcs) {
		struct source *s = pd->srcs;

		pd->srcs = s->next;
		src_free(w, s);
	}
	watch_put(w, pd->wd);
	free(pd->ns);
	free(pd->path);
	free(pd);
}

static struct pdir *pdir_new(struct kl_ctrwatch *w, struct root *r, const char *ns)
{
	struct pdir *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return NULL;
	pd->root = r;
	pd->ns = ns ? strdup(ns) : NULL;
	pd->path = ns ? path_join(r->path, ns) : strdup(r->path);
	if ((ns && !pd->ns) || !pd->path) {
		free(pd->ns);
		free(pd->path);
		free(pd);
		return NULL;
	}
	pd->wd = watch_get(w, pd->path);
	if (pd->wd < 0 && pd->wd != -ENOENT && pd->wd != -ENOTDIR)
		wlog(w, KL_CTRW_ERR, "ctrwatch: watch %s: %s", pd->path, strerror(-pd->wd));
	pd->next = r->pdirs;
	r->pdirs = pd;
	return pd;
}

/* ---- roots ------------------------------------------------------------------- */

static void root_rescan(struct kl_ctrwatch *w, struct root *r)
{
	struct pdir *pd, **pp;
	struct dirent *de;
	DIR *d;

	if (r->cfg.depth == 1) {
		if (!r->pdirs && !pdir_new(w, r, NULL))
			return;
		pdir_rescan(w, r->pdirs);
		return;
	}
	for (pd = r->pdirs; pd; pd = pd->next)
		pd->seen = false;
	d = opendir(r->path);
	if (!d && errno != ENOENT) {
		wlog(w, KL_CTRW_ERR, "ctrwatch: list %s: %s", r->path, strerror(errno));
		return;
	}
	while (d && (de = readdir(d))) {
		if (!is_dir_entry(dirfd(d), de))
			continue;
		for (pd = r->pdirs; pd; pd = pd->next)
			if (!strcmp(pd->ns, de->d_name))
				break;
		if (!pd)
			pd = pdir_new(w, r, de->d_name);
		if (pd)
			pd->seen = true;
	}
	if (d)
		closedir(d);
	for (pp = &r->pdirs; *pp;) {
		pd = *pp;
		if (!pd->seen) {
			*pp = pd->next;
			pdir_free(w, pd);
			continue;
		}
		pp = &pd->next;
	}
	for (pd = r->pdirs; pd; pd = pd->next)
		pdir_rescan(w, pd);
}

static void root_drop(struct kl_ctrwatch *w, struct root *r)
{
	while (r->pdirs) {
		struct pdir *pd = r->pdirs;

		r->pdirs = pd->next;
		pdir_free(w, pd);
	}
	watch_put(w, r->wd);
	r->wd = -1;
}

/*
 * Watch the root if it exists, else its nearest existing ancestor, so
 * that creating the missing components wakes us. Loops because a
 * component may be created between our look and our watch.
 * Return: true when the root itself is now watched.
 */
static bool root_establish(struct kl_ctrwatch *w, struct root *r)
{
	char p[PATH_MAX];
	int wd;

	if (watch_alive(w, r->wd))
		return true;
	r->wd = -1;
	for (int tries = 0; tries < 16; tries++) {
		size_t plen;

		wd = watch_get(w, r->path);
		if (wd >= 0) {
			r->wd = wd;
			watch_put(w, r->anc_wd);
			r->anc_wd = -1;
			return true;
		}
		if (wd != -ENOENT && wd != -ENOTDIR) {
			wlog(w, r->warned ? KL_CTRW_DEBUG : KL_CTRW_ERR, "ctrwatch: watch %s: %s",
			     r->path, strerror(-wd));
			r->warned = true;
			return false;
		}
		/* climb to the nearest ancestor that exists and watch it */
		if (snprintf(p, sizeof(p), "%s", r->path) >= (int)sizeof(p))
			return false;
		for (;;) {
			char *slash = strrchr(p, '/');

			if (!slash)
				return false;
			if (slash == p)
				slash[1] = 0;   /* "/" */
			else
				*slash = 0;
			wd = watch_get(w, p);
			if (wd >= 0)
				break;
			if ((wd != -ENOENT && wd != -ENOTDIR) || !strcmp(p, "/")) {
				wlog(w, r->warned ? KL_CTRW_DEBUG : KL_CTRW_ERR,
				     "ctrwatch: watch %s (for %s): %s", p, r->path, strerror(-wd));
				r->warned = true;
				return false;
			}
		}
		/* new ref before dropping the old one: they may be the same wd */
		watch_put(w, r->anc_wd);
		r->anc_wd = wd;
		/* The next component may have been created before the watch
		 * took hold, which no event would tell: look once more. */
		plen = strcmp(p, "/") ? strlen(p) : 0;
		snprintf(p, sizeof(p), "%s", r->path);
		{
			char *next = strchr(p + plen + 1, '/');

			if (next)
				*next = 0;
		}
		if (access(p, F_OK) < 0)
			return false;
	}
	return false;
}

static void root_check(struct kl_ctrwatch *w, struct root *r)
{
	if (!watch_alive(w, r->wd)) {
		/* the root itself is gone (or never was): drop what was in it */
		if (r->pdirs)
			root_drop(w, r);
		r->wd = -1;
		if (!root_establish(w, r))
			return;
	}
	root_rescan(w, r);
}

/* ---- public API ---------------------------------------------------------------- */

int kl_ctrwatch_new(const struct kl_ctrwatch_opts *o, struct kl_ctrwatch **out)
{
	const struct kl_ctrwatch_root *roots;
	struct kl_ctrwatch *w;
	size_t n;
	int err;

	if (!out || !o || o->sz < offsetof(struct kl_ctrwatch_opts, sz) + sizeof(o->sz))
		return -EINVAL;
	*out = NULL;
	/* a newer caller's options we do not know must be all zero */
	for (size_t i = sizeof(*o); i < o->sz; i++)
		if (((const uint8_t *)o)[i])
			return -E2BIG;
	struct kl_ctrwatch_opts opts = { 0 };
	memcpy(&opts, o, o->sz < sizeof(opts) ? o->sz : sizeof(opts));
	roots = opts.roots ? opts.roots : kl_ctrwatch_default_roots(&n);
	if (opts.roots)
		n = opts.nroots;
	for (size_t i = 0; i < n; i++)
		if (!roots[i].path || roots[i].path[0] != '/' ||
		    (roots[i].depth != 1 && roots[i].depth != 2) ||
		    (roots[i].layout != KL_CTRW_OCI_STATE && roots[i].layout != KL_CTRW_TASK))
			return -EINVAL;
	if (opts.max_record && opts.max_record < sizeof(struct kl_container) + 64)
		return -EINVAL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->log = opts.log;
	w->log_ctx = opts.log_ctx;
	w->max_record = opts.max_record ? opts.max_record : DEFAULT_MAX_RECORD;
	w->liveness_ns = opts.liveness_interval_ns ? opts.liveness_interval_ns : DEFAULT_LIVENESS_NS;
	w->pending_ns = opts.pending_timeout_ns ? opts.pending_timeout_ns : DEFAULT_PENDING_NS;
	w->hint_wait_ns = opts.exec_hint_wait_ns;
	w->self_mnt_ns = ns_inum((uint32_t)getpid(), "mnt");
	w->self_pid_ns = ns_inum((uint32_t)getpid(), "pid");
	w->hz = sysconf(_SC_CLK_TCK);
	if (w->hz <= 0)
		w->hz = 100;
	w->buf = malloc(w->max_record);
	w->roots = calloc(n ? n : 1, sizeof(*w->roots));
	w->docker_root = strdup(opts.docker_root ? opts.docker_root : "/var/lib/docker");
	if (opts.cgroup2_mount)
		w->cg2 = strdup(opts.cgroup2_mount);
	else if (!(w->cg2 = find_cgroup2()))
		w->cg2 = strdup("");
	if (!w->buf || !w->roots || !w->docker_root || !w->cg2) {
		err = -ENOMEM;
		goto fail;
	}
	/* no trailing slash: "<cg2>" + "/a/b" must form the path */
	for (size_t l = strlen(w->cg2); l > 1 && w->cg2[l - 1] == '/'; l--)
		w->cg2[l - 1] = 0;
	if (!*w->cg2)
		wlog(w, KL_CTRW_WARN, "ctrwatch: no cgroup2 mount found; containers get no cgroup id");
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		err = -errno;
		goto fail;
	}
	w->nroots = n;
	for (size_t i = 0; i < n; i++) {
		struct root *r = &w->roots[i];

		r->cfg = roots[i];
		r->wd = r->anc_wd = -1;
		r->path = strdup(roots[i].path);
		if (!r->path) {
			err = -ENOMEM;
			goto fail;
		}
		/* strip trailing slashes so dirname walking and joins behave */
		for (size_t l = strlen(r->path); l > 1 && r->path[l - 1] == '/'; l--)
			r->path[l - 1] = 0;
		r->cfg.path = r->path;
		root_establish(w, r);
	}
	*out = w;
	return 0;
fail:
	kl_ctrwatch_free(w);
	return err;
}

int kl_ctrwatch_fd(const struct kl_ctrwatch *w)
{
	return w ? w->fd : -EINVAL;
}

/*
 * Roots in the order to look at them: OCI state dirs before containerd
 * task dirs, so that when one batch brings both the runc state and
 * init.pid of a containerd task, START already knows the OCI runtime.
 */
static struct root *root_at(struct kl_ctrwatch *w, size_t k)
{
	size_t seen = 0;

	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < w->nroots; i++)
			if ((w->roots[i].cfg.layout == KL_CTRW_TASK) == (pass == 1) && seen++ == k)
				return &w->roots[i];
	return NULL;
}

static void rescan_all(struct kl_ctrwatch *w)
{
	for (size_t k = 0; k < w->nroots; k++)
		root_check(w, root_at(w, k));
}

int kl_ctrwatch_snapshot(struct kl_ctrwatch *w, kl_ctrwatch_emit_fn emit, void *ctx)
{
	struct container *c;

	if (!w)
		return -EINVAL;
	w->emit = emit;
	w->emit_ctx = ctx;
	for (c = w->ctrs; c; c = c->next)
		c->snap_done = false;
	w->in_snapshot = true;
	rescan_all(w);
	/* already known and running: report again, as a snapshot */
	for (c = w->ctrs; c; c = c->next) {
		if (c->state != CTR_RUNNING || c->snap_done || !c->rec)
			continue;
		if (!pid_alive(w, c)) {
			ctr_stop(w, c, "init pid exited");
			continue;
		}
		struct kl_container r;

		memcpy(&r, c->rec, sizeof(r));
		r.kind = KL_CTR_SNAPSHOT;
		r.ev.ts_ns = kl_now_mono_ns();
		r.ev.flags |= KL_EV_BOOTSTRAP;
		memcpy(c->rec, &r, sizeof(r));
		emit_rec(w, c->rec, c->rec_len);
		w->st.started++;
		c->snap_done = true;
	}
	w->in_snapshot = false;
	w->snapshotted = true;
	w->emit = NULL;
	return 0;
}

static void mark_dirty(struct kl_ctrwatch *w, int wd)
{
	struct watch *x = watch_find(w, wd);

	if (x)
		x->dirty = true;
}

static bool wd_dirty(struct kl_ctrwatch *w, int wd)
{
	struct watch *x = wd >= 0 ? watch_find(w, wd) : NULL;

	return x && x->dirty;
}

/* Drop every wd that IN_IGNORED said is gone from our structures. */
static void forget_wd(struct kl_ctrwatch *w, int wd)
{
	for (size_t i = 0; i < w->nroots; i++) {
		struct root *r = &w->roots[i];

		if (r->anc_wd == wd) {
			r->anc_wd = -1;
			w->rescan_all = true;   /* the ancestor went: climb again */
		}
		if (r->wd == wd) {
			r->wd = -1;
			w->rescan_all = true;
		}
		for (struct pdir *pd = r->pdirs; pd; pd = pd->next) {
			if (pd->wd == wd) {
				pd->wd = -1;
				w->rescan_all = true;
			}
			for (struct source *s = pd->srcs; s; s = s->next)
				if (s->wd == wd)
					s->wd = -1;
		}
	}
	watch_gone(w, wd);
}

static void process_dirty(struct kl_ctrwatch *w)
{
	if (w->rescan_all) {
		w->rescan_all = false;
		rescan_all(w);
		goto clear;
	}
	for (size_t k = 0; k < w->nroots; k++) {
		struct root *r = root_at(w, k);

		if (wd_dirty(w, r->anc_wd) ||
		    (!watch_alive(w, r->wd) && !watch_alive(w, r->anc_wd))) {
			if (root_establish(w, r))
				root_rescan(w, r);
			continue;
		}
		if (wd_dirty(w, r->wd)) {
			root_rescan(w, r);
			continue;
		}
		for (struct pdir *pd = r->pdirs; pd; pd = pd->next) {
			if (wd_dirty(w, pd->wd)) {
				pdir_rescan(w, pd);
				continue;
			}
			for (struct source *s = pd->srcs; s; s = s->next)
				if (wd_dirty(w, s->wd))
					src_resolve(w, s, false);
		}
	}
clear:
	for (size_t i = 0; i < w->nwatches; i++)
		w->watches[i].dirty = false;
}

static void timed_work(struct kl_ctrwatch *w, uint64_t now)
{
	for (struct container *c = w->ctrs; c; c = c->next) {
		if (c->state == CTR_RUNNING && !pid_alive(w, c))
			ctr_stop(w, c, "init pid exited");
		else if (c->state == CTR_PENDING && now >= c->first_seen_ns &&
			 now - c->first_seen_ns >= w->pending_ns) {
			/* a containerd task dir whose init.pid may come from its runc
			 * state instead: give that a last look first */
			for (size_t i = 0; i < w->nroots; i++)
				for (struct pdir *pd = w->roots[i].pdirs; pd; pd = pd->next)
					for (struct source *s = pd->srcs; s; s = s->next)
						if (s->ctr == c)
							src_resolve(w, s, true);
			ctr_start(w, c, true);
		}
	}
}

int kl_ctrwatch_dispatch(struct kl_ctrwatch *w, uint64_t now_ns, kl_ctrwatch_emit_fn emit, void *ctx)
{
	/* aligned as the kernel requires for struct inotify_event */
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int err = 0;
	ssize_t n;

	if (!w)
		return -EINVAL;
	if (!w->snapshotted)
		kl_ctrwatch_snapshot(w, emit, ctx);
	w->emit = emit;
	w->emit_ctx = ctx;
	for (;;) {
		n = read(w->fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				err = -errno;
			break;
		}
		if (n == 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW) {
				/* events were lost: only a full re-list is trustworthy */
				w->st.overflows++;
				w->rescan_all = true;
				wlog(w, KL_CTRW_WARN, "ctrwatch: inotify queue overflow; rescanning all roots");
			} else if (ev->mask & IN_IGNORED) {
				forget_wd(w, ev->wd);
			} else {
				mark_dirty(w, ev->wd);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	process_dirty(w);
	if (!now_ns)
		now_ns = kl_now_mono_ns();
	if (w->awaiting) {
		w->awaiting = false;    /* set again by any START still waiting */
		for (struct container *c = w->ctrs; c; c = c->next)
			if (c->state == CTR_PENDING && c->hint_until)
				ctr_start(w, c, false);
	}
	if (now_ns >= w->next_live_ns) {
		timed_work(w, now_ns);
		w->next_live_ns = now_ns + w->liveness_ns;
	}
	w->emit = NULL;
	return err;
}

int kl_ctrwatch_next_timeout_ms(const struct kl_ctrwatch *w, uint64_t now_ns)
{
	uint64_t d;

	if (!w)
		return -1;
	if (!now_ns)
		now_ns = kl_now_mono_ns();
	if (now_ns >= w->next_live_ns)
		return 0;
	d = (w->next_live_ns - now_ns + 999999) / 1000000;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

int kl_ctrwatch_exec_seen(struct kl_ctrwatch *w, const struct kl_proc *ex,
			  kl_ctrwatch_emit_fn emit, void *ctx)
{
	if (!w || !ex)
		return -EINVAL;
	/* the host's own execs never start a container: no read, no rescan */
	if (!ex->ev.pid_ns || ex->ev.pid_ns == w->self_pid_ns)
		return 0;
	w->hints[w->hint_next++ % KL_CTRW_HINTS] = *ex;
	return kl_ctrwatch_dispatch(w, 0, emit, ctx);
}

void kl_ctrwatch_get_stats(const struct kl_ctrwatch *w, struct kl_ctrwatch_stats *s)
{
	if (!w || !s)
		return;
	*s = w->st;
	s->watches = (uint32_t)w->nwatches;
}

void kl_ctrwatch_free(struct kl_ctrwatch *w)
{
	if (!w)
		return;
	/* free emits nothing: no STOP for containers still running */
	w->emit = NULL;
	for (size_t i = 0; i < w->nroots; i++) {
		root_drop(w, &w->roots[i]);
		watch_put(w, w->roots[i].anc_wd);
		free(w->roots[i].path);
	}
	while (w->ctrs) {
		struct container *c = w->ctrs;

		w->ctrs = c->next;
		ctr_free(c);
	}
	for (size_t i = 0; i < w->nwatches; i++)
		free(w->watches[i].path);
	free(w->watches);
	if (w->fd >= 0)
		close(w->fd);
	free(w->roots);
	free(w->cg2);
	free(w->docker_root);
	free(w->buf);
	free(w);
}
