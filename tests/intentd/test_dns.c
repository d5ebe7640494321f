/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DNS parser is a trust boundary (bytes off the network): well-formed
 * messages parse exactly; cut, looping, oversized and random messages are
 * rejected or parsed partially, never read out of bounds (run under ASan).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "intentd.h"

/* www.example.com A? response: CNAME to example.com, then two A records, with compression */
static const uint8_t resp[] = {
	0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0,
	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,
	/* CNAME -> example.com (pointer to offset 16) */
	0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x10,
	/* example.com A 93.184.216.34 */
	0xc0, 0x10, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34,
	/* AAAA 2001:db8::1 */
	0xc0, 0x10, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};

Test(dns, parses_response_with_compression)
{
	struct kl_dns_msg d;

	cr_assert_eq(kl_dns_parse(resp, sizeof(resp), false, &d), 0);
	cr_assert(d.response);
	cr_assert_eq(d.id, 0xabcd);
	cr_assert_eq(d.rcode, 0);
	cr_assert_eq(d.qtype, 1);
	cr_assert_str_eq(d.name, "www.example.com");
	cr_assert_eq(d.nanswers, 3);
	cr_assert_eq(d.naddrs, 2);
	cr_assert(!d.truncated);
	const char *a = d.answers;
	cr_assert_str_eq(a, "example.com");
	a += strlen(a) + 1;
	cr_assert_str_eq(a, "93.184.216.34");
	a += strlen(a) + 1;
	cr_assert_str_eq(a, "2001:db8::1");
}

Test(dns, tcp_length_prefix)
{
	uint8_t b[sizeof(resp) + 2];
	struct kl_dns_msg d;

	b[0] = 0;
	b[1] = sizeof(resp);
	memcpy(b + 2, resp, sizeof(resp));
	cr_assert_eq(kl_dns_parse(b, sizeof(b), true, &d), 0);
	cr_assert_str_eq(d.name, "www.example.com");
	cr_assert_eq(kl_dns_parse(b, 1, true, &d), -EBADMSG);
}

Test(dns, every_cut_is_safe)
{
	struct kl_dns_msg d;

	/* a cut inside the question is rejected; a cut inside the answers is partial */
	for (size_t n = 0; n < sizeof(resp); n++) {
		uint8_t *b = malloc(n ? n : 1);   /* exact size: ASan catches any overread */
		memcpy(b, resp, n);
		int r = kl_dns_parse(b, n, false, &d);
		if (n < 33)
			cr_assert_eq(r, -EBADMSG, "cut at %zu accepted", n);
		else
			cr_assert(r == 0 && d.truncated, "cut at %zu: r=%d truncated=%d", n, r, d.truncated);
		free(b);
	}
}

Test(dns, pointer_loops_and_bad_labels)
{
	struct kl_dns_msg d;
	uint8_t b[64] = { 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

	/* self pointer */
	b[12] = 0xc0;
	b[13] = 12;
	cr_assert_eq(kl_dns_parse(b, 18, false, &d), -EBADMSG);
	/* forward pointer */
	b[13] = 20;
	cr_assert_eq(kl_dns_parse(b, 30, false, &d), -EBADMSG);
	/* 0x40 label type */
	b[12] = 0x41;
	cr_assert_eq(kl_dns_parse(b, 30, false, &d), -EBADMSG);
	/* label longer than the message */
	b[12] = 60;
	cr_assert_eq(kl_dns_parse(b, 30, false, &d), -EBADMSG);
	/* no question */
	b[5] = 0;
	b[12] = 0;
	cr_assert_eq(kl_dns_parse(b, 17, false, &d), -EBADMSG);
	/* control bytes and dots inside a label are shown as '?' */
	uint8_t q[] = { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', '.', 0x01, 0, 0, 1, 0, 1 };
	cr_assert_eq(kl_dns_parse(q, sizeof(q), false, &d), 0);
	cr_assert_str_eq(d.name, "a??");
}

Test(dns, overlong_name_rejected)
{
	uint8_t b[600] = { 0, 1, 1, 0, 0, 1 };
	struct kl_dns_msg d;
	size_t o = 12;

	for (int i = 0; i < 8; i++) {
		b[o++] = 63;
		memset(b + o, 'x', 63);
		o += 63;
	}
	b[o++] = 0;
	o += 4;
	cr_assert_eq(kl_dns_parse(b, o, false, &d), -EBADMSG);
}

Test(dns, random_input_never_crashes)
{
	struct kl_dns_msg d;
	uint64_t x = 0x1234567887654321ull;

	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)(iter % 300);
		uint8_t *b = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[i] = (uint8_t)x;
		}
		/* half the inputs start from a real header so the walk goes deep */
		if (iter & 1 && n >= 12)
			memcpy(b, resp, 12);
		if (kl_dns_parse(b, n, iter % 3 == 0, &d) == 0) {
			cr_assert_lt(strlen(d.name), sizeof(d.name));
			cr_assert_leq(d.answers_len, sizeof(d.answers));
			cr_assert_leq(d.naddrs, KL_DNS_MAX_ADDRS);
		}
		free(b);
	}
}
