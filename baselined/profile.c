/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.c - Profile documents (docs/profile.md, docs/baseline.md):
 * written with kl_buf (sorted, so the same behaviour gives the same
 * bytes), read with jansson (syntax errors carry line and column; value
 * errors name the JSON path).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>
#include <seccomp.h>

#include "profile.h"

void bl_profile_id_str(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "prof-%016llx", (unsigned long long)id);
}

int bl_profile_id_parse(const char *s, uint64_t *id)
{
	char *end;

	if (strncmp(s, "prof-", 5) || strlen(s) != 21)
		return -EINVAL;
	*id = strtoull(s + 5, &end, 16);
	return *end ? -EINVAL : 0;
}

/* ---- writing --------------------------------------------------------------- */

static void put_time(struct kl_buf *b, const char *key, uint64_t mono, int64_t off)
{
	struct tm tm;
	int64_t wall = (int64_t)mono + off;
	time_t s;

	if (!mono)
		return;
	if (wall < 0)
		wall = 0;
	s = (time_t)(wall / 1000000000LL);
	gmtime_r(&s, &tm);
	/* 9 fraction digits: exact round trip, and strings still compare in time order */
	kl_buf_printf(b, ",\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ\"", key, tm.tm_year + 1900,
		      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		      (long long)(wall % 1000000000LL));
}

static int parse_time(const char *s, int64_t off, uint64_t *mono)
{
	struct tm tm;
	long long frac = 0;
	int digits = 0;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				frac = frac * 10 + (*p - '0');
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (strcmp(p, "Z"))
		return -EINVAL;
	int64_t wall = (int64_t)timegm(&tm) * 1000000000LL + frac;
	*mono = wall - off > 0 ? (uint64_t)(wall - off) : 0;
	return 0;
}

static void put_str(struct kl_buf *b, const char *key, const char *s, size_t n)
{
	kl_buf_printf(b, "\"%s\":", key);
	kl_buf_json_str(b, s, n);
}

static void put_evidence(struct kl_buf *b, const struct bl_item *it, int64_t off)
{
	kl_buf_printf(b, ",\"count\":%" PRIu64, it->count ? it->count : 1);
	put_time(b, "firstSeen", it->first_ns, off);
	put_time(b, "lastSeen", it->last_ns > it->first_ns ? it->last_ns : it->first_ns, off);
}

static void mode_str(char *m, uint32_t mode)
{
	int i = 0;
	if (mode & KL_IA_READ)
		m[i++] = 'r';
	if (mode & KL_IA_WRITE)
		m[i++] = 'w';
	if (mode & KL_IA_EXEC)
		m[i++] = 'x';
	m[i] = 0;
}

static uint32_t mode_bits(const char *m)
{
	uint32_t v = 0;
	for (; *m; m++)
		v |= *m == 'r' ? KL_IA_READ : *m == 'w' ? KL_IA_WRITE : *m == 'x' ? KL_IA_EXEC : 0x8000u;
	return v;
}

/* contractc's rule (cc_valid_dns): labels of [A-Za-z0-9_-], 1..63, no empty label. */
static bool dns_ok(const char *s)
{
	size_t lab = 0, len = strlen(s);

	if (!len || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (!lab)
				return false;
			lab = 0;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_') || ++lab > 63)
			return false;
	}
	return true;
}

/* "addr:port/PROTO" / "[v6]:port/PROTO" / "port/PROTO" -> parts; false if not that shape. */
static bool split_net(const char *t, bool with_addr, char *addr, size_t alen, unsigned *port, char *proto)
{
	const char *slash = strrchr(t, '/');
	const char *ps = t;

	if (!slash || strlen(slash + 1) > 4 || !strncmp(t, "unix:", 5))
		return false;
	if (with_addr) {
		const char *colon;
		if (t[0] == '[') {
			const char *rb = strchr(t, ']');
			if (!rb || rb[1] != ':')
				return false;
			snprintf(addr, alen, "%.*s", (int)(rb - t - 1), t + 1);
			colon = rb + 1;
		} else {
			colon = strchr(t, ':');
			if (!colon)
				return false;
			snprintf(addr, alen, "%.*s", (int)(colon - t), t);
		}
		ps = colon + 1;
	}
	char *end;
	unsigned long p = strtoul(ps, &end, 10);
	if (end != slash || p < 1 || p > 65535)
		return false;
	*port = (unsigned)p;
	snprintf(proto, 5, "%s", slash + 1);
	return true;
}

struct sorted {
	const struct bl_item **v;
	size_t n;
};

static int cmp_item(const void *a, const void *b)
{
	const struct bl_item *x = *(const struct bl_item *const *)a, *y = *(const struct bl_item *const *)b;
	if (x->cat != y->cat)
		return x->cat < y->cat ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->text, y->text, n);
	return c ? c : x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}

