/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubewatch.c - list+watch of the kloudlens.io kinds, mirrored into the
 * control-plane directory (see kubewatch.h).
 */
#include "kubewatch.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "controlplane.h"

#define NKINDS 3
#define RECV_SLICE_MS 1000              /* a blocked read looks at the stop flag this often */
#define HEAD_TIMEOUT_MS 15000
#define LIST_MAX (64u << 20)
#define LINE_MAX_EVENT (16u << 20)

static const struct {
	const char *plural, *kind;
} kinds[NKINDS] = {
	{ "hooksubscriptions", "HookSubscription" },
	{ "baselinepolicies", "BaselinePolicy" },
	{ "behaviorcontracts", "BehaviorContract" },
};

struct watcher {
	struct kl_kw *kw;
	int k;
	pthread_t th;
	bool started;
	char rv[128];                   /* resourceVersion to watch from; "" = list first */
	char last_err[256];
	uint64_t last_err_ms;
	nng_aio *cur;                   /* in flight, for kl_kw_stop() to cancel (under kw->mu) */
};

struct kl_kw {
	char *api, *token_file, *dir;
	char host[256], port[8];
	bool tls;
	nng_tls_config *tls_cfg;
	uint32_t watch_timeout_s, backoff_max_ms;
	kl_kw_log_fn log;
	void *log_ctx;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct kl_kw_stats st;
	struct watcher w[NKINDS];
};

struct conn {
	struct watcher *w;
	nng_stream_dialer *d;
	nng_stream *s;
	nng_aio *aio;
	size_t off, len;
	int status;
	bool chunked, chunk_crlf, done;
	int64_t remain;                 /* content-length or chunk bytes left; -1: until close */
	int nng_err;                    /* behind an -EIO: what nng said (TLS: the certificate...) */
	uint8_t buf[16384];             /* last: memset(offsetof(buf)) resets everything above */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 3, 4)))
static void kwlog(struct kl_kw *kw, const char *level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!kw->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kw->log(level, msg, kw->log_ctx);
}

/* A failure, logged when it differs from the last one or a minute later. */
__attribute__((format(printf, 2, 3)))
static void werr(struct watcher *w, const char *fmt, ...)
{
	char msg[256];
	uint64_t now = mono_ms();
	va_list ap;

	if (atomic_load(&w->kw->stop))
		return;         /* what a stop cancels is not a failure */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->kw->mu);
	w->kw->st.errors++;
	pthread_mutex_unlock(&w->kw->mu);
	if (!strcmp(msg, w->last_err) && now - w->last_err_ms < 60000)
		return;
	snprintf(w->last_err, sizeof(w->last_err), "%s", msg);
	w->last_err_ms = now;
	kwlog(w->kw, "warn", "kubernetes %s: %s", kinds[w->k].plural, msg);
}

static void stat_add(struct kl_kw *kw, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&kw->mu);
	*field += n;
	pthread_mutex_unlock(&kw->mu);
}

/* ---- the connection --------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	struct watcher *w = c->w;

	if (w) {
		pthread_mutex_lock(&w->kw->mu);
		w->cur = NULL;
		pthread_mutex_unlock(&w->kw->mu);
	}
	if (c->s) {
		nng_stream_close(c->s);
		nng_stream_free(c->s);
	}
	if (c->d)
		nng_stream_dialer_free(c->d);
	if (c->aio)
		nng_aio_free(c->aio);
	int nerr = c->nng_err;  /* the caller still reports it */
	memset(c, 0, offsetof(struct conn, buf));
	c->off = c->len = 0;
	c->w = w;
	c->nng_err = nerr;
}

