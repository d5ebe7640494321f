/* SPDX-License-Identifier: Apache-2.0 */
/* Record -> envelope conversion, the container table, filters, and the client's message decoder. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "client.h"
#include "convert.h"
#include "helpers.h"

#include <arpa/inet.h>

static struct kl_ctr_table *ctrs;
static struct kl_conv cv;

static void setup(void)
{
	ctrs = calloc(1, sizeof(*ctrs));
	cr_assert_eq(kl_conv_init(&cv, ctrs), 0);
}

static void teardown(void)
{
	kl_conv_fini(&cv);
	free(ctrs);
}

TestSuite(convert, .init = setup, .fini = teardown);

/* pack + unpack: what a client would see */
static kl_env *wire(kl_env *env)
{
	size_t n = protobuf_c_message_get_packed_size(&env->base);
	uint8_t *buf = malloc(n + 1);
	kl_env *out;

	protobuf_c_message_pack(&env->base, buf);
	out = kloudlens__v1__event_envelope__unpack(NULL, n, buf);
	free(buf);
	cr_assert(out);
	return out;
}

Test(convert, syscall_with_container_from_lifecycle)
{
	uint8_t buf[1024];
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT, *w;
	size_t len;

	len = make_container(buf, sizeof(buf), 99, KL_CTR_START, "c0ffee", "prod", "api-0");
	cr_assert_eq(kl_convert(&cv, KL_REC_CONTAINER, buf, len, &env), 0);
	cr_assert_eq(env.payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_CONTAINER);
	cr_assert_eq(ctrs->live, 1);
	len = make_syscall(buf, sizeof(buf), 5, 1234, 257, 99, "/etc/passwd");
	cr_assert_eq(kl_convert(&cv, KL_REC_SYSCALL, buf, len, &env), 0);
	w = wire(&env);
	cr_assert_eq(w->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL);
	cr_assert_str_eq(w->syscall->name, "openat");
	cr_assert_str_eq(w->syscall->path, "/etc/passwd");
	cr_assert_eq(w->syscall->process->pid, 1234);
	cr_assert_str_eq(w->syscall->process->comm, "proc1234");
	cr_assert_str_eq(w->syscall->container->container_id, "c0ffee");
	cr_assert_str_eq(w->syscall->container->pod_namespace, "prod");
	cr_assert_str_eq(w->syscall->container->runtime, "runc");
	cr_assert_eq(w->syscall->source_seq, 5);
	kloudlens__v1__event_envelope__free_unpacked(w, NULL);
	/* a STOP still names the container, then the table forgets it */
	len = make_container(buf, sizeof(buf), 99, KL_CTR_STOP, "c0ffee", "prod", "api-0");
	cr_assert_eq(kl_convert(&cv, KL_REC_CONTAINER, buf, len, &env), 0);
	cr_assert_str_eq(env.container->container->container_id, "c0ffee");
	cr_assert_eq(ctrs->live, 0);
	cr_assert_null(kl_ctr_find(ctrs, 99));
}

Test(convert, argv_and_unknown_types)
{
	struct kl_proc *p;
	struct kl_tail_builder b;
	uint8_t buf[1024];
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT;
	size_t len;

	p = (struct kl_proc *)buf;
	memset(buf, 0, sizeof(buf));
	p->kind = KL_PROC_EXEC;
	p->ev.pid = 7;
	kl_tail_init(&b, p, sizeof(*p), sizeof(buf));
	kl_tail_add(&b, KL_F_ARGV, "ls\0-l\0/tmp", 10);
	kl_tail_add_str(&b, KL_F_EXE, "/bin/ls");
	len = kl_tail_finish(&b);
	cr_assert_eq(kl_convert(&cv, KL_REC_PROC, buf, len, &env), 0);
	cr_assert_eq(env.process->kind, KLOUDLENS__V1__PROCESS_EVENT__KIND__EXEC);
	cr_assert_eq(env.process->process->n_argv, 3);
	cr_assert_str_eq(env.process->process->argv[2], "/tmp");
	cr_assert_str_eq(env.process->process->exe, "/bin/ls");
	/* a record type this exporter cannot decode: passed through, not guessed */
	cr_assert_eq(kl_convert(&cv, 0x500, "future?", 7, &env), 0);
	cr_assert_eq(env.payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_OPAQUE);
	cr_assert_eq(env.opaque->type, 0x500);
	cr_assert_eq(env.opaque->data.len, 7);
}

