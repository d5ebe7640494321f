/* SPDX-License-Identifier: Apache-2.0 */
/* Record files: round trips, truncation, corruption; the klrec CLI end to end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

static char dir[128];
static char file[256];
static char klrec[512];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kl-klrec.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/rec.klrec", dir);
	const char *b = getenv("KLOUDLENS_BUILD_ROOT");
	snprintf(klrec, sizeof(klrec), "%s/klrec/klrec", b ? b : "build");
}

static void teardown(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup failed\n");
}

TestSuite(recfile, .init = setup, .fini = teardown);
TestSuite(cli, .init = setup, .fini = teardown);

/* A syscall record whose path encodes i, of a size that varies with i. */
static size_t mk(uint8_t *buf, size_t cap, uint64_t i)
{
	struct kl_syscall sc = { 0 };
	struct kl_tail_builder b;
	char path[600];
	size_t n = (size_t)snprintf(path, sizeof(path), "/data/file-%llu-", (unsigned long long)i);

	memset(path + n, 'x', (i * 37) % 400);
	path[n + (i * 37) % 400] = 0;
	sc.ev.seq = i;
	sc.ev.pid = (uint32_t)(1000 + i % 7);
	sc.ev.tid = sc.ev.pid;
	memcpy(sc.ev.comm, "worker", 7);
	sc.nr = 257;
	sc.ret = (int64_t)(i % 5);
	memcpy(buf, &sc, sizeof(sc));
	kl_tail_init(&b, buf, sizeof(sc), cap);
	kl_tail_add_str(&b, KL_F_PATH, path);
	return kl_tail_finish(&b);
}

static void write_file(uint64_t n, bool z)
{
	struct kl_recfile_writer *w;
	uint8_t buf[1024];

	cr_assert_eq(kl_recw_open(file, "raw", z, &w), 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t len = mk(buf, sizeof(buf), i);
		cr_assert_eq(kl_recw_add(w, KL_REC_SYSCALL, 0, 1000 + i, buf, (uint32_t)len), 0);
	}
	cr_assert_eq(kl_recw_close(w), 0);
}

/* Reads until the end or an error; returns records read, *err the result. */
static uint64_t read_all(bool skip, int *err, char *msg, size_t msglen, uint64_t *corrupt)
{
	struct kl_recfile_reader *r;
	struct kl_recfile_rec rec;
	uint8_t buf[1024];
	uint64_t n = 0;
	int got;

	cr_assert_eq(kl_recr_open(file, &r, msg, msglen), 0, "%s", msg);
	kl_recr_skip_corrupt(r, skip);
	while ((got = kl_recr_next(r, &rec)) > 0) {
		uint64_t seq;
		memcpy(&seq, rec.data, 8);
		size_t len = mk(buf, sizeof(buf), seq);
		cr_assert_eq(rec.len, len, "record %lu length", seq);
		cr_assert_eq(memcmp(rec.data, buf, len), 0, "record %lu differs", seq);
		cr_assert_eq(rec.cap_ns, 1000 + seq);
		if (!skip)
			cr_assert_eq(seq, n, "records out of order");
		n++;
	}
	*err = got;
	snprintf(msg, msglen, "%s", kl_recr_error(r));
	if (corrupt)
		*corrupt = kl_recr_corrupt_chunks(r);
	kl_recr_close(r);
	return n;
}

Test(recfile, roundtrip_plain_and_compressed)
{
	char msg[256];
	int err;
	struct stat a, b;

	write_file(20000, false);
	cr_assert_eq(stat(file, &a), 0);
	cr_assert_eq(read_all(false, &err, msg, sizeof(msg), NULL), 20000);
	cr_assert_eq(err, 0, "%s", msg);
	write_file(20000, true);
	cr_assert_eq(stat(file, &b), 0);
	cr_assert_lt(b.st_size, a.st_size / 3, "zlib did not compress repetitive paths");
	cr_assert_eq(read_all(false, &err, msg, sizeof(msg), NULL), 20000);
	cr_assert_eq(err, 0, "%s", msg);
}

static uint64_t chunk_offset(int idx)
{
	FILE *f = fopen(file, "rb");
	uint64_t off = sizeof(struct kl_recfile_hdr);
	struct kl_recfile_chunk ch;

	for (int i = 0; i < idx; i++) {
		cr_assert_eq(fseeko(f, (off_t)off, SEEK_SET), 0);
		cr_assert_eq(fread(&ch, sizeof(ch), 1, f), 1);
		off += sizeof(ch) + ch.stored_len;
	}
	fclose(f);
	return off;
}

