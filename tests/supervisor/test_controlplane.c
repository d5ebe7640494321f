/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The docker-mode control plane: strict validation of the four kinds
 * (broken YAML, unknown fields, wrong types, bad enums: each refused with
 * file:line:column and the key), the examples directory accepted, the
 * last good content of a file kept when it turns bad, and HookSubscriptions
 * compiled into a filter file that kl-collector's own parser accepts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controlplane.h"
#ifdef KL_HAVE_COLLECTOR
#include "collector.h"
#endif

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-cp-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(controlplane, .init = setup, .fini = teardown);

static const char *put(const char *name, const char *content)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(content, f);
	fclose(f);
	return path;
}

#define HOOK_HEAD "apiVersion: kloudlens.io/v1\nkind: HookSubscription\nmetadata:\n  name: h\nspec:\n"

/* The error must name the file, the line:column and the key. */
static void expect_bad(const char *yaml, const char *where, const char *what)
{
	char err[1024] = "", want[512];
	const char *p = put("bad.yaml", yaml);

	cr_expect_eq(kl_cp_validate_file(p, err, sizeof(err)), -EINVAL, "accepted:\n%s", yaml);
	snprintf(want, sizeof(want), "%s:%s", p, where);
	cr_expect(strstr(err, want) == err, "error '%s' does not start with '%s'", err, want);
	cr_expect_not_null(strstr(err, what), "error '%s' does not say '%s'", err, what);
}

Test(controlplane, broken_inputs_name_file_line_column_and_key)
{
	/* YAML syntax */
	expect_bad(HOOK_HEAD "  categories: [crit\n", "7:", "(syntax)");
	expect_bad("a: b\n c: d\n", "2:", "(syntax)");
	expect_bad(HOOK_HEAD "  categories: [crit]\n\tselector: {}\n", "7:", "(syntax)");
	/* unknown fields, at every level */
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selectr: {}\n", "7:3: spec.selectr", "unknown field");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector:\n    namespace: [a]\n", "8:5: spec.selector.namespace",
		   "unknown field");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: HookSubscription\nmetadata:\n  name: h\n  nmae: x\nspec:\n"
		   "  categories: [crit]\n", "5:3: metadata.nmae", "unknown field");
	expect_bad(HOOK_HEAD "  categories: [crit]\nextra: 1\n", "7:1: extra", "unknown field");
	/* wrong types */
	expect_bad(HOOK_HEAD "  categories: crit\n", "6:15: spec.categories", "expected a list");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector:\n    hostProcesses: yes please\n",
		   "8:20: spec.selector.hostProcesses", "expected true or false");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  sampling:\n    percent: ten\n", "8:14: spec.sampling.percent",
		   "expected an integer");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  sampling:\n    percent: 0\n", "8:14: spec.sampling.percent",
		   "1..100");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector:\n    containers: [42]\n",
		   "8:18: spec.selector.containers[0]", "expected a string");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector: []\n", "7:13: spec.selector", "expected a mapping");
	/* enums, duplicates, required fields, empty lists */
	expect_bad(HOOK_HEAD "  categories: [crit, bulk_fiel]\n", "6:22: spec.categories[1]", "must be one of crit,");
	expect_bad(HOOK_HEAD "  categories: [crit, crit]\n", "6:22: spec.categories[1]", "duplicate");
	expect_bad(HOOK_HEAD "  categories: []\n", "6:15: spec.categories", "at least 1");
	expect_bad(HOOK_HEAD "  syscalls: [openat]\n", "6:3: spec.categories", "required");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  categories: [dns]\n", "7:3: spec.categories", "duplicate key");
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector:\n    pods:\n      matchExpressions:\n"
		   "        - key: tier\n          operator: Within\n",
		   "11:21: spec.selector.pods.matchExpressions[0].operator", "must be one of In");
	/* what the filter file cannot carry */
	expect_bad(HOOK_HEAD "  categories: [crit]\n  selector:\n    containers: [\"a b\"]\n",
		   "8:18: spec.selector", "blanks");
	/* the envelope */
	expect_bad("apiVersion: kloudlens.io/v2\nkind: HookSubscription\nmetadata: {name: h}\nspec: {}\n",
		   "1:13: apiVersion", "kloudlens.io/v1");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: Hook\nmetadata: {name: h}\nspec: {}\n", "2:7: kind",
		   "must be HookSubscription");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: HookSubscription\nmetadata: {namespace: x}\nspec: {}\n",
		   "3:11: metadata.name", "required");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: HookSubscription\nmetadata: {name: h, namespace: x}\n"
		   "spec: {categories: [crit]}\n", "3:32: metadata.namespace", "cluster-scoped");
	expect_bad("- a\n- b\n", "1:1: (document)", "expected a mapping");
	/* the second document of a file */
	expect_bad(HOOK_HEAD "  categories: [crit]\n---\n" HOOK_HEAD "  categories: [nope]\n", "13:16: spec.categories[0]",
		   "must be one of");
	/* BaselinePolicy */
	expect_bad("apiVersion: kloudlens.io/v1\nkind: BaselinePolicy\nmetadata: {name: b}\nspec:\n"
		   "  selector: {container: web}\n  learning: {window: 1h, minSamples: -3}\n",
		   "6:38: spec.learning.minSamples", "must be 1..");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: BaselinePolicy\nmetadata: {name: b}\nspec:\n"
		   "  selector: {container: web}\n", "5:3: spec.learning", "required");
	expect_bad("apiVersion: kloudlens.io/v1\nkind: BaselinePolicy\nmetadata: {name: b}\nspec:\n"
		   "  selector: {container: web}\n  learning: {window: 1h}\n  afterLearning: {emit: all}\n",
		   "7:25: spec.afterLearning.emit", "deviations, none");
}