static int conn_open(struct watcher *w, struct conn *c)
{
	struct kl_kw *kw = w->kw;
	char url[320];
	int rv;

	memset(c, 0, offsetof(struct conn, buf));
	c->off = c->len = 0;
	c->w = w;
	snprintf(url, sizeof(url), "%s://%s%s%s:%s", kw->tls ? "tls+tcp" : "tcp", strchr(kw->host, ':') ? "[" : "",
		 kw->host, strchr(kw->host, ':') ? "]" : "", kw->port);
	if ((rv = nng_aio_alloc(&c->aio, NULL, NULL)) || (rv = nng_stream_dialer_alloc(&c->d, url)))
		goto fail;
	pthread_mutex_lock(&kw->mu);
	w->cur = c->aio;
	pthread_mutex_unlock(&kw->mu);
	if (atomic_load(&kw->stop)) {
		rv = NNG_ECANCELED;
		goto fail;
	}
	if (kw->tls && (rv = nng_stream_dialer_set_ptr(c->d, NNG_OPT_TLS_CONFIG, kw->tls_cfg)))
		goto fail;
	nng_aio_set_timeout(c->aio, 10000);
	nng_stream_dialer_dial(c->d, c->aio);
	nng_aio_wait(c->aio);
	if ((rv = nng_aio_result(c->aio)))
		goto fail;
	c->s = nng_aio_get_output(c->aio, 0);
	return 0;
fail:
	c->nng_err = rv;
	conn_close(c);
	return rv == NNG_ETIMEDOUT ? -ETIMEDOUT : rv == NNG_ECONNREFUSED ? -ECONNREFUSED :
	       rv == NNG_ECANCELED ? -ECANCELED : -EIO;
}

static int conn_send(struct conn *c, const char *data, size_t len)
{
	while (len) {
		nng_iov iov = { .iov_buf = (void *)data, .iov_len = len };
		size_t n;

		nng_aio_set_iov(c->aio, 1, &iov);
		nng_aio_set_timeout(c->aio, 10000);
		nng_stream_send(c->s, c->aio);
		nng_aio_wait(c->aio);
		if ((c->nng_err = nng_aio_result(c->aio)))
			return -EIO;
		n = nng_aio_count(c->aio);
		data += n;
		len -= n;
	}
	return 0;
}

/* More bytes into the buffer. Return: bytes added, 0 at the peer's close,
 * -ETIMEDOUT when nothing came within one slice, -ECANCELED on stop. */
static int conn_fill(struct kl_kw *kw, struct conn *c)
{
	nng_iov iov;
	int rv;

	if (atomic_load(&kw->stop))
		return -ECANCELED;
	if (c->off == c->len) {
		c->off = c->len = 0;
	} else if (c->off && c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return -EMSGSIZE;
	iov.iov_buf = c->buf + c->len;
	iov.iov_len = sizeof(c->buf) - c->len;
	nng_aio_set_iov(c->aio, 1, &iov);
	nng_aio_set_timeout(c->aio, RECV_SLICE_MS);
	nng_stream_recv(c->s, c->aio);
	nng_aio_wait(c->aio);
	rv = nng_aio_result(c->aio);
	if (rv == NNG_ETIMEDOUT)
		return -ETIMEDOUT;
	if (rv == NNG_ECANCELED || atomic_load(&kw->stop))
		return -ECANCELED;
	if (rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET)
		return 0;
	if (rv) {
		c->nng_err = rv;
		return -EIO;
	}
	c->len += nng_aio_count(c->aio);
	return (int)nng_aio_count(c->aio);
}

/* The next CRLF-terminated line, without it. Return: 0 or -errno. */
static int conn_line(struct kl_kw *kw, struct conn *c, char *out, size_t max)
{
	uint64_t deadline = mono_ms() + HEAD_TIMEOUT_MS;

	for (;;) {
		uint8_t *p = c->buf + c->off;
		size_t avail = c->len - c->off;

		for (size_t i = 0; i + 1 < avail; i++)
			if (p[i] == '\r' && p[i + 1] == '\n') {
				if (i >= max)
					return -EMSGSIZE;
				memcpy(out, p, i);
				out[i] = 0;
				c->off += i + 2;
				return 0;
			}
		int r = conn_fill(kw, c);

		if (r == 0)
			return -EPROTO;
		if (r == -ETIMEDOUT && mono_ms() < deadline)
			continue;
		if (r < 0)
			return r;
	}
}

static int read_head(struct kl_kw *kw, struct conn *c)
{
	char line[1024];
	int err, major, minor;

	if ((err = conn_line(kw, c, line, sizeof(line))))
		return err;
	if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &c->status) != 3)
		return -EPROTO;
	c->remain = -1;
	for (;;) {
		if ((err = conn_line(kw, c, line, sizeof(line))))
			return err;
		if (!line[0])
			break;
		char *v = strchr(line, ':');
		if (!v)
			return -EPROTO;
		*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcasecmp(line, "Content-Length")) {
			char *end;
			long long n = strtoll(v, &end, 10);
			if (end == v || n < 0)
				return -EPROTO;
			c->remain = n;
		} else if (!strcasecmp(line, "Transfer-Encoding") && strcasestr(v, "chunked")) {
			c->chunked = true;
		}
	}
	if (c->chunked)
		c->remain = 0;
	return 0;
}

