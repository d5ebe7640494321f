/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-enricher - raw ring in, enriched ring out. Opens its rings while it
 * may still be root, then drops to an unprivileged user with no
 * capabilities before it reads a single event.
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

#include "enrich.h"

#define BATCH 256

#define COMPONENT "kl-enricher"

static void usage(FILE *o)
{
	fputs("usage: kl-enricher [options]\n"
	      "  --dir DIR           rings directory (default " SHM_DEFAULT_DIR ")\n"
	      "  --input NAME        ring to read (default raw)\n"
	      "  --output NAME       ring to write (default enriched)\n"
	      "  --capacity BYTES    output ring capacity (default 64 MiB)\n"
	      "  --ring-mode MODE    output ring file mode, octal (default 0640)\n"
	      "  --user NAME         user to run as when started as root (default kloudlens)\n"
	      "  --wait SEC          wait this long for the input ring to appear (default 30)\n"
	      "  --max-procs N       process table cap (default 65536)\n"
	      "  --exit-grace-ms MS  keep an exited process this long for late events (default 5000)\n",
	      o);
}

/* kl_stage_args()' callback: the enricher's own options */
static int own_opt(void *ctx, int opt, const char *arg)
{
	struct kl_enricher_opts *eo = ctx;

	switch (opt) {
	case 'P': return kl_parse_u32(arg, &eo->max_procs);
	case 'g': return kl_parse_u64(arg, 1000000ull, &eo->exit_grace_ns);
	default: return -EINVAL;
	}
}

int main(int argc, char **argv)
{
	struct kl_enricher_opts eo = { 0 };
	struct kl_stage sg;
	struct shm_ring *rout;
	struct shm_consumer *c;
	struct shm_stats *stats;
	struct kl_enricher *e = NULL;
	int err, rc = 1;
	static const struct option opts[] = {
		KL_STAGE_LONGOPTS,
		{ "max-procs", required_argument, NULL, 'P' },
		{ "exit-grace-ms", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct kl_stage_spec spec = {
		.component = COMPONENT, .user = "kloudlens", .wait_s = 30,
		.inputs = { "raw" }, .output = "enriched", .out_type = KL_REC_ENRICHED, .ro = SHM_RING_OPTS_INIT,
	};

	spec.ro.policy = SHM_POLICY_BLOCK;
	rc = kl_stage_args(argc, argv, opts, &spec, own_opt, &eo, usage);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (kl_stage_setup(&spec, &sg))
		return 1;
	c = sg.cons[0];
	stats = sg.stats;
	rout = sg.out.ring;
	err = kl_enricher_new(&eo, &e);
	if (err)
		goto out;

	uint64_t *m_events = shm_stats_metric(stats, "kloudlens_enricher_events_total", NULL,
					      "Raw records enriched", SHM_COUNTER);
	uint64_t *m_invalid = shm_stats_metric(stats, "kloudlens_enricher_invalid_total", NULL,
					       "Raw records rejected by validation", SHM_COUNTER);
	uint64_t *m_procs = shm_stats_metric(stats, "kloudlens_enricher_processes", NULL,
					     "Processes in the table", SHM_GAUGE);
	uint64_t *m_stub = shm_stats_metric(stats, "kloudlens_enricher_processes_stub_total", NULL,
					    "Processes first seen mid-life (no fork/exec/bootstrap)", SHM_COUNTER);
	uint64_t *m_evict = shm_stats_metric(stats, "kloudlens_enricher_processes_evicted_total", NULL,
					     "Processes evicted by the table cap", SHM_COUNTER);
	uint64_t *m_ctrs = shm_stats_metric(stats, "kloudlens_enricher_containers", NULL,
					    "Containers in the table", SHM_GAUGE);
	uint64_t *m_fds = shm_stats_metric(stats, "kloudlens_enricher_fd_entries", NULL,
					   "Tracked file descriptors", SHM_GAUGE);
	uint64_t *m_fd_unres = shm_stats_metric(stats, "kloudlens_enricher_fd_unresolved_total", NULL,
						"fd arguments with no known target", SHM_COUNTER);
	uint64_t *m_fd_untracked = shm_stats_metric(stats, "kloudlens_enricher_fd_untracked_total", NULL,
						    "fds not tracked because of the caps", SHM_COUNTER);
	uint64_t *m_trunc = shm_stats_metric(stats, "kloudlens_enricher_truncated_total", NULL,
					     "Enriched records whose enrichment was cut to fit", SHM_COUNTER);

	kl_log(COMPONENT, "info", "running: %s -> %s as uid %d", spec.inputs[0], spec.output, (int)getuid());

	struct shm_rec recs[BATCH];
	for (;;) {
		int n = kl_stage_next(&sg, 0, recs, BATCH, 200);
		if (n < 0)
			break;   /* stopped and drained, or the ring failed (logged) */
		for (int i = 0; i < n; i++) {
			void *p;
			if (kl_rec_validate(recs[i].type, recs[i].data, recs[i].len) != KL_REC_OK) {
				kl_enricher_process(e, recs[i].type, recs[i].data, recs[i].len, NULL, 0);
				continue;
			}
			size_t need = kl_enricher_out_size(recs[i].len);
			if (need > shm_ring_max_record(rout))
				need = shm_ring_max_record(rout);
			err = shm_reserve(rout, (uint32_t)need, KL_REC_ENRICHED, &p);
			if (err) {
				kl_log(COMPONENT, "error", "ring %s: reserve: %s", spec.output, strerror(-err));
				goto out;
			}
			long w = kl_enricher_process(e, recs[i].type, recs[i].data, recs[i].len, p, need);
			if (w < 0) {
				/* cannot happen after validation; keep the stream well-formed */
				w = 0;
			}
			shm_trim(rout, (uint32_t)w);
		}
		shm_publish(rout);
		shm_consumer_release(c);
		struct kl_enricher_stats st;
		kl_enricher_stats(e, &st);
		shm_stats_set(m_events, st.events);
		shm_stats_set(m_invalid, st.invalid);
		shm_stats_set(m_procs, st.procs);
		shm_stats_set(m_stub, st.procs_stub);
		shm_stats_set(m_evict, st.procs_evicted);
		shm_stats_set(m_ctrs, st.containers);
		shm_stats_set(m_fds, st.fd_entries);
		shm_stats_set(m_fd_unres, st.fd_unresolved);
		shm_stats_set(m_fd_untracked, st.fd_untracked);
		shm_stats_set(m_trunc, st.truncated);
	}
	rc = 0;
	kl_log(COMPONENT, "info", "stopped");
out:
	kl_stage_teardown(&sg);
	kl_enricher_free(e);
	return rc;
}
