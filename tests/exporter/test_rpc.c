/* SPDX-License-Identifier: Apache-2.0 */
/* Unary calls over a real rep socket: every malformed request gets an error reply and the exporter stays up. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "client.h"
#include "exporter.h"
#include "helpers.h"
#include "rpcsrv.h"

static struct test_env te;
static struct kl_exporter *ex;
static struct kl_client cl;

static void setup(void)
{
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;

	test_env_init(&te);
	o.rings_dir = te.rings;
	o.wal_dir = te.wal;
	o.sub_url = te.sub;
	o.admin_url = te.admin;
	o.http_url = "";
	cr_assert_eq(test_exporter_create(&te, &o, &ex), 0);
	cr_assert_eq(kl_exporter_start(ex), 0);
	cr_assert_eq(kl_client_open(&cl, te.admin, NULL, 3000), 0);
}

static void teardown(void)
{
	kl_client_close(&cl);
	kl_exporter_destroy(ex);
	test_env_fini(&te);
}

TestSuite(rpc, .init = setup, .fini = teardown);

static int raw_call(const void *body, size_t len, char *err, size_t errlen)
{
	void *reply;
	size_t rlen;
	int r = kl_client_call_raw(&cl, body, len, &reply, &rlen);

	cr_assert_eq(r, 0, "no reply: %s", strerror(-r));
	r = kl_client_parse_reply(&cl, reply, rlen, NULL, NULL, err, errlen);
	free(reply);
	return r;
}

static void still_up(void)
{
	ProtobufCMessage *resp;
	char err[256];

	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/GetStatus", NULL,
				    &kloudlens__v1__status_response__descriptor, &resp, err, sizeof(err)), 0, "%s", err);
	protobuf_c_message_free_unpacked(resp, NULL);
}

Test(rpc, status_and_config_answer)
{
	Kloudlens__V1__StatusResponse *s;
	Kloudlens__V1__CapabilitiesResponse *c;
	char err[256];

	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/GetStatus", NULL,
				    &kloudlens__v1__status_response__descriptor, (ProtobufCMessage **)&s, err, sizeof(err)), 0);
	cr_assert_str_eq(s->version, "0.1.0");
	cr_assert_eq(s->n_streams, 5);
	cr_assert_not(s->ready, "no rings: not ready");
	kloudlens__v1__status_response__free_unpacked(s, NULL);
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/GetCapabilities", NULL,
				    &kloudlens__v1__capabilities_response__descriptor, (ProtobufCMessage **)&c, err, sizeof(err)), 0);
	cr_assert(c->wal);
	cr_assert_gt(c->n_unavailable, 0);
	kloudlens__v1__capabilities_response__free_unpacked(c, NULL);
}

Test(rpc, unknown_method)
{
	char err[256];
	static const char m[] = "/kloudlens.v1.AdminService/Nope";

	cr_assert_eq(raw_call(m, sizeof(m), err, sizeof(err)), 12);
	cr_assert(strstr(err, "unknown method"), "%s", err);
	still_up();
}

Test(rpc, missing_method_terminator)
{
	char err[256];

	cr_assert_eq(raw_call("no-nul-here", 11, err, sizeof(err)), 3);
	still_up();
	cr_assert_eq(raw_call("", 0, err, sizeof(err)), 3, "empty request");
	still_up();
}

static size_t with_method(uint8_t *buf, const char *m, const void *tail, size_t tlen)
{
	size_t n = strlen(m) + 1;

	memcpy(buf, m, n);
	memcpy(buf + n, tail, tlen);
	return n + tlen;
}

Test(rpc, truncated_frame)
{
	uint8_t buf[256];
	char err[256];
	size_t n = with_method(buf, "/kloudlens.v1.AdminService/GetStatus", "\0\0\0", 3);

	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	cr_assert(strstr(err, "truncated"), "%s", err);
	still_up();
	n = with_method(buf, "/kloudlens.v1.AdminService/GetStatus", "\0\0\0\0\x10\x08", 6);
	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	still_up();
}

Test(rpc, wrong_length)
{
	uint8_t buf[256];
	char err[256];
	size_t n;

	/* announces 2 bytes, carries 4: trailing bytes */
	n = with_method(buf, "/kloudlens.v1.AdminService/GetStatus", "\0\0\0\0\2\x08\x01\x08\x01", 9);
	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	cr_assert(strstr(err, "wrong length"), "%s", err);
	still_up();
	/* announces 4 GiB */
	n = with_method(buf, "/kloudlens.v1.AdminService/GetStatus", "\0\xff\xff\xff\xff", 5);
	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	still_up();
	/* bad compressed flag */
	n = with_method(buf, "/kloudlens.v1.AdminService/GetStatus", "\7\0\0\0\0", 5);
	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	still_up();
}

