/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intentd-bench - events/s in, intents/s out, ns/event and peak memory of
 * the intent engine on one core, over an enriched stream with realistic
 * process, fd and socket churn (generated raw records run through the
 * real enricher engine once, untimed; or a klrec recording with --file,
 * raw or enriched), against a pass-through baseline in the same run that
 * validates and copies each enriched record.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
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
#include "intentd.h"

/* The generated raw stream as a klrec recording, so --file can replay it elsewhere. */
static int save_stream(const struct stream *raw, const char *path)
{
	struct kl_recfile_writer *w = NULL;
	int err = kl_recw_open(path, "raw", true, &w);

	for (size_t off = 0; !err && off < raw->len;) {
		uint32_t len;
		uint16_t type;
		memcpy(&len, raw->buf + off, 4);
		memcpy(&type, raw->buf + off + 4, 2);
		err = kl_recw_add(w, type, 0, 0, raw->buf + off + 8, len);
		off += 8 + ((len + 7) & ~(size_t)7);
	}
	if (w) {
		int e2 = kl_recw_close(w);
		err = err ? err : e2;
	}
	if (err)
		fprintf(stderr, "intentd-bench: save %s: %s\n", path, strerror(-err));
	return err;
}

/* Raw records -> enriched records (untimed: the enricher has its own bench). */
static int enrich_stream(const struct stream *raw, struct stream *out)
{
	static uint8_t buf[1 << 17];
	struct kl_enricher *e;

	if (kl_enricher_new(NULL, &e))
		return -1;
	for (size_t off = 0; off < raw->len;) {
		uint32_t len;
		uint16_t type;
		memcpy(&len, raw->buf + off, 4);
		memcpy(&type, raw->buf + off + 4, 2);
		if (type == KL_REC_ENRICHED) {
			push(out, type, raw->buf + off + 8, len);
		} else {
			long w = kl_enricher_process(e, type, raw->buf + off + 8, len, buf, sizeof(buf));
			if (w > 0)
				push(out, KL_REC_ENRICHED, buf, (size_t)w);
		}
		off += 8 + ((len + 7) & ~(size_t)7);
	}
	kl_enricher_free(e);
	return 0;
}

struct sink {
	uint8_t buf[1 << 16];
	uint64_t n, bytes;
};

/* What the daemon does with an intent: copy it into the ring. */
static int sink_emit(void *ctx, const void *rec, size_t len)
{
	struct sink *k = ctx;
	if (len <= sizeof(k->buf))
		memcpy(k->buf, rec, len);
	k->n++;
	k->bytes += len;
	return 0;
}

