/* SPDX-License-Identifier: Apache-2.0 */
/* The daemons' start-up sequence: inputs that are late, absent or optional, and log lines that stay one line. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/stage.h>

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/kl-stage-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(stage, .init = setup, .fini = teardown, .timeout = 30);

static struct kl_stage_spec spec(const char *in1, const char *in2, bool opt2)
{
	struct kl_stage_spec s = {
		/* root keeps its uid (files stay its own) but still loses every capability */
		.component = "kl-test", .dir = dir, .user = "root", .wait_s = 0.2,
		.inputs = { in1, in2 }, .optional = { false, opt2 },
		.output = "out", .out_type = KL_REC_MARK, .ro = SHM_RING_OPTS_INIT,
	};

	s.ro.capacity = 1 << 20;
	return s;
}

Test(stage, missing_required_input_fails)
{
	struct kl_stage_spec s = spec("nope", NULL, false);
	struct kl_stage st;

	char line[512] = "";

	cr_redirect_stderr();
	cr_assert_eq(kl_stage_setup(&s, &st), -ENOENT);
	fflush(stderr);
	cr_assert_not_null(fgets(line, sizeof(line), cr_get_redirected_stderr()));
	cr_assert(strstr(line, "level=error component=kl-test msg=\"open input ring ") &&
		  strstr(line, "/nope: No such file or directory"), "%s", line);
}

static int before_drop_calls;

static int before_drop(void *ctx)
{
	before_drop_calls++;
	return *(int *)ctx;
}

Test(stage, optional_input_absent_goes_on)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *in, *out;
	struct kl_stage_spec s = spec("in", "later", true);
	struct kl_stage st;
	int rc = 0;

	o.capacity = 1 << 20;
	cr_assert_eq(shm_ring_create(dir, "in", &o, &in), 0);
	s.before_drop = before_drop;
	s.ctx = &rc;
	cr_assert_eq(kl_stage_setup(&s, &st), 0);
	cr_assert_eq(before_drop_calls, 1);
	cr_assert_not_null(st.cons[0]);
	cr_assert_null(st.in[1], "optional ring absent");
	cr_assert_null(st.cons[1]);
	/* the output ring takes what the stage emits, published in a batch */
	struct kl_mark m = { 0 };
	cr_assert_eq(kl_stage_emit(&st.out, &m, sizeof(m)), 0);
	kl_stage_out_publish(&st.out);
	cr_assert_eq(st.out.written, 1);
	cr_assert_eq(shm_ring_open(dir, "out", &out), 0);
	struct shm_consumer *c;
	cr_assert_eq(shm_consumer_attach(out, "t", SHM_OBSERVER, &c), 0);
	shm_consumer_detach(c);
	kl_stage_teardown(&st);
	kl_stage_teardown(&st);   /* idempotent */
	shm_ring_close(out);
	shm_ring_close(in);
}

Test(stage, before_drop_failure_undoes_everything)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *in;
	struct shm_ring_info info;
	struct kl_stage_spec s = spec("in", NULL, false);
	struct kl_stage st;
	int rc = -EADDRINUSE;

	o.capacity = 1 << 20;
	cr_assert_eq(shm_ring_create(dir, "in", &o, &in), 0);
	s.before_drop = before_drop;
	s.ctx = &rc;
	cr_assert_eq(kl_stage_setup(&s, &st), -EADDRINUSE);
	shm_ring_info(in, &info);
	cr_assert_eq(info.nconsumers, 0, "a stage that failed to start must not hold a consumer slot");
	shm_ring_close(in);
}

Test(stage, log_lines_stay_one_line)
{
	cr_redirect_stderr();
	kl_log("kl-x", "warn", "bad \"path\"\nnext\\line");
	fflush(stderr);
	cr_assert_stderr_eq_str("level=warn component=kl-x msg=\"bad \\\"path\\\" next\\\\line\"\n");
}

Test(stage, next_drains_the_input_after_a_stop)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct kl_stage_spec s = spec("in", NULL, false);
	struct shm_rec recs[8];
	struct shm_ring *in;
	struct kl_stage st;
	struct kl_mark m = { 0 };

	o.capacity = 1 << 20;
	cr_assert_eq(shm_ring_create(dir, "in", &o, &in), 0);
	cr_assert_eq(kl_stage_setup(&s, &st), 0);
	cr_assert_eq(kl_stage_next(&st, 0, recs, 8, 10), 0, "nothing yet: the wait times out");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shm_write(in, KL_REC_MARK, &m, sizeof(m)), 0);
	kl_stage_stop = 1;   /* as SIGTERM does */
	cr_assert_eq(kl_stage_next(&st, 0, recs, 8, 1000), 3, "what the ring holds still comes out");
	shm_consumer_release(st.cons[0]);
	cr_assert_eq(kl_stage_next(&st, 0, recs, 8, 1000), -ESHUTDOWN);
	kl_stage_stop = 0;
	kl_stage_teardown(&st);
	shm_ring_close(in);
}
