/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kubernetes mode's API-server watch against a fake API server (plain
 * HTTP and TLS on nng streams) that speaks what the real one does for a
 * CRD: a list with a resourceVersion, a chunked watch of JSON lines that
 * replays from the version asked for, bookmarks, 410 Gone, Status bodies
 * on errors. The mirrored files must pass the docker-mode validator.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "controlplane.h"
#include "../common/livetest.h"
#include "kubewatch.h"

#ifndef KL_SOURCE_ROOT
#define KL_SOURCE_ROOT "."
#endif
#define KUBE_DIR KL_SOURCE_ROOT "/tests/supervisor/kube"

/* ---- the fake API server --------------------------------------------------- */

#define MAX_EVENTS 256
#define MAX_CONNS 64

static struct fake {
	nng_stream_listener *l;
	nng_tls_config *tls;
	int port;
	pthread_t acceptor;
	pthread_t conns[MAX_CONNS];
	nng_stream *streams[MAX_CONNS]; /* NULL once its thread closed it (under mu) */
	int nconns;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t rv;
	json_t *state;                  /* plural -> array of objects */
	struct {
		char plural[32];
		uint64_t rv;
		char *line;             /* the JSON event, or NULL with end/gone */
		bool end, gone;
	} ev[MAX_EVENTS];
	int nev;
	char forbid[32];                /* this plural answers 403 */
	char compacted[32];             /* this plural's history before compacted_rv is gone */
	uint64_t compacted_rv;
	bool bad_list;                  /* lists answer malformed JSON */
	bool cut_list;                  /* lists promise more bytes than they send, then close */
	bool bad_chunk;                 /* watches send a chunk size that is not hex */
	char requests[64][512];         /* request line + " auth=" + bearer */
	int nreq;
} F;

static char tmp[128], dir[160], token[200];
static char logbuf[16384];
static pthread_mutex_t logmu = PTHREAD_MUTEX_INITIALIZER;

static void kwlog(const char *level, const char *msg, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&logmu);
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof(logbuf) - n, "%s: %s\n", level, msg);
	pthread_mutex_unlock(&logmu);
}

static bool log_has(const char *s)
{
	pthread_mutex_lock(&logmu);
	bool r = strstr(logbuf, s) != NULL;
	pthread_mutex_unlock(&logmu);
	return r;
}

static int xsend(nng_stream *s, nng_aio *aio, const char *buf, size_t len)
{
	while (len) {
		nng_iov iov = { .iov_buf = (void *)buf, .iov_len = len };
		nng_aio_set_iov(aio, 1, &iov);
		nng_aio_set_timeout(aio, 5000);
		nng_stream_send(s, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			return -1;
		buf += nng_aio_count(aio);
		len -= nng_aio_count(aio);
	}
	return 0;
}

static int chunk(nng_stream *s, nng_aio *aio, const char *data)
{
	char head[32];

	snprintf(head, sizeof(head), "%zx\r\n", strlen(data));
	if (xsend(s, aio, head, strlen(head)) || xsend(s, aio, data, strlen(data)))
		return -1;
	return xsend(s, aio, "\r\n", 2);
}

static void respond(nng_stream *s, nng_aio *aio, int code, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 code, strlen(body));
	if (!xsend(s, aio, head, strlen(head)))
		xsend(s, aio, body, strlen(body));
}

static void push_event(const char *plural, const char *type, json_t *obj)
{
	json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);

	cr_assert_lt(F.nev, MAX_EVENTS);
	snprintf(F.ev[F.nev].plural, sizeof(F.ev[F.nev].plural), "%s", plural);
	F.ev[F.nev].rv = F.rv;
	F.ev[F.nev].line = json_dumps(ev, JSON_COMPACT);
	F.nev++;
	json_decref(ev);
	pthread_cond_broadcast(&F.cv);
}

