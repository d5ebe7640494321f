/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-intentd engine: realistic streams (raw records built as the
 * collector writes them -> the real enricher engine -> the intentd engine)
 * compared with tests/intentd/golden/NAME.jsonl (KL_UPDATE_GOLDEN=1
 * rewrites them), plus direct assertions on what each scenario is about,
 * so a blindly regenerated golden file cannot hide a regression. Syscall
 * numbers come from kl_syscall_nr() by name, which also checks the
 * engine's own table of numbers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <kloudlens/recutil.h>

#include "../common/golden.h"
#include "../common/rawgen.h"
#include "enrich.h"
#include "intentd.h"

#define S 1000000000ull
#define MS 1000000ull

struct stream {
	struct kl_enricher *en;
	struct kl_intentd *id;
	uint64_t seq;
	struct kl_buf out;          /* intents as JSON lines */
	json_t *all;                /* the same, parsed */
	uint8_t rec[16384];
	uint8_t enr[65536];
};

static int on_intent(void *ctx, const void *rec, size_t len)
{
	struct stream *s = ctx;
	size_t st = s->out.len;

	cr_assert_eq(kl_rec_validate(KL_REC_INTENT, rec, len), KL_REC_OK, "intent record invalid");
	kl_rec_to_json(&s->out, KL_REC_INTENT, rec, len, UINT64_MAX);
	json_t *j = json_loadb(s->out.p + st, s->out.len - st, 0, NULL);
	cr_assert_not_null(j, "intent JSON does not parse: %s", s->out.p + st);
	json_array_append_new(s->all, j);
	kl_buf_putc(&s->out, '\n');
	return 0;
}

static void start_opts(struct stream *s, const struct kl_intentd_opts *o)
{
	struct kl_intentd_opts d = { .node = "node-1" };

	memset(s, 0, sizeof(*s));
	if (o) {
		d = *o;
		d.node = "node-1";
	}
	cr_assert_eq(kl_enricher_new(NULL, &s->en), 0);
	cr_assert_eq(kl_intentd_new(&d, on_intent, s, &s->id), 0);
	s->all = json_array();
}

static void start(struct stream *s)
{
	start_opts(s, NULL);
}

static void feed(struct stream *s, uint16_t type, size_t len)
{
	long n = kl_enricher_process(s->en, type, s->rec, len, s->enr, sizeof(s->enr));
	cr_assert_gt(n, 0, "enrich: %ld", n);
	cr_assert_geq(kl_intentd_process(s->id, KL_REC_ENRICHED, s->enr, (size_t)n), 0);
}

static uint32_t nr(const char *name)
{
	int v = kl_syscall_nr(name);
	cr_assert_geq(v, 0, "unknown syscall %s", name);
	return (uint32_t)v;
}

static void sc(struct stream *s, const struct rg_task *t, uint64_t ts, const char *name, struct rg_sc c)
{
	c.nr = nr(name);
	feed(s, KL_REC_SYSCALL, rg_syscall(s->rec, sizeof(s->rec), t, ++s->seq, ts, &c));
}

static void proc(struct stream *s, const struct rg_task *t, uint64_t ts, uint32_t kind,
		 const struct rg_task *parent, const char *exe, const char *argv, size_t argv_len,
		 const char *cwd, int32_t code)
{
	feed(s, KL_REC_PROC, rg_proc(s->rec, sizeof(s->rec), t, ++s->seq, ts, kind, parent, exe, argv,
				     argv_len, cwd, code));
}

static void finish(struct stream *s, const char *name)
{
	golden_check("intentd", name, s->out.p, s->out.len);
	json_decref(s->all);
	kl_buf_free(&s->out);
	kl_intentd_free(s->id);
	kl_enricher_free(s->en);
}

/* ---- queries on the emitted intents --------------------------------------- */

static size_t count_kind(struct stream *s, const char *kind)
{
	size_t n = 0, i;
	json_t *j;

	json_array_foreach(s->all, i, j)
		if (!strcmp(json_string_value(json_object_get(j, "kind")), kind))
			n++;
	return n;
}

/* The @idx-th intent of @kind (0-based); fails the test if absent. */
static json_t *nth(struct stream *s, const char *kind, size_t idx)
{
	size_t i;
	json_t *j;

	json_array_foreach(s->all, i, j)
		if (!strcmp(json_string_value(json_object_get(j, "kind")), kind) && idx-- == 0)
			return j;
	cr_assert_fail("no %s intent #%zu", kind, idx);
	return NULL;
}

static json_t *last(struct stream *s)
{
	cr_assert_gt(json_array_size(s->all), 0);
	return json_array_get(s->all, json_array_size(s->all) - 1);
}

static long long I(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	cr_assert(json_is_integer(v), "no integer %s", key);
	return json_integer_value(v);
}

static const char *STR(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));
	cr_assert_not_null(v, "no string %s", key);
	return v;
}

static bool has(json_t *j, const char *arr, const char *word)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(j, arr), i, v)
		if (!strcmp(json_string_value(v), word))
			return true;
	return false;
}

static const char *addr_of(json_t *j, const char *key)
{
	return json_string_value(json_object_get(json_object_get(j, key), "addr"));
}

static const struct rg_task shell = { .pid = 100, .ppid = 1, .start_ns = 1 * S, .uid = 1000, .gid = 1000,
				      .mnt_ns = 4026531841u, .comm = "sh" };

/* ---- process lifecycle ------------------------------------------------------ */

Test(golden, process_start_exit)
{
	struct stream s;
	struct rg_task cat = { .pid = 200, .ppid = 100, .start_ns = 10 * S, .uid = 1000, .comm = "sh" };
	struct rg_task kid = { .pid = 201, .ppid = 200, .start_ns = 12 * S, .uid = 1000, .comm = "cat" };
	struct rg_task thr = { .pid = 200, .tid = 202, .ppid = 100, .start_ns = 10 * S, .comm = "cat" };

	start(&s);
	proc(&s, &shell, 2 * S, KL_PROC_SNAPSHOT, NULL, "/bin/sh", "sh\0", 3, "/home/u", 0);
	cr_assert(has(last(&s), "flags", "inherited"));
	proc(&s, &cat, 10 * S, KL_PROC_FORK, &shell, NULL, NULL, 0, NULL, 0);
	cr_assert_eq(json_array_size(s.all), 1, "a fork alone is not a ProcessStart");
	proc(&s, &cat, 10 * S + 5 * MS, KL_PROC_EXEC, NULL, "/usr/bin/cat", "cat\0-n\0f.txt\0", 13, NULL, 0);
	json_t *ps = last(&s);
	cr_assert_str_eq(STR(ps, "kind"), "ProcessStart");
	cr_assert_str_eq(STR(ps, "exe"), "/usr/bin/cat");
	cr_assert_str_eq(STR(ps, "parent_exe"), "/bin/sh");
	cr_assert_str_eq(STR(ps, "cwd"), "/home/u");
	cr_assert_str_eq(STR(ps, "node"), "node-1");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(ps, "argv"), 2)), "f.txt");
	cr_assert_eq(I(ps, "count"), 2, "fork + exec fold into one ProcessStart");
	cr_assert_eq(I(ps, "first_seq"), 2);
	cr_assert_eq(I(ps, "last_seq"), 3);
	cr_assert_eq(I(ps, "uid"), 1000);
	cr_assert_eq(I(ps, "parent_pid"), 100);
	/* a thread is not a child; a forked process is */
	{
		struct kl_proc k;
		size_t n = rg_proc(s.rec, sizeof(s.rec), &thr, ++s.seq, 11 * S, KL_PROC_FORK, &cat, NULL, NULL,
				   0, NULL, 0);
		memcpy(&k, s.rec, sizeof(k));
		k.child_tid = thr.tid;      /* a thread: new tid, same thread group */
		memcpy(s.rec, &k, sizeof(k));
		feed(&s, KL_REC_PROC, n);
	}
	proc(&s, &kid, 12 * S, KL_PROC_FORK, &cat, NULL, NULL, 0, NULL, 0);
	proc(&s, &kid, 13 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 3 << 8);
	json_t *kx = last(&s);
	cr_assert_str_eq(STR(kx, "kind"), "ProcessExit");
	cr_assert_eq(I(kx, "exit_code"), 3);
	cr_assert_eq(I(kx, "signal"), 0);
	cr_assert_eq(I(kx, "lifetime_ns"), (long long)(1 * S));
	/* a second exec is its own ProcessStart, without the fork */
	proc(&s, &cat, 14 * S, KL_PROC_EXEC, NULL, "/usr/bin/tac", "tac\0", 4, NULL, 0);
	cr_assert_eq(I(last(&s), "count"), 1);
	cr_assert_eq(I(last(&s), "exec_count"), 2);
	proc(&s, &cat, 20 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 9);
	json_t *px = last(&s);
	cr_assert_eq(I(px, "signal"), 9, "killed by SIGKILL");
	cr_assert_eq(I(px, "children"), 1);
	cr_assert_eq(I(px, "lifetime_ns"), (long long)(10 * S));
	cr_assert_eq(count_kind(&s, "ProcessStart"), 3);
	cr_assert_eq(count_kind(&s, "ProcessExit"), 2);
	finish(&s, "process");
}

