/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl-enricher engine: golden streams (raw records in -> JSON lines out,
 * compared with tests/enricher/golden/NAME.jsonl; KL_UPDATE_GOLDEN=1
 * rewrites them) plus direct assertions on what each scenario is about,
 * so a blindly regenerated golden file cannot hide a regression.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kloudlens/recutil.h>

#include "../common/golden.h"
#include "../common/rawgen.h"
#include "enrich.h"

#define S 1000000000ull

struct stream {
	struct kl_enricher *e;
	uint64_t seq;
	struct kl_buf out;     /* JSON lines */
	json_t *last;          /* last enriched record, parsed */
	uint8_t rec[16384];
	uint8_t en[65536];
};

static void feed(struct stream *s, uint16_t type, size_t len)
{
	long n = kl_enricher_process(s->e, type, s->rec, len, s->en, sizeof(s->en));
	cr_assert_gt(n, 0, "process: %ld", n);
	cr_assert_eq(kl_rec_validate(KL_REC_ENRICHED, s->en, (size_t)n), KL_REC_OK, "enriched record invalid");
	size_t start = s->out.len;
	kl_rec_to_json(&s->out, KL_REC_ENRICHED, s->en, (size_t)n, UINT64_MAX);
	kl_buf_putc(&s->out, '\n');
	json_decref(s->last);
	s->last = json_loadb(s->out.p + start, s->out.len - start, 0, NULL);
	cr_assert_not_null(s->last);
}

static void sc(struct stream *s, const struct rg_task *t, uint64_t ts, struct rg_sc c)
{
	feed(s, KL_REC_SYSCALL, rg_syscall(s->rec, sizeof(s->rec), t, ++s->seq, ts, &c));
}

static void proc(struct stream *s, const struct rg_task *t, uint64_t ts, uint32_t kind,
		 const struct rg_task *parent, const char *exe, const char *argv, size_t argv_len,
		 const char *cwd)
{
	feed(s, KL_REC_PROC, rg_proc(s->rec, sizeof(s->rec), t, ++s->seq, ts, kind, parent, exe, argv,
				     argv_len, cwd, 0));
}

static const char *str(struct stream *s, const char *key)
{
	return json_string_value(json_object_get(s->last, key));
}

static void start(struct stream *s)
{
	memset(s, 0, sizeof(*s));
	cr_assert_eq(kl_enricher_new(NULL, &s->e), 0);
}

static void finish(struct stream *s, const char *name)
{
	golden_check("enricher", name, s->out.p, s->out.len);
	json_decref(s->last);
	kl_buf_free(&s->out);
	kl_enricher_free(s->e);
}

static const struct rg_task shell = { .pid = 100, .ppid = 1, .start_ns = 5 * S, .uid = 1000, .gid = 1000,
				      .mnt_ns = 4026531841u, .comm = "sh" };