static void *conn_main(void *arg)
{
	int slot = (int)(intptr_t)arg;
	nng_stream *s = F.streams[slot];
	nng_aio *aio;
	char req[8192] = "", path[1024] = "", auth[300] = "";
	size_t len = 0;

	nng_aio_alloc(&aio, NULL, NULL);
	while (!strstr(req, "\r\n\r\n") && len < sizeof(req) - 1) {
		nng_iov iov = { .iov_buf = req + len, .iov_len = sizeof(req) - 1 - len };
		nng_aio_set_iov(aio, 1, &iov);
		nng_aio_set_timeout(aio, 5000);
		nng_stream_recv(s, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			goto out;
		len += nng_aio_count(aio);
		req[len] = 0;
	}
	sscanf(req, "GET %1023s", path);
	const char *a = strstr(req, "Authorization: Bearer ");
	if (a)
		sscanf(a + strlen("Authorization: Bearer "), "%299[^\r]", auth);
	pthread_mutex_lock(&F.mu);
	if (F.nreq < 64)
		snprintf(F.requests[F.nreq++], sizeof(F.requests[0]), "%.400s auth=%.100s", path, auth);
	pthread_mutex_unlock(&F.mu);

	char plural[32] = "";
	const char *p = strstr(path, "/apis/kloudlens.io/v1/");
	if (p)
		sscanf(p + strlen("/apis/kloudlens.io/v1/"), "%31[a-z]", plural);
	if (!plural[0]) {
		respond(s, aio, 404, "{\"kind\":\"Status\",\"code\":404,\"message\":\"not found\"}");
		goto out;
	}
	if (!strcmp(plural, F.forbid)) {
		respond(s, aio, 403, "{\"kind\":\"Status\",\"code\":403,\"message\":\"hooksubscriptions.kloudlens.io is "
			"forbidden: User \\\"system:serviceaccount:x:y\\\" cannot list resource\"}");
		goto out;
	}
	if (!strstr(path, "watch=1")) {
		pthread_mutex_lock(&F.mu);
		json_t *list = json_pack("{s:s, s:{s:s%}, s:O}", "kind", "List", "metadata", "resourceVersion",
					 "", (size_t)0, "items", json_object_get(F.state, plural));
		char rv[32];
		snprintf(rv, sizeof(rv), "%llu", (unsigned long long)F.rv);
		json_object_set_new(json_object_get(list, "metadata"), "resourceVersion", json_string(rv));
		char *body = F.bad_list ? strdup("{\"items\": [ {\"metadata\": ") : json_dumps(list, JSON_COMPACT);
		bool cut = F.cut_list;
		pthread_mutex_unlock(&F.mu);
		json_decref(list);
		if (cut) {
			const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{\"items\":[";
			xsend(s, aio, h, strlen(h));
			free(body);
			nng_stream_close(s);
			goto out;
		}
		respond(s, aio, 200, body);
		free(body);
		goto out;
	}
	/* a watch: replay what came after the version asked for, then follow */
	const char *rvp = strstr(path, "resourceVersion=");
	uint64_t from = rvp ? strtoull(rvp + strlen("resourceVersion="), NULL, 10) : 0;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	if (xsend(s, aio, head, strlen(head)))
		goto out;
	if (F.bad_chunk) {
		xsend(s, aio, "zz\r\n{}\r\n", 9);
		goto out;
	}
	pthread_mutex_lock(&F.mu);
	int next = 0, opened = F.nev;   /* ends and 410s are for the watches open when they come */
	/* asked for a version compacted away: 410 at once, as etcd does */
	bool too_old = !strcmp(plural, F.compacted) && from < F.compacted_rv;
	pthread_mutex_unlock(&F.mu);
	if (too_old) {
		chunk(s, aio, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
		      "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n");
		xsend(s, aio, "0\r\n\r\n", 5);
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&F.mu);
		while (next < F.nev && (strcmp(F.ev[next].plural, plural) || F.ev[next].rv <= from ||
					((F.ev[next].end || F.ev[next].gone) && next < opened)))
			next++;
		if (next == F.nev && !atomic_load(&F.stop)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&F.cv, &F.mu, &ts);
			pthread_mutex_unlock(&F.mu);
			continue;
		}
		if (atomic_load(&F.stop)) {
			pthread_mutex_unlock(&F.mu);
			break;
		}
		char *line = F.ev[next].line ? strdup(F.ev[next].line) : NULL;
		bool end = F.ev[next].end, gone = F.ev[next].gone;
		next++;
		pthread_mutex_unlock(&F.mu);
		if (gone) {
			chunk(s, aio, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
			      "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n");
			break;
		}
		if (end) {
			free(line);
			break;
		}
		char *withnl;
		cr_assert_geq(asprintf(&withnl, "%s\n", line), 0);
		free(line);
		int bad = chunk(s, aio, withnl);
		free(withnl);
		if (bad)
			goto out;
	}
	xsend(s, aio, "0\r\n\r\n", 5);
out:
	/* linger until the client has read everything and closed (it asks
	 * for Connection: close): closing first can drop unsent TLS records */
	for (int i = 0; i < 50 && !atomic_load(&F.stop); i++) {
		char sink[256];
		nng_iov iov = { .iov_buf = sink, .iov_len = sizeof(sink) };
		nng_aio_set_iov(aio, 1, &iov);
		nng_aio_set_timeout(aio, 100);
		nng_stream_recv(s, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv && rv != NNG_ETIMEDOUT)
			break;
	}
	pthread_mutex_lock(&F.mu);
	nng_stream_close(s);
	F.streams[slot] = NULL;
	pthread_mutex_unlock(&F.mu);
	nng_stream_free(s);
	nng_aio_free(aio);
	return NULL;
}

