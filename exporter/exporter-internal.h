/* SPDX-License-Identifier: Apache-2.0 */
/* exporter-internal.h - state shared by exporter.c, rpc.c and http.c. */
#ifndef KL_EXPORTER_INTERNAL_H
#define KL_EXPORTER_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <kloudlens/shm.h>

#include "convert.h"
#include "exporter.h"

#define KL_NSTREAMS 5
#define KL_MAX_SESSIONS 64

struct kl_stream_def {
	int id;                 /* Kloudlens__V1__Stream */
	const char *name;       /* stream and topic name */
	const char *ring;       /* libshm ring it reads */
};
extern const struct kl_stream_def kl_stream_defs[KL_NSTREAMS];

struct kl_stream {
	const struct kl_stream_def *def;
	struct shm_ring *ring;
	struct shm_consumer *cons;
	struct kl_wal *wal;
	uint64_t next_seq;          /* seq of the next envelope (pump only) */
	uint64_t resume_ring_seq;   /* ring records up to this are already in the WAL */
	uint64_t last_missed;
	uint64_t batch_ring_seq;
	uint32_t batch_count;
	char topic[48];
	_Atomic uint64_t head_seq;  /* == next_seq, for other threads */
	_Atomic uint64_t published, ring_records, ring_missed, invalid, encode_errors, wal_errors;
};

struct kl_session {
	bool in_use;
	bool live;                  /* at the head: takes live batches */
	int stream;
	char id[24];
	char topic[64];
	struct kl_filter filter;
	uint64_t next_seq;
	uint64_t ack_seq;
	uint64_t client_missed;
	uint32_t lease_ms;
	uint64_t expires_ns;
	uint64_t sent, replayed, gaps;
	struct xbuf buf;            /* frames matched in the current batch */
	uint32_t buf_count;
};

/* a stage whose calls the exporter forwards (rpc.c) */
enum { KL_FWD_GRAPHD, KL_FWD_BASELINED, KL_FWD__COUNT };
struct kl_fwd {
	const char *stage;
	char url[300];
	nng_socket req;
	bool open;                  /* used by the rep thread only */
};

struct kl_exporter {
	pthread_mutex_t lock;
	char *rings_dir, *wal_dir, *consumer_name, *sub_url, *admin_url, *http_url;
	bool observer;
	bool stream_topics;
	uint32_t compress_threshold, batch_max, replay_window;
	struct kl_wal_opts wal_opts;
	int wal_lock_fd;
	struct kl_stream streams[KL_NSTREAMS];
	struct kl_session sessions[KL_MAX_SESSIONS];
	uint64_t sessions_expired;
	struct kl_ctr_table *ctrs;
	struct kl_conv conv;
	struct kl_codec codec;      /* pump: encoding */
	struct kl_codec rcodec;     /* pump: decoding replayed frames for filters */
	struct shm_rec *recs;
	struct xbuf batch, hdr;
	char cursor[64];
	uint64_t batch_wall_ns;
	uint64_t start_ns;
	nng_socket pub, rep;
	bool pub_open, rep_open;
	pthread_t pump_thr, rep_thr;
	bool pump_running, rep_running;
	nng_http_server *http;
	_Atomic bool stop;
	_Atomic uint64_t pump_beat_ns;
	_Atomic uint64_t pub_messages, pub_errors, rpc_requests, rpc_errors, http_requests;
	_Atomic uint64_t rpc_by_code[17];
	pthread_mutex_t err_lock;
	char last_error[256];
	struct kl_fwd fwd[KL_FWD__COUNT];
};

uint64_t kl_mono_ns(void);
int kl_nng_errno(int rv);
void kl_set_error(struct kl_exporter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct kl_stream *kl_stream_get(struct kl_exporter *e, int id);
void kl_session_free(struct kl_session *ss);
int kl_random_id(char *buf, size_t len);

void *kl_rep_main(void *arg);
/* Where forwarded calls go (NULL/"": the stage's default socket in the rings dir). */
void kl_rpc_forward_init(struct kl_exporter *e, const char *graphd_url, const char *baselined_url);
void kl_rpc_forward_close(struct kl_exporter *e);
/* Handle one request body; the reply is appended to @out. Exposed for tests. */
int kl_rpc_handle(struct kl_exporter *e, const uint8_t *req, size_t len, struct xbuf *out,
		  struct kl_codec *codec);

int kl_http_start(struct kl_exporter *e, const char *url);
void kl_http_stop(struct kl_exporter *e);
/* /readyz verdict; reasons appended to @why. */
bool kl_exporter_ready(struct kl_exporter *e, struct xbuf *why);

#endif
