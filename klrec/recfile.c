/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recfile.c - writer and reader of KloudLens record files.
 *
 * The reader trusts nothing: every length is checked against what the
 * file and the chunk hold before it is used, and every error names the
 * chunk index and byte offset where it was found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <kloudlens/record.h>
#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>

#define CHUNK_TARGET (256u << 10)

struct kl_recfile_writer {
	int fd;
	bool compress;
	uint8_t *buf;           /* raw chunk body being filled */
	size_t len;
	size_t cap;
	uint32_t nrecs;
	uint8_t *zbuf;
	size_t zcap;
	uint64_t count;
	int err;                /* first error; sticky */
};

struct kl_recfile_reader {
	FILE *f;
	uint64_t file_size;
	struct kl_recfile_hdr hdr;
	uint8_t *stored;
	size_t stored_cap;
	uint8_t *body;
	size_t body_cap;
	size_t body_len;
	size_t body_pos;
	uint32_t body_left;     /* records still expected in this chunk */
	uint64_t chunk_idx;     /* index of the chunk being read */
	uint64_t chunk_off;     /* file offset of its header */
	uint64_t next_off;      /* file offset of the next chunk header */
	uint64_t corrupt;
	bool skip;
	bool eof;
	bool loaded;            /* a chunk is loaded (chunk_idx names it) */
	bool hdr_ok;            /* the last chunk header read was sound */
	char err[256];
};

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int kl_recw_open(const char *path, const char *ring, bool compress, struct kl_recfile_writer **out)
{
	struct kl_recfile_writer *w;
	struct kl_recfile_hdr h;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cap = CHUNK_TARGET + 65536 + 64;
	w->buf = malloc(w->cap);
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	w->compress = compress;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (w->fd < 0) {
		err = -errno;
		free(w->buf);
		free(w);
		return err;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, KL_RECFILE_MAGIC, 8);
	h.format_version = KL_RECFILE_VERSION;
	h.schema_version = KL_SCHEMA_VERSION;
	h.created_real_ns = kl_now_real_ns();
	h.created_mono_ns = kl_now_mono_ns();
	snprintf(h.ring, sizeof(h.ring), "%s", ring ? ring : "");
	err = write_all(w->fd, &h, sizeof(h));
	if (err) {
		close(w->fd);
		free(w->buf);
		free(w);
		return err;
	}
	*out = w;
	return 0;
}

int kl_recw_flush(struct kl_recfile_writer *w)
{
	struct kl_recfile_chunk ch = { .magic = KL_RECFILE_CHUNK_MAGIC };
	const uint8_t *body = w->buf;
	size_t stored = w->len;
	int err;

	if (w->err || !w->nrecs)
		return w->err;
	if (w->compress) {
		uLongf zl = compressBound((uLong)w->len);
		if (zl > w->zcap) {
			uint8_t *z = realloc(w->zbuf, zl);
			if (!z)
				return w->err = -ENOMEM;
			w->zbuf = z;
			w->zcap = zl;
		}
		if (compress2(w->zbuf, &zl, w->buf, (uLong)w->len, 1) != Z_OK)
			return w->err = -EIO;
		/* Keep the raw body when compression does not pay. */
		if (zl < w->len) {
			body = w->zbuf;
			stored = zl;
			ch.flags = KL_RECFILE_ZLIB;
		}
	}
	ch.raw_len = (uint32_t)w->len;
	ch.stored_len = (uint32_t)stored;
	ch.nrecs = w->nrecs;
	ch.body_crc = (uint32_t)crc32(0, body, (uInt)stored);
	ch.hdr_crc = (uint32_t)crc32(0, (const Bytef *)&ch, offsetof(struct kl_recfile_chunk, hdr_crc));
	err = write_all(w->fd, &ch, sizeof(ch));
	if (!err)
		err = write_all(w->fd, body, stored);
	if (err)
		return w->err = err;
	w->len = 0;
	w->nrecs = 0;
	return 0;
}

int kl_recw_add(struct kl_recfile_writer *w, uint16_t type, uint16_t flags, uint64_t cap_ns,
		const void *data, uint32_t len)
{
	struct kl_recfile_rec_hdr rh = { .len = len, .type = type, .flags = flags, .cap_ns = cap_ns };
	size_t need = sizeof(rh) + (((size_t)len + 7) & ~(size_t)7);
	int err;

	if (w->err)
		return w->err;
	if (need > KL_RECFILE_MAX_CHUNK)
		return -EMSGSIZE;
	if (w->len + need > w->cap || w->len >= CHUNK_TARGET) {
		err = kl_recw_flush(w);
		if (err)
			return err;
	}
	if (need > w->cap) {
		uint8_t *b = realloc(w->buf, need);
		if (!b)
			return w->err = -ENOMEM;
		w->buf = b;
		w->cap = need;
	}
	memcpy(w->buf + w->len, &rh, sizeof(rh));
	memcpy(w->buf + w->len + sizeof(rh), data, len);
	memset(w->buf + w->len + sizeof(rh) + len, 0, need - sizeof(rh) - len);
	w->len += need;
	w->nrecs++;
	w->count++;
	return 0;
}