static void put_base64(struct kl_buf *b, const uint8_t *d, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	kl_buf_putc(b, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
			     (i + 2 < n ? d[i + 2] : 0);
		kl_buf_putc(b, tab[v >> 18 & 63]);
		kl_buf_putc(b, tab[v >> 12 & 63]);
		char c2 = '=', c3 = '=';
		if (i + 1 < n)
			c2 = tab[v >> 6 & 63];
		if (i + 2 < n)
			c3 = tab[v & 63];
		kl_buf_putc(b, c2);
		kl_buf_putc(b, c3);
	}
	kl_buf_putc(b, '"');
}

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decode exactly @n bytes; false on bad characters or length. */
static bool unbase64(const char *s, uint8_t *out, size_t n)
{
	size_t sl = strlen(s), o = 0;

	if (sl % 4 || sl / 4 * 3 < n || sl / 4 * 3 >= n + 3)
		return false;
	for (size_t i = 0; i < sl; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = s[i + k] == '=' ? 0 : b64_val(s[i + k]);
			if (v[k] < 0)
				return false;
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		for (int k = 0; k < 3 && o < n; k++)
			out[o++] = (uint8_t)(x >> (16 - 8 * k));
	}
	return o == n;
}

/* A list section: "key":[ {...},... ] built by appending entries; opened lazily. */
struct list {
	struct kl_buf *b;
	const char *key;
	bool open;
	bool *any;                      /* the enclosing object already has a member */
};

static void list_item(struct list *l)
{
	if (!l->open) {
		if (*l->any)
			kl_buf_putc(l->b, ',');
		kl_buf_printf(l->b, "\"%s\":[{", l->key);
		l->open = true;
		*l->any = true;
	} else {
		kl_buf_puts(l->b, ",{");
	}
}

static void list_end(struct list *l)
{
	if (l->open)
		kl_buf_putc(l->b, ']');
}

static void put_extra(struct list *l, const char *cat, const struct bl_item *it, int64_t off, bool attempt)
{
	char m[4];

	list_item(l);
	put_str(l->b, "cat", cat, strlen(cat));
	kl_buf_putc(l->b, ',');
	put_str(l->b, "item", it->text, it->len);
	mode_str(m, attempt ? it->mode >> 16 : it->mode);
	if (it->cat == BL_C_FILE && m[0])
		kl_buf_printf(l->b, ",\"mode\":\"%s\"", m);
	if (it->aux && !attempt) {
		kl_buf_putc(l->b, ',');
		put_str(l->b, "aux", it->aux, strlen(it->aux));
	}
	if (!attempt)
		put_evidence(l->b, it, off);
	kl_buf_putc(l->b, '}');
}

