/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame.h - gRPC length-prefixed framing (1-byte compressed flag, 4-byte
 * big-endian length, message), gzip through zlib above a threshold, and
 * the growable byte buffer the exporter builds messages in.
 */
#ifndef KL_EXPORTER_FRAME_H
#define KL_EXPORTER_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#define KL_FRAME_HDR 5
/* Largest message a peer may announce; anything bigger is a wrong length. */
#define KL_FRAME_MAX (16u << 20)

struct xbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

void xbuf_free(struct xbuf *b);
/* Make room for @n more bytes. Return: 0 or -ENOMEM. */
int xbuf_reserve(struct xbuf *b, size_t n);
int xbuf_append(struct xbuf *b, const void *p, size_t n);

/*
 * One compressor/decompressor pair, reused for every frame so that the
 * hot path allocates nothing once warmed up. Not thread-safe: one per thread.
 */
struct kl_codec {
	z_stream def;
	z_stream inf;
	bool def_ready;
	bool inf_ready;
	int level;
	struct xbuf scratch;      /* decompressed payloads */
	uint64_t compressed;      /* frames sent gzip'ed */
	uint64_t bytes_in;        /* before compression */
	uint64_t bytes_out;       /* after */
};

int kl_codec_init(struct kl_codec *c, int level);
void kl_codec_fini(struct kl_codec *c);

/**
 * kl_frame_put() - append one frame carrying @len bytes of @msg to @out,
 * gzip-compressed when @len >= @threshold (0 = never) and the result is
 * smaller. Return: 0 or -errno.
 */
int kl_frame_put(struct kl_codec *c, struct xbuf *out, const void *msg, size_t len,
		 size_t threshold);

/* Reserve a frame header, let the caller append the message, then seal it. */
size_t kl_frame_begin(struct xbuf *out);
int kl_frame_seal(struct kl_codec *c, struct xbuf *out, size_t start, size_t threshold);

/**
 * kl_frame_next() - decode the frame at @p (@len bytes available).
 * On success *@msg and *@msg_len point at the (decompressed) message, valid
 * until the next call on @c, and *@used is the frame size on the wire.
 * Return: 0; -EAGAIN if @len is 0 (no more frames); -EBADMSG for a
 * truncated header or body; -EMSGSIZE for a length above KL_FRAME_MAX
 * (or a gzip body expanding beyond it); -EPROTO for a flag other than
 * 0/1; -EILSEQ for a compressed body that is not valid gzip.
 */
int kl_frame_next(struct kl_codec *c, const uint8_t *p, size_t len, const uint8_t **msg,
		  size_t *msg_len, size_t *used);

#endif
