/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - one table of keys drives the YAML loader, the flags and
 * --print-config, so the three can never disagree about a name.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"

const char *const kl_stage_names[KL_STAGE__COUNT] = {
	"collector", "enricher", "intentd", "graphd", "baselined", "exporter",
};

enum ktype { K_STR, K_U64, K_U32, K_BOOL, K_STAGES };

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	size_t size;
	const char *help;
};

#define STR(n, f, h) { n, K_STR, offsetof(struct kl_config, f), sizeof(((struct kl_config *)0)->f), h }
#define U64(n, f, h) { n, K_U64, offsetof(struct kl_config, f), 8, h }
#define U32(n, f, h) { n, K_U32, offsetof(struct kl_config, f), 4, h }
#define BOOL(n, f, h) { n, K_BOOL, offsetof(struct kl_config, f), 1, h }

static const struct key keys[] = {
	STR("mode", mode, "host | docker | kubernetes"),
	STR("rings.dir", rings_dir, "shared-memory rings directory"),
	U64("rings.raw_capacity", raw_capacity, "bytes of the collector's raw ring (power of two)"),
	U64("rings.capacity", ring_capacity, "bytes of every other ring (power of two)"),
	U32("rings.grace_ms", ring_grace_ms, "a dead consumer's place is held this long"),
	STR("state_dir", state_dir, "WAL, profiles, state"),
	STR("control_plane.dir", cp_dir, "docker mode: directory of HookSubscription, BaselinePolicy, "
	    "BehaviorContract objects (watched)"),
	STR("kubernetes.api", kube_api, "kubernetes mode: API server URL, https://host:port or http://host:port "
	    "(empty: the in-cluster address from KUBERNETES_SERVICE_HOST/PORT)"),
	STR("kubernetes.token_file", kube_token_file, "bearer token, re-read at every connection"),
	STR("kubernetes.ca_file", kube_ca_file, "CA of the API server's certificate"),
	STR("kubernetes.server_name", kube_server_name, "name the API server's certificate is checked against "
	    "(empty: kubernetes.default.svc in a pod, else the URL's host)"),
	STR("user", user, "unprivileged user for every stage but the collector"),
	STR("bin_dir", bin_dir, "directory of the stage binaries (empty: next to kloudlens or the build tree)"),
	STR("exporter.subscribe", subscribe, "nng pub address"),
	STR("exporter.admin", admin, "nng rep address"),
	STR("exporter.metrics", metrics, "HTTP address of /metrics, /healthz, /readyz"),
	STR("show", show, "what to print in the terminal: intents | events | none"),
	STR("collector.syscalls", syscalls, "comma-separated syscall names to trace (empty: all)"),
	BOOL("collector.containers_only", containers_only, "trace only processes in containers"),
	U32("collector.bpf_ring_kb", bpf_ring_kb, "KiB of each of the collector's eight BPF rings, a power of two "
	    "(0: 4096); larger absorbs longer bursts, at a cost per record"),
	U32("restart.backoff_initial_ms", backoff_initial_ms, "first restart delay of a crashed stage"),
	U32("restart.backoff_max_ms", backoff_max_ms, "longest restart delay"),
	U32("stop_timeout_ms", stop_timeout_ms, "how long a stage may take to drain on stop"),
	{ "stages", K_STAGES, 0, 0, "stages to run, in pipeline order ([] or none: the control plane only, "
	  "docker/kubernetes mode, the stages run elsewhere)" },
};

void kl_config_defaults(struct kl_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->mode, sizeof(c->mode), "host");
	snprintf(c->rings_dir, sizeof(c->rings_dir), "/dev/shm/kloudlens");
	c->raw_capacity = 64ull << 20;
	c->ring_capacity = 64ull << 20;
	c->ring_grace_ms = 15000;
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/kloudlens");
	snprintf(c->cp_dir, sizeof(c->cp_dir), "/etc/kloudlens/control-plane.d");
	snprintf(c->kube_token_file, sizeof(c->kube_token_file), "/var/run/secrets/kubernetes.io/serviceaccount/token");
	snprintf(c->kube_ca_file, sizeof(c->kube_ca_file), "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
	snprintf(c->user, sizeof(c->user), "kloudlens");
	snprintf(c->subscribe, sizeof(c->subscribe), "tcp://127.0.0.1:8181");
	snprintf(c->admin, sizeof(c->admin), "tcp://127.0.0.1:8180");
	snprintf(c->metrics, sizeof(c->metrics), "127.0.0.1:9090");
	snprintf(c->show, sizeof(c->show), "intents");
	c->backoff_initial_ms = 200;
	c->backoff_max_ms = 5000;
	c->stop_timeout_ms = 10000;
	for (int i = 0; i < KL_STAGE__COUNT; i++)
		c->stage_enabled[i] = true;
}