static void *accept_main(void *arg)
{
	nng_aio *aio;

	(void)arg;
	nng_aio_alloc(&aio, NULL, NULL);
	while (!atomic_load(&F.stop)) {
		nng_aio_set_timeout(aio, 100);
		nng_stream_listener_accept(F.l, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio))
			continue;
		pthread_mutex_lock(&F.mu);
		if (F.nconns < MAX_CONNS) {
			F.streams[F.nconns] = nng_aio_get_output(aio, 0);
			pthread_create(&F.conns[F.nconns], NULL, conn_main, (void *)(intptr_t)F.nconns);
			F.nconns++;
		} else {
			nng_stream_free(nng_aio_get_output(aio, 0));
		}
		pthread_mutex_unlock(&F.mu);
	}
	nng_aio_free(aio);
	return NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b = calloc(1, 1 << 20);
	cr_assert_not_null(f, "%s", path);
	fread(b, 1, (1 << 20) - 1, f);
	fclose(f);
	return b;
}

static void fake_start(bool tls)
{
	char url[64];

	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
	pthread_cond_init(&F.cv, NULL);
	F.state = json_pack("{s:[], s:[], s:[]}", "hooksubscriptions", "baselinepolicies", "behaviorcontracts");
	F.rv = 100;
	snprintf(url, sizeof(url), "%s://127.0.0.1:0", tls ? "tls+tcp" : "tcp");
	cr_assert_eq(nng_stream_listener_alloc(&F.l, url), 0);
	if (tls) {
		char *cert = slurp(KUBE_DIR "/server-cert.pem"), *key = slurp(KUBE_DIR "/server-key.pem");
		cr_assert_eq(nng_tls_config_alloc(&F.tls, NNG_TLS_MODE_SERVER), 0);
		cr_assert_eq(nng_tls_config_own_cert(F.tls, cert, key, NULL), 0);
		cr_assert_eq(nng_stream_listener_set_ptr(F.l, NNG_OPT_TLS_CONFIG, F.tls), 0);
		free(cert);
		free(key);
	}
	cr_assert_eq(nng_stream_listener_listen(F.l), 0);
	cr_assert_eq(nng_stream_listener_get_int(F.l, NNG_OPT_TCP_BOUND_PORT, &F.port), 0);
	pthread_create(&F.acceptor, NULL, accept_main, NULL);
}

static void fake_stop(void)
{
	atomic_store(&F.stop, true);
	pthread_mutex_lock(&F.mu);
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
	pthread_join(F.acceptor, NULL);
	/* a TLS stream whose handshake failed can ignore its recv timeout here:
	 * closing it ends whatever its thread waits for */
	pthread_mutex_lock(&F.mu);
	for (int i = 0; i < F.nconns; i++)
		if (F.streams[i])
			nng_stream_close(F.streams[i]);
	pthread_mutex_unlock(&F.mu);
	for (int i = 0; i < F.nconns; i++)
		pthread_join(F.conns[i], NULL);
	nng_stream_listener_close(F.l);
	nng_stream_listener_free(F.l);
	if (F.tls)
		nng_tls_config_free(F.tls);
	for (int i = 0; i < F.nev; i++)
		free(F.ev[i].line);
	json_decref(F.state);
}

