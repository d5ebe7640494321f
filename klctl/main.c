/* SPDX-License-Identifier: Apache-2.0 */
/*
 * klctl - command-line client of kl-exporter.
 *
 *   klctl stream events|intents|deviations|raw [--namespace N] [--pod P]
 *         [--container C] [--kind K] [--since SEQ] [--count N] [--json]
 *   klctl get events [--follow] [--since SEQ]
 *   klctl status | caps | diagnose | config | snapshot
 *   klctl sessions [...] | graph SESSION [--dot] (graph.c)
 *   klctl baseline list|profiles|show|reset|promote|activate (baseline.c)
 *
 * A terminal gets aligned, coloured columns; anything else (or --json)
 * gets one JSON object per line.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "client.h"
#include "convert.h"
#include "exporter.h"
#include "graph.h"      /* klctl sessions / graph (graph.c) */
#include "baseline.h"   /* klctl baseline ... (baseline.c) */

static volatile sig_atomic_t stop;
static bool json_out, color;
static const char *admin_url = KL_DEFAULT_ADMIN_URL, *sub_url = KL_DEFAULT_SUB_URL;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: klctl [--admin URL] [--subscribe URL] [--json] COMMAND\n"
		"  stream events|intents|deviations|raw|graph [--namespace N] [--pod P] [--container C]\n"
		"         [--kind K] [--syscall S] [--session ID] [--since SEQ] [--count N]\n"
		"  get events|intents|deviations|raw|graph [--follow] [--since SEQ]\n"
		"  status | caps | diagnose | config | snapshot\n"
		"  sessions [--namespace N] [--pod P] [--container C] [--open|--closed] [--limit N]\n"
		"  graph SESSION [--tree|--dot] [--all] [--reach [--depth N]] [--max-edges N]\n"
		"  graph --lineage PID[:START_NS] | --file PATH [--container C]\n"
		"  baseline list [WORKLOAD] | profiles | show PROFILE_ID | show --workload W\n"
		"  baseline reset|promote|activate [WORKLOAD] [--profile ID]\n");
}

static int unreachable(const char *what, int r, const char *msg)
{
	if (r < 0)
		fprintf(stderr, "klctl: cannot reach kl-exporter at %s: %s\n"
			"       is the agent running? (--admin/--subscribe select another address)\n",
			what, strerror(-r));
	else if (!strncmp(msg, what, strlen(what)))
		fprintf(stderr, "klctl: %s (gRPC status %d)\n", msg, r);   /* the server named the call already */
	else
		fprintf(stderr, "klctl: %s: %s (gRPC status %d)\n", what, msg, r);
	return r < 0 ? 3 : 4;
}

/* ---- envelope printing ------------------------------------------------------ */

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);

	return ev ? ev->name : "?";
}

static json_t *proc_json(const Kloudlens__V1__ProcessMeta *p)
{
	json_t *o = json_object();

	if (!p)
		return o;
	json_object_set_new(o, "pid", json_integer(p->pid));
	json_object_set_new(o, "tid", json_integer(p->tid));
	json_object_set_new(o, "ppid", json_integer(p->ppid));
	json_object_set_new(o, "uid", json_integer(p->uid));
	json_object_set_new(o, "comm", json_string(p->comm));
	if (*p->exe)
		json_object_set_new(o, "exe", json_string(p->exe));
	if (p->n_argv) {
		json_t *a = json_array();

		for (size_t i = 0; i < p->n_argv; i++)
			json_array_append_new(a, json_string(p->argv[i]));
		json_object_set_new(o, "argv", a);
	}
	json_object_set_new(o, "cgroup_id", json_integer((json_int_t)p->cgroup_id));
	return o;
}

static void ctr_json(json_t *o, const Kloudlens__V1__ContainerMeta *c)
{
	if (!c || !*c->container_id)
		return;
	json_object_set_new(o, "container", json_string(c->container_id));
	if (*c->name)
		json_object_set_new(o, "container_name", json_string(c->name));
	if (*c->image)
		json_object_set_new(o, "image", json_string(c->image));
	if (*c->pod_namespace)
		json_object_set_new(o, "namespace", json_string(c->pod_namespace));
	if (*c->pod_name)
		json_object_set_new(o, "pod", json_string(c->pod_name));
}

