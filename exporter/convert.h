/* SPDX-License-Identifier: Apache-2.0 */
/*
 * convert.h - ring records to kloudlens.v1 messages, the container table
 * the exporter keeps from lifecycle records, and subscription filters.
 */
#ifndef KL_EXPORTER_CONVERT_H
#define KL_EXPORTER_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kloudlens.pb-c.h"

typedef Kloudlens__V1__EventEnvelope kl_env;

/* What the container table remembers of one container (bounded copies). */
struct kl_ctr {
	uint64_t cgroup_id;
	bool live;
	char id[72], name[64], image[128], pod[64], ns[64], pod_uid[40], runtime[16];
	uint32_t init_pid, mnt_ns, pid_ns, net_ns;
};

#define KL_CTR_SLOTS 4096

struct kl_ctr_table {
	struct kl_ctr slot[KL_CTR_SLOTS];   /* open addressing on cgroup_id */
	uint32_t live;
};

const struct kl_ctr *kl_ctr_find(const struct kl_ctr_table *t, uint64_t cgroup_id);

/*
 * Scratch for one conversion: every message, string and array the
 * envelope points to lives here, so converting allocates nothing. Reset
 * by kl_convert() itself; the envelope is valid until the next call.
 */
struct kl_conv {
	Kloudlens__V1__SyscallEvent sc;
	Kloudlens__V1__ProcessEvent pe;
	Kloudlens__V1__ContainerLifecycleEvent ce;
	Kloudlens__V1__DnsEvent dns;
	Kloudlens__V1__SocketEvent so;
	Kloudlens__V1__LossEvent loss;
	Kloudlens__V1__OpaqueRecord op;
	Kloudlens__V1__IntentEvent in;
	uint64_t in_args[4];
	Kloudlens__V1__DeviationEvent dev;
	Kloudlens__V1__GraphEdge ge;
	Kloudlens__V1__GraphNode gfrom, gto;
	Kloudlens__V1__ProcessMeta pm2;     /* a graph edge's to process */
	Kloudlens__V1__ContainerMeta cm2;   /* and its container */
	uint64_t dev_seqs[2];
	Kloudlens__V1__ProcessMeta pm;
	Kloudlens__V1__ContainerMeta cm;
	uint64_t args[6];
	char *arena;
	size_t arena_len, arena_cap;
	char cursor[48];
	struct kl_ctr_table *ctrs;
	uint64_t invalid;          /* records rejected by kl_rec_validate */
	uint64_t opaque;           /* records passed through undecoded */
};

int kl_conv_init(struct kl_conv *cv, struct kl_ctr_table *ctrs);
void kl_conv_fini(struct kl_conv *cv);

/**
 * kl_convert() - fill @env from ring record (@type, @data, @len). Known
 * types are decoded (container records also update the container table);
 * unknown ones become an OpaqueRecord. Return: 0, or -EBADMSG for a record
 * that fails validation (counted, not published).
 */
int kl_convert(struct kl_conv *cv, uint16_t type, const void *data, uint32_t len, kl_env *env);

/* Compiled subscription filter (owned copies of the request's lists). */
struct kl_filter {
	char **ns, **pods, **ctrs, **syscalls;
	size_t n_ns, n_pods, n_ctrs, n_syscalls;
	int *kinds;
	size_t n_kinds;
	uint32_t *pids;
	size_t n_pids;
	char **gsess;               /* graph sessions */
	size_t n_gsess;
	bool empty;
};

int kl_filter_from_pb(struct kl_filter *f, const Kloudlens__V1__Filter *pb);
void kl_filter_fini(struct kl_filter *f);
bool kl_filter_match(const struct kl_filter *f, const kl_env *env);

const char *kl_stream_name(int stream);   /* "events", ... */
int kl_stream_from_name(const char *s);   /* -1 if unknown */

#endif
