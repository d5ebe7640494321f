/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webgen.h - the synthetic "busy web node" raw stream the stage
 * benchmarks replay (enricher-bench, intentd-bench): one generator, so
 * their figures are of the same traffic. Deterministic (benchstream.h's
 * rnd()): the same stream every run.
 */
#ifndef KLOUDLENS_TEST_WEBGEN_H
#define KLOUDLENS_TEST_WEBGEN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "benchstream.h"
#include "rawgen.h"

/* One DNS query or its response (A db.shop.svc -> 10.1.2.3), as cgroup_skb sees it. */
static inline size_t dns_pair(uint8_t *buf, size_t cap, const struct rg_task *t, uint64_t seq, uint64_t ts, bool resp)
{
	static const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, 'd', 'b', 4, 's', 'h', 'o',
				     'p', 3, 's', 'v', 'c', 0, 0, 1, 0, 1 };
	static const uint8_t a[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 1, 2, 3 };
	uint8_t msg[128];
	struct kl_dns d;
	struct kl_tail_builder b;
	size_t n = sizeof(q);

	memcpy(msg, q, sizeof(q));
	if (resp) {
		msg[2] = 0x81;
		msg[3] = 0x80;
		msg[7] = 1;
		memcpy(msg + n, a, sizeof(a));
		n += sizeof(a);
	}
	memset(&d, 0, sizeof(d));
	rg_event(&d.ev, t, seq, ts);
	d.direction = resp ? KL_DIR_INGRESS : KL_DIR_EGRESS;
	d.proto = IPPROTO_UDP;
	d.family = AF_INET;
	d.sport = resp ? 53 : 45000;
	d.dport = resp ? 45000 : 53;
	d.saddr[0] = d.daddr[0] = 10;
	d.msg_len = (uint32_t)n;
	memcpy(buf, &d, sizeof(d));
	kl_tail_init(&b, buf, sizeof(d), cap);
	kl_tail_add(&b, KL_F_DATA, msg, n);
	return kl_tail_finish(&b);
}

/*
 * Roughly what a busy web node looks like: long-lived servers doing
 * socket I/O and file reads, short-lived children (fork, exec, a few
 * opens, reads, exit) so pids get reused, containers coming and going.
 */
/*
 * @intent_extras: also a long-lived access log per server (folded in
 * windows, never closed) and a DNS lookup in 2 % of the iterations, which
 * the intent folding has to handle; the enricher's figures predate them.
 */
