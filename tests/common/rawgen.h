/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rawgen.h - build raw records exactly as kl-collector writes them, for
 * deterministic tests and benchmarks of the stages downstream of `raw`.
 */
#ifndef KLOUDLENS_TEST_RAWGEN_H
#define KLOUDLENS_TEST_RAWGEN_H

#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>

struct rg_task {
	uint32_t pid, tid, ppid;
	uint64_t start_ns;
	uint64_t cgroup_id;
	uint32_t mnt_ns, pid_ns;
	uint32_t uid, gid;
	const char *comm;
};

static inline void rg_event(struct kl_event *ev, const struct rg_task *t, uint64_t seq, uint64_t ts)
{
	memset(ev, 0, sizeof(*ev));
	ev->seq = seq;
	ev->ts_ns = ts;
	ev->start_ns = t->start_ns;
	ev->cgroup_id = t->cgroup_id;
	ev->pid = t->pid;
	ev->tid = t->tid ? t->tid : t->pid;
	ev->ns_pid = t->pid;
	ev->ppid = t->ppid;
	ev->uid = t->uid;
	ev->gid = t->gid;
	ev->mnt_ns = t->mnt_ns;
	ev->pid_ns = t->pid_ns;
	strncpy(ev->comm, t->comm ? t->comm : "task", sizeof(ev->comm) - 1);
}

struct rg_sc {
	uint32_t nr;
	int64_t ret;
	uint64_t args[6];
	const char *path, *path2;
	const void *sa;       /* KL_F_SOCKADDR */
	size_t salen;
	const void *sa2;      /* KL_F_SOCKADDR2 */
	size_t sa2len;
	const int32_t *fds;   /* KL_F_FDS */
	uint16_t category;
	uint64_t duration_ns;
};

static inline size_t rg_syscall(void *buf, size_t cap, const struct rg_task *t, uint64_t seq, uint64_t ts,
				const struct rg_sc *s)
{
	struct kl_syscall sc;
	struct kl_tail_builder b;

	memset(&sc, 0, sizeof(sc));
	rg_event(&sc.ev, t, seq, ts);
	sc.nr = s->nr;
	sc.ret = s->ret;
	memcpy(sc.args, s->args, sizeof(sc.args));
	sc.category = s->category;
	sc.duration_ns = s->duration_ns ? s->duration_ns : 1000;
	memcpy(buf, &sc, sizeof(sc));
	kl_tail_init(&b, buf, sizeof(sc), cap);
	if (s->path)
		kl_tail_add_str(&b, KL_F_PATH, s->path);
	if (s->path2)
		kl_tail_add_str(&b, KL_F_PATH2, s->path2);
	if (s->sa)
		kl_tail_add(&b, KL_F_SOCKADDR, s->sa, s->salen);
	if (s->sa2)
		kl_tail_add(&b, KL_F_SOCKADDR2, s->sa2, s->sa2len);
	if (s->fds)
		kl_tail_add(&b, KL_F_FDS, s->fds, 2 * sizeof(int32_t));
	return kl_tail_finish(&b);
}

static inline size_t rg_proc(void *buf, size_t cap, const struct rg_task *t, uint64_t seq, uint64_t ts,
			     uint32_t kind, const struct rg_task *parent, const char *exe,
			     const char *argv, size_t argv_len, const char *cwd, int32_t exit_code)
{
	struct kl_proc p;
	struct kl_tail_builder b;

	memset(&p, 0, sizeof(p));
	rg_event(&p.ev, t, seq, ts);
	p.kind = kind;
	if (parent) {
		p.parent_pid = parent->pid;
		p.parent_start_ns = parent->start_ns;
	}
	p.exit_code = exit_code;
	p.child_tid = kind == KL_PROC_FORK ? t->pid : 0;
	memcpy(buf, &p, sizeof(p));
	kl_tail_init(&b, buf, sizeof(p), cap);
	if (exe)
		kl_tail_add_str(&b, KL_F_EXE, exe);
	if (argv)
		kl_tail_add(&b, KL_F_ARGV, argv, argv_len);
	if (cwd)
		kl_tail_add_str(&b, KL_F_CWD, cwd);
	return kl_tail_finish(&b);
}

struct rg_ctr {
	uint32_t kind, runtime;
	uint64_t cgroup_id;
	uint32_t init_pid, mnt_ns, pid_ns;
	const char *id, *name, *image, *pod, *pod_ns, *pod_uid;
};

static inline size_t rg_container(void *buf, size_t cap, uint64_t seq, uint64_t ts, const struct rg_ctr *c)
{
	struct kl_container k;
	struct kl_tail_builder b;
	struct rg_task t = { .pid = c->init_pid, .cgroup_id = c->cgroup_id, .mnt_ns = c->mnt_ns,
			     .pid_ns = c->pid_ns, .comm = "runtime" };

	memset(&k, 0, sizeof(k));
	rg_event(&k.ev, &t, seq, ts);
	k.kind = c->kind;
	k.runtime = c->runtime;
	k.init_pid = c->init_pid;
	k.mnt_ns = c->mnt_ns;
	k.pid_ns = c->pid_ns;
	memcpy(buf, &k, sizeof(k));
	kl_tail_init(&b, buf, sizeof(k), cap);
	if (c->id)
		kl_tail_add_str(&b, KL_F_CONTAINER_ID, c->id);
	if (c->name)
		kl_tail_add_str(&b, KL_F_CONTAINER_NAME, c->name);
	if (c->image)
		kl_tail_add_str(&b, KL_F_IMAGE, c->image);
	if (c->pod)
		kl_tail_add_str(&b, KL_F_POD_NAME, c->pod);
	if (c->pod_ns)
		kl_tail_add_str(&b, KL_F_POD_NAMESPACE, c->pod_ns);
	if (c->pod_uid)
		kl_tail_add_str(&b, KL_F_POD_UID, c->pod_uid);
	return kl_tail_finish(&b);
}

static inline struct sockaddr_in rg_sin(const char *ip, uint16_t port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

#endif
