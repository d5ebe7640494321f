/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h - kl-baselined's Profiles on disk: the shared Profile format
 * (docs/profile.md, parsed by contractc) plus the `baseline` section that
 * holds what detection needs beyond it (docs/baseline.md).
 */
#ifndef KL_BASELINED_PROFILE_H
#define KL_BASELINED_PROFILE_H

#include <kloudlens/recutil.h>

#include "engine.h"

/*
 * Render workloads @v[0..n-1] as one Profile document with metadata.id
 * @id. Event times are CLOCK_MONOTONIC: wall = mono + @mono_offset_ns
 * (kept in the file so a reload converts back exactly).
 * Return: 0 or -ENOMEM.
 */
int bl_profile_render(struct kl_buf *b, const struct bl_wview *v, size_t n, const char *id,
		      const char *node, int64_t mono_offset_ns, uint64_t generated_real_ns);

/* A parsed profile: the workloads ready for bl_engine_install(). */
struct bl_loaded {
	char *id;
	char *node;
	int64_t mono_offset_ns;     /* of the first workload: wall = mono + offset */
	size_t nw;
	struct bl_install *w;
	/* storage behind the pointers in w[] */
	void *_mem;
};
void bl_loaded_free(struct bl_loaded *l);

/*
 * Parse a profile document. On error, @err holds "FILE:LINE:COL: what"
 * for a syntax error or "FILE: json.path: what" for a bad value.
 * Return: 0, -EINVAL (err set) or -ENOMEM.
 */
int bl_profile_parse(const char *file, const char *data, size_t len, struct bl_loaded **out,
		     char *err, size_t errlen);
/* Read and parse @path (errors as above; I/O errors name the file). */
int bl_profile_load(const char *path, struct bl_loaded **out, char *err, size_t errlen);

/* "prof-%016llx" */
void bl_profile_id_str(char *buf, size_t len, uint64_t id);
/* Parse "prof-<16 hex>"; -EINVAL if not that shape. */
int bl_profile_id_parse(const char *s, uint64_t *id);

/*
 * kl-baselined merge: combine the profiles in @paths (replicas on several
 * nodes) into @b: workloads with the same key are added up (sets united,
 * counts, sketches and windows combined), the id derived from the inputs'.
 */
int bl_profile_merge(const char *const *paths, size_t n, struct kl_buf *b, char *err, size_t errlen);

/* Write @b to DIR/<id>.json atomically (temp file + rename). Return: 0 or -errno. */
int bl_profile_save(const char *dir, const char *id, const struct kl_buf *b);

#endif