static const struct key *find(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* "rings" is a section: some key starts with "rings." */
static bool is_section(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strncmp(keys[i].name, name, n) && keys[i].name[n] == '.')
			return true;
	return false;
}

static bool is_pow2(uint64_t v)
{
	return v >= 4096 && !(v & (v - 1));
}

int kl_config_check(const struct kl_config *c, char *err, size_t n)
{
	if (strcmp(c->mode, "host") && strcmp(c->mode, "docker") && strcmp(c->mode, "kubernetes")) {
		snprintf(err, n, "mode: expected host, docker or kubernetes, got '%s'", c->mode);
		return -EINVAL;
	}
	if (strcmp(c->show, "intents") && strcmp(c->show, "events") && strcmp(c->show, "none")) {
		snprintf(err, n, "show: expected intents, events or none, got '%s'", c->show);
		return -EINVAL;
	}
	if (!is_pow2(c->raw_capacity) || !is_pow2(c->ring_capacity)) {
		snprintf(err, n, "rings: capacities must be powers of two of at least 4096 bytes");
		return -EINVAL;
	}
	if (c->bpf_ring_kb && (c->bpf_ring_kb < 4 || c->bpf_ring_kb > (1u << 20) || (c->bpf_ring_kb & (c->bpf_ring_kb - 1)))) {
		snprintf(err, n, "collector.bpf_ring_kb: must be a power of two from 4 to 1048576, got %u", c->bpf_ring_kb);
		return -EINVAL;
	}
	if (c->rings_dir[0] != '/' || c->state_dir[0] != '/' || c->cp_dir[0] != '/') {
		snprintf(err, n, "rings.dir, state_dir and control_plane.dir must be absolute paths");
		return -EINVAL;
	}
	bool any = false;
	for (int i = 0; i < KL_STAGE__COUNT; i++)
		any |= c->stage_enabled[i];
	if (any && !c->stage_enabled[KL_STAGE_COLLECTOR]) {
		snprintf(err, n, "stages: the collector cannot be left out (nothing else has input)");
		return -EINVAL;
	}
	/* none: the control plane only, for stages that run elsewhere (the
	 * DaemonSet's containers, systemd units) */
	if (!any && !strcmp(c->mode, "host")) {
		snprintf(err, n, "stages: none (the control plane only) needs mode docker or kubernetes");
		return -EINVAL;
	}
	return 0;
}

static int set_stages(struct kl_config *c, const char *list, char *err, size_t n)
{
	bool en[KL_STAGE__COUNT] = { 0 };
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		int i;
		if (!strcmp(t, "none"))
			continue;       /* control plane only */
		for (i = 0; i < KL_STAGE__COUNT; i++)
			if (!strcmp(t, kl_stage_names[i]))
				break;
		if (i == KL_STAGE__COUNT) {
			snprintf(err, n, "stages: unknown stage '%s' (known: collector, enricher, intentd, graphd, "
				 "baselined, exporter)", t);
			return -EINVAL;
		}
		en[i] = true;
	}
	memcpy(c->stage_enabled, en, sizeof(en));
	return 0;
}

int kl_config_set(struct kl_config *c, const char *name, const char *value, char *err, size_t n)
{
	const struct key *k = find(name);
	char *end;

	if (!k) {
		snprintf(err, n, "%s: unknown key", name);
		return -EINVAL;
	}
	uint8_t *p = (uint8_t *)c + k->off;
	switch (k->type) {
	case K_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, n, "%s: longer than %zu bytes", name, k->size - 1);
			return -EINVAL;
		}
		memcpy(p, value, strlen(value) + 1);
		return 0;
	case K_U64:
	case K_U32: {
		errno = 0;
		unsigned long long v = strtoull(value, &end, 0);
		if (errno || end == value || *end || value[0] == '-' ||
		    (k->type == K_U32 && v > UINT32_MAX)) {
			snprintf(err, n, "%s: expected a non-negative integer, got '%s'", name, value);
			return -EINVAL;
		}
		if (k->type == K_U64)
			*(uint64_t *)(void *)p = v;
		else
			*(uint32_t *)(void *)p = (uint32_t)v;
		return 0;
	}
	case K_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
			*(bool *)(void *)p = true;
		else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
			*(bool *)(void *)p = false;
		else {
			snprintf(err, n, "%s: expected true or false, got '%s'", name, value);
			return -EINVAL;
		}
		return 0;
	case K_STAGES:
		return set_stages(c, value, err, n);
	}
	return -EINVAL;
}

