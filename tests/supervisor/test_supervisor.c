/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor: configuration (YAML errors with file:line:column, flags
 * over file, --print-config) and process supervision with stand-in
 * stages (restart with backoff after a crash, ordered stop).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "../common/livetest.h"

static char dir[128];
static pid_t sup = -1;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-sup-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* stages run as the unprivileged user and log here */
	chmod(dir, 0777);
}

static void teardown(void)
{
	char cmd[256];

	/* A failed assertion must not leave a supervisor (and its stages)
	 * running: they would hold the test's output open until the timeout. */
	lt_stop(&sup, SIGTERM);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(supervise, .init = setup, .fini = teardown, .timeout = 60);

static const char *write_file(const char *name, const char *content)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(content, f);
	fclose(f);
	return path;
}

Test(config, loads_nested_keys_and_lists)
{
	struct kl_config c;
	char err[512];

	kl_config_defaults(&c);
	const char *p = write_file("c.yaml",
				   "mode: host\n"
				   "rings:\n  dir: /dev/shm/kl-x\n  capacity: 1048576\n"
				   "exporter:\n  subscribe: tcp://127.0.0.1:9181\n"
				   "stages: [collector, enricher]\n"
				   "collector:\n  containers_only: true\n  bpf_ring_kb: 16384\n");
	cr_assert_eq(kl_config_load(&c, p, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.rings_dir, "/dev/shm/kl-x");
	cr_assert_eq(c.ring_capacity, 1048576);
	cr_assert_str_eq(c.subscribe, "tcp://127.0.0.1:9181");
	cr_assert(c.stage_enabled[KL_STAGE_ENRICHER]);
	cr_assert_not(c.stage_enabled[KL_STAGE_EXPORTER]);
	cr_assert(c.containers_only);
	cr_assert_eq(c.bpf_ring_kb, 16384);
	cr_assert_str_eq(c.admin, "tcp://127.0.0.1:8180", "untouched keys keep their defaults");
}

static void expect_error(const char *content, const char *want)
{
	struct kl_config c, before;
	char err[512];

	kl_config_defaults(&c);
	before = c;
	const char *p = write_file("bad.yaml", content);
	cr_assert_eq(kl_config_load(&c, p, err, sizeof(err)), -EINVAL, "accepted: %s", content);
	char full[512];
	snprintf(full, sizeof(full), "%s/bad.yaml%s", dir, want);
	cr_assert_str_eq(err, full);
	cr_assert_eq(memcmp(&c, &before, sizeof(c)), 0, "a rejected file changed the configuration");
}

Test(config, errors_name_file_line_column_and_key)
{
	expect_error("rings:\n  dri: /x\n", ":2:3: rings.dri: unknown key");
	expect_error("rings:\n  capacity: lots\n", ":2:13: rings.capacity: expected a non-negative integer, got 'lots'");
	expect_error("rings:\n  capacity: -5\n", ":2:13: rings.capacity: expected a non-negative integer, got '-5'");
	expect_error("show: everything\n", ": show: expected intents, events or none, got 'everything'");
	expect_error("rings: [1, 2]\n", ":1:8: rings: expected a mapping");
	expect_error("stages: [collector, teleporter]\n",
		     ":1:9: stages: unknown stage 'teleporter' (known: collector, enricher, intentd, graphd, baselined, exporter)");
	expect_error("mode: host\n  bad indent: [\n", ":2:13: mapping values are not allowed in this context");
	expect_error("collector:\n  containers_only: maybe\n", ":2:20: collector.containers_only: expected true or false, got 'maybe'");
	expect_error("stages: [enricher]\n", ": stages: the collector cannot be left out (nothing else has input)");
	expect_error("rings:\n  capacity: 5000\n", ": rings: capacities must be powers of two of at least 4096 bytes");
	expect_error("collector:\n  bpf_ring_kb: 3000\n",
		     ": collector.bpf_ring_kb: must be a power of two from 4 to 1048576, got 3000");
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *bin(void)
{
	static char p[512];
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");
	snprintf(p, sizeof(p), "%s/supervisor/kloudlens", b ? b : "build");
	return p;
}

Test(config, print_config_round_trips)
{
	char out[300];
	snprintf(out, sizeof(out), "%s/eff.yaml", dir);
	cr_assert_eq(run("%s --set rings.capacity=8388608 --metrics 127.0.0.1:9999 --stages collector,exporter "
			 "--print-config > %s", bin(), out), 0);
	struct kl_config c;
	char err[512];
	kl_config_defaults(&c);
	cr_assert_eq(kl_config_load(&c, out, err, sizeof(err)), 0, "printed config does not load: %s", err);
	cr_assert_eq(c.ring_capacity, 8388608);
	cr_assert_str_eq(c.metrics, "127.0.0.1:9999");
	cr_assert_not(c.stage_enabled[KL_STAGE_ENRICHER]);
	cr_assert(c.stage_enabled[KL_STAGE_EXPORTER]);
	/* flags override the file */
	const char *p = write_file("f.yaml", "show: none\nexporter:\n  admin: tcp://127.0.0.1:1\n");
	cr_assert_eq(run("%s --config %s --admin tcp://127.0.0.1:2 --print-config | grep -q 'admin: \"tcp://127.0.0.1:2\"'",
			 bin(), p), 0);
	cr_assert_eq(run("%s --config %s --print-config | grep -q 'show: \"none\"'", bin(), p), 0);
	cr_assert_eq(run("%s --set nosuch=1 --print-config 2>/dev/null", bin()), 2);
}

/* Stand-in stages: shell scripts that log their starts (pid, uid, arguments) and wait for SIGTERM. */
static void fake_stage(const char *name, const char *log)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/bin/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\necho \"start $$ $(id -u) $*\" >> %s/%s.log\n"
		   "trap 'echo stop >> %s/%s.log; exit 0' TERM\nwhile :; do sleep 0.05; done\n",
		dir, log, dir, log);
	fclose(f);
	chmod(path, 0755);
}

