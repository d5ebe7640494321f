/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: BehaviorContract parser, and every compiler on whatever
 * parses, so hostile-but-valid contracts reach the emitters too; then the
 * gap policy loader (all six formats, detected from the content).
 * Built by tests/fuzz/run-fuzzers.sh; its seed corpus (fuzz_contract_corpus/)
 * also runs as a meson test through tests/contractc/fuzz_corpus_main.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_contract *c = NULL;
	struct cc_diag d = { 0 };

	if (cc_contract_parse("fuzz.yaml", (const char *)data, size, &c, &d) == 0) {
		for (int t = 0; t < CC_T_COUNT; t++) {
			char *out = NULL;
			if (cc_compile(c, (enum cc_target)t, &out, &d) == 0)
				free(out);
		}
		char *y = cc_contract_to_yaml(c, NULL);
		free(y);
	}
	cc_contract_free(c);
	c = NULL;
	const char *fmt = NULL;
	if (cc_policy_load("fuzz.policy", (const char *)data, size, &c, &fmt, &d) == 0)
		cc_contract_free(c);
	cc_diag_free(&d);
	return 0;
}
