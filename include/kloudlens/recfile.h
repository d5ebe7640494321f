/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recfile.h - KloudLens record files: a stream taken from any ring,
 * saved to disk and played back (docs/klrec.md has the byte layout).
 *
 * File = header, then chunks; each chunk has its own header CRC and a
 * CRC32 of its (optionally zlib-compressed) body, so a reader can tell a
 * truncated file from a corrupt one, name the chunk and offset, keep
 * every record before the damage and, if asked, skip to the next good
 * chunk.
 */
#ifndef KLOUDLENS_RECFILE_H
#define KLOUDLENS_RECFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_RECFILE_MAGIC "KLREC\0\0\1"
#define KL_RECFILE_VERSION 1u
#define KL_RECFILE_CHUNK_MAGIC 0x4b434c4bu /* "KLCK" little-endian */

struct kl_recfile_hdr {
	char magic[8];
	uint32_t format_version;
	uint32_t schema_version;    /* KL_SCHEMA_VERSION of the records */
	uint64_t created_real_ns;   /* CLOCK_REALTIME at creation */
	uint64_t created_mono_ns;   /* CLOCK_MONOTONIC at creation: ts_ns -> wall time */
	char ring[32];              /* ring it was taken from */
};
_Static_assert(sizeof(struct kl_recfile_hdr) == 64, "recfile header is ABI");

struct kl_recfile_chunk {
	uint32_t magic;
	uint32_t flags;             /* KL_RECFILE_ZLIB */
	uint32_t raw_len;           /* body bytes after decompression */
	uint32_t stored_len;        /* body bytes in the file */
	uint32_t nrecs;
	uint32_t body_crc;          /* crc32 of the stored body */
	uint32_t hdr_crc;           /* crc32 of the 24 bytes above */
	uint32_t _reserved;
};
_Static_assert(sizeof(struct kl_recfile_chunk) == 32, "chunk header is ABI");

#define KL_RECFILE_ZLIB 1u
#define KL_RECFILE_MAX_CHUNK (64u << 20)

/* In a chunk body each record is this header, the payload, and padding to 8. */
struct kl_recfile_rec_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint64_t cap_ns;            /* CLOCK_MONOTONIC when captured (pacing) */
};
_Static_assert(sizeof(struct kl_recfile_rec_hdr) == 16, "record header is ABI");

struct kl_recfile_writer;
struct kl_recfile_reader;

struct kl_recfile_rec {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	uint64_t cap_ns;
	const void *data;           /* valid until the next kl_recr_next() */
};

/* Return: 0 or -errno. @ring names the source ring in the header. */
int kl_recw_open(const char *path, const char *ring, bool compress, struct kl_recfile_writer **out);
int kl_recw_add(struct kl_recfile_writer *w, uint16_t type, uint16_t flags, uint64_t cap_ns,
		const void *data, uint32_t len);
/* Write out the buffered chunk (records become durable in the file). */
int kl_recw_flush(struct kl_recfile_writer *w);
/* Flush, fsync and close; returns the first error seen. */
int kl_recw_close(struct kl_recfile_writer *w);
uint64_t kl_recw_count(const struct kl_recfile_writer *w);

/* Return: 0 or -errno; -EBADMSG / -EPROTO with a message in @err. */
int kl_recr_open(const char *path, struct kl_recfile_reader **out, char *err, size_t errlen);
/* Skip damaged chunks (counted) instead of stopping at the first. */
void kl_recr_skip_corrupt(struct kl_recfile_reader *r, bool skip);
/*
 * kl_recr_next() - next record. Return: 1 with *@rec filled, 0 at a clean
 * end of file, -EBADMSG (corrupt) or -ENODATA (truncated) with
 * kl_recr_error() naming the chunk and byte offset.
 */
int kl_recr_next(struct kl_recfile_reader *r, struct kl_recfile_rec *rec);
const char *kl_recr_error(const struct kl_recfile_reader *r);
const struct kl_recfile_hdr *kl_recr_header(const struct kl_recfile_reader *r);
uint64_t kl_recr_corrupt_chunks(const struct kl_recfile_reader *r);
uint64_t kl_recr_chunks(const struct kl_recfile_reader *r);
void kl_recr_close(struct kl_recfile_reader *r);

#ifdef __cplusplus
}
#endif
#endif
