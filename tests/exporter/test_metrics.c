/* SPDX-License-Identifier: Apache-2.0 */
/* /metrics passes promtool, a real Prometheus scrapes it; /healthz and /readyz answer. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <criterion/criterion.h>

#include "exporter.h"
#include "helpers.h"

static struct test_env te;
static struct kl_exporter *ex;
static struct shm_ring *raw;
static struct shm_stats *stats;

static void setup(void)
{
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;
	struct shm_ring_opts ro = SHM_RING_OPTS_INIT;
	uint64_t *cell;

	test_env_init(&te);
	ro.capacity = 1 << 20;
	cr_assert_eq(shm_ring_create(te.rings, "raw", &ro, &raw), 0);
	/* a stage's stats area, with the mistakes stages may make */
	cr_assert_eq(shm_stats_create(te.rings, "collector", 16, &stats), 0);
	cell = shm_stats_metric(stats, "kloudlens_collector_events", "category=\"crit\"",
				"Events drained.", SHM_COUNTER);
	shm_stats_add(cell, 12345);
	cell = shm_stats_metric(stats, "kloudlens_collector_downgrade_level", "", "Adaptive downgrade level.",
				SHM_GAUGE);
	shm_stats_set(cell, 1);
	shm_stats_metric(stats, "bad name!", "", "not a valid metric name", SHM_GAUGE);
	shm_stats_metric(stats, "kloudlens_collector_bad_labels", "x=unquoted", "", SHM_GAUGE);
	o.rings_dir = te.rings;
	o.wal_dir = te.wal;
	o.sub_url = te.sub;
	o.admin_url = te.admin;
	o.http_url = te.http;
	cr_assert_eq(test_exporter_create(&te, &o, &ex), 0);
	cr_assert_eq(kl_exporter_start(ex), 0);
	cr_assert_eq(produce(raw, 0, 100, 1), 0);
	usleep(300000);
}

static void teardown(void)
{
	kl_exporter_destroy(ex);
	shm_stats_close(stats);
	shm_ring_close(raw);
	test_env_fini(&te);
}

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 120);

static int sh(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Run a shell command; its stdout into @out; return its exit status. */
static int sh(char *out, size_t len, const char *fmt, ...)
{
	char cmd[2048];
	size_t n = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	cr_assert(p);
	if (out) {
		n = fread(out, 1, len - 1, p);
		out[n] = 0;
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(metrics, promtool_accepts_metrics)
{
	static char body[1 << 20];
	char out[4096];

	cr_assert_eq(sh(body, sizeof(body), "curl -sf http://127.0.0.1:%d/metrics", te.http_port), 0);
	cr_assert(strstr(body, "kloudlens_exporter_envelopes_total{stream=\"raw\"} 100"), "%.2000s", body);
	cr_assert(strstr(body, "kloudlens_ring_produced_total{ring=\"raw\"} 100"));
	cr_assert(strstr(body, "kloudlens_ring_consumer_consumed_total{ring=\"raw\",consumer=\"kl-exporter\"} 100"));
	cr_assert(strstr(body, "kloudlens_collector_events_total{stage=\"collector\",category=\"crit\"} 12345"),
		  "a stage counter gets _total and a stage label");
	cr_assert(strstr(body, "kloudlens_collector_downgrade_level{stage=\"collector\"} 1"));
	cr_assert(!strstr(body, "bad name"));
	cr_assert(!strstr(body, "bad_labels"));
	cr_assert(strstr(body, "kloudlens_exporter_stats_rejected_total 2"));
	cr_assert_eq(sh(out, sizeof(out), "curl -sf http://127.0.0.1:%d/metrics | promtool check metrics 2>&1",
			te.http_port), 0, "promtool: %s", out);
}

Test(metrics, health_and_readiness)
{
	char out[4096];

	cr_assert_eq(sh(out, sizeof(out), "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/healthz",
			te.http_port), 0);
	cr_assert_str_eq(out, "200");
	/* raw ring with a live producer (us) and the exporter attached: ready */
	cr_assert_eq(sh(out, sizeof(out), "curl -s -w ' %%{http_code}' http://127.0.0.1:%d/readyz",
			te.http_port), 0);
	cr_assert(strstr(out, "ready") && strstr(out, "200"), "%s", out);
	cr_assert_eq(sh(out, sizeof(out), "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/nope",
			te.http_port), 0);
	cr_assert_str_eq(out, "404");
}

Test(metrics, real_prometheus_scrapes)
{
	char cfg[512], out[65536];
	int prom_port = free_port();
	FILE *f;
	pid_t pid;
	int st, up = 0;

	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", te.dir);
	f = fopen(cfg, "w");
	cr_assert(f);
	fprintf(f, "global: {scrape_interval: 1s}\n"
		   "scrape_configs:\n"
		   "- job_name: kl-exporter\n"
		   "  static_configs:\n"
		   "  - targets: ['127.0.0.1:%d']\n", te.http_port);
	fclose(f);
	pid = fork();
	if (pid == 0) {
		char data[400], listen[64], conf[600];

		snprintf(data, sizeof(data), "--storage.tsdb.path=%s/prom", te.dir);
		snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", prom_port);
		snprintf(conf, sizeof(conf), "--config.file=%s", cfg);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execlp("prometheus", "prometheus", conf, data, listen, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 120 && !up; i++) {
		usleep(500000);
		if (sh(out, sizeof(out), "curl -sf 'http://127.0.0.1:%d/api/v1/query?query=kloudlens_exporter_envelopes_total'",
		       prom_port) == 0 && strstr(out, "\"stream\":\"raw\"") && strstr(out, "\"100\""))
			up = 1;
	}
	sh(out, sizeof(out), "curl -sf http://127.0.0.1:%d/api/v1/targets", prom_port);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	cr_assert(up, "prometheus never got the value; targets: %.1000s", out);
	cr_assert(strstr(out, "\"health\":\"up\""), "%.1000s", out);
}
