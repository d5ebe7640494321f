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

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/*
 * The options every stage takes, first in its getopt_long table:
 *   --dir D --input RING --output RING --capacity BYTES --ring-mode OCTAL
 *   --user U --wait SECONDS
 */
#define KL_STAGE_LONGOPTS \
	{ "dir", required_argument, NULL, 'd' }, \
	{ "input", required_argument, NULL, 'i' }, \
	{ "output", required_argument, NULL, 'o' }, \
	{ "capacity", required_argument, NULL, 'c' }, \
	{ "ring-mode", required_argument, NULL, 'm' }, \
	{ "user", required_argument, NULL, 'u' }, \
	{ "wait", required_argument, NULL, 'w' }

/*
 * kl_stage_opt() - take one of KL_STAGE_LONGOPTS into @sp (dir, inputs[0],
 * output, ro.capacity, ro.mode, user, wait_s). Numbers are checked in
 * full: "--capacity 64k" is refused, never read as 64. Return: 1 taken,
 * 0 not a common option, -EINVAL a bad value (logged, naming the option).
 */
int kl_stage_opt(struct kl_stage_spec *sp, int opt, const char *arg);

/*
 * kl_parse_u64() - a whole unsigned decimal, 0x hex or 0 octal number
 * times @scale (e.g. 1000000 for milliseconds given in ns). Return: 0, or
 * -EINVAL (empty, sign, trailing bytes) or -ERANGE (overflow, also after
 * scaling).
 */
int kl_parse_u64(const char *arg, uint64_t scale, uint64_t *out);

/* The same for a count that must fit 32 bits. */
int kl_parse_u32(const char *arg, uint32_t *out);

/* Log "--NAME: bad value "ARG"" with NAME looked up in @opts by @opt. Return: 2 (the exit status). */
int kl_stage_bad_value(const char *component, const struct option *opts, int opt, const char *arg);

/*
 * kl_stage_args() - getopt_long over @argv with @opts (KL_STAGE_LONGOPTS
 * first, "help" as 'h'): the common options go into @sp, every other one
 * to @own(@ctx, opt, optarg), which returns 0, or -EINVAL for a bad value.
 * Return: -1 to go on, or the exit status: 0 after --help (@usage on
 * stdout), 2 for a bad value (named by kl_stage_bad_value()) or an
 * unknown option (@usage on stderr).
 */
int kl_stage_args(int argc, char **argv, const struct option *opts, struct kl_stage_spec *sp,
		  int (*own)(void *ctx, int opt, const char *arg), void *ctx, void (*usage)(FILE *));

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
