/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: observed Profile parser, then generate + gap (the
 * generated contract as the policy) for every workload that parses.
 * Seed corpus: fuzz_profile_corpus/ (also a meson test).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_profile *p = NULL;
	struct cc_diag d = { 0 };

	if (cc_profile_parse("fuzz.json", (const char *)data, size, &p, &d) == 0) {
		for (size_t w = 0; w < p->nw && w < 4; w++) {
			struct cc_contract *c = NULL;
			struct cc_gap *g = NULL;
			if (cc_generate(p, w, NULL, &c, &d))
				continue;
			char *y = cc_contract_to_yaml(c, NULL);
			free(y);
			if (cc_gap_run(&p->w[w], c, &g) == 0) {
				char *t = cc_gap_text(g, "contract");
				free(t);
				json_t *j = cc_gap_json(g, "contract");
				json_decref(j);
				cc_gap_free(g);
			}
			cc_contract_free(c);
		}
	}
	cc_profile_free(p);
	cc_diag_free(&d);
	return 0;
}
