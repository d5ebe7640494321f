/* SPDX-License-Identifier: Apache-2.0 */
/*
 * klrec - record any KloudLens ring to a file, replay a file into a
 * ring, print records as JSON lines. See docs/klrec.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#define BATCH 512

static struct shm_consumer *active;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
	if (active)
		shm_consumer_interrupt(active);
}

static void usage(FILE *o)
{
	fputs("usage:\n"
	      "  klrec record --ring NAME -o FILE [--dir DIR] [-z] [--count N] [--duration SEC]\n"
	      "               [--required] [--consumer NAME] [--from-oldest]\n"
	      "  klrec replay FILE --ring NAME [--dir DIR] [--pace] [--speed X] [--create]\n"
	      "               [--capacity BYTES] [--policy drop|block]\n"
	      "  klrec print  FILE | --ring NAME [--dir DIR] [--follow] [--skip-corrupt]\n"
	      "  klrec info   FILE [--skip-corrupt]\n"
	      "\n"
	      "  --dir      rings directory (default " SHM_DEFAULT_DIR ")\n"
	      "  record     attaches as an observer (never stalls the producer; misses are\n"
	      "             counted) unless --required, which holds the producer for a lossless capture\n"
	      "  print      --ring prints what the ring still holds, then exits, or follows with --follow\n",
	      o);
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

enum { OPT_DIR = 256, OPT_RING, OPT_COUNT, OPT_DURATION, OPT_REQUIRED, OPT_CONSUMER, OPT_PACE,
       OPT_SPEED, OPT_CREATE, OPT_CAPACITY, OPT_POLICY, OPT_FOLLOW, OPT_SKIP, OPT_OLDEST };

static const struct option long_opts[] = {
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "ring", required_argument, NULL, OPT_RING },
	{ "output", required_argument, NULL, 'o' },
	{ "compress", no_argument, NULL, 'z' },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "required", no_argument, NULL, OPT_REQUIRED },
	{ "consumer", required_argument, NULL, OPT_CONSUMER },
	{ "from-oldest", no_argument, NULL, OPT_OLDEST },
	{ "pace", no_argument, NULL, OPT_PACE },
	{ "speed", required_argument, NULL, OPT_SPEED },
	{ "create", no_argument, NULL, OPT_CREATE },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "follow", no_argument, NULL, OPT_FOLLOW },
	{ "skip-corrupt", no_argument, NULL, OPT_SKIP },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

struct args {
	const char *dir;
	const char *ring;
	const char *out;
	const char *file;
	const char *consumer;
	bool compress, required, pace, create, follow, skip, oldest;
	uint64_t count;
	double duration;
	double speed;
	uint64_t capacity;
	enum shm_policy policy;
};

static int parse(int argc, char **argv, struct args *a)
{
	char *end;
	int c;

	a->speed = 1.0;
	a->policy = SHM_POLICY_BLOCK;
	optind = 2;
	while ((c = getopt_long(argc, argv, "o:zh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR: a->dir = optarg; break;
		case OPT_RING: a->ring = optarg; break;
		case 'o': a->out = optarg; break;
		case 'z': a->compress = true; break;
		case OPT_COUNT:
			a->count = strtoull(optarg, &end, 10);
			if (*end || !*optarg) {
				fprintf(stderr, "klrec: --count: not a number: '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_DURATION:
			a->duration = strtod(optarg, &end);
			if (*end || a->duration <= 0) {
				fprintf(stderr, "klrec: --duration: not a positive number: '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_REQUIRED: a->required = true; break;
		case OPT_CONSUMER: a->consumer = optarg; break;
		case OPT_OLDEST: a->oldest = true; break;
		case OPT_PACE: a->pace = true; break;
		case OPT_SPEED:
			a->speed = strtod(optarg, &end);
			a->pace = true;
			if (*end || a->speed <= 0) {
				fprintf(stderr, "klrec: --speed: not a positive number: '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_CREATE: a->create = true; break;
		case OPT_CAPACITY:
			a->capacity = strtoull(optarg, &end, 0);
			if (*end) {
				fprintf(stderr, "klrec: --capacity: not a number: '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_POLICY:
			if (!strcmp(optarg, "drop"))
				a->policy = SHM_POLICY_DROP;
			else if (!strcmp(optarg, "block"))
				a->policy = SHM_POLICY_BLOCK;
			else {
				fprintf(stderr, "klrec: --policy: expected drop or block, got '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_FOLLOW: a->follow = true; break;
		case OPT_SKIP: a->skip = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc)
		a->file = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "klrec: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int attach(const struct args *a, enum shm_consumer_kind kind, struct shm_ring **r,
		  struct shm_consumer **c)
{
	char name[SHM_NAME_MAX];
	int err = shm_ring_open(a->dir, a->ring, r);

	if (err) {
		fprintf(stderr, "klrec: open ring %s/%s: %s\n", a->dir ? a->dir : SHM_DEFAULT_DIR, a->ring,
			strerror(-err));
		return err;
	}
	if (a->consumer)
		snprintf(name, sizeof(name), "%s", a->consumer);
	else
		snprintf(name, sizeof(name), "klrec-%d", (int)getpid());
	err = shm_consumer_attach(*r, name, kind, c);
	if (err) {
		fprintf(stderr, "klrec: attach to ring %s as %s: %s\n", a->ring, name, strerror(-err));
		shm_ring_close(*r);
	}
	return err;
}

static int cmd_record(const struct args *a)
{
	struct kl_recfile_writer *w = NULL;
	struct shm_ring *r = NULL;
	struct shm_consumer *c = NULL;
	struct shm_rec recs[BATCH];
	uint64_t deadline = 0, n_rec = 0;
	int err;

	if (!a->ring || !a->out) {
		fputs("klrec record: --ring and -o are required\n", stderr);
		return 2;
	}
	err = attach(a, a->required ? SHM_REQUIRED : SHM_OBSERVER, &r, &c);
	if (err)
		return 1;
	if (a->oldest && !a->required)
		shm_consumer_seek_oldest(c);
	err = kl_recw_open(a->out, a->ring, a->compress, &w);
	if (err) {
		fprintf(stderr, "klrec: create %s: %s\n", a->out, strerror(-err));
		goto out;
	}
	active = c;
	install_signals();
	if (a->duration > 0)
		deadline = kl_now_mono_ns() + (uint64_t)(a->duration * 1e9);
	while (!stop && (!a->count || n_rec < a->count)) {
		int n = shm_consumer_poll(c, recs, BATCH, 100);
		if (n == -EINTR)
			break;
		if (n < 0) {
			fprintf(stderr, "klrec: ring %s: %s\n", a->ring, strerror(-n));
			err = n;
			break;
		}
		uint64_t now = kl_now_mono_ns();
		for (int i = 0; i < n && (!a->count || n_rec < a->count); i++, n_rec++) {
			err = kl_recw_add(w, recs[i].type, recs[i].flags, now, recs[i].data, recs[i].len);
			if (err) {
				fprintf(stderr, "klrec: write %s: %s\n", a->out, strerror(-err));
				goto out;
			}
		}
		shm_consumer_release(c);
		if (deadline && now >= deadline)
			break;
	}
	fprintf(stderr, "klrec: recorded %llu records from %s (missed %llu, dropped %llu)\n",
		(unsigned long long)n_rec, a->ring, (unsigned long long)shm_consumer_missed(c),
		(unsigned long long)shm_consumer_dropped(c));
out:
	active = NULL;
	if (w) {
		int e = kl_recw_close(w);
		if (e && !err) {
			fprintf(stderr, "klrec: close %s: %s\n", a->out, strerror(-e));
			err = e;
		}
	}
	shm_consumer_detach(c);
	shm_ring_close(r);
	return err ? 1 : 0;
}

static void sleep_until(uint64_t t)
{
	uint64_t now = kl_now_mono_ns();

	if (t > now) {
		struct timespec ts = { .tv_sec = (time_t)((t - now) / 1000000000ull),
				       .tv_nsec = (long)((t - now) % 1000000000ull) };
		nanosleep(&ts, NULL);
	}
}

static int cmd_replay(const struct args *a)
{
	struct kl_recfile_reader *rd = NULL;
	struct shm_ring *r = NULL;
	struct kl_recfile_rec rec;
	uint64_t first_cap = 0, start = 0, n_rec = 0, dropped = 0;
	char msg[300];
	int err, got;

	if (!a->ring || !a->file) {
		fputs("klrec replay: FILE and --ring are required\n", stderr);
		return 2;
	}
	err = kl_recr_open(a->file, &rd, msg, sizeof(msg));
	if (err) {
		fprintf(stderr, "klrec: %s\n", msg);
		return 1;
	}
	kl_recr_skip_corrupt(rd, a->skip);
	if (a->create) {
		struct shm_ring_opts o = SHM_RING_OPTS_INIT;
		o.capacity = a->capacity;
		o.policy = a->policy;
		err = shm_ring_create(a->dir, a->ring, &o, &r);
	} else {
		err = shm_ring_open(a->dir, a->ring, &r);
	}
	if (err) {
		fprintf(stderr, "klrec: %s ring %s: %s\n", a->create ? "create" : "open", a->ring, strerror(-err));
		goto out;
	}
	install_signals();
	while (!stop && (got = kl_recr_next(rd, &rec)) > 0) {
		void *p;
		if (a->pace) {
			if (!n_rec) {
				first_cap = rec.cap_ns;
				start = kl_now_mono_ns();
			} else if (rec.cap_ns > first_cap) {
				shm_publish(r);
				sleep_until(start + (uint64_t)((double)(rec.cap_ns - first_cap) / a->speed));
			}
		}
		err = shm_reserve(r, rec.len, rec.type, &p);
		if (err == -ENOBUFS) {
			dropped++;
			n_rec++;
			continue;
		}
		if (err) {
			fprintf(stderr, "klrec: ring %s: record %llu: %s\n", a->ring, (unsigned long long)n_rec,
				strerror(-err));
			goto out;
		}
		memcpy(p, rec.data, rec.len);
		n_rec++;
		if ((n_rec & 255) == 0)
			shm_publish(r);
	}
	shm_publish(r);
	if (!stop && got < 0) {
		fprintf(stderr, "klrec: %s: %s (replayed the %llu records before it)\n", a->file,
			kl_recr_error(rd), (unsigned long long)n_rec);
		err = got;
		goto out;
	}
	err = 0;
	fprintf(stderr, "klrec: replayed %llu records into %s (%llu dropped by the ring, %llu corrupt chunks skipped)\n",
		(unsigned long long)n_rec, a->ring, (unsigned long long)dropped,
		(unsigned long long)kl_recr_corrupt_chunks(rd));
out:
	shm_ring_close(r);
	kl_recr_close(rd);
	return err ? 1 : 0;
}

static int print_rec(struct kl_buf *b, uint16_t type, const void *data, size_t len, uint64_t seq)
{
	kl_buf_reset(b);
	kl_rec_to_json(b, type, data, len, seq);
	kl_buf_putc(b, '\n');
	if (b->oom)
		return -ENOMEM;
	return fwrite(b->p, 1, b->len, stdout) == b->len ? 0 : -EIO;
}

static int cmd_print(const struct args *a)
{
	struct kl_buf b = { 0 };
	int err = 0;

	if (a->ring) {
		struct shm_ring *r;
		struct shm_consumer *c;
		struct shm_rec recs[BATCH];

		if (attach(a, SHM_OBSERVER, &r, &c))
			return 1;
		shm_consumer_seek_oldest(c);
		active = c;
		install_signals();
		while (!stop) {
			int n = shm_consumer_poll(c, recs, BATCH, a->follow ? 200 : 0);
			if (n == -EINTR || (n == 0 && !a->follow))
				break;
			if (n < 0) {
				fprintf(stderr, "klrec: ring %s: %s\n", a->ring, strerror(-n));
				err = n;
				break;
			}
			for (int i = 0; i < n && !err; i++)
				err = print_rec(&b, recs[i].type, recs[i].data, recs[i].len, recs[i].seq);
			if (err)
				break;
			if (a->follow)
				fflush(stdout);
			shm_consumer_release(c);
		}
		if (shm_consumer_missed(c))
			fprintf(stderr, "klrec: missed %llu records (the producer lapped this reader)\n",
				(unsigned long long)shm_consumer_missed(c));
		active = NULL;
		shm_consumer_detach(c);
		shm_ring_close(r);
	} else if (a->file) {
		struct kl_recfile_reader *rd;
		struct kl_recfile_rec rec;
		char msg[300];
		uint64_t i = 0;
		int got;

		if (kl_recr_open(a->file, &rd, msg, sizeof(msg))) {
			fprintf(stderr, "klrec: %s\n", msg);
			return 1;
		}
		kl_recr_skip_corrupt(rd, a->skip);
		while ((got = kl_recr_next(rd, &rec)) > 0 && !err)
			err = print_rec(&b, rec.type, rec.data, rec.len, i++);
		if (got < 0) {
			fprintf(stderr, "klrec: %s: %s\n", a->file, kl_recr_error(rd));
			err = got;
		}
		if (kl_recr_corrupt_chunks(rd))
			fprintf(stderr, "klrec: %s: skipped %llu corrupt chunks\n", a->file,
				(unsigned long long)kl_recr_corrupt_chunks(rd));
		kl_recr_close(rd);
	} else {
		fputs("klrec print: FILE or --ring NAME is required\n", stderr);
		kl_buf_free(&b);
		return 2;
	}
	fflush(stdout);
	kl_buf_free(&b);
	if (err == -EIO && errno == EPIPE)
		return 0;
	return err ? 1 : 0;
}

static int cmd_info(const struct args *a)
{
	struct kl_recfile_reader *rd;
	struct kl_recfile_rec rec;
	uint64_t per_type[16] = { 0 }, other = 0, total = 0, bytes = 0, invalid = 0;
	uint64_t tmin = UINT64_MAX, tmax = 0;
	char msg[300];
	int got;

	if (!a->file) {
		fputs("klrec info: FILE is required\n", stderr);
		return 2;
	}
	if (kl_recr_open(a->file, &rd, msg, sizeof(msg))) {
		fprintf(stderr, "klrec: %s\n", msg);
		return 1;
	}
	kl_recr_skip_corrupt(rd, a->skip);
	while ((got = kl_recr_next(rd, &rec)) > 0) {
		total++;
		bytes += rec.len;
		if (rec.type < 16)
			per_type[rec.type]++;
		else
			other++;
		if (kl_rec_validate(rec.type, rec.data, rec.len))
			invalid++;
		if (rec.cap_ns < tmin)
			tmin = rec.cap_ns;
		if (rec.cap_ns > tmax)
			tmax = rec.cap_ns;
	}
	const struct kl_recfile_hdr *h = kl_recr_header(rd);
	printf("file:        %s\nring:        %s\nschema:      %u\nchunks:      %llu\nrecords:     %llu (%llu payload bytes)\n",
	       a->file, h->ring, h->schema_version, (unsigned long long)kl_recr_chunks(rd),
	       (unsigned long long)total, (unsigned long long)bytes);
	if (total)
		printf("span:        %.3f s\n", (double)(tmax - tmin) / 1e9);
	for (int t = 1; t < 16; t++)
		if (per_type[t]) {
			const struct kl_rec_info *ri = kl_rec_info((uint16_t)t);
			printf("  %-10s %llu\n", ri ? ri->name : "?", (unsigned long long)per_type[t]);
		}
	if (other)
		printf("  %-10s %llu\n", "other", (unsigned long long)other);
	printf("invalid:     %llu\ncorrupt:     %llu chunks skipped\n", (unsigned long long)invalid,
	       (unsigned long long)kl_recr_corrupt_chunks(rd));
	if (got < 0)
		fprintf(stderr, "klrec: %s: %s\n", a->file, kl_recr_error(rd));
	kl_recr_close(rd);
	return got < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (parse(argc, argv, &a))
		return 2;
	if (!strcmp(argv[1], "record"))
		return cmd_record(&a);
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(&a);
	if (!strcmp(argv[1], "print"))
		return cmd_print(&a);
	if (!strcmp(argv[1], "info"))
		return cmd_info(&a);
	fprintf(stderr, "klrec: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