static json_t *env_json(const Kloudlens__V1__EventEnvelope *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(o, "stream", json_string(kl_stream_name(e->stream)));
	json_object_set_new(o, "wall_ns", json_integer((json_int_t)e->wall_ns));
	switch (e->payload_case) {
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL: {
		const Kloudlens__V1__SyscallEvent *s = e->syscall;

		json_object_set_new(o, "type", json_string("syscall"));
		json_object_set_new(o, "syscall", json_string(s->name));
		json_object_set_new(o, "ret", json_integer(s->ret));
		json_object_set_new(o, "duration_ns", json_integer((json_int_t)s->duration_ns));
		if (*s->abs_path || *s->path)
			json_object_set_new(o, "path", json_string(*s->abs_path ? s->abs_path : s->path));
		if (*s->fd_path)
			json_object_set_new(o, "fd_path", json_string(s->fd_path));
		if (*s->peer_addr)
			json_object_set_new(o, "dst", json_string(s->peer_addr));
		json_object_set_new(o, "process", proc_json(s->process));
		ctr_json(o, s->container);
		break;
	}
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_PROCESS:
		json_object_set_new(o, "type", json_string("process"));
		json_object_set_new(o, "kind", json_string(enum_name(&kloudlens__v1__process_event__kind__descriptor, e->process->kind)));
		json_object_set_new(o, "process", proc_json(e->process->process));
		json_object_set_new(o, "exit_code", json_integer(e->process->exit_code));
		ctr_json(o, e->process->container);
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_CONTAINER:
		json_object_set_new(o, "type", json_string("container"));
		json_object_set_new(o, "kind", json_string(enum_name(&kloudlens__v1__container_lifecycle_event__kind__descriptor, e->container->kind)));
		ctr_json(o, e->container->container);
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DNS:
		json_object_set_new(o, "type", json_string("dns"));
		json_object_set_new(o, "src", json_string(e->dns->src));
		json_object_set_new(o, "dst", json_string(e->dns->dst));
		json_object_set_new(o, "process", proc_json(e->dns->process));
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SOCKET:
		json_object_set_new(o, "type", json_string("socket"));
		json_object_set_new(o, "src", json_string(e->socket->src));
		json_object_set_new(o, "dst", json_string(e->socket->dst));
		json_object_set_new(o, "process", proc_json(e->socket->process));
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS:
		json_object_set_new(o, "type", json_string("loss"));
		json_object_set_new(o, "where", json_string(enum_name(&kloudlens__v1__loss_event__where__descriptor, e->loss->where)));
		json_object_set_new(o, "count", json_integer((json_int_t)e->loss->count));
		if (e->loss->to_seq) {
			json_object_set_new(o, "from_seq", json_integer((json_int_t)e->loss->from_seq));
			json_object_set_new(o, "to_seq", json_integer((json_int_t)e->loss->to_seq));
		}
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_INTENT:
		json_object_set_new(o, "type", json_string("intent"));
		json_object_set_new(o, "kind", json_string(enum_name(&kloudlens__v1__intent_kind__descriptor, e->intent->kind)));
		json_object_set_new(o, "id", json_integer((json_int_t)e->intent->id));
		if (*e->intent->path)
			json_object_set_new(o, "path", json_string(e->intent->path));
		if (*e->intent->path2)
			json_object_set_new(o, "path2", json_string(e->intent->path2));
		if (*e->intent->peer)
			json_object_set_new(o, "dst", json_string(e->intent->peer));
		if (*e->intent->local)
			json_object_set_new(o, "src", json_string(e->intent->local));
		if (*e->intent->dns_name)
			json_object_set_new(o, "dns_name", json_string(e->intent->dns_name));
		if (*e->intent->name)
			json_object_set_new(o, "name", json_string(e->intent->name));
		if (*e->intent->op_name)
			json_object_set_new(o, "op", json_string(e->intent->op_name));
		json_object_set_new(o, "count", json_integer((json_int_t)e->intent->count));
		json_object_set_new(o, "result", json_integer(e->intent->result));
		json_object_set_new(o, "bytes_in", json_integer((json_int_t)e->intent->bytes_in));
		json_object_set_new(o, "bytes_out", json_integer((json_int_t)e->intent->bytes_out));
		json_object_set_new(o, "first_seq", json_integer((json_int_t)e->intent->first_seq));
		json_object_set_new(o, "last_seq", json_integer((json_int_t)e->intent->last_seq));
		json_object_set_new(o, "process", proc_json(e->intent->process));
		ctr_json(o, e->intent->container);
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DEVIATION: {
		const Kloudlens__V1__DeviationEvent *d = e->deviation;

		json_object_set_new(o, "type", json_string("deviation"));
		json_object_set_new(o, "kind", json_string(d->kind));
		json_object_set_new(o, "id", json_integer((json_int_t)d->id));
		json_object_set_new(o, "reason", json_string(d->reason));
		json_object_set_new(o, "severity", json_string(enum_name(&kloudlens__v1__deviation_event__severity__descriptor, d->severity)));
		json_object_set_new(o, "score", json_integer(d->score));
		json_object_set_new(o, "workload", json_string(d->workload));
		json_object_set_new(o, "profile_id", json_string(d->profile_id));
		/* "path" so the terminal view shows the item in its detail column */
		json_object_set_new(o, "path", json_string(d->item));
		if (*d->item_parent)
			json_object_set_new(o, "parent", json_string(d->item_parent));
		if (d->attempt)
			json_object_set_new(o, "attempt", json_true());
		json_object_set_new(o, "occurrences", json_integer((json_int_t)d->occurrences));
		if (d->suppressed)
			json_object_set_new(o, "suppressed", json_integer((json_int_t)d->suppressed));
		if (d->intent_seq)
			json_object_set_new(o, "intent_seq", json_integer((json_int_t)d->intent_seq));
		if (d->intent && d->intent->process)
			json_object_set_new(o, "process", proc_json(d->intent->process));
		ctr_json(o, d->container);
		break;
	}
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE: {
		const Kloudlens__V1__GraphEdge *g = e->edge;

		json_object_set_new(o, "type", json_string("graph"));
		json_object_set_new(o, "update", json_string(enum_name(&kloudlens__v1__graph_edge__update__descriptor, g->update)));
		json_object_set_new(o, "kind", json_string(enum_name(&kloudlens__v1__graph_edge__kind__descriptor, g->kind)));
		json_object_set_new(o, "session_id", json_string(g->session_id));
		json_object_set_new(o, "count", json_integer((json_int_t)g->count));
		if (g->cross_container)
			json_object_set_new(o, "cross_container", json_true());
		if (g->from_node) {
			json_object_set_new(o, "from", json_string(g->from_node->label));
			if (g->from_node->process)
				json_object_set_new(o, "process", proc_json(g->from_node->process));
			ctr_json(o, g->from_node->container);
		}
		if (g->to_node) {
			json_object_set_new(o, "path", json_string(g->to_node->label));
			if (g->to_node->process)
				json_object_set_new(o, "to_pid", json_integer(g->to_node->process->pid));
			if (g->to_node->container && *g->to_node->container->container_id)
				json_object_set_new(o, "to_container", json_string(g->to_node->container->container_id));
		}
		break;
	}
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_OPAQUE:
		json_object_set_new(o, "type", json_string("opaque"));
		json_object_set_new(o, "record_type", json_integer(e->opaque->type));
		json_object_set_new(o, "len", json_integer((json_int_t)e->opaque->data.len));
		break;
	default:
		json_object_set_new(o, "type", json_string("other"));
		break;
	}
	return o;
}