static void render_workload(struct kl_buf *b, const struct bl_wview *v, int64_t off)
{
	struct sorted s = { 0 };
	bool top = true, net = false, base = false;
	char m[4], addr[64], proto[5];
	unsigned port;

	s.v = malloc((v->nitems ? v->nitems : 1) * sizeof(*s.v));
	if (!s.v) {
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < v->nitems; i++)
		s.v[s.n++] = &v->items[i];
	qsort(s.v, s.n, sizeof(*s.v), cmp_item);

	kl_buf_puts(b, "{\"selector\":{");
	{
		bool any = false;
		if (v->ns[0]) {
			put_str(b, "namespace", v->ns, strlen(v->ns));
			any = true;
		}
		if (v->container[0]) {
			if (any)
				kl_buf_putc(b, ',');
			put_str(b, "container", v->container, strlen(v->container));
			any = true;
		}
		if (v->image[0]) {
			if (any)
				kl_buf_putc(b, ',');
			put_str(b, "image", v->image, strlen(v->image));
		}
	}
	/* window times are required: start <= end */
	kl_buf_puts(b, "},\"window\":{");
	{
		uint64_t st = v->win_start_ns ? v->win_start_ns : 1;
		uint64_t en = v->win_end_ns > st ? v->win_end_ns : st;
		struct kl_buf t = { 0 };
		put_time(&t, "start", st, off);
		put_time(&t, "end", en, off);
		if (t.p)
			kl_buf_puts(b, t.p + 1);
		kl_buf_free(&t);
	}
	kl_buf_printf(b, "},\"samples\":{\"events\":%" PRIu64 ",\"pods\":%" PRIu64 ",\"containers\":%" PRIu64 "}",
		      v->samples, v->pods, v->containers);

	struct list ex = { b, "executables", false, &top }, fi = { b, "files", false, &top };
	struct list eg = { b, "egress", false, &net }, ig = { b, "ingress", false, &net },
		    li = { b, "listen", false, &net };
	struct list dn = { b, "dns", false, &top }, sy = { b, "syscalls", false, &top },
		    ui = { b, "uids", false, &top };
	struct list tr = { b, "transitions", false, &base }, pr = { b, "privilege", false, &base },
		    at = { b, "attempts", false, &base }, xt = { b, "extra", false, &base };

	/* top-level lists, each in its own pass so the sections stay contiguous */
	kl_buf_putc(b, ',');
	top = false;
	size_t mark = b->len;
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_EXEC || it->attempt || it->text[0] != '/')
			continue;
		list_item(&ex);
		put_str(b, "path", it->text, it->len);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&ex);
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_FILE || it->attempt || it->text[0] != '/' || !(it->mode & 0xffff))
			continue;
		mode_str(m, it->mode);
		list_item(&fi);
		put_str(b, "path", it->text, it->len);
		kl_buf_printf(b, ",\"mode\":\"%s\"", m);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&fi);
	/* network */
	{
		size_t nm;
		if (top)
			kl_buf_putc(b, ',');
		kl_buf_puts(b, "\"network\":{");
		nm = b->len;
		for (size_t i = 0; i < s.n; i++) {
			const struct bl_item *it = s.v[i];
			if (it->cat != BL_C_EGRESS || it->attempt ||
			    !split_net(it->text, true, addr, sizeof(addr), &port, proto))
				continue;
			list_item(&eg);
			put_str(b, "addr", addr, strlen(addr));
			kl_buf_printf(b, ",\"port\":%u,\"protocol\":\"%s\"", port, proto);
			if (it->aux && dns_ok(it->aux)) {
				kl_buf_putc(b, ',');
				put_str(b, "dns", it->aux, strlen(it->aux));
			}
			put_evidence(b, it, off);
			kl_buf_putc(b, '}');
		}
		list_end(&eg);
		for (size_t i = 0; i < s.n; i++) {
			const struct bl_item *it = s.v[i];
			if (it->cat != BL_C_INGRESS || it->attempt ||
			    !split_net(it->text, false, addr, sizeof(addr), &port, proto))
				continue;
			list_item(&ig);
			/* the profile names a client; detection keys ingress by local port only */
			put_str(b, "addr", it->aux ? it->aux : "0.0.0.0", strlen(it->aux ? it->aux : "0.0.0.0"));
			kl_buf_printf(b, ",\"port\":%u,\"protocol\":\"%s\"", port, proto);
			put_evidence(b, it, off);
			kl_buf_putc(b, '}');
		}
		list_end(&ig);
		for (size_t i = 0; i < s.n; i++) {
			const struct bl_item *it = s.v[i];
			if (it->cat != BL_C_LISTEN || it->attempt ||
			    !split_net(it->text, false, addr, sizeof(addr), &port, proto))
				continue;
			list_item(&li);
			kl_buf_printf(b, "\"port\":%u,\"protocol\":\"%s\"", port, proto);
			put_evidence(b, it, off);
			kl_buf_putc(b, '}');
		}
		list_end(&li);
		kl_buf_putc(b, '}');
		(void)nm;
		top = true;
	}
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_DNS || it->attempt || !dns_ok(it->text))
			continue;
		list_item(&dn);
		put_str(b, "name", it->text, it->len);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&dn);
	for (uint32_t nr = 0; nr < BL_NSYSCALLS; nr++) {
		const char *name = kl_syscall_name(nr);
		if (!v->syscalls[nr] || !name || seccomp_syscall_resolve_name(name) < 0)
			continue;
		list_item(&sy);
		put_str(b, "name", name, strlen(name));
		kl_buf_printf(b, ",\"count\":%" PRIu64 "}", v->syscalls[nr]);
	}
	list_end(&sy);
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_UID || it->attempt)
			continue;
		list_item(&ui);
		kl_buf_printf(b, "\"uid\":%.*s", (int)it->len, it->text);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&ui);
	(void)mark;

	/* the baseline section: what detection needs beyond the shared format */
	kl_buf_puts(b, ",\"baseline\":{");
	put_str(b, "key", v->key, strlen(v->key));
	base = true;
	kl_buf_printf(b, ",\"host\":%s,", v->host ? "true" : "false");
	put_str(b, "owner", v->owner, strlen(v->owner));
	kl_buf_printf(b, ",\"state\":\"%s\",", bl_state_name(v->state));
	put_str(b, "policy", v->policy, strlen(v->policy));
	kl_buf_printf(b, ",\"windowNs\":%" PRIu64 ",\"windowStartNs\":%" PRIu64 ",\"windowEndNs\":%" PRIu64
		      ",\"monoOffsetNs\":%" PRId64 ",\"itemsOverflow\":%" PRIu64,
		      v->window_ns, v->win_start_ns, v->win_end_ns, off, v->items_overflow);
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_TRANS || it->attempt)
			continue;
		size_t pl = strnlen(it->text, it->len);
		list_item(&tr);
		put_str(b, "parent", it->text, pl);
		kl_buf_putc(b, ',');
		put_str(b, "child", it->text + pl + 1, it->len > pl + 1 ? it->len - pl - 1 : 0);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&tr);
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->cat != BL_C_PRIV || it->attempt)
			continue;
		list_item(&pr);
		put_str(b, "call", it->text, it->len);
		put_evidence(b, it, off);
		kl_buf_putc(b, '}');
	}
	list_end(&pr);
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		if (it->attempt || (it->cat == BL_C_FILE && (it->mode >> 16)))
			put_extra(&at, bl_cat_name(it->cat), it, off, true);
	}
	for (uint32_t nr = 0; nr < BL_NSYSCALLS; nr++) {
		char nb[24];
		const char *name = kl_syscall_name(nr);
		if (!v->sys_attempts[nr])
			continue;
		if (!name) {
			snprintf(nb, sizeof(nb), "syscall_%u", nr);
			name = nb;
		}
		list_item(&at);
		kl_buf_puts(b, "\"cat\":\"syscall\",");
		put_str(b, "item", name, strlen(name));
		kl_buf_printf(b, ",\"count\":%" PRIu64 "}", v->sys_attempts[nr]);
	}
	list_end(&at);
	/* items the shared format cannot express (relative or pseudo paths, unix peers, odd names) */
	for (size_t i = 0; i < s.n; i++) {
		const struct bl_item *it = s.v[i];
		bool std;
		if (it->attempt)
			continue;
		switch (it->cat) {
		case BL_C_EXEC: std = it->text[0] == '/'; break;
		case BL_C_FILE: std = it->text[0] == '/' && (it->mode & 0xffff); break;
		case BL_C_EGRESS: std = split_net(it->text, true, addr, sizeof(addr), &port, proto); break;
		case BL_C_INGRESS:
		case BL_C_LISTEN: std = split_net(it->text, false, addr, sizeof(addr), &port, proto); break;
		case BL_C_DNS: std = dns_ok(it->text); break;
		default: std = true;
		}
		if (!std)
			put_extra(&xt, bl_cat_name(it->cat), it, off, false);
	}
	for (uint32_t nr = 0; nr < BL_NSYSCALLS; nr++) {
		char nb[24];
		const char *name = kl_syscall_name(nr);
		if (!v->syscalls[nr] || (name && seccomp_syscall_resolve_name(name) >= 0))
			continue;
		if (!name) {
			snprintf(nb, sizeof(nb), "syscall_%u", nr);
			name = nb;
		}
		list_item(&xt);
		kl_buf_puts(b, "\"cat\":\"syscall\",");
		put_str(b, "item", name, strlen(name));
		kl_buf_printf(b, ",\"count\":%" PRIu64 "}", v->syscalls[nr]);
	}
	list_end(&xt);
	kl_buf_printf(b, ",\"sketch\":{\"depth\":%d,\"width\":%d,\"total\":%" PRIu64 ",\"rows\":[",
		      BL_SKETCH_DEPTH, BL_SKETCH_WIDTH, v->sketch_total);
	for (int r = 0; r < BL_SKETCH_DEPTH; r++) {
		uint8_t row[BL_SKETCH_WIDTH * 4];
		for (int c = 0; c < BL_SKETCH_WIDTH; c++) {
			uint32_t x = v->sketch[(size_t)r * BL_SKETCH_WIDTH + (size_t)c];
			uint8_t *o = &row[(size_t)c * 4];
			o[0] = (uint8_t)x;
			o[1] = (uint8_t)(x >> 8);
			o[2] = (uint8_t)(x >> 16);
			o[3] = (uint8_t)(x >> 24);
		}
		if (r)
			kl_buf_putc(b, ',');
		put_base64(b, row, sizeof(row));
	}
	kl_buf_puts(b, "]}}}");
	free(s.v);
}

