/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector.h - kl-collector internals, linked by main.c, collector-bench
 * and the tests. Every function returns 0 or -errno unless it says so;
 * nothing here prints except through the kc_log callback.
 */
#ifndef KLOUDLENS_COLLECTOR_H
#define KLOUDLENS_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kloudlens/record.h>
#include "kl_bpf.h"

/* ---- logging: the daemon installs a sink; the library never prints ---- */
typedef void (*kc_log_fn)(int level, const char *msg, void *ctx);
void kc_set_log(kc_log_fn fn, void *ctx);
void kc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum { KC_ERR = 3, KC_WARN = 4, KC_INFO = 6, KC_DEBUG = 7 };

/* ---- syscall table ---------------------------------------------------- */
struct kc_sc_def {
	const char *name;
	uint32_t nr;
	struct kl_sc_cfg cfg;
};
/* The built-in set (docs/events.md). Returns the number of entries. */
size_t kc_syscall_defs(const struct kc_sc_def **out);
/*
 * Fill @cfg[KL_NR_MAX] from the built-in set, restricted to the
 * comma-separated names in @only (NULL = all). -EINVAL on an unknown name.
 */
int kc_syscall_table(struct kl_sc_cfg *cfg, const char *only);

/* ---- capability probe ----------------------------------------------------- */
enum kc_hook {
	KC_HOOK_TRACEPOINT = 0,
	KC_HOOK_RAW_TP,
	KC_HOOK_TP_BTF,
	KC_HOOK_KPROBE,
	KC_HOOK_FENTRY,
	KC_HOOK_LSM,
	KC_HOOK_CGROUP_SKB,
	KC_HOOK_RINGBUF,
	KC_HOOK__COUNT,
};
struct kc_caps {
	char kernel[128];
	bool btf;                       /* /sys/kernel/btf/vmlinux */
	bool tracefs;                   /* mounted (or mounted by us) */
	bool tracefs_mounted_by_us;
	char cgroup2_path[256];         /* where cgroup v2 is mounted, "" if nowhere */
	bool cgroup_hybrid;             /* v1 controllers next to v2 */
	bool hook[KC_HOOK__COUNT];
	char reason[KC_HOOK__COUNT][96];/* why a hook is missing */
	uint64_t ringbuf_max_bytes;     /* largest ring created in the probe */
	uint32_t ncpus;
	const char *syscall_attach;     /* what the collector will use */
};
const char *kc_hook_name(enum kc_hook h);
/* Probe everything; never fails (missing things are reported in @caps). */
void kc_probe(struct kc_caps *caps);
void kc_caps_print(const struct kc_caps *caps, FILE *f, bool json);
/* Mount tracefs at /sys/kernel/tracing if it is not. */
int kc_mount_tracefs(bool *mounted);
/* cgroup v2 mount point, "" if none. */
int kc_cgroup2_path(char *buf, size_t len);

/* ---- the collector ----------------------------------------------------------- */
struct kc_opts {
	const char *dir;                /* rings dir (default SHM_DEFAULT_DIR) */
	const char *ring;               /* raw ring name (default "raw") */
	uint64_t ring_capacity;         /* raw ring data bytes (0 = default) */
	const char *stats_name;         /* stats area name (default "kl-collector") */
	const char *syscalls;           /* comma list restricting the set, NULL = all */
	uint64_t cgroups[16];           /* watch only these cgroup v2 ids */
	int ncgroups;
	uint32_t pidns[16];             /* watch only these pid namespaces */
	int npidns;
	bool containers_only;
	uint32_t exclude_pids[16];      /* extra thread groups never traced (agent stages) */
	int nexclude;
	bool no_self_exclude;           /* tests only: trace the collector too */
	bool no_dns;
	bool no_bootstrap;
	bool no_containers;             /* do not watch container runtimes' state */
	bool no_drop_caps;
	bool force_tracepoint;          /* use tp/ even when raw_tp works */
	uint32_t drain_ms;              /* timer drain period (default 5) */
	uint32_t reorder_ms;            /* reorder window (default 10) */
	uint32_t bpf_ring_kb;           /* every category's BPF ring, a power of two (default 4096) */
	uint32_t high_pct, low_pct;     /* downgrade water marks (default 50 / 20) */
	uint32_t shed_max;              /* highest downgrade level allowed (default KL_SHED__MAX) */
	bool no_shed;                   /* never downgrade (exact-count tests) */
	const char *filter_path;        /* live filter file (docker mode), watched; NULL = none */
};
#define KC_OPTS_DEFAULT { .dir = NULL }

struct kc;
int kc_open(const struct kc_opts *opts, struct kc **out);
/* One drain step: wait up to @timeout_ms, drain, merge, publish. Returns records published or -errno. */
int kc_poll(struct kc *c, int timeout_ms);
/* Run until kc_stop(). */
int kc_run(struct kc *c);
/* Async-signal-safe. */
void kc_stop(struct kc *c);
/* Drain and publish everything still buffered (shutdown, tests). */
int kc_flush(struct kc *c);
void kc_close(struct kc *c);
const struct kc_caps *kc_caps(const struct kc *c);