static int print_env(const Kloudlens__V1__EventEnvelope *e, void *ctx)
{
	json_t *o = env_json(e);
	uint64_t *left = ctx;

	if (json_out) {
		char *s = json_dumps(o, JSON_COMPACT);

		if (s)
			printf("%s\n", s);
		free(s);
	} else {
		const char *type = json_string_value(json_object_get(o, "type"));
		json_t *p = json_object_get(o, "process");
		const char *what = json_string_value(json_object_get(o, "syscall"));
		const char *detail = json_string_value(json_object_get(o, "path"));
		const char *ctr = json_string_value(json_object_get(o, "pod"));

		if (!what)
			what = json_string_value(json_object_get(o, "kind"));
		if (!what)
			what = json_string_value(json_object_get(o, "where"));
		if (!detail)
			detail = json_string_value(json_object_get(o, "dst"));
		if (!detail)
			detail = json_string_value(json_object_get(o, "dns_name"));
		if (!detail)
			detail = json_string_value(json_object_get(o, "fd_path"));
		if (!detail)
			detail = json_string_value(json_object_get(o, "name"));
		if (!ctr)
			ctr = json_string_value(json_object_get(o, "container"));
		printf("%s%10" PRIu64 "%s  %-9s %s%-16s%s %7" JSON_INTEGER_FORMAT "  %-16s %-20s %s\n",
		       color ? "\033[2m" : "", e->seq, color ? "\033[0m" : "", type ? type : "",
		       color ? (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS ? "\033[31m" : "\033[36m") : "",
		       what ? what : "", color ? "\033[0m" : "",
		       p ? json_integer_value(json_object_get(p, "pid")) : 0,
		       p ? json_string_value(json_object_get(p, "comm")) : "",
		       ctr ? ctr : "-", detail ? detail : "");
	}
	fflush(stdout);
	json_decref(o);
	if (left && *left && --*left == 0)
		return 1;
	return stop ? 1 : 0;
}