int main(int argc, char **argv)
{
	struct stream raw = { 0 }, s = { 0 };
	const char *file = NULL;
	uint64_t n = 2000000;
	bool json = false;
	int reps = 3, c;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "events", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'f' }, { "reps", required_argument, NULL, 'r' },
		{ "save", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *save = NULL;

	while ((c = getopt_long(argc, argv, "jn:f:r:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'f': file = optarg; break;
		case 'r': reps = atoi(optarg); break;
		case 's': save = optarg; break;
		case 'h':
			puts("usage: intentd-bench [--json] [--events N] [--file RECORDING.klrec] [--reps R]\n"
			     "                     [--save RECORDING.klrec (write the generated raw stream)]");
			return 0;
		default:
			return 2;
		}
	}
	if (file ? load_file(&raw, file, "intentd-bench", KL_REC_ENRICHED) : (web_generate(&raw, n, true), 0))
		return 1;
	if (save && save_stream(&raw, save))
		return 1;
	if (enrich_stream(&raw, &s) || !s.n) {
		fprintf(stderr, "intentd-bench: empty stream\n");
		return 1;
	}
	free(raw.buf);
	raw.buf = NULL;
	long rss_stream = peak_kb();
	static uint8_t out[1 << 17];
	static struct sink sink;
	double best_base = 1e18, best = 1e18;
	struct kl_intentd_stats st = { 0 };
	uint64_t intents = 0, out_bytes = 0;
	long engine_kb = 0;

	/* warm-up: fault the replayed stream in, so the first timed pass is not charged for it */
	{
		volatile uint8_t sink8 = 0;
		for (size_t off = 0; off < s.len; off += 4096)
			sink8 ^= s.buf[off];
		(void)sink8;
	}
	for (int rep = 0; rep < reps; rep++) {
		/* baseline: validate + copy into the output, what any pass-through stage pays */
		uint64_t t0 = now_ns(), sum = 0;
		for (size_t off = 0; off < s.len;) {
			uint32_t len;
			uint16_t type;
			memcpy(&len, s.buf + off, 4);
			memcpy(&type, s.buf + off + 4, 2);
			if (kl_rec_validate(type, s.buf + off + 8, len) == KL_REC_OK) {
				memcpy(out, s.buf + off + 8, len);
				sum += out[len - 1];
			}
			off += 8 + ((len + 7) & ~(size_t)7);
		}
		uint64_t t1 = now_ns();
		if ((double)(t1 - t0) < best_base)
			best_base = (double)(t1 - t0);
		if (sum == 42)
			puts("");

		struct kl_intentd *e;
		struct kl_intentd_opts o = { .node = "bench-node" };
		if (kl_intentd_new(&o, sink_emit, &sink, &e))
			return 1;
		sink.n = sink.bytes = 0;
		t0 = now_ns();
		for (size_t off = 0; off < s.len;) {
			uint32_t len;
			uint16_t type;
			memcpy(&len, s.buf + off, 4);
			memcpy(&type, s.buf + off + 4, 2);
			kl_intentd_process(e, type, s.buf + off + 8, len);
			off += 8 + ((len + 7) & ~(size_t)7);
		}
		t1 = now_ns();
		if ((double)(t1 - t0) < best)
			best = (double)(t1 - t0);
		kl_intentd_stats(e, &st);
		intents = sink.n;
		out_bytes = sink.bytes;
		kl_intentd_free(e);
	}
	/* Engine memory: peak heap in use during one more (untimed) pass, sampled. */
	{
		struct kl_intentd *e;
		struct kl_intentd_opts o = { .node = "bench-node" };
		size_t base = mallinfo2().uordblks, peak = 0, i = 0;
		if (kl_intentd_new(&o, sink_emit, &sink, &e))
			return 1;
		for (size_t off = 0; off < s.len; i++) {
			uint32_t len;
			uint16_t type;
			memcpy(&len, s.buf + off, 4);
			memcpy(&type, s.buf + off + 4, 2);
			kl_intentd_process(e, type, s.buf + off + 8, len);
			off += 8 + ((len + 7) & ~(size_t)7);
			if ((i & 4095) == 0 && mallinfo2().uordblks - base > peak)
				peak = mallinfo2().uordblks - base;
		}
		engine_kb = (long)(peak / 1024);
		kl_intentd_free(e);
	}
	long rss_peak = peak_kb();
	double eps = (double)s.n / (best / 1e9), base_eps = (double)s.n / (best_base / 1e9);
	double ips = (double)intents / (best / 1e9);
	double ns = best / (double)s.n;

	if (json) {
		printf("{\"bench\":\"intentd\",\"source\":\"%s\",\"events\":%llu,\"reps\":%d,"
		       "\"events_per_s\":%.0f,\"intents_per_s\":%.0f,\"intents\":%llu,\"ns_per_event\":%.1f,"
		       "\"baseline_events_per_s\":%.0f,\"baseline_ns_per_event\":%.1f,\"cost_vs_baseline\":%.2f,"
		       "\"events_per_intent\":%.2f,\"bytes_per_intent\":%.0f,\"peak_rss_kb\":%ld,"
		       "\"stream_rss_kb\":%ld,\"engine_heap_peak_kb\":%ld,\"procs\":%llu,\"open\":%llu,"
		       "\"target_events_per_s\":2000000}\n",
		       file ? file : "generated", (unsigned long long)s.n, reps, eps, ips,
		       (unsigned long long)intents, ns, base_eps, best_base / (double)s.n, best / best_base,
		       intents ? (double)s.n / (double)intents : 0.0,
		       intents ? (double)out_bytes / (double)intents : 0.0, rss_peak, rss_stream, engine_kb,
		       (unsigned long long)st.procs, (unsigned long long)st.open);
	} else {
		printf("%-28s %14s %14s %10s\n", "", "events/s in", "intents/s out", "ns/event");
		printf("%-28s %14.0f %14s %10.1f\n", "pass-through (validate+copy)", base_eps, "-",
		       best_base / (double)s.n);
		printf("%-28s %14.0f %14.0f %10.1f\n", "kl-intentd engine", eps, ips, ns);
		printf("events %llu (%s, enriched), intents %llu (%.1f events/intent, %.0f bytes/intent), "
		       "cost vs pass-through %.2fx\n",
		       (unsigned long long)s.n, file ? file : "generated", (unsigned long long)intents,
		       intents ? (double)s.n / (double)intents : 0.0,
		       intents ? (double)out_bytes / (double)intents : 0.0, best / best_base);
		printf("peak RSS %ld KiB (mostly the replayed stream: %ld KiB); engine heap peak %ld KiB; "
		       "at end: %llu processes, %llu open\n",
		       rss_peak, rss_stream, engine_kb, (unsigned long long)st.procs, (unsigned long long)st.open);
		static const char *const kinds[] = { "", "ProcessStart", "ProcessExit", "FileAccess", "FileMetaChange",
						     "NetworkExchange", "NetworkListen", "DNSQuery" };
		printf("intents by kind:");
		for (int k = 1; k < 8; k++)
			printf(" %s %llu", kinds[k], (unsigned long long)st.by_kind[k]);
		printf("; DNS-linked connections %llu\n", (unsigned long long)st.dns_linked);
	}
	free(s.buf);
	return 0;
}
