/* SPDX-License-Identifier: Apache-2.0 */
/* IR and Profile parsers, compilers' determinism and golden outputs. */
#include <libgen.h>

#include "helpers.h"

static const char *const examples[] = { "web-server", "batch-job", "sidecar-proxy", NULL };

static struct cc_contract *load_example(const char *name)
{
	char *rel = NULL, *path, *data;
	struct cc_contract *c = NULL;
	struct cc_diag d = { 0 };

	cr_assert(asprintf(&rel, "examples/contracts/%s.yaml", name) >= 0);
	path = src_path(rel);
	data = slurp(path);
	int r = cc_contract_parse(path, data, strlen(data), &c, &d);
	cr_assert_eq(r, 0, "%s: %s", path, d.n ? d.msgs[0] : "?");
	cc_diag_free(&d);
	free(data);
	free(path);
	free(rel);
	return c;
}

Test(ir, examples_parse)
{
	for (size_t i = 0; examples[i]; i++) {
		struct cc_contract *c = load_example(examples[i]);
		cr_assert_str_eq(c->name, examples[i]);
		cc_contract_free(c);
	}
}

/*
 * Every malformed file has its exact messages next to it (.err). The files
 * are parsed under their base name so the messages match what the CLI
 * prints when run from that directory.
 */
static void check_corpus(const char *reldir, const char *suffix, bool profile)
{
	char *dir = src_path(reldir);
	char **files = list_dir(dir, suffix);
	size_t n = 0;

	for (size_t i = 0; files[i]; i++, n++) {
		char *data = slurp(files[i]), *errf = NULL, *want, *base = strdup(files[i]);
		struct cc_diag d = { 0 };
		struct cc_buf got = { 0 };
		int r;

		cr_assert(asprintf(&errf, "%.*s.err", (int)(strlen(files[i]) - strlen(suffix)),
				   files[i]) >= 0);
		want = slurp(errf);
		if (profile) {
			struct cc_profile *p = NULL;
			r = cc_profile_parse(basename(base), data, strlen(data), &p, &d);
			cc_profile_free(p);
		} else {
			struct cc_contract *c = NULL;
			r = cc_contract_parse(basename(base), data, strlen(data), &c, &d);
			cc_contract_free(c);
		}
		cr_expect_eq(r, -EINVAL, "%s parsed (r=%d)", files[i], r);
		for (size_t k = 0; k < d.n; k++)
			cc_buf_printf(&got, "%s\n", d.msgs[k]);
		char *g = cc_buf_steal(&got);
		cr_expect_str_eq(g, want, "%s: messages differ\n--- got\n%s--- want\n%s", files[i], g,
				 want);
		/* the documented shape of every message */
		for (size_t k = 0; k < d.n; k++) {
			int line = 0, col = 0;
			char fname[256], rest[16];
			cr_expect(sscanf(d.msgs[k], "%255[^:]:%d:%d: %15s", fname, &line, &col,
					 rest) == 4 && line > 0 && col > 0,
				  "not file:line:column: path: message: %s", d.msgs[k]);
		}
		free(g);
		cc_diag_free(&d);
		free(data);
		free(errf);
		free(want);
		free(base);
	}
	cr_assert_gt(n, 4, "corpus %s is too small", dir);
	list_free(files);
	free(dir);
}

Test(ir, malformed_contracts_exact_messages)
{
	check_corpus("tests/contractc/data/bad-contracts", ".yaml", false);
}

Test(profile, malformed_profiles_exact_messages)
{
	check_corpus("tests/contractc/data/bad-profiles", ".json", true);
}

Test(profile, examples_parse)
{
	for (size_t i = 0; examples[i]; i++) {
		char *rel = NULL, *path, *data;
		struct cc_profile *p = NULL;
		struct cc_diag d = { 0 };
		cr_assert(asprintf(&rel, "examples/contracts/%s.profile.json", examples[i]) >= 0);
		path = src_path(rel);
		data = slurp(path);
		int r = cc_profile_parse(path, data, strlen(data), &p, &d);
		cr_assert_eq(r, 0, "%s: %s", path, d.n ? d.msgs[0] : "?");
		cr_assert_eq(p->nw, 1);
		cr_assert_gt(p->w[0].syscalls.n, 0);
		cc_profile_free(p);
		cc_diag_free(&d);
		free(data);
		free(path);
		free(rel);
	}
}

