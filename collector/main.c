/* SPDX-License-Identifier: Apache-2.0 */
/* kl-collector: flags, signals, the loop. The logic is in libklcollector. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <kloudlens/stage.h>

#include "collector.h"

static struct kc *g_kc;

static void on_signal(int sig)
{
	if (g_kc)
		kc_stop(g_kc);
}

static void log_stderr(int level, const char *msg, void *ctx)
{
	static const char *const lv[] = { [KC_ERR] = "error", [KC_WARN] = "warn", [KC_INFO] = "info", [KC_DEBUG] = "debug" };
	int verbose = *(int *)ctx;

	if (level > KC_WARN && !verbose)
		return;
	fprintf(stderr, "kl-collector: %s: %s\n", level <= KC_DEBUG ? lv[level] : "?", msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kl-collector [options]\n"
		"  --probe [--json]        print the node's capabilities and exit\n"
		"  --dir DIR               rings directory (default /dev/shm/kloudlens)\n"
		"  --ring NAME             output ring (default raw)\n"
		"  --capacity BYTES        raw ring data size (power of two)\n"
		"  --syscalls a,b,c        trace only these syscalls (default: the built-in set)\n"
		"  --cgroup ID|PATH        watch only this cgroup v2 (repeatable)\n"
		"  --pidns INUM            watch only this pid namespace (repeatable)\n"
		"  --containers-only       ignore tasks in the host pid namespace\n"
		"  --exclude-pid PID       never trace this process and its children (repeatable)\n"
		"  --filter FILE           live filter file, re-applied whenever it changes (docker mode;\n"
		"                          written by kloudlens from HookSubscriptions)\n"
		"  --no-dns --no-bootstrap --no-containers --no-drop-caps --tracepoint --no-shed\n"
		"  --drain-ms N --reorder-ms N --ring-kb N --shed-max N --high PCT --low PCT\n"
		"  --ready FILE            create FILE once attached (tests)\n"
		"  --duration SEC          stop after SEC seconds\n"
		"  --verbose\n");
}

static int parse_cgroup(const char *s, uint64_t *id)
{
	struct stat st;
	char *end;

	if (s[0] == '/') {
		if (stat(s, &st) < 0)
			return -errno;
		*id = st.st_ino;
		return 0;
	}
	errno = 0;
	*id = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_PROBE = 256, OPT_JSON, OPT_DIR, OPT_RING, OPT_CAP, OPT_SYSCALLS, OPT_CGROUP, OPT_PIDNS, OPT_CONT,
	       OPT_EXCL, OPT_NODNS, OPT_NOBOOT, OPT_NOCTR, OPT_NOCAPS, OPT_TP, OPT_DRAIN, OPT_REORDER, OPT_RINGKB, OPT_READY,
	       OPT_DURATION, OPT_VERBOSE, OPT_NOSELF, OPT_NOSHED, OPT_SHEDMAX, OPT_HIGH, OPT_LOW, OPT_FILTER };
	static const struct option lo[] = {
		{ "probe", no_argument, 0, OPT_PROBE }, { "json", no_argument, 0, OPT_JSON },
		{ "dir", required_argument, 0, OPT_DIR }, { "ring", required_argument, 0, OPT_RING },
		{ "capacity", required_argument, 0, OPT_CAP }, { "syscalls", required_argument, 0, OPT_SYSCALLS },
		{ "cgroup", required_argument, 0, OPT_CGROUP }, { "pidns", required_argument, 0, OPT_PIDNS },
		{ "containers-only", no_argument, 0, OPT_CONT }, { "exclude-pid", required_argument, 0, OPT_EXCL },
		{ "no-dns", no_argument, 0, OPT_NODNS }, { "no-bootstrap", no_argument, 0, OPT_NOBOOT },
		{ "no-containers", no_argument, 0, OPT_NOCTR },
		{ "no-drop-caps", no_argument, 0, OPT_NOCAPS }, { "tracepoint", no_argument, 0, OPT_TP },
		{ "drain-ms", required_argument, 0, OPT_DRAIN }, { "reorder-ms", required_argument, 0, OPT_REORDER },
		{ "ring-kb", required_argument, 0, OPT_RINGKB }, { "ready", required_argument, 0, OPT_READY },
		{ "duration", required_argument, 0, OPT_DURATION }, { "verbose", no_argument, 0, OPT_VERBOSE },
		{ "no-self-exclude", no_argument, 0, OPT_NOSELF }, { "no-shed", no_argument, 0, OPT_NOSHED }, { "shed-max", required_argument, 0, OPT_SHEDMAX },
		{ "filter", required_argument, 0, OPT_FILTER },
		{ "high", required_argument, 0, OPT_HIGH }, { "low", required_argument, 0, OPT_LOW },
		{ "help", no_argument, 0, 'h' }, { 0 },
	};
	struct kc_opts o = KC_OPTS_DEFAULT;
	bool probe = false, json = false;
	const char *ready = NULL;
	double duration = 0;
	int verbose = 0, opt, err;
	struct sigaction sa = { .sa_handler = on_signal };
	struct kc_counters ctr;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case OPT_PROBE: probe = true; break;
		case OPT_JSON: json = true; break;
		case OPT_DIR: o.dir = optarg; break;
		case OPT_RING: o.ring = optarg; break;
		case OPT_CAP:
			if (kl_parse_u64(optarg, 1, &o.ring_capacity))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			break;
		case OPT_SYSCALLS: o.syscalls = optarg; break;
		case OPT_CGROUP:
			if (o.ncgroups == 16 || parse_cgroup(optarg, &o.cgroups[o.ncgroups])) {
				fprintf(stderr, "kl-collector: --cgroup %s: not a cgroup id or v2 directory\n", optarg);
				return 2;
			}
			o.ncgroups++;
			break;
		case OPT_PIDNS:
			if (o.npidns == 16)
				return 2;
			if (kl_parse_u32(optarg, &o.pidns[o.npidns]))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			o.npidns++;
			break;
		case OPT_CONT: o.containers_only = true; break;
		case OPT_EXCL:
			if (o.nexclude == 16)
				return 2;
			if (kl_parse_u32(optarg, &o.exclude_pids[o.nexclude]))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			o.nexclude++;
			break;
		case OPT_NODNS: o.no_dns = true; break;
		case OPT_NOBOOT: o.no_bootstrap = true; break;
		case OPT_NOCTR: o.no_containers = true; break;
		case OPT_NOCAPS: o.no_drop_caps = true; break;
		case OPT_TP: o.force_tracepoint = true; break;
		case OPT_DRAIN:
		case OPT_REORDER:
		case OPT_SHEDMAX:
		case OPT_HIGH:
		case OPT_LOW: {
			uint32_t v;

			if (kl_parse_u32(optarg, &v) || (opt == OPT_HIGH || opt == OPT_LOW ? v > 100 : 0) ||
			    (opt == OPT_SHEDMAX && v > KL_SHED__MAX))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			*(opt == OPT_DRAIN ? &o.drain_ms : opt == OPT_REORDER ? &o.reorder_ms :
			  opt == OPT_SHEDMAX ? &o.shed_max : opt == OPT_HIGH ? &o.high_pct : &o.low_pct) = v;
			break;
		}
		case OPT_RINGKB:
			/* a BPF ring is a power of two of pages: libbpf would round up silently */
			if (kl_parse_u32(optarg, &o.bpf_ring_kb) || o.bpf_ring_kb < 4 || o.bpf_ring_kb > (1u << 20) ||
			    (o.bpf_ring_kb & (o.bpf_ring_kb - 1)))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			break;
		case OPT_READY: ready = optarg; break;
		case OPT_DURATION: {
			char *end;

			errno = 0;
			duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(duration >= 0))
				return kl_stage_bad_value("kl-collector", lo, opt, optarg);
			break;
		}
		case OPT_VERBOSE: verbose = 1; break;
		case OPT_NOSELF: o.no_self_exclude = true; break;
		case OPT_NOSHED: o.no_shed = true; break;
		case OPT_FILTER: o.filter_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	kc_set_log(log_stderr, &verbose);

	if (probe) {
		struct kc_caps caps;

		kc_probe(&caps);
		kc_caps_print(&caps, stdout, json);
		return 0;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = kc_open(&o, &g_kc);
	if (err) {
		fprintf(stderr, "kl-collector: start: %s\n", strerror(-err));
		return 1;
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0)
			close(fd);
	}
	if (duration > 0) {
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= duration)
				break;
			err = kc_poll(g_kc, o.drain_ms ? (int)o.drain_ms : 5);
			if (err < 0 && err != -EINTR)
				break;
			err = 0;
		}
		kc_flush(g_kc);
	} else {
		err = kc_run(g_kc);
	}
	kc_counters(g_kc, &ctr);
	if (verbose) {
		fprintf(stderr, "kl-collector: published %llu, raw dropped %llu, late %llu, snapshot %llu, "
			"filter updates %llu (rejected %llu)\n",
			(unsigned long long)ctr.published, (unsigned long long)ctr.dropped_raw,
			(unsigned long long)ctr.late, (unsigned long long)ctr.snapshot,
			(unsigned long long)ctr.filter_updates, (unsigned long long)ctr.filter_rejected);
	}
	kc_close(g_kc);
	if (err < 0) {
		fprintf(stderr, "kl-collector: drain: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
