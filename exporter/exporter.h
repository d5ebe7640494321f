/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter.h - kl-exporter's core: ring consumers, WAL, nng pub/sub and
 * req/rep, HTTP /metrics. main.c only parses flags and waits for a signal.
 */
#ifndef KL_EXPORTER_H
#define KL_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "wal.h"

#define KL_DEFAULT_SUB_URL "tcp://127.0.0.1:8181"
#define KL_DEFAULT_ADMIN_URL "tcp://127.0.0.1:8180"
#define KL_DEFAULT_HTTP_URL "http://127.0.0.1:9090"
#define KL_DEFAULT_WAL_DIR "/var/lib/kloudlens/wal"
#define KL_TOPIC_PREFIX "kl.v1/"

/* gRPC status codes used on the rep socket. */
enum kl_grpc_code {
	KL_OK = 0,
	KL_INVALID_ARGUMENT = 3,
	KL_NOT_FOUND = 5,
	KL_RESOURCE_EXHAUSTED = 8,
	KL_FAILED_PRECONDITION = 9,
	KL_UNIMPLEMENTED = 12,
	KL_INTERNAL = 13,
	KL_UNAVAILABLE = 14,
};

struct kl_exporter_opts {
	size_t sz;
	const char *rings_dir;         /* default SHM_DEFAULT_DIR */
	const char *sub_url;           /* "" = no pub socket */
	const char *admin_url;
	const char *http_url;          /* "" = no HTTP */
	const char *wal_dir;           /* NULL = default, "" = no WAL */
	const char *consumer_name;     /* ring slot name; default "kl-exporter" */
	bool observer;                 /* attach as an observer, not a required consumer */
	uint32_t compress_threshold;   /* gzip frames this big or bigger; 0 = never */
	uint32_t batch_max;            /* envelopes per published message; default 256 */
	uint32_t pub_sendbuf;          /* messages queued per subscriber; default 1024 */
	uint32_t replay_window;        /* envelopes a session may run ahead of its ack; default 65536 */
	bool no_stream_topics;         /* publish sessions only, not the kl.v1/<stream>/ topics */
	struct kl_wal_opts wal;        /* dir ignored (per stream under wal_dir) */
	const char *graphd_url;        /* kl-graphd's rep socket; NULL = ipc://RINGS/kl-graphd.sock */
	const char *baselined_url;     /* kl-baselined's; NULL = ipc://RINGS/kl-baselined.sock */
	char *errbuf;                  /* if set, why kl_exporter_create() failed */
	size_t errlen;
};
#define KL_EXPORTER_OPTS_INIT \
	{ .sz = sizeof(struct kl_exporter_opts), .compress_threshold = 1024, \
	  .wal = KL_WAL_OPTS_INIT }

struct kl_exporter;

/** kl_exporter_create() - open WALs and sockets (binding them). Return: 0 or -errno. */
int kl_exporter_create(const struct kl_exporter_opts *o, struct kl_exporter **out);
/** kl_exporter_start() - start the pump and rep threads. */
int kl_exporter_start(struct kl_exporter *e);
/* Stop threads, close sockets; the ring slots are kept for a restart. */
void kl_exporter_destroy(struct kl_exporter *e);
/* Prometheus text exposition of everything (what /metrics serves). */
int kl_exporter_metrics(struct kl_exporter *e, struct xbuf *out);
/* Last error worth a log line from a background thread (or ""). */
const char *kl_exporter_last_error(struct kl_exporter *e);

/* Counters the tests and the bench look at. */
struct kl_exporter_counters {
	uint64_t published;            /* envelopes, all streams */
	uint64_t ring_records;         /* ring records consumed */
	uint64_t ring_missed;          /* lost by being lapped */
	uint64_t pub_messages;
	uint64_t rpc_requests;
	uint64_t rpc_errors;
	uint32_t sessions;
};
void kl_exporter_counters(struct kl_exporter *e, struct kl_exporter_counters *c);

#endif
