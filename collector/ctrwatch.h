/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctrwatch.h - container lifecycle from the runtimes' own state.
 *
 * Watches (inotify) the state directories that containerd, runc, crun,
 * Docker's runc and CRI-O (through runc/crun) keep under /run, and turns
 * what appears and disappears there into KL_REC_CONTAINER records
 * (struct kl_container + TLV tail, <kloudlens/record.h>): a SNAPSHOT of
 * what already runs, then START and STOP. Roots that do not exist yet
 * are watched for through their nearest existing ancestor, so a runtime
 * started after the agent is picked up.
 *
 * Single-threaded: one caller drives new/snapshot/dispatch/free. The
 * library never prints; problems (a vanished dir, malformed JSON, a
 * missing field) go to the log callback, naming the file and what is
 * wrong, and the record is emitted with whatever is known.
 * See docs/containers.md.
 */
#ifndef KLOUDLENS_CTRWATCH_H
#define KLOUDLENS_CTRWATCH_H

#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Same shape and levels as the collector's kc_log sink (syslog levels). */
typedef void (*kl_ctrwatch_log_fn)(int level, const char *msg, void *ctx);
enum { KL_CTRW_ERR = 3, KL_CTRW_WARN = 4, KL_CTRW_INFO = 6, KL_CTRW_DEBUG = 7 };

/*
 * Called once per complete record: @rec is a struct kl_container followed
 * by its TLV tail, @len bytes in all (type KL_REC_CONTAINER). The buffer
 * is only valid during the call. ev.seq is left 0 for the collector.
 */
typedef void (*kl_ctrwatch_emit_fn)(const void *rec, size_t len, void *ctx);

enum kl_ctrwatch_layout {
	/* <root>/<id>/ holds runc's state.json or crun's status (+config.json) */
	KL_CTRW_OCI_STATE = 1,
	/* <root>/<ns>/<id>/ is a containerd v2 task bundle: config.json, init.pid */
	KL_CTRW_TASK = 2,
};

/* One state root to watch. */
struct kl_ctrwatch_root {
	const char *path;
	uint32_t layout;        /* enum kl_ctrwatch_layout */
	uint32_t depth;         /* 1: <root>/<id>; 2: <root>/<namespace>/<id> */
	uint32_t runtime;       /* enum kl_runtime of what lives here */
};

/*
 * Options, size-versioned: set .sz = sizeof(struct kl_ctrwatch_opts); a
 * larger struct with a non-zero unknown tail is rejected (-E2BIG).
 * Every other field may be left zero for its default.
 */
struct kl_ctrwatch_opts {
	size_t sz;
	/* NULL: the built-in list (kl_ctrwatch_default_roots()). */
	const struct kl_ctrwatch_root *roots;
	size_t nroots;
	/* cgroup2 mount point; NULL: found in /proc/self/mountinfo. */
	const char *cgroup2_mount;
	/* Docker's data root for containers/<id>/config.v2.json (name, image,
	 * labels); NULL: /var/lib/docker; "": never read. */
	const char *docker_root;
	/* Largest record handed to emit (the ring's max record); 0: 16384.
	 * Longer tails are cut and flagged KL_EV_TRUNCATED. */
	uint32_t max_record;
	/* How often dispatch() checks that init pids are alive; 0: 1 s. */
	uint64_t liveness_interval_ns;
	/* A container dir whose init pid is still unknown after this long is
	 * emitted with what is known (pid 0); 0: 5 s. */
	uint64_t pending_timeout_ns;
	kl_ctrwatch_log_fn log;
	void *log_ctx;
	/* For a caller that feeds kl_ctrwatch_exec_seen(): a container found
	 * with its init already gone waits up to this long for the hint of its
	 * init's exec (which the caller may not have read yet) before its START
	 * goes out without namespaces or cgroup id. 0: no wait. */
	uint64_t exec_hint_wait_ns;
};

struct kl_ctrwatch;