/* "file_open", "FileOpen" and "FILE_OPEN" all name IntentKind FILE_OPEN. */
static int parse_kind(const char *s)
{
	char up[64];
	size_t n = 0;
	const ProtobufCEnumValue *v;

	for (size_t i = 0; s[i] && n < sizeof(up) - 2; i++) {
		if (i && isupper((unsigned char)s[i]) && islower((unsigned char)s[i - 1]))
			up[n++] = '_';
		up[n++] = s[i] == '-' ? '_' : toupper((unsigned char)s[i]);
	}
	up[n] = 0;
	v = protobuf_c_enum_descriptor_get_value_by_name(&kloudlens__v1__intent_kind__descriptor, up);
	return v ? v->value : -1;
}

/* ---- commands ------------------------------------------------------------------- */

static int cmd_stream(int argc, char **argv, bool get_mode)
{
	static const struct option lo[] = {
		{ "namespace", required_argument, 0, 'N' }, { "pod", required_argument, 0, 'P' },
		{ "container", required_argument, 0, 'C' }, { "kind", required_argument, 0, 'K' },
		{ "syscall", required_argument, 0, 'Y' }, { "since", required_argument, 0, 'S' },
		{ "count", required_argument, 0, 'n' }, { "follow", no_argument, 0, 'f' },
		{ "json", no_argument, 0, 'j' }, { "session", required_argument, 0, 'G' }, { 0 },
	};
	Kloudlens__V1__Filter f = KLOUDLENS__V1__FILTER__INIT;
	char *ns[8], *pods[8], *ctrs[8], *scs[8], *gs[8];
	Kloudlens__V1__IntentKind kinds[8];
	bool has_since = false, follow = !get_mode;
	uint64_t since = 0, count = 0;
	const char *method;
	struct kl_client c;
	struct kl_follow fl;
	char err[512];
	int o, r, code;

	f.namespaces = ns;
	f.pods = pods;
	f.containers = ctrs;
	f.syscalls = scs;
	f.kinds = kinds;
	f.graph_sessions = gs;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "events"))
		method = "/kloudlens.v1.EventService/Subscribe";
	else if (!strcmp(argv[1], "intents"))
		method = "/kloudlens.v1.EventService/SubscribeIntents";
	else if (!strcmp(argv[1], "deviations"))
		method = "/kloudlens.v1.EventService/SubscribeDeviations";
	else if (!strcmp(argv[1], "raw"))
		method = "/kloudlens.v1.EventService/SubscribeRaw";
	else if (!strcmp(argv[1], "graph"))
		method = "/kloudlens.v1.EventService/SubscribeGraph";
	else {
		fprintf(stderr, "klctl: unknown stream '%s' (events, intents, deviations, raw, graph)\n", argv[1]);
		return 2;
	}
	optind = 2;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'N': if (f.n_namespaces < 8) ns[f.n_namespaces++] = optarg; break;
		case 'P': if (f.n_pods < 8) pods[f.n_pods++] = optarg; break;
		case 'C': if (f.n_containers < 8) ctrs[f.n_containers++] = optarg; break;
		case 'Y': if (f.n_syscalls < 8) scs[f.n_syscalls++] = optarg; break;
		case 'K': {
			int k = parse_kind(optarg);

			if (k < 0) {
				fprintf(stderr, "klctl: unknown intent kind '%s'\n", optarg);
				return 2;
			}
			if (f.n_kinds < 8)
				kinds[f.n_kinds++] = k;
			break;
		}
		case 'S': has_since = true; since = strtoull(optarg, NULL, 10); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'f': follow = true; break;
		case 'j': json_out = true; color = false; break;
		case 'G':
			if (f.n_graph_sessions < 8)
				gs[f.n_graph_sessions++] = optarg;
			break;
		default: usage(stderr); return 2;
		}
	}
	r = kl_client_open(&c, admin_url, sub_url, 3000);
	if (r)
		return unreachable(admin_url, r, "");
	if (get_mode && !has_since) {
		/* "get" without --since: everything the WAL still holds */
		has_since = true;
		since = 0;
	}
	code = kl_follow_start(&fl, &c, method, &f, has_since, since, err, sizeof(err));
	if (code) {
		kl_client_close_at_exit(&c);
		return unreachable(code < 0 ? admin_url : method, code, err);
	}
	if (!json_out)
		printf("%s%10s  %-9s %-16s %7s  %-16s %-20s %s%s\n", color ? "\033[1m" : "", "SEQ", "TYPE",
		       "WHAT", "PID", "COMM", "POD/CONTAINER", "DETAIL", color ? "\033[0m" : "");
	{
		Kloudlens__V1__StatusResponse *st = NULL;
		uint64_t head = UINT64_MAX;
		int idle = 0;

		/* get without --follow stops at the head it saw when it started */
		if (!follow && kl_client_call(&c, "/kloudlens.v1.AdminService/GetStatus", NULL,
					      &kloudlens__v1__status_response__descriptor,
					      (ProtobufCMessage **)&st, NULL, 0) == 0) {
			for (size_t i = 0; i < st->n_streams; i++)
				if (!strcmp(kl_stream_name(st->streams[i]->stream), argv[1]))
					head = st->streams[i]->head_seq;
			kloudlens__v1__status_response__free_unpacked(st, NULL);
		}
		while (!stop) {
			r = kl_follow_step(&fl, print_env, count ? &count : NULL, 200);
			if (r < 0 && r != -ECANCELED) {
				fprintf(stderr, "klctl: stream: %s\n", strerror(-r));
				break;
			}
			if (r == -ECANCELED)
				break;
			if (!follow && (fl.expected >= head || (r == 0 && ++idle > 25)))
				break;
		}
	}
	if (fl.missed || fl.server_gaps)
		fprintf(stderr, "klctl: %" PRIu64 " envelopes repaired after transport loss, %" PRIu64
			" reported lost by the exporter\n", fl.missed, fl.server_gaps);
	kl_follow_stop(&fl);
	kl_client_close_at_exit(&c);
	return 0;
}