/* The object as the API server returns it: with everything the user did not write. */
static json_t *server_obj(const char *kind, const char *ns, const char *name, json_t *spec)
{
	char rv[32];

	snprintf(rv, sizeof(rv), "%llu", (unsigned long long)F.rv);
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:i, s:{s:s}, s:{s:s}, s:[{s:s}]}, s:o, s:{s:i}}",
			      "apiVersion", "kloudlens.io/v1", "kind", kind,
			      "metadata", "name", name, "uid", "0b5c-1111", "resourceVersion", rv,
			      "creationTimestamp", "2026-11-25T00:00:00Z", "generation", 3,
			      "labels", "team", "shop",
			      "annotations", "kubectl.kubernetes.io/last-applied-configuration", "{}",
			      "managedFields", "manager", "kubectl",
			      "spec", spec, "status", "observedGeneration", 3);
	if (ns)
		json_object_set_new(json_object_get(o, "metadata"), "namespace", json_string(ns));
	return o;
}

/* Put (add or replace) an object into the fake's store, with its watch event. */
static void srv_put(const char *plural, const char *kind, const char *ns, const char *name, json_t *spec,
		    bool with_event)
{
	pthread_mutex_lock(&F.mu);
	F.rv++;
	json_t *o = server_obj(kind, ns, name, spec), *arr = json_object_get(F.state, plural), *it;
	size_t i;
	const char *type = "ADDED";
	json_array_foreach(arr, i, it) {
		if (!strcmp(json_string_value(json_object_get(json_object_get(it, "metadata"), "name")), name)) {
			json_array_remove(arr, i);
			type = "MODIFIED";
			break;
		}
	}
	json_array_append(arr, o);
	if (with_event)
		push_event(plural, type, o);
	json_decref(o);
	pthread_mutex_unlock(&F.mu);
}

static void srv_delete(const char *plural, const char *name, bool with_event)
{
	pthread_mutex_lock(&F.mu);
	F.rv++;
	json_t *arr = json_object_get(F.state, plural), *it;
	size_t i;
	json_array_foreach(arr, i, it) {
		if (!strcmp(json_string_value(json_object_get(json_object_get(it, "metadata"), "name")), name)) {
			json_t *meta = json_object_get(it, "metadata");
			char rv[32];
			snprintf(rv, sizeof(rv), "%llu", (unsigned long long)F.rv);
			json_object_set_new(meta, "resourceVersion", json_string(rv));
			if (with_event)
				push_event(plural, "DELETED", it);
			json_array_remove(arr, i);
			break;
		}
	}
	pthread_mutex_unlock(&F.mu);
}

/* End every open watch of @plural (as timeoutSeconds does), or with 410 Gone. */
static void srv_end_watch(const char *plural, bool gone)
{
	pthread_mutex_lock(&F.mu);
	F.rv++;
	snprintf(F.ev[F.nev].plural, sizeof(F.ev[0].plural), "%s", plural);
	F.ev[F.nev].rv = F.rv;
	F.ev[F.nev].end = !gone;
	F.ev[F.nev].gone = gone;
	F.nev++;
	if (gone) {
		snprintf(F.compacted, sizeof(F.compacted), "%s", plural);
		F.compacted_rv = F.rv;
	}
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
}

static json_t *hook_spec(const char *ns)
{
	return json_pack("{s:[s], s:{s:[s]}}", "categories", "bulk_file", "selector", "namespaces", ns);
}

static json_t *bp_spec(void)
{
	return json_pack("{s:{s:{s:s}}, s:{s:s}}", "selector", "podLabels", "app", "web", "learning", "window", "1h");
}

/* ---- the test's side ---------------------------------------------------------- */

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/kl-kw.XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/objects", tmp);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(token, sizeof(token), "%s/token", tmp);
	FILE *f = fopen(token, "w");
	fputs("tok-one\n", f);
	fclose(f);
	logbuf[0] = 0;
}

static pid_t sup_pid = -1;

