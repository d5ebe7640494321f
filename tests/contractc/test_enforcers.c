/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every compiled output checked by its enforcer's own tool:
 *   seccomp     - names resolved by libseccomp's scmp_sys_resolver, and a real
 *                 runc/crun container (busybox-static rootfs) under the profile
 *   AppArmor    - apparmor_parser -Q -K (this kernel cannot load profiles)
 *   Kubernetes  - ajv against the upstream schemas in tests/schemas (strict)
 *   Rego        - ConstraintTemplate/Constraint schema check (no Rego
 *                 evaluator installs here) plus the golden files of test_ir.c
 * A missing tool skips, or fails when KLOUDLENS_REQUIRE_LIVE=1.
 */
#include <sys/wait.h>

#include "helpers.h"

static const char *const contracts[] = {
	"examples/contracts/web-server.yaml",
	"examples/contracts/batch-job.yaml",
	"examples/contracts/sidecar-proxy.yaml",
	"tests/contractc/data/busybox-allowlist.yaml",
	"tests/contractc/data/busybox-denylist.yaml",
	"tests/contractc/data/busybox-kill.yaml",
	NULL,
};

static const char *const profiles[] = {
	"examples/contracts/web-server.profile.json",
	"examples/contracts/batch-job.profile.json",
	"examples/contracts/sidecar-proxy.profile.json",
	NULL,
};

