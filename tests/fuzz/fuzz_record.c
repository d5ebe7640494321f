/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring record decoder under fuzz: input = 2-byte record type + record
 * bytes. Validation must reject what it cannot read, and the JSON
 * encoder and the tail iterator must stay inside the record either way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kloudlens/recutil.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_buf b = { 0 };
	struct kl_field_iter it;
	struct kl_field_view f;
	uint16_t type;

	if (size < 2)
		return 0;
	memcpy(&type, data, 2);
	/* an exact-size, aligned copy: the stages read records in place from the ring */
	size_t len = size - 2;
	uint8_t *rec = aligned_alloc(8, (len + 7) & ~(size_t)7 ? (len + 7) & ~(size_t)7 : 8);
	if (!rec)
		return 0;
	memcpy(rec, data + 2, len);
	kl_rec_validate(type, rec, len);
	kl_rec_to_json(&b, type, rec, len, 1);
	if (kl_field_iter_init(&it, type, rec, len) == 0)
		while (kl_field_next(&it, &f))
			;
	kl_buf_free(&b);
	free(rec);
	return 0;
}
