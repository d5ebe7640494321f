/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enrich.h - kl-enricher's engine: process, container and fd tables, and
 * the function that turns one raw record into one enriched record. Pure:
 * no I/O, no clock (event time drives every expiry), so golden tests are
 * deterministic and the benchmark measures exactly the per-event work.
 */
#ifndef KLOUDLENS_ENRICH_H
#define KLOUDLENS_ENRICH_H

#include <stddef.h>
#include <stdint.h>

struct kl_enricher;

struct kl_enricher_opts {
	uint32_t max_procs;         /* process table cap (default 65536) */
	uint32_t max_containers;    /* container table cap (default 4096) */
	uint32_t max_fds_per_proc;  /* highest fd number tracked + 1 (default 4096) */
	uint64_t max_fd_entries;    /* all processes together (default 1 M) */
	uint64_t exit_grace_ns;     /* exited process kept this long (default 5 s) */
	uint64_t ctr_grace_ns;      /* stopped container kept this long (default 30 s) */
	uint32_t max_argv;          /* argv bytes copied into each event (default 1024) */
};

struct kl_enricher_stats {
	uint64_t events;
	uint64_t invalid;           /* raw records that failed validation (passed on unenriched) */
	uint64_t procs;             /* live entries */
	uint64_t procs_stub;        /* first seen by a non-lifecycle event */
	uint64_t procs_evicted;     /* evicted by the cap, oldest exited first */
	uint64_t procs_expired;     /* exited and past the grace period */
	uint64_t containers;
	uint64_t containers_evicted;
	uint64_t fd_entries;
	uint64_t fd_untracked;      /* fd above max_fds_per_proc or over max_fd_entries */
	uint64_t fd_resolved;
	uint64_t fd_unresolved;     /* fd argument we had no entry for */
	uint64_t ctr_matched;
	uint64_t ctr_by_ns;
	uint64_t truncated;         /* enrichment cut to fit the output record */
};

int kl_enricher_new(const struct kl_enricher_opts *opts, struct kl_enricher **out);
void kl_enricher_free(struct kl_enricher *e);

/*
 * kl_enricher_process() - update the tables from one raw record and write
 * the enriched record into @out (@cap bytes). Return: bytes written, or
 * -EMSGSIZE if @cap cannot even hold the raw record (callers size @out
 * from kl_enricher_out_size()). Invalid raw records are counted and
 * returned as -EBADMSG; nothing else fails.
 */
long kl_enricher_process(struct kl_enricher *e, uint16_t type, const void *rec, size_t len,
			 void *out, size_t cap);
/* An output buffer of this size always fits the enriched form of a @len-byte raw record. */
size_t kl_enricher_out_size(size_t len);
void kl_enricher_stats(const struct kl_enricher *e, struct kl_enricher_stats *st);

/* Lexically normalise @path (resolve ".", "..", "//"), in place. */
void kl_path_normalize(char *path);
/* @base + "/" + @rel, normalised, into @out (cap bytes). -ENAMETOOLONG if it does not fit. */
int kl_path_join(const char *base, const char *rel, char *out, size_t cap);

#endif