/* compile every contract, and every contract generated from a profile, to all targets */
static char *compile_everything(void)
{
	char *dir = make_tmpdir();
	for (size_t i = 0; contracts[i]; i++) {
		char *c = src_path(contracts[i]);
		char *argv[] = { "contractc", "compile", "-t", "all", "-o", dir, c, NULL };
		struct cli_result r = run_cli(7, argv);
		cr_assert_eq(r.rc, 0, "compile %s: %s", c, r.err);
		cli_free(&r);
		free(c);
	}
	for (size_t i = 0; profiles[i]; i++) {
		char *p = src_path(profiles[i]), *gen = NULL, *name = NULL;
		cr_assert(asprintf(&name, "gen%zu", i) >= 0);
		cr_assert(asprintf(&gen, "%s/%s.contract.yml", dir, name) >= 0);
		char *argv[] = { "contractc", "generate", "--from-profile", p, "--name", name, "-o", gen, NULL };
		struct cli_result r = run_cli(8, argv);
		cr_assert_eq(r.rc, 0, "generate %s: %s", p, r.err);
		cli_free(&r);
		char *argv2[] = { "contractc", "compile", "-t", "all", "-o", dir, gen, NULL };
		r = run_cli(7, argv2);
		cr_assert_eq(r.rc, 0, "compile %s: %s", gen, r.err);
		cli_free(&r);
		free(p);
		free(gen);
		free(name);
	}
	return dir;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	int r;
	va_start(ap, fmt);
	r = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert(r >= 0);
	r = system(cmd);
	free(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

static char *sh_out(const char *cmd, int *rc)
{
	FILE *p = popen(cmd, "r");
	struct cc_buf b = { 0 };
	char buf[4096];
	size_t n;
	cr_assert(p, "popen %s", cmd);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		cc_buf_putn(&b, buf, n);
	int st = pclose(p);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	return cc_buf_steal(&b);
}

Test(enforcers, apparmor_parser_compiles_every_profile, .timeout = 120)
{
	NEED_TOOL("apparmor_parser");
	char *dir = compile_everything();
	char **files = list_dir(dir, ".apparmor");
	size_t n = 0;
	for (size_t i = 0; files[i]; i++, n++) {
		/* stderr always carries a harmless cache notice; judge by exit code */
		int rc = sh("apparmor_parser -Q -K '%s' >/dev/null 2>'%s.log'", files[i], files[i]);
		if (rc) {
			char *log = NULL, *l;
			cr_assert(asprintf(&log, "%s.log", files[i]) >= 0);
			l = slurp(log);
			cr_assert_fail("apparmor_parser rejected %s (rc %d):\n%s", files[i], rc, l);
		}
	}
	cr_assert_eq(n, 9, "expected 9 AppArmor profiles, got %zu", n);
	/* control: the parser does reject a broken profile */
	char *bad = NULL;
	cr_assert(asprintf(&bad, "%s/broken.aa", dir) >= 0);
	FILE *f = fopen(bad, "w");
	cr_assert(f);
	fputs("profile broken {\n  capability no_such_cap,\n}\n", f);
	fclose(f);
	cr_assert_neq(sh("apparmor_parser -Q -K '%s' >/dev/null 2>&1", bad), 0);
	free(bad);
	list_free(files);
	rm_rf(dir);
	free(dir);
}

Test(enforcers, seccomp_names_resolve, .timeout = 120)
{
	NEED_TOOL("scmp_sys_resolver");
	char *dir = compile_everything();
	char **files = list_dir(dir, ".seccomp.json");
	size_t names = 0;
	for (size_t i = 0; files[i]; i++) {
		json_error_t je;
		json_t *doc = json_load_file(files[i], 0, &je), *e;
		size_t k;
		cr_assert(doc, "%s: %s", files[i], je.text);
		json_array_foreach(json_object_get(doc, "syscalls"), k, e) {
			size_t m;
			json_t *nm;
			json_array_foreach(json_object_get(e, "names"), m, nm) {
				char *cmd = NULL, *out;
				int rc;
				cr_assert(asprintf(&cmd, "scmp_sys_resolver -a x86_64 %s",
						   json_string_value(nm)) >= 0);
				out = sh_out(cmd, &rc);
				cr_assert_eq(rc, 0);
				/* below 0 means unknown on that arch; runc would ignore it */
				cr_assert_geq(atoi(out), 0, "%s: %s is not a syscall", files[i],
					      json_string_value(nm));
				names++;
				free(out);
				free(cmd);
			}
		}
		json_decref(doc);
	}
	cr_assert_gt(names, 100);
	int rc;
	char *out = sh_out("scmp_sys_resolver -a x86_64 nosuchsyscall", &rc);
	cr_assert_lt(atoi(out), 0, "control: the resolver must reject unknown names");
	free(out);
	list_free(files);
	rm_rf(dir);
	free(dir);
}

static void node_deps(void)
{
	NEED_TOOL("node");
	char *script = src_path("scripts/node-deps.sh");
	int rc = sh("bash '%s' >&2", script);
	if (rc && !require_live())
		cr_skip_test("scripts/node-deps.sh failed (rc %d): no npm registry?", rc);
	cr_assert_eq(rc, 0, "scripts/node-deps.sh failed");
	free(script);
}

Test(enforcers, kubernetes_objects_validate_against_schemas, .timeout = 300)
{
	node_deps();
	char *dir = compile_everything();
	char *kv = src_path("tests/contractc/node/kvalidate.js");
	char *cmd = NULL, *out;
	int rc;
	size_t docs = 0;

	cr_assert(asprintf(&cmd, "cd '%s' && node '%s' --strict *.yaml 2>&1", dir, kv) >= 0);
	out = sh_out(cmd, &rc);
	cr_assert_eq(rc, 0, "ajv rejected generated objects:\n%s", out);
	for (char *p = out; (p = strstr(p, ": valid\n")); p++)
		docs++;
	/* 9 contracts x (kubearmor, cilium, kyverno, 2 x gatekeeper, netpol, podsecurity) */
	cr_assert_eq(docs, 9 * 7, "validated %zu documents:\n%s", docs, out);
	cr_assert_null(strstr(out, "NO SCHEMA"));
	free(out);
	free(cmd);
	/* control: strict schemas catch a typo in an otherwise valid object */
	char *bad = NULL;
	cr_assert(asprintf(&bad, "%s/typo.yaml", dir) >= 0);
	FILE *f = fopen(bad, "w");
	cr_assert(f);
	fputs("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: t\n"
	      "spec:\n  podSelecter: {}\n",
	      f);
	fclose(f);
	cr_assert(asprintf(&cmd, "node '%s' --strict '%s' >/dev/null 2>&1", kv, bad) >= 0);
	cr_assert_eq(sh("%s", cmd), 1);
	free(cmd);
	free(bad);
	free(kv);
	rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------ real container checks */

static const char workload[] =
	"touch /tmp/f && echo ALLOWED-touch; mkdir /tmp/d && echo MKDIR-WORKED || echo DENIED-mkdir";

static char *make_bundle(const char *runtime, const char *profile_json)
{
	char *b = make_tmpdir();
	json_error_t je;

	cr_assert_eq(sh("mkdir -p '%s/rootfs/bin' '%s/rootfs/tmp' '%s/rootfs/proc' '%s/rootfs/dev' "
			"'%s/rootfs/sys' '%s/rootfs/etc' && cp /bin/busybox '%s/rootfs/bin/' && "
			"for a in sh mkdir touch echo cat; do ln -s busybox '%s/rootfs/bin/'$a; done",
			b, b, b, b, b, b, b, b),
		     0);
	cr_assert_eq(sh("cd '%s' && runc spec", b), 0, "runc spec failed");
	char *cfg = NULL;
	cr_assert(asprintf(&cfg, "%s/config.json", b) >= 0);
	json_t *c = json_load_file(cfg, 0, &je), *prof = json_load_file(profile_json, 0, &je);
	cr_assert(c && prof, "%s", je.text);
	json_t *proc = json_object_get(c, "process"), *args = json_array();
	json_object_set_new(proc, "terminal", json_false());
	json_array_append_new(args, json_string("/bin/sh"));
	json_array_append_new(args, json_string("-c"));
	json_array_append_new(args, json_string(workload));
	json_object_set_new(proc, "args", args);
	json_object_set_new(json_object_get(c, "root"), "readonly", json_false());
	json_object_set_new(json_object_get(c, "linux"), "seccomp", prof);
	cr_assert_eq(json_dump_file(c, cfg, JSON_INDENT(1)), 0);
	json_decref(c);
	free(cfg);
	(void)runtime;
	return b;
}

static void run_container(const char *runtime, const char *contract_rel, const char *denied_marker)
{
	char *dir = make_tmpdir(), *contract = src_path(contract_rel), *prof = NULL;
	cr_assert(asprintf(&prof, "%s/p.json", dir) >= 0);
	char *argv[] = { "contractc", "compile", "-t", "seccomp", contract, NULL };
	struct cli_result r = run_cli(5, argv);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	FILE *f = fopen(prof, "w");
	cr_assert(f);
	fputs(r.out, f);
	fclose(f);
	cli_free(&r);

	char *b = make_bundle(runtime, prof), *cmd = NULL, *out;
	int rc;
	cr_assert(asprintf(&cmd, "cd '%s' && %s --root '%s/state' run kl-cc-%d 2>&1", b, runtime, b,
			   (int)getpid()) >= 0);
	out = sh_out(cmd, &rc);
	if (strstr(out, "cgroups in hybrid mode") && !strcmp(runtime, "crun")) {
		/* crun on a fresh boot: hugetlb sits on the v2 hierarchy (MACHINE.md §1) */
		sh("mkdir -p /sys/fs/cgroup/hugetlb && (mountpoint -q /sys/fs/cgroup/hugetlb || "
		   "mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb)");
		free(out);
		out = sh_out(cmd, &rc);
	}
	cr_assert(strstr(out, "DENIED-mkdir"), "%s: mkdir was not denied under %s:\n%s", runtime,
		  contract_rel, out);
	cr_assert(strstr(out, denied_marker), "%s: no \"%s\":\n%s", runtime, denied_marker, out);
	cr_assert_null(strstr(out, "MKDIR-WORKED"));
	cr_assert(strstr(out, "ALLOWED-touch"), "%s: allowed workload failed:\n%s", runtime, out);
	free(out);
	free(cmd);
	rm_rf(b);
	free(b);
	free(prof);
	free(contract);
	rm_rf(dir);
	free(dir);
}

static void need_container(const char *runtime)
{
	NEED_TOOL(runtime);
	NEED_TOOL("runc"); /* `runc spec` writes the bundle config for both */
	if (access("/bin/busybox", X_OK)) {
		if (require_live())
			cr_assert_fail("/bin/busybox (busybox-static) is missing");
		cr_skip_test("busybox-static is not installed");
	}
	if (geteuid() != 0) {
		if (require_live())
			cr_assert_fail("container checks need root");
		cr_skip_test("container checks need root");
	}
}

Test(seccomp_container, runc_allowlist, .timeout = 120)
{
	need_container("runc");
	run_container("runc", "tests/contractc/data/busybox-allowlist.yaml", "Operation not permitted");
}

Test(seccomp_container, runc_denylist, .timeout = 120)
{
	need_container("runc");
	run_container("runc", "tests/contractc/data/busybox-denylist.yaml", "Operation not permitted");
}

/* action kill: the mkdir process dies of SIGSYS, the shell goes on */
Test(seccomp_container, runc_kill_action, .timeout = 120)
{
	need_container("runc");
	run_container("runc", "tests/contractc/data/busybox-kill.yaml", "Bad system call");
}

Test(seccomp_container, crun_allowlist, .timeout = 120)
{
	need_container("crun");
	run_container("crun", "tests/contractc/data/busybox-allowlist.yaml", "Operation not permitted");
}
