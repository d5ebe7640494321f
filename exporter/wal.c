/* SPDX-License-Identifier: Apache-2.0 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <zlib.h>

#define SEG_MAGIC "KLWAL001"
#define SEG_HDR 32
#define REC_MAGIC 0x524c574bu   /* "KWLR" little-endian */
#define REC_HDR 40
#define REC_F_DEFLATE 1u
#define REC_MAX (64u << 20)

struct seg_hdr {
	char magic[8];
	uint32_t version;
	uint32_t flags;
	uint64_t first_seq;
	uint64_t created_ns;
};
_Static_assert(sizeof(struct seg_hdr) == SEG_HDR, "segment header is on-disk ABI");

struct rec_hdr {
	uint32_t magic;
	uint32_t crc;       /* crc32 of everything after this field, payload included */
	uint32_t len;       /* stored payload bytes */
	uint32_t raw_len;   /* payload bytes after inflate */
	uint64_t first_seq;
	uint64_t ring_seq;
	uint32_t count;
	uint32_t flags;
};
_Static_assert(sizeof(struct rec_hdr) == REC_HDR, "record header is on-disk ABI");

struct seg {
	uint64_t first_seq;
	uint64_t size;
	uint64_t mtime_s;
	int fd;
};

struct blk_idx {
	uint64_t first_seq;
	uint64_t off;
	uint32_t count;
	uint32_t seg;       /* index into segs[] at the time; fixed up on deletion */
};

struct kl_wal {
	struct kl_wal_opts o;
	char *dir;
	int dirfd;
	struct seg *segs;
	uint32_t nsegs, capsegs;
	struct blk_idx *idx;
	size_t nidx, capidx;
	struct io_uring ring;
	bool ring_ready;
	z_stream def;
	bool def_ready;
	struct xbuf wbuf;   /* record being appended */
	struct xbuf rbuf;   /* record read back */
	struct xbuf ibuf;   /* inflated payload */
	uint64_t last_fsync_ns;
	bool dirty;
	struct kl_wal_stats st;
};

