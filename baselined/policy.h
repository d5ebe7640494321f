/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h - BaselinePolicy objects (docs/control-plane.md) from YAML
 * files (docker mode) and the duration syntax shared with the flags.
 */
#ifndef KL_BASELINED_POLICY_H
#define KL_BASELINED_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* "24h", "90m", "1h30m", "1.5s", "500ms" -> ns. Return: 0 or -EINVAL. */
int bl_parse_duration(const char *s, uint64_t *ns);

/*
 * Parse the BaselinePolicy documents of one YAML file (other kinds are
 * skipped). Appends to *@pol (realloc'd, *@n entries). On an invalid
 * object: -EINVAL and @err = "FILE:LINE:COL: key.path: what".
 */
int bl_policy_parse(const char *file, const char *data, size_t len, struct bl_policy **pol,
		    size_t *n, char *err, size_t errlen);

/*
 * Every *.yaml / *.yml in @dir (not recursive, dot-files skipped), sorted
 * by name. All or nothing: on the first invalid object nothing is
 * returned, so the caller keeps its last good set. Return: 0 or -errno.
 */
int bl_policy_load_dir(const char *dir, struct bl_policy **pol, size_t *n, char *err, size_t errlen);

#endif
