/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.c - libshm: one producer, many consumers, variable-length records
 * in a shared-memory file. See DESIGN.md §2 for the rules this follows.
 *
 * Publication: the producer writes records, then store_release(head).
 * A consumer load_acquire(head) and reads every record below it. The
 * producer never writes into bytes a live required consumer has not
 * released; observers are not waited for, so they validate each copy
 * against hdr->tail (seqlock style) and count what they lost by the
 * gap in record sequence numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <kloudlens/atomics.h>
#include <kloudlens/record.h>

#include "shm-internal.h"

#define DEFAULT_CAPACITY (64ull << 20)
#define DEFAULT_GRACE_MS 5000u
#define DEFAULT_STALE_MS 30000u
#define SPIN_ROUNDS 256
#define WAIT_SLICE_MS 100       /* consumers heartbeat at least this often while waiting */
#define LIVENESS_EVERY_NS (10ull * 1000 * 1000)
#define OBS_BUF_BYTES (1u << 20)
#define SEGS 64

struct shm_ring {
	struct shm_hdr *hdr;
	uint8_t *data;
	uint64_t cap;
	uint64_t mask;
	size_t map_len;
	bool owns_map;          /* munmap on close */
	uint32_t pidns;

	/* producer-local state; meaningful only in the producing process */
	uint64_t res_head;      /* reserved, not yet published */
	uint64_t res_seq;
	uint64_t limit;         /* cached: may write below this position */
	uint64_t last_liveness;
	uint64_t last_res_pos;  /* payload start of the last reservation, for trim */
	uint32_t last_res_len;
	int pending;
	bool producer_init;
	/*
	 * Where the first record starting at or after each 1/SEGS of the ring
	 * begins, on the current lap. reclaim() jumps the tail with it instead
	 * of walking the headers of records written a lap ago: in a 64 MiB
	 * ring those headers are cold, one cache miss per record.
	 */
	uint64_t seg_first[SEGS];
	uint64_t last_rec_pos;
	unsigned seg_shift;
};

struct shm_consumer {
	struct shm_ring *r;
	struct shm_slot *slot;
	int idx;
	bool observer;
	uint64_t read_pos;      /* polled up to here; cursor is committed on release */
	uint64_t next_seq;
	uint32_t polled;
	uint8_t *obs_buf;       /* observers copy records out before trusting them */
	_Atomic int interrupted;
};

static shm_log_fn log_fn;
static void *log_ctx;

void shm_set_log(shm_log_fn fn, void *ctx)
{
	log_fn = fn;
	log_ctx = ctx;
}

__attribute__((format(printf, 2, 3)))
static void shm_log(int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_fn(level, buf, log_ctx);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t self_pidns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) < 0)
		return 0;
	return (uint32_t)st.st_ino;
}

static int futex_wait(_Atomic uint32_t *addr, uint32_t val, int timeout_ms)
{
	struct timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long)(timeout_ms % 1000) * 1000000L,
	};
	/* Not FUTEX_PRIVATE_FLAG: the word lives in memory other processes map. */
	long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val,
			 timeout_ms < 0 ? NULL : &ts, NULL, 0);
	return r < 0 ? -errno : 0;
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static uint64_t align8(uint64_t v)
{
	return (v + SHM_ALIGN - 1) & ~(uint64_t)(SHM_ALIGN - 1);
}

static uint32_t id_crc(const struct shm_hdr *h)
{
	return (uint32_t)crc32(0, (const Bytef *)h, offsetof(struct shm_hdr, id_crc));
}

size_t shm_ring_mem_size(uint64_t capacity)
{
	return SHM_HDR_SIZE + capacity;
}

uint64_t shm_ring_max_record(const struct shm_ring *r)
{
	return r->hdr->max_record;
}

static int opts_check(const struct shm_ring_opts *o, struct shm_ring_opts *out)
{
	struct shm_ring_opts d = SHM_RING_OPTS_INIT;

	if (o) {
		if (o->sz < offsetof(struct shm_ring_opts, capacity))
			return -EINVAL;
		/* Accept an older, smaller struct; reject a newer one with unknown non-zero tail. */
		if (o->sz > sizeof(*o)) {
			const uint8_t *p = (const uint8_t *)o;
			for (size_t i = sizeof(*o); i < o->sz; i++)
				if (p[i])
					return -EOPNOTSUPP;
		}
		memcpy(&d, o, o->sz < sizeof(d) ? o->sz : sizeof(d));
		d.sz = sizeof(d);
	}
	if (!d.capacity)
		d.capacity = DEFAULT_CAPACITY;
	if (d.capacity < 4096 || (d.capacity & (d.capacity - 1)) || d.capacity > (1ull << 40))
		return -EINVAL;
	if (d.policy != SHM_POLICY_DROP && d.policy != SHM_POLICY_BLOCK)
		return -EINVAL;
	if (!d.mode)
		d.mode = 0640;
	if (!d.grace_ms)
		d.grace_ms = DEFAULT_GRACE_MS;
	if (!d.stale_ms)
		d.stale_ms = DEFAULT_STALE_MS;
	*out = d;
	return 0;
}