Test(compile, deterministic_and_golden)
{
	const char *update = getenv("KLOUDLENS_UPDATE_GOLDEN");

	for (size_t i = 0; examples[i]; i++) {
		struct cc_contract *a = load_example(examples[i]), *b = load_example(examples[i]);
		for (int t = 0; t < CC_T_COUNT; t++) {
			char *x = NULL, *y = NULL, *rel = NULL, *gp;
			struct cc_diag w1 = { 0 }, w2 = { 0 };
			cr_assert_eq(cc_compile(a, t, &x, &w1), 0);
			cr_assert_eq(cc_compile(b, t, &y, &w2), 0);
			cr_assert_str_eq(x, y, "%s/%s is not deterministic", examples[i],
					 cc_target_names[t]);
			cr_assert_eq(w1.n, w2.n);
			cr_assert(asprintf(&rel, "tests/contractc/golden/%s%s", examples[i],
					   cc_target_suffix[t]) >= 0);
			gp = src_path(rel);
			if (update && !strcmp(update, "1")) {
				FILE *f = fopen(gp, "w");
				cr_assert(f, "%s: %s", gp, strerror(errno));
				fputs(x, f);
				fclose(f);
			}
			char *g = slurp(gp);
			cr_expect_str_eq(x, g, "%s differs from its golden file (KLOUDLENS_UPDATE_GOLDEN=1 rewrites)",
					 gp);
			free(g);
			free(gp);
			free(rel);
			free(x);
			free(y);
			cc_diag_free(&w1);
			cc_diag_free(&w2);
		}
		cc_contract_free(a);
		cc_contract_free(b);
	}
}

static char *compile_one(const char *example, enum cc_target t, struct cc_diag *w)
{
	struct cc_contract *c = load_example(example);
	char *s = NULL;
	cr_assert_eq(cc_compile(c, t, &s, w), 0);
	cc_contract_free(c);
	return s;
}

Test(compile, cilium_fqdn_needs_dns_rule)
{
	struct cc_diag w = { 0 };
	char *s = compile_one("web-server", CC_T_CILIUM, &w);
	cr_assert(strstr(s, "matchName: api.payments.example.com"));
	/* the L7 DNS rule that lets toFQDNs learn addresses */
	cr_assert(strstr(s, "port: \"53\"\n        protocol: ANY\n      rules:\n        dns:\n        - matchPattern: \"*\""),
		  "%s", s);
	free(s);
	cc_diag_free(&w);
}

Test(compile, netpol_allows_dns_and_warns_on_names)
{
	struct cc_diag w = { 0 };
	char *s = compile_one("web-server", CC_T_NETPOL, &w);
	cr_assert(strstr(s, "k8s-app: kube-dns"));
	cr_assert(strstr(s, "port: 53"));
	bool warned = false;
	for (size_t i = 0; i < w.n; i++)
		if (strstr(w.msgs[i], "netpol: spec.network.egress[0]: NetworkPolicy cannot match DNS name api.payments.example.com"))
			warned = true;
	cr_assert(warned, "no warning for the DNS peer");
	/* and the output says so as well */
	cr_assert(strstr(s, "kloudlens.io/not-expressed"));
	cr_assert(strstr(s, "# NOT EXPRESSED by netpol"));
	free(s);
	cc_diag_free(&w);
}

Test(compile, podsecurity_levels)
{
	static const struct {
		const char *ex, *level;
	} want[] = {
		{ "web-server", "baseline" },
		{ "batch-job", "restricted" },
		{ "sidecar-proxy", "privileged" },
	};
	for (size_t i = 0; i < 3; i++) {
		struct cc_contract *c = load_example(want[i].ex);
		struct cc_diag nb = { 0 }, nr = { 0 };
		cr_assert_str_eq(cc_pss_level(c, &nb, &nr), want[i].level, "%s", want[i].ex);
		cc_diag_free(&nb);
		cc_diag_free(&nr);
		cc_contract_free(c);
	}
	struct cc_diag w = { 0 };
	char *s = compile_one("sidecar-proxy", CC_T_PODSECURITY, &w);
	cr_assert(strstr(s, "pod-security.kubernetes.io/enforce: privileged"));
	cr_assert(strstr(s, "spec.capabilities.allow has NET_ADMIN"), "reason missing:\n%s", s);
	free(s);
	cc_diag_free(&w);
}

Test(compile, seccomp_actions)
{
	struct cc_diag w = { 0 };
	char *s = compile_one("batch-job", CC_T_SECCOMP, &w);
	/* audit mode turns the kill action into logging, with a warning */
	cr_assert(strstr(s, "\"defaultAction\": \"SCMP_ACT_ALLOW\""));
	cr_assert(strstr(s, "\"action\": \"SCMP_ACT_LOG\""));
	cr_assert_gt(w.n, 0);
	free(s);
	cc_diag_free(&w);
	s = compile_one("web-server", CC_T_SECCOMP, &w);
	cr_assert(strstr(s, "\"defaultAction\": \"SCMP_ACT_ERRNO\""));
	cr_assert(strstr(s, "\"defaultErrnoRet\": 1"));
	free(s);
	cc_diag_free(&w);
}

Test(cli, help_on_each_command)
{
	const char *cmds[] = { "validate", "compile", "generate", "gap" };
	for (size_t i = 0; i < 4; i++) {
		char *argv[] = { "contractc", (char *)cmds[i], "--help", NULL };
		struct cli_result r = run_cli(3, argv);
		cr_assert_eq(r.rc, 0);
		cr_assert(strstr(r.out, "usage: contractc"), "%s", r.out);
		cli_free(&r);
	}
	char *argv[] = { "contractc", "--help", NULL };
	struct cli_result r = run_cli(2, argv);
	cr_assert_eq(r.rc, 0);
	cli_free(&r);
	char *bad[] = { "contractc", "compile", "-t", "nosuch", "x.yaml", NULL };
	r = run_cli(5, bad);
	cr_assert_eq(r.rc, CC_EXIT_USAGE);
	cli_free(&r);
}

