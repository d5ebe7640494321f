/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.c - the plumbing every pipeline daemon shares (stage.h): one log
 * format, the wait for a producer that starts after us, batched output,
 * and signals that break a blocked poll.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <kloudlens/stage.h>

volatile sig_atomic_t kl_stage_stop;

#define MAX_INTERRUPT 4
static struct shm_consumer *interrupt_on[MAX_INTERRUPT];

void kl_log(const char *component, const char *level, const char *fmt, ...)
{
	char msg[1024], esc[2048];
	size_t j = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one event per line, whatever the message holds: log shippers split on \n */
	for (size_t i = 0; msg[i] && j + 3 < sizeof(esc); i++) {
		char ch = msg[i];

		if (ch == '"' || ch == '\\') {
			esc[j++] = '\\';
			esc[j++] = ch;
		} else if (ch == '\n' || ch == '\r' || ch == '\t') {
			esc[j++] = ' ';
		} else {
			esc[j++] = ch;
		}
	}
	esc[j] = 0;
	fprintf(stderr, "level=%s component=%s msg=\"%s\"\n", level, component, esc);
}

void kl_stage_shm_log(int level, const char *msg, void *ctx)
{
	kl_log(ctx ? (const char *)ctx : "libshm", level <= 3 ? "error" : "warn", "%s", msg);
}

static void on_signal(int sig)
{
	(void)sig;
	kl_stage_stop = 1;
	for (int i = 0; i < MAX_INTERRUPT; i++)
		if (interrupt_on[i])
			shm_consumer_interrupt(interrupt_on[i]);
}

void kl_stage_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a peer closing an nng/ipc socket must not kill a stage */
	signal(SIGPIPE, SIG_IGN);
}

void kl_stage_interrupt_on(struct shm_consumer *c)
{
	if (!c) {
		for (int i = 0; i < MAX_INTERRUPT; i++)
			interrupt_on[i] = NULL;
		return;
	}
	for (int i = 0; i < MAX_INTERRUPT; i++) {
		if (!interrupt_on[i]) {
			interrupt_on[i] = c;
			return;
		}
	}
}

int kl_stage_open_input(const char *dir, const char *name, double wait_s, struct shm_ring **out)
{
	uint64_t deadline = kl_now_mono_ns() + (uint64_t)(wait_s > 0 ? wait_s * 1e9 : 0);
	int err;

	while ((err = shm_ring_open(dir, name, out)) == -ENOENT && kl_now_mono_ns() < deadline &&
	       !kl_stage_stop)
		usleep(100000);
	return err;
}

int kl_stage_out_create(struct kl_stage_out *o, const char *dir, const char *name,
			const struct shm_ring_opts *ro, uint16_t type)
{
	int err;

	memset(o, 0, sizeof(*o));
	o->type = type;
	err = shm_ring_create(dir, name, ro, &o->ring);
	if (err)
		return err;
	o->limit = shm_ring_max_record(o->ring);
	return 0;
}

int kl_stage_emit(void *ctx, const void *rec, size_t len)
{
	struct kl_stage_out *o = ctx;
	void *p;
	int err;

	if (len > shm_ring_max_record(o->ring))
		return -EMSGSIZE;
	err = shm_reserve(o->ring, (uint32_t)len, o->type, &p);
	if (err) {
		o->err = err;
		return err;
	}
	memcpy(p, rec, len);
	o->written++;
	o->pending += len + 16;
	if (o->pending >= o->limit) {
		shm_publish(o->ring);
		o->pending = 0;
	}
	return 0;
}

void kl_stage_out_publish(struct kl_stage_out *o)
{
	if (o->ring)
		shm_publish(o->ring);
	o->pending = 0;
}

void kl_stage_out_close(struct kl_stage_out *o)
{
	kl_stage_out_publish(o);
	shm_ring_close(o->ring);
	o->ring = NULL;
}

int kl_stage_setup(const struct kl_stage_spec *sp, struct kl_stage *st)
{
	const char *dir = sp->dir ? sp->dir : SHM_DEFAULT_DIR;
	const char *user = sp->user ? sp->user : "kloudlens";
	char note[256] = "";
	int err = 0;

	memset(st, 0, sizeof(*st));
	st->component = sp->component;
	memcpy(st->in_names, sp->inputs, sizeof(st->in_names));
	shm_set_log(kl_stage_shm_log, (void *)sp->component);
	kl_stage_signals();
	for (int i = 0; i < KL_STAGE_MAX_IN && sp->inputs[i]; i++) {
		err = kl_stage_open_input(sp->dir, sp->inputs[i], sp->wait_s, &st->in[i]);
		if (err == -ENOENT && sp->optional[i]) {
			kl_log(sp->component, "warn", "optional input ring %s/%s absent; going on without it",
			       dir, sp->inputs[i]);
			err = 0;
			continue;
		}
		if (err) {
			kl_log(sp->component, "error", "open input ring %s/%s: %s", dir, sp->inputs[i],
			       strerror(-err));
			goto fail;
		}
	}
	if (sp->output) {
		err = kl_stage_out_create(&st->out, sp->dir, sp->output, &sp->ro, sp->out_type);
		if (err) {
			kl_log(sp->component, "error", "create output ring %s/%s: %s", dir, sp->output,
			       strerror(-err));
			goto fail;
		}
	}
	err = shm_stats_create(sp->dir, sp->component, sp->stats_slots ? sp->stats_slots : 64, &st->stats);
	if (err) {
		kl_log(sp->component, "error", "create stats area in %s: %s", dir, strerror(-err));
		goto fail;
	}
	if (sp->before_drop) {
		err = sp->before_drop(sp->ctx);
		if (err)
			goto fail;
	}
	err = kl_drop_privileges(user, note, sizeof(note));
	if (!err && note[0])
		kl_log(sp->component, "warn", "%s", note);
	if (err) {
		kl_log(sp->component, "error", "drop privileges to %s: %s", user, strerror(-err));
		goto fail;
	}
	for (int i = 0; i < KL_STAGE_MAX_IN; i++) {
		if (!st->in[i])
			continue;
		err = shm_consumer_attach(st->in[i], sp->component, SHM_REQUIRED, &st->cons[i]);
		if (err) {
			kl_log(sp->component, "error", "attach to ring %s/%s: %s", dir, sp->inputs[i],
			       strerror(-err));
			goto fail;
		}
		kl_stage_interrupt_on(st->cons[i]);
	}
	return 0;
fail:
	kl_stage_teardown(st);
	return err;
}