static void teardown(void)
{
	char cmd[300];

	/* a failed assertion left the supervisor running: stop it (it stops its stages) */
	lt_stop(&sup_pid, SIGTERM);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(kubewatch, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether the watcher logged @s within @ms. */
static bool wait_log(const char *s, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end && !log_has(s))
		usleep(20000);
	return log_has(s);
}

static bool wait_file(const char *name, bool present, const char *contains, int ms)
{
	char path[400];
	uint64_t end = now_ms() + (uint64_t)ms;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	do {
		bool there = access(path, F_OK) == 0;
		if (there == present) {
			if (!present || !contains)
				return true;
			char *b = slurp(path);
			bool ok = strstr(b, contains) != NULL;
			free(b);
			if (ok)
				return true;
		}
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

static struct kl_kw *start_kw(bool tls, const char *ca, const char *sn)
{
	char api[64];
	struct kl_kw *kw = NULL;

	snprintf(api, sizeof(api), "%s://127.0.0.1:%d", tls ? "https" : "http", F.port);
	struct kl_kw_opts o = { .api = api, .token_file = token, .ca_file = ca, .server_name = sn, .dir = dir,
				.watch_timeout_s = 60, .backoff_max_ms = 400, .log = kwlog };
	cr_assert_eq(kl_kw_start(&o, &kw), 0, "%s", logbuf);
	return kw;
}

Test(kubewatch, mirrors_lists_and_watches_with_only_the_users_fields)
{
	char path[400], err[512];
	struct kl_kw_stats st;

	fake_start(false);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "web-only", hook_spec("shop"), false);
	/* a leftover of an earlier run, no longer in the cluster */
	snprintf(path, sizeof(path), "%s/k8s-hooksubscriptions-_-gone.yaml", dir);
	cr_assert_eq(kl_cp_write_atomic(path, "{}"), 0);
	struct kl_kw *kw = start_kw(false, NULL, NULL);

	cr_assert(wait_file("k8s-hooksubscriptions-_-web-only.yaml", true, NULL, 5000), "log:\n%s", logbuf);
	cr_assert(wait_file("k8s-hooksubscriptions-_-gone.yaml", false, NULL, 5000), "a stale file stays");
	snprintf(path, sizeof(path), "%s/k8s-hooksubscriptions-_-web-only.yaml", dir);
	cr_assert_eq(kl_cp_validate_file(path, err, sizeof(err)), 1, "%s", err);
	char *b = slurp(path);
	cr_assert(strstr(b, "\"team\": \"shop\""), "%s", b);
	cr_assert_null(strstr(b, "uid"), "%s", b);
	cr_assert_null(strstr(b, "managedFields"), "%s", b);
	cr_assert_null(strstr(b, "status"), "%s", b);
	cr_assert_null(strstr(b, "last-applied"), "%s", b);
	free(b);

	/* watched: added, modified, deleted */
	srv_put("baselinepolicies", "BaselinePolicy", "shop", "learn-1h", bp_spec(), true);
	cr_assert(wait_file("k8s-baselinepolicies-shop-learn-1h.yaml", true, NULL, 5000), "log:\n%s", logbuf);
	snprintf(path, sizeof(path), "%s/k8s-baselinepolicies-shop-learn-1h.yaml", dir);
	cr_assert_eq(kl_cp_validate_file(path, err, sizeof(err)), 1, "%s", err);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "web-only", hook_spec("payments"), true);
	cr_assert(wait_file("k8s-hooksubscriptions-_-web-only.yaml", true, "payments", 5000), "log:\n%s", logbuf);
	srv_delete("hooksubscriptions", "web-only", true);
	cr_assert(wait_file("k8s-hooksubscriptions-_-web-only.yaml", false, NULL, 5000), "log:\n%s", logbuf);

	/* the server ends the watch (timeoutSeconds): resumed from where it was,
	 * with the rotated token, and nothing missed in between */
	FILE *f = fopen(token, "w");
	fputs("tok-two\n", f);
	fclose(f);
	srv_end_watch("baselinepolicies", false);
	srv_put("baselinepolicies", "BaselinePolicy", "shop", "learn-2h", bp_spec(), true);
	cr_assert(wait_file("k8s-baselinepolicies-shop-learn-2h.yaml", true, NULL, 5000), "log:\n%s", logbuf);
	kl_kw_get_stats(kw, &st);
	cr_assert_eq(st.gone, 0);
	cr_assert_geq(st.events, 4);
	kl_kw_stop(kw);

	bool one = false, two = false, resumed = false;
	for (int i = 0; i < F.nreq; i++) {
		one |= strstr(F.requests[i], "auth=tok-one") != NULL;
		two |= strstr(F.requests[i], "/baselinepolicies?watch=1") && strstr(F.requests[i], "auth=tok-two");
		resumed |= strstr(F.requests[i], "/baselinepolicies?watch=1") &&
			   !strstr(F.requests[i], "resourceVersion= ") && strstr(F.requests[i], "auth=tok-two");
	}
	cr_assert(one && two && resumed, "requests did not carry the (rotated) token or the version");
	fake_stop();
}

Test(kubewatch, gone_relists_and_drops_what_was_deleted_meanwhile)
{
	struct kl_kw_stats st;

	fake_start(false);
	srv_put("behaviorcontracts", "BehaviorContract", "shop", "c1",
		json_pack("{s:{s:{s:s}}, s:{s:[{s:s}]}}", "selector", "matchLabels", "app", "web",
			  "process", "allow", "path", "/usr/bin/web"), false);
	srv_put("behaviorcontracts", "BehaviorContract", "shop", "c2",
		json_pack("{s:{s:{s:s}}, s:{s:[{s:s}]}}", "selector", "matchLabels", "app", "db",
			  "process", "allow", "path", "/usr/bin/db"), false);
	struct kl_kw *kw = start_kw(false, NULL, NULL);
	cr_assert(wait_file("k8s-behaviorcontracts-shop-c2.yaml", true, NULL, 5000), "log:\n%s", logbuf);
	/* deleted while the watch could not tell (compacted away), then 410 */
	srv_delete("behaviorcontracts", "c2", false);
	srv_end_watch("behaviorcontracts", true);
	cr_assert(wait_file("k8s-behaviorcontracts-shop-c2.yaml", false, NULL, 5000), "log:\n%s", logbuf);
	cr_assert(wait_file("k8s-behaviorcontracts-shop-c1.yaml", true, NULL, 100));
	kl_kw_get_stats(kw, &st);
	cr_assert_eq(st.gone, 1);
	cr_assert_geq(st.lists, 4, "three kinds listed, and one again");
	kl_kw_stop(kw);
	fake_stop();
}

Test(kubewatch, tls_checks_the_ca_and_the_name)
{
	fake_start(true);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "tls-ok", hook_spec("shop"), false);
	struct kl_kw *kw = start_kw(true, KUBE_DIR "/server-cert.pem", "kubernetes.default.svc");
	cr_assert(wait_file("k8s-hooksubscriptions-_-tls-ok.yaml", true, NULL, 8000), "log:\n%s", logbuf);
	kl_kw_stop(kw);

	/* the wrong CA, or the right CA for another name: nothing is taken */
	rmdir(dir);
	mkdir(dir, 0755);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -f %s/*", dir);
	cr_assert_eq(system(cmd), 0);
	kw = start_kw(true, KUBE_DIR "/other-ca.pem", "kubernetes.default.svc");
	struct kl_kw *kw2 = start_kw(true, KUBE_DIR "/server-cert.pem", "evil.example.com");
	struct kl_kw_stats st, st2;
	/* a handshake under load can take a while: wait for both to have failed */
	uint64_t end = now_ms() + 10000;
	do {
		usleep(50000);
		kl_kw_get_stats(kw, &st);
		kl_kw_get_stats(kw2, &st2);
	} while (now_ms() < end && (!st.errors || !st2.errors || !log_has("(TLS: is kubernetes.ca_file")));
	cr_assert_eq(st.lists + st2.lists, 0);
	cr_assert_gt(st.errors, 0);
	cr_assert_gt(st2.errors, 0);
	cr_assert(wait_file("k8s-hooksubscriptions-_-tls-ok.yaml", false, NULL, 10));
	cr_assert(log_has("(TLS: is kubernetes.ca_file the API server's CA"), "log:\n%s", logbuf);
	cr_assert(!log_has("Operation canceled"), "a stop is not a failure; log:\n%s", logbuf);
	kl_kw_stop(kw);
	kl_kw_stop(kw2);
	fake_stop();
}