Test(convert, broken_records_rejected_and_counted)
{
	uint8_t buf[1024];
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT;
	size_t len = make_syscall(buf, sizeof(buf), 1, 1, 257, 0, "/etc/hosts");
	struct kl_syscall *s = (struct kl_syscall *)buf;

	cr_assert_eq(kl_convert(&cv, KL_REC_SYSCALL, buf, 40, &env), -EBADMSG, "short");
	s->ev.tail_len = 5000;
	cr_assert_eq(kl_convert(&cv, KL_REC_SYSCALL, buf, len, &env), -EBADMSG, "tail overrun");
	cr_assert_eq(cv.invalid, 2);
	srand(3);
	for (int i = 0; i < 20000; i++) {
		size_t l = rand() % 400;
		uint16_t types[] = { KL_REC_SYSCALL, KL_REC_PROC, KL_REC_CONTAINER, KL_REC_DNS, KL_REC_SOCK, KL_REC_LOSS, KL_REC_ENRICHED, KL_REC_INTENT };

		for (size_t k = 0; k < l; k++)
			buf[k] = rand();
		(void)kl_convert(&cv, types[i % 8], buf, l, &env);
	}
}

Test(convert, filters)
{
	uint8_t buf[1024];
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT;
	Kloudlens__V1__Filter pb = KLOUDLENS__V1__FILTER__INIT;
	char *ns[] = { "prod" }, *scs[] = { "openat" }, *ctr[] = { "c0f" };
	Kloudlens__V1__IntentKind kinds[] = { KLOUDLENS__V1__INTENT_KIND__FILE_OPEN };
	Kloudlens__V1__LossEvent loss = KLOUDLENS__V1__LOSS_EVENT__INIT;
	struct kl_filter f;
	size_t len;

	kl_convert(&cv, KL_REC_CONTAINER, buf, make_container(buf, sizeof(buf), 99, KL_CTR_START, "c0ffee", "prod", "api-0"), &env);
	len = make_syscall(buf, sizeof(buf), 5, 1234, 257, 99, "/x");
	cr_assert_eq(kl_convert(&cv, KL_REC_SYSCALL, buf, len, &env), 0);
	cr_assert_eq(kl_filter_from_pb(&f, NULL), 0);
	cr_assert(kl_filter_match(&f, &env), "empty filter matches everything");
	kl_filter_fini(&f);
	pb.namespaces = ns;
	pb.n_namespaces = 1;
	pb.syscalls = scs;
	pb.n_syscalls = 1;
	pb.containers = ctr;
	pb.n_containers = 1;
	kl_filter_from_pb(&f, &pb);
	cr_assert(kl_filter_match(&f, &env));
	kl_filter_fini(&f);
	ns[0] = "dev";
	kl_filter_from_pb(&f, &pb);
	cr_assert_not(kl_filter_match(&f, &env));
	kl_filter_fini(&f);
	pb.n_namespaces = 0;
	pb.kinds = kinds;
	pb.n_kinds = 1;
	kl_filter_from_pb(&f, &pb);
	cr_assert_not(kl_filter_match(&f, &env), "a kind filter wants intents");
	env.payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS;
	env.loss = &loss;
	cr_assert(kl_filter_match(&f, &env), "loss reports pass every filter");
	kl_filter_fini(&f);
}

