/* SPDX-License-Identifier: Apache-2.0 */
/*
 * baseline.c - `klctl baseline ...` (docs/baseline.md): the workloads
 * kl-baselined learns and detects for, its profiles on disk, and the
 * AdminService Baseline* calls, all through kl-exporter, which forwards
 * them to kl-baselined's socket unchanged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "baseline.h"
#include "client.h"
#include "kloudlens.pb-c.h"

/* the exporter gives the stage 5 s to answer; wait a little longer so its UNAVAILABLE reaches us */
#define CALL_TIMEOUT_MS 8000

/* Return: 2, the usage exit code. */
static int usage(void)
{
	fprintf(stderr,
		"usage: klctl baseline list [WORKLOAD] [--json]\n"
		"       klctl baseline profiles [--json]\n"
		"       klctl baseline show PROFILE_ID | --workload WORKLOAD\n"
		"       klctl baseline reset|promote [WORKLOAD] [--json]       (no WORKLOAD: every workload)\n"
		"       klctl baseline activate [WORKLOAD] [--profile ID] [--json]\n");
	return 2;
}

/* One unary call. Return: 0, or the exit code after printing why. */
static int call(const char *url, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
	struct kl_client c;
	char err[512] = "";
	int r = kl_client_open(&c, url, NULL, CALL_TIMEOUT_MS);

	if (r) {
		fprintf(stderr, "klctl: cannot reach kl-exporter at %s: %s\n"
			"       is the agent running? (--admin selects another address)\n", url, strerror(-r));
		return 3;
	}
	r = kl_client_call(&c, method, req, desc, resp, err, sizeof(err));
	kl_client_close(&c);
	if (r < 0) {
		fprintf(stderr, "klctl: %s: %s\n", url, strerror(-r));
		return 3;
	}
	if (r) {
		/* the exporter's own errors already name the method */
		fprintf(stderr, "klctl: %s%s%s (gRPC status %d)\n", err[0] == '/' ? "" : method + 1,
			err[0] == '/' ? "" : ": ", err[0] == '/' ? err + 1 : err, r);
		return 4;
	}
	return 0;
}

static void print_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
}

/* "-" for an empty string, so table columns never collapse */
static const char *dash(const char *s)
{
	return s && *s ? s : "-";
}

static void human_bytes(char *buf, size_t n, uint64_t v)
{
	if (v >= 10ull << 20)
		snprintf(buf, n, "%" PRIu64 "M", v >> 20);
	else if (v >= 10ull << 10)
		snprintf(buf, n, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, n, "%" PRIu64, v);
}

static int cmd_list(int argc, char **argv, const char *url, bool json)
{
	Kloudlens__V1__ListWorkloadsRequest q = KLOUDLENS__V1__LIST_WORKLOADS_REQUEST__INIT;
	Kloudlens__V1__ListWorkloadsResponse *r = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] != '-' && !*q.workload)
			q.workload = argv[i];
		else
			return usage();
	}
	rc = call(url, "/kloudlens.v1.BaselineService/ListWorkloads", &q.base,
		  &kloudlens__v1__list_workloads_response__descriptor, (ProtobufCMessage **)&r);
	if (rc)
		return rc;
	if (!json)
		printf("%-40s %-12s %-21s %9s %7s %6s %4s %8s %s\n", "WORKLOAD", "STATE", "PROFILE", "SAMPLES",
		       "ITEMS", "DEVS", "PODS", "WINDOW", "POLICY");
	for (size_t i = 0; i < r->n_workloads; i++) {
		const Kloudlens__V1__BaselineWorkload *w = r->workloads[i];
		if (json) {
			print_json(json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:i}", "workload", w->workload,
					     "state", w->state, "profile_id", w->profile_id, "policy", w->policy,
					     "samples", (json_int_t)w->samples, "items", (json_int_t)w->items,
					     "deviations", (json_int_t)w->deviations,
					     "window_start_ns", (json_int_t)w->window_start_ns,
					     "window_ns", (json_int_t)w->window_ns, "pods", (int)w->pods));
			continue;
		}
		printf("%-40s %-12s %-21s %9" PRIu64 " %7" PRIu64 " %6" PRIu64 " %4u %7" PRIu64 "s %s\n",
		       w->workload, w->state, dash(w->profile_id), w->samples, w->items, w->deviations, w->pods,
		       (uint64_t)(w->window_ns / 1000000000u), dash(w->policy));
	}
	if (!json && !r->n_workloads)
		printf("(no workloads%s%s)\n", *q.workload ? " named " : "", q.workload);
	kloudlens__v1__list_workloads_response__free_unpacked(r, NULL);
	return 0;
}

