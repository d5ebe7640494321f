/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every pipeline daemon refuses a malformed number on its command line
 * with exit status 2 and a line naming the option and the value, before
 * it opens anything: the supervisor and systemd pass these flags, and
 * strtoull used to read "--capacity 64k" as 64 and go on.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int run(const char *bin, const char *args, char *out, size_t len)
{
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/%s --dir /nonexistent/kl-cli-test %s 2>&1", getenv("KLOUDLENS_BUILD_ROOT"),
		 bin, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(stage_cli, bad_numbers_are_refused_by_name)
{
	static const struct {
		const char *bin, *args, *want;
	} cases[] = {
		{ "enricher/kl-enricher", "--capacity 64k", "--capacity: bad value \\\"64k\\\"" },
		{ "enricher/kl-enricher", "--max-procs 1e6", "--max-procs: bad value \\\"1e6\\\"" },
		{ "enricher/kl-enricher", "--exit-grace-ms -5", "--exit-grace-ms: bad value \\\"-5\\\"" },
		{ "intentd/kl-intentd", "--ring-mode rw", "--ring-mode: bad value \\\"rw\\\"" },
		{ "intentd/kl-intentd", "--window-ms 10s", "--window-ms: bad value \\\"10s\\\"" },
		{ "intentd/kl-intentd", "--max-open 99999999999", "--max-open: bad value \\\"99999999999\\\"" },
		{ "graphd/kl-graphd", "--wait forever", "--wait: bad value \\\"forever\\\"" },
		{ "graphd/kl-graphd", "--max-edges 1M", "--max-edges: bad value \\\"1M\\\"" },
		{ "baselined/kl-baselined", "--capacity 0", "--capacity: bad value \\\"0\\\"" },
		{ "baselined/kl-baselined", "--min-samples many", "--min-samples: bad value \\\"many\\\"" },
		{ "baselined/kl-baselined", "--window 5q", "--window: bad value \\\"5q\\\"" },
		{ "baselined/kl-baselined", "--categories exec,smell", "--categories: bad value \\\"exec,smell\\\"" },
#ifdef HAVE_KL_COLLECTOR
		/* kl-collector: libbpf rounded a ring size up, and strtoul read "5ms" as 5 */
		{ "collector/kl-collector", "--ring-kb 3000", "--ring-kb: bad value \\\"3000\\\"" },
		{ "collector/kl-collector", "--ring-kb 64k", "--ring-kb: bad value \\\"64k\\\"" },
		{ "collector/kl-collector", "--drain-ms 5ms", "--drain-ms: bad value \\\"5ms\\\"" },
		{ "collector/kl-collector", "--high 150", "--high: bad value \\\"150\\\"" },
		{ "collector/kl-collector", "--shed-max 9", "--shed-max: bad value \\\"9\\\"" },
		{ "collector/kl-collector", "--capacity 1G", "--capacity: bad value \\\"1G\\\"" },
		{ "collector/kl-collector", "--duration soon", "--duration: bad value \\\"soon\\\"" },
#endif
	};
	char out[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(cases[i].bin, cases[i].args, out, sizeof(out));

		cr_assert_eq(rc, 2, "%s %s: exit %d\n%s", cases[i].bin, cases[i].args, rc, out);
		cr_assert(strstr(out, cases[i].want), "%s %s:\n%s", cases[i].bin, cases[i].args, out);
	}
	/* an unknown option is a usage error, not a bad value */
	cr_assert_eq(run("graphd/kl-graphd", "--no-such-flag", out, sizeof(out)), 2);
	cr_assert(strstr(out, "usage") || strstr(out, "Usage"), "%s", out);
}
