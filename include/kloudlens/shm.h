/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shm.h - libshm: lock-free shared-memory rings between KloudLens stages.
 *
 * One producer per ring, up to SHM_MAX_CONSUMERS consumers, each with a
 * cursor kept in the ring so a restarted consumer resumes where it
 * stopped. Records are variable length, 8-byte aligned, never split
 * (a padding record fills the tail at wrap-around).
 *
 * Every function returns 0 (or a count) on success and -errno on failure.
 * The library never prints; shm_set_log() installs a callback for the
 * rare events worth a log line (a consumer detached, a corrupt ring).
 */
#ifndef KLOUDLENS_SHM_H
#define KLOUDLENS_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHM_API __attribute__((visibility("default")))

#define SHM_DEFAULT_DIR "/dev/shm/kloudlens"
#define SHM_MAX_CONSUMERS 32
#define SHM_NAME_MAX 32

struct shm_ring;      /* a mapped ring (producer or consumer side) */
struct shm_consumer;  /* one consumer slot held by this process */
struct shm_stats;     /* a lock-free counter area */

enum shm_policy {
	SHM_POLICY_DROP = 0,   /* producer never blocks; a record that does not fit is dropped and counted */
	SHM_POLICY_BLOCK = 1,  /* producer waits for the slowest live required consumer */
};

enum shm_consumer_kind {
	SHM_REQUIRED = 0,      /* a pipeline stage: holds the producer back */
	SHM_OBSERVER = 1,      /* a tool: never holds the producer back; counts what it missed */
};

/* Size-versioned options (first field = sizeof); unknown non-zero tails rejected. */
struct shm_ring_opts {
	size_t sz;
	uint64_t capacity;          /* data bytes, power of two; default 64 MiB */
	enum shm_policy policy;     /* default SHM_POLICY_BLOCK */
	mode_t mode;                /* default 0640 */
	gid_t gid;                  /* group to give the file; (gid_t)-1 = keep */
	uint32_t grace_ms;          /* dead consumer slot held this long; default 5000 */
	uint32_t stale_ms;          /* heartbeat older than this = gone even if pid lives; default 30000 */
};
#define SHM_RING_OPTS_INIT { .sz = sizeof(struct shm_ring_opts), .gid = (gid_t)-1 }

/* A record as seen by a consumer. data is valid until shm_consumer_release(). */
struct shm_rec {
	const void *data;
	uint32_t len;      /* payload bytes */
	uint16_t type;     /* enum kl_rec_type */
	uint16_t flags;
	uint64_t seq;      /* ring sequence number: 0, 1, 2 ... per produced record */
};

/* Read-only snapshot of a ring's counters (for /metrics, klrec, tests). */
struct shm_consumer_info {
	char name[SHM_NAME_MAX];
	int32_t pid;
	uint32_t kind;              /* enum shm_consumer_kind */
	uint32_t state;             /* 0 free, 1 live, 2 held (owner gone, in grace), 3 detached */
	uint64_t cursor;            /* byte position */
	uint64_t next_seq;          /* next record it will read */
	uint64_t consumed;          /* records delivered to it */
	uint64_t dropped;           /* records it lost to the drop policy */
	uint64_t missed;            /* records it lost by being lapped or detached */
	uint64_t lag_bytes;
};

struct shm_ring_info {
	char name[SHM_NAME_MAX];
	uint64_t capacity;
	uint32_t policy;
	int32_t producer_pid;
	uint64_t head;              /* producer byte position */
	uint64_t produced;          /* records published */
	uint64_t produced_bytes;
	uint64_t dropped;           /* records dropped by the producer (drop policy) */
	uint64_t blocked_ns;        /* time the producer spent waiting (block policy) */
	uint64_t max_record;        /* largest payload the ring accepts */
	uint32_t nconsumers;
	struct shm_consumer_info consumers[SHM_MAX_CONSUMERS];
};

typedef void (*shm_log_fn)(int level, const char *msg, void *ctx);
SHM_API void shm_set_log(shm_log_fn fn, void *ctx);

/**
 * shm_ring_create() - create (or re-create) a ring file @dir/@name.
 * An existing ring with a compatible layout is re-used: consumer cursors
 * survive a producer restart. Return: 0 or -errno.
 */
SHM_API int shm_ring_create(const char *dir, const char *name,
			    const struct shm_ring_opts *opts, struct shm_ring **out);

/**
 * shm_ring_open() - map an existing ring (consumer side, or a restarted
 * producer). -EBADMSG on a corrupt header, -EPROTO on a layout-version
 * mismatch, -ENOENT if it does not exist.
 */
SHM_API int shm_ring_open(const char *dir, const char *name, struct shm_ring **out);

/**
 * shm_ring_init_mem() - lay out a ring in caller-provided memory (unit
 * tests use a heap buffer). @len must cover shm_ring_mem_size(capacity).
 */
SHM_API int shm_ring_init_mem(void *mem, size_t len, const char *name,
			      const struct shm_ring_opts *opts, struct shm_ring **out);
SHM_API size_t shm_ring_mem_size(uint64_t capacity);
/* Attach to a ring already laid out in @mem (another view of the same memory). */
SHM_API int shm_ring_attach_mem(void *mem, size_t len, struct shm_ring **out);