Test(convert, client_message_decoder_broken_inputs)
{
	struct kl_codec c;
	struct kl_batch b = { 0 };
	struct xbuf m = { 0 };
	Kloudlens__V1__BatchHeader h = KLOUDLENS__V1__BATCH_HEADER__INIT;
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT;
	uint8_t tmp[256];
	size_t n;

	kl_codec_init(&c, 0);
	h.count = 1;
	h.to_seq = 1;
	xbuf_append(&m, "kl.v1/raw/", 11);
	n = protobuf_c_message_pack(&h.base, tmp);
	kl_frame_put(&c, &m, tmp, n, 0);
	env.seq = 1;
	n = protobuf_c_message_pack(&env.base, tmp);
	kl_frame_put(&c, &m, tmp, n, 0);
	cr_assert_eq(kl_batch_decode(&c, m.p, m.len, &b), 0);
	cr_assert_str_eq(b.topic, "kl.v1/raw/");
	cr_assert_eq(b.n, 1);
	cr_assert_eq(b.env[0]->seq, 1);
	/* every truncation is an error, never a crash or a short success */
	for (size_t cut = 1; cut < m.len; cut++)
		cr_assert_neq(kl_batch_decode(&c, m.p, m.len - cut, &b), 0, "cut %zu", cut);
	cr_assert_neq(kl_batch_decode(&c, (const uint8_t *)"no-nul", 6, &b), 0);
	/* a count that disagrees with the frames */
	kl_frame_put(&c, &m, tmp, n, 0);
	cr_assert_eq(kl_batch_decode(&c, m.p, m.len, &b), -EBADMSG);
	srand(11);
	for (int i = 0; i < 20000; i++) {
		size_t l = rand() % 200;

		for (size_t k = 0; k < l; k++)
			tmp[k] = rand();
		if (l > 3 && rand() % 2)
			tmp[rand() % 3] = 0;
		(void)kl_batch_decode(&c, tmp, l, &b);
	}
	kl_batch_free(&b);
	xbuf_free(&m);
	kl_codec_fini(&c);
}

