/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-intentd - enriched ring in, intents ring out. Opens its rings while
 * it may still be root, then drops to an unprivileged user with no
 * capabilities before it reads a single event. On SIGTERM it drains what
 * the input ring holds, flushes every intent still being folded (marked
 * "shutdown") and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>
#include <kloudlens/stage.h>

#include "intentd.h"

#define BATCH 256
#define LIVE_NS (60ull * 1000000000ull)

#define COMPONENT "kl-intentd"

static void usage(FILE *o)
{
	fputs("usage: kl-intentd [options]\n"
	      "  --dir DIR            rings directory (default " SHM_DEFAULT_DIR ")\n"
	      "  --input NAME         ring to read (default enriched)\n"
	      "  --output NAME        ring to write (default intents)\n"
	      "  --capacity BYTES     output ring capacity (default 64 MiB)\n"
	      "  --ring-mode MODE     output ring file mode, octal (default 0640)\n"
	      "  --user NAME          user to run as when started as root (default kloudlens)\n"
	      "  --wait SEC           wait this long for the input ring to appear (default 30)\n"
	      "  --node NAME          node name in every intent (default: hostname)\n"
	      "  --window-ms MS       FileAccess/NetworkExchange window for open fds (default 10000)\n"
	      "  --max-procs N        process table cap (default 65536)\n"
	      "  --max-open N         open files/sockets folded at once (default 262144)\n"
	      "  --dns-timeout-ms MS  DNS query without response emitted as timed out (default 5000)\n",
	      o);
}

struct own_ctx {
	struct kl_intentd_opts *io;
	char *node;
	size_t node_len;
};

/* kl_stage_args()' callback: intentd's own options */
static int own_opt(void *ctx, int opt, const char *arg)
{
	struct own_ctx *oc = ctx;

	switch (opt) {
	case 'n': snprintf(oc->node, oc->node_len, "%s", arg); return 0;
	case 'W': return kl_parse_u64(arg, 1000000ull, &oc->io->window_ns);
	case 'P': return kl_parse_u32(arg, &oc->io->max_procs);
	case 'O': return kl_parse_u32(arg, &oc->io->max_open);
	case 'T': return kl_parse_u64(arg, 1000000ull, &oc->io->dns_timeout_ns);
	default: return -EINVAL;
	}
}