struct kc_counters {
	uint64_t events[KL_CAT__COUNT];     /* received from BPF */
	uint64_t lost_reserve[KL_CAT__COUNT];
	uint64_t shed[KL_CAT__COUNT];
	uint64_t lost_pending[KL_CAT__COUNT];
	uint64_t published;
	uint64_t dropped_raw;               /* -ENOBUFS at raw */
	uint64_t late;                      /* arrived behind the reorder window */
	uint64_t snapshot;                  /* bootstrap records */
	uint32_t level;                     /* downgrade level */
	uint64_t filter_updates;            /* live filter files applied */
	uint64_t filter_rejected;           /* live filter files refused (last good kept) */
	uint64_t filter_generation;         /* generation in force */
	uint64_t sampled_out[KL_CAT__COUNT];/* left out by HookSubscription sampling */
};
void kc_counters(struct kc *c, struct kc_counters *out);

/* ---- live filter file (filter.c; format there, docs/control-plane.md) ---- */
struct kc_filter;
/* Parse @path; on error -EINVAL etc. with "path:line: what" in @err. */
int kc_filter_parse(const char *path, struct kc_filter **out, char *err, size_t errlen);
void kc_filter_free(struct kc_filter *f);
uint64_t kc_filter_generation(const struct kc_filter *f);
size_t kc_filter_nrules(const struct kc_filter *f);
/* Compile into a kl_live slot (NULL or empty filter = trace everything);
 * @traced: the loaded syscall table (NULL = the built-in set). */
int kc_filter_compile(const struct kc_filter *f, const struct kl_sc_cfg *traced, uint32_t host_pidns,
		      struct kl_live *live, char *err, size_t errlen);
/* Rules (bit per rule) whose selector terms pick this KL_REC_CONTAINER record. */
uint32_t kc_filter_match_container(const struct kc_filter *f, const void *rec, size_t len);
/* Re-read the filter file now (also done by kc_poll when it changes). */
int kc_filter_reload(struct kc *c);

/* ---- pieces exposed for unit tests ---------------------------------------------- */

/* Downgrade state machine: step up past high, down below low after hold ticks. */
struct kc_downgrade {
	uint32_t level, max;
	uint32_t high_pct, low_pct;
	uint32_t hold_ticks;            /* consecutive calm ticks needed to step down */
	uint32_t calm;
	uint64_t steps_up, steps_down;
};
void kc_downgrade_init(struct kc_downgrade *d, uint32_t max, uint32_t high_pct, uint32_t low_pct, uint32_t hold);
/* Feed the current fill (percent of the fullest ring); returns the new level. */
uint32_t kc_downgrade_tick(struct kc_downgrade *d, uint32_t fill_pct);

/*
 * Reorder: one FIFO per BPF ring (each already in submission order, so a
 * task's records in one ring are never swapped), merged by key; the head
 * with the smallest key leaves once it is below the watermark, or at once
 * when the buffered bytes pass max_bytes (memory stays bounded).
 */
struct kc_item {
	uint64_t key;
	uint32_t len;
	uint16_t type;
	uint16_t src;
	void *rec;                      /* valid until kc_merge_next() */
};
struct kc_fifo {
	uint8_t *buf;
	size_t cap, head, tail;
};
struct kc_merge {
	struct kc_fifo q[KL_CAT__COUNT];
	size_t bytes, max_bytes;
	uint64_t last_key;              /* largest key released */
	uint64_t late;                  /* released behind last_key */
};
int kc_merge_init(struct kc_merge *m, size_t max_bytes);
void kc_merge_free(struct kc_merge *m);
/* Copy a record into FIFO @src; returns the copy (NULL: out of memory). */
void *kc_merge_push(struct kc_merge *m, uint32_t src, uint64_t key, uint16_t type, const void *rec, uint32_t len);
bool kc_merge_peek(struct kc_merge *m, uint64_t watermark, struct kc_item *out);
void kc_merge_next(struct kc_merge *m, const struct kc_item *it);
/* Sort key of a record from BPF: when it left the kernel. */
uint64_t kc_record_key(uint16_t type, const void *rec, size_t len);

/* Bootstrap: one KL_PROC_SNAPSHOT per process under @proc_root; @emit takes each record. */
typedef int (*kc_emit_fn)(void *ctx, uint16_t type, const void *rec, uint32_t len);
int kc_bootstrap(const char *proc_root, const char *cgroup2, kc_emit_fn emit, void *ctx, uint64_t *count);

/* Drop every capability except the ones still needed after attach. */
int kc_drop_caps(void);

#endif /* KLOUDLENS_COLLECTOR_H */