/* Up to @max body bytes, de-chunked. Return: bytes, 0 at the end of the
 * body, -ETIMEDOUT when nothing came within a slice, other -errno. */
static ssize_t body_read(struct kl_kw *kw, struct conn *c, void *dst, size_t max)
{
	char line[256];
	size_t n;
	int err, r;

	for (;;) {
		if (c->done)
			return 0;
		if (c->chunked && c->remain == 0) {
			if (c->chunk_crlf) {
				if ((err = conn_line(kw, c, line, sizeof(line))))
					return err;
				if (line[0])
					return -EPROTO;
				c->chunk_crlf = false;
			}
			if ((err = conn_line(kw, c, line, sizeof(line))))
				return err;
			char *end;
			unsigned long long sz = strtoull(line, &end, 16);
			if (end == line || (*end && *end != ';' && *end != ' '))
				return -EPROTO;
			if (sz > (1ull << 40))
				return -EPROTO;
			if (sz == 0) {
				/* trailers, then the blank line */
				do {
					if ((err = conn_line(kw, c, line, sizeof(line))))
						return err;
				} while (line[0]);
				c->done = true;
				return 0;
			}
			c->remain = (int64_t)sz;
			c->chunk_crlf = true;
		}
		if (!c->chunked && c->remain == 0) {
			c->done = true;
			return 0;
		}
		if (c->off == c->len) {
			r = conn_fill(kw, c);
			/* a body that ends at the close: however the TLS layer reports it */
			if (r < 0 && r != -ETIMEDOUT && r != -ECANCELED && !c->chunked && c->remain < 0)
				r = 0;
			if (r == 0) {
				if (!c->chunked && c->remain < 0) {
					c->done = true;
					return 0;
				}
				return -EPROTO;     /* cut mid-body */
			}
			if (r < 0)
				return r;
		}
		n = c->len - c->off;
		if (n > max)
			n = max;
		if (c->remain >= 0 && (int64_t)n > c->remain)
			n = (size_t)c->remain;
		memcpy(dst, c->buf + c->off, n);
		c->off += n;
		if (c->remain >= 0)
			c->remain -= (int64_t)n;
		return (ssize_t)n;
	}
}

/* An error for the log: nng's own words behind an -EIO (a TLS failure is
 * "Peer could not be authenticated", not "Input/output error"). */
static const char *conn_strerror(const struct conn *c, int err)
{
	static __thread char msg[160];

	if (err != -EIO || !c->nng_err)
		return strerror(-err);
	if (c->nng_err == NNG_ECRYPTO || c->nng_err == NNG_EPEERAUTH) {
		snprintf(msg, sizeof(msg), "%s (TLS: is kubernetes.ca_file the API server's CA, and "
			 "kubernetes.server_name a name in its certificate?)", nng_strerror(c->nng_err));
		return msg;
	}
	return nng_strerror(c->nng_err);
}

