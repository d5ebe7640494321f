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

#endif