static uint64_t now_ns(clockid_t ck)
{
	struct timespec ts;

	clock_gettime(ck, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint32_t rec_crc(const struct rec_hdr *h, const uint8_t *payload)
{
	uLong c = crc32(0, Z_NULL, 0);

	c = crc32(c, (const Bytef *)h + 8, REC_HDR - 8);
	c = crc32(c, payload, h->len);
	return (uint32_t)c;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int seg_name(char *buf, size_t len, uint64_t first)
{
	int n = snprintf(buf, len, "wal-%020" PRIu64 ".seg", first);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int push_seg(struct kl_wal *w, const struct seg *s)
{
	if (w->nsegs == w->capsegs) {
		uint32_t cap = w->capsegs ? w->capsegs * 2 : 16;
		struct seg *n = realloc(w->segs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->segs = n;
		w->capsegs = cap;
	}
	w->segs[w->nsegs++] = *s;
	return 0;
}

static int push_idx(struct kl_wal *w, uint64_t first, uint32_t count, uint32_t seg, uint64_t off)
{
	if (w->nidx == w->capidx) {
		size_t cap = w->capidx ? w->capidx * 2 : 1024;
		struct blk_idx *n = realloc(w->idx, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->idx = n;
		w->capidx = cap;
	}
	w->idx[w->nidx++] = (struct blk_idx){ first, off, count, seg };
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* Read and check the record at @off of @fd (file @size bytes); 0 if valid. */
static int read_rec(struct kl_wal *w, int fd, uint64_t off, uint64_t size, struct rec_hdr *h)
{
	ssize_t n;

	if (off + REC_HDR > size)
		return -EBADMSG;
	n = pread(fd, h, REC_HDR, (off_t)off);
	if (n != REC_HDR)
		return n < 0 ? -errno : -EBADMSG;
	if (h->magic != REC_MAGIC || h->len > REC_MAX || h->raw_len > REC_MAX || h->count == 0 ||
	    off + REC_HDR + h->len > size)
		return -EBADMSG;
	w->rbuf.len = 0;
	if (xbuf_reserve(&w->rbuf, h->len ? h->len : 1))
		return -ENOMEM;
	n = pread(fd, w->rbuf.p, h->len, (off_t)(off + REC_HDR));
	if (n < 0)
		return -errno;
	if ((uint32_t)n != h->len)
		return -EBADMSG;
	w->rbuf.len = h->len;
	if (rec_crc(h, w->rbuf.p) != h->crc)
		return -EBADMSG;
	return 0;
}

/*
 * Walk one segment, indexing every valid record. A bad record followed
 * by a valid one is mid-segment corruption (skipped, counted); a bad
 * region running to the end of the newest segment is a torn tail
 * (truncated, since the append that made it never completed).
 */
static int scan_seg(struct kl_wal *w, uint32_t si, bool newest)
{
	struct seg *s = &w->segs[si];
	uint64_t off = SEG_HDR, bad_at = 0, expect = s->first_seq;
	bool in_bad = false;
	struct rec_hdr h;
	int r;

	while (off < s->size) {
		r = read_rec(w, s->fd, off, s->size, &h);
		if (r == -ENOMEM)
			return r;
		if (r == 0 && h.first_seq >= expect) {
			if (in_bad) {
				w->st.corrupt_regions++;
				w->st.corrupt_seqs += h.first_seq - expect;
				in_bad = false;
			}
			r = push_idx(w, h.first_seq, h.count, si, off);
			if (r)
				return r;
			expect = h.first_seq + h.count;
			w->st.last_ring_seq = h.ring_seq;
			off += pad8(REC_HDR + h.len);
			continue;
		}
		if (!in_bad) {
			in_bad = true;
			bad_at = off;
		}
		off += 8;
	}
	if (in_bad) {
		if (newest) {
			if (ftruncate(s->fd, (off_t)bad_at) < 0)
				return -errno;
			w->st.torn_bytes += s->size - bad_at;
			s->size = bad_at;
		} else {
			/* the rest of an older segment is lost: counted at the next segment */
			w->st.corrupt_regions++;
		}
	}
	return 0;
}

static int open_existing(struct kl_wal *w)
{
	DIR *d = fdopendir(dup(w->dirfd));
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		unsigned long long first;
		struct seg s = { .fd = -1 };
		struct seg_hdr sh;
		struct stat sb;
		char tail[8];

		if (sscanf(e->d_name, "wal-%20llu.se%1s", &first, tail) != 2 || strcmp(tail, "g"))
			continue;
		s.fd = openat(w->dirfd, e->d_name, O_RDWR | O_CLOEXEC);
		if (s.fd < 0) {
			r = -errno;
			goto out;
		}
		if (fstat(s.fd, &sb) < 0 || pread(s.fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh) ||
		    memcmp(sh.magic, SEG_MAGIC, 8) || sh.first_seq != first) {
			/* a segment whose header never made it: nothing in it was acknowledged */
			close(s.fd);
			unlinkat(w->dirfd, e->d_name, 0);
			continue;
		}
		s.first_seq = first;
		s.size = sb.st_size;
		s.mtime_s = sb.st_mtime;
		r = push_seg(w, &s);
		if (r) {
			close(s.fd);
			goto out;
		}
	}
	if (w->nsegs)
		qsort(w->segs, w->nsegs, sizeof(*w->segs), cmp_seg);
	for (uint32_t i = 0; i < w->nsegs; i++) {
		uint64_t expect = w->nidx ? w->idx[w->nidx - 1].first_seq + w->idx[w->nidx - 1].count
					 : w->segs[i].first_seq;

		if (w->segs[i].first_seq > expect) {
			/* an older segment lost its tail */
			w->st.corrupt_seqs += w->segs[i].first_seq - expect;
		}
		r = scan_seg(w, i, i == w->nsegs - 1);
		if (r)
			goto out;
	}
out:
	closedir(d);
	return r;
}

static int new_segment(struct kl_wal *w, uint64_t first)
{
	struct seg_hdr sh = { .version = 1, .first_seq = first };
	struct seg s = { .first_seq = first, .size = SEG_HDR };
	char name[64];
	int r;

	memcpy(sh.magic, SEG_MAGIC, 8);
	sh.created_ns = now_ns(CLOCK_REALTIME);
	r = seg_name(name, sizeof(name), first);
	if (r)
		return r;
	s.fd = openat(w->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (s.fd < 0)
		return -errno;
	if (pwrite(s.fd, &sh, sizeof(sh), 0) != (ssize_t)sizeof(sh)) {
		r = -EIO;
		goto fail;
	}
	/* the new name must survive a crash, or the records in it are lost */
	if (w->o.fsync != KL_WAL_FSYNC_NONE && (fdatasync(s.fd) < 0 || fsync(w->dirfd) < 0)) {
		r = -errno;
		goto fail;
	}
	s.mtime_s = now_ns(CLOCK_REALTIME) / 1000000000ull;
	r = push_seg(w, &s);
	if (r)
		goto fail;
	w->st.segments = w->nsegs;
	return 0;
fail:
	close(s.fd);
	unlinkat(w->dirfd, name, 0);
	return r;
}

static void delete_oldest(struct kl_wal *w)
{
	char name[64];
	size_t drop = 0;

	if (seg_name(name, sizeof(name), w->segs[0].first_seq) == 0)
		unlinkat(w->dirfd, name, 0);
	close(w->segs[0].fd);
	w->st.bytes -= w->segs[0].size;
	memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof(*w->segs));
	w->nsegs--;
	while (drop < w->nidx && w->idx[drop].seg == 0)
		drop++;
	if (drop)
		memmove(w->idx, w->idx + drop, (w->nidx - drop) * sizeof(*w->idx));
	w->nidx -= drop;
	for (size_t i = 0; i < w->nidx; i++)
		w->idx[i].seg--;
	w->st.retention_deleted++;
	w->st.segments = w->nsegs;
}

static void recompute(struct kl_wal *w)
{
	w->st.bytes = 0;
	for (uint32_t i = 0; i < w->nsegs; i++)
		w->st.bytes += w->segs[i].size;
	w->st.segments = w->nsegs;
	w->st.oldest_seq = w->nidx ? w->idx[0].first_seq : w->st.next_seq;
}

int kl_wal_maintain(struct kl_wal *w)
{
	uint64_t now_s = now_ns(CLOCK_REALTIME) / 1000000000ull;
	int r = 0;

	/* never the active (last) segment: appends go there */
	while (w->nsegs > 1 &&
	       (w->st.bytes > w->o.max_bytes ||
		(w->o.max_age_s && w->segs[1].mtime_s + w->o.max_age_s < now_s)))
		delete_oldest(w);
	recompute(w);
	if (w->o.fsync == KL_WAL_FSYNC_INTERVAL && w->dirty && w->nsegs &&
	    now_ns(CLOCK_MONOTONIC) - w->last_fsync_ns >= w->o.fsync_interval_ms * 1000000ull) {
		if (fdatasync(w->segs[w->nsegs - 1].fd) < 0)
			r = -errno;
		w->last_fsync_ns = now_ns(CLOCK_MONOTONIC);
		w->dirty = false;
		w->st.fsyncs++;
	}
	return r;
}

int kl_wal_open(const struct kl_wal_opts *opts, struct kl_wal **out)
{
	struct kl_wal *w;
	int r;

	if (!opts || opts->sz < sizeof(size_t) || !opts->dir)
		return -EINVAL;
	if (opts->sz > sizeof(*opts)) {
		for (size_t i = sizeof(*opts); i < opts->sz; i++)
			if (((const uint8_t *)opts)[i])
				return -E2BIG;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->dirfd = -1;
	memcpy(&w->o, opts, opts->sz < sizeof(*opts) ? opts->sz : sizeof(*opts));
	if (!w->o.segment_bytes)
		w->o.segment_bytes = 64ull << 20;
	if (!w->o.max_bytes)
		w->o.max_bytes = 1ull << 30;
	if (!w->o.fsync_interval_ms)
		w->o.fsync_interval_ms = 1000;
	w->st.last_ring_seq = UINT64_MAX;
	w->dir = strdup(opts->dir);
	if (!w->dir) {
		r = -ENOMEM;
		goto fail;
	}
	if (mkdir(w->dir, 0750) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	r = io_uring_queue_init(8, &w->ring, 0);
	if (r < 0)
		goto fail;
	w->ring_ready = true;
	r = open_existing(w);
	if (r)
		goto fail;
	if (w->nidx)
		w->st.next_seq = w->idx[w->nidx - 1].first_seq + w->idx[w->nidx - 1].count;
	else if (w->nsegs)
		w->st.next_seq = w->segs[w->nsegs - 1].first_seq;
	recompute(w);
	w->last_fsync_ns = now_ns(CLOCK_MONOTONIC);
	*out = w;
	return 0;
fail:
	kl_wal_close(w);
	return r;
}

void kl_wal_close(struct kl_wal *w)
{
	if (!w)
		return;
	if (w->dirty && w->nsegs && w->o.fsync != KL_WAL_FSYNC_NONE)
		fdatasync(w->segs[w->nsegs - 1].fd);
	for (uint32_t i = 0; i < w->nsegs; i++)
		close(w->segs[i].fd);
	if (w->ring_ready)
		io_uring_queue_exit(&w->ring);
	if (w->def_ready)
		deflateEnd(&w->def);
	if (w->dirfd >= 0)
		close(w->dirfd);
	xbuf_free(&w->wbuf);
	xbuf_free(&w->rbuf);
	xbuf_free(&w->ibuf);
	free(w->segs);
	free(w->idx);
	free(w->dir);
	free(w);
}

/* Deflate @len bytes into wbuf after the header; false if it did not shrink. */
static bool deflate_payload(struct kl_wal *w, const void *src, size_t len)
{
	uLong bound;

	if (!w->def_ready) {
		if (deflateInit(&w->def, Z_BEST_SPEED) != Z_OK)
			return false;
		w->def_ready = true;
	} else {
		deflateReset(&w->def);
	}
	bound = deflateBound(&w->def, len);
	if (xbuf_reserve(&w->wbuf, bound + 8))
		return false;
	w->def.next_in = (Bytef *)src;
	w->def.avail_in = len;
	w->def.next_out = w->wbuf.p + REC_HDR;
	w->def.avail_out = bound;
	if (deflate(&w->def, Z_FINISH) != Z_STREAM_END || w->def.total_out >= len)
		return false;
	w->wbuf.len = REC_HDR + w->def.total_out;
	return true;
}

/* Submit the record through io_uring; retry what a short write left. */
static int uring_write(struct kl_wal *w, int fd, const uint8_t *p, size_t len, uint64_t off,
		       bool sync)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int r, nwait = sync ? 2 : 1, res_w = -EIO, res_s = 0;

	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, fd, p, len, off);
	sqe->user_data = 1;
	if (sync) {
		/* linked: the fdatasync only runs once the write completed */
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		sqe->user_data = 2;
	}
	r = io_uring_submit_and_wait(&w->ring, nwait);
	if (r < 0)
		return r;
	for (int i = 0; i < nwait; i++) {
		r = io_uring_wait_cqe(&w->ring, &cqe);
		if (r < 0)
			return r;
		if (cqe->user_data == 1)
			res_w = cqe->res;
		else
			res_s = cqe->res;
		io_uring_cqe_seen(&w->ring, cqe);
	}
	if (res_w < 0)
		return res_w;
	if ((size_t)res_w < len) {
		/* short write (full disk is the usual cause): finish it plainly */
		ssize_t n = pwrite(fd, p + res_w, len - res_w, (off_t)(off + (size_t)res_w));

		if (n < 0 || (size_t)n != len - res_w)
			return n < 0 ? -errno : -ENOSPC;
		if (sync && fdatasync(fd) < 0)
			return -errno;
		return 0;
	}
	return res_s < 0 && res_s != -ECANCELED ? res_s : 0;
}

int kl_wal_append(struct kl_wal *w, uint64_t first_seq, uint32_t count, uint64_t ring_seq,
		  const void *frames, size_t len)
{
	struct rec_hdr h = { .magic = REC_MAGIC, .first_seq = first_seq, .ring_seq = ring_seq,
			     .count = count, .raw_len = len, .len = len };
	struct seg *s;
	size_t total;
	bool sync;
	int r;

	if (!count || len > REC_MAX)
		return -EINVAL;
	/* a gap is allowed (a failed append left one; readers report it), overlap is not */
	if (w->nidx && first_seq < w->st.next_seq)
		return -EINVAL;
	w->wbuf.len = 0;
	r = xbuf_reserve(&w->wbuf, REC_HDR + len + 8);
	if (r)
		goto err;
	if (w->o.compress && deflate_payload(w, frames, len)) {
		h.flags |= REC_F_DEFLATE;
		h.len = w->wbuf.len - REC_HDR;
	} else {
		memcpy(w->wbuf.p + REC_HDR, frames, len);
		w->wbuf.len = REC_HDR + len;
	}
	total = pad8(w->wbuf.len);
	memset(w->wbuf.p + w->wbuf.len, 0, total - w->wbuf.len);
	h.crc = rec_crc(&h, w->wbuf.p + REC_HDR);
	memcpy(w->wbuf.p, &h, REC_HDR);

	if (!w->nsegs || w->segs[w->nsegs - 1].size + total > w->o.segment_bytes) {
		if (w->nsegs && w->dirty && w->o.fsync != KL_WAL_FSYNC_NONE)
			fdatasync(w->segs[w->nsegs - 1].fd);
		r = new_segment(w, first_seq);
		if (r)
			goto err;
		kl_wal_maintain(w);
	}
	s = &w->segs[w->nsegs - 1];
	sync = w->o.fsync == KL_WAL_FSYNC_BATCH;
	if (w->o.fsync == KL_WAL_FSYNC_INTERVAL &&
	    now_ns(CLOCK_MONOTONIC) - w->last_fsync_ns >= w->o.fsync_interval_ms * 1000000ull)
		sync = true;
	r = uring_write(w, s->fd, w->wbuf.p, total, s->size, sync);
	if (r) {
		/* an append that failed must not leave a half record for the next one */
		if (ftruncate(s->fd, (off_t)s->size) < 0)
			r = -errno;
		goto err;
	}
	if (sync) {
		w->last_fsync_ns = now_ns(CLOCK_MONOTONIC);
		w->st.fsyncs++;
		w->dirty = false;
	} else {
		w->dirty = true;
	}
	r = push_idx(w, first_seq, count, w->nsegs - 1, s->size);
	if (r)
		goto err;
	s->size += total;
	s->mtime_s = now_ns(CLOCK_REALTIME) / 1000000000ull;
	w->st.bytes += total;
	w->st.next_seq = first_seq + count;
	w->st.last_ring_seq = ring_seq;
	if (w->nidx == 1)
		w->st.oldest_seq = first_seq;
	w->st.appends++;
	w->st.append_bytes += total;
	return 0;
err:
	w->st.errors++;
	return r;
}

int kl_wal_read(struct kl_wal *w, uint64_t seq, struct kl_wal_block *blk)
{
	size_t lo = 0, hi = w->nidx;
	struct blk_idx *b;
	struct rec_hdr h;
	struct seg *s;
	int r;

	memset(blk, 0, sizeof(*blk));
	if (seq >= w->st.next_seq)
		return -EAGAIN;
	if (!w->nidx || seq < w->idx[0].first_seq) {
		blk->gap_from = seq;
		blk->gap_to = (w->nidx ? w->idx[0].first_seq : w->st.next_seq) - 1;
		blk->gap_retention = true;
		return -ENODATA;
	}
	/* last block with first_seq <= seq */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->idx[mid].first_seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	b = &w->idx[lo];
	if (seq >= b->first_seq + b->count) {
		/* inside a corrupt region skipped at open */
		blk->gap_from = seq;
		blk->gap_to = (lo + 1 < w->nidx ? w->idx[lo + 1].first_seq : w->st.next_seq) - 1;
		return -ENODATA;
	}
	s = &w->segs[b->seg];
	r = read_rec(w, s->fd, b->off, s->size, &h);
	if (r == -ENOMEM)
		return r;
	if (r || h.first_seq != b->first_seq || h.count != b->count) {
		/* went bad after open: never serve it, report it once */
		w->st.corrupt_regions++;
		w->st.corrupt_seqs += b->count;
		blk->gap_from = b->first_seq;
		blk->gap_to = b->first_seq + b->count - 1;
		memmove(b, b + 1, (w->nidx - lo - 1) * sizeof(*b));
		w->nidx--;
		return -ENODATA;
	}
	blk->first_seq = h.first_seq;
	blk->count = h.count;
	if (h.flags & REC_F_DEFLATE) {
		uLongf dl = h.raw_len;

		w->ibuf.len = 0;
		r = xbuf_reserve(&w->ibuf, h.raw_len ? h.raw_len : 1);
		if (r)
			return r;
		if (uncompress(w->ibuf.p, &dl, w->rbuf.p, h.len) != Z_OK || dl != h.raw_len)
			return -EBADMSG;
		blk->frames = w->ibuf.p;
		blk->len = dl;
	} else {
		blk->frames = w->rbuf.p;
		blk->len = h.len;
	}
	return 0;
}

void kl_wal_get_stats(const struct kl_wal *w, struct kl_wal_stats *st)
{
	*st = w->st;
}