int bl_profile_render(struct kl_buf *b, const struct bl_wview *v, size_t n, const char *id,
		      const char *node, int64_t mono_offset_ns, uint64_t generated_real_ns)
{
	kl_buf_puts(b, "{\"apiVersion\":\"kloudlens.io/v1\",\"kind\":\"Profile\",\"metadata\":{");
	put_str(b, "id", id, strlen(id));
	if (generated_real_ns) {
		/* put_time adds the offset: pass wall time with offset 0 */
		struct kl_buf t = { 0 };
		put_time(&t, "generatedAt", generated_real_ns, 0);
		if (t.p)
			kl_buf_puts(b, t.p);
		kl_buf_free(&t);
	}
	if (node && *node) {
		kl_buf_putc(b, ',');
		put_str(b, "node", node, strlen(node));
	}
	kl_buf_puts(b, "},\"workloads\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			kl_buf_putc(b, ',');
		render_workload(b, &v[i], mono_offset_ns);
	}
	kl_buf_puts(b, "]}\n");
	return b->oom ? -ENOMEM : 0;
}

/* ---- reading -------------------------------------------------------------- */

struct rd {
	const char *file;
	char *err;
	size_t errlen;
	bool failed;
	/* growable item storage for the workload being read */
	struct bl_item *items;
	size_t n, cap;
	int64_t off;
};

