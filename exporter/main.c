/* SPDX-License-Identifier: Apache-2.0 */
/* kl-exporter: flags, signals, wait. Everything else is in exporter.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kl-exporter [options]\n"
		"  --rings DIR            rings and stats areas (default /dev/shm/kloudlens)\n"
		"  --subscribe URL        nng pub address (default " KL_DEFAULT_SUB_URL ")\n"
		"  --admin URL            nng rep address (default " KL_DEFAULT_ADMIN_URL ")\n"
		"  --metrics URL          HTTP address (default " KL_DEFAULT_HTTP_URL ", '' = off)\n"
		"  --wal DIR              WAL directory (default " KL_DEFAULT_WAL_DIR ", '' = off)\n"
		"  --wal-fsync MODE       none | batch | interval (default interval)\n"
		"  --wal-fsync-ms N       interval for --wal-fsync interval (default 1000)\n"
		"  --wal-segment-mb N     segment size (default 64)\n"
		"  --wal-max-mb N         retention by size (default 1024)\n"
		"  --wal-max-age-s N      retention by age (default 86400, 0 = off)\n"
		"  --wal-compress         deflate WAL blocks\n"
		"  --compress-threshold N gzip frames of N bytes or more (default 1024, 0 = off)\n"
		"  --batch N              envelopes per message (default 256)\n"
		"  --observer             attach to rings as an observer (never hold producers back)\n"
		"  --no-stream-topics     publish sessions only (no kl.v1/<stream>/ topics)\n"
		"  --name NAME            consumer slot name (default kl-exporter)\n"
		"  --graphd URL           kl-graphd's socket for graph calls (default ipc://RINGS/kl-graphd.sock)\n"
		"  --baselined URL        kl-baselined's socket for baseline calls (default ipc://RINGS/kl-baselined.sock)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "rings", required_argument, 0, 'r' },
		{ "subscribe", required_argument, 0, 's' },
		{ "admin", required_argument, 0, 'a' },
		{ "metrics", required_argument, 0, 'm' },
		{ "wal", required_argument, 0, 'w' },
		{ "wal-fsync", required_argument, 0, 'F' },
		{ "wal-fsync-ms", required_argument, 0, 'I' },
		{ "wal-segment-mb", required_argument, 0, 'S' },
		{ "wal-max-mb", required_argument, 0, 'M' },
		{ "wal-max-age-s", required_argument, 0, 'A' },
		{ "wal-compress", no_argument, 0, 'Z' },
		{ "compress-threshold", required_argument, 0, 'c' },
		{ "batch", required_argument, 0, 'b' },
		{ "observer", no_argument, 0, 'o' },
		{ "no-stream-topics", no_argument, 0, 'T' },
		{ "name", required_argument, 0, 'n' },
		{ "graphd", required_argument, 0, 'G' },
		{ "baselined", required_argument, 0, 'B' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;
	struct kl_exporter *e;
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512] = "";
	int c, r;

	o.wal.max_age_s = 86400;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'r': o.rings_dir = optarg; break;
		case 's': o.sub_url = optarg; break;
		case 'a': o.admin_url = optarg; break;
		case 'm': o.http_url = optarg; break;
		case 'w': o.wal_dir = optarg; break;
		case 'F':
			if (!strcmp(optarg, "none")) o.wal.fsync = KL_WAL_FSYNC_NONE;
			else if (!strcmp(optarg, "batch")) o.wal.fsync = KL_WAL_FSYNC_BATCH;
			else if (!strcmp(optarg, "interval")) o.wal.fsync = KL_WAL_FSYNC_INTERVAL;
			else {
				fprintf(stderr, "kl-exporter: --wal-fsync: none, batch or interval\n");
				return 2;
			}
			break;
		case 'I': o.wal.fsync_interval_ms = strtoul(optarg, NULL, 10); break;
		case 'S': o.wal.segment_bytes = strtoull(optarg, NULL, 10) << 20; break;
		case 'M': o.wal.max_bytes = strtoull(optarg, NULL, 10) << 20; break;
		case 'A': o.wal.max_age_s = strtoull(optarg, NULL, 10); break;
		case 'Z': o.wal.compress = true; break;
		case 'c': o.compress_threshold = strtoul(optarg, NULL, 10); break;
		case 'b': o.batch_max = strtoul(optarg, NULL, 10); break;
		case 'o': o.observer = true; break;
		case 'T': o.no_stream_topics = true; break;
		case 'n': o.consumer_name = optarg; break;
		case 'G': o.graphd_url = optarg; break;
		case 'B': o.baselined_url = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	o.errbuf = err;
	o.errlen = sizeof(err);
	r = kl_exporter_create(&o, &e);
	if (r) {
		fprintf(stderr, "kl-exporter: %s\n", err[0] ? err : strerror(-r));
		return 1;
	}
	r = kl_exporter_start(e);
	if (r) {
		fprintf(stderr, "kl-exporter: threads: %s\n", strerror(-r));
		kl_exporter_destroy(e);
		return 1;
	}
	fprintf(stderr, "kl-exporter: serving rings in %s; subscribe %s, admin %s, metrics %s\n",
		o.rings_dir ? o.rings_dir : "/dev/shm/kloudlens", o.sub_url ? o.sub_url : KL_DEFAULT_SUB_URL,
		o.admin_url ? o.admin_url : KL_DEFAULT_ADMIN_URL, o.http_url ? o.http_url : KL_DEFAULT_HTTP_URL);
	while (!stop)
		pause();
	kl_exporter_destroy(e);
	return 0;
}
