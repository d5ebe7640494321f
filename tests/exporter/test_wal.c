/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "wal.h"

static struct test_env te;

static void setup(void)
{
	test_env_init(&te);
}

static void teardown(void)
{
	test_env_fini(&te);
}

TestSuite(wal, .init = setup, .fini = teardown);

/* A block of @count frames whose payload encodes its seq, so reads can be checked. */
static void block(struct xbuf *b, uint64_t first, uint32_t count)
{
	struct kl_codec c;

	kl_codec_init(&c, 0);
	b->len = 0;
	for (uint32_t i = 0; i < count; i++) {
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "envelope-%" PRIu64 "-padding-padding", first + i);

		kl_frame_put(&c, b, msg, n, 0);
	}
	kl_codec_fini(&c);
}

static struct kl_wal *open_wal(bool compress, uint64_t seg, uint64_t max)
{
	struct kl_wal_opts o = KL_WAL_OPTS_INIT;
	struct kl_wal *w;

	o.dir = te.wal;
	o.compress = compress;
	o.segment_bytes = seg;
	o.max_bytes = max;
	o.fsync = KL_WAL_FSYNC_BATCH;
	cr_assert_eq(kl_wal_open(&o, &w), 0);
	return w;
}

static void check_block(struct kl_wal *w, uint64_t seq, uint64_t first, uint32_t count)
{
	struct kl_wal_block b;
	struct xbuf want = { 0 };

	cr_assert_eq(kl_wal_read(w, seq, &b), 0, "read %" PRIu64, seq);
	cr_assert_eq(b.first_seq, first);
	cr_assert_eq(b.count, count);
	block(&want, first, count);
	cr_assert_eq(b.len, want.len);
	cr_assert_eq(memcmp(b.frames, want.p, want.len), 0);
	xbuf_free(&want);
}

static void fill(struct kl_wal *w, uint64_t first, int blocks, uint32_t per)
{
	struct xbuf b = { 0 };

	for (int i = 0; i < blocks; i++) {
		block(&b, first + i * per, per);
		cr_assert_eq(kl_wal_append(w, first + i * per, per, 1000 + first + (i + 1) * per - 1, b.p, b.len), 0);
	}
	xbuf_free(&b);
}

static void round_trip(bool compress)
{
	struct kl_wal *w = open_wal(compress, 4096, 1 << 30);
	struct kl_wal_stats st;

	fill(w, 0, 100, 10);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 1000);
	cr_assert_gt(st.segments, 2, "small segments roll over");
	for (uint64_t s = 0; s < 1000; s += 7)
		check_block(w, s, s / 10 * 10, 10);
	{
		struct kl_wal_block b;

		cr_assert_eq(kl_wal_read(w, 1000, &b), -EAGAIN);
	}
	kl_wal_close(w);
	/* reopen: same content, appends continue where it stopped */
	w = open_wal(compress, 4096, 1 << 30);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 1000);
	cr_assert_eq(st.last_ring_seq, 1000 + 999);
	cr_assert_eq(st.corrupt_regions, 0);
	cr_assert_eq(st.torn_bytes, 0);
	fill(w, 1000, 5, 10);
	check_block(w, 1042, 1040, 10);
	check_block(w, 3, 0, 10);
	kl_wal_close(w);
}

Test(wal, round_trip_plain) { round_trip(false); }
Test(wal, round_trip_compressed) { round_trip(true); }

static char *newest_segment(char *path, size_t len)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls %s/wal-*.seg | tail -1", te.wal);
	f = popen(cmd, "r");
	cr_assert(fgets(path, len, f));
	path[strcspn(path, "\n")] = 0;
	pclose(f);
	return path;
}

Test(wal, torn_tail_is_truncated)
{
	struct kl_wal *w = open_wal(false, 1 << 20, 1 << 30);
	struct kl_wal_stats st;
	char path[512];
	struct stat sb;
	int fd;

	fill(w, 0, 10, 5);
	kl_wal_close(w);
	newest_segment(path, sizeof(path));
	stat(path, &sb);
	/* a crash mid-append: half a record at the end */
	cr_assert_eq(truncate(path, sb.st_size - 20), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_eq(write(fd, "garbage-garbage-garbage", 23), 23);
	close(fd);
	w = open_wal(false, 1 << 20, 1 << 30);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 45, "the torn block is gone");
	cr_assert_gt(st.torn_bytes, 0);
	cr_assert_eq(st.corrupt_regions, 0);
	check_block(w, 44, 40, 5);
	/* appending again continues cleanly at 45 */
	fill(w, 45, 2, 5);
	kl_wal_close(w);
	w = open_wal(false, 1 << 20, 1 << 30);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 55);
	cr_assert_eq(st.torn_bytes, 0);
	check_block(w, 50, 50, 5);
	kl_wal_close(w);
}