struct kl_ctrwatch_stats {
	uint64_t started;       /* START + SNAPSHOT records emitted */
	uint64_t stopped;       /* STOP records emitted */
	uint64_t errors;        /* problems logged at KL_CTRW_ERR/WARN */
	uint64_t overflows;     /* inotify queue overflows (full rescans) */
	uint32_t running;       /* containers currently believed running */
	uint32_t watches;       /* inotify watches held */
};

/* The roots watched by default; *n receives the count. */
const struct kl_ctrwatch_root *kl_ctrwatch_default_roots(size_t *n);

/**
 * kl_ctrwatch_new() - create a watcher and install its inotify watches
 * (on each root, or on the nearest existing ancestor of a missing one).
 * Nothing is scanned or emitted yet: call kl_ctrwatch_snapshot().
 * Return: 0 or -errno (-EINVAL bad opts, -E2BIG unknown opts tail,
 * -ENOMEM, or inotify_init1's error).
 */
int kl_ctrwatch_new(const struct kl_ctrwatch_opts *o, struct kl_ctrwatch **out);

/* The inotify fd (non-blocking, CLOEXEC) to add to an epoll set (EPOLLIN). */
int kl_ctrwatch_fd(const struct kl_ctrwatch *w);

/**
 * kl_ctrwatch_snapshot() - scan every root and emit one KL_CTR_SNAPSHOT
 * record (ev.flags KL_EV_BOOTSTRAP) for each container running now,
 * including ones already reported. A container whose state is still
 * being written is reported later as START.
 * Return: 0 or -errno.
 */
int kl_ctrwatch_snapshot(struct kl_ctrwatch *w, kl_ctrwatch_emit_fn emit, void *ctx);

/**
 * kl_ctrwatch_dispatch() - drain the inotify fd, reconcile the state
 * dirs and emit START/STOP records; then, if the liveness interval has
 * passed since the last check (@now_ns, CLOCK_MONOTONIC; 0 = read the
 * clock), check every init pid and emit STOP for the dead, and emit
 * containers pending longer than the timeout. Call it when the fd is
 * readable and on a periodic tick (see kl_ctrwatch_next_timeout_ms()).
 * Never blocks. If called before any snapshot, it takes one first.
 * Return: 0 or -errno from reading the inotify fd.
 */
int kl_ctrwatch_dispatch(struct kl_ctrwatch *w, uint64_t now_ns,
			 kl_ctrwatch_emit_fn emit, void *ctx);

/* Exec hints kept for kl_ctrwatch_exec_seen(). */
#define KL_CTRW_HINTS 32

/**
 * kl_ctrwatch_exec_seen() - tell the watcher the kernel saw an exec in
 * another pid namespace than ours (@ex: its KL_PROC_EXEC record), and
 * dispatch at once. A runtime has written a container's state before it
 * lets the init exec the workload, so the START this emits comes before
 * the caller publishes the exec and the workload's events: none of them
 * reaches a consumer before its container. And if the init is gone by
 * the time its state is read (a short-lived container, a caller that
 * fell behind), the START takes its namespaces and cgroup id from the
 * exec instead of leaving them empty. Execs in our own pid namespace
 * (the host's) are ignored: no syscall.
 * Return: 0 or dispatch()'s -errno (-EINVAL for NULL arguments).
 */
int kl_ctrwatch_exec_seen(struct kl_ctrwatch *w, const struct kl_proc *ex,
			  kl_ctrwatch_emit_fn emit, void *ctx);

/* Milliseconds until dispatch() has timed work (liveness, pending). */
int kl_ctrwatch_next_timeout_ms(const struct kl_ctrwatch *w, uint64_t now_ns);

void kl_ctrwatch_get_stats(const struct kl_ctrwatch *w, struct kl_ctrwatch_stats *s);

/* Free everything and close the fd; accepts NULL. Emits nothing. */
void kl_ctrwatch_free(struct kl_ctrwatch *w);

#ifdef __cplusplus
}
#endif
#endif /* KLOUDLENS_CTRWATCH_H */
