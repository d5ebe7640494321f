/* SPDX-License-Identifier: Apache-2.0 */
/* Typed access to a cc_node tree with positioned diagnostics (internal). */
#ifndef KLOUDLENS_CONTRACTC_PARSE_UTIL_H
#define KLOUDLENS_CONTRACTC_PARSE_UTIL_H

#include "cc.h"

struct pctx {
	const char *file;
	struct cc_diag *d;
	int errors;
	int oom;
};

#define PATH_MAX_LEN 512

void perr(struct pctx *p, const struct cc_node *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* child path: "a.b" + "c" -> "a.b.c"; "a" + index 3 -> "a[3]" */
void path_key(char *dst, const char *base, const char *key);
void path_idx(char *dst, const char *base, size_t i);

/* Checks @n is a mapping whose keys are all in @allowed (NULL-terminated). */
bool map_check(struct pctx *p, const struct cc_node *n, const char *path,
	       const char *const *allowed);
const struct cc_node *map_get(const struct cc_node *n, const char *key);
bool seq_check(struct pctx *p, const struct cc_node *n, const char *path);
bool req(struct pctx *p, const struct cc_node *map, const struct cc_node *v, const char *path,
	 const char *key);

bool get_str(struct pctx *p, const struct cc_node *n, const char *path, char **out);
bool get_bool(struct pctx *p, const struct cc_node *n, const char *path, bool *out);
bool get_int(struct pctx *p, const struct cc_node *n, const char *path, int64_t min, int64_t max,
	     int64_t *out);
bool get_labels(struct pctx *p, const struct cc_node *n, const char *path, struct cc_labels *l);
bool get_timestamp(struct pctx *p, const struct cc_node *n, const char *path, char **out);
bool get_evidence(struct pctx *p, const struct cc_node *n, const char *path, struct cc_evidence *e);

void labels_free(struct cc_labels *l);
int labels_add(struct cc_labels *l, const char *k, const char *v);
int labels_copy(struct cc_labels *dst, const struct cc_labels *src);
void evidence_free(struct cc_evidence *e);
bool valid_timestamp(const char *s);

#endif
