/* SPDX-License-Identifier: Apache-2.0 */
/*
 * controlplane.h - docker mode's control plane: a directory of YAML
 * objects (HookSubscription, BaselinePolicy, BehaviorContract; the agent
 * writes NodeCapabilities), validated strictly (unknown keys and wrong
 * types are errors naming file:line:column and the key) and compiled
 * into kl-collector's live filter file. docs/control-plane.md.
 *
 * Per file, the last good objects stay in force: a file that turns
 * invalid is reported and its previous content keeps applying until it
 * is fixed or removed.
 */
#ifndef KLOUDLENS_SUPERVISOR_CONTROLPLANE_H
#define KLOUDLENS_SUPERVISOR_CONTROLPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_CP_CAPS_FILE "node-capabilities.yaml"

enum kl_cp_kind {
	KL_CP_HOOK = 0,
	KL_CP_BASELINE,
	KL_CP_CONTRACT,
	KL_CP_NODECAPS,
	KL_CP__KINDS,
};

extern const char *const kl_cp_kind_names[KL_CP__KINDS];

/* Where messages go: level "error" | "warn" | "info". */
typedef void (*kl_cp_log_fn)(const char *level, const char *msg, void *ctx);

struct kl_cp;

int kl_cp_new(const char *dir, kl_cp_log_fn log, void *ctx, struct kl_cp **out);
void kl_cp_free(struct kl_cp *cp);

/*
 * kl_cp_validate_file() - parse and validate every document of one file.
 * Return: the number of valid objects (>= 0), or -EINVAL with the first
 * problem as "file:line:column: key: what" in @err (other problems are
 * not looked for once one is found), or -errno for I/O.
 */
int kl_cp_validate_file(const char *path, char *err, size_t errlen);

/*
 * kl_cp_rescan() - re-read the directory: changed files are validated
 * again (an invalid one keeps its last good objects and is logged), gone
 * files drop their objects. Sets *changed when what is in force changed.
 * Return: 0 or -errno (the directory cannot be read).
 */
int kl_cp_rescan(struct kl_cp *cp, bool *changed);

/* Objects in force, by kind. */
size_t kl_cp_count(const struct kl_cp *cp, enum kl_cp_kind kind);
/* Files refused at the last rescan. */
size_t kl_cp_rejected(const struct kl_cp *cp);

/*
 * kl_cp_filter_text() - the HookSubscriptions in force as kl-collector's
 * filter file (collector/filter.c), generation @gen. malloc'd; NULL on
 * -ENOMEM. No HookSubscription = a file with no rule (trace everything).
 */
char *kl_cp_filter_text(const struct kl_cp *cp, uint64_t gen);

/* Write @text to @path atomically (temporary file + rename), mode 0644. */
int kl_cp_write_atomic(const char *path, const char *text);

/*
 * kl_cp_nodecaps_yaml() - a NodeCapabilities object for @node from the
 * collector's `--probe --json` output (kept verbatim as spec.probe: JSON
 * is YAML). malloc'd, NULL on -ENOMEM.
 */
char *kl_cp_nodecaps_yaml(const char *node, const char *probe_json, const char *version);

#endif