Test(golden, pid_reuse_and_late_events)
{
	struct stream s;
	struct rg_task old = { .pid = 200, .ppid = 100, .start_ns = 10 * S, .uid = 1000, .comm = "old" };
	struct rg_task reuse = { .pid = 200, .ppid = 100, .start_ns = 60 * S, .uid = 1000, .comm = "new" };

	start(&s);
	proc(&s, &shell, 6 * S, KL_PROC_SNAPSHOT, NULL, "/bin/sh", "sh\0", 3, "/home/u");
	proc(&s, &old, 10 * S, KL_PROC_FORK, &shell, NULL, NULL, 0, NULL);
	proc(&s, &old, 10 * S + 1, KL_PROC_EXEC, NULL, "/usr/bin/old", "old\0-v\0", 7, NULL);
	sc(&s, &old, 11 * S, (struct rg_sc){ .nr = 257, .ret = 3, .args = { (uint64_t)-100 }, .path = "secret.txt" });
	proc(&s, &old, 12 * S, KL_PROC_EXIT, NULL, NULL, NULL, 0, NULL);
	/* a late read inside the grace period still resolves, marked exited */
	sc(&s, &old, 13 * S, (struct rg_sc){ .nr = 0, .ret = 10, .args = { 3 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/home/u/secret.txt");
	cr_assert(json_is_true(json_object_get(s.last, "exited")));
	/* pid 200 reused a minute later: nothing of the old process leaks */
	proc(&s, &reuse, 60 * S, KL_PROC_FORK, &shell, NULL, NULL, 0, NULL);
	proc(&s, &reuse, 60 * S + 1, KL_PROC_EXEC, NULL, "/usr/bin/new", "new\0", 4, NULL);
	sc(&s, &reuse, 61 * S, (struct rg_sc){ .nr = 0, .ret = 10, .args = { 3 } });
	cr_assert_str_eq(str(&s, "exe"), "/usr/bin/new");
	cr_assert_null(json_object_get(s.last, "fd_path"), "fd of the dead process leaked into the new one");
	cr_assert_str_eq(str(&s, "parent_exe"), "/bin/sh");
	finish(&s, "pid_reuse");
}

Test(golden, fd_reuse_dup2_cloexec)
{
	struct stream s;
	struct rg_task t = { .pid = 300, .ppid = 100, .start_ns = 20 * S, .comm = "w" };

	start(&s);
	proc(&s, &shell, 6 * S, KL_PROC_SNAPSHOT, NULL, "/bin/sh", "sh\0", 3, "/");
	proc(&s, &t, 20 * S, KL_PROC_FORK, &shell, NULL, NULL, 0, NULL);
	/* fd reuse after close */
	sc(&s, &t, 21 * S, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/a" });
	sc(&s, &t, 22 * S, (struct rg_sc){ .nr = 3, .ret = 0, .args = { 3 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/a", "close must describe the fd it closes");
	sc(&s, &t, 23 * S, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/b" });
	sc(&s, &t, 24 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 3 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/b");
	/* dup2 over an open fd */
	sc(&s, &t, 25 * S, (struct rg_sc){ .nr = 2, .ret = 4, .path = "/c" });
	sc(&s, &t, 26 * S, (struct rg_sc){ .nr = 33, .ret = 4, .args = { 3, 4 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/b");
	cr_assert_str_eq(str(&s, "fd2_path"), "/c", "dup2 should show what it replaces");
	sc(&s, &t, 27 * S, (struct rg_sc){ .nr = 1, .ret = 1, .args = { 4 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/b");
	/* fcntl F_DUPFD_CLOEXEC, O_CLOEXEC open, exec closes both */
	sc(&s, &t, 28 * S, (struct rg_sc){ .nr = 72, .ret = 7, .args = { 3, 1030, 5 } });
	sc(&s, &t, 29 * S, (struct rg_sc){ .nr = 2, .ret = 8, .path = "/d", .args = { 0, O_RDONLY | O_CLOEXEC } });
	proc(&s, &t, 30 * S, KL_PROC_EXEC, NULL, "/bin/cat", "cat\0", 4, NULL);
	sc(&s, &t, 31 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 7 } });
	cr_assert_null(json_object_get(s.last, "fd_path"), "O_CLOEXEC dup survived exec");
	sc(&s, &t, 32 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 8 } });
	cr_assert_null(json_object_get(s.last, "fd_path"), "O_CLOEXEC fd survived exec");
	sc(&s, &t, 33 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 4 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/b", "a plain fd must survive exec");
	/* close_range with CLOSE_RANGE_CLOEXEC marks, does not close */
	sc(&s, &t, 34 * S, (struct rg_sc){ .nr = 436, .ret = 0, .args = { 3, ~0ull, 4 } });
	sc(&s, &t, 35 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 3 } });
	cr_assert_str_eq(str(&s, "fd_path"), "/b");
	proc(&s, &t, 36 * S, KL_PROC_EXEC, NULL, "/bin/true", "true\0", 5, NULL);
	sc(&s, &t, 37 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 3 } });
	cr_assert_null(json_object_get(s.last, "fd_path"));
	finish(&s, "fd_tables");
}

Test(golden, relative_paths_and_at_calls)
{
	struct stream s;
	struct rg_task t = { .pid = 400, .ppid = 1, .start_ns = 3 * S, .comm = "app" };

	start(&s);
	proc(&s, &t, 4 * S, KL_PROC_SNAPSHOT, NULL, "/srv/app", "app\0", 4, "/home/u");
	sc(&s, &t, 5 * S, (struct rg_sc){ .nr = 257, .ret = 3, .args = { (uint64_t)-100 }, .path = "x/../y.txt" });
	cr_assert_str_eq(str(&s, "abs_path"), "/home/u/y.txt");
	sc(&s, &t, 6 * S, (struct rg_sc){ .nr = 257, .ret = 5, .args = { (uint64_t)-100 }, .path = "/etc/" });
	sc(&s, &t, 7 * S, (struct rg_sc){ .nr = 257, .ret = 6, .args = { 5 }, .path = "./passwd" });
	cr_assert_str_eq(str(&s, "abs_path"), "/etc/passwd");
	sc(&s, &t, 8 * S, (struct rg_sc){ .nr = 264, .ret = 0, .args = { 5, 0, (uint64_t)-100 },
					  .path = "a.conf", .path2 = "../b.conf" });
	cr_assert_str_eq(str(&s, "abs_path"), "/etc/a.conf");
	cr_assert_str_eq(str(&s, "abs_path2"), "/home/b.conf");
	sc(&s, &t, 9 * S, (struct rg_sc){ .nr = 80, .ret = 0, .path = "sub//dir/." });
	sc(&s, &t, 10 * S, (struct rg_sc){ .nr = 2, .ret = 7, .path = "f" });
	cr_assert_str_eq(str(&s, "abs_path"), "/home/u/sub/dir/f");
	sc(&s, &t, 11 * S, (struct rg_sc){ .nr = 81, .ret = 0, .args = { 5 } });
	sc(&s, &t, 12 * S, (struct rg_sc){ .nr = 87, .ret = -2, .path = "../../../shadow" });
	cr_assert_str_eq(str(&s, "abs_path"), "/shadow", "'..' above / stays at /");
	/* symlink: the target is content, the link path is resolved */
	sc(&s, &t, 13 * S, (struct rg_sc){ .nr = 88, .ret = 0, .path = "../target", .path2 = "ln" });
	cr_assert_null(json_object_get(s.last, "abs_path"));
	cr_assert_str_eq(str(&s, "abs_path2"), "/etc/ln");
	/* unknown dirfd: no guess */
	sc(&s, &t, 14 * S, (struct rg_sc){ .nr = 257, .ret = -2, .args = { 42 }, .path = "zzz" });
	cr_assert_null(json_object_get(s.last, "abs_path"));
	finish(&s, "paths");
}

Test(golden, bootstrap_stub_sockets_and_pipes)
{
	struct stream s;
	struct rg_task known = { .pid = 500, .ppid = 1, .start_ns = 1 * S, .comm = "nginx" };
	struct rg_task unseen = { .pid = 501, .ppid = 500, .start_ns = 2 * S, .comm = "worker" };
	struct sockaddr_in peer = rg_sin("10.0.0.7", 443), local = rg_sin("0.0.0.0", 8080),
			   client = rg_sin("192.168.1.9", 51000);
	int32_t pfds[2] = { 9, 10 };

	start(&s);
	proc(&s, &known, 3 * S, KL_PROC_SNAPSHOT, NULL, "/usr/sbin/nginx", "nginx\0-g\0daemon off;\0", 22, "/");
	sc(&s, &known, 4 * S, (struct rg_sc){ .nr = 41, .ret = 3, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &known, 5 * S, (struct rg_sc){ .nr = 42, .ret = 0, .args = { 3 }, .sa = &peer, .salen = sizeof(peer) });
	sc(&s, &known, 6 * S, (struct rg_sc){ .nr = 1, .ret = 5, .args = { 3 } });
	cr_assert_str_eq(str(&s, "fd_kind"), "inet");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(s.last, "peer_addr"), "addr")), "10.0.0.7");
	cr_assert_str_eq(str(&s, "exe"), "/usr/sbin/nginx");
	sc(&s, &known, 7 * S, (struct rg_sc){ .nr = 41, .ret = 4, .args = { AF_INET, SOCK_STREAM } });
	sc(&s, &known, 8 * S, (struct rg_sc){ .nr = 49, .ret = 0, .args = { 4 }, .sa = &local, .salen = sizeof(local) });
	sc(&s, &known, 9 * S, (struct rg_sc){ .nr = 288, .ret = 5, .args = { 4 }, .sa2 = &client, .sa2len = sizeof(client) });
	sc(&s, &known, 10 * S, (struct rg_sc){ .nr = 0, .ret = 100, .args = { 5 } });
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(s.last, "peer_addr"), "addr")), "192.168.1.9");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(s.last, "local_addr"), "port")), 8080);
	sc(&s, &known, 11 * S, (struct rg_sc){ .nr = 293, .ret = 0, .fds = pfds, .args = { 0, O_CLOEXEC } });
	sc(&s, &known, 12 * S, (struct rg_sc){ .nr = 1, .ret = 1, .args = { 10 } });
	cr_assert_str_eq(str(&s, "fd_kind"), "pipe");
	/* a process whose birth the agent never saw */
	sc(&s, &unseen, 13 * S, (struct rg_sc){ .nr = 0, .ret = 1, .args = { 0 } });
	cr_assert(json_is_false(json_object_get(s.last, "process_known")));
	cr_assert_null(json_object_get(s.last, "exe"));
	cr_assert_str_eq(str(&s, "comm"), "worker");
	finish(&s, "bootstrap_net");
}

