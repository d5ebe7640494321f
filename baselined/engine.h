/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.h - kl-baselined's engine: per-workload learning of intents (and
 * syscalls from the enriched ring), promotion to a Profile, detection of
 * what the Profile does not cover (docs/baseline.md).
 *
 * Pure: no I/O and no clock. Event time (ev.ts_ns) drives the learning
 * window and the rate limiter, so a recorded stream always gives the same
 * deviations. Profiles go to and come from disk through profile.c; the
 * engine only says which workloads changed (bl_engine_next_dirty()).
 * Not thread-safe: the daemon serialises the ring loop and the RPC thread.
 */
#ifndef KL_BASELINED_ENGINE_H
#define KL_BASELINED_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>

/* What a workload's Profile holds; one bit per BaselinePolicy spec.learn entry. */
#define BL_LEARN_EXEC      (1u << 0)
#define BL_LEARN_FILE_R    (1u << 1)
#define BL_LEARN_FILE_W    (1u << 2)
#define BL_LEARN_FILE_X    (1u << 3)
#define BL_LEARN_EGRESS    (1u << 4)
#define BL_LEARN_INGRESS   (1u << 5)
#define BL_LEARN_LISTEN    (1u << 6)
#define BL_LEARN_DNS       (1u << 7)
#define BL_LEARN_SYSCALLS  (1u << 8)
#define BL_LEARN_CAPS      (1u << 9)    /* accepted, nothing observes capable() yet */
#define BL_LEARN_UIDS      (1u << 10)
#define BL_LEARN_ALL       0x7ffu

/* One BaselinePolicy (docs/control-plane.md), resolved. */
struct bl_policy {
	char name[128];             /* "ns/name", or "default" for the flags */
	char file[256];             /* where it came from ("" for flags) */
	char ns[64];                /* metadata.namespace ("" = any: docker mode / flags) */
	char container[128];        /* selector.container ("" = any) */
	char image[256];            /* selector.image; without a tag = any tag ("" = any) */
	char labels[512];           /* selector.podLabels as "k=v\0k=v\0" (matched against enriched labels) */
	uint32_t labels_len;
	uint64_t window_ns;         /* learning.window */
	uint64_t min_samples;       /* learning.minSamples */
	uint32_t min_pods;          /* learning.minPods */
	uint32_t learn;             /* BL_LEARN_* */
	bool emit;                  /* afterLearning.emit == deviations */
	bool generate_contract;     /* accepted; contract generation is contractc's (not run here) */
	uint64_t relearn_ns;        /* relearnEvery, 0 = learn once */
};

void bl_policy_default(struct bl_policy *p);

enum bl_state {
	BL_LEARNING = 0,            /* in the window */
	BL_INSUFFICIENT = 1,        /* window over, too few samples/pods: still learning */
	BL_READY = 2,               /* profile taken; emit none (policy or not activated) */
	BL_ACTIVE = 3,              /* profile taken, deviations emitted */
	BL_IDLE = 4,                /* no policy selects it: neither learned nor checked */
};
const char *bl_state_name(enum bl_state s);

/* Item categories of a profile. */
enum bl_cat {
	BL_C_EXEC = 0,
	BL_C_TRANS = 1,             /* text: "parent\0child" */
	BL_C_FILE = 2,              /* mode: KL_IA_READ|WRITE|EXEC */
	BL_C_EGRESS = 3,            /* "addr:port/PROTO", "[v6]:port/PROTO", "unix:/path" */
	BL_C_INGRESS = 4,           /* "port/PROTO" (local port); aux: first client address */
	BL_C_LISTEN = 5,            /* "port/PROTO", "unix:/path" */
	BL_C_DNS = 6,
	BL_C_PRIV = 7,              /* "setuid(0)" */
	BL_C_UID = 8,               /* "1000" */
	BL_C__COUNT = 9,
};
const char *bl_cat_name(enum bl_cat c);
int bl_cat_from_name(const char *s);

struct bl_item {
	uint64_t h;                 /* bl_item_hash(cat, text) */
	uint64_t count;
	uint64_t first_ns, last_ns;
	uint32_t mode;              /* FILE: KL_IA_* bits learned */
	uint16_t cat;               /* enum bl_cat */
	uint16_t attempt;           /* only ever seen failing: known attempt, not allowed */
	uint32_t len;
	char *text;
	char *aux;                  /* INGRESS: a client address; EGRESS: the DNS name it came from */
};

#define BL_SKETCH_DEPTH 4
#define BL_SKETCH_WIDTH 512     /* 8 KiB per workload; ~0.5% overestimate at 100k items */

struct bl_workload;

/* Rate limiter and table sizes. */
struct bl_config {
	uint32_t max_workloads;     /* 4096 */
	uint32_t max_items;         /* per workload, beyond it only the sketch counts (65536) */
	uint32_t rate_slots;        /* rate-limit table entries, power of two (65536) */
	uint64_t rate_window_ns;    /* one emission per (workload, kind, item) per window (60 s) */
	uint64_t rare_floor;        /* items learned fewer times are "rare" (0 = off) */
	bool policies_only;         /* only workloads a policy selects (a --policy-dir was given) */
	char node[256];
};
void bl_config_default(struct bl_config *c);

