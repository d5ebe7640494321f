/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gen.h - build intent and enriched-syscall records directly, for the
 * golden tests and baselined-bench (header-only, deterministic).
 */
#ifndef KL_BASELINED_GEN_H
#define KL_BASELINED_GEN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <kloudlens/recutil.h>

struct gen_ctx {
	const char *exe, *parent_exe, *ctr_id, *ctr_name, *image, *pod, *pod_ns, *pod_uid;
	uint32_t pid, uid;
	uint64_t start_ns;
};

struct gen_rec {
	uint16_t type;
	size_t len;
	uint8_t buf[2048];
};

static inline void gen_ctx_tail(struct kl_tail_builder *b, const struct gen_ctx *c)
{
	kl_tail_add_str(b, KL_F_NODE, "node-1");
	if (c->exe)
		kl_tail_add_str(b, KL_F_EXE, c->exe);
	if (c->parent_exe)
		kl_tail_add_str(b, KL_F_PARENT_EXE, c->parent_exe);
	if (c->ctr_id)
		kl_tail_add_str(b, KL_F_CONTAINER_ID, c->ctr_id);
	if (c->ctr_name)
		kl_tail_add_str(b, KL_F_CONTAINER_NAME, c->ctr_name);
	if (c->image)
		kl_tail_add_str(b, KL_F_IMAGE, c->image);
	if (c->pod)
		kl_tail_add_str(b, KL_F_POD_NAME, c->pod);
	if (c->pod_ns)
		kl_tail_add_str(b, KL_F_POD_NAMESPACE, c->pod_ns);
	if (c->pod_uid)
		kl_tail_add_str(b, KL_F_POD_UID, c->pod_uid);
}

/* One intent of @kind at @ts. @path: path or DNS name; @peer: "a.b.c.d:port" for network kinds. */
static inline void gen_intent(struct gen_rec *r, const struct gen_ctx *c, uint64_t seq, uint64_t ts,
			      uint16_t kind, uint32_t iflags, uint32_t dflags, const char *path,
			      const char *peer, uint16_t op, uint64_t arg0)
{
	struct kl_intent in;
	struct kl_tail_builder b;

	memset(&in, 0, sizeof(in));
	in.ev.seq = seq;
	in.ev.ts_ns = ts;
	in.ev.pid = c->pid;
	in.ev.tid = c->pid;
	in.ev.uid = c->uid;
	in.ev.start_ns = c->start_ns;
	in.kind = kind;
	in.iflags = iflags;
	in.dflags = dflags;
	in.op = op;
	in.first_seq = seq * 10;
	in.last_seq = seq * 10 + 3;
	in.count = 4;
	in.first_ts = in.last_ts = ts;
	in.result = iflags & KL_IN_FAILED ? -13 : 0;
	in.arg[0] = arg0;
	if (kind == KL_INTENT_NETWORK_EXCHANGE || kind == KL_INTENT_NETWORK_LISTEN) {
		in.arg[0] = AF_INET;
		in.arg[1] = arg0 ? arg0 : SOCK_STREAM;
	}
	memcpy(r->buf, &in, sizeof(in));
	kl_tail_init(&b, r->buf, sizeof(in), sizeof(r->buf));
	gen_ctx_tail(&b, c);
	if (path && kind == KL_INTENT_DNS_QUERY)
		kl_tail_add_str(&b, KL_F_DNS_NAME, path);
	else if (path)
		kl_tail_add_str(&b, KL_F_PATH, path);
	if (peer) {
		char a[64];
		const char *colon = strrchr(peer, ':');
		struct sockaddr_in sa = { .sin_family = AF_INET };
		snprintf(a, sizeof(a), "%.*s", (int)(colon - peer), peer);
		inet_pton(AF_INET, a, &sa.sin_addr);
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (kind == KL_INTENT_NETWORK_LISTEN || (iflags & KL_IN_ACCEPT))
			kl_tail_add(&b, KL_F_LOCAL_ADDR, &sa, sizeof(sa));
		else
			kl_tail_add(&b, KL_F_PEER_ADDR, &sa, sizeof(sa));
	}
	r->type = KL_REC_INTENT;
	r->len = kl_tail_finish(&b);
}

/* An enriched record embedding a syscall @nr returning @ret. */
static inline void gen_syscall(struct gen_rec *r, const struct gen_ctx *c, uint64_t seq, uint64_t ts,
			       uint32_t nr, int64_t ret)
{
	struct kl_enriched en;
	struct kl_syscall sc;
	struct kl_tail_builder b;
	size_t span = (sizeof(sc) + 7) & ~(size_t)7;

	memset(&sc, 0, sizeof(sc));
	sc.ev.seq = seq;
	sc.ev.ts_ns = ts;
	sc.ev.pid = c->pid;
	sc.ev.uid = c->uid;
	sc.ev.start_ns = c->start_ns;
	sc.nr = nr;
	sc.ret = ret;
	memset(&en, 0, sizeof(en));
	en.ev = sc.ev;
	en.raw_type = KL_REC_SYSCALL;
	en.raw_len = sizeof(sc);
	memcpy(r->buf, &en, sizeof(en));
	memcpy(r->buf + sizeof(en), &sc, sizeof(sc));
	kl_tail_init(&b, r->buf, sizeof(en), sizeof(r->buf));
	b.len = sizeof(en) + span;
	gen_ctx_tail(&b, c);
	r->type = KL_REC_ENRICHED;
	r->len = kl_tail_finish(&b);
}

#endif