__attribute__((format(printf, 3, 4)))
static void fail(struct rd *r, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return;
	r->failed = true;
	n = snprintf(r->err, r->errlen, "%s: %s: ", r->file, path);
	if (n < 0 || (size_t)n >= r->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *get_s(struct rd *r, json_t *o, const char *key, const char *path, bool required)
{
	json_t *v = json_object_get(o, key);
	if (!v) {
		if (required)
			fail(r, path, "missing \"%s\"", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		fail(r, path, "\"%s\" must be a string", key);
		return NULL;
	}
	return json_string_value(v);
}

static bool get_u(struct rd *r, json_t *o, const char *key, const char *path, bool required,
		  uint64_t min, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!v) {
		if (required)
			fail(r, path, "missing \"%s\"", key);
		return false;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min) {
		fail(r, path, "\"%s\" must be an integer >= %" PRIu64, key, min);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static struct bl_item *new_item(struct rd *r, const char *path, uint16_t cat, const char *text, size_t len)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		struct bl_item *ni = realloc(r->items, nc * sizeof(*ni));
		if (!ni) {
			fail(r, path, "out of memory");
			return NULL;
		}
		r->items = ni;
		r->cap = nc;
	}
	struct bl_item *it = &r->items[r->n];
	memset(it, 0, sizeof(*it));
	it->text = malloc(len + 1);
	if (!it->text) {
		fail(r, path, "out of memory");
		return NULL;
	}
	memcpy(it->text, text, len);
	it->text[len] = 0;
	it->len = (uint32_t)len;
	it->cat = cat;
	r->n++;
	return it;
}

static bool evidence(struct rd *r, json_t *o, const char *path, struct bl_item *it)
{
	const char *s;
	if (!get_u(r, o, "count", path, true, 1, &it->count))
		return false;
	if ((s = get_s(r, o, "firstSeen", path, false)) && parse_time(s, r->off, &it->first_ns)) {
		fail(r, path, "\"firstSeen\" is not an RFC 3339 time");
		return false;
	}
	if ((s = get_s(r, o, "lastSeen", path, false)) && parse_time(s, r->off, &it->last_ns)) {
		fail(r, path, "\"lastSeen\" is not an RFC 3339 time");
		return false;
	}
	return !r->failed;
}

static json_t *list_of(struct rd *r, json_t *o, const char *key, const char *path)
{
	json_t *v = json_object_get(o, key);
	if (v && !json_is_array(v)) {
		fail(r, path, "\"%s\" must be a list", key);
		return NULL;
	}
	return v;
}

/* NOLINTBEGIN(bugprone-macro-parentheses): el and path are declared/used as names, not expressions */
#define EACH(r, arr, path, base, i, el)                                                  \
	for (size_t i = 0; !(r)->failed && (arr) && i < json_array_size(arr); i++)       \
		for (json_t *el = json_array_get(arr, i); el; el = NULL)                 \
			for (int _o = snprintf(path, sizeof(path), "%s[%zu]", base, i); _o >= 0; _o = -1) \
				if (!json_is_object(el))                                 \
					fail(r, path, "expected an object");             \
				else
/* NOLINTEND(bugprone-macro-parentheses) */

static void read_items(struct rd *r, json_t *w, const char *wp, uint64_t *syscalls, uint64_t *sysatt)
{
	char base[128], p[160], txt[1200];
	json_t *a, *net;
	const char *s, *s2;
	uint64_t port;

	snprintf(base, sizeof(base), "%s.executables", wp);
	a = list_of(r, w, "executables", wp);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		if ((s = get_s(r, el, "path", p, true)) && (it = new_item(r, p, BL_C_EXEC, s, strlen(s))))
			evidence(r, el, p, it);
	}
	snprintf(base, sizeof(base), "%s.files", wp);
	a = list_of(r, w, "files", wp);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		s = get_s(r, el, "path", p, true);
		s2 = get_s(r, el, "mode", p, true);
		if (!s || !s2)
			break;
		if (mode_bits(s2) & 0x8000u || !*s2) {
			fail(r, p, "\"mode\" must be a combination of r, w and x");
			break;
		}
		if ((it = new_item(r, p, BL_C_FILE, s, strlen(s)))) {
			it->mode = mode_bits(s2);
			evidence(r, el, p, it);
		}
	}
	net = json_object_get(w, "network");
	if (net && !json_is_object(net))
		fail(r, wp, "\"network\" must be an object");
	static const char *const nk[] = { "egress", "ingress", "listen" };
	for (int k = 0; k < 3 && net && !r->failed; k++) {
		snprintf(base, sizeof(base), "%s.network.%s", wp, nk[k]);
		a = list_of(r, net, nk[k], base);
		EACH(r, a, p, base, i, el) {
			struct bl_item *it;
			const char *proto = get_s(r, el, "protocol", p, false);
			const char *addr = k < 2 ? get_s(r, el, "addr", p, true) : NULL;
			if (!get_u(r, el, "port", p, true, 1, &port) || port > 65535) {
				fail(r, p, "\"port\" must be 1..65535");
				break;
			}
			if (!proto)
				proto = "TCP";
			if (k == 0)
				snprintf(txt, sizeof(txt), strchr(addr ? addr : "", ':') ? "[%s]:%" PRIu64 "/%s"
											  : "%s:%" PRIu64 "/%s",
					 addr ? addr : "", port, proto);
			else
				snprintf(txt, sizeof(txt), "%" PRIu64 "/%s", port, proto);
			if (r->failed)
				break;
			if ((it = new_item(r, p, (uint16_t)(k == 0 ? BL_C_EGRESS : k == 1 ? BL_C_INGRESS : BL_C_LISTEN),
					   txt, strlen(txt)))) {
				const char *aux = k == 0 ? get_s(r, el, "dns", p, false) : k == 1 ? addr : NULL;
				if (aux && !(it->aux = strdup(aux)))
					fail(r, p, "out of memory");
				evidence(r, el, p, it);
			}
		}
	}
	snprintf(base, sizeof(base), "%s.dns", wp);
	a = list_of(r, w, "dns", wp);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		if ((s = get_s(r, el, "name", p, true)) && (it = new_item(r, p, BL_C_DNS, s, strlen(s))))
			evidence(r, el, p, it);
	}
	snprintf(base, sizeof(base), "%s.syscalls", wp);
	a = list_of(r, w, "syscalls", wp);
	EACH(r, a, p, base, i, el) {
		uint64_t cnt;
		int nr;
		if (!(s = get_s(r, el, "name", p, true)) || !get_u(r, el, "count", p, true, 1, &cnt))
			break;
		nr = kl_syscall_nr(s);
		if (nr < 0 || nr >= BL_NSYSCALLS) {
			fail(r, p, "unknown syscall \"%s\"", s);
			break;
		}
		syscalls[nr] += cnt;
	}
	snprintf(base, sizeof(base), "%s.uids", wp);
	a = list_of(r, w, "uids", wp);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		uint64_t uid;
		if (!get_u(r, el, "uid", p, true, 0, &uid) || uid > 4294967294ULL) {
			fail(r, p, "\"uid\" must be 0..4294967294");
			break;
		}
		snprintf(txt, sizeof(txt), "%" PRIu64, uid);
		if ((it = new_item(r, p, BL_C_UID, txt, strlen(txt))))
			evidence(r, el, p, it);
	}
	json_t *bl = json_object_get(w, "baseline");
	if (!bl)
		return;
	snprintf(base, sizeof(base), "%s.baseline.transitions", wp);
	a = list_of(r, bl, "transitions", base);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		s = get_s(r, el, "parent", p, true);
		s2 = get_s(r, el, "child", p, true);
		if (!s || !s2)
			break;
		size_t pl = strlen(s), cl = strlen(s2);
		if (pl + cl + 1 >= sizeof(txt)) {
			fail(r, p, "too long");
			break;
		}
		memcpy(txt, s, pl + 1);
		/* "parent\0child" is length-delimited (the NUL is the separator) */
		memcpy(txt + pl + 1, s2, cl); // NOLINT(bugprone-not-null-terminated-result)
		if ((it = new_item(r, p, BL_C_TRANS, txt, pl + 1 + cl)))
			evidence(r, el, p, it);
	}
	snprintf(base, sizeof(base), "%s.baseline.privilege", wp);
	a = list_of(r, bl, "privilege", base);
	EACH(r, a, p, base, i, el) {
		struct bl_item *it;
		if ((s = get_s(r, el, "call", p, true)) && (it = new_item(r, p, BL_C_PRIV, s, strlen(s))))
			evidence(r, el, p, it);
	}
	static const char *const lists[] = { "attempts", "extra" };
	for (int k = 0; k < 2; k++) {
		snprintf(base, sizeof(base), "%s.baseline.%s", wp, lists[k]);
		a = list_of(r, bl, lists[k], base);
		EACH(r, a, p, base, i, el) {
			struct bl_item *it;
			const char *cat = get_s(r, el, "cat", p, true), *item = get_s(r, el, "item", p, true);
			const char *mode = get_s(r, el, "mode", p, false);
			if (!cat || !item)
				break;
			if (!strcmp(cat, "syscall")) {
				uint64_t cnt;
				int nr = kl_syscall_nr(item);
				if (nr < 0 && !strncmp(item, "syscall_", 8))
					nr = atoi(item + 8);
				if (nr < 0 || nr >= BL_NSYSCALLS || !get_u(r, el, "count", p, true, 1, &cnt)) {
					fail(r, p, "bad syscall entry \"%s\"", item);
					break;
				}
				(k ? syscalls : sysatt)[nr] += cnt;
				continue;
			}
			int c = bl_cat_from_name(cat);
			if (c < 0) {
				fail(r, p, "unknown \"cat\" \"%s\"", cat);
				break;
			}
			size_t il = strlen(item);
			if (c == BL_C_TRANS) {
				/* stored as "parent\0child": the text holds the NUL as \u0000 */
				json_t *iv = json_object_get(el, "item");
				il = json_string_length(iv);
				item = json_string_value(iv);
			}
			it = new_item(r, p, (uint16_t)c, item, il);
			if (!it)
				break;
			if (mode)
				it->mode = k ? mode_bits(mode) : mode_bits(mode) << 16;
			if (k == 0) {
				/* an attempt-only item, or only the attempted modes of a file */
				it->attempt = 1;
				continue;
			}
			if ((s = get_s(r, el, "aux", p, false)) && !(it->aux = strdup(s)))
				fail(r, p, "out of memory");
			evidence(r, el, p, it);
		}
	}
}

