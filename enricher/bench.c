/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enricher-bench - events/s, ns/event and peak memory of the enrichment
 * engine on one core, over a stream with realistic process and fd churn
 * (generated, or a klrec recording with --file), against a pass-through
 * baseline that only copies each raw record into an output buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>

#include "../tests/common/benchstream.h"
#include "../tests/common/rawgen.h"
#include "enrich.h"

/*
 * Roughly what a busy web node looks like: long-lived servers doing
 * socket I/O and file reads, short-lived children (fork, exec, a few
 * opens, reads, exit) so pids get reused, containers coming and going.
 */
static void generate(struct stream *s, uint64_t target)
{
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
							  "/bin/sh", "sh\0-c\0/usr/bin/convert in.png out.jpg", sizeof("sh\0-c\0/usr/bin/convert in.png out.jpg"),
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

int main(int argc, char **argv)
{
	struct stream s = { 0 };
	const char *file = NULL;
	uint64_t n = 2000000;
	bool json = false;
	int reps = 3, c;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "events", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'f' }, { "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};

	while ((c = getopt_long(argc, argv, "jn:f:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'f': file = optarg; break;
		case 'r': reps = atoi(optarg); break;
		case 'h':
			puts("usage: enricher-bench [--json] [--events N] [--file RECORDING.klrec] [--reps R]");
			return 0;
		default:
			return 2;
		}
	}
	long rss0 = peak_kb();
	if (file ? load_file(&s, file, "enricher-bench", KL_REC_ENRICHED - 1) : (generate(&s, n), 0))
		return 1;
	if (!s.n) {
		fprintf(stderr, "enricher-bench: empty stream\n");
		return 1;
	}
	long rss_stream = peak_kb();
	static uint8_t out[1 << 17];
	double best_base = 1e18, best_en = 1e18;
	uint64_t out_bytes = 0;
	struct kl_enricher_stats st = { 0 };

	for (int rep = 0; rep < reps; rep++) {
		/* baseline: validate + copy into the output, what any pass-through stage pays */
		uint64_t t0 = now_ns(), sink = 0;
		for (size_t off = 0; off < s.len;) {
			uint32_t len;
			uint16_t type;
			memcpy(&len, s.buf + off, 4);
			memcpy(&type, s.buf + off + 4, 2);
			if (kl_rec_validate(type, s.buf + off + 8, len) == KL_REC_OK) {
				memcpy(out, s.buf + off + 8, len);
				sink += out[len - 1];
			}
			off += 8 + ((len + 7) & ~(size_t)7);
		}
		uint64_t t1 = now_ns();
		if ((double)(t1 - t0) < best_base)
			best_base = (double)(t1 - t0);
		if (sink == 42)
			puts("");

		struct kl_enricher *e;
		if (kl_enricher_new(NULL, &e))
			return 1;
		out_bytes = 0;
		t0 = now_ns();
		for (size_t off = 0; off < s.len;) {
			uint32_t len;
			uint16_t type;
			memcpy(&len, s.buf + off, 4);
			memcpy(&type, s.buf + off + 4, 2);
			long w = kl_enricher_process(e, type, s.buf + off + 8, len, out, sizeof(out));
			if (w > 0)
				out_bytes += (uint64_t)w;
			off += 8 + ((len + 7) & ~(size_t)7);
		}
		t1 = now_ns();
		if ((double)(t1 - t0) < best_en)
			best_en = (double)(t1 - t0);
		kl_enricher_stats(e, &st);
		kl_enricher_free(e);
	}
	long rss_peak = peak_kb();
	double eps = (double)s.n / (best_en / 1e9), base_eps = (double)s.n / (best_base / 1e9);
	double ns = best_en / (double)s.n;

	if (json) {
		printf("{\"bench\":\"enricher\",\"source\":\"%s\",\"events\":%llu,\"reps\":%d,"
		       "\"events_per_s\":%.0f,\"ns_per_event\":%.1f,\"baseline_events_per_s\":%.0f,"
		       "\"baseline_ns_per_event\":%.1f,\"cost_vs_baseline\":%.2f,\"bytes_out_per_event\":%.0f,"
		       "\"peak_rss_kb\":%ld,\"stream_rss_kb\":%ld,\"engine_rss_kb\":%ld,"
		       "\"procs_stub\":%llu,\"fd_resolved\":%llu,\"fd_unresolved\":%llu,\"target_events_per_s\":2000000}\n",
		       file ? file : "generated", (unsigned long long)s.n, reps, eps, ns, base_eps,
		       best_base / (double)s.n, best_en / best_base, (double)out_bytes / (double)s.n, rss_peak,
		       rss_stream - rss0, rss_peak - rss_stream, (unsigned long long)st.procs_stub,
		       (unsigned long long)st.fd_resolved, (unsigned long long)st.fd_unresolved);
	} else {
		printf("%-26s %14s %10s\n", "", "events/s", "ns/event");
		printf("%-26s %14.0f %10.1f\n", "pass-through (copy only)", base_eps, best_base / (double)s.n);
		printf("%-26s %14.0f %10.1f\n", "kl-enricher engine", eps, ns);
		printf("events %llu (%s), cost vs pass-through %.2fx, %.0f bytes out/event\n",
		       (unsigned long long)s.n, file ? file : "generated", best_en / best_base,
		       (double)out_bytes / (double)s.n);
		printf("peak RSS %ld KiB (stream %ld KiB, engine %ld KiB); fds resolved %llu, unresolved %llu\n",
		       rss_peak, rss_stream - rss0, rss_peak - rss_stream, (unsigned long long)st.fd_resolved,
		       (unsigned long long)st.fd_unresolved);
	}
	free(s.buf);
	return 0;
}