/* The token, re-read each time: projected service-account tokens rotate. */
static char *read_token(struct kl_kw *kw)
{
	char buf[8192];
	FILE *f;
	size_t n;

	if (!kw->token_file || !*kw->token_file)
		return NULL;
	f = fopen(kw->token_file, "re");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && isspace((unsigned char)buf[n - 1]))
		buf[--n] = 0;
	/* a header must stay one line */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\r' || buf[i] == '\n')
			return NULL;
	return n ? strdup(buf) : NULL;
}

static int request(struct watcher *w, struct conn *c, const char *path)
{
	struct kl_kw *kw = w->kw;
	char *tok = read_token(kw), *req = NULL;
	int err, n;

	if ((err = conn_open(w, c))) {
		free(tok);
		return err;
	}
	n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: kloudlens\r\n"
		     "Accept: application/json\r\n%s%s%sConnection: close\r\n\r\n",
		     path, strchr(kw->host, ':') ? "[" : "", kw->host, strchr(kw->host, ':') ? "]" : "", kw->port,
		     tok ? "Authorization: Bearer " : "", tok ? tok : "", tok ? "\r\n" : "");
	free(tok);
	if (n < 0)
		return -ENOMEM;
	err = conn_send(c, req, (size_t)n);
	free(req);
	if (!err)
		err = read_head(kw, c);
	return err;
}

