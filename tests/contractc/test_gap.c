/* SPDX-License-Identifier: Apache-2.0 */
/* Profile -> contract generation and gap analysis against every policy format. */
#include "helpers.h"

static const char *const examples[] = { "web-server", "batch-job", "sidecar-proxy", NULL };

static json_t *gap_json(const char *profile, const char *policy, int *rc)
{
	char *argv[] = { "contractc", "gap", "--profile", (char *)profile, "--policy",
			 (char *)policy, "--json", NULL };
	struct cli_result r = run_cli(7, argv);
	json_error_t je;
	json_t *j = json_loads(r.out, 0, &je);
	cr_assert(j, "gap --json output is not JSON (%s): %s\n%s", je.text, r.out, r.err);
	*rc = r.rc;
	cli_free(&r);
	return j;
}

static json_t *category(json_t *doc, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(doc, "categories"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "category")), name))
			return c;
	cr_assert_fail("no category %s", name);
	return NULL;
}

static bool has_item(json_t *cat, const char *list, const char *needle)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(cat, list), i, e)
		if (strstr(json_string_value(json_object_get(e, "item")), needle))
			return true;
	return false;
}

/* The web-server profile carries seeded misbehaviour: a shell, a read of
 * /etc/shadow and ptrace; and the contract allows things never used. */
Test(gap, seeded_denied_and_unused_in_contract)
{
	char *prof = src_path("examples/contracts/web-server.profile.json");
	char *pol = src_path("examples/contracts/web-server.yaml");
	int rc;
	json_t *j = gap_json(prof, pol, &rc);

	cr_assert_eq(rc, CC_EXIT_DENIED);
	cr_assert(has_item(category(j, "executables"), "observedButDenied", "/bin/sh"));
	cr_assert(has_item(category(j, "files"), "observedButDenied", "/etc/shadow"));
	cr_assert(has_item(category(j, "syscalls"), "observedButDenied", "ptrace"));
	cr_assert(has_item(category(j, "network-egress"), "unusedAllowances", "app=catalog"));
	cr_assert(has_item(category(j, "capabilities"), "unusedAllowances", "CHOWN"));
	/* evidence travels with the finding */
	json_t *den = json_array_get(json_object_get(category(j, "executables"), "observedButDenied"), 0);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(den, "evidence"), "count")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(den, "evidence"), "firstSeen")),
			 "2026-11-20T14:02:11Z");
	json_t *cov = json_object_get(json_object_get(j, "summary"), "coverage");
	cr_assert_str_eq(json_string_value(json_object_get(cov, "allowancesUsedPercent")), "78.2");
	json_decref(j);
	free(prof);
	free(pol);
}

/* Compile the contract to each gap-readable format and read it back. */
Test(gap, every_policy_format)
{
	static const struct {
		enum cc_target t;
		const char *format, *denied_cat, *denied_item;
	} fmts[] = {
		{ CC_T_SECCOMP, "seccomp", "syscalls", "ptrace" },
		{ CC_T_APPARMOR, "apparmor", "files", "/etc/shadow" },
		{ CC_T_KUBEARMOR, "kubearmor", "executables", "/bin/sh" },
		{ CC_T_NETPOL, "netpol", "network-egress", "api.payments.example.com" },
		{ CC_T_CILIUM, "cilium", NULL, NULL },
	};
	char *dir = make_tmpdir(), *prof = src_path("examples/contracts/web-server.profile.json");
	char *ex = src_path("examples/contracts/web-server.yaml");
	struct cc_contract *c = NULL;
	struct cc_diag d = { 0 };
	char *data = slurp(ex);

	cr_assert_eq(cc_contract_parse(ex, data, strlen(data), &c, &d), 0);
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		char *s = NULL, *path = NULL;
		int rc;
		cr_assert_eq(cc_compile(c, fmts[i].t, &s, &d), 0);
		cr_assert(asprintf(&path, "%s/policy%s", dir, cc_target_suffix[fmts[i].t]) >= 0);
		FILE *f = fopen(path, "w");
		cr_assert(f);
		fputs(s, f);
		fclose(f);
		json_t *j = gap_json(prof, path, &rc);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "policy"), "format")),
				 fmts[i].format);
		if (fmts[i].denied_cat) {
			cr_assert_eq(rc, CC_EXIT_DENIED, "%s", fmts[i].format);
			cr_assert(has_item(category(j, fmts[i].denied_cat), "observedButDenied",
					   fmts[i].denied_item),
				  "%s: %s not denied", fmts[i].format, fmts[i].denied_item);
		} else {
			/* cilium expresses the whole network section: nothing observed is denied there */
			cr_assert_eq(rc, CC_EXIT_OK, "%s", fmts[i].format);
			cr_assert(json_is_true(json_object_get(category(j, "network-egress"), "constrained")));
			cr_assert(has_item(category(j, "network-egress"), "unusedAllowances", "app=catalog"));
		}
		json_decref(j);
		free(s);
		free(path);
	}
	cc_diag_free(&d);
	cc_contract_free(c);
	free(data);
	free(ex);
	free(prof);
	rm_rf(dir);
	free(dir);
}

