/* SPDX-License-Identifier: Apache-2.0 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void xbuf_free(struct xbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int xbuf_reserve(struct xbuf *b, size_t n)
{
	size_t want, cap;
	uint8_t *np;

	if (n > SIZE_MAX - b->len)
		return -ENOMEM;
	want = b->len + n;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

int xbuf_append(struct xbuf *b, const void *p, size_t n)
{
	int r = xbuf_reserve(b, n);

	if (r)
		return r;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int kl_codec_init(struct kl_codec *c, int level)
{
	memset(c, 0, sizeof(*c));
	c->level = level ? level : Z_BEST_SPEED;
	return 0;
}

void kl_codec_fini(struct kl_codec *c)
{
	if (!c)
		return;
	if (c->def_ready)
		deflateEnd(&c->def);
	if (c->inf_ready)
		inflateEnd(&c->inf);
	xbuf_free(&c->scratch);
	memset(c, 0, sizeof(*c));
}

/* Compress src into out (appending); -EOVERFLOW if it would not shrink. */
static int gzip_into(struct kl_codec *c, struct xbuf *out, const uint8_t *src, size_t len)
{
	size_t bound;
	int r;

	if (!c->def_ready) {
		/* windowBits 15 + 16: gzip wrapper, which is what gRPC's "gzip" means */
		if (deflateInit2(&c->def, c->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		c->def_ready = true;
	} else {
		deflateReset(&c->def);
	}
	bound = deflateBound(&c->def, len);
	r = xbuf_reserve(out, bound);
	if (r)
		return r;
	c->def.next_in = (Bytef *)src;
	c->def.avail_in = len;
	c->def.next_out = out->p + out->len;
	c->def.avail_out = bound;
	if (deflate(&c->def, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	if (c->def.total_out >= len)
		return -EOVERFLOW;
	out->len += c->def.total_out;
	return 0;
}

size_t kl_frame_begin(struct xbuf *out)
{
	size_t start = out->len;

	if (xbuf_reserve(out, KL_FRAME_HDR) == 0)
		out->len += KL_FRAME_HDR;
	return start;
}

int kl_frame_seal(struct kl_codec *c, struct xbuf *out, size_t start, size_t threshold)
{
	size_t mlen, body = start + KL_FRAME_HDR;
	int r;

	if (out->len < body)
		return -ENOMEM;   /* kl_frame_begin could not reserve */
	mlen = out->len - body;
	if (mlen > KL_FRAME_MAX)
		return -EMSGSIZE;
	if (threshold && mlen >= threshold) {
		/*
		 * Compress from a copy: the source lives in the same buffer the
		 * output goes to, which gzip_into may reallocate.
		 */
		struct xbuf *tmp = &c->scratch;

		tmp->len = 0;
		r = xbuf_append(tmp, out->p + body, mlen);
		if (r)
			return r;
		out->len = body;
		r = gzip_into(c, out, tmp->p, mlen);
		if (r == 0) {
			c->compressed++;
			c->bytes_in += mlen;
			c->bytes_out += out->len - body;
			out->p[start] = 1;
			put_be32(out->p + start + 1, out->len - body);
			return 0;
		}
		if (r != -EOVERFLOW)
			return r;
		out->len = body;
		memcpy(out->p + body, tmp->p, mlen);
		out->len = body + mlen;
	}
	out->p[start] = 0;
	put_be32(out->p + start + 1, mlen);
	return 0;
}

int kl_frame_put(struct kl_codec *c, struct xbuf *out, const void *msg, size_t len,
		 size_t threshold)
{
	size_t start = out->len;
	int r;

	if (len > KL_FRAME_MAX)
		return -EMSGSIZE;
	r = xbuf_reserve(out, KL_FRAME_HDR + len);
	if (r)
		return r;
	out->len += KL_FRAME_HDR;
	memcpy(out->p + out->len, msg, len);
	out->len += len;
	r = kl_frame_seal(c, out, start, threshold);
	if (r)
		out->len = start;
	return r;
}

static int gunzip(struct kl_codec *c, const uint8_t *src, size_t len)
{
	int zr, r;

	if (!c->inf_ready) {
		if (inflateInit2(&c->inf, 15 + 16) != Z_OK)
			return -ENOMEM;
		c->inf_ready = true;
	} else {
		inflateReset(&c->inf);
	}
	c->scratch.len = 0;
	c->inf.next_in = (Bytef *)src;
	c->inf.avail_in = len;
	do {
		r = xbuf_reserve(&c->scratch, len * 2 + 256);
		if (r)
			return r;
		c->inf.next_out = c->scratch.p + c->scratch.len;
		c->inf.avail_out = c->scratch.cap - c->scratch.len;
		zr = inflate(&c->inf, Z_NO_FLUSH);
		c->scratch.len = c->scratch.cap - c->inf.avail_out;
		if (c->scratch.len > KL_FRAME_MAX)
			return -EMSGSIZE;   /* a gzip bomb is a wrong length too */
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -EILSEQ;
		if (zr == Z_BUF_ERROR && c->inf.avail_in == 0)
			return -EILSEQ;     /* input ended mid-stream */
	} while (1);
	if (c->inf.avail_in != 0)
		return -EILSEQ;             /* trailing bytes after the gzip member */
	return 0;
}

int kl_frame_next(struct kl_codec *c, const uint8_t *p, size_t len, const uint8_t **msg,
		  size_t *msg_len, size_t *used)
{
	uint32_t mlen;
	int r;

	if (len == 0)
		return -EAGAIN;
	if (len < KL_FRAME_HDR)
		return -EBADMSG;
	if (p[0] > 1)
		return -EPROTO;
	mlen = get_be32(p + 1);
	if (mlen > KL_FRAME_MAX)
		return -EMSGSIZE;
	if (len - KL_FRAME_HDR < mlen)
		return -EBADMSG;
	*used = KL_FRAME_HDR + mlen;
	if (p[0] == 0) {
		*msg = p + KL_FRAME_HDR;
		*msg_len = mlen;
		return 0;
	}
	r = gunzip(c, p + KL_FRAME_HDR, mlen);
	if (r)
		return r;
	*msg = c->scratch.p;
	*msg_len = c->scratch.len;
	return 0;
}
