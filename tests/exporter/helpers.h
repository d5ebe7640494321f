/* SPDX-License-Identifier: Apache-2.0 */
/* helpers.h - temp dirs, free ports, ring producers for the exporter tests. */
#ifndef KL_TEST_EXPORTER_HELPERS_H
#define KL_TEST_EXPORTER_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

/* A port the kernel just handed out, so parallel tests and a live agent never collide. */
static inline int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

struct test_env {
	char dir[256], rings[300], wal[300];
	char sub[64], admin[64], http[64];
	int http_port;
};

/* Fresh ports, written in place (options pointing at these buffers see them). */
static inline void test_env_ports(struct test_env *t)
{
	snprintf(t->sub, sizeof(t->sub), "tcp://127.0.0.1:%d", free_port());
	snprintf(t->admin, sizeof(t->admin), "tcp://127.0.0.1:%d", free_port());
	t->http_port = free_port();
	snprintf(t->http, sizeof(t->http), "http://127.0.0.1:%d", t->http_port);
}

static inline void test_env_init(struct test_env *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/kl-exp-test.XXXXXX");
	if (!mkdtemp(t->dir))
		abort();
	snprintf(t->rings, sizeof(t->rings), "%s/rings", t->dir);
	snprintf(t->wal, sizeof(t->wal), "%s/wal", t->dir);
	mkdir(t->rings, 0750);
	test_env_ports(t);
}

/*
 * kl_exporter_create() on @t's ports. free_port() races with every socket
 * on the node (an ephemeral port free a moment ago may be some client's
 * now, more so beside a parallel build's tests): on EADDRINUSE pick new
 * ports and try again.
 */
#ifdef KL_EXPORTER_H   /* only where exporter.h is included (other suites borrow free_port) */
static inline int test_exporter_create(struct test_env *t, struct kl_exporter_opts *o, struct kl_exporter **ex)
{
	int r = -EADDRINUSE;

	for (int i = 0; i < 8 && r == -EADDRINUSE; i++) {
		if (i)
			test_env_ports(t);
		r = kl_exporter_create(o, ex);
	}
	return r;
}
#endif

static inline void test_env_fini(struct test_env *t)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", t->dir);
}

/* One syscall record with a path tail. */
static inline size_t make_syscall(void *buf, size_t cap, uint64_t seq, uint32_t pid, uint32_t nr,
				  uint64_t cgroup, const char *path)
{
	struct kl_syscall *s = buf;
	struct kl_tail_builder b;

	memset(s, 0, sizeof(*s));
	s->ev.seq = seq;
	s->ev.ts_ns = 1000 + seq;
	s->ev.pid = pid;
	s->ev.tid = pid;
	s->ev.cgroup_id = cgroup;
	snprintf(s->ev.comm, sizeof(s->ev.comm), "proc%u", pid);
	s->nr = nr;
	s->ret = 3;
	kl_tail_init(&b, s, sizeof(*s), cap);
	if (path)
		kl_tail_add_str(&b, KL_F_PATH, path);
	return kl_tail_finish(&b);
}

static inline size_t make_container(void *buf, size_t cap, uint64_t cgroup, uint32_t kind,
				    const char *id, const char *ns, const char *pod)
{
	struct kl_container *c = buf;
	struct kl_tail_builder b;

	memset(c, 0, sizeof(*c));
	c->ev.cgroup_id = cgroup;
	c->kind = kind;
	c->runtime = KL_RT_RUNC;
	kl_tail_init(&b, c, sizeof(*c), cap);
	kl_tail_add_str(&b, KL_F_CONTAINER_ID, id);
	kl_tail_add_str(&b, KL_F_POD_NAMESPACE, ns);
	kl_tail_add_str(&b, KL_F_POD_NAME, pod);
	return kl_tail_finish(&b);
}

/* Write @n syscall records (seq from @first) into @r, publishing in batches. */
static inline int produce(struct shm_ring *r, uint64_t first, uint64_t n, uint32_t pid)
{
	uint8_t buf[512];

	for (uint64_t i = 0; i < n; i++) {
		size_t len = make_syscall(buf, sizeof(buf), first + i, pid, 257, 0, "/etc/hosts");
		int rc = shm_write(r, KL_REC_SYSCALL, buf, len);

		if (rc < 0)
			return rc;
	}
	return 0;
}

#endif
