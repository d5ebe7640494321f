/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intentd.h - kl-intentd's engine: folds the enriched event stream into
 * intents (docs/intents.md). Pure like the enricher's engine: no I/O and
 * no clock (event time drives windows and expiry), so golden tests are
 * deterministic and the benchmark measures the per-event work only.
 * Intents leave through a callback, in the order they are decided.
 */
#ifndef KLOUDLENS_INTENTD_H
#define KLOUDLENS_INTENTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kloudlens/record.h>

struct kl_intentd;

struct kl_intentd_opts {
	uint64_t window_ns;         /* FileAccess/NetworkExchange window for open fds (default 10 s) */
	uint32_t max_procs;         /* process table cap (default 65536) */
	uint32_t max_fds_per_proc;  /* highest fd tracked + 1 (default 4096) */
	uint32_t max_open;          /* open files/sockets folded at once, all processes (default 262144) */
	uint32_t max_dns_pending;   /* DNS queries awaiting a response (default 4096) */
	uint64_t dns_timeout_ns;    /* query without response emitted as timed out (default 5 s) */
	uint64_t dns_link_ttl_ns;   /* how long an answer links a later connection (default 300 s) */
	const char *node;           /* node name put in every intent (default: none) */
};

/* One intent record (struct kl_intent + TLV tail), valid during the call. */
typedef int (*kl_intent_emit_fn)(void *ctx, const void *rec, size_t len);

struct kl_intentd_stats {
	uint64_t events;            /* enriched records consumed */
	uint64_t invalid;           /* rejected by validation */
	uint64_t intents;           /* emitted, all kinds */
	uint64_t by_kind[KL_INTENT__COUNT];
	uint64_t procs;             /* live process entries */
	uint64_t procs_evicted;     /* by the cap (their state flushed first) */
	uint64_t open;              /* open files/sockets being folded */
	uint64_t open_evicted;      /* flushed early by max_open */
	uint64_t fd_untracked;      /* fd number above max_fds_per_proc */
	uint64_t dns_pending;
	uint64_t dns_unparsed;      /* DNS messages the parser rejected */
	uint64_t dns_server_side;   /* a query arriving at / an answer leaving a local server */
	uint64_t dns_timeouts;
	uint64_t dns_evicted;
	uint64_t dns_linked;        /* connections linked to an answer */
	uint64_t emit_errors;       /* emit callback failures */
	uint64_t truncated;         /* intents whose tail was cut */
};

/* Return: 0 or -errno. @emit is required. */
int kl_intentd_new(const struct kl_intentd_opts *opts, kl_intent_emit_fn emit, void *ctx,
		   struct kl_intentd **out);
void kl_intentd_free(struct kl_intentd *e);

/**
 * kl_intentd_process() - fold one record of the enriched ring (@type
 * KL_REC_ENRICHED; anything else is ignored) and emit whatever intents it
 * completes, plus any whose window or timeout passed by its timestamp.
 * Return: intents emitted (>= 0), -EBADMSG for an invalid record (counted).
 */
int kl_intentd_process(struct kl_intentd *e, uint16_t type, const void *rec, size_t len);
/**
 * kl_intentd_tick() - advance event time to @now_ns (same clock as
 * ev.ts_ns: CLOCK_MONOTONIC) without an event, so windows and DNS
 * timeouts still fire when the stream goes quiet. Never moves time back.
 * Return: intents emitted.
 */
int kl_intentd_tick(struct kl_intentd *e, uint64_t now_ns);
/* Emit everything still held (KL_IN_SHUTDOWN), e.g. on SIGTERM. Return: intents emitted. */
int kl_intentd_flush(struct kl_intentd *e);
void kl_intentd_stats(const struct kl_intentd *e, struct kl_intentd_stats *st);

/* ---- DNS wire format ---------------------------------------------------- */

#define KL_DNS_MAX_ADDRS 16

struct kl_dns_msg {
	uint16_t id, flags, qtype, qclass;
	uint8_t rcode;
	bool response;
	bool truncated;             /* answers cut (message or buffer) */
	uint16_t ancount;           /* as declared */
	uint32_t nanswers;          /* as parsed */
	char name[256];             /* question, dotted; non-printables as '?' */
	uint32_t naddrs;
	struct {
		uint16_t family;
		uint8_t addr[16];
	} addrs[KL_DNS_MAX_ADDRS];
	char answers[1024];         /* NUL-separated text: addresses, CNAME/PTR targets */
	size_t answers_len;
};

/**
 * kl_dns_parse() - parse DNS message @m (@len bytes; @tcp: with the
 * two-byte length prefix). Return: 0 (an answer section cut short still
 * returns 0 with ->truncated) or -EBADMSG (no usable question).
 */
int kl_dns_parse(const uint8_t *m, size_t len, bool tcp, struct kl_dns_msg *d);

#endif