Test(controlplane, binary_and_empty_input_never_crash)
{
	char err[1024];
	static const char junk[] = "\x01\x02\xff\xfe: [\x00\x00}}}";
	FILE *f = fopen(put("junk.yaml", ""), "w");

	fwrite(junk, 1, sizeof(junk), f);
	fclose(f);
	char path[256];
	snprintf(path, sizeof(path), "%s/junk.yaml", dir);
	cr_assert_lt(kl_cp_validate_file(path, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, path));
	/* an empty file and a lone "---" hold no object: valid, nothing in force */
	cr_assert_eq(kl_cp_validate_file(put("e.yaml", ""), err, sizeof(err)), 0);
	cr_assert_eq(kl_cp_validate_file(put("e.yaml", "---\n"), err, sizeof(err)), 0);
	/* deep nesting is refused, not recursed into forever */
	char deep[8192] = HOOK_HEAD "  categories: [crit]\n  selector: ";
	for (int i = 0; i < 2000; i++)
		strcat(deep, "[");
	cr_assert_lt(kl_cp_validate_file(put("deep.yaml", deep), err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	cr_assert_eq(kl_cp_validate_file(path, err, sizeof(err)), -ENOENT);
}

static const char *src_root(void)
{
	return KL_SOURCE_ROOT;
}

Test(controlplane, the_examples_directory_is_valid)
{
	static const struct { const char *file; int objects; } ex[] = {
		{ "hooksubscription.yaml", 2 }, { "baselinepolicy.yaml", 2 },
		{ "behaviorcontract.yaml", 1 }, { "nodecapabilities.yaml", 1 },
	};
	char path[512], err[1024];

	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		snprintf(path, sizeof(path), "%s/deployments/examples/%s", src_root(), ex[i].file);
		cr_assert_eq(kl_cp_validate_file(path, err, sizeof(err)), ex[i].objects, "%s: %s", path, err);
	}
}

#ifdef KL_HAVE_CONTRACTC
Test(controlplane, behavior_contracts_go_through_contractc)
{
	char err[1024] = "";
	/* schema-valid envelope, but contractc knows no such syscall */
	const char *p = put("c.yaml", "apiVersion: kloudlens.io/v1\nkind: BehaviorContract\nmetadata:\n  name: c\n"
				      "spec:\n  selector:\n    podLabels: {app: web}\n  mode: audit\n"
				      "  syscalls:\n    default: allow\n    deny: [no_such_syscall]\n");
	cr_assert_eq(kl_cp_validate_file(p, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, p), "%s", err);
	cr_assert_not_null(strstr(err, "no_such_syscall"), "%s", err);
}
#endif

static void logsink(const char *level, const char *msg, void *ctx)
{
	char *buf = ctx;
	snprintf(buf + strlen(buf), 8192 - strlen(buf), "%s %s\n", level, msg);
}

Test(controlplane, a_bad_file_keeps_its_last_good_content)
{
	static char log[8192];
	struct kl_cp *cp;
	bool changed;

	log[0] = 0;
	cr_assert_eq(kl_cp_new(dir, logsink, log, &cp), 0);
	put("h.yaml", HOOK_HEAD "  categories: [crit, proc_lc]\n");
	cr_assert_eq(kl_cp_rescan(cp, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(kl_cp_count(cp, KL_CP_HOOK), 1);
	char *t1 = kl_cp_filter_text(cp, 1);
	cr_assert_not_null(strstr(t1, "rule -/h\n  categories crit,proc_lc\nend\n"), "%s", t1);

	sleep(1);       /* a new mtime even on coarse-timestamp filesystems */
	put("h.yaml", HOOK_HEAD "  categories: [crit, proc_lc]\n  bogus: 1\n");
	cr_assert_eq(kl_cp_rescan(cp, &changed), 0);
	cr_assert_not(changed);
	cr_assert_eq(kl_cp_rejected(cp), 1);
	cr_assert_not_null(strstr(log, "h.yaml:7:3: spec.bogus: unknown field"), "%s", log);
	cr_assert_not_null(strstr(log, "previous content stays in force"), "%s", log);
	char *t2 = kl_cp_filter_text(cp, 1);
	cr_assert_str_eq(t1, t2);

	/* the same object twice: the second file is refused, naming the first */
	put("twin.yaml", HOOK_HEAD "  categories: [dns]\n");
	cr_assert_eq(kl_cp_rescan(cp, &changed), 0);
	cr_assert_not_null(strstr(log, "is also defined in h.yaml"), "%s", log);
	cr_assert_eq(kl_cp_count(cp, KL_CP_HOOK), 1);

	/* removed: its objects go */
	char p[256];
	snprintf(p, sizeof(p), "%s/h.yaml", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/twin.yaml", dir);
	unlink(p);
	cr_assert_eq(kl_cp_rescan(cp, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(kl_cp_count(cp, KL_CP_HOOK), 0);
	free(t1);
	free(t2);
	kl_cp_free(cp);
}

Test(controlplane, hooksubscriptions_compile_to_the_filter_file)
{
	struct kl_cp *cp;
	bool changed;
	char src[512], cmd[1200];

	snprintf(src, sizeof(src), "%s/deployments/examples/hooksubscription.yaml", src_root());
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/'", src, dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(kl_cp_new(dir, NULL, NULL, &cp), 0);
	cr_assert_eq(kl_cp_rescan(cp, &changed), 0);
	char *t = kl_cp_filter_text(cp, 7);
	cr_assert(!strncmp(t, "kloudlens-filter 1\n#", 20), "%s", t);
	cr_assert_str_eq(strstr(t, "generation"),
			 "generation 7\n"
			 "rule -/baseline-security\n"
			 "  categories crit,proc_lc,sock_lc,dns\n"
			 "  select host\n"
			 "  select containers\n"
			 "end\n"
			 "rule -/shop-web-datapath\n"
			 "  categories bulk_file,bulk_file_meta,bulk_net\n"
			 "  syscalls openat,close,read,write,sendto,recvfrom\n"
			 "  namespace shop\n"
			 "  exclude-namespace kube-system\n"
			 "  container nginx\n"
			 "  label app=web\n"
			 "  expr tier In frontend,edge\n"
			 "  sample bulk_file 10\n"
			 "  sample bulk_net 10\n"
			 "end\n");
#ifdef KL_HAVE_COLLECTOR
	/* the collector's parser takes it, and it compiles to the expected masks */
	char fp[256], err[512];
	struct kc_filter *f;
	struct kl_live L;
	snprintf(fp, sizeof(fp), "%s/collector.filter", dir);
	cr_assert_eq(kl_cp_write_atomic(fp, t), 0);
	cr_assert_eq(kc_filter_parse(fp, &f, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(kc_filter_generation(f), 7);
	cr_assert_eq(kc_filter_nrules(f), 2);
	cr_assert_eq(kc_filter_compile(f, NULL, 4026531836u, &L, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(L.host_rules, 1);
	cr_assert_eq(L.ctr_rules, 1);
	cr_assert_eq(L.all_rules, 0);
	cr_assert_eq(L.sel_rules, 2);
	cr_assert_eq(L.sc_rules[257 /* openat */], 2);
	cr_assert_eq(L.sc_rules[59 /* execve */], 1);
	cr_assert_eq(L.sc_rules[1 /* write */], 2);
	cr_assert_eq(L.sc_rules[46 /* sendmsg: not in the list */], 0);
	cr_assert_eq(L.sample_pct[1][KL_CAT_BULK_FILE], 10);
	cr_assert_eq(L.sample_pct[1][KL_CAT_BULK_FILE_META], 0);
	cr_assert_eq(L.cat_rules[KL_CAT_DNS], 1);
	kc_filter_free(f);
#endif
	free(t);
	kl_cp_free(cp);
}