int kl_stage_next(struct kl_stage *st, int i, struct shm_rec *recs, int max, int timeout_ms)
{
	for (;;) {
		int n = shm_consumer_poll(st->cons[i], recs, max, st->draining ? 0 : timeout_ms);

		if (n == -EINTR || (n == 0 && kl_stage_stop)) {
			if (st->draining || n == 0)
				return -ESHUTDOWN;
			st->draining = true;   /* finish what the ring holds, then exit */
			continue;
		}
		if (n < 0)
			kl_log(st->component, "error", "ring %s: %s", st->in_names[i], strerror(-n));
		return n;
	}
}

void kl_stage_teardown(struct kl_stage *st)
{
	kl_stage_interrupt_on(NULL);
	for (int i = 0; i < KL_STAGE_MAX_IN; i++) {
		shm_consumer_detach(st->cons[i]);
		st->cons[i] = NULL;
	}
	if (st->out.ring)
		kl_stage_out_close(&st->out);
	for (int i = 0; i < KL_STAGE_MAX_IN; i++) {
		shm_ring_close(st->in[i]);
		st->in[i] = NULL;
	}
	shm_stats_close(st->stats);
	st->stats = NULL;
}

int kl_parse_u64(const char *arg, uint64_t scale, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!arg || !*arg || arg[0] == '-' || arg[0] == '+' || arg[0] == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno)
		return -errno;
	if (*end)
		return -EINVAL;
	if (scale && v > UINT64_MAX / scale)
		return -ERANGE;
	*out = (uint64_t)v * (scale ? scale : 1);
	return 0;
}

int kl_parse_u32(const char *arg, uint32_t *out)
{
	uint64_t v;
	int err = kl_parse_u64(arg, 1, &v);

	if (err)
		return err;
	if (v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

int kl_stage_opt(struct kl_stage_spec *sp, int opt, const char *arg)
{
	const char *name;
	uint64_t v = 0;
	char *end;
	int err = 0;

	switch (opt) {
	case 'd': sp->dir = arg; return 1;
	case 'i': sp->inputs[0] = arg; return 1;
	case 'o': sp->output = arg; return 1;
	case 'u': sp->user = arg; return 1;
	case 'c':
		name = "--capacity";
		err = kl_parse_u64(arg, 1, &v);
		if (!err && !v)
			err = -EINVAL;
		sp->ro.capacity = v;
		break;
	case 'm':
		name = "--ring-mode";
		errno = 0;
		v = strtoull(arg, &end, 8);
		if (errno || end == arg || *end || v > 0777)
			err = -EINVAL;
		sp->ro.mode = (mode_t)v;
		break;
	case 'w':
		name = "--wait";
		errno = 0;
		sp->wait_s = strtod(arg, &end);
		if (errno || end == arg || *end || !(sp->wait_s >= 0))
			err = -EINVAL;
		break;
	default:
		return 0;
	}
	if (err) {
		kl_log(sp->component, "error", "%s: bad value \"%s\"", name, arg);
		return -EINVAL;
	}
	return 1;
}

int kl_stage_bad_value(const char *component, const struct option *opts, int opt, const char *arg)
{
	const char *name = "?";

	for (; opts && opts->name; opts++)
		if (opts->val == opt) {
			name = opts->name;
			break;
		}
	kl_log(component, "error", "--%s: bad value \"%s\"", name, arg ? arg : "");
	return 2;
}

int kl_stage_args(int argc, char **argv, const struct option *opts, struct kl_stage_spec *sp,
		  int (*own)(void *ctx, int opt, const char *arg), void *ctx, void (*usage)(FILE *))
{
	int opt, r;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == '?' || opt == ':') {
			usage(stderr);
			return 2;
		}
		r = kl_stage_opt(sp, opt, optarg);
		if (r < 0)
			return 2;
		if (r == 0 && (!own || own(ctx, opt, optarg)))
			return kl_stage_bad_value(sp->component, opts, opt, optarg);
	}
	return -1;
}