/* A whole (bounded) body, NUL-terminated. Return: 0 or -errno. */
static int read_body(struct kl_kw *kw, struct conn *c, char **out, size_t *outlen, size_t cap)
{
	size_t len = 0, sz = 65536;
	char *b = malloc(sz + 1);
	uint64_t stall = mono_ms() + HEAD_TIMEOUT_MS;
	ssize_t r;

	if (!b)
		return -ENOMEM;
	for (;;) {
		if (len == sz) {
			char *nb;

			if (sz >= cap) {
				free(b);
				return -EFBIG;
			}
			sz *= 2;
			nb = realloc(b, sz + 1);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		r = body_read(kw, c, b + len, sz - len);
		/* a server that stalls mid-body must not hold us forever */
		if (r == -ETIMEDOUT && mono_ms() < stall)
			continue;
		if (r < 0) {
			free(b);
			return (int)r;
		}
		stall = mono_ms() + HEAD_TIMEOUT_MS;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	b[len] = 0;
	*out = b;
	*outlen = len;
	return 0;
}

/* "Forbidden: ..." from a Status body, for the log. */
static void status_message(struct kl_kw *kw, struct conn *c, char *msg, size_t n)
{
	char *body = NULL;
	size_t len;
	json_t *j;

	snprintf(msg, n, "HTTP %d", c->status);
	if (read_body(kw, c, &body, &len, 1u << 20))
		return;
	j = json_loadb(body, len, 0, NULL);
	if (json_is_string(json_object_get(j, "message")))
		snprintf(msg, n, "HTTP %d: %s", c->status, json_string_value(json_object_get(j, "message")));
	json_decref(j);
	free(body);
}

/* ---- objects <-> files ------------------------------------------------------- */

/* DNS-1123: what Kubernetes allows in names and namespaces, so safe in a file name. */
static bool k8s_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
			return false;
	return s[0] != '.' && s[0] != '-';
}

static int obj_path(struct watcher *w, json_t *obj, char *path, size_t n)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));

	if (!k8s_name_ok(name) || (ns && !k8s_name_ok(ns)))
		return -EINVAL;
	/* "_": no namespace (cluster-scoped), and never a DNS-1123 name */
	if ((size_t)snprintf(path, n, "%s/" KL_KW_PREFIX "%s-%s-%s.yaml", w->kw->dir, kinds[w->k].plural,
			     ns ? ns : "_", name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

static bool same_content(const char *path, const char *text)
{
	size_t n = strlen(text);
	char *buf = malloc(n + 2);
	bool same = false;
	FILE *f;

	if (!buf)
		return false;
	f = fopen(path, "re");
	if (f) {
		same = fread(buf, 1, n + 1, f) == n && !memcmp(buf, text, n);
		fclose(f);
	}
	free(buf);
	return same;
}

/* Mirror one object. Return: 0 or -errno (logged). */
static int obj_write(struct watcher *w, json_t *obj, char *path, size_t pathlen)
{
	json_t *meta = json_object_get(obj, "metadata"), *doc, *m;
	const char *av = json_string_value(json_object_get(obj, "apiVersion"));
	char *text;
	int err;

	if (obj_path(w, obj, path, pathlen)) {
		werr(w, "an object without a valid metadata.name/namespace: skipped");
		return -EINVAL;
	}
	/* only what the user wrote: the validator refuses uid, managedFields, status... */
	doc = json_object();
	m = json_object();
	json_object_set_new(doc, "apiVersion", json_string(av ? av : "kloudlens.io/v1"));
	json_object_set_new(doc, "kind", json_string(kinds[w->k].kind));
	json_object_set(m, "name", json_object_get(meta, "name"));
	if (json_object_get(meta, "namespace"))
		json_object_set(m, "namespace", json_object_get(meta, "namespace"));
	if (json_is_object(json_object_get(meta, "labels")))
		json_object_set(m, "labels", json_object_get(meta, "labels"));
	json_object_set_new(doc, "metadata", m);
	if (json_object_get(obj, "spec"))
		json_object_set(doc, "spec", json_object_get(obj, "spec"));
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	char *withnl = NULL;
	err = asprintf(&withnl, "# mirrored from the Kubernetes API by kloudlens; edits are overwritten\n%s\n",
		       text) < 0 ? -ENOMEM : 0;
	free(text);
	if (err)
		return err;
	if (!same_content(path, withnl)) {
		err = kl_cp_write_atomic(path, withnl);
		if (err)
			werr(w, "write %s: %s", path, strerror(-err));
		else
			stat_add(w->kw, &w->kw->st.written, 1);
	}
	free(withnl);
	return err;
}

static void obj_remove(struct watcher *w, json_t *obj)
{
	char path[4096];

	if (obj_path(w, obj, path, sizeof(path)))
		return;
	if (unlink(path) == 0)
		stat_add(w->kw, &w->kw->st.removed, 1);
}

/* After a list: files of this kind that the list no longer has go. */
static void reconcile(struct watcher *w, char **keep, size_t nkeep)
{
	char prefix[128], path[4096];
	struct dirent *de;
	DIR *d = opendir(w->kw->dir);

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), KL_KW_PREFIX "%s-", kinds[w->k].plural);
	while ((de = readdir(d))) {
		bool kept = false;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", w->kw->dir, de->d_name);
		for (size_t i = 0; i < nkeep && !kept; i++)
			kept = !strcmp(keep[i], path);
		if (!kept && unlink(path) == 0)
			stat_add(w->kw, &w->kw->st.removed, 1);
	}
	closedir(d);
}

/* ---- list and watch ----------------------------------------------------------- */