/* Walk a mapping node, joining keys with '.'; leaves are set through the table. */
static int walk(struct kl_config *c, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
		const char *file, char *err, size_t n)
{
	char msg[256];

	if (node->type != YAML_MAPPING_NODE) {
		snprintf(err, n, "%s:%zu:%zu: %s: expected a mapping", file, node->start_mark.line + 1,
			 node->start_mark.column + 1, *prefix ? prefix : "(document)");
		return -EINVAL;
	}
	for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
		yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
		char path[128];
		if (!kn || !vn || kn->type != YAML_SCALAR_NODE) {
			snprintf(err, n, "%s:%zu:%zu: %s: keys must be plain strings", file,
				 node->start_mark.line + 1, node->start_mark.column + 1, prefix);
			return -EINVAL;
		}
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", (char *)kn->data.scalar.value);
		const struct key *k = find(path);
		if (vn->type == YAML_MAPPING_NODE && !k) {
			int e = walk(c, doc, vn, path, file, err, n);
			if (e)
				return e;
			continue;
		}
		if (!k && is_section(path)) {
			snprintf(err, n, "%s:%zu:%zu: %s: expected a mapping", file, vn->start_mark.line + 1,
				 vn->start_mark.column + 1, path);
			return -EINVAL;
		}
		if (!k) {
			snprintf(err, n, "%s:%zu:%zu: %s: unknown key", file, kn->start_mark.line + 1,
				 kn->start_mark.column + 1, path);
			return -EINVAL;
		}
		char val[512] = "";
		if (k->type == K_STAGES && vn->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
				yaml_node_t *in = yaml_document_get_node(doc, *it);
				if (!in || in->type != YAML_SCALAR_NODE) {
					snprintf(err, n, "%s:%zu:%zu: %s: expected a list of stage names", file,
						 vn->start_mark.line + 1, vn->start_mark.column + 1, path);
					return -EINVAL;
				}
				strncat(val, (char *)in->data.scalar.value, sizeof(val) - strlen(val) - 2);
				strncat(val, ",", sizeof(val) - strlen(val) - 1);
			}
		} else if (vn->type == YAML_SCALAR_NODE) {
			snprintf(val, sizeof(val), "%s", (char *)vn->data.scalar.value);
		} else {
			snprintf(err, n, "%s:%zu:%zu: %s: expected a scalar value", file, vn->start_mark.line + 1,
				 vn->start_mark.column + 1, path);
			return -EINVAL;
		}
		if (kl_config_set(c, path, val, msg, sizeof(msg))) {
			snprintf(err, n, "%s:%zu:%zu: %s", file, vn->start_mark.line + 1, vn->start_mark.column + 1, msg);
			return -EINVAL;
		}
	}
	return 0;
}

int kl_config_load(struct kl_config *c, const char *path, char *err, size_t n)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct kl_config tmp = *c;
	char msg[256];
	FILE *f;
	int rc = 0;

	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, n, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
			 parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML syntax error");
		rc = -EINVAL;
		goto out;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root)   /* an empty file is an empty configuration */
		rc = walk(&tmp, &doc, root, "", path, err, n);
	yaml_document_delete(&doc);
	if (!rc && kl_config_check(&tmp, msg, sizeof(msg))) {
		snprintf(err, n, "%s: %s", path, msg);
		rc = -EINVAL;
	}
	if (!rc)
		*c = tmp;
out:
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

static void print_str(FILE *o, const char *indent, const char *k, const char *v)
{
	fprintf(o, "%s%s: \"", indent, k);
	for (; *v; v++)
		fprintf(o, *v == '"' || *v == '\\' ? "\\%c" : "%c", *v);
	fputs("\"\n", o);
}

void kl_config_print(const struct kl_config *c, FILE *o)
{
	char section[32] = "";

	fputs("# effective kloudlens configuration\n", o);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		const char *dot = strchr(k->name, '.');
		const char *leaf = dot ? dot + 1 : k->name;
		size_t sl = dot ? (size_t)(dot - k->name) : 0;
		if (dot && (strlen(section) != sl || strncmp(section, k->name, sl) != 0)) {
			fprintf(o, "%.*s:\n", (int)sl, k->name);
			snprintf(section, sizeof(section), "%.*s", (int)sl, k->name);
		} else if (!dot) {
			section[0] = 0;
		}
		const char *ind = dot ? "  " : "";
		const uint8_t *p = (const uint8_t *)c + k->off;
		switch (k->type) {
		case K_STR: print_str(o, ind, leaf, (const char *)p); break;
		case K_U64: fprintf(o, "%s%s: %" PRIu64 "\n", ind, leaf, *(const uint64_t *)(const void *)p); break;
		case K_U32: fprintf(o, "%s%s: %" PRIu32 "\n", ind, leaf, *(const uint32_t *)(const void *)p); break;
		case K_BOOL: fprintf(o, "%s%s: %s\n", ind, leaf, *(const bool *)(const void *)p ? "true" : "false"); break;
		case K_STAGES:
			fprintf(o, "%s%s: [", ind, leaf);
			for (int s = 0, first = 1; s < KL_STAGE__COUNT; s++)
				if (c->stage_enabled[s]) {
					fprintf(o, "%s%s", first ? "" : ", ", kl_stage_names[s]);
					first = 0;
				}
			fputs("]\n", o);
			break;
		}
	}
}
