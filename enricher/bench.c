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
#include "../tests/common/webgen.h"
#include "enrich.h"

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
	if (file ? load_file(&s, file, "enricher-bench", KL_REC_ENRICHED - 1) : (web_generate(&s, n, false), 0))
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