static void print_kv(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void print_kv(const char *k, const char *fmt, ...)
{
	va_list ap;

	printf("%s%-22s%s ", color ? "\033[1m" : "", k, color ? "\033[0m" : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int unary(const char *method, const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
	struct kl_client c;
	char err[512];
	int r;

	r = kl_client_open(&c, admin_url, NULL, 3000);
	if (r)
		return unreachable(admin_url, r, "");
	r = kl_client_call(&c, method, NULL, d, resp, err, sizeof(err));
	kl_client_close(&c);
	if (r)
		return unreachable(r < 0 ? admin_url : method, r, err);
	return 0;
}

static int cmd_status(void)
{
	Kloudlens__V1__StatusResponse *s;
	int r = unary("/kloudlens.v1.AdminService/GetStatus", &kloudlens__v1__status_response__descriptor,
		      (ProtobufCMessage **)&s);

	if (r)
		return r;
	if (json_out) {
		json_t *o = json_object(), *a = json_array();

		json_object_set_new(o, "version", json_string(s->version));
		json_object_set_new(o, "uptime_ns", json_integer((json_int_t)s->uptime_ns));
		json_object_set_new(o, "ready", json_boolean(s->ready));
		json_object_set_new(o, "sessions", json_integer(s->sessions));
		json_object_set_new(o, "wal_corrupt_records", json_integer((json_int_t)s->wal_corrupt_records));
		for (size_t i = 0; i < s->n_streams; i++) {
			Kloudlens__V1__StreamStatus *t = s->streams[i];

			json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:i}",
				"stream", kl_stream_name(t->stream), "ring", t->ring, "attached", t->attached,
				"head_seq", (json_int_t)t->head_seq, "oldest_seq", (json_int_t)t->oldest_seq,
				"published", (json_int_t)t->published, "ring_missed", (json_int_t)t->ring_missed,
				"wal_bytes", (json_int_t)t->wal_bytes, "subscribers", t->subscribers));
		}
		json_object_set_new(o, "streams", a);
		json_dumpf(o, stdout, JSON_COMPACT);
		printf("\n");
		json_decref(o);
	} else {
		print_kv("version", "%s", s->version);
		print_kv("uptime", "%.1f s", s->uptime_ns / 1e9);
		print_kv("ready", "%s%s%s", color ? (s->ready ? "\033[32m" : "\033[31m") : "",
			 s->ready ? "yes" : "no", color ? "\033[0m" : "");
		print_kv("sessions", "%u", s->sessions);
		print_kv("wal corrupt records", "%" PRIu64, s->wal_corrupt_records);
		printf("\n%-11s %-11s %-8s %12s %12s %12s %10s %12s %5s\n", "STREAM", "RING", "ATTACHED",
		       "HEAD", "OLDEST", "PUBLISHED", "MISSED", "WAL BYTES", "SUBS");
		for (size_t i = 0; i < s->n_streams; i++) {
			Kloudlens__V1__StreamStatus *t = s->streams[i];

			printf("%-11s %-11s %s%-8s%s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %10" PRIu64
			       " %12" PRIu64 " %5u\n", kl_stream_name(t->stream), t->ring,
			       color ? (t->attached ? "\033[32m" : "\033[33m") : "", t->attached ? "yes" : "no",
			       color ? "\033[0m" : "", t->head_seq, t->oldest_seq, t->published, t->ring_missed,
			       t->wal_bytes, t->subscribers);
		}
	}
	kloudlens__v1__status_response__free_unpacked(s, NULL);
	return 0;
}