static void hdr_init(struct shm_hdr *h, const char *name, const struct shm_ring_opts *o)
{
	uint64_t maxrec = o->capacity / 4;

	memset(h, 0, sizeof(*h));
	h->magic = SHM_MAGIC;
	h->layout_version = SHM_LAYOUT_VERSION;
	h->hdr_size = SHM_HDR_SIZE;
	h->capacity = o->capacity;
	h->policy = o->policy;
	h->grace_ms = o->grace_ms;
	h->stale_ms = o->stale_ms;
	if (maxrec > (16u << 20))
		maxrec = 16u << 20;
	h->max_record = (uint32_t)(maxrec - SHM_REC_HDR);
	h->created_ns = now_ns();
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->id_crc = id_crc(h);
}

static int hdr_check(const struct shm_hdr *h, size_t len)
{
	if (len < SHM_HDR_SIZE || h->magic != SHM_MAGIC)
		return -EBADMSG;
	if (h->layout_version != SHM_LAYOUT_VERSION)
		return -EPROTO;
	if (h->id_crc != id_crc(h))
		return -EBADMSG;
	if (h->hdr_size != SHM_HDR_SIZE || h->capacity < 4096 ||
	    (h->capacity & (h->capacity - 1)) || len < SHM_HDR_SIZE + h->capacity)
		return -EBADMSG;
	return 0;
}

static int ring_wrap(void *mem, size_t len, bool owns, struct shm_ring **out)
{
	struct shm_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->hdr = mem;
	r->data = (uint8_t *)mem + SHM_HDR_SIZE;
	r->cap = r->hdr->capacity;
	r->mask = r->cap - 1;
	r->map_len = len;
	r->owns_map = owns;
	r->pidns = self_pidns();
	*out = r;
	return 0;
}

int shm_ring_init_mem(void *mem, size_t len, const char *name,
		      const struct shm_ring_opts *opts, struct shm_ring **out)
{
	struct shm_ring_opts o;
	int err = opts_check(opts, &o);

	if (err)
		return err;
	if (!name || strlen(name) >= SHM_NAME_MAX)
		return -ENAMETOOLONG;
	if (len < shm_ring_mem_size(o.capacity))
		return -ENOSPC;
	hdr_init(mem, name, &o);
	return ring_wrap(mem, len, false, out);
}

int shm_ring_attach_mem(void *mem, size_t len, struct shm_ring **out)
{
	int err = hdr_check(mem, len);

	if (err)
		return err;
	return ring_wrap(mem, len, false, out);
}

