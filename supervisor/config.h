/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the supervisor's configuration: defaults, a YAML file
 * (libyaml; every error as file:line:column: key: what), then flags.
 */
#ifndef KLOUDLENS_SUPERVISOR_CONFIG_H
#define KLOUDLENS_SUPERVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KL_CFG_STR 256

struct kl_config {
	char mode[16];                  /* host | docker | kubernetes */
	char rings_dir[KL_CFG_STR];
	uint64_t raw_capacity;
	uint64_t ring_capacity;
	uint32_t ring_grace_ms;         /* a dead consumer's slot is held this long */
	char state_dir[KL_CFG_STR];
	char cp_dir[KL_CFG_STR];        /* docker mode: the control-plane object directory */
	char kube_api[KL_CFG_STR];      /* kubernetes mode: API server ("": in-cluster from the env) */
	char kube_token_file[KL_CFG_STR];
	char kube_ca_file[KL_CFG_STR];
	char kube_server_name[256];     /* TLS name checked ("": in a pod kubernetes.default.svc) */
	char user[64];
	char bin_dir[KL_CFG_STR];       /* where stage binaries are; empty = search */
	char subscribe[KL_CFG_STR];
	char admin[KL_CFG_STR];
	char metrics[KL_CFG_STR];
	char show[16];                  /* intents | events | none */
	char syscalls[KL_CFG_STR];      /* collector syscall filter; empty = all */
	bool containers_only;
	uint32_t bpf_ring_kb;           /* every BPF ring of the collector, KiB (0: its default, 4096) */
	uint32_t backoff_initial_ms;
	uint32_t backoff_max_ms;
	uint32_t stop_timeout_ms;
	bool stage_enabled[8];          /* by enum kl_stage */
};

enum kl_stage {
	KL_STAGE_COLLECTOR,
	KL_STAGE_ENRICHER,
	KL_STAGE_INTENTD,
	KL_STAGE_GRAPHD,
	KL_STAGE_BASELINED,
	KL_STAGE_EXPORTER,
	KL_STAGE__COUNT,
};

extern const char *const kl_stage_names[KL_STAGE__COUNT];

void kl_config_defaults(struct kl_config *c);
/* The checks across keys (capacities, absolute paths, the stage set with
 * the mode). Return: 0, or -EINVAL with "key: what" in @err. */
int kl_config_check(const struct kl_config *c, char *err, size_t errlen);
/*
 * kl_config_load() - apply a YAML file on top of @c. On error returns
 * -EINVAL (or -errno for I/O) with "file:line:column: key: what" in @err;
 * @c is then left as it was.
 */
int kl_config_load(struct kl_config *c, const char *path, char *err, size_t errlen);
/* Set one key ("rings.dir", "exporter.subscribe", ...) from a string. */
int kl_config_set(struct kl_config *c, const char *key, const char *value, char *err, size_t errlen);
void kl_config_print(const struct kl_config *c, FILE *out);

#endif