Test(golden, containers_by_cgroup_and_namespace)
{
	struct stream s;
	struct rg_ctr ctr = { .kind = KL_CTR_START, .runtime = KL_RT_RUNC, .cgroup_id = 7777, .init_pid = 900,
			      .mnt_ns = 4026532000u, .id = "c0ffee", .name = "web", .image = "nginx:1.25",
			      .pod = "web-7d4b9c-x2x", .pod_ns = "shop", .pod_uid = "uid-1" };
	struct rg_task in = { .pid = 900, .ppid = 800, .start_ns = 50 * S, .cgroup_id = 7777,
			      .mnt_ns = 4026532000u, .comm = "nginx" };
	/* runc exec'd process, still in the root cgroup but in the container's mount ns */
	struct rg_task joined = { .pid = 950, .ppid = 1, .start_ns = 55 * S, .cgroup_id = 1,
				  .mnt_ns = 4026532000u, .comm = "sh" };
	struct rg_task host = { .pid = 960, .ppid = 1, .start_ns = 56 * S, .cgroup_id = 1,
				.mnt_ns = 4026531841u, .comm = "bash" };

	start(&s);
	feed(&s, KL_REC_CONTAINER, rg_container(s.rec, sizeof(s.rec), ++s.seq, 50 * S, &ctr));
	sc(&s, &in, 51 * S, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/etc/nginx/nginx.conf" });
	cr_assert(json_is_true(json_object_get(s.last, "in_container")));
	cr_assert_str_eq(str(&s, "container_id"), "c0ffee");
	cr_assert_str_eq(str(&s, "pod_name"), "web-7d4b9c-x2x");
	cr_assert_str_eq(str(&s, "pod_namespace"), "shop");
	cr_assert_str_eq(str(&s, "image"), "nginx:1.25");
	cr_assert_str_eq(str(&s, "container_name"), "web");
	sc(&s, &joined, 56 * S, (struct rg_sc){ .nr = 59, .ret = 0, .path = "/bin/ls" });
	cr_assert_str_eq(str(&s, "container_id"), "c0ffee");
	sc(&s, &host, 57 * S, (struct rg_sc){ .nr = 59, .ret = 0, .path = "/bin/ls" });
	cr_assert(json_is_false(json_object_get(s.last, "in_container")));
	ctr.kind = KL_CTR_STOP;
	feed(&s, KL_REC_CONTAINER, rg_container(s.rec, sizeof(s.rec), ++s.seq, 60 * S, &ctr));
	/* late events of a stopped container still resolve within its grace */
	sc(&s, &in, 61 * S, (struct rg_sc){ .nr = 3, .ret = 0, .args = { 3 } });
	cr_assert_str_eq(str(&s, "container_id"), "c0ffee");
	/* and after the grace period it is gone */
	sc(&s, &host, 200 * S, (struct rg_sc){ .nr = 39, .ret = 960 });
	sc(&s, &in, 201 * S, (struct rg_sc){ .nr = 39, .ret = 900 });
	cr_assert(json_is_false(json_object_get(s.last, "in_container")));
	finish(&s, "containers");
}

/*
 * runc exec: runc (host) forks its init into the container's pid namespace
 * (the fork record says so); until that init execs the command it was
 * asked to run, what it does is the runtime's setup (KL_EN_ENTERED), and so
 * is what a child forked before that exec does. The exec'd command is the
 * workload again; so is everything forked inside the container.
 */
Test(engine, runtime_init_entering_a_container_until_its_exec)
{
	struct stream s;
	struct rg_task runc = { .pid = 700, .ppid = 1, .start_ns = 10 * S, .cgroup_id = 1,
				.mnt_ns = 4026531841u, .comm = "runc" };
	struct rg_task init = { .pid = 710, .ppid = 700, .start_ns = 11 * S, .cgroup_id = 1,
				.mnt_ns = 4026532000u, .comm = "runc:[2:INIT]" };
	struct rg_task kid = { .pid = 720, .ppid = 710, .start_ns = 12 * S, .cgroup_id = 1,
			       .mnt_ns = 4026532000u, .comm = "runc:[2:INIT]" };
	struct rg_task shell_in = { .pid = 730, .ppid = 710, .start_ns = 14 * S, .cgroup_id = 1,
				    .mnt_ns = 4026532000u, .comm = "sh" };

	start(&s);
	proc(&s, &runc, 10 * S, KL_PROC_EXEC, NULL, "/usr/sbin/runc", "runc\0exec", 9, "/");
	cr_assert_null(json_object_get(s.last, "runtime_init"));
	/* the init, born into the container's pid namespace */
	size_t n = rg_proc(s.rec, sizeof(s.rec), &init, ++s.seq, 11 * S, KL_PROC_FORK, &runc, NULL, NULL, 0,
			   NULL, 0);
	((struct kl_proc *)s.rec)->ev.flags |= KL_EV_NEW_PIDNS;
	feed(&s, KL_REC_PROC, n);
	cr_assert(json_is_true(json_object_get(s.last, "runtime_init")));
	sc(&s, &init, 11 * S + 1, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/proc/self/fd" });
	cr_assert(json_is_true(json_object_get(s.last, "runtime_init")), "its setup is the runtime's");
	/* a child forked before the exec still runs the runtime's image */
	proc(&s, &kid, 12 * S, KL_PROC_FORK, &init, NULL, NULL, 0, NULL);
	cr_assert(json_is_true(json_object_get(s.last, "runtime_init")));
	/* the exec of the command: the workload from here on */
	proc(&s, &init, 13 * S, KL_PROC_EXEC, NULL, "/bin/busybox", "sh\0-c\0id", 8, "/");
	cr_assert_null(json_object_get(s.last, "runtime_init"));
	sc(&s, &init, 13 * S + 1, (struct rg_sc){ .nr = 2, .ret = 3, .path = "/etc/passwd" });
	cr_assert_null(json_object_get(s.last, "runtime_init"));
	/* forked inside the container (same pid namespace): not the runtime */
	proc(&s, &shell_in, 14 * S, KL_PROC_FORK, &init, NULL, NULL, 0, NULL);
	cr_assert_null(json_object_get(s.last, "runtime_init"));
	json_decref(s.last);
	kl_buf_free(&s.out);
	kl_enricher_free(s.e);
}

Test(engine, tables_are_bounded)
{
	struct kl_enricher *e;
	struct kl_enricher_opts o = { .max_procs = 100, .max_fds_per_proc = 64, .max_fd_entries = 1000 };
	struct kl_enricher_stats st;
	static uint8_t rec[4096], out[65536];

	cr_assert_eq(kl_enricher_new(&o, &e), 0);
	for (uint32_t i = 0; i < 5000; i++) {
		struct rg_task t = { .pid = 1000 + i, .start_ns = i, .comm = "x" };
		for (int fd = 3; fd < 80; fd++) {
			struct rg_sc c = { .nr = 2, .ret = fd, .path = "/tmp/f" };
			size_t n = rg_syscall(rec, sizeof(rec), &t, i, i, &c);
			cr_assert_gt(kl_enricher_process(e, KL_REC_SYSCALL, rec, n, out, sizeof(out)), 0);
		}
	}
	kl_enricher_stats(e, &st);
	cr_assert_leq(st.procs, 100);
	cr_assert_geq(st.procs_evicted, 4900);
	cr_assert_leq(st.fd_entries, 1000);
	cr_assert_gt(st.fd_untracked, 0);
	kl_enricher_free(e);
}

Test(engine, invalid_raw_records_are_counted_not_crashed)
{
	struct kl_enricher *e;
	struct kl_enricher_stats st;
	uint8_t rec[512], out[4096];
	struct rg_sc c = { .nr = 2, .ret = 3, .path = "/x" };
	struct rg_task t = { .pid = 1, .comm = "x" };

	cr_assert_eq(kl_enricher_new(NULL, &e), 0);
	size_t n = rg_syscall(rec, sizeof(rec), &t, 1, 1, &c);
	cr_assert_eq(kl_enricher_process(e, KL_REC_SYSCALL, rec, n - 1, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(kl_enricher_process(e, 0x7777, rec, n, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(kl_enricher_process(e, KL_REC_SYSCALL, rec, 10, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(kl_enricher_process(e, KL_REC_SYSCALL, rec, n, out, 100), -EMSGSIZE);
	kl_enricher_stats(e, &st);
	cr_assert_eq(st.invalid, 3);
	kl_enricher_free(e);
}

Test(path, normalize)
{
	static const char *cases[][2] = {
		{ "/a/b/../c", "/a/c" }, { "/../..", "/" }, { "a/./b//c/", "a/b/c" }, { "../x", "../x" },
		{ "a/../../x", "../x" }, { "/", "/" }, { ".", "." }, { "a/..", "." }, { "//etc///passwd", "/etc/passwd" },
		{ "/a/b/c/../../..", "/" },
	};
	char buf[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i][0]);
		kl_path_normalize(buf);
		cr_assert_str_eq(buf, cases[i][1], "normalize(%s)", cases[i][0]);
	}
	cr_assert_eq(kl_path_join("/a", "b", buf, 4), -ENAMETOOLONG);
}