static int ring_path(char *buf, size_t n, const char *dir, const char *name)
{
	if (!name || !*name || strchr(name, '/') || strlen(name) >= SHM_NAME_MAX)
		return -EINVAL;
	if ((size_t)snprintf(buf, n, "%s/%s", dir ? dir : SHM_DEFAULT_DIR, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	/* The rings dir is shared with the kloudlens group; others get nothing. */
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int map_fd(int fd, size_t len, void **mem)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		return -errno;
	*mem = m;
	return 0;
}

int shm_ring_open(const char *dir, const char *name, struct shm_ring **out)
{
	char path[PATH_MAX];
	struct stat st;
	void *mem = NULL;
	int fd, err;

	err = ring_path(path, sizeof(path), dir, name);
	if (err)
		return err;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if ((size_t)st.st_size < SHM_HDR_SIZE) {
		err = -EBADMSG;
		goto out;
	}
	err = map_fd(fd, (size_t)st.st_size, &mem);
	if (err)
		goto out;
	err = hdr_check(mem, (size_t)st.st_size);
	if (err) {
		shm_log(3, "ring %s: %s", path, err == -EPROTO ? "layout version mismatch" : "corrupt header");
		munmap(mem, (size_t)st.st_size);
		goto out;
	}
	err = ring_wrap(mem, (size_t)st.st_size, true, out);
	if (err)
		munmap(mem, (size_t)st.st_size);
out:
	close(fd);
	return err;
}

int shm_ring_create(const char *dir, const char *name,
		    const struct shm_ring_opts *opts, struct shm_ring **out)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct shm_ring_opts o;
	struct shm_ring *r = NULL;
	size_t len = 0;
	void *mem = NULL;
	int fd = -1, err;

	err = opts_check(opts, &o);
	if (err)
		return err;
	err = ring_path(path, sizeof(path), dir, name);
	if (err)
		return err;
	err = mkdir_p(dir ? dir : SHM_DEFAULT_DIR);
	if (err)
		return err;

	/* A compatible ring survives a producer restart with its consumers' cursors. */
	if (shm_ring_open(dir, name, &r) == 0) {
		if (r->cap == o.capacity && r->hdr->policy == o.policy) {
			store_release(&r->hdr->shutdown, 0);
			*out = r;
			return 0;
		}
		shm_log(4, "ring %s: capacity or policy changed, re-creating", path);
		shm_ring_close(r);
		r = NULL;
	}

	/* Build under a temporary name and rename: nobody maps a half-made ring. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, o.mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, o.mode) < 0 ||
	    (o.gid != (gid_t)-1 && fchown(fd, (uid_t)-1, o.gid) < 0)) {
		err = -errno;
		goto fail;
	}
	len = shm_ring_mem_size(o.capacity);
	if (ftruncate(fd, (off_t)len) < 0) {
		err = -errno;
		goto fail;
	}
	err = map_fd(fd, len, &mem);
	if (err)
		goto fail;
	hdr_init(mem, name, &o);
	if (rename(tmp, path) < 0) {
		err = -errno;
		goto fail;
	}
	close(fd);
	err = ring_wrap(mem, len, true, out);
	if (err)
		munmap(mem, len);
	return err;
fail:
	if (mem)
		munmap(mem, len);
	close(fd);
	unlink(tmp);
	return err;
}

void shm_ring_close(struct shm_ring *r)
{
	if (!r)
		return;
	if (r->pending)
		shm_publish(r);
	if (r->owns_map)
		munmap(r->hdr, r->map_len);
	free(r);
}

int shm_ring_unlink(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int err = ring_path(path, sizeof(path), dir, name);

	if (err)
		return err;
	return unlink(path) < 0 ? -errno : 0;
}

void shm_ring_shutdown(struct shm_ring *r)
{
	store_release(&r->hdr->shutdown, 1);
	add_relaxed(&r->hdr->space_futex, 1);
	futex_wake_all(&r->hdr->space_futex);
	add_relaxed(&r->hdr->data_futex, 1);
	futex_wake_all(&r->hdr->data_futex);
}

/* ---- liveness --------------------------------------------------------- */

static bool owner_gone(const struct shm_ring *r, const struct shm_slot *s, uint64_t now)
{
	int32_t pid = load_relaxed(&s->pid);
	uint64_t hb = load_relaxed(&s->heartbeat_ns);

	if (now > hb && now - hb > (uint64_t)r->hdr->stale_ms * 1000000ull)
		return true;
	/* A pid means something only inside the namespace it was taken in. */
	if (s->pidns && s->pidns == r->pidns && pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	return false;
}

/*
 * Move LIVE slots whose owner died to HELD, and HELD slots past the
 * grace period to DETACHED. Anyone may run this; the CAS makes the
 * transitions idempotent between racing checkers.
 */
static void check_liveness(struct shm_ring *r, uint64_t now)
{
	for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
		struct shm_slot *s = &r->hdr->slots[i];
		uint32_t st = load_acquire(&s->state);

		if (st == SLOT_LIVE && owner_gone(r, s, now)) {
			uint32_t exp = SLOT_LIVE;
			/* The grace period counts from the last sign of life. */
			if (atomic_compare_exchange_strong(&s->state, &exp, SLOT_HELD))
				shm_log(4, "ring %s: consumer %s (pid %d) gone, holding its cursor",
					r->hdr->name, s->name, (int)load_relaxed(&s->pid));
		} else if (st == SLOT_HELD) {
			uint64_t hb = load_relaxed(&s->heartbeat_ns);
			uint32_t exp = SLOT_HELD;
			if (now > hb && now - hb > (uint64_t)r->hdr->grace_ms * 1000000ull &&
			    atomic_compare_exchange_strong(&s->state, &exp, SLOT_DETACHED))
				shm_log(4, "ring %s: consumer %s detached after grace period",
					r->hdr->name, s->name);
		}
	}
}

/* ---- producer --------------------------------------------------------- */

static void producer_init(struct shm_ring *r)
{
	/* A restarted producer continues where the previous one published. */
	r->res_head = load_acquire(&r->hdr->head);
	r->res_seq = load_relaxed(&r->hdr->produced);
	r->limit = 0;
	store_relaxed(&r->hdr->producer_pid, (int32_t)getpid());
	/* Unknown after a restart: reclaim() falls back to walking until a lap has passed. */
	memset(r->seg_first, 0, sizeof(r->seg_first));
	r->last_rec_pos = r->res_head;
	r->seg_shift = (unsigned)__builtin_ctzll(r->cap / SEGS);
	r->producer_init = true;
}

/* Lowest cursor among consumers the producer must not overtake, + capacity. */
static uint64_t compute_limit(struct shm_ring *r, bool *any)
{
	uint64_t min = UINT64_MAX;

	*any = false;
	for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
		struct shm_slot *s = &r->hdr->slots[i];
		uint32_t st = load_acquire(&s->state); /* pairs with store_release in attach */

		if ((st != SLOT_LIVE && st != SLOT_HELD) || load_relaxed(&s->kind) != SHM_REQUIRED)
			continue;
		/* pairs with store_release(cursor) in shm_consumer_release() */
		uint64_t c = load_acquire(&s->cursor);
		if (c < min)
			min = c;
		*any = true;
	}
	return *any ? min + r->cap : UINT64_MAX;
}

/* Advance hdr->tail past records about to be overwritten (observers resync there). */
static void reclaim(struct shm_ring *r, uint64_t upto)
{
	uint64_t tail = load_relaxed(&r->hdr->tail);
	uint64_t head = r->res_head;

	if (upto <= tail + r->cap)
		return;
	/* Reclaim a sixteenth of the ring at a time: the fence below then costs
	 * once per many records; observers near the tail lose a little earlier. */
	upto += r->cap / 16;
	if (upto - r->cap >= head) {
		tail = head;    /* everything written is being reclaimed */
	} else {
		uint64_t seg = 1ull << r->seg_shift;
		uint64_t b = (upto - r->cap + seg - 1) & ~(seg - 1);
		for (int k = 0; k < SEGS && b < head; k++, b += seg) {
			uint64_t f = r->seg_first[(b >> r->seg_shift) % SEGS];
			/* a record boundary at or past b, written on this lap */
			if (f >= b && f <= head && f - b < r->cap) {
				tail = f;
				break;
			}
		}
	}
	while (tail + r->cap < upto && tail < head) {
		const struct shm_rec_hdr *h = (const void *)(r->data + (tail & r->mask));
		uint64_t span = h->type == KL_REC_PAD ? h->len : align8(SHM_REC_HDR + (uint64_t)h->len);
		if (span == 0 || span > r->cap) /* cannot happen unless memory was corrupted */
			span = r->cap - (tail & r->mask);
		tail += span;
	}
	store_relaxed(&r->hdr->tail, tail);
	/* Orders the tail store before the overwriting data stores; pairs with the
	 * acquire fence an observer issues after copying a record. */
	full_fence();
}

static int wait_space(struct shm_ring *r, uint64_t need_end)
{
	struct shm_hdr *h = r->hdr;
	uint64_t t0 = now_ns();
	bool any;
	int err = 0;

	/* Consumers can only free space for records they can see. */
	if (r->pending)
		shm_publish(r);
	for (int spin = 0;; spin++) {
		uint64_t now = now_ns();

		if (load_acquire(&h->shutdown)) {
			err = -EPIPE;
			break;
		}
		if (now - r->last_liveness > LIVENESS_EVERY_NS) {
			check_liveness(r, now);
			r->last_liveness = now;
		}
		r->limit = compute_limit(r, &any);
		if (need_end <= r->limit)
			break;
		if (spin < SPIN_ROUNDS) {
			cpu_relax();
			continue;
		}
		uint32_t seen = load_acquire(&h->space_futex);
		add_relaxed(&h->space_waiters, 1);
		/* Dekker with shm_consumer_release(): waiters++ then re-check cursors;
		 * it stores its cursor then checks waiters. */
		full_fence();
		r->limit = compute_limit(r, &any);
		if (need_end > r->limit)
			futex_wait(&h->space_futex, seen, WAIT_SLICE_MS);
		atomic_fetch_sub_explicit(&h->space_waiters, 1, memory_order_relaxed);
	}
	add_relaxed(&h->blocked_ns, now_ns() - t0);
	return err;
}

int shm_reserve(struct shm_ring *r, uint32_t len, uint16_t type, void **payload)
{
	struct shm_hdr *h = r->hdr;
	uint64_t total, pos, off, to_end, need_end;
	bool any;

	if (!r->producer_init)
		producer_init(r);
	if (len > h->max_record || type == KL_REC_PAD)
		return len > h->max_record ? -EMSGSIZE : -EINVAL;

	total = align8(SHM_REC_HDR + (uint64_t)len);
	pos = r->res_head;
	off = pos & r->mask;
	to_end = r->cap - off;
	need_end = pos + total + (to_end < total ? to_end : 0);

	if (need_end > r->limit) {
		r->limit = compute_limit(r, &any);
		if (need_end > r->limit) {
			uint64_t now = now_ns();
			if (now - r->last_liveness > LIVENESS_EVERY_NS) {
				check_liveness(r, now);
				r->last_liveness = now;
				r->limit = compute_limit(r, &any);
			}
		}
		if (need_end > r->limit) {
			if (h->policy == SHM_POLICY_DROP) {
				add_relaxed(&h->dropped, 1);
				return -ENOBUFS;
			}
			int err = wait_space(r, need_end);
			if (err)
				return err;
		}
	}
	reclaim(r, need_end);

	if (to_end < total) {
		struct shm_rec_hdr *pad = (void *)(r->data + off);
		pad->len = (uint32_t)to_end;
		pad->type = KL_REC_PAD;
		pad->flags = 0;
		pos += to_end;
		off = 0;
	}
	/* note the first record starting in every segment this one enters */
	if ((pos >> r->seg_shift) != (r->last_rec_pos >> r->seg_shift)) {
		uint64_t s0 = (r->last_rec_pos >> r->seg_shift) + 1, s1 = pos >> r->seg_shift;
		if (s1 - s0 >= SEGS)
			s0 = s1 - (SEGS - 1);
		for (uint64_t sg = s0; sg <= s1; sg++)
			r->seg_first[sg % SEGS] = pos;
	}
	r->last_rec_pos = pos;
	struct shm_rec_hdr *rh = (void *)(r->data + off);
	rh->len = len;
	rh->type = type;
	rh->flags = 0;
	rh->seq = r->res_seq++;
	r->res_head = pos + total;
	r->last_res_pos = pos;
	r->last_res_len = len;
	r->pending++;
	*payload = rh + 1;
	return 0;
}

void shm_trim(struct shm_ring *r, uint32_t len)
{
	struct shm_rec_hdr *rh;

	if (!r->pending || len > r->last_res_len)
		return;
	rh = (void *)(r->data + (r->last_res_pos & r->mask));
	rh->len = len;
	r->res_head = r->last_res_pos + align8(SHM_REC_HDR + (uint64_t)len);
	r->last_res_len = len;
}

int shm_publish(struct shm_ring *r)
{
	struct shm_hdr *h = r->hdr;
	uint64_t prev;
	int n = r->pending;

	if (!n)
		return 0;
	prev = load_relaxed(&h->head);
	store_relaxed(&h->produced, r->res_seq);
	add_relaxed(&h->produced_bytes, r->res_head - prev);
	/* Publishes every record written above; pairs with load_acquire(head) in poll. */
	store_release(&h->head, r->res_head);
	r->pending = 0;
	/* Dekker with a consumer going to sleep: head store, then waiters load. */
	full_fence();
	if (load_relaxed(&h->data_waiters)) {
		add_relaxed(&h->data_futex, 1);
		futex_wake_all(&h->data_futex);
	}
	return n;
}

int shm_write(struct shm_ring *r, uint16_t type, const void *data, uint32_t len)
{
	void *p;
	int err = shm_reserve(r, len, type, &p);

	if (err)
		return err;
	memcpy(p, data, len);
	shm_publish(r);
	return 0;
}

/* ---- consumer --------------------------------------------------------- */

static void slot_claim_fill(struct shm_ring *r, struct shm_slot *s, const char *name,
			    enum shm_consumer_kind kind)
{
	memset(s->name, 0, sizeof(s->name));
	snprintf(s->name, sizeof(s->name), "%s", name);
	store_relaxed(&s->kind, (uint32_t)kind);
	store_relaxed(&s->consumed, 0);
	store_relaxed(&s->missed, 0);
	store_relaxed(&s->drop_base, load_relaxed(&r->hdr->dropped));
	store_relaxed(&s->next_seq, load_relaxed(&r->hdr->produced));
	store_relaxed(&s->cursor, load_acquire(&r->hdr->head));
}

int shm_consumer_attach(struct shm_ring *r, const char *name, enum shm_consumer_kind kind,
			struct shm_consumer **out)
{
	struct shm_hdr *h = r->hdr;
	struct shm_slot *s = NULL;
	struct shm_consumer *c;
	uint64_t now = now_ns();
	int idx = -1;

	if (!name || !*name || strlen(name) >= SHM_NAME_MAX)
		return -EINVAL;
	if (kind != SHM_REQUIRED && kind != SHM_OBSERVER)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (kind == SHM_OBSERVER) {
		c->obs_buf = malloc(OBS_BUF_BYTES);
		if (!c->obs_buf) {
			free(c);
			return -ENOMEM;
		}
	}

	check_liveness(r, now);
	for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
		struct shm_slot *cand = &h->slots[i];
		uint32_t st = load_acquire(&cand->state);

		if (st == SLOT_FREE || st == SLOT_CLAIMING || strncmp(cand->name, name, SHM_NAME_MAX) != 0)
			continue;
		if (st == SLOT_LIVE) {
			int32_t pid = load_relaxed(&cand->pid);
			if (!owner_gone(r, cand, now) || pid == (int32_t)getpid()) {
				free(c->obs_buf);
				free(c);
				return -EBUSY;
			}
		}
		/* Same name: take it over. HELD resumes at the cursor; DETACHED
		 * restarts at the head and the seq gap counts as missed. */
		if (!atomic_compare_exchange_strong(&cand->state, &st, SLOT_CLAIMING))
			continue;
		if (st == SLOT_DETACHED) {
			uint64_t produced = load_relaxed(&h->produced);
			uint64_t was = load_relaxed(&cand->next_seq);
			if (produced > was)
				add_relaxed(&cand->missed, produced - was);
			store_relaxed(&cand->next_seq, produced);
			store_relaxed(&cand->cursor, load_acquire(&h->head));
		} else if (kind == SHM_OBSERVER || load_relaxed(&cand->kind) != (uint32_t)kind) {
			store_relaxed(&cand->kind, (uint32_t)kind);
		}
		s = cand;
		idx = i;
		break;
	}
	if (!s) {
		for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
			uint32_t exp = SLOT_FREE;
			if (atomic_compare_exchange_strong(&h->slots[i].state, &exp, SLOT_CLAIMING)) {
				s = &h->slots[i];
				idx = i;
				slot_claim_fill(r, s, name, kind);
				break;
			}
		}
	}
	if (!s) {
		free(c->obs_buf);
		free(c);
		return -ENOSPC;
	}
	store_relaxed(&s->pid, (int32_t)getpid());
	s->pidns = r->pidns;
	store_relaxed(&s->heartbeat_ns, now);
	/* Publishes the filled slot; pairs with load_acquire(state) in compute_limit(). */
	store_release(&s->state, SLOT_LIVE);

	c->r = r;
	c->slot = s;
	c->idx = idx;
	c->observer = kind == SHM_OBSERVER;
	c->read_pos = load_relaxed(&s->cursor);
	c->next_seq = load_relaxed(&s->next_seq);
	*out = c;
	return 0;
}

