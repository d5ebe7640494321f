/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs a libFuzzer target's seed corpus as an ordinary test: each file in
 * argv[1] goes through LLVMFuzzerTestOneInput once, from an exact-size
 * buffer so the sanitizers see any read past the input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	struct dirent **ents = NULL;
	int n, ran = 0, rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	n = scandir(argv[1], &ents, NULL, alphasort);
	if (n < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		if (ents[i]->d_name[0] == '.' ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", argv[1], ents[i]->d_name) >= sizeof(path))
			goto next;
		FILE *f = fopen(path, "rb");
		if (!f) {
			perror(path);
			rc = 1;
			goto next;
		}
		fseek(f, 0, SEEK_END);
		long len = ftell(f);
		rewind(f);
		uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
		if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			ran++;
		}
		free(buf);
		fclose(f);
next:
		free(ents[i]);
	}
	free(ents);
	printf("%d inputs\n", ran);
	return rc || ran == 0;
}