Test(wal, mid_segment_corruption_skipped_counted_reported)
{
	struct kl_wal *w = open_wal(false, 1 << 20, 1 << 30);
	struct kl_wal_stats st;
	struct kl_wal_block b;
	char path[512];
	struct stat sb;
	int fd;

	fill(w, 0, 10, 5);
	kl_wal_close(w);
	newest_segment(path, sizeof(path));
	stat(path, &sb);
	/* flip bytes in the middle of the file: inside block 4 or 5 */
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "\xde\xad\xbe\xef", 4, sb.st_size / 2), 4);
	close(fd);
	w = open_wal(false, 1 << 20, 1 << 30);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 50, "valid records after the damage are kept");
	cr_assert_eq(st.corrupt_regions, 1);
	cr_assert_eq(st.corrupt_seqs, 5);
	cr_assert_eq(st.torn_bytes, 0);
	/* the damaged block is reported as a gap, never served */
	{
		uint64_t lost = UINT64_MAX;

		for (uint64_t s = 0; s < 50; s += 5) {
			int r = kl_wal_read(w, s, &b);

			if (r == -ENODATA) {
				lost = s;
				cr_assert_eq(b.gap_from, s);
				cr_assert_eq(b.gap_to, s + 4);
				cr_assert_not(b.gap_retention);
			} else {
				cr_assert_eq(r, 0);
				check_block(w, s, s, 5);
			}
		}
		cr_assert_neq(lost, UINT64_MAX);
	}
	kl_wal_close(w);
}

Test(wal, corruption_after_open_detected_on_read)
{
	struct kl_wal *w = open_wal(false, 1 << 20, 1 << 30);
	struct kl_wal_stats st;
	struct kl_wal_block b;
	char path[512];
	int fd;

	fill(w, 0, 4, 5);
	newest_segment(path, sizeof(path));
	fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "XX", 2, 32 + 40 + 3), 2);   /* payload of block 0 */
	close(fd);
	cr_assert_eq(kl_wal_read(w, 2, &b), -ENODATA);
	cr_assert_eq(b.gap_from, 0);
	cr_assert_eq(b.gap_to, 4);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.corrupt_regions, 1);
	check_block(w, 5, 5, 5);
	kl_wal_close(w);
}

Test(wal, retention_by_size)
{
	struct kl_wal *w = open_wal(false, 4096, 16384);
	struct kl_wal_stats st;
	struct kl_wal_block b;

	fill(w, 0, 200, 10);
	kl_wal_maintain(w);
	kl_wal_get_stats(w, &st);
	cr_assert_leq(st.bytes, 16384 + 4096);
	cr_assert_gt(st.oldest_seq, 0);
	cr_assert_gt(st.retention_deleted, 0);
	cr_assert_eq(kl_wal_read(w, 0, &b), -ENODATA);
	cr_assert(b.gap_retention);
	cr_assert_eq(b.gap_to + 1, st.oldest_seq);
	check_block(w, st.oldest_seq, st.oldest_seq, 10);
	kl_wal_close(w);
}

Test(wal, broken_segment_files)
{
	struct kl_wal *w;
	struct kl_wal_stats st;
	char path[512];
	int fd;

	mkdir(te.wal, 0750);
	/* a segment whose header never made it, and one full of garbage */
	snprintf(path, sizeof(path), "%s/wal-%020d.seg", te.wal, 0);
	fd = open(path, O_CREAT | O_WRONLY, 0640);
	cr_assert_eq(write(fd, "KLW", 3), 3);
	close(fd);
	snprintf(path, sizeof(path), "%s/wal-%020d.seg", te.wal, 7);
	fd = open(path, O_CREAT | O_WRONLY, 0640);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(write(fd, "random junk bytes!", 18), 18);
	close(fd);
	snprintf(path, sizeof(path), "%s/not-a-segment", te.wal);
	close(open(path, O_CREAT | O_WRONLY, 0640));
	w = open_wal(false, 1 << 20, 1 << 30);
	kl_wal_get_stats(w, &st);
	cr_assert_eq(st.next_seq, 0);
	fill(w, 0, 3, 4);
	check_block(w, 5, 4, 4);
	kl_wal_close(w);
}

Test(wal, append_rejects_bad_arguments)
{
	struct kl_wal *w = open_wal(false, 1 << 20, 1 << 30);

	fill(w, 0, 1, 5);
	cr_assert_eq(kl_wal_append(w, 3, 5, 0, "x", 1), -EINVAL, "overlapping seq");
	cr_assert_eq(kl_wal_append(w, 5, 0, 0, "x", 1), -EINVAL, "empty block");
	kl_wal_close(w);
}