static int do_list(struct watcher *w)
{
	struct kl_kw *kw = w->kw;
	struct conn c;
	char path[256], msg[512], **keep = NULL;
	char *body = NULL;
	size_t len, n, nkeep = 0;
	json_t *j = NULL, *items, *it;
	json_error_t je;
	int err;

	snprintf(path, sizeof(path), "/apis/kloudlens.io/v1/%s", kinds[w->k].plural);
	err = request(w, &c, path);
	if (err) {
		werr(w, "list %s: %s", kw->api, conn_strerror(&c, err));
		goto out;
	}
	if (c.status != 200) {
		status_message(kw, &c, msg, sizeof(msg));
		werr(w, "list %s%s: %s", kw->api, path, msg);
		err = -EIO;
		goto out;
	}
	err = read_body(kw, &c, &body, &len, LIST_MAX);
	if (err) {
		werr(w, "list %s: body: %s", path, conn_strerror(&c, err));
		goto out;
	}
	j = json_loadb(body, len, 0, &je);
	items = json_object_get(j, "items");
	if (!json_is_array(items)) {
		werr(w, "list %s: not a list (%s at byte %d)", path, j ? "no items" : je.text, je.position);
		err = -EPROTO;
		goto out;
	}
	keep = calloc(json_array_size(items) + 1, sizeof(*keep));
	if (!keep) {
		err = -ENOMEM;
		goto out;
	}
	bool complete = true;
	json_array_foreach(items, n, it) {
		char p[4096];

		/* -EINVAL: no valid name, so no file; after any other failure the
		 * object's previous file (its last good content) stays */
		if (obj_write(w, it, p, sizeof(p)) == -EINVAL)
			continue;
		if ((keep[nkeep] = strdup(p)))
			nkeep++;
		else
			complete = false;
	}
	/* without the full list of what to keep, removing would remove too much */
	if (complete)
		reconcile(w, keep, nkeep);
	snprintf(w->rv, sizeof(w->rv), "%s",
		 json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion")) ?: "");
	stat_add(kw, &kw->st.lists, 1);
	if (w->last_err[0]) {
		kwlog(kw, "info", "kubernetes %s: listed %zu again", kinds[w->k].plural, nkeep);
		w->last_err[0] = 0;
	}
out:
	for (size_t i = 0; i < nkeep; i++)
		free(keep[i]);
	free(keep);
	json_decref(j);
	free(body);
	conn_close(&c);
	return err;
}

/* One watch event (a JSON line). Return: 0, -ESTALE (410: re-list) or -EPROTO. */
static int watch_event(struct watcher *w, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL), *obj;
	const char *type = json_string_value(json_object_get(ev, "type")), *rv;
	char path[4096];
	int err = 0;

	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		werr(w, "watch: malformed event skipped");
		json_decref(ev);
		return -EPROTO;
	}
	if (!strcmp(type, "ERROR")) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));

		if (code == 410)
			err = -ESTALE;
		else
			werr(w, "watch: server error %lld: %s", (long long)code,
			     json_string_value(json_object_get(obj, "message")) ?: "");
		json_decref(ev);
		return err ? err : -EPROTO;
	}
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		obj_write(w, obj, path, sizeof(path));
		stat_add(w->kw, &w->kw->st.events, 1);
	} else if (!strcmp(type, "DELETED")) {
		obj_remove(w, obj);
		stat_add(w->kw, &w->kw->st.events, 1);
	}
	rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	if (rv && *rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
	json_decref(ev);
	return 0;
}

/* Watch from w->rv until the server ends the stream (0), asks for a
 * re-list (-ESTALE), the connection fails or we stop. */