static int cmd_caps(void)
{
	Kloudlens__V1__CapabilitiesResponse *s;
	int r = unary("/kloudlens.v1.AdminService/GetCapabilities",
		      &kloudlens__v1__capabilities_response__descriptor, (ProtobufCMessage **)&s);

	if (r)
		return r;
	if (json_out) {
		json_t *o = json_object(), *a = json_array(), *m = json_array(), *u = json_array();

		for (size_t i = 0; i < s->n_streams; i++)
			json_array_append_new(a, json_string(kl_stream_name(s->streams[i])));
		for (size_t i = 0; i < s->n_methods; i++)
			json_array_append_new(m, json_string(s->methods[i]));
		for (size_t i = 0; i < s->n_unavailable; i++)
			json_array_append_new(u, json_string(s->unavailable[i]));
		json_object_set_new(o, "streams", a);
		json_object_set_new(o, "methods", m);
		json_object_set_new(o, "unavailable", u);
		json_object_set_new(o, "wal", json_boolean(s->wal));
		json_object_set_new(o, "compression", json_boolean(s->compression));
		json_object_set_new(o, "compress_threshold", json_integer(s->compress_threshold));
		json_dumpf(o, stdout, JSON_COMPACT);
		printf("\n");
		json_decref(o);
	} else {
		printf("streams:");
		for (size_t i = 0; i < s->n_streams; i++)
			printf(" %s", kl_stream_name(s->streams[i]));
		printf("\nwal: %s   compression: %s (threshold %u bytes)\n\n", s->wal ? "yes" : "no",
		       s->compression ? "gzip" : "off", s->compress_threshold);
		for (size_t i = 0; i < s->n_methods; i++)
			printf("  %savailable%s    %s\n", color ? "\033[32m" : "", color ? "\033[0m" : "", s->methods[i]);
		for (size_t i = 0; i < s->n_unavailable; i++)
			printf("  %sunavailable%s  %s\n", color ? "\033[33m" : "", color ? "\033[0m" : "", s->unavailable[i]);
	}
	kloudlens__v1__capabilities_response__free_unpacked(s, NULL);
	return 0;
}

