/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c - JSON-lines encoding of ring records (klrec print, klctl,
 * golden files). Hand-rolled rather than jansson: it runs per record in
 * `klrec print --follow` and must not allocate per field.
 *
 * Conventions later stages follow: snake_case keys, integers as JSON
 * numbers, syscall numbers also by "syscall" name, strings escaped with
 * invalid UTF-8 bytes as \u00XX, binary blobs as base64.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <kloudlens/recutil.h>

static bool buf_grow(struct kl_buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + need + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 512;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void kl_buf_free(struct kl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void kl_buf_reset(struct kl_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
}

void kl_buf_putc(struct kl_buf *b, char c)
{
	if (!buf_grow(b, 1))
		return;
	b->p[b->len++] = c;
	b->p[b->len] = 0;
}

static void buf_put(struct kl_buf *b, const char *s, size_t n)
{
	if (!buf_grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void kl_buf_puts(struct kl_buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void kl_buf_printf(struct kl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* reject overlong forms, surrogates and out-of-range code points */
	if ((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

void kl_buf_json_str(struct kl_buf *b, const void *data, size_t len)
{
	const unsigned char *s = data;
	char esc[8];

	kl_buf_putc(b, '"');
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_put(b, esc, 2);
			i++;
		} else if (c == '\n') {
			buf_put(b, "\\n", 2);
			i++;
		} else if (c == '\t') {
			buf_put(b, "\\t", 2);
			i++;
		} else if (c == '\r') {
			buf_put(b, "\\r", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_put(b, esc, 6);
			i++;
		} else if (c < 0x80) {
			kl_buf_putc(b, (char)c);
			i++;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n) {
				buf_put(b, (const char *)s + i, n);
				i += n;
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				buf_put(b, esc, 6);
				i++;
			}
		}
	}
	kl_buf_putc(b, '"');
}

static void put_base64(struct kl_buf *b, const uint8_t *d, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[4];

	kl_buf_putc(b, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		out[0] = tbl[(v >> 18) & 63];
		out[1] = tbl[(v >> 12) & 63];
		out[2] = (char)(i + 1 < n ? tbl[(v >> 6) & 63] : '=');
		out[3] = (char)(i + 2 < n ? tbl[v & 63] : '=');
		buf_put(b, out, 4);
	}
	kl_buf_putc(b, '"');
}

static void put_ip(struct kl_buf *b, uint16_t family, const uint8_t addr[16])
{
	char s[INET6_ADDRSTRLEN] = "";

	if (family == AF_INET)
		inet_ntop(AF_INET, addr, s, sizeof(s));
	else if (family == AF_INET6)
		inet_ntop(AF_INET6, addr, s, sizeof(s));
	kl_buf_json_str(b, s, strlen(s));
}

/* struct sockaddr bytes -> {"family":"inet","addr":"1.2.3.4","port":80} */
static void put_sockaddr(struct kl_buf *b, const uint8_t *d, size_t n)
{
	sa_family_t fam;
	char s[INET6_ADDRSTRLEN];

	if (n < sizeof(fam)) {
		kl_buf_puts(b, "null");
		return;
	}
	memcpy(&fam, d, sizeof(fam));
	if (fam == AF_INET && n >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, d, sizeof(sin));
		inet_ntop(AF_INET, &sin.sin_addr, s, sizeof(s));
		kl_buf_printf(b, "{\"family\":\"inet\",\"addr\":\"%s\",\"port\":%u}", s, ntohs(sin.sin_port));
	} else if (fam == AF_INET6 && n >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, d, sizeof(sin6));
		inet_ntop(AF_INET6, &sin6.sin6_addr, s, sizeof(s));
		kl_buf_printf(b, "{\"family\":\"inet6\",\"addr\":\"%s\",\"port\":%u}", s, ntohs(sin6.sin6_port));
	} else if (fam == AF_UNIX) {
		const char *path = (const char *)d + sizeof(fam);
		size_t plen = n - sizeof(fam);
		bool abstract = plen > 0 && path[0] == 0;
		if (abstract) {
			path++;
			plen--;
		}
		size_t sl = strnlen(path, plen);
		kl_buf_printf(b, "{\"family\":\"unix\",\"abstract\":%s,\"path\":", abstract ? "true" : "false");
		kl_buf_json_str(b, path, abstract ? plen : sl);
		kl_buf_putc(b, '}');
	} else {
		kl_buf_printf(b, "{\"family\":%u,\"raw\":", fam);
		put_base64(b, d, n);
		kl_buf_putc(b, '}');
	}
}

/* "a\0b\0" -> ["a","b"] */
static void put_strlist(struct kl_buf *b, const uint8_t *d, size_t n)
{
	bool first = true;
	size_t i = 0;

	kl_buf_putc(b, '[');
	while (i < n) {
		size_t l = strnlen((const char *)d + i, n - i);
		if (!first)
			kl_buf_putc(b, ',');
		kl_buf_json_str(b, d + i, l);
		first = false;
		i += l + 1;
	}
	kl_buf_putc(b, ']');
}

/* "k=v\0k=v\0" -> {"k":"v"} */
static void put_kvlist(struct kl_buf *b, const uint8_t *d, size_t n)
{
	bool first = true;
	size_t i = 0;

	kl_buf_putc(b, '{');
	while (i < n) {
		size_t l = strnlen((const char *)d + i, n - i);
		const uint8_t *eq = memchr(d + i, '=', l);
		size_t kl = eq ? (size_t)(eq - (d + i)) : l;
		if (!first)
			kl_buf_putc(b, ',');
		kl_buf_json_str(b, d + i, kl);
		kl_buf_putc(b, ':');
		if (eq)
			kl_buf_json_str(b, eq + 1, l - kl - 1);
		else
			kl_buf_puts(b, "\"\"");
		first = false;
		i += l + 1;
	}
	kl_buf_putc(b, '}');
}

static void put_fields(struct kl_buf *b, uint16_t type, const void *rec, size_t len)
{
	struct kl_field_iter it;
	struct kl_field_view f;
	char name[16];

	if (kl_field_iter_init(&it, type, rec, len))
		return;
	while (kl_field_next(&it, &f)) {
		const char *fname = kl_field_name(f.id);
		if (!fname) {
			snprintf(name, sizeof(name), "field_%u", f.id);
			fname = name;
		}
		kl_buf_printf(b, ",\"%s\":", fname);
		switch (f.id) {
		case KL_F_ARGV:
		case KL_F_ENV:
		case KL_F_DNS_ANSWERS:
			put_strlist(b, f.data, f.len);
			break;
		case KL_F_LABELS:
		case KL_F_ANNOTATIONS:
			put_kvlist(b, f.data, f.len);
			break;
		case KL_F_SOCKADDR:
		case KL_F_SOCKADDR2:
		case KL_F_LOCAL_ADDR:
		case KL_F_PEER_ADDR:
			put_sockaddr(b, f.data, f.len);
			break;
		case KL_F_FDS: {
			int32_t fds[2] = { -1, -1 };
			memcpy(fds, f.data, f.len < sizeof(fds) ? f.len : sizeof(fds));
			kl_buf_printf(b, "[%d,%d]", fds[0], fds[1]);
			break;
		}
		case KL_F_DATA:
			put_base64(b, f.data, f.len);
			break;
		case KL_F_GRAPH_SEQS: {     /* graph (kl-graphd): u64 array */
			kl_buf_putc(b, '[');
			for (size_t i = 0; i + 8 <= f.len; i += 8) {
				uint64_t v;
				memcpy(&v, (const uint8_t *)f.data + i, 8);
				kl_buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)v);
			}
			kl_buf_putc(b, ']');
			break;
		}
		default:
			kl_buf_json_str(b, f.data, strnlen((const char *)f.data, f.len));
		}
		if (f.truncated) {
			kl_buf_printf(b, ",\"%s_truncated\":true", fname);
		}
	}
}

static void put_event(struct kl_buf *b, const struct kl_event *ev)
{
	kl_buf_printf(b, ",\"seq\":%llu,\"ts_ns\":%llu,\"pid\":%u,\"tid\":%u,\"ns_pid\":%u,\"ppid\":%u,"
		      "\"uid\":%u,\"gid\":%u,\"start_ns\":%llu,\"cgroup_id\":%llu,\"mnt_ns\":%u,\"pid_ns\":%u,\"comm\":",
		      (unsigned long long)ev->seq, (unsigned long long)ev->ts_ns, ev->pid, ev->tid,
		      ev->ns_pid, ev->ppid, ev->uid, ev->gid, (unsigned long long)ev->start_ns,
		      (unsigned long long)ev->cgroup_id, ev->mnt_ns, ev->pid_ns);
	kl_buf_json_str(b, ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
	if (ev->flags & KL_EV_BOOTSTRAP)
		kl_buf_puts(b, ",\"bootstrap\":true");
	if (ev->flags & KL_EV_TRUNCATED)
		kl_buf_puts(b, ",\"truncated\":true");
	if (ev->flags & KL_EV_NEW_PIDNS)
		kl_buf_puts(b, ",\"new_pidns\":true");
}

static const char *proc_kind(uint32_t k)
{
	switch (k) {
	case KL_PROC_FORK: return "fork";
	case KL_PROC_EXEC: return "exec";
	case KL_PROC_EXIT: return "exit";
	case KL_PROC_SNAPSHOT: return "snapshot";
	default: return "unknown";
	}
}

static const char *ctr_kind(uint32_t k)
{
	switch (k) {
	case KL_CTR_START: return "start";
	case KL_CTR_STOP: return "stop";
	case KL_CTR_SNAPSHOT: return "snapshot";
	default: return "unknown";
	}
}

static const char *runtime_name(uint32_t k)
{
	static const char *const n[] = { "unknown", "containerd", "runc", "crun", "cri-o", "docker" };
	return k < sizeof(n) / sizeof(n[0]) ? n[k] : "unknown";
}

static const char *loss_where(uint32_t w)
{
	switch (w) {
	case KL_LOSS_BPF_RESERVE: return "bpf_reserve";
	case KL_LOSS_SHED: return "shed";
	case KL_LOSS_RING: return "ring";
	case KL_LOSS_PENDING: return "pending";
	default: return "unknown";
	}
}

static const char *intent_kind(uint32_t k)
{
	static const char *const n[KL_INTENT__COUNT] = {
		[KL_INTENT_PROCESS_START] = "ProcessStart", [KL_INTENT_PROCESS_EXIT] = "ProcessExit",
		[KL_INTENT_FILE_ACCESS] = "FileAccess", [KL_INTENT_FILE_META_CHANGE] = "FileMetaChange",
		[KL_INTENT_NETWORK_EXCHANGE] = "NetworkExchange", [KL_INTENT_NETWORK_LISTEN] = "NetworkListen",
		[KL_INTENT_DNS_QUERY] = "DNSQuery", [KL_INTENT_PRIVILEGE_CHANGE] = "PrivilegeChange",
		[KL_INTENT_NAMESPACE_CHANGE] = "NamespaceChange", [KL_INTENT_MODULE_LOAD] = "ModuleLoad",
		[KL_INTENT_BPF_LOAD] = "BPFLoad", [KL_INTENT_PTRACE] = "Ptrace",
		[KL_INTENT_EXEC_FROM_MEMORY] = "ExecFromMemory", [KL_INTENT_SIGNAL] = "Signal",
		[KL_INTENT_IPC] = "IPC",
	};
	return k < KL_INTENT__COUNT && n[k] ? n[k] : "unknown";
}

/* bit set -> ["word",...]; words[i] names bit i */
static void put_bits(struct kl_buf *b, uint32_t v, const char *const *words, size_t n)
{
	bool first = true;

	kl_buf_putc(b, '[');
	for (size_t i = 0; i < 32; i++) {
		if (!(v & (1u << i)))
			continue;
		if (!first)
			kl_buf_putc(b, ',');
		first = false;
		if (i < n && words[i])
			kl_buf_printf(b, "\"%s\"", words[i]);
		else
			kl_buf_printf(b, "\"bit%zu\"", i);
	}
	kl_buf_putc(b, ']');
}

/* Names of arg[0..3] per kind (NULL: unused, not printed). */
static void put_intent_args(struct kl_buf *b, const struct kl_intent *in)
{
	static const char *const names[KL_INTENT__COUNT][4] = {
		[KL_INTENT_PROCESS_START] = { "exec_count", "fork_seq", NULL, NULL },
		[KL_INTENT_PROCESS_EXIT] = { "exit_code", "signal", "lifetime_ns", "children" },
		[KL_INTENT_FILE_ACCESS] = { "open_flags", "mode", "fd", "ops_other" },
		[KL_INTENT_FILE_META_CHANGE] = { "mode", "uid", "gid", "length" },
		[KL_INTENT_NETWORK_EXCHANGE] = { "family", "sock_type", "duration_ns", "dns_intent_seq" },
		[KL_INTENT_NETWORK_LISTEN] = { "family", "sock_type", "backlog", "fd" },
		[KL_INTENT_DNS_QUERY] = { "qtype", "rcode", "answer_count", "dns_id" },
		[KL_INTENT_PRIVILEGE_CHANGE] = { "arg0", "arg1", "arg2", "arg3" },
		[KL_INTENT_NAMESPACE_CHANGE] = { "arg0", "arg1", "arg2", "arg3" },
		[KL_INTENT_MODULE_LOAD] = { "arg0", "arg1", "arg2", NULL },
		[KL_INTENT_BPF_LOAD] = { "cmd", NULL, NULL, NULL },
		[KL_INTENT_PTRACE] = { "request", "target_pid", NULL, NULL },
		[KL_INTENT_EXEC_FROM_MEMORY] = { "fd", NULL, NULL, NULL },
		[KL_INTENT_SIGNAL] = { "target_pid", "signal", "target_tid", NULL },
		[KL_INTENT_IPC] = { "fd0", "fd1", "sock_type", NULL },
	};

	if (in->kind >= KL_INTENT__COUNT)
		return;
	for (int i = 0; i < 4; i++)
		if (names[in->kind][i])
			kl_buf_printf(b, ",\"%s\":%lld", names[in->kind][i], (long long)in->arg[i]);
}

static void put_intent(struct kl_buf *b, const struct kl_intent *in)
{
	static const char *const iflags[] = { "failed", "continuing", "at_exit", "evicted", "inherited",
					       "connect", "accept", "dns_linked", "async", "timeout",
					       "shutdown", "runtime_init" };
	static const char *const access[] = { "read", "write", "create", "truncate", "append", "exec",
					       "directory", "cloexec", "nonblock", "excl", "path",
					       "tmpfile", "sync" };
	const char *op = in->op ? kl_syscall_name(in->op) : NULL;

	kl_buf_printf(b, ",\"kind\":\"%s\"", intent_kind(in->kind));
	if (op)
		kl_buf_printf(b, ",\"op\":\"%s\"", op);
	kl_buf_puts(b, ",\"flags\":");
	put_bits(b, in->iflags, iflags, sizeof(iflags) / sizeof(iflags[0]));
	kl_buf_printf(b, ",\"first_seq\":%llu,\"last_seq\":%llu,\"count\":%llu,\"first_ts\":%llu,"
		      "\"last_ts\":%llu,\"result\":%lld,\"bytes_in\":%llu,\"bytes_out\":%llu,"
		      "\"ops_in\":%llu,\"ops_out\":%llu",
		      (unsigned long long)in->first_seq, (unsigned long long)in->last_seq,
		      (unsigned long long)in->count, (unsigned long long)in->first_ts,
		      (unsigned long long)in->last_ts, (long long)in->result,
		      (unsigned long long)in->bytes_in, (unsigned long long)in->bytes_out,
		      (unsigned long long)in->ops_in, (unsigned long long)in->ops_out);
	if (in->kind == KL_INTENT_FILE_ACCESS) {
		kl_buf_puts(b, ",\"access\":");
		put_bits(b, in->dflags, access, sizeof(access) / sizeof(access[0]));
	}
	kl_buf_printf(b, ",\"parent_pid\":%u,\"parent_start_ns\":%llu,\"ctr_cgroup_id\":%llu",
		      in->parent_pid, (unsigned long long)in->parent_start_ns,
		      (unsigned long long)in->ctr_cgroup_id);
	put_intent_args(b, in);
}

/* --- graph (kl-graphd) --- */
static void put_graph(struct kl_buf *b, const struct kl_graph *g)
{
	static const char *const ops[] = { "unknown", "edge", "session_open", "session_close", "session_evict" };
	static const char *const nodes[] = { "unknown", "process", "file", "socket", "container", "pipe", "endpoint" };
	static const char *const kinds[KL_GE__COUNT] = {
		[KL_GE_FORK] = "FORK", [KL_GE_EXEC] = "EXEC", [KL_GE_FILE_READ] = "FILE_READ",
		[KL_GE_FILE_WRITE] = "FILE_WRITE", [KL_GE_FILE_EXEC] = "FILE_EXEC", [KL_GE_IPC] = "IPC",
		[KL_GE_NET_CONNECT] = "NET_CONNECT", [KL_GE_NET_ACCEPT] = "NET_ACCEPT",
		[KL_GE_SIGNAL] = "SIGNAL", [KL_GE_PTRACE] = "PTRACE", [KL_GE_FILE_SHARED] = "FILE_SHARED",
	};
	static const char *const gflags[] = { "new", "cross_container", "matched", "loopback", "pipe",
					       "socketpair", "unix", "failed", "session_exec",
					       "session_container", "session_setsid", "runtime" };

	kl_buf_printf(b, ",\"op\":\"%s\"", g->op < 5 ? ops[g->op] : "unknown");
	if (g->op == KL_GOP_EDGE)
		kl_buf_printf(b, ",\"kind\":\"%s\"",
			      g->kind < KL_GE__COUNT && kinds[g->kind] ? kinds[g->kind] : "unknown");
	kl_buf_puts(b, ",\"flags\":");
	put_bits(b, g->gflags, gflags, sizeof(gflags) / sizeof(gflags[0]));
	kl_buf_printf(b, ",\"session_id\":\"%016llx\",\"from_kind\":\"%s\",\"from_id\":\"%016llx\","
		      "\"to_kind\":\"%s\",\"to_id\":\"%016llx\",\"to_pid\":%u,\"to_start_ns\":%llu,"
		      "\"to_session_id\":\"%016llx\",\"first_ns\":%llu,\"last_ns\":%llu,\"count\":%llu,"
		      "\"first_seq\":%llu,\"last_seq\":%llu,\"from_ctr_cgroup_id\":%llu,"
		      "\"to_ctr_cgroup_id\":%llu,\"arg\":%llu",
		      (unsigned long long)g->session_id, g->from_kind < 7 ? nodes[g->from_kind] : "unknown",
		      (unsigned long long)g->from_id, g->to_kind < 7 ? nodes[g->to_kind] : "unknown",
		      (unsigned long long)g->to_id, g->to_pid, (unsigned long long)g->to_start_ns,
		      (unsigned long long)g->to_session_id, (unsigned long long)g->first_ns,
		      (unsigned long long)g->last_ns, (unsigned long long)g->count,
		      (unsigned long long)g->first_seq, (unsigned long long)g->last_seq,
		      (unsigned long long)g->from_ctr_cgroup_id, (unsigned long long)g->to_ctr_cgroup_id,
		      (unsigned long long)g->arg);
}

/* --- deviation (kl-baselined) --- */
static void put_deviation(struct kl_buf *b, const struct kl_deviation *d)
{
	static const char *const kinds[KL_DEV__COUNT] = {
		[KL_DEV_NEW_EXEC] = "new_exec", [KL_DEV_NEW_TRANSITION] = "new_transition",
		[KL_DEV_NEW_FILE] = "new_file", [KL_DEV_NEW_EGRESS] = "new_egress",
		[KL_DEV_NEW_INGRESS] = "new_ingress", [KL_DEV_NEW_LISTEN] = "new_listen",
		[KL_DEV_NEW_DNS] = "new_dns", [KL_DEV_NEW_SYSCALL] = "new_syscall",
		[KL_DEV_PRIVILEGE] = "privilege", [KL_DEV_RARE] = "rare",
	};
	static const char *const sev[] = { "unspecified", "info", "low", "medium", "high", "critical" };
	static const char *const dflags[] = { "attempt", "repeat", "syscall" };
	static const char *const access[] = { "read", "write", "create", "truncate", "append", "exec" };

	kl_buf_printf(b, ",\"kind\":\"%s\",\"severity\":\"%s\",\"score\":%u,\"flags\":",
		      d->kind < KL_DEV__COUNT && kinds[d->kind] ? kinds[d->kind] : "unknown",
		      d->severity < 6 ? sev[d->severity] : "unknown", d->score);
	put_bits(b, d->dflags, dflags, 3);
	kl_buf_printf(b, ",\"intent_kind\":\"%s\"", d->intent_kind ? intent_kind(d->intent_kind) : "none");
	if (d->access) {
		kl_buf_puts(b, ",\"access\":");
		put_bits(b, d->access, access, 6);
	}
	kl_buf_printf(b, ",\"profile_num\":\"%016llx\",\"workload_id\":\"%016llx\",\"intent_seq\":%llu,"
		      "\"first_seq\":%llu,\"last_seq\":%llu,\"occurrences\":%llu,\"suppressed\":%llu,"
		      "\"number\":%llu,\"estimate\":%llu,\"ctr_cgroup_id\":%llu",
		      (unsigned long long)d->profile_id, (unsigned long long)d->workload_id,
		      (unsigned long long)d->intent_seq, (unsigned long long)d->first_seq,
		      (unsigned long long)d->last_seq, (unsigned long long)d->occurrences,
		      (unsigned long long)d->suppressed, (unsigned long long)d->number,
		      (unsigned long long)d->estimate, (unsigned long long)d->ctr_cgroup_id);
}

void kl_rec_to_json(struct kl_buf *b, uint16_t type, const void *rec, size_t len, uint64_t ring_seq)
{
	const struct kl_rec_info *ri = kl_rec_info(type);
	enum kl_rec_err e = kl_rec_validate(type, rec, len);

	if (e) {
		kl_buf_printf(b, "{\"type\":\"invalid\",\"error\":\"%s\",\"rec_type\":%u,\"len\":%zu",
			      kl_rec_strerror(e), type, len);
		if (ring_seq != UINT64_MAX)
			kl_buf_printf(b, ",\"ring_seq\":%llu", (unsigned long long)ring_seq);
		kl_buf_putc(b, '}');
		return;
	}
	kl_buf_printf(b, "{\"type\":\"%s\"", ri->name);
	if (ring_seq != UINT64_MAX)
		kl_buf_printf(b, ",\"ring_seq\":%llu", (unsigned long long)ring_seq);
	put_event(b, rec);

	switch (type) {
	case KL_REC_SYSCALL: {
		struct kl_syscall sc;
		const char *name;
		memcpy(&sc, rec, sizeof(sc));
		name = kl_syscall_name(sc.nr);
		kl_buf_puts(b, ",\"syscall\":");
		if (name)
			kl_buf_printf(b, "\"%s\"", name);
		else
			kl_buf_printf(b, "\"syscall_%u\"", sc.nr);
		/* Signed: -100 (AT_FDCWD) reads better than 2^64-100, and every JSON
		 * parser holds an int64 exactly. */
		kl_buf_printf(b, ",\"nr\":%u,\"category\":\"%s\",\"args\":[%lld,%lld,%lld,%lld,%lld,%lld],"
			      "\"ret\":%lld,\"duration_ns\":%llu",
			      sc.nr, kl_category_name(sc.category) ? kl_category_name(sc.category) : "unknown",
			      (long long)sc.args[0], (long long)sc.args[1], (long long)sc.args[2],
			      (long long)sc.args[3], (long long)sc.args[4], (long long)sc.args[5],
			      (long long)sc.ret, (unsigned long long)sc.duration_ns);
		if (sc.sflags & KL_SC_NO_EXIT)
			kl_buf_puts(b, ",\"no_exit\":true");
		if (sc.sflags & KL_SC_ARGS_TRUNC)
			kl_buf_puts(b, ",\"args_truncated\":true");
		if (sc.sflags & KL_SC_ENTRY_ONLY)
			kl_buf_puts(b, ",\"entry_only\":true");
		break;
	}
	case KL_REC_PROC: {
		struct kl_proc p;
		memcpy(&p, rec, sizeof(p));
		kl_buf_printf(b, ",\"kind\":\"%s\",\"parent_pid\":%u,\"parent_start_ns\":%llu",
			      proc_kind(p.kind), p.parent_pid, (unsigned long long)p.parent_start_ns);
		if (p.kind == KL_PROC_EXIT)
			kl_buf_printf(b, ",\"exit_code\":%d", p.exit_code);
		if (p.kind == KL_PROC_FORK)
			kl_buf_printf(b, ",\"child_tid\":%u", p.child_tid);
		if (p.kind == KL_PROC_EXEC)
			kl_buf_printf(b, ",\"old_pid\":%u", p.old_pid);
		kl_buf_printf(b, ",\"nthreads\":%u,\"net_ns\":%u,\"ipc_ns\":%u,\"uts_ns\":%u,\"euid\":%u,"
			      "\"cap_effective\":%llu",
			      p.nthreads, p.net_ns, p.ipc_ns, p.uts_ns, p.euid,
			      (unsigned long long)p.cap_effective);
		break;
	}
	case KL_REC_CONTAINER: {
		struct kl_container c;
		memcpy(&c, rec, sizeof(c));
		kl_buf_printf(b, ",\"kind\":\"%s\",\"runtime\":\"%s\",\"init_pid\":%u,\"container_mnt_ns\":%u,"
			      "\"container_pid_ns\":%u,\"net_ns\":%u,\"ipc_ns\":%u,\"uts_ns\":%u",
			      ctr_kind(c.kind), runtime_name(c.runtime), c.init_pid, c.mnt_ns, c.pid_ns,
			      c.net_ns, c.ipc_ns, c.uts_ns);
		if (c.kind == KL_CTR_STOP)
			kl_buf_printf(b, ",\"exit_code\":%d", c.exit_code);
		break;
	}
	case KL_REC_DNS: {
		struct kl_dns d;
		memcpy(&d, rec, sizeof(d));
		kl_buf_printf(b, ",\"direction\":\"%s\",\"proto\":\"%s\",\"saddr\":",
			      d.direction == KL_DIR_EGRESS ? "egress" : d.direction == KL_DIR_INGRESS ? "ingress" : "unknown",
			      d.proto == IPPROTO_TCP ? "tcp" : d.proto == IPPROTO_UDP ? "udp" : "other");
		put_ip(b, d.family, d.saddr);
		kl_buf_printf(b, ",\"sport\":%u,\"daddr\":", d.sport);
		put_ip(b, d.family, d.daddr);
		kl_buf_printf(b, ",\"dport\":%u,\"sock_cookie\":%llu,\"msg_len\":%u", d.dport,
			      (unsigned long long)d.sock_cookie, d.msg_len);
		break;
	}
	case KL_REC_SOCK: {
		struct kl_sock s;
		memcpy(&s, rec, sizeof(s));
		kl_buf_printf(b, ",\"kind\":\"%s\",\"family\":%u,\"proto\":%u,\"saddr\":",
			      s.kind == KL_SOCK_STATE ? "state" : s.kind == KL_SOCK_CLOSE ? "close" : "unknown",
			      s.family, s.proto);
		put_ip(b, s.family, s.saddr);
		kl_buf_printf(b, ",\"sport\":%u,\"daddr\":", s.sport);
		put_ip(b, s.family, s.daddr);
		kl_buf_printf(b, ",\"dport\":%u,\"old_state\":%u,\"new_state\":%u,\"sock_cookie\":%llu,"
			      "\"bytes_sent\":%llu,\"bytes_received\":%llu",
			      s.dport, s.old_state, s.new_state, (unsigned long long)s.sock_cookie,
			      (unsigned long long)s.bytes_sent, (unsigned long long)s.bytes_received);
		break;
	}
	case KL_REC_LOSS: {
		struct kl_loss l;
		memcpy(&l, rec, sizeof(l));
		kl_buf_printf(b, ",\"where\":\"%s\",\"category\":\"%s\",\"count\":%llu", loss_where(l.where),
			      kl_category_name(l.category) ? kl_category_name(l.category) : "unknown",
			      (unsigned long long)l.count);
		break;
	}
	case KL_REC_ENRICHED: {
		struct kl_enriched en;
		uint16_t rt;
		const void *raw;
		size_t rl;
		const struct kl_rec_info *rri;
		memcpy(&en, rec, sizeof(en));
		kl_enriched_raw(rec, len, &rt, &raw, &rl);
		rri = kl_rec_info(rt);
		kl_buf_printf(b, ",\"raw_type\":\"%s\",\"process_known\":%s,\"in_container\":%s",
			      rri ? rri->name : "unknown", en.eflags & KL_EN_PROC_KNOWN ? "true" : "false",
			      en.eflags & KL_EN_CTR_KNOWN ? "true" : "false");
		if (en.eflags & KL_EN_EXITED)
			kl_buf_puts(b, ",\"exited\":true");
		if (en.eflags & KL_EN_ENTERED)
			kl_buf_puts(b, ",\"runtime_init\":true");
		if (en.eflags & KL_EN_FD_RESOLVED)
			kl_buf_printf(b, ",\"fd_kind\":\"%s\"", kl_fd_kind_name(en.fd_kind));
		if (en.eflags & KL_EN_FD2_RESOLVED)
			kl_buf_printf(b, ",\"fd2_kind\":\"%s\"", kl_fd_kind_name(en.fd2_kind));
		kl_buf_printf(b, ",\"parent_pid\":%u,\"parent_start_ns\":%llu,\"ctr_cgroup_id\":%llu",
			      en.parent_pid, (unsigned long long)en.parent_start_ns,
			      (unsigned long long)en.ctr_cgroup_id);
		put_fields(b, type, rec, len);
		kl_buf_puts(b, ",\"raw\":");
		kl_rec_to_json(b, rt, raw, rl, UINT64_MAX);
		kl_buf_putc(b, '}');
		return;
	}
	case KL_REC_INTENT: {
		struct kl_intent in;
		memcpy(&in, rec, sizeof(in));
		put_intent(b, &in);
		break;
	}
	case KL_REC_GRAPH: {        /* graph (kl-graphd) */
		struct kl_graph g;
		memcpy(&g, rec, sizeof(g));
		put_graph(b, &g);
		break;
	}
	case KL_REC_DEVIATION: {    /* deviation (kl-baselined) */
		struct kl_deviation d;
		memcpy(&d, rec, sizeof(d));
		put_deviation(b, &d);
		break;
	}
	case KL_REC_MARK: {
		struct kl_mark m;
		memcpy(&m, rec, sizeof(m));
		kl_buf_printf(b, ",\"id\":%llu,\"value\":%llu", (unsigned long long)m.id,
			      (unsigned long long)m.value);
		break;
	}
	}
	put_fields(b, type, rec, len);
	kl_buf_putc(b, '}');
}
