/* SPDX-License-Identifier: Apache-2.0 */
/* baseline.h - klctl's baseline commands (klctl/baseline.c, docs/baseline.md). */
#ifndef KLCTL_BASELINE_H
#define KLCTL_BASELINE_H

#include <stdbool.h>

/*
 * klctl baseline list [WORKLOAD] | profiles | show PROFILE_ID | show --workload W
 *                | reset|promote|activate [WORKLOAD] [--profile ID]
 * @argv[0] is "baseline". Return: the exit code (0, 2 usage, 3 unreachable, 4 call failed).
 */
int klctl_baseline(int argc, char **argv, const char *admin_url, bool json);

#endif