Test(kubewatch, errors_are_named_and_survived)
{
	struct kl_kw_stats st;
	uint64_t t0;

	fake_start(false);
	snprintf(F.forbid, sizeof(F.forbid), "hooksubscriptions");
	F.bad_list = true;
	struct kl_kw *kw = start_kw(false, NULL, NULL);
	uint64_t end = now_ms() + 5000;
	while (now_ms() < end && !(log_has("HTTP 403: hooksubscriptions.kloudlens.io is forbidden") &&
				   log_has("baselinepolicies: list /apis/kloudlens.io/v1/baselinepolicies: not a list")))
		usleep(20000);
	cr_assert(log_has("HTTP 403: hooksubscriptions.kloudlens.io is forbidden"), "log:\n%s", logbuf);
	cr_assert(log_has("not a list"), "log:\n%s", logbuf);
	/* a list cut short, then watches that speak broken chunked encoding */
	pthread_mutex_lock(&F.mu);
	F.bad_list = false;
	F.cut_list = true;
	pthread_mutex_unlock(&F.mu);
	cr_assert(wait_log("body: Protocol error", 5000), "log:\n%s", logbuf);
	pthread_mutex_lock(&F.mu);
	F.cut_list = false;
	F.bad_chunk = true;
	pthread_mutex_unlock(&F.mu);
	cr_assert(wait_log("watch: stream: Protocol error", 5000), "log:\n%s", logbuf);
	/* fixed on the server side: picked up by the retry (backoff capped at 400 ms here) */
	pthread_mutex_lock(&F.mu);
	F.bad_chunk = false;
	F.forbid[0] = 0;
	pthread_mutex_unlock(&F.mu);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "late", hook_spec("shop"), true);
	cr_assert(wait_file("k8s-hooksubscriptions-_-late.yaml", true, NULL, 5000), "log:\n%s", logbuf);
	kl_kw_get_stats(kw, &st);
	cr_assert_gt(st.errors, 0);
	/* hostile names are not turned into paths */
	srv_put("hooksubscriptions", "HookSubscription", NULL, "../../etc/x", hook_spec("shop"), true);
	usleep(300000);
	cr_assert(log_has("without a valid metadata.name"), "log:\n%s", logbuf);
	/* a stop is prompt even with every watch idle */
	t0 = now_ms();
	kl_kw_stop(kw);
	cr_assert_lt(now_ms() - t0, 2500);
	fake_stop();

	/* a bad URL is refused at start */
	struct kl_kw_opts o = { .api = "ftp://x", .dir = dir, .log = kwlog };
	cr_assert_eq(kl_kw_start(&o, &kw), -EINVAL);
	cr_assert(log_has("kubernetes.api \"ftp://x\""), "log:\n%s", logbuf);
	o.api = "https://127.0.0.1:6443";
	cr_assert_eq(kl_kw_start(&o, &kw), -EINVAL, "https without a CA");
	char api[64];
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert_eq(kl_kw_incluster_api(api, sizeof(api)), 0);
	cr_assert_str_eq(api, "https://10.96.0.1:443");
	unsetenv("KUBERNETES_SERVICE_HOST");
	cr_assert_eq(kl_kw_incluster_api(api, sizeof(api)), -ENOENT);
}