uint64_t kl_recw_count(const struct kl_recfile_writer *w)
{
	return w->count;
}

int kl_recw_close(struct kl_recfile_writer *w)
{
	int err;

	if (!w)
		return 0;
	err = kl_recw_flush(w);
	if (!err && fsync(w->fd) < 0 && errno != EINVAL)
		err = -errno;
	if (close(w->fd) < 0 && !err)
		err = -errno;
	free(w->buf);
	free(w->zbuf);
	free(w);
	return err;
}

/* ---- reader ------------------------------------------------------------ */

int kl_recr_open(const char *path, struct kl_recfile_reader **out, char *err, size_t errlen)
{
	struct kl_recfile_reader *r;
	struct stat st;
	int e;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->f = fopen(path, "rbe");
	if (!r->f) {
		e = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-e));
		free(r);
		return e;
	}
	if (fstat(fileno(r->f), &st) < 0) {
		e = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-e));
		goto fail;
	}
	r->file_size = (uint64_t)st.st_size;
	if (fread(&r->hdr, sizeof(r->hdr), 1, r->f) != 1) {
		e = -EBADMSG;
		snprintf(err, errlen, "%s: too short for a record file header (%llu bytes)", path,
			 (unsigned long long)r->file_size);
		goto fail;
	}
	if (memcmp(r->hdr.magic, KL_RECFILE_MAGIC, 8) != 0) {
		e = -EBADMSG;
		snprintf(err, errlen, "%s: not a KloudLens record file (bad magic)", path);
		goto fail;
	}
	if (r->hdr.format_version != KL_RECFILE_VERSION || r->hdr.schema_version != KL_SCHEMA_VERSION) {
		e = -EPROTO;
		snprintf(err, errlen, "%s: format version %u schema %u; this build reads format %u schema %u",
			 path, r->hdr.format_version, r->hdr.schema_version, KL_RECFILE_VERSION, KL_SCHEMA_VERSION);
		goto fail;
	}
	r->hdr.ring[sizeof(r->hdr.ring) - 1] = 0;
	r->next_off = sizeof(r->hdr);
	*out = r;
	return 0;
fail:
	fclose(r->f);
	free(r);
	return e;
}

void kl_recr_skip_corrupt(struct kl_recfile_reader *r, bool skip)
{
	r->skip = skip;
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	uint8_t *n;

	if (need <= *cap)
		return 0;
	n = realloc(*p, need);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = need;
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct kl_recfile_reader *r, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return e;
}

/* Find the next offset >= from holding a chunk header whose own CRC checks. */
static bool resync(struct kl_recfile_reader *r, uint64_t from)
{
	struct kl_recfile_chunk ch;

	for (uint64_t off = from; off + sizeof(ch) <= r->file_size; off++) {
		if (fseeko(r->f, (off_t)off, SEEK_SET) || fread(&ch, sizeof(ch), 1, r->f) != 1)
			return false;
		if (ch.magic == KL_RECFILE_CHUNK_MAGIC &&
		    ch.hdr_crc == (uint32_t)crc32(0, (const Bytef *)&ch, offsetof(struct kl_recfile_chunk, hdr_crc))) {
			r->next_off = off;
			return true;
		}
	}
	return false;
}

/* Load the chunk at r->next_off. 1 loaded, 0 clean EOF, <0 error (message set). */
static int load_chunk(struct kl_recfile_reader *r)
{
	struct kl_recfile_chunk ch;
	uint64_t off = r->next_off;

	if (off == r->file_size)
		return 0;
	r->chunk_off = off;
	r->hdr_ok = false;
	if (off + sizeof(ch) > r->file_size)
		return fail(r, -ENODATA, "chunk %llu at offset %llu: truncated header (%llu of %zu bytes)",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off,
			    (unsigned long long)(r->file_size - off), sizeof(ch));
	if (fseeko(r->f, (off_t)off, SEEK_SET) || fread(&ch, sizeof(ch), 1, r->f) != 1)
		return fail(r, -EIO, "chunk %llu at offset %llu: read error",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off);
	if (ch.magic != KL_RECFILE_CHUNK_MAGIC ||
	    ch.hdr_crc != (uint32_t)crc32(0, (const Bytef *)&ch, offsetof(struct kl_recfile_chunk, hdr_crc)))
		return fail(r, -EBADMSG, "chunk %llu at offset %llu: corrupt chunk header",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off);
	if (ch.raw_len > KL_RECFILE_MAX_CHUNK || ch.stored_len > KL_RECFILE_MAX_CHUNK ||
	    (!(ch.flags & KL_RECFILE_ZLIB) && ch.raw_len != ch.stored_len) || (ch.flags & ~KL_RECFILE_ZLIB))
		return fail(r, -EBADMSG, "chunk %llu at offset %llu: impossible lengths (raw %u, stored %u, flags %#x)",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off, ch.raw_len,
			    ch.stored_len, ch.flags);
	r->hdr_ok = true;
	if (off + sizeof(ch) + ch.stored_len > r->file_size)
		return fail(r, -ENODATA, "chunk %llu at offset %llu: truncated body (%llu of %u bytes)",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off,
			    (unsigned long long)(r->file_size - off - sizeof(ch)), ch.stored_len);
	if (grow(&r->stored, &r->stored_cap, ch.stored_len ? ch.stored_len : 1) ||
	    grow(&r->body, &r->body_cap, ch.raw_len ? ch.raw_len : 1))
		return fail(r, -ENOMEM, "chunk %llu: out of memory", (unsigned long long)r->chunk_idx);
	if (fread(r->stored, 1, ch.stored_len, r->f) != ch.stored_len)
		return fail(r, -EIO, "chunk %llu at offset %llu: read error",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off);
	r->next_off = off + sizeof(ch) + ch.stored_len;
	if ((uint32_t)crc32(0, r->stored, ch.stored_len) != ch.body_crc)
		return fail(r, -EBADMSG, "chunk %llu at offset %llu: CRC mismatch",
			    (unsigned long long)r->chunk_idx, (unsigned long long)off);
	if (ch.flags & KL_RECFILE_ZLIB) {
		uLongf out = ch.raw_len;
		if (uncompress(r->body, &out, r->stored, ch.stored_len) != Z_OK || out != ch.raw_len)
			return fail(r, -EBADMSG, "chunk %llu at offset %llu: bad zlib stream",
				    (unsigned long long)r->chunk_idx, (unsigned long long)off);
	} else {
		memcpy(r->body, r->stored, ch.raw_len);
	}
	r->body_len = ch.raw_len;
	r->body_pos = 0;
	r->body_left = ch.nrecs;
	r->loaded = true;
	return 1;
}