static int cmd_profiles(int argc, char **argv, const char *url, bool json)
{
	Kloudlens__V1__ListProfilesRequest q = KLOUDLENS__V1__LIST_PROFILES_REQUEST__INIT;
	Kloudlens__V1__ListProfilesResponse *r = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			return usage();
	}
	rc = call(url, "/kloudlens.v1.BaselineService/ListProfiles", &q.base,
		  &kloudlens__v1__list_profiles_response__descriptor, (ProtobufCMessage **)&r);
	if (rc)
		return rc;
	if (!json)
		printf("%-21s %-40s %7s %s\n", "PROFILE", "WORKLOAD", "SIZE", "PATH");
	for (size_t i = 0; i < r->n_profiles; i++) {
		const Kloudlens__V1__BaselineProfileInfo *p = r->profiles[i];
		char sz[32];
		if (json) {
			print_json(json_pack("{s:s,s:s,s:s,s:I}", "profile_id", p->profile_id, "workload", p->workload,
					     "path", p->path, "size_bytes", (json_int_t)p->size_bytes));
			continue;
		}
		human_bytes(sz, sizeof(sz), p->size_bytes);
		printf("%-21s %-40s %7s %s\n", p->profile_id, dash(p->workload), sz, p->path);
	}
	if (!json && !r->n_profiles)
		printf("(no profiles on disk)\n");
	kloudlens__v1__list_profiles_response__free_unpacked(r, NULL);
	return 0;
}

static int cmd_show(int argc, char **argv, const char *url, bool json)
{
	Kloudlens__V1__GetProfileRequest q = KLOUDLENS__V1__GET_PROFILE_REQUEST__INIT;
	Kloudlens__V1__GetProfileResponse *r = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--workload") && i + 1 < argc)
			q.workload = argv[++i];
		else if (argv[i][0] != '-' && !*q.profile_id)
			q.profile_id = argv[i];
		else
			return usage();
	}
	if (!*q.profile_id && !*q.workload)
		return usage();
	rc = call(url, "/kloudlens.v1.BaselineService/GetProfile", &q.base,
		  &kloudlens__v1__get_profile_response__descriptor, (ProtobufCMessage **)&r);
	if (rc)
		return rc;
	/* the document as kl-baselined renders it; --json (or a pipe) gets it on one line */
	json_error_t jerr;
	json_t *doc = json ? json_loads(r->json, 0, &jerr) : NULL;
	if (doc) {
		print_json(doc);
	} else {
		size_t l = strlen(r->json);
		fputs(r->json, stdout);
		if (!l || r->json[l - 1] != '\n')
			putchar('\n');
	}
	kloudlens__v1__get_profile_response__free_unpacked(r, NULL);
	return 0;
}

/* reset, promote, activate: one BaselineRequest each */
static int cmd_admin(int argc, char **argv, const char *url, bool json)
{
	Kloudlens__V1__BaselineRequest q = KLOUDLENS__V1__BASELINE_REQUEST__INIT;
	Kloudlens__V1__BaselineResponse *r = NULL;
	const char *verb = argv[0];
	char method[64];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--profile") && i + 1 < argc && !strcmp(verb, "activate"))
			q.profile_id = argv[++i];
		else if (argv[i][0] != '-' && !*q.workload)
			q.workload = argv[i];
		else
			return usage();
	}
	snprintf(method, sizeof(method), "/kloudlens.v1.AdminService/Baseline%c%s", verb[0] - 'a' + 'A', verb + 1);
	rc = call(url, method, &q.base, &kloudlens__v1__baseline_response__descriptor, (ProtobufCMessage **)&r);
	if (rc)
		return rc;
	if (json) {
		print_json(json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "call", verb, "workload", q.workload, "state",
				     r->state, "profile_id", r->profile_id, "workloads", (int)r->workloads, "message",
				     r->message));
	} else {
		printf("%s: %u workload%s changed", verb, r->workloads, r->workloads == 1 ? "" : "s");
		if (*q.workload)
			printf("; %s is %s, profile %s", q.workload, dash(r->state), dash(r->profile_id));
		printf("%s%s\n", *r->message ? ": " : "", r->message);
	}
	kloudlens__v1__baseline_response__free_unpacked(r, NULL);
	return 0;
}

int klctl_baseline(int argc, char **argv, const char *admin_url, bool json)
{
	const char *sub = argc > 1 ? argv[1] : "";

	/* subcommands see their own name as argv[0] */
	if (!strcmp(sub, "list"))
		return cmd_list(argc - 1, argv + 1, admin_url, json);
	if (!strcmp(sub, "profiles"))
		return cmd_profiles(argc - 1, argv + 1, admin_url, json);
	if (!strcmp(sub, "show"))
		return cmd_show(argc - 1, argv + 1, admin_url, json);
	if (!strcmp(sub, "reset") || !strcmp(sub, "promote") || !strcmp(sub, "activate"))
		return cmd_admin(argc - 1, argv + 1, admin_url, json);
	return usage();
}