int shm_consumer_index(const struct shm_consumer *c)
{
	return c->idx;
}

uint64_t shm_consumer_dropped(const struct shm_consumer *c)
{
	return load_relaxed(&c->r->hdr->dropped) - load_relaxed(&c->slot->drop_base);
}

uint64_t shm_consumer_missed(const struct shm_consumer *c)
{
	return load_relaxed(&c->slot->missed);
}

uint64_t shm_consumer_consumed(const struct shm_consumer *c)
{
	return load_relaxed(&c->slot->consumed);
}

void shm_consumer_interrupt(struct shm_consumer *c)
{
	store_release(&c->interrupted, 1);
	add_relaxed(&c->r->hdr->data_futex, 1);
	futex_wake_all(&c->r->hdr->data_futex);
}

int shm_consumer_seek_oldest(struct shm_consumer *c)
{
	if (!c->observer)
		return -EINVAL;
	c->read_pos = load_relaxed(&c->r->hdr->tail);
	c->next_seq = UINT64_MAX;   /* whatever comes first is not a gap */
	return 0;
}

static void count_gap(struct shm_consumer *c, uint64_t seq)
{
	if (c->next_seq != UINT64_MAX && seq > c->next_seq)
		add_relaxed(&c->slot->missed, seq - c->next_seq);
	c->next_seq = seq + 1;
}

