/* SPDX-License-Identifier: Apache-2.0 */
/* contractc command line (docs/contractc.md). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cc.h"

static const char usage_main[] =
	"usage: contractc COMMAND [OPTIONS] ...\n"
	"\n"
	"Behavioural Contract compiler.\n"
	"\n"
	"commands:\n"
	"  validate   check BehaviorContract files (types, unknown keys, empty or contradictory rules)\n"
	"  compile    compile a contract for an enforcer (seccomp, apparmor, kubearmor, cilium,\n"
	"             kyverno, rego, netpol, podsecurity, or all)\n"
	"  generate   derive a least-privilege contract from an observed Profile\n"
	"  gap        compare an observed Profile with an existing policy\n"
	"\n"
	"Run 'contractc COMMAND --help' for the options of a command.\n"
	"exit status: 0 ok, 1 invalid input or failure, 2 usage error, 3 gap found denied behaviour\n";

static const char usage_validate[] =
	"usage: contractc validate [-q] CONTRACT...\n"
	"\n"
	"Parse and check each contract; print every problem as\n"
	"file:line:column: path.to.key: what is wrong\n"
	"\n"
	"  -q, --quiet   print nothing for valid files\n"
	"  -h, --help    this text\n";

static const char usage_compile[] =
	"usage: contractc compile -t TARGET [-o DIR] CONTRACT\n"
	"\n"
	"TARGET: seccomp | apparmor | kubearmor | cilium | kyverno | rego | netpol |\n"
	"        podsecurity | all (all needs -o)\n"
	"\n"
	"  -t, --target TARGET  enforcer to compile for\n"
	"  -o, --output DIR     write NAME.<target suffix> files into DIR instead of stdout\n"
	"  -W, --fail-on-warning  exit 1 when a rule could not be expressed\n"
	"  -h, --help           this text\n"
	"\n"
	"Rules a target cannot express are named in the output and printed as warnings.\n";

static const char usage_generate[] =
	"usage: contractc generate --from-profile PROFILE [--workload N] [--name NAME]\n"
	"                          [--mode audit|enforce] [-o FILE]\n"
	"\n"
	"Emit the least-privilege BehaviorContract for one workload of an observed Profile.\n"
	"Generalisations (per-pid /proc paths, generated temp file names, ephemeral ports,\n"
	"ingress clients) are written into each widened rule's `generalised` field.\n"
	"\n"
	"  -p, --from-profile FILE  the Profile (docs/profile.md)\n"
	"  -w, --workload N         index of the workload (needed when there are several)\n"
	"  -n, --name NAME          contract name (default: app label or container name)\n"
	"  -m, --mode MODE          audit or enforce (default enforce)\n"
	"  -o, --output FILE        write the contract to FILE instead of stdout\n"
	"  -h, --help               this text\n";

static const char usage_gap[] =
	"usage: contractc gap --profile PROFILE --policy POLICY [--workload N] [--json]\n"
	"\n"
	"List observed-but-denied behaviour and unused allowances, by category, with evidence.\n"
	"POLICY: BehaviorContract, OCI seccomp JSON, NetworkPolicy, CiliumNetworkPolicy,\n"
	"KubeArmorPolicy or AppArmor profile (detected from the content).\n"
	"\n"
	"  -p, --profile FILE   the observed Profile\n"
	"  -P, --policy FILE    the policy to check\n"
	"  -w, --workload N     workload index (needed when the profile has several)\n"
	"  -j, --json           machine-readable output\n"
	"  -h, --help           this text\n"
	"\n"
	"exit status: 0 nothing observed is denied, 3 something is, 1 invalid input, 2 usage\n";

static void print_diag(FILE *err, const struct cc_diag *d, const char *prefix)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(err, "%s%s\n", prefix, d->msgs[i]);
}

static int load_contract(const char *file, struct cc_contract **c, FILE *err)
{
	struct cc_diag d = { 0 };
	char *data = NULL;
	size_t len = 0;
	int r = cc_read_file(file, &data, &len);

	if (r) {
		fprintf(err, "contractc: %s: %s\n", file, strerror(-r));
		return r;
	}
	r = cc_contract_parse(file, data, len, c, &d);
	print_diag(err, &d, "");
	if (r == -ENOMEM)
		fprintf(err, "contractc: %s: out of memory\n", file);
	cc_diag_free(&d);
	free(data);
	return r;
}

static int load_profile(const char *file, struct cc_profile **p, FILE *err)
{
	struct cc_diag d = { 0 };
	char *data = NULL;
	size_t len = 0;
	int r = cc_read_file(file, &data, &len);

	if (r) {
		fprintf(err, "contractc: %s: %s\n", file, strerror(-r));
		return r;
	}
	r = cc_profile_parse(file, data, len, p, &d);
	print_diag(err, &d, "");
	cc_diag_free(&d);
	free(data);
	return r;
}

static int write_file(const char *path, const char *data, FILE *err)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(err, "contractc: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fputs(data, f);
	if (fclose(f)) {
		fprintf(err, "contractc: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

static int cmd_validate(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool quiet = false;
	int o, rc = CC_EXIT_OK;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		if (o == 'q')
			quiet = true;
		else if (o == 'h') {
			fputs(usage_validate, out);
			return CC_EXIT_OK;
		} else {
			fputs(usage_validate, err);
			return CC_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_validate, err);
		return CC_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		struct cc_contract *c = NULL;
		if (load_contract(argv[i], &c, err)) {
			rc = CC_EXIT_INVALID;
			continue;
		}
		if (!quiet)
			fprintf(out, "%s: valid BehaviorContract %s\n", argv[i], c->name);
		cc_contract_free(c);
	}
	return rc;
}

static int cmd_compile(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "fail-on-warning", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *target = NULL, *dir = NULL;
	bool werror = false;
	struct cc_contract *c = NULL;
	struct cc_diag warn = { 0 };
	int o, rc = CC_EXIT_OK;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+t:o:Wh", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			target = optarg;
			break;
		case 'o':
			dir = optarg;
			break;
		case 'W':
			werror = true;
			break;
		case 'h':
			fputs(usage_compile, out);
			return CC_EXIT_OK;
		default:
			fputs(usage_compile, err);
			return CC_EXIT_USAGE;
		}
	}
	if (!target || optind != argc - 1) {
		fputs(usage_compile, err);
		return CC_EXIT_USAGE;
	}
	bool all = !strcmp(target, "all");
	int t = all ? -1 : cc_target_from_name(target);
	if (!all && t < 0) {
		fprintf(err, "contractc: unknown target %s\n", target);
		fputs(usage_compile, err);
		return CC_EXIT_USAGE;
	}
	if (all && !dir) {
		fprintf(err, "contractc: -t all writes several files: give -o DIR\n");
		return CC_EXIT_USAGE;
	}
	if (dir && mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(err, "contractc: %s: %s\n", dir, strerror(errno));
		return CC_EXIT_INVALID;
	}
	if (load_contract(argv[optind], &c, err))
		return CC_EXIT_INVALID;
	for (int i = all ? 0 : t; i < (all ? CC_T_COUNT : t + 1); i++) {
		char *s = NULL;
		int r = cc_compile(c, (enum cc_target)i, &s, &warn);
		if (r) {
			fprintf(err, "contractc: compile %s for %s: %s\n", c->name, cc_target_names[i],
				strerror(-r));
			rc = CC_EXIT_INVALID;
			continue;
		}
		if (dir) {
			char *path = NULL;
			if (asprintf(&path, "%s/%s%s", dir, c->name, cc_target_suffix[i]) < 0 ||
			    write_file(path, s, err))
				rc = CC_EXIT_INVALID;
			else
				fprintf(out, "%s\n", path);
			free(path);
		} else {
			fputs(s, out);
		}
		free(s);
	}
	print_diag(err, &warn, "contractc: warning: ");
	if (werror && warn.n && rc == CC_EXIT_OK)
		rc = CC_EXIT_INVALID;
	cc_diag_free(&warn);
	cc_contract_free(c);
	return rc;
}

static bool parse_index(const char *s, size_t *out)
{
	char *end;
	unsigned long v;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static int pick_workload(const struct cc_profile *p, bool given, size_t w, FILE *err)
{
	if (!given && p->nw > 1) {
		fprintf(err, "contractc: %s has %zu workloads: choose one with --workload N\n",
			p->file, p->nw);
		return -EINVAL;
	}
	if (given && w >= p->nw) {
		fprintf(err, "contractc: %s: no workload %zu (it has %zu)\n", p->file, w, p->nw);
		return -EINVAL;
	}
	return 0;
}

static int cmd_generate(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "from-profile", required_argument, NULL, 'p' },
		{ "workload", required_argument, NULL, 'w' },
		{ "name", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *prof = NULL, *name = NULL, *mode = NULL, *outf = NULL;
	size_t wi = 0;
	bool wgiven = false;
	struct cc_profile *p = NULL;
	struct cc_contract *c = NULL;
	struct cc_diag d = { 0 };
	int o, rc = CC_EXIT_INVALID;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+p:w:n:m:o:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			prof = optarg;
			break;
		case 'w':
			if (!parse_index(optarg, &wi)) {
				fprintf(err, "contractc: --workload needs a number\n");
				return CC_EXIT_USAGE;
			}
			wgiven = true;
			break;
		case 'n':
			name = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'o':
			outf = optarg;
			break;
		case 'h':
			fputs(usage_generate, out);
			return CC_EXIT_OK;
		default:
			fputs(usage_generate, err);
			return CC_EXIT_USAGE;
		}
	}
	if (!prof || optind != argc || (mode && strcmp(mode, "audit") && strcmp(mode, "enforce"))) {
		fputs(usage_generate, err);
		return CC_EXIT_USAGE;
	}
	if (load_profile(prof, &p, err) || pick_workload(p, wgiven, wi, err))
		goto out;
	if (cc_generate(p, wi, name, &c, &d)) {
		print_diag(err, &d, "contractc: ");
		goto out;
	}
	print_diag(err, &d, "contractc: warning: ");
	c->audit = mode && !strcmp(mode, "audit");
	{
		const char *hdr[] = {
			"Generated by contractc generate from an observed Profile.",
			"Least privilege: only what was observed is allowed. Rules with a",
			"`generalised` field are wider than the observations; review them.",
			NULL,
		};
		char *s = cc_contract_to_yaml(c, hdr);
		if (!s)
			goto out;
		if (outf) {
			if (!write_file(outf, s, err))
				rc = CC_EXIT_OK;
		} else {
			fputs(s, out);
			rc = CC_EXIT_OK;
		}
		free(s);
	}
out:
	cc_diag_free(&d);
	cc_contract_free(c);
	cc_profile_free(p);
	return rc;
}

static int cmd_gap(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "policy", required_argument, NULL, 'P' },
		{ "workload", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *prof = NULL, *pol = NULL, *format = NULL;
	size_t wi = 0;
	bool wgiven = false, json = false;
	struct cc_profile *p = NULL;
	struct cc_contract *c = NULL;
	struct cc_gap *g = NULL;
	struct cc_diag d = { 0 };
	char *data = NULL;
	size_t len = 0;
	int o, r, rc = CC_EXIT_INVALID;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+p:P:w:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			prof = optarg;
			break;
		case 'P':
			pol = optarg;
			break;
		case 'w':
			if (!parse_index(optarg, &wi)) {
				fprintf(err, "contractc: --workload needs a number\n");
				return CC_EXIT_USAGE;
			}
			wgiven = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage_gap, out);
			return CC_EXIT_OK;
		default:
			fputs(usage_gap, err);
			return CC_EXIT_USAGE;
		}
	}
	if (!prof || !pol || optind != argc) {
		fputs(usage_gap, err);
		return CC_EXIT_USAGE;
	}
	if (load_profile(prof, &p, err) || pick_workload(p, wgiven, wi, err))
		goto out;
	r = cc_read_file(pol, &data, &len);
	if (r) {
		fprintf(err, "contractc: %s: %s\n", pol, strerror(-r));
		goto out;
	}
	r = cc_policy_load(pol, data, len, &c, &format, &d);
	print_diag(err, &d, "");
	if (r)
		goto out;
	if (cc_gap_run(&p->w[wi], c, &g))
		goto out;
	if (json) {
		json_t *j = cc_gap_json(g, format);
		char *s = j ? cc_json_emit(j) : NULL;
		json_decref(j);
		if (!s)
			goto out;
		fputs(s, out);
		free(s);
	} else {
		char *s = cc_gap_text(g, format);
		if (!s)
			goto out;
		fputs(s, out);
		free(s);
	}
	rc = cc_gap_denied(g) ? CC_EXIT_DENIED : CC_EXIT_OK;
out:
	free(data);
	cc_diag_free(&d);
	cc_gap_free(g);
	cc_contract_free(c);
	cc_profile_free(p);
	return rc;
}

int contractc_main(int argc, char **argv, FILE *out, FILE *err)
{
	if (argc < 2) {
		fputs(usage_main, err);
		return CC_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_main, out);
		return CC_EXIT_OK;
	}
	if (!strcmp(cmd, "validate"))
		return cmd_validate(argc - 1, argv + 1, out, err);
	if (!strcmp(cmd, "compile"))
		return cmd_compile(argc - 1, argv + 1, out, err);
	if (!strcmp(cmd, "generate"))
		return cmd_generate(argc - 1, argv + 1, out, err);
	if (!strcmp(cmd, "gap"))
		return cmd_gap(argc - 1, argv + 1, out, err);
	fprintf(err, "contractc: unknown command %s\n", cmd);
	fputs(usage_main, err);
	return CC_EXIT_USAGE;
}