Test(convert, intent_record)
{
	uint8_t buf[1024];
	struct kl_intent *in = (struct kl_intent *)buf;
	struct kl_tail_builder b;
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(443) };
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT, *w;
	size_t len;

	memset(buf, 0, sizeof(buf));
	in->ev.seq = 17;
	in->ev.pid = 300;
	in->kind = KL_INTENT_NETWORK_EXCHANGE;
	in->iflags = KL_IN_CONNECT;
	in->count = 4;
	in->first_seq = 100;
	in->last_seq = 103;
	in->bytes_out = 512;
	inet_pton(AF_INET, "10.1.2.3", &peer.sin_addr);
	kl_tail_init(&b, in, sizeof(*in), sizeof(buf));
	kl_tail_add_str(&b, KL_F_NODE, "node-a");
	kl_tail_add_str(&b, KL_F_CONTAINER_ID, "feedbeef");
	kl_tail_add_str(&b, KL_F_POD_NAMESPACE, "shop");
	kl_tail_add(&b, KL_F_PEER_ADDR, &peer, sizeof(peer));
	kl_tail_add_str(&b, KL_F_DNS_NAME, "api.example.com");
	len = kl_tail_finish(&b);
	cr_assert_eq(kl_convert(&cv, KL_REC_INTENT, buf, len, &env), 0);
	w = wire(&env);
	cr_assert_eq(w->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_INTENT);
	cr_assert_eq(w->intent->kind, KLOUDLENS__V1__INTENT_KIND__NETWORK_EXCHANGE);
	cr_assert_eq(w->intent->id, 17);
	cr_assert_str_eq(w->intent->peer, "10.1.2.3:443");
	cr_assert_str_eq(w->intent->dns_name, "api.example.com");
	cr_assert_str_eq(w->intent->node, "node-a");
	cr_assert_str_eq(w->intent->container->container_id, "feedbeef");
	cr_assert_str_eq(w->intent->container->pod_namespace, "shop");
	cr_assert_eq(w->intent->first_seq, 100);
	cr_assert_eq(w->intent->bytes_out, 512);
	kloudlens__v1__event_envelope__free_unpacked(w, NULL);
	{
		Kloudlens__V1__Filter pb = KLOUDLENS__V1__FILTER__INIT;
		Kloudlens__V1__IntentKind k[] = { KLOUDLENS__V1__INTENT_KIND__NETWORK_EXCHANGE };
		struct kl_filter f;

		pb.kinds = k;
		pb.n_kinds = 1;
		kl_filter_from_pb(&f, &pb);
		cr_assert(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
		k[0] = KLOUDLENS__V1__INTENT_KIND__FILE_ACCESS;
		kl_filter_from_pb(&f, &pb);
		cr_assert_not(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
	}
}

Test(convert, enriched_record)
{
	uint8_t buf[2048], raw[512];
	struct kl_enriched *en = (struct kl_enriched *)buf;
	struct kl_tail_builder b;
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT, *w;
	size_t rlen, span, len;

	rlen = make_syscall(raw, sizeof(raw), 9, 55, 257, 0, "hosts");
	memset(buf, 0, sizeof(buf));
	memcpy(&en->ev, raw, sizeof(en->ev));
	en->raw_type = KL_REC_SYSCALL;
	en->raw_len = rlen;
	en->fd_kind = KL_FD_FILE;
	memcpy(buf + sizeof(*en), raw, rlen);
	span = (rlen + 7) & ~(size_t)7;
	kl_tail_init(&b, buf, sizeof(*en) + span, sizeof(buf));
	kl_tail_add_str(&b, KL_F_ABS_PATH, "/etc/hosts");
	kl_tail_add_str(&b, KL_F_EXE, "/usr/bin/cat");
	kl_tail_add_str(&b, KL_F_POD_NAME, "web-0");
	len = kl_tail_finish(&b);
	/* the tail covers the embedded record, its padding and the enrichment */
	en->ev.tail_len = len - sizeof(*en);
	cr_assert_eq(kl_rec_validate(KL_REC_ENRICHED, buf, len), KL_REC_OK);
	cr_assert_eq(kl_convert(&cv, KL_REC_ENRICHED, buf, len, &env), 0);
	w = wire(&env);
	cr_assert_eq(w->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL);
	cr_assert(w->syscall->enriched);
	cr_assert_str_eq(w->syscall->path, "hosts");
	cr_assert_str_eq(w->syscall->abs_path, "/etc/hosts");
	cr_assert_str_eq(w->syscall->fd_kind, "file");
	cr_assert_str_eq(w->syscall->process->exe, "/usr/bin/cat");
	cr_assert_str_eq(w->syscall->container->pod_name, "web-0");
	cr_assert_eq(w->syscall->source_seq, 9);
	kloudlens__v1__event_envelope__free_unpacked(w, NULL);
	/* a broken embedded record is rejected */
	en->raw_len = 3;
	cr_assert_eq(kl_convert(&cv, KL_REC_ENRICHED, buf, len, &env), -EBADMSG);
}

Test(convert, deviation_record)
{
	uint8_t buf[1024];
	struct kl_deviation *d = (struct kl_deviation *)buf;
	struct kl_tail_builder b;
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT, *w;
	size_t len;

	memset(buf, 0, sizeof(buf));
	d->ev.seq = 5;
	d->ev.pid = 4242;
	d->ev.ts_ns = 999;
	d->kind = KL_DEV_NEW_TRANSITION;
	d->severity = KL_DEV_SEV_HIGH;
	d->dflags = KL_DV_ATTEMPT;
	d->score = 1000;
	d->intent_kind = KL_INTENT_PROCESS_START;
	d->profile_id = 0xabcdef0123456789ull;
	d->intent_seq = 77;
	d->first_seq = 300;
	d->last_seq = 301;
	d->occurrences = 3;
	d->suppressed = 2;
	kl_tail_init(&b, d, sizeof(*d), sizeof(buf));
	kl_tail_add_str(&b, KL_F_NODE, "node-a");
	kl_tail_add_str(&b, KL_F_CONTAINER_ID, "c0ffee");
	kl_tail_add_str(&b, KL_F_POD_NAMESPACE, "shop");
	kl_tail_add_str(&b, KL_F_EXE, "/bin/sh");
	kl_tail_add_str(&b, KL_F_DEV_WORKLOAD, "shop/web/nginx@nginx:1");
	kl_tail_add_str(&b, KL_F_DEV_ITEM, "/usr/bin/nc");
	kl_tail_add_str(&b, KL_F_DEV_PARENT, "/bin/sh");
	kl_tail_add_str(&b, KL_F_DEV_REASON, "new exec transition /bin/sh -> /usr/bin/nc");
	len = kl_tail_finish(&b);
	cr_assert_eq(kl_convert(&cv, KL_REC_DEVIATION, buf, len, &env), 0);
	w = wire(&env);
	cr_assert_eq(w->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DEVIATION);
	cr_assert_str_eq(w->deviation->kind, "new_transition");
	cr_assert_eq(w->deviation->severity, KLOUDLENS__V1__DEVIATION_EVENT__SEVERITY__HIGH);
	cr_assert_str_eq(w->deviation->profile_id, "abcdef0123456789", "no text id: the number in hex");
	cr_assert_str_eq(w->deviation->item, "/usr/bin/nc");
	cr_assert_str_eq(w->deviation->item_parent, "/bin/sh");
	cr_assert_str_eq(w->deviation->workload, "shop/web/nginx@nginx:1");
	cr_assert(w->deviation->attempt);
	cr_assert_eq(w->deviation->occurrences, 3);
	cr_assert_eq(w->deviation->suppressed, 2);
	cr_assert_eq(w->deviation->intent_seq, 77);
	cr_assert_eq(w->deviation->n_source_seqs, 2);
	cr_assert_eq(w->deviation->intent->kind, KLOUDLENS__V1__INTENT_KIND__PROCESS_START);
	cr_assert_eq(w->deviation->intent->process->pid, 4242);
	cr_assert_str_eq(w->deviation->intent->process->exe, "/bin/sh");
	cr_assert_str_eq(w->deviation->container->container_id, "c0ffee");
	cr_assert_str_eq(w->deviation->intent->node, "node-a");
	kloudlens__v1__event_envelope__free_unpacked(w, NULL);
	{
		/* a namespace filter and a pid filter apply to deviations */
		Kloudlens__V1__Filter pb = KLOUDLENS__V1__FILTER__INIT;
		char *nsv[] = { "shop" };
		uint32_t pid[] = { 4243 };
		struct kl_filter f;

		pb.namespaces = nsv;
		pb.n_namespaces = 1;
		kl_filter_from_pb(&f, &pb);
		cr_assert(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
		pb.pids = pid;
		pb.n_pids = 1;
		kl_filter_from_pb(&f, &pb);
		cr_assert_not(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
	}
	/* truncated: rejected and counted, never read past */
	cr_assert_eq(kl_convert(&cv, KL_REC_DEVIATION, buf, sizeof(*d) - 8, &env), -EBADMSG);
}

Test(convert, graph_record_and_session_filter)
{
	uint8_t buf[1024];
	struct kl_graph *g = (struct kl_graph *)buf;
	struct kl_tail_builder b;
	kl_env env = KLOUDLENS__V1__EVENT_ENVELOPE__INIT, *w;
	uint64_t seqs[3] = { 10, 11, 12 };
	size_t len;

	memset(buf, 0, sizeof(buf));
	g->ev.seq = 9;
	g->ev.pid = 100;
	g->ev.start_ns = 5000;
	g->op = KL_GOP_EDGE;
	g->kind = KL_GE_NET_CONNECT;
	g->from_kind = KL_GN_PROCESS;
	g->to_kind = KL_GN_PROCESS;
	g->gflags = KL_GF_NEW | KL_GF_CROSS_CTR | KL_GF_MATCHED;
	g->to_pid = 200;
	g->to_start_ns = 6000;
	g->from_id = 0x1111;
	g->to_id = 0x2222;
	g->session_id = 0xaaaa;
	g->to_session_id = 0xbbbb;
	g->count = 4;
	g->arg = 8080;
	g->first_seq = 10;
	g->last_seq = 12;
	kl_tail_init(&b, g, sizeof(*g), sizeof(buf));
	kl_tail_add_str(&b, KL_F_GRAPH_FROM, "/usr/bin/curl");
	kl_tail_add_str(&b, KL_F_GRAPH_TO, "/usr/sbin/nginx");
	kl_tail_add_str(&b, KL_F_GRAPH_FROM_CTR, "aaaa1111");
	kl_tail_add_str(&b, KL_F_GRAPH_TO_CTR, "bbbb2222");
	kl_tail_add(&b, KL_F_GRAPH_SEQS, seqs, sizeof(seqs));
	kl_tail_add_str(&b, KL_F_GRAPH_POD, "shop/web-1");
	len = kl_tail_finish(&b);
	cr_assert_eq(kl_convert(&cv, KL_REC_GRAPH, buf, len, &env), 0);
	w = wire(&env);
	cr_assert_eq(w->payload_case, KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE);
	cr_assert_eq(w->edge->kind, KLOUDLENS__V1__GRAPH_EDGE__KIND__NET_CONNECT);
	cr_assert_eq(w->edge->update, KLOUDLENS__V1__GRAPH_EDGE__UPDATE__EDGE);
	cr_assert(w->edge->cross_container);
	cr_assert_str_eq(w->edge->session_id, "000000000000aaaa");
	cr_assert_str_eq(w->edge->to_session_id, "000000000000bbbb");
	cr_assert_eq(w->edge->arg, 8080);
	cr_assert_eq(w->edge->n_source_seqs, 3);
	cr_assert_eq(w->edge->source_seqs[2], 12);
	cr_assert_str_eq(w->edge->from_node->label, "/usr/bin/curl");
	cr_assert_eq(w->edge->from_node->process->pid, 100);
	cr_assert_str_eq(w->edge->from_node->container->container_id, "aaaa1111");
	cr_assert_str_eq(w->edge->from_node->container->pod_namespace, "shop");
	cr_assert_str_eq(w->edge->from_node->container->pod_name, "web-1");
	cr_assert_str_eq(w->edge->to_node->label, "/usr/sbin/nginx");
	cr_assert_eq(w->edge->to_node->process->pid, 200);
	cr_assert_eq(w->edge->to_node->process->start_ns, 6000);
	cr_assert_str_eq(w->edge->to_node->container->container_id, "bbbb2222");
	kloudlens__v1__event_envelope__free_unpacked(w, NULL);
	{
		Kloudlens__V1__Filter pb = KLOUDLENS__V1__FILTER__INIT;
		char *sv[] = { "000000000000bbbb" }, *other[] = { "000000000000cccc" }, *nsv[] = { "shop" };
		struct kl_filter f;

		pb.graph_sessions = sv;
		pb.n_graph_sessions = 1;
		kl_filter_from_pb(&f, &pb);
		cr_assert(kl_filter_match(&f, &env), "the to end's session matches too");
		kl_filter_fini(&f);
		pb.graph_sessions = other;
		kl_filter_from_pb(&f, &pb);
		cr_assert_not(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
		pb.n_graph_sessions = 0;
		pb.namespaces = nsv;
		pb.n_namespaces = 1;
		kl_filter_from_pb(&f, &pb);
		cr_assert(kl_filter_match(&f, &env));
		kl_filter_fini(&f);
	}
	/* a tail field overrunning the record is rejected */
	g->ev.tail_len += 64;
	cr_assert_eq(kl_convert(&cv, KL_REC_GRAPH, buf, len, &env), -EBADMSG);
}