static int do_watch(struct watcher *w)
{
	struct kl_kw *kw = w->kw;
	struct conn c;
	char path[512], msg[512];
	char *line = NULL;
	size_t len = 0, cap = 65536;
	uint64_t quiet_ms = (uint64_t)kw->watch_timeout_s * 1000 + 30000, last;
	ssize_t r;
	int err;

	snprintf(path, sizeof(path), "/apis/kloudlens.io/v1/%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u"
		 "&resourceVersion=%s", kinds[w->k].plural, kw->watch_timeout_s, w->rv);
	err = request(w, &c, path);
	if (err) {
		werr(w, "watch %s: %s", kw->api, conn_strerror(&c, err));
		goto out;
	}
	if (c.status == 410) {
		err = -ESTALE;
		goto out;
	}
	if (c.status != 200) {
		status_message(kw, &c, msg, sizeof(msg));
		werr(w, "watch %s: %s", path, msg);
		err = -EIO;
		goto out;
	}
	stat_add(kw, &kw->st.watches, 1);
	last = mono_ms();
	line = malloc(cap);
	if (!line) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (len == cap) {
			char *nl;

			if (cap >= LINE_MAX_EVENT) {
				werr(w, "watch: an event longer than %u bytes", LINE_MAX_EVENT);
				err = -EMSGSIZE;
				goto out;
			}
			cap *= 2;
			nl = realloc(line, cap);
			if (!nl) {
				err = -ENOMEM;
				goto out;
			}
			line = nl;
		}
		r = body_read(kw, &c, line + len, cap - len);
		/* the server ends a watch after timeoutSeconds; silence well past
		 * that is a connection that died without a word: watch again */
		if (r == -ETIMEDOUT && mono_ms() - last < quiet_ms)
			continue;
		if (r == -ETIMEDOUT) {
			werr(w, "watch: nothing for %llu s: reconnecting", (unsigned long long)(quiet_ms / 1000));
			err = 0;
			goto out;
		}
		last = mono_ms();
		if (r <= 0) {
			err = (int)r;
			if (err && err != -ECANCELED)
				werr(w, "watch: stream: %s", conn_strerror(&c, err));
			goto out;
		}
		len += (size_t)r;
		/* every complete line is one event */
		char *start = line, *nl;
		while ((nl = memchr(start, '\n', len - (size_t)(start - line)))) {
			if (nl > start) {
				err = watch_event(w, start, (size_t)(nl - start));
				if (err == -ESTALE)
					goto out;
				err = 0;
			}
			start = nl + 1;
		}
		len -= (size_t)(start - line);
		memmove(line, start, len);
	}
out:
	free(line);
	conn_close(&c);
	return err;
}

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	struct kl_kw *kw = w->kw;
	uint32_t backoff = 500;

	while (!atomic_load(&kw->stop)) {
		int err = 0;

		if (!w->rv[0])
			err = do_list(w);
		if (!err) {
			err = do_watch(w);
			if (err == -ESTALE) {
				/* too old to resume: start again from a full list */
				stat_add(kw, &kw->st.gone, 1);
				w->rv[0] = 0;
				continue;
			}
			if (!err) {
				backoff = 500;
				continue;       /* the server ended it: resume from w->rv */
			}
		}
		if (atomic_load(&kw->stop))
			break;
		for (uint32_t t = 0; t < backoff && !atomic_load(&kw->stop); t += 100)
			usleep(100000);
		backoff = backoff * 2 > kw->backoff_max_ms ? kw->backoff_max_ms : backoff * 2;
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

int kl_kw_incluster_api(char *buf, size_t len)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");

	if (!h || !*h)
		return -ENOENT;
	snprintf(buf, len, "https://%s%s%s:%s", strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "",
		 p && *p ? p : "443");
	return 0;
}

/* scheme://host[:port][/] into kw; IPv6 hosts in brackets. */
static int parse_api(struct kl_kw *kw, const char *api)
{
	const char *h, *e, *colon;
	size_t hl;

	if (!strncmp(api, "https://", 8)) {
		kw->tls = true;
		h = api + 8;
	} else if (!strncmp(api, "http://", 7)) {
		h = api + 7;
	} else {
		return -EINVAL;
	}
	if (*h == '[') {
		e = strchr(h, ']');
		if (!e)
			return -EINVAL;
		hl = (size_t)(e - h - 1);
		h++;
		colon = e[1] == ':' ? e + 1 : NULL;
		e++;
	} else {
		e = h + strcspn(h, ":/");
		hl = (size_t)(e - h);
		colon = *e == ':' ? e : NULL;
	}
	if (!hl || hl >= sizeof(kw->host))
		return -EINVAL;
	memcpy(kw->host, h, hl);
	kw->host[hl] = 0;
	if (colon) {
		size_t pl = strspn(colon + 1, "0123456789");

		if (!pl || pl >= sizeof(kw->port) || (colon[1 + pl] && strcmp(colon + 1 + pl, "/")))
			return -EINVAL;
		memcpy(kw->port, colon + 1, pl);
		kw->port[pl] = 0;
	} else {
		if (*e && strcmp(e, "/"))
			return -EINVAL;
		snprintf(kw->port, sizeof(kw->port), "%s", kw->tls ? "443" : "80");
	}
	return 0;
}

