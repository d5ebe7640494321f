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

/* "--capacity 64k" must be refused, not read as 64 (strtoull's habit). */
Test(stage, numbers_are_checked_in_full)
{
	uint64_t v = 7;

	cr_assert_eq(kl_parse_u64("64", 1, &v), 0);
	cr_assert_eq(v, 64);
	cr_assert_eq(kl_parse_u64("0x40", 1000, &v), 0);
	cr_assert_eq(v, 64000);
	cr_assert_eq(kl_parse_u64("18446744073709551615", 1, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	v = 7;
	cr_assert_eq(kl_parse_u64("18446744073709551615", 1000, &v), -ERANGE);
	cr_assert_eq(kl_parse_u64("99999999999999999999", 1, &v), -ERANGE);
	cr_assert_eq(kl_parse_u64("64k", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64("", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64(NULL, 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64("-1", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64("+1", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64(" 5", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64("5 ", 1, &v), -EINVAL);
	cr_assert_eq(kl_parse_u64("09", 1, &v), -EINVAL, "a leading 0 is octal");
	cr_assert_eq(v, 7, "a refused number leaves the target alone");
}

Test(stage, common_options_taken_and_bad_values_named, .init = cr_redirect_stderr)
{
	struct kl_stage_spec s = spec("in", NULL, false);
	static const struct option opts[] = { KL_STAGE_LONGOPTS, { "max-procs", required_argument, NULL, 'P' }, { 0 } };
	char buf[4096] = "";

	cr_assert_eq(kl_stage_opt(&s, 'd', "/run/x"), 1);
	cr_assert_str_eq(s.dir, "/run/x");
	cr_assert_eq(kl_stage_opt(&s, 'i', "raw2"), 1);
	cr_assert_str_eq(s.inputs[0], "raw2");
	cr_assert_eq(kl_stage_opt(&s, 'o', "out2"), 1);
	cr_assert_str_eq(s.output, "out2");
	cr_assert_eq(kl_stage_opt(&s, 'u', "nobody"), 1);
	cr_assert_str_eq(s.user, "nobody");
	cr_assert_eq(kl_stage_opt(&s, 'c', "0x200000"), 1);
	cr_assert_eq(s.ro.capacity, 2u << 20);
	cr_assert_eq(kl_stage_opt(&s, 'm', "0660"), 1);
	cr_assert_eq(s.ro.mode, 0660);
	cr_assert_eq(kl_stage_opt(&s, 'w', "2.5"), 1);
	cr_assert_eq(s.wait_s, 2.5);
	cr_assert_eq(kl_stage_opt(&s, 'P', "5"), 0, "not a common option");
	cr_assert_eq(kl_stage_opt(&s, '?', NULL), 0);

	cr_assert_eq(kl_stage_opt(&s, 'c', "16M"), -EINVAL);
	cr_assert_eq(kl_stage_opt(&s, 'c', "0"), -EINVAL);
	cr_assert_eq(kl_stage_opt(&s, 'm', "0999"), -EINVAL);
	cr_assert_eq(kl_stage_opt(&s, 'm', "01777"), -EINVAL);
	cr_assert_eq(kl_stage_opt(&s, 'w', "soon"), -EINVAL);
	cr_assert_eq(kl_stage_opt(&s, 'w', "-1"), -EINVAL);
	cr_assert_eq(kl_stage_bad_value("kl-test", opts, 'P', "lots"), 2);
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	cr_assert(strstr(buf, "--capacity: bad value \\\"16M\\\""), "%s", buf);
	cr_assert(strstr(buf, "--ring-mode: bad value \\\"0999\\\""), "%s", buf);
	cr_assert(strstr(buf, "--wait: bad value \\\"soon\\\""), "%s", buf);
	cr_assert(strstr(buf, "--max-procs: bad value \\\"lots\\\""), "%s", buf);
}