Test(recfile, truncated_file_keeps_earlier_records)
{
	char msg[256];
	int err;
	struct stat st;

	write_file(5000, false);   /* ~1.3 MB: several 256 KiB chunks */
	uint64_t c2 = chunk_offset(2);
	uint64_t before = 0;
	{
		/* count the records of chunks 0 and 1 */
		FILE *f = fopen(file, "rb");
		struct kl_recfile_chunk ch;
		uint64_t off = sizeof(struct kl_recfile_hdr);
		for (int i = 0; i < 2; i++) {
			fseeko(f, (off_t)off, SEEK_SET);
			cr_assert_eq(fread(&ch, sizeof(ch), 1, f), 1);
			before += ch.nrecs;
			off += sizeof(ch) + ch.stored_len;
		}
		fclose(f);
	}
	cr_assert_eq(stat(file, &st), 0);
	/* cut inside chunk 2's body, then inside its header */
	cr_assert_eq(truncate(file, (off_t)(c2 + 100)), 0);
	cr_assert_eq(read_all(false, &err, msg, sizeof(msg), NULL), before);
	cr_assert_eq(err, -ENODATA);
	char want[128];
	snprintf(want, sizeof(want), "chunk 2 at offset %llu: truncated body", (unsigned long long)c2);
	cr_assert_not_null(strstr(msg, want), "message: %s", msg);

	cr_assert_eq(truncate(file, (off_t)(c2 + 10)), 0);
	cr_assert_eq(read_all(false, &err, msg, sizeof(msg), NULL), before);
	cr_assert_eq(err, -ENODATA);
	snprintf(want, sizeof(want), "chunk 2 at offset %llu: truncated header", (unsigned long long)c2);
	cr_assert_not_null(strstr(msg, want), "message: %s", msg);

	/* a file cut exactly at a chunk boundary is a clean, shorter file */
	cr_assert_eq(truncate(file, (off_t)c2), 0);
	cr_assert_eq(read_all(false, &err, msg, sizeof(msg), NULL), before);
	cr_assert_eq(err, 0);
}

Test(recfile, corrupt_chunk_named_and_skippable)
{
	char msg[256];
	int err;
	uint64_t corrupt;

	write_file(5000, false);
	uint64_t c1 = chunk_offset(1), c2 = chunk_offset(2);
	int fd = open(file, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t x;
	cr_assert_eq(pread(fd, &x, 1, (off_t)(c1 + 500)), 1);
	x ^= 0x40;
	cr_assert_eq(pwrite(fd, &x, 1, (off_t)(c1 + 500)), 1);
	close(fd);

	uint64_t n = read_all(false, &err, msg, sizeof(msg), NULL);
	cr_assert_eq(err, -EBADMSG);
	char want[128];
	snprintf(want, sizeof(want), "chunk 1 at offset %llu: CRC mismatch", (unsigned long long)c1);
	cr_assert_not_null(strstr(msg, want), "message: %s", msg);
	cr_assert_gt(n, 0);

	uint64_t all = read_all(true, &err, msg, sizeof(msg), &corrupt);
	cr_assert_eq(err, 0, "%s", msg);
	cr_assert_eq(corrupt, 1);
	cr_assert_gt(all, n, "nothing after the corrupt chunk was recovered");

	/* a smashed chunk header: found by the reader, skipped by resync */
	fd = open(file, O_RDWR);
	uint32_t junk = 0xdeadbeef;
	cr_assert_eq(pwrite(fd, &junk, 4, (off_t)(c2 + 8)), 4);
	close(fd);
	read_all(false, &err, msg, sizeof(msg), NULL);
	cr_assert_eq(err, -EBADMSG);
	uint64_t all2 = read_all(true, &err, msg, sizeof(msg), &corrupt);
	cr_assert_eq(err, 0, "%s", msg);
	cr_assert_eq(corrupt, 2);
	cr_assert_lt(all2, all);
}

Test(recfile, bad_header_and_version)
{
	struct kl_recfile_reader *r;
	char msg[256];
	FILE *f = fopen(file, "wb");
	fputs("not a record file at all, definitely not one, no, not at all, no.......", f);
	fclose(f);
	cr_assert_eq(kl_recr_open(file, &r, msg, sizeof(msg)), -EBADMSG);
	cr_assert_not_null(strstr(msg, "bad magic"), "%s", msg);

	f = fopen(file, "wb");
	fputs("KLR", f);
	fclose(f);
	cr_assert_eq(kl_recr_open(file, &r, msg, sizeof(msg)), -EBADMSG);
	cr_assert_not_null(strstr(msg, "too short"), "%s", msg);

	write_file(10, false);
	int fd = open(file, O_RDWR);
	uint32_t v = KL_SCHEMA_VERSION + 7;
	cr_assert_eq(pwrite(fd, &v, 4, 12), 4);
	close(fd);
	cr_assert_eq(kl_recr_open(file, &r, msg, sizeof(msg)), -EPROTO);
	cr_assert_not_null(strstr(msg, "schema"), "%s", msg);
}

/* ---- the CLI ------------------------------------------------------------ */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fill_ring(const char *name, uint64_t n)
{
	struct shm_ring_opts o = SHM_RING_OPTS_INIT;
	struct shm_ring *r;
	uint8_t buf[1024];

	o.capacity = 1 << 22;
	cr_assert_eq(shm_ring_create(dir, name, &o, &r), 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t len = mk(buf, sizeof(buf), i);
		cr_assert_eq(shm_write(r, KL_REC_SYSCALL, buf, (uint32_t)len), 0);
	}
	shm_ring_close(r);
}

static json_t *load_lines(const char *path, size_t *count)
{
	FILE *f = fopen(path, "r");
	json_t *arr = json_array();
	char *line = NULL;
	size_t cap = 0;
	json_error_t je;

	cr_assert_not_null(f);
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, &je);
		cr_assert_not_null(j, "bad JSON line: %s", line);
		json_array_append_new(arr, j);
	}
	free(line);
	fclose(f);
	*count = json_array_size(arr);
	return arr;
}