int kl_kw_start(const struct kl_kw_opts *o, struct kl_kw **out)
{
	struct kl_kw *kw;
	int err, rv;

	if (!o || !o->api || !o->dir || !out)
		return -EINVAL;
	kw = calloc(1, sizeof(*kw));
	if (!kw)
		return -ENOMEM;
	pthread_mutex_init(&kw->mu, NULL);
	kw->log = o->log;
	kw->log_ctx = o->log_ctx;
	kw->watch_timeout_s = o->watch_timeout_s ? o->watch_timeout_s : 300;
	kw->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	kw->api = strdup(o->api);
	kw->dir = strdup(o->dir);
	kw->token_file = o->token_file ? strdup(o->token_file) : NULL;
	if (!kw->api || !kw->dir || (o->token_file && !kw->token_file)) {
		err = -ENOMEM;
		goto fail;
	}
	if (parse_api(kw, o->api)) {
		kwlog(kw, "error", "kubernetes.api \"%s\": expected http(s)://host[:port]", o->api);
		err = -EINVAL;
		goto fail;
	}
	if (kw->tls) {
		const char *sn = o->server_name && *o->server_name ? o->server_name : kw->host;

		if ((rv = nng_tls_config_alloc(&kw->tls_cfg, NNG_TLS_MODE_CLIENT)) ||
		    (rv = nng_tls_config_auth_mode(kw->tls_cfg, NNG_TLS_AUTH_MODE_REQUIRED)) ||
		    (rv = nng_tls_config_server_name(kw->tls_cfg, sn))) {
			kwlog(kw, "error", "kubernetes: TLS: %s", nng_strerror(rv));
			err = -EIO;
			goto fail;
		}
		if (!o->ca_file || !*o->ca_file || (rv = nng_tls_config_ca_file(kw->tls_cfg, o->ca_file))) {
			kwlog(kw, "error", "kubernetes.ca_file \"%s\": %s", o->ca_file ? o->ca_file : "",
			      o->ca_file && *o->ca_file ? nng_strerror(rv) : "required for https");
			err = -EINVAL;
			goto fail;
		}
	}
	/* our threads take no process signal: SIGTERM is the caller's to
	 * receive (a supervisor that blocks it for its signalfd after this
	 * would otherwise be killed through one of ours) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int k = 0; k < NKINDS; k++) {
		kw->w[k].kw = kw;
		kw->w[k].k = k;
		if ((err = -pthread_create(&kw->w[k].th, NULL, watcher_main, &kw->w[k])))
			break;
		kw->w[k].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail;
	kwlog(kw, "info", "kubernetes: watching hooksubscriptions, baselinepolicies and behaviorcontracts "
	      "(kloudlens.io/v1) at %s into %s", kw->api, kw->dir);
	*out = kw;
	return 0;
fail:
	kl_kw_stop(kw);
	return err;
}

void kl_kw_stop(struct kl_kw *kw)
{
	if (!kw)
		return;
	atomic_store(&kw->stop, true);
	/* a dial or read in flight ends now, not at its timeout */
	pthread_mutex_lock(&kw->mu);
	for (int k = 0; k < NKINDS; k++)
		if (kw->w[k].cur)
			nng_aio_cancel(kw->w[k].cur);
	pthread_mutex_unlock(&kw->mu);
	for (int k = 0; k < NKINDS; k++)
		if (kw->w[k].started)
			pthread_join(kw->w[k].th, NULL);
	if (kw->tls_cfg)
		nng_tls_config_free(kw->tls_cfg);
	pthread_mutex_destroy(&kw->mu);
	free(kw->api);
	free(kw->dir);
	free(kw->token_file);
	free(kw);
}

void kl_kw_get_stats(struct kl_kw *kw, struct kl_kw_stats *st)
{
	pthread_mutex_lock(&kw->mu);
	*st = kw->st;
	pthread_mutex_unlock(&kw->mu);
}
