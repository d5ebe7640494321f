/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shm-internal.h - the on-memory layout of a libshm ring. Private: the
 * public API is <kloudlens/shm.h>; tests include this only to corrupt a
 * header on purpose.
 *
 * File = header (SHM_HDR_SIZE) + data area (capacity bytes, a power of
 * two). Positions are free-running 64-bit byte counts; pos & (cap - 1)
 * is the offset in the data area.
 */
#ifndef KLOUDLENS_SHM_INTERNAL_H
#define KLOUDLENS_SHM_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include <kloudlens/shm.h>

#define SHM_MAGIC 0x4e49524d48534c4bULL /* "KLSHMRIN" */
#define SHM_LAYOUT_VERSION 1u
#define SHM_LINE 128                    /* defeat adjacent-line prefetch */
#define SHM_HDR_SIZE 8192u
#define SHM_REC_HDR 16u
#define SHM_ALIGN 8u

/* Record header in the data area. Padding records use only the first 8 bytes. */
struct shm_rec_hdr {
	uint32_t len;       /* payload bytes; for KL_REC_PAD the whole span */
	uint16_t type;
	uint16_t flags;
	uint64_t seq;
};
_Static_assert(sizeof(struct shm_rec_hdr) == SHM_REC_HDR, "record header is ABI");

enum shm_slot_state {
	SLOT_FREE = 0,
	SLOT_LIVE = 1,
	SLOT_HELD = 2,      /* owner gone; cursor kept for the grace period */
	SLOT_DETACHED = 3,  /* gone past grace; no longer holds the producer */
	SLOT_CLAIMING = 4,  /* being filled in by an attaching process */
};

struct shm_slot {
	_Atomic uint64_t cursor;        /* byte position of the next unread record */
	_Atomic uint64_t next_seq;      /* seq expected at cursor */
	_Atomic uint64_t heartbeat_ns;  /* CLOCK_MONOTONIC of the owner's last poll */
	_Atomic uint64_t consumed;
	_Atomic uint64_t missed;
	_Atomic uint64_t drop_base;     /* hdr->dropped when this consumer attached */
	_Atomic int32_t pid;
	_Atomic uint32_t state;
	_Atomic uint32_t kind;
	uint32_t pidns;                 /* the owner's pid namespace inum */
	char name[SHM_NAME_MAX];
	uint8_t _pad[SHM_LINE - 6 * 8 - 4 * 4 - SHM_NAME_MAX];
};
_Static_assert(sizeof(struct shm_slot) == SHM_LINE, "one slot per cache line pair");

struct shm_hdr {
	/* line 0: immutable after creation, covered by id_crc */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t hdr_size;
	uint64_t capacity;
	uint32_t policy;
	uint32_t grace_ms;
	uint32_t stale_ms;
	uint32_t max_record;
	uint64_t created_ns;
	char name[SHM_NAME_MAX];
	uint32_t id_crc;                /* crc32 of the bytes above */
	uint8_t _pad0[SHM_LINE - 8 - 4 - 4 - 8 - 4 * 4 - 8 - SHM_NAME_MAX - 4];

	/* line 1: producer hot path */
	_Atomic uint64_t head;          /* published byte position */
	_Atomic uint64_t produced;      /* published records (= next seq) */
	uint8_t _pad1[SHM_LINE - 16];

	/* line 2: producer bookkeeping others read */
	_Atomic uint64_t tail;          /* oldest intact record (observers resync here) */
	_Atomic uint64_t dropped;
	_Atomic uint64_t produced_bytes;
	_Atomic uint64_t blocked_ns;
	_Atomic uint64_t producer_hb;
	_Atomic int32_t producer_pid;
	_Atomic uint32_t shutdown;
	uint8_t _pad2[SHM_LINE - 5 * 8 - 2 * 4];

	/* line 3: consumers sleep here waiting for data */
	_Atomic uint32_t data_futex;
	_Atomic uint32_t data_waiters;
	uint8_t _pad3[SHM_LINE - 8];

	/* line 4: the producer sleeps here waiting for space */
	_Atomic uint32_t space_futex;
	_Atomic uint32_t space_waiters;
	uint8_t _pad4[SHM_LINE - 8];

	uint8_t _pad5[4096 - 5 * SHM_LINE];

	/* page 1 */
	struct shm_slot slots[SHM_MAX_CONSUMERS];
};
_Static_assert(sizeof(struct shm_hdr) == SHM_HDR_SIZE, "header is two pages");

#endif