/* Required consumers read in place: the producer cannot overwrite unreleased bytes. */
static int read_inplace(struct shm_consumer *c, uint64_t head, struct shm_rec *recs, int max)
{
	struct shm_ring *r = c->r;
	uint64_t pos = c->read_pos;
	int n = 0;

	while (pos < head && n < max) {
		const struct shm_rec_hdr *rh = (const void *)(r->data + (pos & r->mask));
		if (rh->type == KL_REC_PAD) {
			pos += rh->len;
			continue;
		}
		recs[n].data = rh + 1;
		recs[n].len = rh->len;
		recs[n].type = rh->type;
		recs[n].flags = rh->flags;
		recs[n].seq = rh->seq;
		count_gap(c, rh->seq);
		n++;
		pos += align8(SHM_REC_HDR + (uint64_t)rh->len);
	}
	c->read_pos = pos;
	return n;
}

/*
 * Observers copy each record out, then check that the producer has not
 * reclaimed it meanwhile; a torn copy is discarded and the observer
 * resyncs at the tail. The seq gap to the next good record is exactly
 * what it missed.
 */
static int read_observer(struct shm_consumer *c, uint64_t head, struct shm_rec *recs, int max)
{
	struct shm_ring *r = c->r;
	uint64_t pos = c->read_pos;
	size_t used = 0;
	int n = 0;

	while (pos < head && n < max) {
		uint64_t tail = load_relaxed(&r->hdr->tail);
		if (pos < tail) {
			pos = tail;
			continue;
		}
		struct shm_rec_hdr rh;
		memcpy(&rh, r->data + (pos & r->mask), 8);
		if (rh.type == KL_REC_PAD) {
			uint64_t span = rh.len;
			acquire_fence();
			if (load_relaxed(&r->hdr->tail) > pos)
				continue;   /* torn: the loop resyncs at the tail */
			if (span == 0 || span > r->cap)
				return -EBADMSG;
			pos += span;
			continue;
		}
		memcpy(&rh, r->data + (pos & r->mask), sizeof(rh));
		uint64_t span = align8(SHM_REC_HDR + (uint64_t)rh.len);
		if (rh.len > r->hdr->max_record || span > r->cap - (pos & r->mask)) {
			acquire_fence();
			if (load_relaxed(&r->hdr->tail) > pos)
				continue;
			return -EBADMSG;
		}
		if (used + rh.len > OBS_BUF_BYTES) {
			if (n)
				break;
			return -EMSGSIZE;
		}
		memcpy(c->obs_buf + used, r->data + (pos & r->mask) + SHM_REC_HDR, rh.len);
		/* Pairs with the full fence in reclaim(): copy, then re-check tail. */
		acquire_fence();
		if (load_relaxed(&r->hdr->tail) > pos)
			continue;
		recs[n].data = c->obs_buf + used;
		recs[n].len = rh.len;
		recs[n].type = rh.type;
		recs[n].flags = rh.flags;
		recs[n].seq = rh.seq;
		count_gap(c, rh.seq);
		used += align8(rh.len);
		n++;
		pos += span;
	}
	c->read_pos = pos;
	return n;
}

