/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.h - what every pipeline daemon (kl-enricher, kl-intentd,
 * kl-graphd, kl-baselined) does around its engine: structured log lines,
 * waiting for an input ring that its producer has not created yet, an
 * output ring written in batches, and SIGTERM/SIGINT that interrupt a
 * blocked poll so the daemon can drain and flush.
 */
#ifndef KLOUDLENS_STAGE_H
#define KLOUDLENS_STAGE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/shm.h>

/* "level=L component=C msg=\"...\"" on stderr; quotes in the message are escaped. */
void kl_log(const char *component, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A libshm log callback that forwards to kl_log; @ctx is the component name. */
void kl_stage_shm_log(int level, const char *msg, void *ctx);

/*
 * Set by SIGTERM/SIGINT once kl_stage_signals() ran; the handler also
 * interrupts the consumers registered with kl_stage_interrupt_on().
 */
extern volatile sig_atomic_t kl_stage_stop;
void kl_stage_signals(void);
/* Up to 4 consumers whose blocked poll a signal interrupts (NULL clears all). */
void kl_stage_interrupt_on(struct shm_consumer *c);

/**
 * kl_stage_open_input() - open ring @name in @dir (NULL: default),
 * retrying every 100 ms for up to @wait_s seconds while it does not exist
 * yet (the producer starts after us) or until kl_stage_stop.
 * Return: 0 or -errno (-ENOENT after the wait).
 */
int kl_stage_open_input(const char *dir, const char *name, double wait_s, struct shm_ring **out);

/*
 * An output ring written record by record and published once per input
 * batch, or earlier when the unpublished bytes reach the ring's largest
 * record, so reservations alone can never fill a block-policy ring that
 * nobody can drain.
 */
struct kl_stage_out {
	struct shm_ring *ring;
	uint16_t type;              /* record type written */
	uint64_t pending;           /* reserved but unpublished bytes */
	uint64_t limit;
	int err;                    /* last reserve error (-EPIPE: no consumer left) */
	uint64_t written;
};

int kl_stage_out_create(struct kl_stage_out *o, const char *dir, const char *name,
			const struct shm_ring_opts *ro, uint16_t type);
/* Emit callback shape shared by the engines: @ctx is a struct kl_stage_out. Return: 0 or -errno. */
int kl_stage_emit(void *ctx, const void *rec, size_t len);
void kl_stage_out_publish(struct kl_stage_out *o);
void kl_stage_out_close(struct kl_stage_out *o);

/* ---- the whole start-up sequence ------------------------------------------ */

#define KL_STAGE_MAX_IN 2

/*
 * What a stage opens, in the order that keeps privileges short: input
 * rings (waiting for producers), the output ring, the stats area, then
 * @before_drop (e.g. an rpc socket or a profiles directory that must be
 * created as root), then the drop to @user, then the consumer slots —
 * attached last so that a stage that fails to start never holds back a
 * block-policy producer.
 */
struct kl_stage_spec {
	const char *component;                   /* "kl-graphd": logs, stats area, consumer slot */
	const char *dir;                         /* rings directory (NULL: default) */
	const char *user;                        /* drop to this user when root (NULL: kloudlens) */
	double wait_s;                           /* how long to wait for the inputs */
	const char *inputs[KL_STAGE_MAX_IN];     /* input rings; NULL ends the list */
	bool optional[KL_STAGE_MAX_IN];          /* absent after the wait: go on without it */
	const char *output;                      /* output ring, NULL for none */
	uint16_t out_type;
	struct shm_ring_opts ro;
	uint32_t stats_slots;                    /* metrics in the stats area (default 64) */
	int (*before_drop)(void *ctx);           /* 0 or -errno (it logs its own error) */
	void *ctx;
};

struct kl_stage {
	const char *component;
	const char *in_names[KL_STAGE_MAX_IN];
	bool draining;                            /* stopping: emptying the inputs */
	struct shm_ring *in[KL_STAGE_MAX_IN];     /* NULL: optional input absent */
	struct shm_consumer *cons[KL_STAGE_MAX_IN];
	struct kl_stage_out out;
	struct shm_stats *stats;
};

/*
 * kl_stage_setup() - run the sequence above, installing the signal
 * handlers first and registering the consumers for interruption. Every
 * failure is logged with what and where. Return: 0 or -errno; on error
 * everything opened so far is closed again.
 */
int kl_stage_setup(const struct kl_stage_spec *spec, struct kl_stage *st);
/**
 * kl_stage_next() - the next batch of input @i for the main loop: up to
 * @max records, waiting up to @timeout_ms. Once SIGTERM/SIGINT arrived it
 * stops waiting and returns what the ring still holds, so a stage exits
 * only after draining its input. Return: records (> 0), 0 when the wait
 * timed out, -ESHUTDOWN when stopping and drained, or -errno (logged).
 */
int kl_stage_next(struct kl_stage *st, int i, struct shm_rec *recs, int max, int timeout_ms);
/* Detach, publish what is pending, close. Safe on a partly set up stage. */
void kl_stage_teardown(struct kl_stage *st);

#endif
