/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "frame.h"

static struct kl_codec enc, dec;

static void setup(void)
{
	kl_codec_init(&enc, 0);
	kl_codec_init(&dec, 0);
}

static void teardown(void)
{
	kl_codec_fini(&enc);
	kl_codec_fini(&dec);
}

TestSuite(frame, .init = setup, .fini = teardown);

static void round_trip(const uint8_t *msg, size_t len, size_t threshold, int want_flag)
{
	struct xbuf b = { 0 };
	const uint8_t *out;
	size_t olen, used;

	cr_assert_eq(kl_frame_put(&enc, &b, msg, len, threshold), 0);
	cr_assert_eq(b.p[0], want_flag, "len %zu threshold %zu: flag %d", len, threshold, b.p[0]);
	cr_assert_eq(kl_frame_next(&dec, b.p, b.len, &out, &olen, &used), 0);
	cr_assert_eq(used, b.len);
	cr_assert_eq(olen, len);
	if (len)
		cr_assert_eq(memcmp(out, msg, len), 0);
	xbuf_free(&b);
}

Test(frame, round_trips)
{
	size_t sizes[] = { 0, 1, 5, 1023, 1024, 1025, 65536, 1 << 20 };
	uint8_t *zeros = calloc(1, 1 << 20), *rnd = malloc(1 << 20);

	for (size_t i = 0; i < (1 << 20); i++)
		rnd[i] = (uint8_t)(rand() >> 7);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip(zeros, sizes[i], 0, 0);
		/* compressible and at/above threshold: gzip'ed */
		round_trip(zeros, sizes[i], 1024, sizes[i] >= 1024);
		/* incompressible: sent plain even above the threshold */
		round_trip(rnd, sizes[i], 1024, 0);
	}
	free(zeros);
	free(rnd);
}

Test(frame, header_layout_is_grpc)
{
	struct xbuf b = { 0 };

	cr_assert_eq(kl_frame_put(&enc, &b, "abc", 3, 0), 0);
	cr_assert_eq(b.len, 8);
	cr_assert_eq(memcmp(b.p, "\0\0\0\0\3abc", 8), 0);
	xbuf_free(&b);
}

Test(frame, gzip_body_is_standard_gzip)
{
	struct xbuf b = { 0 };
	char msg[4096];

	memset(msg, 'x', sizeof(msg));
	cr_assert_eq(kl_frame_put(&enc, &b, msg, sizeof(msg), 100), 0);
	cr_assert_eq(b.p[0], 1);
	/* gzip magic right after the 5-byte prefix */
	cr_assert_eq(b.p[5], 0x1f);
	cr_assert_eq(b.p[6], 0x8b);
	xbuf_free(&b);
}

Test(frame, several_frames_back_to_back)
{
	struct xbuf b = { 0 };
	const uint8_t *out, *p;
	size_t olen, used, left;
	int n = 0;
	char big[3000];

	memset(big, 'q', sizeof(big));
	kl_frame_put(&enc, &b, "one", 3, 1024);
	kl_frame_put(&enc, &b, big, sizeof(big), 1024);
	kl_frame_put(&enc, &b, "", 0, 1024);
	p = b.p;
	left = b.len;
	while (kl_frame_next(&dec, p, left, &out, &olen, &used) == 0) {
		if (n == 1)
			cr_assert_eq(olen, sizeof(big));
		p += used;
		left -= used;
		n++;
	}
	cr_assert_eq(n, 3);
	cr_assert_eq(left, 0);
	xbuf_free(&b);
}