int shm_consumer_poll(struct shm_consumer *c, struct shm_rec *recs, int max, int timeout_ms)
{
	struct shm_ring *r = c->r;
	struct shm_hdr *h = r->hdr;
	uint64_t deadline = 0, head;
	int spin = 0;

	if (max <= 0)
		return -EINVAL;
	if (c->polled)
		shm_consumer_release(c);
	store_relaxed(&c->slot->heartbeat_ns, now_ns());
	if (load_relaxed(&c->slot->state) == SLOT_DETACHED && !c->observer) {
		/* Detached while stalled: the producer may have overwritten our bytes. */
		uint64_t produced = load_relaxed(&h->produced);
		if (produced > c->next_seq)
			add_relaxed(&c->slot->missed, produced - c->next_seq);
		c->next_seq = produced;
		c->read_pos = load_acquire(&h->head);
		store_relaxed(&c->slot->cursor, c->read_pos);
		store_release(&c->slot->state, SLOT_LIVE);
	}
	if (timeout_ms > 0)
		deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		/* pairs with store_release(head) in shm_publish() */
		head = load_acquire(&h->head);
		if (head != c->read_pos) {
			int n = c->observer ? read_observer(c, head, recs, max)
					    : read_inplace(c, head, recs, max);
			if (n != 0) {
				c->polled = n > 0 ? (uint32_t)n : 0;
				return n;
			}
			/* only padding so far */
			continue;
		}
		if (atomic_exchange(&c->interrupted, 0))
			return -EINTR;
		if (timeout_ms == 0)
			return 0;
		if (spin++ < SPIN_ROUNDS) {
			cpu_relax();
			continue;
		}
		int slice = WAIT_SLICE_MS;
		if (timeout_ms > 0) {
			uint64_t now = now_ns();
			if (now >= deadline)
				return 0;
			uint64_t left = (deadline - now) / 1000000ull + 1;
			if (left < (uint64_t)slice)
				slice = (int)left;
		}
		uint32_t seen = load_acquire(&h->data_futex);
		add_relaxed(&h->data_waiters, 1);
		/* Dekker with shm_publish(): waiters++ then re-check head. */
		full_fence();
		if (load_acquire(&h->head) == c->read_pos && !load_relaxed(&c->interrupted))
			futex_wait(&h->data_futex, seen, slice);
		atomic_fetch_sub_explicit(&h->data_waiters, 1, memory_order_relaxed);
		store_relaxed(&c->slot->heartbeat_ns, now_ns());
	}
}