typedef int (*bl_emit_fn)(void *ctx, const void *rec, size_t len);

struct bl_stats {
	uint64_t intents, syscalls, invalid, learned, attempts_seen;
	uint64_t deviations, suppressed, rate_evicted;
	uint64_t by_kind[KL_DEV__COUNT];
	uint64_t workloads, workloads_dropped, unselected;
	uint64_t items_overflow, promotions, emit_errors;
	uint64_t runtime_skipped;       /* a runtime's init entering a container: neither learned nor checked */
};

struct bl_engine;

int bl_engine_new(const struct bl_config *cfg, bl_emit_fn emit, void *emit_ctx, struct bl_engine **out);
void bl_engine_free(struct bl_engine *e);

/* Replace the policy set (copied). With cfg.policies_only false, @def applies to unmatched workloads. */
int bl_engine_set_policies(struct bl_engine *e, const struct bl_policy *pol, size_t n,
			   const struct bl_policy *def);

/* One record from the intents ring (KL_REC_INTENT) or the enriched ring (KL_REC_ENRICHED;
 * syscalls only). Other types are ignored. Return: 0 or -errno (-EINVAL: invalid record). */
int bl_engine_feed(struct bl_engine *e, uint16_t type, const void *rec, size_t len);

const struct bl_stats *bl_engine_stats(const struct bl_engine *e);

/* Admin calls. @key NULL or "" = every workload. Return: workloads changed. */
int bl_engine_reset(struct bl_engine *e, const char *key);
int bl_engine_promote(struct bl_engine *e, const char *key);
int bl_engine_activate(struct bl_engine *e, const char *key);

/* Workloads: iterate 0..n-1. */
size_t bl_engine_nworkloads(const struct bl_engine *e);
struct bl_workload *bl_engine_workload(struct bl_engine *e, size_t i);
struct bl_workload *bl_engine_find(struct bl_engine *e, const char *key);
/* Next workload whose profile changed since the last call (promoted, reset...), NULL at the end. */
struct bl_workload *bl_engine_next_dirty(struct bl_engine *e);

/* Read-only views of a workload (for profile.c and the RPC handlers). */
struct bl_wview {
	const char *key;
	uint64_t id;                /* hash of key */
	const char *ns, *owner, *container, *image;
	bool host;
	enum bl_state state;
	const char *policy;
	uint64_t window_ns, win_start_ns, win_end_ns;
	uint64_t samples, pods, containers;
	uint64_t profile_id;
	uint64_t deviations;
	uint64_t items_overflow;
	size_t nitems;
	const struct bl_item *items;    /* nitems, unsorted */
	const uint64_t *syscalls;       /* [BL_NSYSCALLS] counts learned */
	const uint64_t *sys_attempts;   /* [BL_NSYSCALLS] only-failed counts */
	const uint32_t *sketch;         /* [DEPTH * WIDTH] */
	uint64_t sketch_total;
};
#define BL_NSYSCALLS 512
void bl_workload_view(const struct bl_workload *w, struct bl_wview *v);

/*
 * Install a profile for @key (from disk or a merge): the workload is
 * created if needed, its learned state replaced, and it becomes @state.
 * The items are copied. Return: 0 or -errno.
 */
struct bl_install {
	const char *key;
	const char *ns, *owner, *container, *image;
	bool host;
	enum bl_state state;
	const char *policy;
	uint64_t window_ns, win_start_ns, win_end_ns;
	uint64_t samples, pods, containers;
	uint64_t profile_id;
	size_t nitems;
	const struct bl_item *items;
	const uint64_t *syscalls, *sys_attempts;   /* BL_NSYSCALLS each, may be NULL */
	const uint32_t *sketch;                     /* may be NULL */
	uint64_t sketch_total;
	uint64_t items_overflow;    /* items past the cap (only in the sketch) */
	bool merge;                 /* add to what the workload holds (kl-baselined merge) instead of replacing */
};
int bl_engine_install(struct bl_engine *e, const struct bl_install *in);

/* Helpers shared with profile.c, the tests and the bench. */
uint64_t bl_hash(const void *p, size_t n, uint64_t seed);
uint64_t bl_item_hash(enum bl_cat c, const char *text, size_t len);
uint64_t bl_profile_id(const char *key, uint64_t win_start_ns, uint64_t window_ns);
void bl_sketch_add(uint32_t *sk, uint64_t h, uint32_t n);
uint64_t bl_sketch_estimate(const uint32_t *sk, uint64_t h);
/* Generalise a file path (contractc's rules): per-pid /proc, temporary names. Writes NUL-terminated. */
size_t bl_generalise_path(char *out, size_t cap, const char *in, size_t len);
/* Workload owner from a pod name: strip the ReplicaSet/StatefulSet/DaemonSet/Job suffix. */
size_t bl_pod_owner(char *out, size_t cap, const char *pod, size_t len);

#endif