static void read_sketch(struct rd *r, json_t *bl, const char *wp, uint32_t *sk, uint64_t *total)
{
	char p[160];
	json_t *s = json_object_get(bl, "sketch"), *rows;
	uint64_t depth, width;

	snprintf(p, sizeof(p), "%s.baseline.sketch", wp);
	if (!s)
		return;
	if (!json_is_object(s)) {
		fail(r, p, "must be an object");
		return;
	}
	if (!get_u(r, s, "depth", p, true, 1, &depth) || !get_u(r, s, "width", p, true, 1, &width))
		return;
	if (depth != BL_SKETCH_DEPTH || width != BL_SKETCH_WIDTH) {
		fail(r, p, "%" PRIu64 "x%" PRIu64 " sketch, this build uses %dx%d", depth, width,
		     BL_SKETCH_DEPTH, BL_SKETCH_WIDTH);
		return;
	}
	get_u(r, s, "total", p, false, 0, total);
	rows = json_object_get(s, "rows");
	if (!json_is_array(rows) || json_array_size(rows) != BL_SKETCH_DEPTH) {
		fail(r, p, "\"rows\" must be a list of %d base64 strings", BL_SKETCH_DEPTH);
		return;
	}
	for (int i = 0; i < BL_SKETCH_DEPTH; i++) {
		uint8_t row[BL_SKETCH_WIDTH * 4];
		json_t *v = json_array_get(rows, (size_t)i);
		if (!json_is_string(v) || !unbase64(json_string_value(v), row, sizeof(row))) {
			fail(r, p, "rows[%d]: not %d bytes of base64", i, BL_SKETCH_WIDTH * 4);
			return;
		}
		for (int c = 0; c < BL_SKETCH_WIDTH; c++)
		{
			const uint8_t *q = &row[(size_t)c * 4];
			sk[(size_t)i * BL_SKETCH_WIDTH + (size_t)c] = (uint32_t)q[0] | (uint32_t)q[1] << 8 |
								      (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
		}
	}
}

/* One allocation per workload for what bl_install points at. */
struct wmem {
	struct bl_item *items;
	size_t nitems;
	uint64_t syscalls[BL_NSYSCALLS], sysatt[BL_NSYSCALLS];
	uint32_t sketch[BL_SKETCH_DEPTH * BL_SKETCH_WIDTH];
	char *key, *ns, *owner, *container, *image, *policy;
};

struct lmem {
	size_t n;
	struct wmem *w;
};

void bl_loaded_free(struct bl_loaded *l)
{
	struct lmem *m;

	if (!l)
		return;
	m = l->_mem;
	for (size_t i = 0; m && i < m->n; i++) {
		struct wmem *w = &m->w[i];
		for (size_t k = 0; k < w->nitems; k++) {
			free(w->items[k].text);
			free(w->items[k].aux);
		}
		free(w->items);
		free(w->key);
		free(w->ns);
		free(w->owner);
		free(w->container);
		free(w->image);
		free(w->policy);
	}
	if (m)
		free(m->w);
	free(m);
	free(l->w);
	free(l->id);
	free(l->node);
	free(l);
}

static char *sdup(const char *s)
{
	return strdup(s ? s : "");
}

int bl_profile_parse(const char *file, const char *data, size_t len, struct bl_loaded **out,
		     char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *meta, *ws;
	struct rd r = { .file = file, .err = err, .errlen = errlen };
	struct bl_loaded *l = NULL;
	struct lmem *m = NULL;
	const char *s;
	int ret = -EINVAL;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", file, je.line, je.column, je.text);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	m = calloc(1, sizeof(*m));
	if (!l || !m) {
		ret = -ENOMEM;
		goto fail;
	}
	l->_mem = m;
	if (!json_is_object(root)) {
		fail(&r, "(top)", "expected an object");
		goto fail;
	}
	if (!(s = get_s(&r, root, "kind", "(top)", true)) || strcmp(s, "Profile")) {
		fail(&r, "kind", "must be Profile");
		goto fail;
	}
	if (!(s = get_s(&r, root, "apiVersion", "(top)", true)) || strcmp(s, "kloudlens.io/v1")) {
		fail(&r, "apiVersion", "must be kloudlens.io/v1");
		goto fail;
	}
	meta = json_object_get(root, "metadata");
	if (!json_is_object(meta)) {
		fail(&r, "metadata", "missing or not an object");
		goto fail;
	}
	if (!(s = get_s(&r, meta, "id", "metadata", true)))
		goto fail;
	l->id = strdup(s);
	l->node = sdup(get_s(&r, meta, "node", "metadata", false));
	ws = json_object_get(root, "workloads");
	if (!json_is_array(ws) || !json_array_size(ws)) {
		fail(&r, "workloads", "must be a non-empty list");
		goto fail;
	}
	size_t nw = json_array_size(ws);
	m->w = calloc(nw, sizeof(*m->w));
	l->w = calloc(nw, sizeof(*l->w));
	if (!m->w || !l->w || !l->id || !l->node) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < nw; i++) {
		char wp[64], p[96];
		json_t *w = json_array_get(ws, i), *bl, *sel;
		struct wmem *wm = &m->w[i];
		struct bl_install *in = &l->w[i];
		uint64_t x;

		m->n = i + 1;
		snprintf(wp, sizeof(wp), "workloads[%zu]", i);
		if (!json_is_object(w)) {
			fail(&r, wp, "expected an object");
			goto fail;
		}
		bl = json_object_get(w, "baseline");
		snprintf(p, sizeof(p), "%s.baseline", wp);
		if (!json_is_object(bl)) {
			/* a profile from elsewhere (hand-written, another tool): learn nothing new from it */
			fail(&r, p, "missing: not a kl-baselined profile (no detection state)");
			goto fail;
		}
		r.off = 0;
		if (json_object_get(bl, "monoOffsetNs")) {
			json_t *o = json_object_get(bl, "monoOffsetNs");
			if (!json_is_integer(o)) {
				fail(&r, p, "\"monoOffsetNs\" must be an integer");
				goto fail;
			}
			r.off = (int64_t)json_integer_value(o);
		}
		if (!i)
			l->mono_offset_ns = r.off;
		sel = json_object_get(w, "selector");
		if (!json_is_object(sel)) {
			fail(&r, wp, "\"selector\" missing or not an object");
			goto fail;
		}
		if (!(s = get_s(&r, bl, "key", p, true)))
			goto fail;
		wm->key = strdup(s);
		wm->ns = sdup(get_s(&r, sel, "namespace", wp, false));
		wm->container = sdup(get_s(&r, sel, "container", wp, false));
		wm->image = sdup(get_s(&r, sel, "image", wp, false));
		wm->owner = sdup(get_s(&r, bl, "owner", p, false));
		wm->policy = sdup(get_s(&r, bl, "policy", p, false));
		if (r.failed)
			goto fail;
		if (!wm->key || !wm->ns || !wm->container || !wm->image || !wm->owner || !wm->policy) {
			ret = -ENOMEM;
			goto fail;
		}
		in->key = wm->key;
		in->ns = wm->ns;
		in->owner = wm->owner;
		in->container = wm->container;
		in->image = wm->image;
		in->policy = wm->policy;
		json_t *hv = json_object_get(bl, "host");
		if (hv && !json_is_boolean(hv)) {
			fail(&r, p, "\"host\" must be true or false");
			goto fail;
		}
		in->host = hv && json_is_true(hv);
		s = get_s(&r, bl, "state", p, true);
		if (!s)
			goto fail;
		if (!strcmp(s, "active"))
			in->state = BL_ACTIVE;
		else if (!strcmp(s, "ready"))
			in->state = BL_READY;
		else {
			fail(&r, p, "\"state\" must be active or ready (a profile is taken), not \"%s\"", s);
			goto fail;
		}
		get_u(&r, bl, "windowNs", p, false, 0, &in->window_ns);
		get_u(&r, bl, "windowStartNs", p, false, 0, &in->win_start_ns);
		get_u(&r, bl, "windowEndNs", p, false, 0, &in->win_end_ns);
		get_u(&r, bl, "itemsOverflow", p, false, 0, &in->items_overflow);
		json_t *smp = json_object_get(w, "samples");
		if (!json_is_object(smp)) {
			fail(&r, wp, "\"samples\" missing or not an object");
			goto fail;
		}
		snprintf(p, sizeof(p), "%s.samples", wp);
		get_u(&r, smp, "events", p, true, 0, &in->samples);
		if (get_u(&r, smp, "pods", p, false, 0, &x))
			in->pods = x;
		if (get_u(&r, smp, "containers", p, false, 0, &x))
			in->containers = x;
		if (r.failed)
			goto fail;
		r.items = NULL;
		r.n = r.cap = 0;
		read_items(&r, w, wp, wm->syscalls, wm->sysatt);
		wm->items = r.items;
		wm->nitems = r.n;
		read_sketch(&r, bl, wp, wm->sketch, &in->sketch_total);
		if (r.failed)
			goto fail;
		in->items = wm->items;
		in->nitems = wm->nitems;
		in->syscalls = wm->syscalls;
		in->sys_attempts = wm->sysatt;
		in->sketch = wm->sketch;
		if (bl_profile_id_parse(l->id, &in->profile_id))
			in->profile_id = bl_hash(l->id, strlen(l->id), 0);
		l->nw = i + 1;
	}
	json_decref(root);
	*out = l;
	return 0;
fail:
	json_decref(root);
	bl_loaded_free(l);
	if (!l)
		free(m);
	return r.failed ? -EINVAL : ret;
}