static inline void web_generate(struct stream *s, uint64_t target, bool intent_extras)
{
	static const char child_argv[] = "sh\0-c\0/usr/bin/convert in.png out.jpg\0";
	uint8_t rec[2048];
	uint64_t ts = 1000000000ull;
	uint32_t next_pid = 1000;
	static const char *paths[] = { "/etc/passwd", "/var/www/index.html", "/usr/lib/x86_64-linux-gnu/libc.so.6",
				       "/tmp/upload.bin", "conf/app.yaml", "../data/cache.db", "/proc/self/status" };
	struct rg_task servers[16];
	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_CONTAINERD, .id = "0123456789abcdef",
			      .name = "web", .image = "registry.local/web:1.4", .pod = "web-7d4b9c-abcde",
			      .pod_ns = "shop", .pod_uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427" };

	for (int i = 0; i < 16; i++) {
		ctr.cgroup_id = 5000 + (uint64_t)i;
		ctr.mnt_ns = 4026532000u + (uint32_t)i;
		ctr.init_pid = 100 + (uint32_t)i;
		push(s, KL_REC_CONTAINER, rec, rg_container(rec, sizeof(rec), ++s->seq, ts, &ctr));
		servers[i] = (struct rg_task){ .pid = 100 + (uint32_t)i, .ppid = 1, .start_ns = ts,
					       .cgroup_id = 5000 + (uint64_t)i, .mnt_ns = 4026532000u + (uint32_t)i,
					       .comm = "server" };
		push(s, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), &servers[i], ++s->seq, ts, KL_PROC_SNAPSHOT,
						  NULL, "/usr/bin/server", "server\0--port\08080\0", 19, "/srv", 0));
		struct rg_sc c = { .nr = 41, .ret = 3, .args = { AF_INET, SOCK_STREAM } };
		push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), &servers[i], ++s->seq, ts, &c));
		if (!intent_extras)
			continue;
		/* a long-lived access log: folded in windows, never closed */
		c = (struct rg_sc){ .nr = 2, .ret = 7, .args = { 0, 02101 }, .path = "/var/log/access.log" };
		push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), &servers[i], ++s->seq, ts, &c));
	}
	struct sockaddr_in peer = rg_sin("10.1.2.3", 5432), client = rg_sin("172.16.0.9", 40000);
	while (s->n < target) {
		ts += 1000;
		struct rg_task *srv = &servers[rnd() % 16];
		uint64_t r = rnd() % 100;
		if (r < 60) {
			/* request: accept, read, open+read+close a file, write, close */
			struct rg_sc c = { .nr = 288, .ret = 4, .args = { 3 }, .sa2 = &client, .sa2len = sizeof(client) };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 0, .ret = 512, .args = { 4 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 257, .ret = 5, .args = { (uint64_t)-100 }, .path = paths[rnd() % 7] };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 0, .ret = 4096, .args = { 5 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 3, .ret = 0, .args = { 5 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 1, .ret = 2048, .args = { 4 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 3, .ret = 0, .args = { 4 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			if (intent_extras) {
				c = (struct rg_sc){ .nr = 1, .ret = 120, .args = { 7 } };
				push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			}
		} else if (intent_extras && r >= 85 && r < 87) {
			/* a DNS lookup: query and response */
			push(s, KL_REC_DNS, rec, dns_pair(rec, sizeof(rec), srv, ++s->seq, ts, false));
			push(s, KL_REC_DNS, rec, dns_pair(rec, sizeof(rec), srv, ++s->seq, ts + 500, true));
		} else if (r < 85) {
			/* backend call */
			struct rg_sc c = { .nr = 41, .ret = 6, .args = { AF_INET, SOCK_STREAM } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 42, .ret = 0, .args = { 6 }, .sa = &peer, .salen = sizeof(peer) };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 44, .ret = 100, .args = { 6 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 45, .ret = 300, .args = { 6 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
			c = (struct rg_sc){ .nr = 3, .ret = 0, .args = { 6 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), srv, ++s->seq, ts, &c));
		} else {
			/* a short-lived child: fork, exec, open/read/close, exit (pids wrap: reuse) */
			struct rg_task ch = { .pid = next_pid, .ppid = srv->pid, .start_ns = ts,
					      .cgroup_id = srv->cgroup_id, .mnt_ns = srv->mnt_ns, .comm = "sh" };
			next_pid = next_pid >= 30000 ? 1000 : next_pid + 1;
			push(s, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), &ch, ++s->seq, ts, KL_PROC_FORK, srv, NULL,
							  NULL, 0, NULL, 0));
			push(s, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), &ch, ++s->seq, ts + 10, KL_PROC_EXEC, NULL,
							  "/bin/sh", child_argv, sizeof(child_argv) - 1,
							  NULL, 0));
			struct rg_sc c = { .nr = 2, .ret = 3, .path = paths[rnd() % 7] };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), &ch, ++s->seq, ts + 20, &c));
			c = (struct rg_sc){ .nr = 0, .ret = 100, .args = { 3 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), &ch, ++s->seq, ts + 30, &c));
			c = (struct rg_sc){ .nr = 3, .ret = 0, .args = { 3 } };
			push(s, KL_REC_SYSCALL, rec, rg_syscall(rec, sizeof(rec), &ch, ++s->seq, ts + 40, &c));
			push(s, KL_REC_PROC, rec, rg_proc(rec, sizeof(rec), &ch, ++s->seq, ts + 50, KL_PROC_EXIT, NULL, NULL,
							  NULL, 0, NULL, 0));
		}
	}
}

#endif
