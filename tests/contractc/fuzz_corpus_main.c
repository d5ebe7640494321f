/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs a libFuzzer target's seed corpus as an ordinary test: every file in
 * the directory given as argv[1] goes through LLVMFuzzerTestOneInput once
 * (under ASan/UBSan in the sanitized build). Exit 0 when all return.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	struct dirent **ents = NULL;
	int n, ran = 0;

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
		char *path = NULL, *data = NULL;
		size_t len = 0;
		if (ents[i]->d_name[0] != '.' && asprintf(&path, "%s/%s", argv[1], ents[i]->d_name) >= 0 &&
		    cc_read_file(path, &data, &len) == 0) {
			/* an exact-size copy, as libFuzzer passes it: no terminating
			 * NUL, so ASan sees any read past the input */
			uint8_t *exact = malloc(len ? len : 1);
			if (exact) {
				memcpy(exact, data, len);
				LLVMFuzzerTestOneInput(exact, len);
				free(exact);
				ran++;
			}
		}
		free(data);
		free(path);
		free(ents[i]);
	}
	free(ents);
	printf("%d corpus inputs ran\n", ran);
	return ran > 0 ? 0 : 1;
}