int main(int argc, char **argv)
{
	struct kl_intentd_opts io = { 0 };
	struct kl_stage sg;
	struct shm_consumer *c;
	struct shm_stats *stats;
	struct kl_intentd *e = NULL;
	char node[256] = "";
	struct own_ctx oc = { &io, node, sizeof(node) };
	int err, rc = 1;
	static const struct option opts[] = {
		KL_STAGE_LONGOPTS,
		{ "node", required_argument, NULL, 'n' },
		{ "window-ms", required_argument, NULL, 'W' },
		{ "max-procs", required_argument, NULL, 'P' },
		{ "max-open", required_argument, NULL, 'O' },
		{ "dns-timeout-ms", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct kl_stage_spec spec = {
		.component = COMPONENT, .user = "kloudlens", .wait_s = 30,
		.inputs = { "enriched" }, .output = "intents", .out_type = KL_REC_INTENT, .ro = SHM_RING_OPTS_INIT,
	};

	spec.ro.policy = SHM_POLICY_BLOCK;
	rc = kl_stage_args(argc, argv, opts, &spec, own_opt, &oc, usage);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (!node[0] && gethostname(node, sizeof(node) - 1) < 0)
		node[0] = 0;
	io.node = node[0] ? node : NULL;
	if (kl_stage_setup(&spec, &sg))
		return 1;
	c = sg.cons[0];
	stats = sg.stats;
	err = kl_intentd_new(&io, kl_stage_emit, &sg.out, &e);
	if (err) {
		kl_log(COMPONENT, "error", "engine: %s", strerror(-err));
		goto out;
	}

	uint64_t *m_events = shm_stats_metric(stats, "kloudlens_intentd_events_total", NULL,
					      "Enriched records consumed", SHM_COUNTER);
	uint64_t *m_invalid = shm_stats_metric(stats, "kloudlens_intentd_invalid_total", NULL,
					       "Enriched records rejected by validation", SHM_COUNTER);
	uint64_t *m_intents = shm_stats_metric(stats, "kloudlens_intentd_intents_total", NULL,
					       "Intents emitted", SHM_COUNTER);
	uint64_t *m_procs = shm_stats_metric(stats, "kloudlens_intentd_processes", NULL,
					     "Processes with folding state", SHM_GAUGE);
	uint64_t *m_pevict = shm_stats_metric(stats, "kloudlens_intentd_processes_evicted_total", NULL,
					      "Processes evicted by the cap (state flushed)", SHM_COUNTER);
	uint64_t *m_open = shm_stats_metric(stats, "kloudlens_intentd_open", NULL,
					    "Open files/sockets being folded", SHM_GAUGE);
	uint64_t *m_oevict = shm_stats_metric(stats, "kloudlens_intentd_open_evicted_total", NULL,
					      "Open files/sockets flushed early by the cap", SHM_COUNTER);
	uint64_t *m_untracked = shm_stats_metric(stats, "kloudlens_intentd_fd_untracked_total", NULL,
						 "fds above the per-process cap", SHM_COUNTER);
	uint64_t *m_dns = shm_stats_metric(stats, "kloudlens_intentd_dns_pending", NULL,
					   "DNS queries awaiting a response", SHM_GAUGE);
	uint64_t *m_dns_bad = shm_stats_metric(stats, "kloudlens_intentd_dns_unparsed_total", NULL,
					       "DNS messages the parser rejected", SHM_COUNTER);
	uint64_t *m_dns_to = shm_stats_metric(stats, "kloudlens_intentd_dns_timeouts_total", NULL,
					      "DNS queries without a response", SHM_COUNTER);
	uint64_t *m_dns_ev = shm_stats_metric(stats, "kloudlens_intentd_dns_evicted_total", NULL,
					      "DNS queries flushed early by the cap", SHM_COUNTER);
	static const char *const kind_names[KL_INTENT__COUNT] = {
		[KL_INTENT_PROCESS_START] = "ProcessStart", [KL_INTENT_PROCESS_EXIT] = "ProcessExit",
		[KL_INTENT_FILE_ACCESS] = "FileAccess", [KL_INTENT_FILE_META_CHANGE] = "FileMetaChange",
		[KL_INTENT_NETWORK_EXCHANGE] = "NetworkExchange", [KL_INTENT_NETWORK_LISTEN] = "NetworkListen",
		[KL_INTENT_DNS_QUERY] = "DNSQuery", [KL_INTENT_PRIVILEGE_CHANGE] = "PrivilegeChange",
		[KL_INTENT_NAMESPACE_CHANGE] = "NamespaceChange", [KL_INTENT_MODULE_LOAD] = "ModuleLoad",
		[KL_INTENT_BPF_LOAD] = "BPFLoad", [KL_INTENT_PTRACE] = "Ptrace",
		[KL_INTENT_EXEC_FROM_MEMORY] = "ExecFromMemory", [KL_INTENT_SIGNAL] = "Signal",
		[KL_INTENT_IPC] = "IPC",
	};
	uint64_t *m_kind[KL_INTENT__COUNT] = { 0 };
	for (int k = 1; k < KL_INTENT__COUNT; k++) {
		char lbl[64];
		snprintf(lbl, sizeof(lbl), "kind=\"%s\"", kind_names[k]);
		m_kind[k] = shm_stats_metric(stats, "kloudlens_intentd_intents_by_kind_total", lbl,
					     "Intents emitted, by kind", SHM_COUNTER);
	}
	uint64_t *m_emit_err = shm_stats_metric(stats, "kloudlens_intentd_emit_errors_total", NULL,
						"Intents that could not be written to the ring", SHM_COUNTER);

	kl_log(COMPONENT, "info", "running: %s -> %s as uid %d", spec.inputs[0], spec.output, (int)getuid());

	struct shm_rec recs[BATCH];
	uint64_t last_ts = 0;
	for (;;) {
		int n = kl_stage_next(&sg, 0, recs, BATCH, 200);
		if (n < 0)
			break;   /* stopped and drained, or the ring failed (logged) */
		if (n == 0 && last_ts) {
			/* Quiet stream: let windows and DNS timeouts fire on the clock the
			 * events are stamped with, but only for a live stream: a replayed
			 * recording's timestamps are far in the past and must not be
			 * overtaken by the wall clock. */
			uint64_t mono = kl_now_mono_ns();
			if (mono >= last_ts && mono - last_ts < LIVE_NS)
				kl_intentd_tick(e, mono);
		}
		for (int i = 0; i < n; i++) {
			kl_intentd_process(e, recs[i].type, recs[i].data, recs[i].len);
			if (recs[i].len >= sizeof(struct kl_event)) {
				struct kl_event ev;
				memcpy(&ev, recs[i].data, sizeof(ev));
				if (ev.ts_ns > last_ts)
					last_ts = ev.ts_ns;
			}
		}
		kl_stage_out_publish(&sg.out);
		shm_consumer_release(c);
		if (sg.out.err == -EPIPE)
			break;
		struct kl_intentd_stats st;
		kl_intentd_stats(e, &st);
		shm_stats_set(m_events, st.events);
		shm_stats_set(m_invalid, st.invalid);
		shm_stats_set(m_intents, st.intents);
		shm_stats_set(m_procs, st.procs);
		shm_stats_set(m_pevict, st.procs_evicted);
		shm_stats_set(m_open, st.open);
		shm_stats_set(m_oevict, st.open_evicted);
		shm_stats_set(m_untracked, st.fd_untracked);
		shm_stats_set(m_dns, st.dns_pending);
		shm_stats_set(m_dns_bad, st.dns_unparsed);
		shm_stats_set(m_dns_to, st.dns_timeouts);
		shm_stats_set(m_dns_ev, st.dns_evicted);
		shm_stats_set(m_emit_err, st.emit_errors);
		for (int k = 1; k < KL_INTENT__COUNT; k++)
			shm_stats_set(m_kind[k], st.by_kind[k]);
	}
	/* nothing still being folded is lost at shutdown: it goes out marked "shutdown" */
	kl_intentd_flush(e);
	rc = 0;
	kl_log(COMPONENT, "info", "stopped");
out:
	kl_stage_teardown(&sg);
	kl_intentd_free(e);
	return rc;
}
