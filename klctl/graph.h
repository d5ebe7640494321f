/* SPDX-License-Identifier: Apache-2.0 */
/* graph.h - klctl's session graph commands (klctl/graph.c, docs/graph.md). */
#ifndef KLCTL_GRAPH_H
#define KLCTL_GRAPH_H

#include <stdbool.h>

/* klctl sessions [--namespace N] [--pod P] [--container C] [--open|--closed] [--limit N] */
int klctl_sessions(int argc, char **argv, const char *admin_url, bool json);
/* klctl graph SESSION [--dot] [--reach [--depth N]] [--max-edges N]
 * klctl graph --lineage PID[:START_NS] | --file PATH [--container C] */
int klctl_graph(int argc, char **argv, const char *admin_url, bool json);

#endif