int bl_profile_load(const char *path, struct bl_loaded **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *data = NULL;
	size_t len = 0, cap = 0;
	int r;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			char *nd = realloc(data, nc);
			if (!nd) {
				free(data);
				fclose(f);
				return -ENOMEM;
			}
			data = nd;
			cap = nc;
		}
		size_t got = fread(data + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		r = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		free(data);
		fclose(f);
		return r;
	}
	fclose(f);
	r = bl_profile_parse(path, data, len, out, err, errlen);
	free(data);
	return r;
}

int bl_profile_save(const char *dir, const char *id, const struct kl_buf *b)
{
	char path[4096], tmp[4200];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s.json", dir, id);
	snprintf(tmp, sizeof(tmp), "%s/.%s.json.tmp", dir, id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < b->len;) {
		ssize_t w = write(fd, b->p + off, b->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	/* the rename makes a half-written profile impossible: readers see the old one or the new */
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int bl_profile_merge(const char *const *paths, size_t n, struct kl_buf *b, char *err, size_t errlen)
{
	struct bl_config cfg;
	struct bl_engine *e = NULL;
	struct bl_wview *views = NULL;
	uint64_t h = 0x6d657267;
	int64_t off = 0;
	char id[32];
	int r;

	bl_config_default(&cfg);
	cfg.max_items = UINT32_MAX;
	r = bl_engine_new(&cfg, NULL, NULL, &e);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct bl_loaded *l;
		r = bl_profile_load(paths[i], &l, err, errlen);
		if (r)
			goto out;
		h = bl_hash(l->id, strlen(l->id), h);
		if (!i)
			off = l->mono_offset_ns;
		for (size_t k = 0; k < l->nw; k++) {
			l->w[k].merge = true;
			r = bl_engine_install(e, &l->w[k]);
			if (r) {
				snprintf(err, errlen, "%s: workloads[%zu]: %s", paths[i], k, strerror(-r));
				bl_loaded_free(l);
				goto out;
			}
		}
		bl_loaded_free(l);
	}
	size_t nw = bl_engine_nworkloads(e);
	views = calloc(nw ? nw : 1, sizeof(*views));
	if (!views) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nw; i++) {
		bl_workload_view(bl_engine_workload(e, i), &views[i]);
		views[i].state = BL_ACTIVE;
	}
	bl_profile_id_str(id, sizeof(id), h);
	/* a merged profile spans nodes: no metadata.node; times stay as the first input had them */
	r = bl_profile_render(b, views, nw, id, NULL, off, 0);
out:
	free(views);
	bl_engine_free(e);
	return r;
}