static bool file_has(const char *path, const char *want, bool present, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		FILE *f = fopen(path, "r");
		char buf[8192] = "";
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = 0;
			fclose(f);
		}
		if ((strstr(buf, want) != NULL) == present)
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

/* The real kloudlens in kubernetes mode against the fake, with a stand-in
 * collector running @script; its stderr to @errlog. */
static pid_t start_supervisor(const char *script, char *filter, size_t flen, const char *errlog, const char *stages)
{
	char bindir[300], rings[300], state[300], api[64], stage[400], kl[300];
	const char *root = getenv("KLOUDLENS_BUILD_ROOT");
	pid_t sup;

	snprintf(bindir, sizeof(bindir), "%s/bin", tmp);
	snprintf(rings, sizeof(rings), "%s/rings", tmp);
	snprintf(state, sizeof(state), "%s/state", tmp);
	snprintf(filter, flen, "%s/collector.filter", rings);
	snprintf(api, sizeof(api), "kubernetes.api=http://127.0.0.1:%d", F.port);
	mkdir(bindir, 0755);
	snprintf(stage, sizeof(stage), "%s/kl-collector", bindir);
	FILE *f = fopen(stage, "w");
	fputs(script, f);
	fclose(f);
	chmod(stage, 0755);
	snprintf(kl, sizeof(kl), "%s/supervisor/kloudlens", root ? root : "build");
	sup = fork();
	cr_assert_geq(sup, 0);
	if (sup == 0) {
		/* never outlive this test, even when its timeout kills it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(kl, kl, "--mode", "kubernetes", "--set", api, "--bin-dir", bindir, "--rings-dir", rings,
		      "--state-dir", state, "--show", "none", "--stages", stages,
		      "--set", "rings.capacity=1048576", "--set", "rings.raw_capacity=1048576", (char *)NULL);
		_exit(127);
	}
	sup_pid = sup;
	return sup;
}

/*
 * The real supervisor in kubernetes mode: a HookSubscription created,
 * changed and deleted through the (fake) API server reaches the
 * collector's filter file within a second or two each time. (It found
 * a bug: the watch threads, started before the supervisor blocks SIGTERM
 * for its signalfd, took the SIGTERM and killed it.)
 */
Test(kubewatch, supervisor_applies_the_clusters_hooksubscriptions)
{
	char filter[400], errlog[300];
	int st;

	if (geteuid() != 0)
		cr_skip_test("the supervisor creates its user and directories as root");
	fake_start(false);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "shop-files", hook_spec("shop"), false);
	snprintf(errlog, sizeof(errlog), "%s/kloudlens.log", tmp);
	/* a stand-in collector: the filter file is what this test is about */
	pid_t sup = start_supervisor("#!/bin/sh\n[ \"$1\" = --probe ] && { echo '{}'; exit 0; }\n"
				     "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done\n", filter, sizeof(filter), errlog,
				     "collector");
	bool ok1 = file_has(filter, "  namespace shop\n", true, 8000);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "shop-files", hook_spec("payments"), true);
	bool ok2 = file_has(filter, "  namespace payments\n", true, 3000);
	srv_delete("hooksubscriptions", "shop-files", true);
	bool ok3 = file_has(filter, "rule ", false, 3000);
	kill(sup, SIGTERM);
	cr_assert_eq(waitpid(sup, &st, 0), sup);
	fake_stop();
	cr_assert(ok1, "the cluster's HookSubscription never reached %s", filter);
	cr_assert(ok2, "its change never reached the filter");
	cr_assert(ok3, "its deletion never reached the filter");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kloudlens exit %#x", st);
}