Test(frame, broken_inputs)
{
	const uint8_t *out;
	size_t olen, used;
	uint8_t hdr_only[5] = { 0, 0, 0, 0, 10 };
	uint8_t short_hdr[3] = { 0, 0, 0 };
	uint8_t bad_flag[6] = { 2, 0, 0, 0, 1, 'x' };
	uint8_t huge[5] = { 0, 0xff, 0xff, 0xff, 0xff };
	uint8_t not_gzip[9] = { 1, 0, 0, 0, 4, 'j', 'u', 'n', 'k' };

	cr_assert_eq(kl_frame_next(&dec, hdr_only, 0, &out, &olen, &used), -EAGAIN);
	cr_assert_eq(kl_frame_next(&dec, short_hdr, sizeof(short_hdr), &out, &olen, &used), -EBADMSG);
	cr_assert_eq(kl_frame_next(&dec, hdr_only, sizeof(hdr_only), &out, &olen, &used), -EBADMSG);
	cr_assert_eq(kl_frame_next(&dec, bad_flag, sizeof(bad_flag), &out, &olen, &used), -EPROTO);
	cr_assert_eq(kl_frame_next(&dec, huge, sizeof(huge), &out, &olen, &used), -EMSGSIZE);
	cr_assert_eq(kl_frame_next(&dec, not_gzip, sizeof(not_gzip), &out, &olen, &used), -EILSEQ);
}

Test(frame, truncated_and_trailing_gzip)
{
	struct xbuf b = { 0 }, t = { 0 };
	const uint8_t *out;
	size_t olen, used;
	char msg[4096];

	memset(msg, 'z', sizeof(msg));
	kl_frame_put(&enc, &b, msg, sizeof(msg), 1);
	cr_assert_eq(b.p[0], 1);
	/* gzip cut short, but the frame length agrees: invalid gzip */
	for (size_t cut = 1; cut < b.len - 5; cut += 3) {
		uint32_t n = b.len - 5 - cut;

		t.len = 0;
		xbuf_append(&t, b.p, b.len - cut);
		t.p[1] = n >> 24;
		t.p[2] = n >> 16;
		t.p[3] = n >> 8;
		t.p[4] = n;
		cr_assert_eq(kl_frame_next(&dec, t.p, t.len, &out, &olen, &used), -EILSEQ, "cut %zu", cut);
	}
	/* trailing junk inside the frame after the gzip member */
	t.len = 0;
	xbuf_append(&t, b.p, b.len);
	xbuf_append(&t, "JUNK", 4);
	{
		uint32_t n = b.len - 5 + 4;

		t.p[1] = n >> 24;
		t.p[2] = n >> 16;
		t.p[3] = n >> 8;
		t.p[4] = n;
	}
	cr_assert_eq(kl_frame_next(&dec, t.p, t.len, &out, &olen, &used), -EILSEQ);
	xbuf_free(&b);
	xbuf_free(&t);
}

Test(frame, gzip_bomb_is_rejected)
{
	struct xbuf b = { 0 };
	const uint8_t *out;
	size_t olen, used, big = KL_FRAME_MAX + 4096;
	char *msg = calloc(1, big);
	z_stream z = { 0 };
	uint8_t *gz = malloc(big);

	/* craft a gzip member that inflates beyond KL_FRAME_MAX */
	deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)msg;
	z.avail_in = big;
	z.next_out = gz;
	z.avail_out = big;
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	xbuf_reserve(&b, 5 + z.total_out);
	b.p[0] = 1;
	b.p[1] = z.total_out >> 24;
	b.p[2] = z.total_out >> 16;
	b.p[3] = z.total_out >> 8;
	b.p[4] = z.total_out;
	memcpy(b.p + 5, gz, z.total_out);
	b.len = 5 + z.total_out;
	cr_assert_eq(kl_frame_next(&dec, b.p, b.len, &out, &olen, &used), -EMSGSIZE);
	deflateEnd(&z);
	free(gz);
	free(msg);
	xbuf_free(&b);
}

Test(frame, random_garbage_never_crashes)
{
	uint8_t buf[256];
	const uint8_t *out;
	size_t olen, used;

	srand(42);
	for (int i = 0; i < 20000; i++) {
		size_t len = rand() % sizeof(buf);

		for (size_t k = 0; k < len; k++)
			buf[k] = rand();
		if (len && rand() % 2)
			buf[0] = rand() % 2;
		if (len >= 5 && rand() % 2) {
			buf[1] = buf[2] = 0;
			buf[3] = 0;
			buf[4] = rand() % 255;
		}
		(void)kl_frame_next(&dec, buf, len, &out, &olen, &used);
	}
}
