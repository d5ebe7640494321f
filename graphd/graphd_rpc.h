/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graphd_rpc.h - kl-graphd's query methods (GraphService and
 * EventService/QueryGraph) over an engine guarded by a mutex: handlers
 * run on the rpc server's thread, the engine is fed on the main one.
 */
#ifndef KLOUDLENS_GRAPHD_RPC_H
#define KLOUDLENS_GRAPHD_RPC_H

#include <pthread.h>

#include "graphd.h"
#include "rpcsrv.h"

struct kl_graphd_rpc {
	pthread_mutex_t mu;
	struct kl_graphd *g;
	struct kl_gq_result res;    /* reused by every query (under mu) */
	uint64_t queries, errors;
};

extern const struct kl_rpc_def kl_graphd_rpc_defs[];
extern const size_t kl_graphd_rpc_ndefs;

/* "%016llx" <-> id; parse accepts 1..16 hex digits. Return: 0 or -EINVAL. */
int kl_graph_parse_id(const char *s, uint64_t *id);

#endif
