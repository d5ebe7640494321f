/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wal.h - the exporter's write-ahead log, one per stream.
 *
 * Segment files wal-<first seq, 20 digits>.seg in one directory. A
 * segment starts with a 32-byte header; then records, each a block of
 * consecutive envelopes (gRPC frames, back to back) with a CRC, padded
 * to 8 bytes so a reader can resynchronise after corruption by looking
 * for the record magic at aligned offsets.
 *
 * Appends go through liburing (write, optionally linked with fdatasync).
 * Not thread-safe: the exporter's pump thread owns it.
 */
#ifndef KL_EXPORTER_WAL_H
#define KL_EXPORTER_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

enum kl_wal_fsync {
	KL_WAL_FSYNC_NONE = 0,      /* leave it to the kernel */
	KL_WAL_FSYNC_BATCH = 1,     /* fdatasync linked to every append */
	KL_WAL_FSYNC_INTERVAL = 2,  /* fdatasync at most every fsync_interval_ms */
};

struct kl_wal_opts {
	size_t sz;
	const char *dir;
	uint64_t segment_bytes;     /* roll over above this; default 64 MiB */
	uint64_t max_bytes;         /* retention by size; default 1 GiB */
	uint64_t max_age_s;         /* retention by age; default 86400, 0 = none */
	enum kl_wal_fsync fsync;
	uint32_t fsync_interval_ms; /* default 1000 */
	bool compress;              /* deflate each block when it shrinks */
};
#define KL_WAL_OPTS_INIT { .sz = sizeof(struct kl_wal_opts), .fsync = KL_WAL_FSYNC_INTERVAL }

struct kl_wal_stats {
	uint64_t bytes;             /* on disk, all segments */
	uint32_t segments;
	uint64_t oldest_seq;        /* first seq still held */
	uint64_t next_seq;          /* seq the next append must start at */
	uint64_t last_ring_seq;     /* ring_seq of the newest envelope (UINT64_MAX: none) */
	uint64_t appends;
	uint64_t append_bytes;
	uint64_t fsyncs;
	uint64_t corrupt_regions;   /* mid-segment corruption found (open or read) */
	uint64_t corrupt_seqs;      /* sequence numbers lost to it */
	uint64_t torn_bytes;        /* truncated from a torn tail at open */
	uint64_t retention_deleted; /* segments deleted by retention */
	uint64_t errors;            /* failed appends */
};

struct kl_wal;

/**
 * kl_wal_open() - open (creating @opts->dir if needed) and recover: a torn
 * tail of the newest segment is truncated; corrupt regions in the middle
 * are skipped and counted. Return: 0 or -errno.
 */
int kl_wal_open(const struct kl_wal_opts *opts, struct kl_wal **out);
void kl_wal_close(struct kl_wal *w);

/**
 * kl_wal_append() - append @count envelopes starting at @first_seq (must
 * equal the WAL's next_seq unless the WAL is empty), @len bytes of frames.
 * @ring_seq is the ring record number of the last one. Return: 0 or -errno.
 */
int kl_wal_append(struct kl_wal *w, uint64_t first_seq, uint32_t count, uint64_t ring_seq,
		  const void *frames, size_t len);

/* A block read back. frames valid until the next read on @w. */
struct kl_wal_block {
	uint64_t first_seq;
	uint32_t count;
	const uint8_t *frames;
	size_t len;
	/* set when the call returns -ENODATA: [gap_from, gap_to] is not served */
	uint64_t gap_from, gap_to;
	bool gap_retention;         /* the gap is retention, not corruption */
};

/**
 * kl_wal_read() - the block holding @seq (or the first one after it).
 * Return: 0; -EAGAIN if @seq >= next_seq (nothing yet); -ENODATA with the
 * gap described in @blk when @seq lies in a deleted or corrupt region
 * (the caller reports it and continues at gap_to + 1); other -errno.
 */
int kl_wal_read(struct kl_wal *w, uint64_t seq, struct kl_wal_block *blk);

/* Retention and interval fsync; call about once a second. */
int kl_wal_maintain(struct kl_wal *w);
void kl_wal_get_stats(const struct kl_wal *w, struct kl_wal_stats *st);

#endif