Test(gap, text_output_and_exit_codes)
{
	char *prof = src_path("examples/contracts/batch-job.profile.json");
	char *pol = src_path("examples/contracts/batch-job.yaml");
	char *argv[] = { "contractc", "gap", "--profile", prof, "--policy", pol, NULL };
	struct cli_result r = run_cli(6, argv);
	cr_assert_eq(r.rc, CC_EXIT_DENIED);
	cr_assert(strstr(r.out, "DENIED  to 10.20.3.4:40211/UDP"), "%s", r.out);
	cr_assert(strstr(r.out, "UNUSED  /lib/**.so* (glob)"), "%s", r.out);
	cr_assert(strstr(r.out, "coverage: "), "%s", r.out);
	cli_free(&r);
	char *argv2[] = { "contractc", "gap", "--profile", prof, NULL };
	r = run_cli(4, argv2);
	cr_assert_eq(r.rc, CC_EXIT_USAGE);
	cli_free(&r);
	free(prof);
	free(pol);
}

/* generate: valid, least-privilege (the profile passes with nothing unused),
 * deterministic, generalisations visible. */
Test(generate, round_trip_all_examples)
{
	char *dir = make_tmpdir();
	for (size_t i = 0; examples[i]; i++) {
		char *rel = NULL, *prof, *out = NULL, *out2 = NULL;
		cr_assert(asprintf(&rel, "examples/contracts/%s.profile.json", examples[i]) >= 0);
		prof = src_path(rel);
		cr_assert(asprintf(&out, "%s/%s.gen.yaml", dir, examples[i]) >= 0);
		cr_assert(asprintf(&out2, "%s/%s.gen2.yaml", dir, examples[i]) >= 0);
		char *argv[] = { "contractc", "generate", "--from-profile", prof, "-o", out, NULL };
		struct cli_result r = run_cli(6, argv);
		cr_assert_eq(r.rc, 0, "%s", r.err);
		cli_free(&r);
		char *argv2[] = { "contractc", "generate", "--from-profile", prof, "-o", out2, NULL };
		r = run_cli(6, argv2);
		cli_free(&r);
		char *a = slurp(out), *b = slurp(out2);
		cr_assert_str_eq(a, b, "generate is not deterministic");
		char *argv3[] = { "contractc", "validate", "-q", out, NULL };
		r = run_cli(4, argv3);
		cr_assert_eq(r.rc, 0, "%s", r.err);
		cli_free(&r);
		int rc;
		json_t *j = gap_json(prof, out, &rc);
		json_t *sum = json_object_get(j, "summary");
		cr_assert_eq(rc, 0, "%s: generated contract denies observed behaviour", examples[i]);
		cr_assert_eq(json_integer_value(json_object_get(sum, "unusedAllowances")), 0);
		json_decref(j);
		free(a);
		free(b);
		free(out);
		free(out2);
		free(prof);
		free(rel);
	}
	rm_rf(dir);
	free(dir);
}

static char *generate_example(const char *ex)
{
	char *rel = NULL, *prof;
	cr_assert(asprintf(&rel, "examples/contracts/%s.profile.json", ex) >= 0);
	prof = src_path(rel);
	char *argv[] = { "contractc", "generate", "--from-profile", prof, NULL };
	struct cli_result r = run_cli(4, argv);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	free(r.err);
	free(prof);
	free(rel);
	return r.out;
}

Test(generate, generalisations_are_visible)
{
	char *web = generate_example("web-server");
	cr_assert(strstr(web, "path: \"/proc/*/status\"\n      generalised: \"per-pid /proc path; observed 2 paths, e.g. /proc/1/status, /proc/29/status\""),
		  "%s", web);
	/* observed root => no runAsNonRoot promise */
	cr_assert(strstr(web, "runAsNonRoot: false"));
	/* DNS traffic is folded into spec.network.dns, not an egress rule */
	cr_assert(strstr(web, "dns: true"));
	cr_assert_null(strstr(web, "port: 53"));
	free(web);
	char *batch = generate_example("batch-job");
	cr_assert(strstr(batch, "path: \"/tmp/*\"\n      generalised: \"temporary file with a generated name; observed 2 paths"),
		  "%s", batch);
	cr_assert(strstr(batch, "port: 32768\n        endPort: 60999\n        protocol: UDP"), "%s", batch);
	cr_assert(strstr(batch, "ephemeral ports: 1 observation in 32768-60999 collapsed to the range"));
	cr_assert(strstr(batch, "runAsNonRoot: true"));
	free(batch);
}

