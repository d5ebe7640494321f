/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Record-file reader under fuzz: input = a whole file. Read it strictly
 * and with --skip-corrupt; every record handed out must lie inside its
 * chunk and decode without reading past its end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kloudlens/recfile.h>
#include <kloudlens/recutil.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(const char *path, bool skip)
{
	struct kl_recfile_reader *r;
	struct kl_recfile_rec rec;
	struct kl_buf b = { 0 };
	char msg[300];
	int n = 0;

	if (kl_recr_open(path, &r, msg, sizeof(msg)))
		return;
	kl_recr_skip_corrupt(r, skip);
	while (kl_recr_next(r, &rec) > 0 && n++ < 100000) {
		kl_buf_reset(&b);
		kl_rec_to_json(&b, rec.type, rec.data, rec.len, 0);
	}
	kl_buf_free(&b);
	kl_recr_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = memfd_create("fuzz-recfile", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		read_all(path, false);
		read_all(path, true);
	}
	close(fd);
	return 0;
}
