/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "cc.h"

void cc_diag_add(struct cc_diag *d, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	if (!d)
		return;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (!m)
		return;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 8;
		char **nm = realloc(d->msgs, nc * sizeof(*nm));
		if (!nm) {
			free(m);
			return;
		}
		d->msgs = nm;
		d->cap = nc;
	}
	d->msgs[d->n++] = m;
}

void cc_diag_free(struct cc_diag *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

static void buf_grow(struct cc_buf *b, size_t add)
{
	if (b->err)
		return;
	if (b->len + add + 1 <= b->cap)
		return;
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + add + 1)
		nc *= 2;
	char *ns = realloc(b->s, nc);
	if (!ns) {
		b->err = -ENOMEM;
		return;
	}
	b->s = ns;
	b->cap = nc;
}

void cc_buf_putn(struct cc_buf *b, const char *s, size_t n)
{
	buf_grow(b, n);
	if (b->err)
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void cc_buf_put(struct cc_buf *b, const char *s)
{
	cc_buf_putn(b, s, strlen(s));
}

void cc_buf_printf(struct cc_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (r < 0) {
		b->err = -ENOMEM;
		return;
	}
	cc_buf_putn(b, m, (size_t)r);
	free(m);
}

char *cc_buf_steal(struct cc_buf *b)
{
	char *s;

	if (b->err) {
		cc_buf_free(b);
		return NULL;
	}
	if (!b->s)
		cc_buf_put(b, "");
	s = b->s;
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void cc_buf_free(struct cc_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

char *cc_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int cc_read_file(const char *path, char **data, size_t *len)
{
	FILE *f;
	struct cc_buf b = { 0 };
	char chunk[8192];
	size_t r;
	int ret = 0;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		cc_buf_putn(&b, chunk, r);
		/* a contract or profile beyond 64 MiB is not something we want to hold */
		if (b.len > (64u << 20)) {
			ret = -EFBIG;
			goto out;
		}
	}
	if (ferror(f)) {
		ret = -EIO;
		goto out;
	}
	*len = b.len;
	*data = cc_buf_steal(&b);
	if (!*data)
		ret = -ENOMEM;
out:
	if (ret)
		cc_buf_free(&b);
	fclose(f);
	return ret;
}

/* ------------------------------------------------------------ YAML tree */

void cc_node_free(struct cc_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		cc_node_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static int node_add(struct cc_node *p, struct cc_node *k)
{
	struct cc_node **nk = realloc(p->kids, (p->n + 1) * sizeof(*nk));
	if (!nk)
		return -ENOMEM;
	p->kids = nk;
	p->kids[p->n++] = k;
	return 0;
}

#define CC_MAX_DEPTH 64

int cc_yaml_load(const char *file, const char *data, size_t len, struct cc_node **root,
		 struct cc_diag *d)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct cc_node *stack[CC_MAX_DEPTH + 1];
	int depth = 0;
	int docs = 0;
	int ret = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			const yaml_mark_t *m = &parser.problem_mark;
			cc_diag_add(d, "%s:%zu:%zu: (document): %s%s%s", file, m->line + 1,
				    m->column + 1, parser.problem ? parser.problem : "syntax error",
				    parser.context ? " " : "", parser.context ? parser.context : "");
			ret = -EINVAL;
			goto out;
		}
		int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
		struct cc_node *n = NULL;

		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				cc_diag_add(d, "%s:%d:%d: (document): only one YAML document is allowed",
					    file, line, col);
				ret = -EINVAL;
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			cc_diag_add(d, "%s:%d:%d: (document): YAML aliases are not supported", file,
				    line, col);
			ret = -EINVAL;
			yaml_event_delete(&ev);
			goto out;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			n = calloc(1, sizeof(*n));
			if (!n) {
				ret = -ENOMEM;
				yaml_event_delete(&ev);
				goto out;
			}
			n->line = line;
			n->col = col;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->type = CC_SCALAR;
				n->str = strndup((const char *)ev.data.scalar.value,
						 ev.data.scalar.length);
				n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
				if (!n->str) {
					free(n);
					ret = -ENOMEM;
					yaml_event_delete(&ev);
					goto out;
				}
				/* NUL inside a scalar would truncate paths silently */
				if (strlen(n->str) != ev.data.scalar.length) {
					cc_diag_add(d, "%s:%d:%d: (document): NUL byte in scalar",
						    file, line, col);
					cc_node_free(n);
					ret = -EINVAL;
					yaml_event_delete(&ev);
					goto out;
				}
			} else {
				n->type = ev.type == YAML_SEQUENCE_START_EVENT ? CC_SEQ : CC_MAP;
			}
			if (depth == 0) {
				if (*root) { /* cannot happen with one document, be safe */
					cc_node_free(n);
					break;
				}
				*root = n;
			} else if (node_add(stack[depth - 1], n)) {
				cc_node_free(n);
				ret = -ENOMEM;
				yaml_event_delete(&ev);
				goto out;
			}
			if (n->type != CC_SCALAR) {
				if (depth == CC_MAX_DEPTH) {
					cc_diag_add(d, "%s:%d:%d: (document): nesting deeper than %d",
						    file, line, col, CC_MAX_DEPTH);
					ret = -EINVAL;
					yaml_event_delete(&ev);
					goto out;
				}
				stack[depth++] = n;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (!*root) {
		cc_diag_add(d, "%s:1:1: (document): empty document", file);
		ret = -EINVAL;
	}
out:
	yaml_parser_delete(&parser);
	if (ret) {
		cc_node_free(*root);
		*root = NULL;
	}
	return ret;
}
