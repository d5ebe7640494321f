/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns.c - a bounds-checked DNS message parser (RFC 1035 wire format).
 * Input comes off the network via cgroup_skb and may be cut, corrupt or
 * hostile: every read is checked against the message length, compression
 * pointers are followed a bounded number of times (a pointer loop ends
 * the walk, not the process), and output buffers are never overrun.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "intentd.h"

#define MAX_JUMPS 16

static int rd16(const uint8_t *m, size_t len, size_t off, uint16_t *v)
{
	if (off > len || len - off < 2)
		return -EBADMSG;
	*v = (uint16_t)((m[off] << 8) | m[off + 1]);
	return 0;
}

/*
 * Decode the name at @off into dotted form in @out (@cap bytes, always
 * NUL-terminated). *next is the offset just past the name where it sits
 * (not where a pointer led). Return: 0 or -EBADMSG.
 */
static int read_name(const uint8_t *m, size_t len, size_t off, char *out, size_t cap, size_t *next)
{
	size_t o = 0, pos = off;
	int jumps = 0;
	bool jumped = false;

	if (cap == 0)
		return -EBADMSG;
	out[0] = 0;
	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > MAX_JUMPS)
				return -EBADMSG;
			size_t target = ((size_t)(l & 0x3f) << 8) | m[pos + 1];
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			/* a pointer must go backwards: forward or self pointers are how loops are built */
			if (target >= pos)
				return -EBADMSG;
			pos = target;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG;   /* 0x40/0x80: extended label types, obsolete */
		if (l == 0) {
			if (!jumped)
				*next = pos + 1;
			break;
		}
		if (len - pos - 1 < l)
			return -EBADMSG;
		/* 253 is the longest textual name; anything longer is malformed */
		if (o + (o ? 1 : 0) + l >= cap || o + l > 253)
			return -EBADMSG;
		if (o)
			out[o++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = m[pos + 1 + i];
			/* keep the name printable and unambiguous: a '.' inside a label or a
			 * control byte would make two different names print the same */
			out[o++] = (char)((c < 0x21 || c > 0x7e || c == '.') ? '?' : c);
		}
		pos += 1 + (size_t)l;
	}
	out[o] = 0;
	return 0;
}

static void add_answer(struct kl_dns_msg *d, const char *s)
{
	size_t l = strlen(s);

	if (d->answers_len + l + 1 > sizeof(d->answers)) {
		d->truncated = true;
		return;
	}
	memcpy(d->answers + d->answers_len, s, l + 1);
	d->answers_len += l + 1;
}

int kl_dns_parse(const uint8_t *m, size_t len, bool tcp, struct kl_dns_msg *d)
{
	uint16_t qd, an;
	size_t off;

	memset(d, 0, sizeof(*d));
	if (tcp) {
		/* RFC 1035 4.2.2: two-byte length prefix on TCP */
		if (len < 2)
			return -EBADMSG;
		m += 2;
		len -= 2;
	}
	if (len < 12)
		return -EBADMSG;
	d->id = (uint16_t)((m[0] << 8) | m[1]);
	d->flags = (uint16_t)((m[2] << 8) | m[3]);
	d->response = (d->flags & 0x8000) != 0;
	d->rcode = d->flags & 0xf;
	qd = (uint16_t)((m[4] << 8) | m[5]);
	an = (uint16_t)((m[6] << 8) | m[7]);
	/* authority and additional sections (m[8..11]) carry nothing we report */
	d->ancount = an;
	off = 12;
	if (qd == 0)
		return -EBADMSG;   /* every query and response we care about has a question */
	if (read_name(m, len, off, d->name, sizeof(d->name), &off))
		return -EBADMSG;
	if (rd16(m, len, off, &d->qtype) || rd16(m, len, off + 2, &d->qclass))
		return -EBADMSG;
	off += 4;
	/* further questions (never seen in practice) are skipped */
	for (uint16_t i = 1; i < qd; i++) {
		char skip[256];
		if (read_name(m, len, off, skip, sizeof(skip), &off) || off > len || len - off < 4)
			return -EBADMSG;
		off += 4;
	}
	for (uint16_t i = 0; i < an; i++) {
		char owner[256], txt[256];
		uint16_t type, rdlen;
		if (read_name(m, len, off, owner, sizeof(owner), &off))
			goto partial;
		if (rd16(m, len, off, &type) || rd16(m, len, off + 8, &rdlen))
			goto partial;
		off += 10;
		if (off > len || len - off < rdlen)
			goto partial;
		d->nanswers++;
		if (type == 1 && rdlen == 4) {
			inet_ntop(AF_INET, m + off, txt, sizeof(txt));
			add_answer(d, txt);
			if (d->naddrs < KL_DNS_MAX_ADDRS) {
				d->addrs[d->naddrs].family = AF_INET;
				memset(d->addrs[d->naddrs].addr, 0, 16);
				memcpy(d->addrs[d->naddrs].addr, m + off, 4);
				d->naddrs++;
			}
		} else if (type == 28 && rdlen == 16) {
			inet_ntop(AF_INET6, m + off, txt, sizeof(txt));
			add_answer(d, txt);
			if (d->naddrs < KL_DNS_MAX_ADDRS) {
				d->addrs[d->naddrs].family = AF_INET6;
				memcpy(d->addrs[d->naddrs].addr, m + off, 16);
				d->naddrs++;
			}
		} else if (type == 5 || type == 12) {
			size_t dummy;
			/* CNAME/PTR target: must lie inside its rdata */
			if (read_name(m, off + rdlen, off, txt, sizeof(txt), &dummy) == 0)
				add_answer(d, txt);
		}
		off += rdlen;
	}
	return 0;
partial:
	/* a cut response (the skb copy is bounded) still has a useful question */
	d->truncated = true;
	return 0;
}