Test(cli, compile_all_writes_every_target)
{
	char *dir = make_tmpdir(), *ex = src_path("examples/contracts/web-server.yaml");
	char *argv[] = { "contractc", "compile", "-t", "all", "-o", dir, ex, NULL };
	struct cli_result r = run_cli(7, argv);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert(strstr(r.err, "contractc: warning: web-server: netpol:"));
	for (int t = 0; t < CC_T_COUNT; t++) {
		char *p = NULL;
		struct stat st;
		cr_assert(asprintf(&p, "%s/web-server%s", dir, cc_target_suffix[t]) >= 0);
		cr_assert_eq(stat(p, &st), 0, "%s missing", p);
		cr_assert_gt(st.st_size, 0);
		free(p);
	}
	cli_free(&r);
	char *argv2[] = { "contractc", "compile", "-W", "-t", "netpol", ex, NULL };
	r = run_cli(6, argv2);
	cr_assert_eq(r.rc, CC_EXIT_INVALID, "-W must fail on an unexpressed rule");
	cli_free(&r);
	rm_rf(dir);
	free(dir);
	free(ex);
}

Test(match, globs_dns_cidr)
{
	cr_assert(cc_glob_match("/proc/*/status", "/proc/12/status"));
	cr_assert_not(cc_glob_match("/proc/*/status", "/proc/12/task/1/status"));
	cr_assert(cc_glob_match("/lib/**.so*", "/lib/x86_64-linux-gnu/libc.so.6"));
	cr_assert(cc_glob_match("/tmp/report-*.csv", "/tmp/report-a1.csv"));
	cr_assert_not(cc_glob_match("/tmp/report-?.csv", "/tmp/report-ab.csv"));
	cr_assert(cc_dns_match("*.s3.eu-west-1.amazonaws.com", "reports.s3.eu-west-1.amazonaws.com"));
	cr_assert_not(cc_dns_match("*.example.com", "a.b.example.com"));
	cr_assert(cc_dns_match("API.example.com", "api.example.com."));
	cr_assert(cc_cidr_match("10.20.0.0/16", "10.20.3.4"));
	cr_assert_not(cc_cidr_match("10.20.0.0/16", "10.21.0.1"));
	cr_assert(cc_cidr_match("fd00::/8", "fd12::1"));
	cr_assert_not(cc_cidr_match("10.0.0.0/8", "fd12::1"));
	cr_assert_not(cc_valid_cidr("10.0.0.0/33"));
	/* hostile pattern stays bounded */
	cr_assert_not(cc_glob_match("/*a*a*a*a*a*a*a*b",
				    "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

/* The emitter's quoting: every tricky scalar reads back as the same string. */
Test(emit, yaml_scalars_round_trip)
{
	static const char *const vals[] = {
		"true", "no", "~", "null", "1.25", "0x1F", "-3", ".5", "2026-11-24T22:57:00Z",
		"a: b", "#comment", "*alias", "&anchor", "!tag", "- item", "[x]", "{y}",
		"k8s:io.kubernetes.pod.namespace", "nginx:1.25", "quote\"d", "back\\slash",
		"tab\there", "line1\nline2\n", "line1\nline2", "trail\n\n", " lead", "",
		"%percent", "@at", "`tick`", "=(privileged)", "x(hostPath)", "|pipe", ">gt",
		"ünïcode", NULL,
	};
	json_t *doc = json_object(), *arr = json_array();
	for (size_t i = 0; vals[i]; i++) {
		json_object_set_new(doc, vals[i][0] ? vals[i] : "empty", json_string(vals[i]));
		json_array_append_new(arr, json_string(vals[i]));
	}
	json_object_set_new(doc, "list", arr);
	char *y = cc_yaml_emit(doc, NULL);
	struct cc_node *root = NULL;
	struct cc_diag d = { 0 };
	cr_assert_eq(cc_yaml_load("emit.yaml", y, strlen(y), &root, &d), 0, "%s\n%s",
		     d.n ? d.msgs[0] : "", y);
	size_t k = 0;
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		struct cc_node *key = root->kids[i], *v = root->kids[i + 1];
		if (!strcmp(key->str, "list")) {
			for (size_t j = 0; j < v->n; j++) {
				cr_assert_str_eq(v->kids[j]->str, vals[j]);
				/* anything that is not plain text must have been quoted */
				if (!strcmp(vals[j], "true") || !strcmp(vals[j], "1.25"))
					cr_assert(v->kids[j]->quoted);
			}
			continue;
		}
		cr_assert_str_eq(v->str, vals[k], "key %s", key->str);
		cr_assert_str_eq(key->str, vals[k][0] ? vals[k] : "empty");
		k++;
	}
	cc_node_free(root);
	cc_diag_free(&d);
	free(y);
	json_decref(doc);
}