void shm_consumer_release(struct shm_consumer *c)
{
	struct shm_hdr *h = c->r->hdr;

	store_relaxed(&c->slot->next_seq, c->next_seq);
	add_relaxed(&c->slot->consumed, c->polled);
	c->polled = 0;
	/* Hands the bytes back to the producer; pairs with load_acquire(cursor) in compute_limit(). */
	store_release(&c->slot->cursor, c->read_pos);
	/* Dekker with wait_space(): cursor store, then waiters load. */
	full_fence();
	if (load_relaxed(&h->space_waiters)) {
		add_relaxed(&h->space_futex, 1);
		futex_wake_all(&h->space_futex);
	}
}

void shm_consumer_detach(struct shm_consumer *c)
{
	if (!c)
		return;
	if (c->polled)
		shm_consumer_release(c);
	memset(c->slot->name, 0, sizeof(c->slot->name));
	store_relaxed(&c->slot->pid, 0);
	store_release(&c->slot->state, SLOT_FREE);
	full_fence();
	if (load_relaxed(&c->r->hdr->space_waiters)) {
		add_relaxed(&c->r->hdr->space_futex, 1);
		futex_wake_all(&c->r->hdr->space_futex);
	}
	free(c->obs_buf);
	free(c);
}

void shm_consumer_abandon(struct shm_consumer *c)
{
	if (!c)
		return;
	free(c->obs_buf);
	free(c);
}