int kl_recr_next(struct kl_recfile_reader *r, struct kl_recfile_rec *rec)
{
	struct kl_recfile_rec_hdr rh;

	for (;;) {
		if (r->eof)
			return 0;
		if (r->body_left == 0) {
			if (r->loaded && r->body_pos != r->body_len) {
				int e = fail(r, -EBADMSG, "chunk %llu at offset %llu: %zu bytes after its last record",
					     (unsigned long long)r->chunk_idx, (unsigned long long)r->chunk_off,
					     r->body_len - r->body_pos);
				r->body_pos = r->body_len;
				if (!r->skip)
					return e;
				r->corrupt++;
			}
			if (r->loaded)
				r->chunk_idx++;
			r->loaded = false;
			int l = load_chunk(r);
			if (l == 0) {
				r->eof = true;
				return 0;
			}
			if (l < 0) {
				/* Truncation at the end cannot be skipped past; corruption can. */
				if (!r->skip || l == -ENODATA || l == -ENOMEM) {
					r->eof = true;
					return l;
				}
				r->corrupt++;
				r->chunk_idx++;
				/* A sound header says where the next chunk is; a broken one
				 * means scanning for the next header whose CRC checks. */
				if (r->hdr_ok) {
					r->next_off = r->chunk_off + sizeof(struct kl_recfile_chunk);
					if (fseeko(r->f, (off_t)r->chunk_off + 12, SEEK_SET) == 0) {
						uint32_t stored;
						if (fread(&stored, 4, 1, r->f) == 1)
							r->next_off += stored;
					}
					continue;
				}
				if (!resync(r, r->chunk_off + 1)) {
					r->eof = true;
					return 0;
				}
				continue;
			}
			continue;
		}
		if (r->body_len - r->body_pos < sizeof(rh))
			goto bad_rec;
		memcpy(&rh, r->body + r->body_pos, sizeof(rh));
		size_t span = sizeof(rh) + (((size_t)rh.len + 7) & ~(size_t)7);
		if (span > r->body_len - r->body_pos)
			goto bad_rec;
		rec->type = rh.type;
		rec->flags = rh.flags;
		rec->len = rh.len;
		rec->cap_ns = rh.cap_ns;
		rec->data = r->body + r->body_pos + sizeof(rh);
		r->body_pos += span;
		r->body_left--;
		return 1;
bad_rec:
		{
			int e = fail(r, -EBADMSG, "chunk %llu at offset %llu: record at body byte %zu overruns the chunk",
				     (unsigned long long)r->chunk_idx, (unsigned long long)r->chunk_off, r->body_pos);
			r->body_left = 0;
			r->body_pos = r->body_len;
			if (!r->skip)
				return e;
			r->corrupt++;
		}
	}
}

const char *kl_recr_error(const struct kl_recfile_reader *r)
{
	return r->err;
}

const struct kl_recfile_hdr *kl_recr_header(const struct kl_recfile_reader *r)
{
	return &r->hdr;
}

uint64_t kl_recr_corrupt_chunks(const struct kl_recfile_reader *r)
{
	return r->corrupt;
}

uint64_t kl_recr_chunks(const struct kl_recfile_reader *r)
{
	return r->chunk_idx + (r->loaded ? 1 : 0);
}

void kl_recr_close(struct kl_recfile_reader *r)
{
	if (!r)
		return;
	fclose(r->f);
	free(r->stored);
	free(r->body);
	free(r);
}