Test(rpc, garbage)
{
	uint8_t buf[300], junk[64];
	char err[256];
	size_t n;

	/* a valid frame whose body is not a protobuf message */
	memcpy(junk, "\0\0\0\0\x08\xff\xff\xff\xff\xff\xff\xff\xff", 13);
	n = with_method(buf, "/kloudlens.v1.EventService/SubscribeRaw", junk, 13);
	cr_assert_eq(raw_call(buf, n, err, sizeof(err)), 3);
	cr_assert(strstr(err, "not a valid"), "%s", err);
	still_up();
	srand(7);
	for (int i = 0; i < 300; i++) {
		size_t len = 1 + rand() % 60;
		int code;

		for (size_t k = 0; k < len; k++)
			junk[k] = rand();
		n = with_method(buf, "/kloudlens.v1.AdminService/GetConfig", junk, len);
		code = raw_call(buf, n, err, sizeof(err));
		cr_assert(code == 0 || code == 3, "code %d", code);
		/* and pure garbage without a known method */
		code = raw_call(junk, len, err, sizeof(err));
		cr_assert(code == 3 || code == 12, "code %d", code);
	}
	still_up();
}

Test(rpc, unlanded_stages_are_unavailable)
{
	static const char *const m[] = {
		"/kloudlens.v1.EventService/QueryGraph", "/kloudlens.v1.EventService/SubscribeGraph",
		"/kloudlens.v1.AdminService/ListPolicies", "/kloudlens.v1.AdminService/ApplyPolicy",
		"/kloudlens.v1.AdminService/DeletePolicy", "/kloudlens.v1.AdminService/BaselineReset",
		"/kloudlens.v1.AdminService/BaselinePromote", "/kloudlens.v1.AdminService/BaselineActivate",
		/* a stream whose ring does not exist */
		"/kloudlens.v1.EventService/SubscribeDeviations",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		ProtobufCMessage *resp = NULL;

		cr_assert_eq(kl_client_call(&cl, m[i], NULL, NULL, &resp, err, sizeof(err)), 14, "%s", m[i]);
		cr_assert(strstr(err, "not"), "%s: %s", m[i], err);
	}
	{
		Kloudlens__V1__SessionRequest q = KLOUDLENS__V1__SESSION_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;

		cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/SubscribeSession", &q.base,
					    NULL, &resp, err, sizeof(err)), 3, "a session id is required");
		q.session_id = "00000000000000aa";
		cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/SubscribeSession", &q.base,
					    NULL, &resp, err, sizeof(err)), 14, "no graph ring yet");
	}
}

Test(rpc, set_config_validates)
{
	Kloudlens__V1__SetConfigRequest q = KLOUDLENS__V1__SET_CONFIG_REQUEST__INIT;
	Kloudlens__V1__SetConfigRequest__ValuesEntry kv = KLOUDLENS__V1__SET_CONFIG_REQUEST__VALUES_ENTRY__INIT, *kvp = &kv;
	ProtobufCMessage *resp = NULL;
	char err[256];

	q.values = &kvp;
	q.n_values = 1;
	kv.key = "wal_dir";
	kv.value = "/x";
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/SetConfig", &q.base,
				    &kloudlens__v1__config_response__descriptor, &resp, err, sizeof(err)), 3);
	kv.key = "compress_threshold";
	kv.value = "12x";
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/SetConfig", &q.base,
				    &kloudlens__v1__config_response__descriptor, &resp, err, sizeof(err)), 3);
	kv.value = "2048";
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/SetConfig", &q.base,
				    &kloudlens__v1__config_response__descriptor, &resp, err, sizeof(err)), 0, "%s", err);
	protobuf_c_message_free_unpacked(resp, NULL);
}

/* ---- calls forwarded to a stage's own socket (rpcsrv.h) ------------------ */

static int echo_graph(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, char *msg,
		      size_t msglen)
{
	const Kloudlens__V1__GraphQuery *q = (const void *)req;
	Kloudlens__V1__GraphSnapshot *s;

	(*(int *)ctx)++;
	if (!strcmp(q->session_id, "missing")) {
		snprintf(msg, msglen, "session %s not found", q->session_id);
		return KL_NOT_FOUND;
	}
	s = calloc(1, sizeof(*s));
	kloudlens__v1__graph_snapshot__init(s);
	s->session_id = strdup(q->session_id);
	s->ts_ns = q->max_edges;
	*resp = &s->base;
	return KL_OK;
}