/* ---- files -------------------------------------------------------------------- */

Test(golden, file_access_partial_io_denied_reuse)
{
	struct stream s;
	struct rg_task t = { .pid = 300, .ppid = 100, .start_ns = 20 * S, .uid = 1000, .comm = "app" };

	start(&s);
	proc(&s, &t, 20 * S, KL_PROC_SNAPSHOT, NULL, "/srv/app", "app\0", 4, "/srv", 0);
	/* read a file in partial reads up to EOF */
	sc(&s, &t, 21 * S, "openat", (struct rg_sc){ .ret = 3, .args = { (uint64_t)-100, 0, O_RDONLY | O_CLOEXEC }, .path = "data/in.csv" });
	int64_t reads[] = { 4096, 4096, 100, -EINTR, 0 };
	for (int i = 0; i < 5; i++)
		sc(&s, &t, 21 * S + (uint64_t)(i + 1) * MS, "read", (struct rg_sc){ .ret = reads[i], .args = { 3, 0, 4096 } });
	sc(&s, &t, 21 * S + 9 * MS, "fstat", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_eq(json_array_size(s.all), 1, "nothing before close");
	sc(&s, &t, 22 * S, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	json_t *fa = last(&s);
	cr_assert_str_eq(STR(fa, "kind"), "FileAccess");
	cr_assert_str_eq(STR(fa, "path"), "/srv/data/in.csv");
	cr_assert_eq(I(fa, "bytes_in"), 4096 + 4096 + 100, "bytes = sum of the read return values");
	cr_assert_eq(I(fa, "ops_in"), 4, "EINTR is not an operation");
	cr_assert_eq(I(fa, "count"), 8);
	cr_assert_eq(I(fa, "ops_other"), 1);
	cr_assert_eq(I(fa, "first_seq"), 2);
	cr_assert_eq(I(fa, "last_seq"), 9);
	cr_assert(has(fa, "access", "read") && has(fa, "access", "cloexec") && !has(fa, "access", "write"));
	cr_assert_eq(I(fa, "result"), 0);

	/* fd 3 reused: a new, separate FileAccess; partial writes with O_APPEND|O_CREAT */
	sc(&s, &t, 23 * S, "open", (struct rg_sc){ .ret = 3, .args = { 0, O_WRONLY | O_CREAT | O_APPEND, 0644 }, .path = "/var/log/app.log" });
	int64_t writes[] = { 512, 100, -EAGAIN, 412, -ENOSPC };
	for (int i = 0; i < 5; i++)
		sc(&s, &t, 23 * S + (uint64_t)(i + 1) * MS, "write", (struct rg_sc){ .ret = writes[i], .args = { 3, 0, 512 } });
	sc(&s, &t, 24 * S, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	fa = last(&s);
	cr_assert_str_eq(STR(fa, "path"), "/var/log/app.log");
	cr_assert_eq(I(fa, "bytes_out"), 1024);
	cr_assert_eq(I(fa, "ops_out"), 3);
	cr_assert_eq(I(fa, "bytes_in"), 0);
	cr_assert_eq(I(fa, "result"), -ENOSPC, "an I/O error is the outcome; EAGAIN is not");
	cr_assert(has(fa, "flags", "failed"));
	cr_assert(has(fa, "access", "write") && has(fa, "access", "create") && has(fa, "access", "append"));
	cr_assert_eq(I(fa, "mode"), 0644);

	/* denied open: a failed intent right away */
	sc(&s, &t, 25 * S, "openat", (struct rg_sc){ .ret = -EACCES, .args = { (uint64_t)-100, 0, O_RDWR | O_TRUNC }, .path = "/etc/shadow" });
	fa = last(&s);
	cr_assert_str_eq(STR(fa, "kind"), "FileAccess");
	cr_assert_str_eq(STR(fa, "path"), "/etc/shadow");
	cr_assert_eq(I(fa, "result"), -EACCES);
	cr_assert(has(fa, "flags", "failed"));
	cr_assert(has(fa, "access", "truncate") && has(fa, "access", "read") && has(fa, "access", "write"));
	cr_assert_eq(I(fa, "count"), 1);

	/* a shared library: mapped executable, creat() */
	sc(&s, &t, 26 * S, "openat", (struct rg_sc){ .ret = 4, .args = { (uint64_t)-100, 0, O_RDONLY }, .path = "/lib/libc.so.6" });
	sc(&s, &t, 26 * S + 1, "mmap", (struct rg_sc){ .ret = 0x7f0000000000, .args = { 0, 8192, 5, 2, 4, 0 } });
	sc(&s, &t, 26 * S + 2, "close", (struct rg_sc){ .ret = 0, .args = { 4 } });
	cr_assert(has(last(&s), "access", "exec"));
	sc(&s, &t, 27 * S, "creat", (struct rg_sc){ .ret = 5, .args = { 0, 0600 }, .path = "new.txt" });
	sc(&s, &t, 27 * S + 1, "close", (struct rg_sc){ .ret = 0, .args = { 5 } });
	cr_assert(has(last(&s), "access", "truncate") && has(last(&s), "access", "create"));
	cr_assert_str_eq(STR(last(&s), "path"), "/srv/new.txt");
	cr_assert_eq(count_kind(&s, "FileAccess"), 5);
	finish(&s, "file_access");
}

Test(golden, dup_close_orders_and_dup2_over_open)
{
	struct stream s;
	struct rg_task t = { .pid = 310, .ppid = 100, .start_ns = 20 * S, .comm = "w" };

	start(&s);
	proc(&s, &t, 20 * S, KL_PROC_SNAPSHOT, NULL, "/bin/w", "w\0", 2, "/", 0);
	/* dup: original closed first */
	sc(&s, &t, 21 * S, "open", (struct rg_sc){ .ret = 3, .args = { 0, O_WRONLY }, .path = "/a" });
	sc(&s, &t, 21 * S + 1, "dup", (struct rg_sc){ .ret = 4, .args = { 3 } });
	sc(&s, &t, 21 * S + 2, "write", (struct rg_sc){ .ret = 10, .args = { 3 } });
	sc(&s, &t, 21 * S + 3, "write", (struct rg_sc){ .ret = 20, .args = { 4 } });
	sc(&s, &t, 21 * S + 4, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_eq(count_kind(&s, "FileAccess"), 0, "one fd still refers to it");
	sc(&s, &t, 21 * S + 5, "write", (struct rg_sc){ .ret = 5, .args = { 4 } });
	sc(&s, &t, 21 * S + 6, "close", (struct rg_sc){ .ret = 0, .args = { 4 } });
	json_t *fa = last(&s);
	cr_assert_str_eq(STR(fa, "path"), "/a");
	cr_assert_eq(I(fa, "bytes_out"), 35);
	cr_assert_eq(I(fa, "count"), 7);

	/* dup2: the copy closed first */
	sc(&s, &t, 22 * S, "open", (struct rg_sc){ .ret = 3, .args = { 0, O_RDONLY }, .path = "/b" });
	sc(&s, &t, 22 * S + 1, "dup2", (struct rg_sc){ .ret = 5, .args = { 3, 5 } });
	sc(&s, &t, 22 * S + 2, "read", (struct rg_sc){ .ret = 7, .args = { 5 } });
	sc(&s, &t, 22 * S + 3, "close", (struct rg_sc){ .ret = 0, .args = { 5 } });
	cr_assert_eq(count_kind(&s, "FileAccess"), 1);
	sc(&s, &t, 22 * S + 4, "read", (struct rg_sc){ .ret = 3, .args = { 3 } });
	sc(&s, &t, 22 * S + 5, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	fa = last(&s);
	cr_assert_str_eq(STR(fa, "path"), "/b");
	cr_assert_eq(I(fa, "bytes_in"), 10);
	cr_assert_eq(count_kind(&s, "FileAccess"), 2);

	/* dup2 over an open fd ends what was there; F_DUPFD_CLOEXEC copies die at exec */
	sc(&s, &t, 23 * S, "open", (struct rg_sc){ .ret = 3, .args = { 0, O_RDONLY }, .path = "/c" });
	sc(&s, &t, 23 * S + 1, "open", (struct rg_sc){ .ret = 4, .args = { 0, O_WRONLY }, .path = "/d" });
	sc(&s, &t, 23 * S + 2, "write", (struct rg_sc){ .ret = 1, .args = { 4 } });
	sc(&s, &t, 23 * S + 3, "dup3", (struct rg_sc){ .ret = 4, .args = { 3, 4, O_CLOEXEC } });
	fa = last(&s);
	cr_assert_str_eq(STR(fa, "path"), "/d", "dup2 over fd 4 closes /d");
	cr_assert_eq(I(fa, "bytes_out"), 1);
	sc(&s, &t, 23 * S + 4, "fcntl", (struct rg_sc){ .ret = 9, .args = { 3, F_DUPFD_CLOEXEC, 5 } });
	sc(&s, &t, 23 * S + 5, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	sc(&s, &t, 23 * S + 6, "read", (struct rg_sc){ .ret = 2, .args = { 9 } });
	cr_assert_eq(count_kind(&s, "FileAccess"), 3, "fds 4 and 9 still refer to /c");
	proc(&s, &t, 24 * S, KL_PROC_EXEC, NULL, "/bin/true", "true\0", 5, NULL, 0);
	cr_assert_eq(count_kind(&s, "FileAccess"), 4, "exec closes the cloexec copies: /c ends");
	fa = nth(&s, "FileAccess", 3);
	cr_assert_str_eq(STR(fa, "path"), "/c");
	cr_assert_eq(I(fa, "bytes_in"), 2);
	/* close_range */
	sc(&s, &t, 25 * S, "open", (struct rg_sc){ .ret = 6, .args = { 0, O_RDONLY }, .path = "/e" });
	sc(&s, &t, 25 * S + 1, "open", (struct rg_sc){ .ret = 7, .args = { 0, O_RDONLY }, .path = "/f" });
	sc(&s, &t, 25 * S + 2, "close_range", (struct rg_sc){ .ret = 0, .args = { 3, ~0u, 0 } });
	cr_assert_eq(count_kind(&s, "FileAccess"), 6);
	finish(&s, "dup");
}

Test(golden, killed_with_open_fds_and_windows)
{
	struct stream s;
	struct kl_intentd_opts o = { .window_ns = 10 * S };
	struct rg_task t = { .pid = 320, .ppid = 100, .start_ns = 30 * S, .comm = "db" };
	struct sockaddr_in peer = rg_sin("10.1.1.1", 5432);

	start_opts(&s, &o);
	proc(&s, &t, 30 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/db", "db\0", 3, "/var/db", 0);
	sc(&s, &t, 31 * S, "openat", (struct rg_sc){ .ret = 3, .args = { (uint64_t)-100, 0, O_RDWR }, .path = "wal" });
	sc(&s, &t, 31 * S + 1, "socket", (struct rg_sc){ .ret = 4, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &t, 31 * S + 2, "connect", (struct rg_sc){ .ret = 0, .args = { 4 }, .sa = &peer, .salen = sizeof(peer) });
	sc(&s, &t, 31 * S + 3, "openat", (struct rg_sc){ .ret = 5, .args = { (uint64_t)-100, 0, O_RDONLY }, .path = "idle" });
	/* one write per second for 25 s: windows at 10 s emit "continuing" */
	uint64_t total = 0;
	for (int i = 0; i < 25; i++) {
		sc(&s, &t, (32 + (uint64_t)i) * S, "write", (struct rg_sc){ .ret = 100 + i, .args = { 3 } });
		sc(&s, &t, (32 + (uint64_t)i) * S + 1, "sendto", (struct rg_sc){ .ret = 10, .args = { 4 } });
		total += 100 + (uint64_t)i;
	}
	size_t cont = count_kind(&s, "FileAccess");
	cr_assert_eq(cont, 3, "wal twice (41 s, 51 s), idle once (its open)");
	json_t *c0 = nth(&s, "FileAccess", 0);
	cr_assert(has(c0, "flags", "continuing"));
	/* killed: everything still open comes out before the ProcessExit */
	proc(&s, &t, 57 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 9);
	json_t *px = last(&s);
	cr_assert_str_eq(STR(px, "kind"), "ProcessExit");
	cr_assert_eq(I(px, "signal"), 9);
	uint64_t sum = 0, sent = 0;
	size_t i, idle = 0;
	json_t *j;
	bool saw_exit_flag = false;
	json_array_foreach(s.all, i, j) {
		const char *k = STR(j, "kind");
		if (!strcmp(k, "FileAccess") && !strcmp(STR(j, "path"), "/var/db/wal")) {
			sum += (uint64_t)I(j, "bytes_out");
			if (has(j, "flags", "at_exit"))
				saw_exit_flag = true;
			else
				cr_assert(has(j, "flags", "continuing"));
		}
		if (!strcmp(k, "FileAccess") && !strcmp(STR(j, "path"), "/var/db/idle"))
			idle++;
		if (!strcmp(k, "NetworkExchange"))
			sent += (uint64_t)I(j, "bytes_out");
	}
	cr_assert(saw_exit_flag, "the last part of the wal access is flushed at exit");
	cr_assert_eq(sum, total, "window parts add up to the sum of write return values");
	cr_assert_eq(sent, 250);
	cr_assert_eq(idle, 1, "an idle fd emits once (its open), not every window");
	struct kl_intentd_stats st;
	kl_intentd_stats(s.id, &st);
	cr_assert_eq(st.open, 0, "nothing held after exit");
	cr_assert_eq(st.procs, 0);
	finish(&s, "killed_windows");
}

/* ---- network --------------------------------------------------------------------- */

Test(golden, network_exchanges)
{
	struct stream s;
	struct rg_task t = { .pid = 400, .ppid = 100, .start_ns = 40 * S, .comm = "curl" };
	struct rg_task srv = { .pid = 410, .ppid = 1, .start_ns = 41 * S, .comm = "nginx" };
	struct sockaddr_in web = rg_sin("93.184.216.34", 443), closed = rg_sin("127.0.0.1", 9),
			   any = rg_sin("0.0.0.0", 8080), client = rg_sin("192.168.1.9", 51000);
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	strcpy(un.sun_path, "/run/app.sock");

	start(&s);
	proc(&s, &t, 40 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/curl", "curl\0", 5, "/", 0);
	/* blocking connect, partial sends and receives */
	sc(&s, &t, 41 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET, SOCK_STREAM | SOCK_CLOEXEC } });
	sc(&s, &t, 41 * S + 1, "connect", (struct rg_sc){ .ret = 0, .args = { 3 }, .sa = &web, .salen = sizeof(web) });
	sc(&s, &t, 41 * S + 2, "sendto", (struct rg_sc){ .ret = 300, .args = { 3 } });
	sc(&s, &t, 41 * S + 3, "write", (struct rg_sc){ .ret = 17, .args = { 3 } });
	sc(&s, &t, 41 * S + 4, "recvfrom", (struct rg_sc){ .ret = 1448, .args = { 3 } });
	sc(&s, &t, 41 * S + 5, "read", (struct rg_sc){ .ret = -EAGAIN, .args = { 3 } });
	sc(&s, &t, 41 * S + 6, "recvmsg", (struct rg_sc){ .ret = 52, .args = { 3 } });
	sc(&s, &t, 42 * S, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	json_t *ne = last(&s);
	cr_assert_str_eq(STR(ne, "kind"), "NetworkExchange");
	cr_assert(has(ne, "flags", "connect"));
	cr_assert_str_eq(addr_of(ne, "peer_addr"), "93.184.216.34");
	cr_assert_eq(I(ne, "bytes_out"), 317);
	cr_assert_eq(I(ne, "bytes_in"), 1500);
	cr_assert_eq(I(ne, "ops_out"), 2);
	cr_assert_eq(I(ne, "ops_in"), 2);
	cr_assert_eq(I(ne, "family"), AF_INET);
	cr_assert_eq(I(ne, "sock_type"), SOCK_STREAM);
	cr_assert_eq(I(ne, "duration_ns"), (long long)(1 * S));
	cr_assert_eq(I(ne, "result"), 0);

	/* refused */
	sc(&s, &t, 43 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &t, 43 * S + 1, "connect", (struct rg_sc){ .ret = -ECONNREFUSED, .args = { 3 }, .sa = &closed, .salen = sizeof(closed) });
	sc(&s, &t, 43 * S + 2, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	ne = last(&s);
	cr_assert_eq(I(ne, "result"), -ECONNREFUSED);
	cr_assert(has(ne, "flags", "failed"));
	cr_assert_str_eq(addr_of(ne, "peer_addr"), "127.0.0.1");

	/* non-blocking connect, then close without a byte */
	sc(&s, &t, 44 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET6, SOCK_STREAM | SOCK_NONBLOCK } });
	sc(&s, &t, 44 * S + 1, "connect", (struct rg_sc){ .ret = -EINPROGRESS, .args = { 3 }, .sa = &v6, .salen = sizeof(v6) });
	sc(&s, &t, 44 * S + 2, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	ne = last(&s);
	cr_assert(has(ne, "flags", "async") && !has(ne, "flags", "failed"));
	cr_assert_eq(I(ne, "bytes_out") + I(ne, "bytes_in"), 0);
	cr_assert_str_eq(addr_of(ne, "peer_addr"), "2001:db8::1");
	cr_assert_eq(I(ne, "count"), 3);

	/* reset mid-exchange */
	sc(&s, &t, 45 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &t, 45 * S + 1, "connect", (struct rg_sc){ .ret = 0, .args = { 3 }, .sa = &web, .salen = sizeof(web) });
	sc(&s, &t, 45 * S + 2, "write", (struct rg_sc){ .ret = 5, .args = { 3 } });
	sc(&s, &t, 45 * S + 3, "read", (struct rg_sc){ .ret = -ECONNRESET, .args = { 3 } });
	sc(&s, &t, 45 * S + 4, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_eq(I(last(&s), "result"), -ECONNRESET);

	/* unix socket */
	sc(&s, &t, 46 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_UNIX, SOCK_STREAM } });
	sc(&s, &t, 46 * S + 1, "connect", (struct rg_sc){ .ret = 0, .args = { 3 }, .sa = &un, .salen = sizeof(un) });
	sc(&s, &t, 46 * S + 2, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_str_eq(STR(last(&s), "path"), "/run/app.sock");

	/* server side: bind + listen, accept, exchange; a failed bind */
	proc(&s, &srv, 41 * S, KL_PROC_SNAPSHOT, NULL, "/usr/sbin/nginx", "nginx\0", 6, "/", 0);
	sc(&s, &srv, 47 * S, "socket", (struct rg_sc){ .ret = 6, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &srv, 47 * S + 1, "bind", (struct rg_sc){ .ret = 0, .args = { 6 }, .sa = &any, .salen = sizeof(any) });
	sc(&s, &srv, 47 * S + 2, "listen", (struct rg_sc){ .ret = 0, .args = { 6, 511 } });
	json_t *nl = last(&s);
	cr_assert_str_eq(STR(nl, "kind"), "NetworkListen");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(nl, "local_addr"), "port")), 8080);
	cr_assert_eq(I(nl, "backlog"), 511);
	cr_assert_eq(I(nl, "count"), 3, "socket + bind + listen");
	sc(&s, &srv, 48 * S, "accept4", (struct rg_sc){ .ret = 7, .args = { 6, 0, 0, SOCK_CLOEXEC }, .sa2 = &client, .sa2len = sizeof(client) });
	sc(&s, &srv, 48 * S + 1, "recvfrom", (struct rg_sc){ .ret = 200, .args = { 7 } });
	sc(&s, &srv, 48 * S + 2, "writev", (struct rg_sc){ .ret = 4000, .args = { 7 } });
	sc(&s, &srv, 48 * S + 3, "close", (struct rg_sc){ .ret = 0, .args = { 7 } });
	ne = last(&s);
	cr_assert(has(ne, "flags", "accept"));
	cr_assert_str_eq(addr_of(ne, "peer_addr"), "192.168.1.9");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(ne, "local_addr"), "port")), 8080);
	cr_assert_eq(I(ne, "bytes_in"), 200);
	cr_assert_eq(I(ne, "bytes_out"), 4000);
	size_t before = json_array_size(s.all);
	sc(&s, &srv, 49 * S, "close", (struct rg_sc){ .ret = 0, .args = { 6 } });
	cr_assert_eq(json_array_size(s.all), before, "a listener's close adds nothing to its NetworkListen");
	sc(&s, &srv, 50 * S, "socket", (struct rg_sc){ .ret = 6, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &srv, 50 * S + 1, "bind", (struct rg_sc){ .ret = -EADDRINUSE, .args = { 6 }, .sa = &any, .salen = sizeof(any) });
	cr_assert_str_eq(STR(last(&s), "kind"), "NetworkListen");
	cr_assert_eq(I(last(&s), "result"), -EADDRINUSE);
	cr_assert_eq(count_kind(&s, "NetworkExchange"), 6);
	finish(&s, "network");
}

/* ---- DNS ------------------------------------------------------------------------------ */

static size_t dns_msg(uint8_t *b, uint16_t id, bool resp, uint8_t rcode, const char *name, uint16_t qtype,
		      const uint8_t (*a)[4], int na)
{
	size_t o = 12;
	memset(b, 0, 12);
	b[0] = (uint8_t)(id >> 8);
	b[1] = (uint8_t)id;
	b[2] = resp ? 0x81 : 0x01;
	b[3] = resp ? (uint8_t)(0x80 | rcode) : 0;
	b[5] = 1;
	b[7] = (uint8_t)na;
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		b[o++] = (uint8_t)l;
		memcpy(b + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	b[o++] = 0;
	b[o++] = 0;
	b[o++] = (uint8_t)qtype;
	b[o++] = 0;
	b[o++] = 1;
	for (int i = 0; i < na; i++) {
		static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4 };
		memcpy(b + o, rr, sizeof(rr));
		o += sizeof(rr);
		memcpy(b + o, a[i], 4);
		o += 4;
	}
	return o;
}

static void dns_rec(struct stream *s, const struct rg_task *t, uint64_t ts, bool egress, const uint8_t *msg,
		    size_t n)
{
	struct kl_dns d;
	struct kl_tail_builder b;

	memset(&d, 0, sizeof(d));
	rg_event(&d.ev, t, ++s->seq, ts);
	d.direction = egress ? KL_DIR_EGRESS : KL_DIR_INGRESS;
	d.proto = IPPROTO_UDP;
	d.family = AF_INET;
	uint8_t me[4] = { 10, 0, 0, 5 }, ns[4] = { 10, 0, 0, 2 };
	memcpy(egress ? d.saddr : d.daddr, me, 4);
	memcpy(egress ? d.daddr : d.saddr, ns, 4);
	d.sport = egress ? 40000 : 53;
	d.dport = egress ? 53 : 40000;
	d.msg_len = (uint32_t)n;
	memcpy(s->rec, &d, sizeof(d));
	kl_tail_init(&b, s->rec, sizeof(d), sizeof(s->rec));
	kl_tail_add(&b, KL_F_DATA, msg, n);
	feed(s, KL_REC_DNS, kl_tail_finish(&b));
}

Test(golden, dns_query_and_linked_connection)
{
	struct stream s;
	struct rg_task t = { .pid = 500, .ppid = 100, .start_ns = 50 * S, .cgroup_id = 4242, .comm = "curl" };
	static const uint8_t addrs[2][4] = { { 93, 184, 216, 34 }, { 93, 184, 216, 35 } };
	struct sockaddr_in web = rg_sin("93.184.216.35", 443), other = rg_sin("1.1.1.1", 443);
	uint8_t m[512];

	start(&s);
	proc(&s, &t, 50 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/curl", "curl\0example.com\0", 17, "/", 0);
	dns_rec(&s, &t, 51 * S, true, m, dns_msg(m, 0x1234, false, 0, "example.com", 1, NULL, 0));
	dns_rec(&s, &t, 51 * S + 20 * MS, false, m, dns_msg(m, 0x1234, true, 0, "example.com", 1, addrs, 2));
	json_t *dq = last(&s);
	cr_assert_str_eq(STR(dq, "kind"), "DNSQuery");
	cr_assert_str_eq(STR(dq, "dns_name"), "example.com");
	cr_assert_eq(I(dq, "qtype"), 1);
	cr_assert_eq(I(dq, "rcode"), 0);
	cr_assert_eq(I(dq, "answer_count"), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(dq, "dns_answers"), 1)), "93.184.216.35");
	cr_assert_str_eq(addr_of(dq, "peer_addr"), "10.0.0.2");
	cr_assert_eq(I(dq, "count"), 2);
	cr_assert_str_eq(STR(dq, "exe"), "/usr/bin/curl");
	long long dns_seq = I(dq, "seq");

	/* the connection that follows goes to an answer: linked */
	sc(&s, &t, 52 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &t, 52 * S + 1, "connect", (struct rg_sc){ .ret = -EINPROGRESS, .args = { 3 }, .sa = &web, .salen = sizeof(web) });
	sc(&s, &t, 52 * S + 2, "write", (struct rg_sc){ .ret = 77, .args = { 3 } });
	sc(&s, &t, 52 * S + 3, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	json_t *ne = last(&s);
	cr_assert(has(ne, "flags", "dns_linked"));
	cr_assert_eq(I(ne, "dns_intent_seq"), dns_seq);
	cr_assert_str_eq(STR(ne, "dns_name"), "example.com");
	/* one to an address no answer gave: not linked */
	sc(&s, &t, 53 * S, "socket", (struct rg_sc){ .ret = 3, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &t, 53 * S + 1, "connect", (struct rg_sc){ .ret = 0, .args = { 3 }, .sa = &other, .salen = sizeof(other) });
	sc(&s, &t, 53 * S + 2, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert(!has(last(&s), "flags", "dns_linked"));

	/* NXDOMAIN, a retransmitted query, and one that never gets an answer */
	dns_rec(&s, &t, 54 * S, true, m, dns_msg(m, 0x2222, false, 0, "nope.invalid", 28, NULL, 0));
	dns_rec(&s, &t, 54 * S + 500 * MS, true, m, dns_msg(m, 0x2222, false, 0, "nope.invalid", 28, NULL, 0));
	dns_rec(&s, &t, 54 * S + 600 * MS, false, m, dns_msg(m, 0x2222, true, 3, "nope.invalid", 28, NULL, 0));
	dq = last(&s);
	cr_assert_eq(I(dq, "rcode"), 3);
	cr_assert_eq(I(dq, "result"), -ENOENT);
	cr_assert_eq(I(dq, "qtype"), 28);
	cr_assert_eq(I(dq, "count"), 3);
	cr_assert(has(dq, "flags", "failed"));
	dns_rec(&s, &t, 55 * S, true, m, dns_msg(m, 0x3333, false, 0, "slow.example", 1, NULL, 0));
	size_t n = count_kind(&s, "DNSQuery");
	sc(&s, &t, 61 * S, "getpid", (struct rg_sc){ .ret = 500 });
	cr_assert_eq(count_kind(&s, "DNSQuery"), n + 1, "the timeout passed by event time");
	dq = last(&s);
	cr_assert(has(dq, "flags", "timeout"));
	cr_assert_eq(I(dq, "result"), -ETIMEDOUT);
	/* garbage in a DNS record is counted, not fatal */
	memset(m, 0xff, 40);
	dns_rec(&s, &t, 62 * S, false, m, 40);
	struct kl_intentd_stats st;
	kl_intentd_stats(s.id, &st);
	cr_assert_eq(st.dns_unparsed, 1);
	cr_assert_eq(st.dns_linked, 1);
	finish(&s, "dns");
}

/* ---- one-event kinds ------------------------------------------------------------------------ */

Test(golden, meta_privilege_namespace_and_more)
{
	struct stream s;
	struct rg_task t = { .pid = 600, .ppid = 100, .start_ns = 60 * S, .comm = "tool" };
	int32_t pfds[2] = { 5, 6 }, spfds[2] = { 7, 8 };

	start(&s);
	proc(&s, &t, 60 * S, KL_PROC_SNAPSHOT, NULL, "/usr/bin/tool", "tool\0", 5, "/work", 0);
	sc(&s, &t, 61 * S, "rename", (struct rg_sc){ .ret = 0, .path = "a.tmp", .path2 = "a" });
	json_t *m = last(&s);
	cr_assert_str_eq(STR(m, "kind"), "FileMetaChange");
	cr_assert_str_eq(STR(m, "op"), "rename");
	cr_assert_str_eq(STR(m, "path"), "/work/a.tmp");
	cr_assert_str_eq(STR(m, "path2"), "/work/a");
	sc(&s, &t, 61 * S + 1, "unlink", (struct rg_sc){ .ret = -ENOENT, .path = "gone" });
	cr_assert_eq(I(last(&s), "result"), -ENOENT);
	sc(&s, &t, 61 * S + 2, "mkdir", (struct rg_sc){ .ret = 0, .path = "d", .args = { 0, 0750 } });
	cr_assert_eq(I(last(&s), "mode"), 0750);
	sc(&s, &t, 61 * S + 3, "unlinkat", (struct rg_sc){ .ret = 0, .path = "d", .args = { (uint64_t)-100, 0, 0x200 } });
	cr_assert_str_eq(STR(last(&s), "op"), "rmdir");
	sc(&s, &t, 61 * S + 4, "rmdir", (struct rg_sc){ .ret = 0, .path = "/tmp/x" });
	sc(&s, &t, 61 * S + 5, "link", (struct rg_sc){ .ret = 0, .path = "a", .path2 = "b" });
	sc(&s, &t, 61 * S + 6, "symlink", (struct rg_sc){ .ret = 0, .path = "../target", .path2 = "ln" });
	cr_assert_str_eq(STR(last(&s), "path"), "/work/ln");
	cr_assert_str_eq(STR(last(&s), "path2"), "../target");
	sc(&s, &t, 61 * S + 7, "chmod", (struct rg_sc){ .ret = 0, .path = "a", .args = { 0, 04755 } });
	cr_assert_eq(I(last(&s), "mode"), 04755);
	sc(&s, &t, 61 * S + 8, "fchownat", (struct rg_sc){ .ret = 0, .path = "a", .args = { (uint64_t)-100, 0, 0, 0 } });
	cr_assert_eq(I(last(&s), "uid"), 0);
	sc(&s, &t, 61 * S + 9, "truncate", (struct rg_sc){ .ret = 0, .path = "a", .args = { 0, 4096 } });
	cr_assert_eq(I(last(&s), "length"), 4096);
	sc(&s, &t, 61 * S + 10, "mknod", (struct rg_sc){ .ret = -EPERM, .path = "/dev/sdx", .args = { 0, 060600 } });
	sc(&s, &t, 61 * S + 11, "openat", (struct rg_sc){ .ret = 3, .args = { (uint64_t)-100, 0, O_WRONLY }, .path = "f" });
	sc(&s, &t, 61 * S + 12, "ftruncate", (struct rg_sc){ .ret = 0, .args = { 3, 0 } });
	cr_assert_str_eq(STR(last(&s), "path"), "/work/f");
	sc(&s, &t, 61 * S + 13, "fchmod", (struct rg_sc){ .ret = 0, .args = { 3, 0600 } });
	sc(&s, &t, 61 * S + 14, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_eq(I(last(&s), "ops_other"), 2);
	cr_assert_eq(count_kind(&s, "FileMetaChange"), 13);

	sc(&s, &t, 62 * S, "setuid", (struct rg_sc){ .ret = 0, .args = { 0 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "PrivilegeChange");
	sc(&s, &t, 62 * S + 1, "setresgid", (struct rg_sc){ .ret = -EPERM, .args = { 0, 0, 0 } });
	sc(&s, &t, 62 * S + 2, "setgroups", (struct rg_sc){ .ret = 0, .args = { 0 } });
	sc(&s, &t, 62 * S + 3, "capset", (struct rg_sc){ .ret = 0 });
	sc(&s, &t, 62 * S + 4, "setfsuid", (struct rg_sc){ .ret = 1000, .args = { 0 } });
	cr_assert_eq(I(last(&s), "result"), 0);
	cr_assert_eq(count_kind(&s, "PrivilegeChange"), 5);

	sc(&s, &t, 63 * S, "unshare", (struct rg_sc){ .ret = 0, .args = { 0x20000000 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "NamespaceChange");
	sc(&s, &t, 63 * S + 1, "mount", (struct rg_sc){ .ret = 0, .path = "proc", .path2 = "/proc" });
	sc(&s, &t, 63 * S + 2, "umount2", (struct rg_sc){ .ret = 0, .path = "/mnt" });
	sc(&s, &t, 63 * S + 3, "pivot_root", (struct rg_sc){ .ret = 0, .path = ".", .path2 = "old" });
	sc(&s, &t, 63 * S + 4, "chroot", (struct rg_sc){ .ret = 0, .path = "/jail" });
	cr_assert_str_eq(STR(last(&s), "path"), "/jail");
	sc(&s, &t, 63 * S + 5, "setns", (struct rg_sc){ .ret = -EPERM, .args = { 9, 0 } });
	cr_assert_eq(count_kind(&s, "NamespaceChange"), 6);

	sc(&s, &t, 64 * S, "finit_module", (struct rg_sc){ .ret = -EPERM, .args = { 3 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "ModuleLoad");
	sc(&s, &t, 64 * S + 1, "bpf", (struct rg_sc){ .ret = 7, .args = { 5 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "BPFLoad");
	cr_assert_eq(I(last(&s), "cmd"), 5);
	size_t before = json_array_size(s.all);
	sc(&s, &t, 64 * S + 2, "bpf", (struct rg_sc){ .ret = 0, .args = { 1 } });   /* map lookup */
	sc(&s, &t, 64 * S + 3, "ptrace", (struct rg_sc){ .ret = 0, .args = { 2, 700 } });   /* PEEKDATA */
	sc(&s, &t, 64 * S + 4, "kill", (struct rg_sc){ .ret = 0, .args = { 700, 0 } });    /* probe */
	sc(&s, &t, 64 * S + 5, "kill", (struct rg_sc){ .ret = 0, .args = { 600, 15 } });   /* itself */
	cr_assert_eq(json_array_size(s.all), before, "lookups, peeks, probes and self-signals are not intents");
	sc(&s, &t, 64 * S + 6, "ptrace", (struct rg_sc){ .ret = 0, .args = { 16, 700 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "Ptrace");
	cr_assert_eq(I(last(&s), "target_pid"), 700);
	sc(&s, &t, 64 * S + 7, "kill", (struct rg_sc){ .ret = 0, .args = { 700, 9 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "Signal");
	cr_assert_eq(I(last(&s), "signal"), 9);
	sc(&s, &t, 64 * S + 8, "tgkill", (struct rg_sc){ .ret = -ESRCH, .args = { 701, 702, 15 } });
	cr_assert_eq(I(last(&s), "target_tid"), 702);

	sc(&s, &t, 65 * S, "pipe2", (struct rg_sc){ .ret = 0, .fds = pfds, .args = { 0, O_CLOEXEC } });
	cr_assert_str_eq(STR(last(&s), "kind"), "IPC");
	cr_assert_eq(I(last(&s), "fd1"), 6);
	sc(&s, &t, 65 * S + 1, "socketpair", (struct rg_sc){ .ret = 0, .fds = spfds, .args = { AF_UNIX, SOCK_STREAM } });
	cr_assert_eq(I(last(&s), "sock_type"), SOCK_STREAM);
	before = json_array_size(s.all);
	sc(&s, &t, 65 * S + 2, "write", (struct rg_sc){ .ret = 3, .args = { 6 } });
	sc(&s, &t, 65 * S + 3, "close", (struct rg_sc){ .ret = 0, .args = { 6 } });
	cr_assert_eq(json_array_size(s.all), before, "pipe traffic is not a FileAccess");

	/* memfd + exec of it */
	sc(&s, &t, 66 * S, "memfd_create", (struct rg_sc){ .ret = 9, .path = "payload", .args = { 0, 0 } });
	sc(&s, &t, 66 * S + 1, "write", (struct rg_sc){ .ret = 12345, .args = { 9 } });
	feed(&s, KL_REC_PROC, rg_proc(s.rec, sizeof(s.rec), &t, ++s.seq, 67 * S, KL_PROC_EXEC, NULL,
				      "/memfd:payload (deleted)", "x\0", 2, NULL, 0));
	json_t *em = last(&s);
	cr_assert_str_eq(STR(em, "kind"), "ExecFromMemory");
	cr_assert_str_eq(STR(em, "path"), "/memfd:payload (deleted)");
	cr_assert_eq(count_kind(&s, "ProcessStart"), 2);
	proc(&s, &t, 68 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 0);
	json_t *fa = nth(&s, "FileAccess", 1);
	cr_assert_str_eq(STR(fa, "path"), "memfd:payload");
	cr_assert_eq(I(fa, "bytes_out"), 12345);
	cr_assert(has(fa, "flags", "at_exit"));
	finish(&s, "misc");
}

Test(golden, inherited_fds_and_containers)
{
	struct stream s;
	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 7777, .init_pid = 900,
			      .mnt_ns = 4026532000u, .id = "c0ffee", .name = "web", .image = "nginx:1.25",
			      .pod = "web-0", .pod_ns = "shop", .pod_uid = "uid-1" };
	struct rg_task p = { .pid = 900, .ppid = 800, .start_ns = 70 * S, .cgroup_id = 7777,
			     .mnt_ns = 4026532000u, .comm = "nginx" };
	struct rg_task c = { .pid = 901, .ppid = 900, .start_ns = 71 * S, .cgroup_id = 7777,
			     .mnt_ns = 4026532000u, .comm = "nginx" };

	start(&s);
	feed(&s, KL_REC_CONTAINER, rg_container(s.rec, sizeof(s.rec), ++s.seq, 70 * S, &ctr));
	proc(&s, &p, 70 * S, KL_PROC_SNAPSHOT, NULL, "/usr/sbin/nginx", "nginx\0", 6, "/", 0);
	sc(&s, &p, 70 * S + 1, "openat", (struct rg_sc){ .ret = 4, .args = { (uint64_t)-100, 0, O_WRONLY | O_APPEND }, .path = "/var/log/access.log" });
	/* the child inherits fd 4: it is folded in the child, marked inherited */
	proc(&s, &c, 71 * S, KL_PROC_FORK, &p, NULL, NULL, 0, NULL, 0);
	sc(&s, &c, 71 * S + 1, "write", (struct rg_sc){ .ret = 80, .args = { 4 } });
	sc(&s, &c, 71 * S + 2, "write", (struct rg_sc){ .ret = 81, .args = { 4 } });
	sc(&s, &c, 71 * S + 3, "close", (struct rg_sc){ .ret = 0, .args = { 4 } });
	json_t *fa = last(&s);
	cr_assert_str_eq(STR(fa, "path"), "/var/log/access.log");
	cr_assert(has(fa, "flags", "inherited"));
	cr_assert_eq(I(fa, "pid"), 901);
	cr_assert_eq(I(fa, "bytes_out"), 161);
	cr_assert_str_eq(STR(fa, "container_id"), "c0ffee");
	cr_assert_str_eq(STR(fa, "pod_name"), "web-0");
	cr_assert_str_eq(STR(fa, "image"), "nginx:1.25");
	cr_assert_eq(I(fa, "ctr_cgroup_id"), 7777);
	cr_assert_str_eq(STR(fa, "parent_exe"), "/usr/sbin/nginx");
	proc(&s, &c, 72 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 0);
	proc(&s, &p, 73 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 0);
	fa = nth(&s, "FileAccess", 1);
	cr_assert_eq(I(fa, "pid"), 900);
	cr_assert(has(fa, "flags", "at_exit"));
	cr_assert_eq(I(nth(&s, "ProcessExit", 1), "children"), 1);
	/* a late event of an exited process creates no state */
	sc(&s, &p, 74 * S, "read", (struct rg_sc){ .ret = 5, .args = { 4 } });
	struct kl_intentd_stats st;
	kl_intentd_stats(s.id, &st);
	cr_assert_eq(st.procs, 0);
	cr_assert_eq(st.open, 0);
	/* shutdown flush */
	sc(&s, &c, 80 * S, "openat", (struct rg_sc){ .ret = 3, .args = { (uint64_t)-100, 0, O_RDONLY }, .path = "/x" });
	cr_assert_eq(kl_intentd_flush(s.id), 1);
	cr_assert(has(last(&s), "flags", "shutdown"));
	finish(&s, "inherited");
}

/* ---- bounds ---------------------------------------------------------------------------------- */

static int count_cb(void *ctx, const void *rec, size_t len)
{
	(void)rec;
	(void)len;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* A runtime's init (forked into the container's pid namespace, not exec'd yet): its intents say so, until the exec. */
Test(bounds, runtime_init_intents_are_marked_until_exec)
{
	struct stream s;
	struct rg_task runc = { .pid = 700, .ppid = 1, .start_ns = 10 * S, .cgroup_id = 1, .comm = "runc" };
	struct rg_task init = { .pid = 710, .ppid = 700, .start_ns = 11 * S, .cgroup_id = 1, .comm = "runc:[2:INIT]" };
	size_t n;

	start(&s);
	proc(&s, &runc, 10 * S, KL_PROC_EXEC, NULL, "/usr/sbin/runc", "runc\0exec", 9, "/", 0);
	n = rg_proc(s.rec, sizeof(s.rec), &init, ++s.seq, 11 * S, KL_PROC_FORK, &runc, NULL, NULL, 0, NULL, 0);
	((struct kl_proc *)s.rec)->ev.flags |= KL_EV_NEW_PIDNS;
	feed(&s, KL_REC_PROC, n);
	sc(&s, &init, 11 * S + 1, "setns", (struct rg_sc){ .ret = 0, .args = { 5, 0x20000 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "NamespaceChange");
	cr_assert(has(last(&s), "flags", "runtime_init"), "the runtime's setns");
	sc(&s, &init, 11 * S + 2, "openat", (struct rg_sc){ .ret = 3, .path = "/proc/sys/kernel/cap_last_cap" });
	sc(&s, &init, 11 * S + 3, "read", (struct rg_sc){ .ret = 3, .args = { 3 } });
	sc(&s, &init, 11 * S + 4, "close", (struct rg_sc){ .ret = 0, .args = { 3 } });
	cr_assert_str_eq(STR(last(&s), "kind"), "FileAccess");
	cr_assert(has(last(&s), "flags", "runtime_init"), "a file the runtime read while setting up");
	proc(&s, &init, 12 * S, KL_PROC_EXEC, NULL, "/bin/busybox", "id", 2, "/", 0);
	cr_assert_str_eq(STR(last(&s), "kind"), "ProcessStart");
	cr_assert_not(has(last(&s), "flags", "runtime_init"), "the command it runs is the workload");
	sc(&s, &init, 12 * S + 1, "setns", (struct rg_sc){ .ret = 0, .args = { 5, 0x20000 } });
	cr_assert_not(has(last(&s), "flags", "runtime_init"));
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_intentd_free(s.id);
	kl_enricher_free(s.en);
}

Test(bounds, caps_evict_and_count)
{
	struct kl_intentd_opts o = { .max_procs = 64, .max_open = 256, .max_fds_per_proc = 64, .max_dns_pending = 8 };
	struct kl_enricher *en;
	struct kl_intentd *id;
	uint64_t emitted = 0, seq = 0;
	static uint8_t rec[8192], out[65536];
	struct kl_intentd_stats st;

	cr_assert_eq(kl_enricher_new(NULL, &en), 0);
	cr_assert_eq(kl_intentd_new(&o, count_cb, &emitted, &id), 0);
	for (uint32_t p = 0; p < 1000; p++) {
		struct rg_task t = { .pid = 10000 + p, .ppid = 1, .start_ns = p + 1, .comm = "x" };
		for (int f = 0; f < 20; f++) {
			struct rg_sc c = { .nr = 2, .ret = 3 + f * 5, .path = "/tmp/f" };
			seq++;
			size_t n = rg_syscall(rec, sizeof(rec), &t, seq, seq * 1000, &c);
			long m = kl_enricher_process(en, KL_REC_SYSCALL, rec, n, out, sizeof(out));
			cr_assert_gt(m, 0);
			cr_assert_geq(kl_intentd_process(id, KL_REC_ENRICHED, out, (size_t)m), 0);
		}
		kl_intentd_stats(id, &st);
		cr_assert_leq(st.procs, 64);
		cr_assert_leq(st.open, 256);
	}
	kl_intentd_stats(id, &st);
	cr_assert_gt(st.procs_evicted, 0);
	cr_assert_gt(st.fd_untracked, 0, "fds >= 64 are counted, not tracked");
	cr_assert_gt(st.open_evicted + st.procs_evicted, 0);
	/* every open ends up as exactly one intent: emitted (evicted, untracked) or still held */
	cr_assert_eq(emitted + st.open, 20000, "emitted %llu + open %llu", (unsigned long long)emitted,
		     (unsigned long long)st.open);
	kl_intentd_flush(id);
	cr_assert_eq(emitted, 20000);
	kl_intentd_free(id);
	kl_enricher_free(en);
}

Test(bounds, invalid_records)
{
	struct kl_intentd *id;
	uint64_t emitted = 0;
	uint8_t junk[300];

	cr_assert_eq(kl_intentd_new(NULL, count_cb, &emitted, &id), 0);
	memset(junk, 0xee, sizeof(junk));
	cr_assert_eq(kl_intentd_process(id, KL_REC_ENRICHED, junk, sizeof(junk)), -EBADMSG);
	cr_assert_eq(kl_intentd_process(id, KL_REC_ENRICHED, junk, 10), -EBADMSG);
	cr_assert_eq(kl_intentd_process(id, KL_REC_SYSCALL, junk, sizeof(junk)), 0, "other types are ignored");
	cr_assert_eq(kl_intentd_new(NULL, NULL, NULL, &id), -EINVAL);
	kl_intentd_free(NULL);
	kl_intentd_free(id);
	cr_assert_eq(emitted, 0);
}

Test(bounds, tick_fires_windows_and_dns_timeouts_without_events)
{
	struct stream s;
	struct rg_task t = { .pid = 700, .ppid = 1, .start_ns = 1 * S, .comm = "quiet" };
	uint8_t m[256];

	start(&s);
	proc(&s, &t, 1 * S, KL_PROC_SNAPSHOT, NULL, "/bin/quiet", "quiet\0", 6, "/", 0);
	sc(&s, &t, 2 * S, "openat", (struct rg_sc){ .ret = 3, .args = { (uint64_t)-100, 0, O_WRONLY }, .path = "/log" });
	sc(&s, &t, 2 * S + 1, "write", (struct rg_sc){ .ret = 42, .args = { 3 } });
	dns_rec(&s, &t, 2 * S + 2, true, m, dns_msg(m, 7, false, 0, "q.example", 1, NULL, 0));
	cr_assert_eq(kl_intentd_tick(s.id, 5 * S), 0, "nothing is due yet");
	cr_assert_eq(kl_intentd_tick(s.id, 8 * S), 1, "the DNS query timed out");
	cr_assert(has(last(&s), "flags", "timeout"));
	cr_assert_eq(kl_intentd_tick(s.id, 12 * S), 1, "the open file's window closed");
	cr_assert(has(last(&s), "flags", "continuing"));
	cr_assert_eq(I(last(&s), "bytes_out"), 42);
	cr_assert_eq(kl_intentd_tick(s.id, 3 * S), 0, "time never goes back");
	cr_assert_eq(kl_intentd_tick(s.id, 40 * S), 0, "an idle fd is not re-emitted");
	json_decref(s.all);
	kl_buf_free(&s.out);
	kl_intentd_free(s.id);
	kl_enricher_free(s.en);
}

static int validate_cb(void *ctx, const void *rec, size_t len)
{
	cr_assert_eq(kl_rec_validate(KL_REC_INTENT, rec, len), KL_REC_OK, "invalid intent");
	(*(uint64_t *)ctx)++;
	return 0;
}

/*
 * Random syscall soup (run under ASan/UBSan): fds, return values, dups,
 * closes, execs, forks and exits in any order must never crash, every
 * intent must be a valid record, and once every process has exited
 * nothing may be held.
 */
Test(bounds, random_streams_hold_nothing_after_exit)
{
	static const char *const calls[] = { "open", "openat", "read", "write", "close", "dup", "dup2", "dup3",
					     "fcntl", "socket", "connect", "accept4", "bind", "listen", "sendto",
					     "recvfrom", "pipe2", "socketpair", "close_range", "mmap", "sendfile",
					     "splice", "rename", "kill", "memfd_create", "ftruncate", "lseek" };
	struct kl_intentd_opts o = { .max_procs = 32, .max_open = 128, .max_fds_per_proc = 32, .window_ns = 2 * S };
	struct kl_enricher *en;
	struct kl_intentd *id;
	uint64_t emitted = 0, seq = 0, ts = S, x = 0x9e3779b97f4a7c15ull;
	static uint8_t rec[8192], out[65536];
	struct sockaddr_in sa = rg_sin("10.0.0.1", 80);
	uint32_t nrs[sizeof(calls) / sizeof(calls[0])];
	bool alive[40] = { 0 };

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		nrs[i] = nr(calls[i]);
	cr_assert_eq(kl_enricher_new(NULL, &en), 0);
	cr_assert_eq(kl_intentd_new(&o, validate_cb, &emitted, &id), 0);
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
	for (int i = 0; i < 200000; i++) {
		uint32_t who = (uint32_t)(RND() % 40);
		struct rg_task t = { .pid = 2000 + who, .ppid = 1, .start_ns = who + 1, .cgroup_id = who % 3,
				     .comm = "rnd" };
		size_t n;
		uint16_t type = KL_REC_SYSCALL;
		ts += RND() % (S / 50);
		seq++;
		uint64_t r = RND() % 100;
		if (!alive[who] || r < 2) {
			n = rg_proc(rec, sizeof(rec), &t, seq, ts, alive[who] ? KL_PROC_EXEC : KL_PROC_SNAPSHOT,
				    NULL, "/bin/rnd", "rnd\0", 4, "/", 0);
			type = KL_REC_PROC;
			alive[who] = true;
		} else if (r < 4) {
			n = rg_proc(rec, sizeof(rec), &t, seq, ts, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL,
				    (int32_t)(RND() % 256));
			type = KL_REC_PROC;
			alive[who] = false;
		} else {
			int32_t fds[2] = { (int32_t)(RND() % 40), (int32_t)(RND() % 40) };
			struct rg_sc c = { .nr = nrs[RND() % (sizeof(nrs) / sizeof(nrs[0]))],
					   .ret = (int64_t)(RND() % 50) - 10,
					   .args = { RND() % 40, RND() % 40, RND() % 4 == 0 ? O_CLOEXEC : RND() % 40,
						     RND() % 8, RND() % 40 - 2, 0 },
					   .path = RND() % 2 ? "/tmp/p" : "rel/q", .path2 = "/tmp/z",
					   .sa = RND() % 2 ? &sa : NULL, .salen = sizeof(sa), .fds = fds };
			n = rg_syscall(rec, sizeof(rec), &t, seq, ts, &c);
		}
		long m = kl_enricher_process(en, type, rec, n, out, sizeof(out));
		cr_assert_gt(m, 0);
		cr_assert_geq(kl_intentd_process(id, KL_REC_ENRICHED, out, (size_t)m), 0);
	}
	/* everyone exits */
	for (uint32_t who = 0; who < 40; who++) {
		struct rg_task t = { .pid = 2000 + who, .ppid = 1, .start_ns = who + 1, .comm = "rnd" };
		if (!alive[who])
			continue;
		size_t n = rg_proc(rec, sizeof(rec), &t, ++seq, ts, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL, 0);
		long m = kl_enricher_process(en, KL_REC_PROC, rec, n, out, sizeof(out));
		cr_assert_geq(kl_intentd_process(id, KL_REC_ENRICHED, out, (size_t)m), 0);
	}
#undef RND
	struct kl_intentd_stats st;
	kl_intentd_stats(id, &st);
	cr_assert_gt(emitted, 1000);
	cr_assert_eq(st.open, 0, "%llu open descriptions left", (unsigned long long)st.open);
	cr_assert_eq(st.procs, 0, "%llu processes left", (unsigned long long)st.procs);
	kl_intentd_free(id);
	kl_enricher_free(en);
}