static int cmd_diagnose(void)
{
	Kloudlens__V1__DiagnoseResponse *s;
	int r = unary("/kloudlens.v1.AdminService/Diagnose", &kloudlens__v1__diagnose_response__descriptor,
		      (ProtobufCMessage **)&s);
	bool all = true;

	if (r)
		return r;
	for (size_t i = 0; i < s->n_checks; i++) {
		Kloudlens__V1__DiagnoseResponse__Check *c = s->checks[i];

		all &= c->ok;
		if (json_out) {
			json_t *o = json_pack("{s:s,s:b,s:s}", "check", c->name, "ok", c->ok, "detail", c->detail);

			json_dumpf(o, stdout, JSON_COMPACT);
			printf("\n");
			json_decref(o);
		} else {
			printf("%s%-4s%s %-18s %s\n", color ? (c->ok ? "\033[32m" : "\033[31m") : "",
			       c->ok ? "ok" : "FAIL", color ? "\033[0m" : "", c->name, c->detail);
		}
	}
	kloudlens__v1__diagnose_response__free_unpacked(s, NULL);
	return all ? 0 : 1;
}

static int cmd_config(void)
{
	Kloudlens__V1__ConfigResponse *s;
	int r = unary("/kloudlens.v1.AdminService/GetConfig", &kloudlens__v1__config_response__descriptor,
		      (ProtobufCMessage **)&s);

	if (r)
		return r;
	for (size_t i = 0; i < s->n_values; i++) {
		if (json_out) {
			json_t *o = json_pack("{s:s,s:s}", "key", s->values[i]->key, "value", s->values[i]->value);

			json_dumpf(o, stdout, JSON_COMPACT);
			printf("\n");
			json_decref(o);
		} else {
			print_kv(s->values[i]->key, "%s", s->values[i]->value);
		}
	}
	kloudlens__v1__config_response__free_unpacked(s, NULL);
	return 0;
}

static int cmd_snapshot(void)
{
	Kloudlens__V1__SnapshotResponse *s;
	int r = unary("/kloudlens.v1.EventService/Snapshot", &kloudlens__v1__snapshot_response__descriptor,
		      (ProtobufCMessage **)&s);

	if (r)
		return r;
	if (!json_out)
		printf("%-20s %-14s %-24s %-16s %s\n", "CGROUP", "CONTAINER", "NAME", "NAMESPACE", "POD");
	for (size_t i = 0; i < s->n_containers; i++) {
		Kloudlens__V1__ContainerMeta *c = s->containers[i];

		if (json_out) {
			json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "cgroup_id", (json_int_t)c->cgroup_id,
					      "container", c->container_id, "name", c->name, "image", c->image,
					      "namespace", c->pod_namespace, "pod", c->pod_name, "runtime", c->runtime);

			json_dumpf(o, stdout, JSON_COMPACT);
			printf("\n");
			json_decref(o);
		} else {
			printf("%-20" PRIu64 " %-14.12s %-24s %-16s %s\n", c->cgroup_id, c->container_id,
			       c->name, c->pod_namespace, c->pod_name);
		}
	}
	kloudlens__v1__snapshot_response__free_unpacked(s, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int i = 1;

	color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	json_out = !isatty(STDOUT_FILENO);
	/* global options come before the command */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			json_out = true;
			color = false;
		} else if (!strcmp(argv[i], "--admin") && i + 1 < argc) {
			admin_url = argv[++i];
		} else if (!strcmp(argv[i], "--subscribe") && i + 1 < argc) {
			sub_url = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	argc -= i;
	argv += i;
	if (!strcmp(argv[0], "stream"))
		return cmd_stream(argc, argv, false);
	if (!strcmp(argv[0], "get"))
		return cmd_stream(argc, argv, true);
	if (!strcmp(argv[0], "status"))
		return cmd_status();
	if (!strcmp(argv[0], "caps"))
		return cmd_caps();
	if (!strcmp(argv[0], "diagnose"))
		return cmd_diagnose();
	if (!strcmp(argv[0], "config"))
		return cmd_config();
	if (!strcmp(argv[0], "snapshot"))
		return cmd_snapshot();
	if (!strcmp(argv[0], "sessions"))
		return klctl_sessions(argc, argv, admin_url, json_out);
	if (!strcmp(argv[0], "graph"))
		return klctl_graph(argc, argv, admin_url, json_out);
	if (!strcmp(argv[0], "baseline"))
		return klctl_baseline(argc, argv, admin_url, json_out);
	fprintf(stderr, "klctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return 2;
}