static int count_lines(const char *log, const char *prefix)
{
	char path[300], line[256];
	int n = 0;
	snprintf(path, sizeof(path), "%s/%s.log", dir, log);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, prefix, strlen(prefix)))
			n++;
	fclose(f);
	return n;
}

static pid_t stage_pid(const char *log, int nth)
{
	char path[300], line[256];
	int n = 0;
	snprintf(path, sizeof(path), "%s/%s.log", dir, log);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	pid_t pid = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "start ", 6) && ++n == nth)
			pid = atoi(line + 6);
	fclose(f);
	return pid;
}

Test(supervise, restarts_a_crashed_stage_and_stops_in_order)
{
	char bindir[200], rings[200], state[200];

	snprintf(bindir, sizeof(bindir), "%s/bin", dir);
	snprintf(rings, sizeof(rings), "%s/rings", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	mkdir(bindir, 0755);
	fake_stage("kl-collector", "collector");
	fake_stage("kl-enricher", "enricher");
	sup = fork();
	cr_assert_geq(sup, 0);
	if (sup == 0) {
		execl(bin(), bin(), "--bin-dir", bindir, "--rings-dir", rings, "--state-dir", state, "--show", "none",
		      "--stages", "collector,enricher", "--set", "rings.capacity=1048576",
		      "--set", "rings.raw_capacity=1048576", "--set", "restart.backoff_initial_ms=100",
		      "--set", "collector.bpf_ring_kb=16384", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && (count_lines("enricher", "start") < 1 || count_lines("collector", "start") < 1); i++)
		usleep(50000);
	cr_assert_eq(count_lines("collector", "start"), 1);
	{
		char path[300], line[1024] = "";
		FILE *f;

		snprintf(path, sizeof(path), "%s/collector.log", dir);
		f = fopen(path, "r");
		cr_assert(f && fgets(line, sizeof(line), f));
		fclose(f);
		cr_assert(strstr(line, " --ring-kb 16384"), "collector.bpf_ring_kb reaches the collector: %s", line);
	}
	cr_assert_eq(count_lines("enricher", "start"), 1);
	struct stat st;
	char ring[300];
	snprintf(ring, sizeof(ring), "%s/raw", rings);
	cr_assert_eq(stat(ring, &st), 0, "the supervisor did not create the raw ring");
	cr_assert_eq(st.st_mode & 0777, 0660);

	/* crash the enricher: it comes back */
	kill(stage_pid("enricher", 1), SIGKILL);
	for (int i = 0; i < 100 && count_lines("enricher", "start") < 2; i++)
		usleep(50000);
	cr_assert_eq(count_lines("enricher", "start"), 2, "crashed stage was not restarted");
	if (getuid() == 0) {
		char line[64];
		snprintf(line, sizeof(line), "start %d 0", (int)stage_pid("collector", 1));
		cr_assert_eq(count_lines("collector", line), 1, "the collector must keep root");
		snprintf(line, sizeof(line), "start %d 0", (int)stage_pid("enricher", 2));
		cr_assert_eq(count_lines("enricher", line), 0, "the enricher must not run as root");
	}

	kill(sup, SIGTERM);
	int s;
	cr_assert_eq(waitpid(sup, &s, 0), sup);
	sup = -1;
	cr_assert(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	cr_assert_eq(count_lines("collector", "stop"), 1);
	cr_assert_eq(count_lines("enricher", "stop"), 1);
}
