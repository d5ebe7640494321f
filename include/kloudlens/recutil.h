/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recutil.h - bounds-checked access to ring records, the record-type
 * registry, syscall names and the JSON-lines encoding every tool shares.
 */
#ifndef KLOUDLENS_RECUTIL_H
#define KLOUDLENS_RECUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_API __attribute__((visibility("default")))

/* Registry entry for one record type. */
struct kl_rec_info {
	uint16_t type;
	const char *name;        /* "syscall", "proc", ... (JSON "type") */
	uint32_t fixed_size;     /* size of the fixed struct */
	bool has_event_head;     /* starts with struct kl_event */
	bool embeds_raw;         /* a raw record sits between the struct and the TLV fields */
};

/* NULL for an unknown type. */
KL_API const struct kl_rec_info *kl_rec_info(uint16_t type);

/* Why a record was rejected; counted per reason by kl_rec_validate(). */
enum kl_rec_err {
	KL_REC_OK = 0,
	KL_REC_E_UNKNOWN_TYPE,
	KL_REC_E_SHORT,          /* smaller than its fixed struct */
	KL_REC_E_TAIL_OVERRUN,   /* ev.tail_len runs past the record */
	KL_REC_E_FIELD_OVERRUN,  /* a field's len runs past the tail */
	KL_REC_E_BAD_FIELD,      /* field id 0 or above KL_F__MAX */
	KL_REC_E_BAD_EMBEDDED,   /* the embedded raw record is itself invalid */
	KL_REC_E__COUNT,
};

/* Process-wide rejection counters (relaxed atomics), indexed by kl_rec_err. */
KL_API uint64_t kl_rec_rejected(enum kl_rec_err why);
KL_API const char *kl_rec_strerror(enum kl_rec_err why);

/**
 * kl_rec_validate() - check a record of @type and @len bytes: known type,
 * at least its fixed size, and a tail whose every field lies inside the
 * record. Rejections are counted. Return: KL_REC_OK or the reason.
 */
KL_API enum kl_rec_err kl_rec_validate(uint16_t type, const void *rec, size_t len);

/* Iterator over the TLV tail of a validated (or unvalidated) record. */
struct kl_field_iter {
	const uint8_t *p;
	const uint8_t *end;
	int err;                 /* kl_rec_err once the walk hit a bad field */
};

struct kl_field_view {
	uint16_t id;             /* without KL_FIELD_TRUNC */
	bool truncated;
	uint16_t len;
	const uint8_t *data;
};

/* Start iterating the tail of @rec (@len bytes, of @type). -EINVAL if no tail. */
KL_API int kl_field_iter_init(struct kl_field_iter *it, uint16_t type, const void *rec, size_t len);
/* Next field; false at the end or on a bounds error (it->err set). */
KL_API bool kl_field_next(struct kl_field_iter *it, struct kl_field_view *f);
/* Find field @id; false if absent. */
KL_API bool kl_field_find(uint16_t type, const void *rec, size_t len, uint16_t id, struct kl_field_view *f);
KL_API const char *kl_field_name(uint16_t id);

/* The raw record embedded in an enriched one (aligned; fixed part readable in place). */
KL_API int kl_enriched_raw(const void *rec, size_t len, uint16_t *type, const void **raw, size_t *raw_len);
KL_API const char *kl_fd_kind_name(uint32_t kind);

/*
 * Tail builder: appends TLV fields after a fixed struct in a buffer of
 * @cap bytes. Over-long values are cut and flagged KL_FIELD_TRUNC.
 */
struct kl_tail_builder {
	uint8_t *base;           /* start of the record */
	size_t fixed;            /* size of the fixed struct */
	size_t cap;              /* total bytes available */
	size_t len;              /* bytes used (fixed + tail) */
	bool truncated;
};
KL_API void kl_tail_init(struct kl_tail_builder *b, void *rec, size_t fixed, size_t cap);
/* Return: 0, or -ENOSPC if nothing of the field fit (flagged truncated). */
KL_API int kl_tail_add(struct kl_tail_builder *b, uint16_t id, const void *data, size_t len);
KL_API int kl_tail_add_str(struct kl_tail_builder *b, uint16_t id, const char *s);
/* Write ev.tail_len/ev.flags back into the record; returns the total length. */
KL_API size_t kl_tail_finish(struct kl_tail_builder *b);

/* x86_64 syscall names ("openat"); NULL if unknown. */
KL_API const char *kl_syscall_name(uint32_t nr);
/* -1 if unknown. */
KL_API int kl_syscall_nr(const char *name);
KL_API uint32_t kl_syscall_max(void);
KL_API const char *kl_category_name(uint32_t cat);
KL_API int kl_category_from_name(const char *name);

/* ---- JSON lines ---------------------------------------------------------- */

/* Growable output buffer; never fails silently: oom sets .oom. */
struct kl_buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};
KL_API void kl_buf_free(struct kl_buf *b);
KL_API void kl_buf_reset(struct kl_buf *b);
KL_API void kl_buf_putc(struct kl_buf *b, char c);
KL_API void kl_buf_puts(struct kl_buf *b, const char *s);
KL_API void kl_buf_printf(struct kl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* JSON string literal with escapes; bytes that are not valid UTF-8 become \u00XX. */
KL_API void kl_buf_json_str(struct kl_buf *b, const void *s, size_t len);

/**
 * kl_rec_to_json() - append one record as a JSON object (no newline):
 * "type", "seq", "ts_ns", "pid", "tid", "comm", ... every field decoded,
 * syscall names and tail fields by name. An invalid record becomes
 * {"type":"invalid","error":...,"rec_type":N,"len":N}.
 * @ring_seq is the libshm record sequence (UINT64_MAX to omit).
 */
KL_API void kl_rec_to_json(struct kl_buf *b, uint16_t type, const void *rec, size_t len, uint64_t ring_seq);

/**
 * kl_drop_privileges() - if root, become @user (or nobody, noted in @note
 * when @user does not exist) with an empty bounding set; in every case
 * set no_new_privs and hold no capability at all. Return: 0 or -errno.
 */
KL_API int kl_drop_privileges(const char *user, char *note, size_t notelen);

/* Monotonic and realtime clocks in ns. */
KL_API uint64_t kl_now_mono_ns(void);
KL_API uint64_t kl_now_real_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* KLOUDLENS_RECUTIL_H */