/* A collector whose --probe hangs held the supervisor forever before the
 * pipeline started: now it is killed after 10 s and the rest goes on. */
Test(kubewatch, a_hanging_probe_does_not_hold_the_supervisor)
{
	char filter[400], errlog[300];
	int st;

	if (geteuid() != 0)
		cr_skip_test("the supervisor creates its user and directories as root");
	fake_start(false);
	snprintf(errlog, sizeof(errlog), "%s/kloudlens.log", tmp);
	pid_t sup = start_supervisor("#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done\n", filter,
				     sizeof(filter), errlog, "collector");
	/* after the start-up scan: only the main loop can apply it */
	usleep(1500000);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "after-probe", hook_spec("shop"), true);
	bool ok = file_has(filter, "  namespace shop\n", true, 20000);
	kill(sup, SIGTERM);
	cr_assert_eq(waitpid(sup, &st, 0), sup);
	fake_stop();
	cr_assert(ok, "the supervisor never got past the probe");
	cr_assert(file_has(errlog, "--probe still running after 10 s: killed", true, 10));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kloudlens exit %#x", st);
}

/*
 * stages: none, as the DaemonSet's controller runs it: the stages are
 * other containers. No stage is started, the cluster's objects still
 * reach the filter file, and NodeCapabilities comes from the probe file
 * the init container left in the rings directory.
 */
Test(kubewatch, control_plane_only_for_stages_that_run_elsewhere)
{
	char filter[400], errlog[300], cmd[700], caps[400];
	const char *root = getenv("KLOUDLENS_BUILD_ROOT");
	int st;

	if (geteuid() != 0)
		cr_skip_test("the supervisor creates its directories as root");
	fake_start(false);
	srv_put("hooksubscriptions", "HookSubscription", NULL, "elsewhere", hook_spec("shop"), false);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/rings && %s/collector/kl-collector --probe --json > %s/rings/node-capabilities.json",
		 tmp, root ? root : "build", tmp);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(errlog, sizeof(errlog), "%s/kloudlens.log", tmp);
	/* a collector that must never run: it would leave a mark */
	pid_t sup = start_supervisor("#!/bin/sh\ntouch \"$0.ran\"\nexit 1\n", filter, sizeof(filter), errlog, "none");
	bool ok = file_has(filter, "  namespace shop\n", true, 8000);
	snprintf(caps, sizeof(caps), "%s/state/kubernetes/%s", tmp, KL_CP_CAPS_FILE);
	bool capsok = file_has(caps, "kind: NodeCapabilities", true, 3000);
	kill(sup, SIGTERM);
	cr_assert_eq(waitpid(sup, &st, 0), sup);
	fake_stop();
	cr_assert(ok, "the cluster's HookSubscription never reached %s", filter);
	cr_assert(capsok, "no NodeCapabilities from the probe file in %s", caps);
	snprintf(cmd, sizeof(cmd), "%s/bin/kl-collector.ran", tmp);
	cr_assert_neq(access(cmd, F_OK), 0, "a stage was started");
	cr_assert(file_has(errlog, "the control plane only", true, 10));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kloudlens exit %#x", st);
}