SHM_API void shm_ring_close(struct shm_ring *r);
SHM_API int shm_ring_unlink(const char *dir, const char *name);
SHM_API uint64_t shm_ring_max_record(const struct shm_ring *r);
SHM_API int shm_ring_info(struct shm_ring *r, struct shm_ring_info *info);

/* ---- producer ---------------------------------------------------------- */

/**
 * shm_reserve() - reserve @len payload bytes for a record of @type.
 * The record becomes visible at the next shm_publish(); reserve many,
 * publish once. Return: 0 with *@payload set; -EMSGSIZE if @len exceeds
 * shm_ring_max_record(); -ENOBUFS under the drop policy when the ring is
 * full (the record is counted as dropped); -EPIPE under the block
 * policy if the wait was interrupted by shm_ring_shutdown().
 */
SHM_API int shm_reserve(struct shm_ring *r, uint32_t len, uint16_t type, void **payload);
/* Shrink the last reservation to @len (<= reserved) before publishing. */
SHM_API void shm_trim(struct shm_ring *r, uint32_t len);
/**
 * shm_publish() - make every reserved record visible (one release store)
 * and wake sleeping consumers. Return: number of records published.
 */
SHM_API int shm_publish(struct shm_ring *r);
/* reserve + copy + publish for one record. */
SHM_API int shm_write(struct shm_ring *r, uint16_t type, const void *data, uint32_t len);
/* Make a blocked shm_reserve() return -EPIPE (signal handlers may call it). */
SHM_API void shm_ring_shutdown(struct shm_ring *r);

/* ---- consumer ---------------------------------------------------------- */

/**
 * shm_consumer_attach() - take the slot named @name. A slot of that name
 * that is still held (its owner died within the grace period) is resumed
 * at its cursor; one already detached restarts at the head with the gap
 * counted in missed; a new one starts at the head.
 * -EBUSY if a live process owns the slot, -ENOSPC if every slot is taken.
 */
SHM_API int shm_consumer_attach(struct shm_ring *r, const char *name,
				enum shm_consumer_kind kind, struct shm_consumer **out);

/**
 * shm_consumer_poll() - fetch up to @max records. Waits up to
 * @timeout_ms (0 = never, -1 = forever) when the ring is empty: spin
 * briefly, then sleep on a shared futex. Records stay valid until
 * shm_consumer_release(). Return: number of records, 0 on timeout,
 * -EINTR if interrupted, -ENOLINK if the producer lapped a required
 * consumer (cannot happen unless it was detached).
 */
SHM_API int shm_consumer_poll(struct shm_consumer *c, struct shm_rec *recs, int max, int timeout_ms);
/*
 * Observers only: move to the oldest record still in the ring, so a tool
 * attached late can show what the ring holds (klrec print --ring).
 * -EINVAL for a required consumer (it would re-read released records).
 */
SHM_API int shm_consumer_seek_oldest(struct shm_consumer *c);
/* Advance the cursor past everything returned by the last poll (the next poll does it too). */
SHM_API void shm_consumer_release(struct shm_consumer *c);
/* Detach for good (the slot is freed). */
SHM_API void shm_consumer_detach(struct shm_consumer *c);
/* Let the process die without releasing the slot (tests: simulate a crash). */
SHM_API void shm_consumer_abandon(struct shm_consumer *c);
SHM_API int shm_consumer_index(const struct shm_consumer *c);
/* Counters of this consumer: records lost to drops, to being lapped/detached. */
SHM_API uint64_t shm_consumer_dropped(const struct shm_consumer *c);
SHM_API uint64_t shm_consumer_missed(const struct shm_consumer *c);
SHM_API uint64_t shm_consumer_consumed(const struct shm_consumer *c);
/* Wake a consumer blocked in poll (it returns -EINTR). Async-signal-safe. */
SHM_API void shm_consumer_interrupt(struct shm_consumer *c);

/* ---- stats areas ------------------------------------------------------- */

enum shm_metric_type { SHM_COUNTER = 0, SHM_GAUGE = 1 };

struct shm_metric {
	char name[64];              /* Prometheus metric name */
	char labels[96];            /* e.g. category="crit" (without braces) */
	char help[88];
	uint32_t type;              /* enum shm_metric_type */
	uint32_t _pad;
	uint64_t value;
};

/**
 * shm_stats_create() - create the stats area @dir/@name.stats with room
 * for @max metrics. Values are updated with relaxed atomics by this
 * process and read lock-free by others (the exporter).
 */
SHM_API int shm_stats_create(const char *dir, const char *name, uint32_t max, struct shm_stats **out);
SHM_API int shm_stats_open(const char *dir, const char *name, struct shm_stats **out);
SHM_API void shm_stats_close(struct shm_stats *s);
/* Register a metric (or find the existing one); returns its value cell. */
SHM_API uint64_t *shm_stats_metric(struct shm_stats *s, const char *name, const char *labels,
				   const char *help, enum shm_metric_type type);
SHM_API void shm_stats_add(uint64_t *cell, uint64_t n);
SHM_API void shm_stats_set(uint64_t *cell, uint64_t v);
/* Snapshot up to @max metrics into @out; returns the number copied. */
SHM_API int shm_stats_read(struct shm_stats *s, struct shm_metric *out, int max);

#ifdef __cplusplus
}
#endif
#endif /* KLOUDLENS_SHM_H */