static const struct kl_rpc_def graph_defs[] = {
	{ "/kloudlens.v1.EventService/QueryGraph", &kloudlens__v1__graph_query__descriptor, echo_graph },
};

Test(rpc, graph_calls_forwarded_to_the_stage_byte_for_byte)
{
	Kloudlens__V1__GraphQuery q = KLOUDLENS__V1__GRAPH_QUERY__INIT;
	Kloudlens__V1__GraphSnapshot *s = NULL;
	struct kl_rpc_server *srv;
	char url[400], err[256];
	int calls = 0;

	/* not running yet: UNAVAILABLE at once, naming the stage */
	q.session_id = "s1";
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/QueryGraph", &q.base,
				    &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&s, err,
				    sizeof(err)), 14);
	cr_assert(strstr(err, "kl-graphd"), "%s", err);

	kl_rpc_stage_url(url, sizeof(url), te.rings, "kl-graphd");
	cr_assert_eq(kl_rpc_server_start(url, graph_defs, 1, &calls, NULL, &srv), 0);
	q.max_edges = 77;
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/QueryGraph", &q.base,
				    &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&s, err,
				    sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(s->session_id, "s1");
	cr_assert_eq(s->ts_ns, 77);
	kloudlens__v1__graph_snapshot__free_unpacked(s, NULL);
	/* the stage's errors and its unknown-method answer pass through with their messages */
	q.session_id = "missing";
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/QueryGraph", &q.base,
				    &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&s, err,
				    sizeof(err)), 5);
	cr_assert(strstr(err, "session missing not found"), "%s", err);
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.GraphService/NoSuchCall", NULL, NULL, NULL, err,
				    sizeof(err)), 12);
	cr_assert(strstr(err, "NoSuchCall"), "%s", err);
	cr_assert_eq(calls, 2);
	/* baseline calls go elsewhere: kl-baselined is not running */
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.AdminService/BaselinePromote", NULL, NULL, NULL,
				    err, sizeof(err)), 14);
	cr_assert(strstr(err, "kl-baselined"), "%s", err);
	/* the stage goes away: UNAVAILABLE, and the exporter still answers */
	kl_rpc_server_stop(srv);
	cr_assert_eq(kl_client_call(&cl, "/kloudlens.v1.EventService/QueryGraph", &q.base,
				    &kloudlens__v1__graph_snapshot__descriptor, (ProtobufCMessage **)&s, err,
				    sizeof(err)), 14);
	still_up();
}

Test(rpc, stage_server_rejects_broken_requests)
{
	static const uint8_t no_nul[] = "/kloudlens.v1.EventService/QueryGraph";
	static const uint8_t truncated[] = "/kloudlens.v1.EventService/QueryGraph\0\0\0\0\0\x20\x0a";
	static const uint8_t trailing[] = "/kloudlens.v1.EventService/QueryGraph\0\0\0\0\0\0XYZ";
	static const uint8_t notmsg[] = "/kloudlens.v1.EventService/QueryGraph\0\0\0\0\0\x02\xff\xff";
	struct kl_rpc_server *srv;
	struct kl_client direct;
	char url[400], err[256];
	int calls = 0;

	kl_rpc_stage_url(url, sizeof(url), te.rings, "kl-graphd");
	cr_assert_eq(kl_rpc_server_start(url, graph_defs, 1, &calls, NULL, &srv), 0);
	cr_assert_eq(kl_client_open(&direct, url, NULL, 3000), 0);
	struct { const uint8_t *p; size_t n; const char *what; } bad[] = {
		{ no_nul, sizeof(no_nul) - 1, "NUL-terminated" },
		{ truncated, sizeof(truncated) - 1, "truncated frame" },
		{ trailing, sizeof(trailing) - 1, "bytes after the request frame" },
		{ notmsg, sizeof(notmsg) - 1, "not a valid" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *reply;
		size_t rlen;

		cr_assert_eq(kl_client_call_raw(&direct, bad[i].p, bad[i].n, &reply, &rlen), 0);
		cr_assert_eq(kl_client_parse_reply(&direct, reply, rlen, NULL, NULL, err, sizeof(err)), 3,
			     "case %zu", i);
		cr_assert(strstr(err, bad[i].what), "case %zu: %s", i, err);
		free(reply);
	}
	cr_assert_eq(calls, 0);
	kl_client_close(&direct);
	kl_rpc_server_stop(srv);
}
