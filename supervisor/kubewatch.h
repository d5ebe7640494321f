/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubewatch.h - kubernetes mode: the kloudlens.io objects of the cluster
 * (HookSubscription, BaselinePolicy, BehaviorContract) mirrored from the
 * API server into a control-plane directory, one file per object.
 *
 * One thread per kind lists, then watches from the list's
 * resourceVersion, re-listing when the server answers 410 Gone, and
 * re-connecting with backoff when the connection drops. Each object is
 * written (temp + rename) as a JSON document — YAML's flow style, so the
 * docker-mode parser reads it — holding only apiVersion, kind,
 * metadata.name/namespace/labels and spec: what the server adds (uid,
 * resourceVersion, managedFields, status, annotations) is not the
 * user's and the strict validator would refuse it. The supervisor's
 * inotify watch on the directory does the rest, exactly as in docker
 * mode, so an invalid object is refused by file and key and the last
 * good configuration stays.
 *
 * HTTP/1.1 over nng streams (tcp, or TLS with nng's mbedtls): one
 * request per connection, Content-Length or chunked bodies, the watch a
 * chunked stream of newline-separated JSON events.
 */
#ifndef KLOUDLENS_KUBEWATCH_H
#define KLOUDLENS_KUBEWATCH_H

#include <stddef.h>
#include <stdint.h>

typedef void (*kl_kw_log_fn)(const char *level, const char *msg, void *ctx);

struct kl_kw_opts {
	/* "https://host:port" or "http://host:port" (kubectl proxy) */
	const char *api;
	/* bearer token, re-read at every connection (projected tokens rotate);
	 * NULL or "": none */
	const char *token_file;
	/* https: the CA that signed the server's certificate */
	const char *ca_file;
	/* https: the name its certificate is checked against (NULL: the
	 * host of @api). In a pod the host is the service IP, which the
	 * TLS library here cannot match: use kubernetes.default.svc. */
	const char *server_name;
	const char *dir;                /* the control-plane directory to mirror into */
	uint32_t watch_timeout_s;       /* asked of the server per watch (default 300) */
	uint32_t backoff_max_ms;        /* reconnect backoff cap (default 30000) */
	kl_kw_log_fn log;
	void *log_ctx;
};

struct kl_kw_stats {
	uint64_t lists;         /* successful LISTs (each a full reconcile) */
	uint64_t watches;       /* watch streams opened */
	uint64_t events;        /* ADDED / MODIFIED / DELETED applied */
	uint64_t gone;          /* 410 Gone: re-listed */
	uint64_t errors;        /* failed requests and malformed answers */
	uint64_t written;       /* files written */
	uint64_t removed;       /* files removed */
};

struct kl_kw;

/*
 * The in-cluster API address from KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT ("https://10.96.0.1:443"). Return: 0, or
 * -ENOENT when not in a pod.
 */
int kl_kw_incluster_api(char *buf, size_t len);

/* Start the watchers. Return: 0 or -errno (-EINVAL: a bad URL, named in the log). */
int kl_kw_start(const struct kl_kw_opts *o, struct kl_kw **out);
/* Stop and join every thread (within about a second); accepts NULL. */
void kl_kw_stop(struct kl_kw *kw);
void kl_kw_get_stats(struct kl_kw *kw, struct kl_kw_stats *st);

/* The file an object of @plural is mirrored to: "k8s-<plural>-<ns>-<name>.yaml". */
#define KL_KW_PREFIX "k8s-"

#endif
