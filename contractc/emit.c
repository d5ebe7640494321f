/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deterministic emitters. Documents are built as jansson trees (which keep
 * insertion order) and written here, so the same contract always gives the
 * same bytes: no hash order, no timestamps, no locale.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cc.h"

static bool looks_special(const char *s)
{
	static const char *const words[] = { "true",  "false", "yes", "no",  "on",   "off",
					     "null",  "y",     "n",   "~",   "True", "False",
					     "TRUE",  "FALSE", "Yes", "No",  "YES",  "NO",
					     "On",    "Off",   "ON",  "OFF", "Null", "NULL",
					     "Y",     "N",     NULL };
	for (size_t i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return true;
	/* anything a YAML 1.1 resolver could read as a number */
	const char *c = s;
	if (*c == '+' || *c == '-' || *c == '.')
		c++;
	if (isdigit((unsigned char)*c))
		return true;
	return false;
}

static bool plain_ok(const char *s)
{
	if (!*s || looks_special(s))
		return false;
	if (!isalnum((unsigned char)s[0]) && s[0] != '/' && s[0] != '_')
		return false;
	for (const char *c = s; *c; c++) {
		if (isalnum((unsigned char)*c) || strchr("/_.-@=+", *c))
			continue;
		/* ':' is fine unless followed by a space or at the end */
		if (*c == ':' && c[1] && c[1] != ' ')
			continue;
		return false;
	}
	return true;
}

static void put_quoted(struct cc_buf *b, const char *s)
{
	cc_buf_put(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"':
			cc_buf_put(b, "\\\"");
			break;
		case '\\':
			cc_buf_put(b, "\\\\");
			break;
		case '\n':
			cc_buf_put(b, "\\n");
			break;
		case '\t':
			cc_buf_put(b, "\\t");
			break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				cc_buf_printf(b, "\\x%02x", *c);
			else
				cc_buf_putn(b, (const char *)c, 1);
		}
	}
	cc_buf_put(b, "\"");
}

static void indent(struct cc_buf *b, int n)
{
	for (int i = 0; i < n; i++)
		cc_buf_put(b, " ");
}

/* Multi-line text (Rego) as a literal block so it stays readable. */
static bool block_ok(const char *s)
{
	size_t l = strlen(s);
	/* "|" keeps exactly one final newline: anything else would not round-trip */
	if (!strchr(s, '\n') || s[0] == ' ' || s[0] == '\n' ||
	    (l >= 2 && s[l - 1] == '\n' && s[l - 2] == '\n'))
		return false;
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 && *c != '\n')
			return false;
		if (*c == ' ' && (c[1] == '\n' || !c[1])) /* trailing blanks would be lost */
			return false;
	}
	return true;
}

static void put_scalar(struct cc_buf *b, json_t *v, int ind)
{
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const char *s = json_string_value(v);
		if (block_ok(s)) {
			size_t l = strlen(s);
			cc_buf_put(b, l && s[l - 1] == '\n' ? "|\n" : "|-\n");
			const char *line = s;
			while (*line) {
				const char *nl = strchr(line, '\n');
				size_t ll = nl ? (size_t)(nl - line) : strlen(line);
				if (ll) {
					indent(b, ind);
					cc_buf_putn(b, line, ll);
				}
				cc_buf_put(b, "\n");
				if (!nl)
					break;
				line = nl + 1;
			}
			/* caller adds the newline for plain scalars; drop ours */
			if (b->len && !b->err)
				b->s[--b->len] = '\0';
		} else if (plain_ok(s)) {
			cc_buf_put(b, s);
		} else {
			put_quoted(b, s);
		}
		break;
	}
	case JSON_INTEGER:
		cc_buf_printf(b, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		cc_buf_printf(b, "%.17g", json_real_value(v));
		break;
	case JSON_TRUE:
		cc_buf_put(b, "true");
		break;
	case JSON_FALSE:
		cc_buf_put(b, "false");
		break;
	case JSON_NULL:
		cc_buf_put(b, "null");
		break;
	case JSON_OBJECT:
		cc_buf_put(b, "{}");
		break;
	case JSON_ARRAY:
		cc_buf_put(b, "[]");
		break;
	}
}

static bool is_block(json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static void emit_node(struct cc_buf *b, json_t *v, int ind, bool inline_first);

static void emit_key(struct cc_buf *b, const char *k)
{
	if (plain_ok(k))
		cc_buf_put(b, k);
	else
		put_quoted(b, k);
	cc_buf_put(b, ":");
}

/* inline_first: the first line continues after "- " already written */
static void emit_node(struct cc_buf *b, json_t *v, int ind, bool inline_first)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		bool first = true;
		json_object_foreach(v, k, x) {
			if (!(first && inline_first))
				indent(b, ind);
			first = false;
			emit_key(b, k);
			if (is_block(x)) {
				cc_buf_put(b, "\n");
				emit_node(b, x, json_is_array(x) ? ind : ind + 2, false);
			} else {
				cc_buf_put(b, " ");
				put_scalar(b, x, ind + 2);
				cc_buf_put(b, "\n");
			}
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) {
			if (!(i == 0 && inline_first))
				indent(b, ind);
			cc_buf_put(b, "- ");
			if (is_block(x)) {
				if (json_is_array(x)) {
					cc_buf_put(b, "\n");
					emit_node(b, x, ind + 2, false);
				} else {
					emit_node(b, x, ind + 2, true);
				}
			} else {
				put_scalar(b, x, ind + 2);
				cc_buf_put(b, "\n");
			}
		}
	} else {
		put_scalar(b, v, ind);
		cc_buf_put(b, "\n");
	}
}

static void emit_comments(struct cc_buf *b, const char *const *comments)
{
	for (size_t i = 0; comments && comments[i]; i++) {
		const char *s = comments[i];
		/* one "# " per line, even for multi-line comments */
		while (*s) {
			const char *nl = strchr(s, '\n');
			size_t l = nl ? (size_t)(nl - s) : strlen(s);
			cc_buf_put(b, l ? "# " : "#");
			cc_buf_putn(b, s, l);
			cc_buf_put(b, "\n");
			s += l + (nl ? 1 : 0);
		}
	}
}

char *cc_yaml_emit(json_t *doc, const char *const *comments)
{
	struct cc_buf b = { 0 };

	emit_comments(&b, comments);
	emit_node(&b, doc, 0, false);
	return cc_buf_steal(&b);
}

char *cc_json_emit(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		return NULL;
	size_t l = strlen(s);
	char *r = malloc(l + 2);
	if (!r) {
		free(s);
		return NULL;
	}
	memcpy(r, s, l);
	r[l] = '\n';
	r[l + 1] = '\0';
	free(s);
	return r;
}

json_t *cc_labels_json(const struct cc_labels *l)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < l->n; i++)
		json_object_set_new(o, l->k[i], json_string(l->v[i]));
	return o;
}