int shm_ring_info(struct shm_ring *r, struct shm_ring_info *info)
{
	struct shm_hdr *h = r->hdr;
	uint64_t head = load_acquire(&h->head);
	uint64_t dropped = load_relaxed(&h->dropped);

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", h->name);
	info->capacity = h->capacity;
	info->policy = h->policy;
	info->producer_pid = load_relaxed(&h->producer_pid);
	info->head = head;
	info->produced = load_relaxed(&h->produced);
	info->produced_bytes = load_relaxed(&h->produced_bytes);
	info->dropped = dropped;
	info->blocked_ns = load_relaxed(&h->blocked_ns);
	info->max_record = h->max_record;
	for (int i = 0; i < SHM_MAX_CONSUMERS; i++) {
		struct shm_slot *s = &h->slots[i];
		uint32_t st = load_acquire(&s->state);
		if (st == SLOT_FREE || st == SLOT_CLAIMING)
			continue;
		struct shm_consumer_info *ci = &info->consumers[info->nconsumers++];
		memcpy(ci->name, s->name, sizeof(ci->name));
		ci->name[sizeof(ci->name) - 1] = 0;
		ci->pid = load_relaxed(&s->pid);
		ci->kind = load_relaxed(&s->kind);
		ci->state = st;
		ci->cursor = load_relaxed(&s->cursor);
		ci->next_seq = load_relaxed(&s->next_seq);
		ci->consumed = load_relaxed(&s->consumed);
		ci->missed = load_relaxed(&s->missed);
		ci->dropped = dropped - load_relaxed(&s->drop_base);
		ci->lag_bytes = head > ci->cursor ? head - ci->cursor : 0;
	}
	return 0;
}