Test(cli, print_ring_record_replay)
{
	char out[300], rec2[300];
	size_t n;

	fill_ring("raw", 300);
	snprintf(out, sizeof(out), "%s/print.jsonl", dir);
	cr_assert_eq(run("%s print --dir %s --ring raw > %s", klrec, dir, out), 0);
	json_t *a = load_lines(out, &n);
	cr_assert_eq(n, 300);
	json_t *j = json_array_get(a, 299);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "syscall");
	cr_assert_str_eq(json_string_value(json_object_get(j, "syscall")), "openat");
	cr_assert_str_eq(json_string_value(json_object_get(j, "comm")), "worker");
	cr_assert_eq(json_integer_value(json_object_get(j, "seq")), 299);
	cr_assert_not_null(strstr(json_string_value(json_object_get(j, "path")), "/data/file-299-"));
	json_decref(a);

	/* record what the ring holds, replay it into a fresh ring, print that */
	cr_assert_eq(run("%s record --dir %s --ring raw --from-oldest --count 300 -z -o %s 2>/dev/null",
			 klrec, dir, file), 0);
	cr_assert_eq(run("%s replay %s --dir %s --ring copy --create --capacity 4194304 2>/dev/null",
			 klrec, file, dir), 0);
	snprintf(rec2, sizeof(rec2), "%s/copy.jsonl", dir);
	cr_assert_eq(run("%s print --dir %s --ring copy > %s", klrec, dir, rec2), 0);
	cr_assert_eq(run("cmp -s %s %s", out, rec2), 0, "replayed ring prints differently");
	cr_assert_eq(run("%s print %s | cmp -s - %s", klrec, file, out), 0, "file prints differently");
	cr_assert_eq(run("%s info %s | grep -q 'records:     300'", klrec, file), 0);
}

Test(cli, corrupt_file_is_an_error_with_location)
{
	char err[300];

	write_file(5000, false);
	uint64_t c1 = chunk_offset(1);
	int fd = open(file, O_RDWR);
	cr_assert_eq(pwrite(fd, "XXXX", 4, (off_t)(c1 + 64)), 4);
	close(fd);
	snprintf(err, sizeof(err), "%s/err.txt", dir);
	cr_assert_eq(run("%s print %s > /dev/null 2> %s", klrec, file, err), 1);
	cr_assert_eq(run("grep -q 'chunk 1 at offset %llu: CRC mismatch' %s", (unsigned long long)c1, err), 0);
	cr_assert_eq(run("%s print --skip-corrupt %s > /dev/null 2>%s", klrec, file, err), 0);
	cr_assert_eq(run("grep -q 'skipped 1 corrupt chunks' %s", err), 0);
	cr_assert_eq(run("%s print --ring nope --dir %s 2>%s", klrec, dir, err), 1);
	cr_assert_eq(run("grep -q 'open ring .*/nope: No such file' %s", err), 0);
	cr_assert_eq(run("%s frobnicate 2>/dev/null", klrec), 2);
}
