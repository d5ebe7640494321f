/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Interop: tests/exporter/interop_client.py, written from docs/protocol.md
 * in Python with Debian's python3-protobuf and raw TCP sockets (no nng),
 * replays and then follows a live gzip-compressed stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "exporter.h"
#include "helpers.h"

/* Long, repetitive paths so gzip pays off and frames really go out compressed. */
static void produce_long(struct shm_ring *r, uint64_t first, uint64_t n)
{
	char path[400] = "/etc/";
	uint8_t buf[1024];

	memset(path + 5, 'a', 300);
	strcpy(path + 305, "/hosts");
	for (uint64_t i = 0; i < n; i++)
		cr_assert_geq(shm_write(r, KL_REC_SYSCALL, buf,
					make_syscall(buf, sizeof(buf), first + i, 7, 257, 0, path)), 0);
}

Test(interop, python_client_decodes_live_stream, .timeout = 120)
{
	struct kl_exporter_opts o = KL_EXPORTER_OPTS_INIT;
	struct shm_ring_opts ro = SHM_RING_OPTS_INIT;
	const char *src = getenv("KLOUDLENS_SOURCE_ROOT"), *bld = getenv("KLOUDLENS_BUILD_ROOT");
	struct kl_exporter *ex;
	struct shm_ring *raw;
	struct test_env te;
	char cmd[2048], line[1024], last[1024] = "";
	bool subscribed = false;
	FILE *p;
	int st;

	cr_assert(src && bld);
	test_env_init(&te);
	ro.capacity = 16 << 20;
	ro.policy = SHM_POLICY_BLOCK;
	cr_assert_eq(shm_ring_create(te.rings, "raw", &ro, &raw), 0);
	o.rings_dir = te.rings;
	o.wal_dir = te.wal;
	o.sub_url = te.sub;
	o.admin_url = te.admin;
	o.http_url = "";
	o.compress_threshold = 64;   /* every envelope gzip'ed: the client must gunzip */
	o.batch_max = 64;
	cr_assert_eq(test_exporter_create(&te, &o, &ex), 0);
	cr_assert_eq(kl_exporter_start(ex), 0);
	/* 1000 already in the WAL (replayed from seq 10), 1000 more once it follows */
	produce_long(raw, 0, 1000);
	for (int i = 0; i < 500; i++) {
		struct kl_exporter_counters c;

		kl_exporter_counters(ex, &c);
		if (c.published >= 1000)
			break;
		usleep(10000);
	}
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 %s/tests/exporter/interop_client.py --admin %s --sub %s "
		 "--desc %s/exporter/kloudlens.desc --since 10 --expect 1990 --timeout 60 2>&1",
		 src, te.admin + strlen("tcp://"), te.sub + strlen("tcp://"), bld);
	p = popen(cmd, "r");
	cr_assert(p);
	while (fgets(line, sizeof(line), p)) {
		fprintf(stderr, "python: %s", line);
		if (!subscribed && !strncmp(line, "subscribed ", 11)) {
			subscribed = true;
			produce_long(raw, 1000, 1000);
		}
		snprintf(last, sizeof(last), "%s", line);
	}
	st = pclose(p);
	cr_assert(subscribed, "client never subscribed: %s", last);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client failed: %s", last);
	cr_assert(strstr(last, "\"received\": 1990"), "%s", last);
	cr_assert(!strstr(last, "\"compressed_frames\": 0,"), "frames were compressed: %s", last);
	kl_exporter_destroy(ex);
	shm_ring_close(raw);
	test_env_fini(&te);
}