Test(generate, several_workloads_need_a_choice)
{
	char *dir = make_tmpdir(), *p = NULL;
	cr_assert(asprintf(&p, "%s/two.json", dir) >= 0);
	FILE *f = fopen(p, "w");
	cr_assert(f);
	fputs("{\"apiVersion\":\"kloudlens.io/v1\",\"kind\":\"Profile\",\"metadata\":{\"id\":\"x\"},"
	      "\"workloads\":[{\"selector\":{\"container\":\"a\"},\"window\":{\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-02T00:00:00Z\"},\"samples\":{\"events\":1}},"
	      "{\"selector\":{\"container\":\"b\"},\"window\":{\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-02T00:00:00Z\"},\"samples\":{\"events\":1}}]}",
	      f);
	fclose(f);
	char *argv[] = { "contractc", "generate", "--from-profile", p, NULL };
	struct cli_result r = run_cli(4, argv);
	cr_assert_eq(r.rc, CC_EXIT_INVALID);
	cr_assert(strstr(r.err, "choose one with --workload"), "%s", r.err);
	cli_free(&r);
	char *argv2[] = { "contractc", "generate", "--from-profile", p, "--workload", "1", NULL };
	r = run_cli(6, argv2);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert(strstr(r.out, "name: b\n"), "%s", r.out);
	cli_free(&r);
	free(p);
	rm_rf(dir);
	free(dir);
}

/* Policies written by others (the schema samples, a hand-written AppArmor
 * profile with includes and qualifiers, a Docker-style seccomp profile). */
Test(gap, foreign_policies)
{
	static const struct {
		const char *file, *format, *cat, *list, *item;
		int rc;
	} cases[] = {
		/* Block policy: tcp is blocked, so the HTTPS call is denied */
		{ "kubearmor-sample.yaml", "kubearmor", "network-egress", "observedButDenied", "api.payments.example.com", CC_EXIT_DENIED },
		/* ingress only from app=client; the observed client is no known pod */
		{ "netpol-sample.yaml", "netpol", "network-ingress", "observedButDenied", "from 10.244.1.17:8080/TCP", CC_EXIT_DENIED },
		{ "cilium-sample.yaml", "cilium", "network-egress", "unusedAllowances", "api.example.com", CC_EXIT_DENIED },
		{ "hand.apparmor", "apparmor", "executables", "observedButDenied", "/bin/sh", CC_EXIT_DENIED },
		{ "hand.apparmor", "apparmor", "capabilities", "observedButDenied", "SETGID", CC_EXIT_DENIED },
		{ "docker-style.seccomp.json", "seccomp", "syscalls", "observedButDenied", "ptrace", CC_EXIT_DENIED },
		{ "docker-style.seccomp.json", "seccomp", "syscalls", "unusedAllowances", "personality", CC_EXIT_DENIED },
	};
	char *prof = src_path("examples/contracts/web-server.profile.json");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *rel = NULL, *pol;
		int rc;
		cr_assert(asprintf(&rel, "tests/contractc/data/policies/%s", cases[i].file) >= 0);
		pol = src_path(rel);
		json_t *j = gap_json(prof, pol, &rc);
		cr_assert_eq(rc, cases[i].rc, "%s", cases[i].file);
		cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "policy"), "format")),
				 cases[i].format);
		cr_assert(has_item(category(j, cases[i].cat), cases[i].list, cases[i].item),
			  "%s: %s/%s lacks %s", cases[i].file, cases[i].cat, cases[i].list, cases[i].item);
		json_decref(j);
		free(pol);
		free(rel);
	}
	/* KubeArmor readOnly+Block denies writes only: /etc reads stay allowed */
	char *pol = src_path("tests/contractc/data/policies/kubearmor-sample.yaml");
	int rc;
	json_t *j = gap_json(prof, pol, &rc);
	cr_assert_not(has_item(category(j, "files"), "observedButDenied", "/etc/passwd"));
	json_decref(j);
	free(pol);
	/* NetworkPolicy ipBlock.except is honoured */
	pol = src_path("tests/contractc/data/policies/netpol-sample.yaml");
	j = gap_json(prof, pol, &rc);
	cr_assert_eq(json_integer_value(json_object_get(category(j, "network-egress"), "allowed")), 1);
	json_decref(j);
	free(pol);
	/* an unexpanded AppArmor include is reported, not ignored */
	pol = src_path("tests/contractc/data/policies/hand.apparmor");
	char *argv[] = { "contractc", "gap", "--profile", prof, "--policy", pol, NULL };
	struct cli_result r = run_cli(6, argv);
	cr_assert(strstr(r.err, ":4: warning: #include <abstractions/base> is not expanded"), "%s", r.err);
	cli_free(&r);
	free(pol);
	free(prof);
}

Test(gap, unsupported_policy_is_an_error)
{
	char *dir = make_tmpdir(), *p = NULL;
	cr_assert(asprintf(&p, "%s/pod.yaml", dir) >= 0);
	FILE *f = fopen(p, "w");
	cr_assert(f);
	fputs("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", f);
	fclose(f);
	char *prof = src_path("examples/contracts/web-server.profile.json");
	char *argv[] = { "contractc", "gap", "--profile", prof, "--policy", p, NULL };
	struct cli_result r = run_cli(6, argv);
	cr_assert_eq(r.rc, CC_EXIT_INVALID);
	cr_assert(strstr(r.err, "unsupported policy (apiVersion v1, kind Pod)"), "%s", r.err);
	cli_free(&r);
	free(prof);
	free(p);
	rm_rf(dir);
	free(dir);
}
