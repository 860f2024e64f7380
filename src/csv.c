/* The CSV writer: see csv.h. */
#include "csv.h"

#include <string.h>
#include <yajl/yajl_gen.h>

void csv_init(struct csv *w, struct arena *a)
{
	memset(w, 0, sizeof *w);
	w->a = a;
}

/* The arena cannot grow a block in place: a full buffer is copied into one twice its size,
 * so the copies cost at most as much as the text. */
static void put(struct csv *w, const char *s, size_t n)
{
	if (n == 0)   /* an empty field: nothing to copy, and `s` may be NULL */
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		char *buf = arena_alloc(w->a, cap);
		if (w->len)
			memcpy(buf, w->buf, w->len);
		w->buf = buf;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void csv_field(struct csv *w, const char *s, size_t n)
{
	if (w->row_open)
		put(w, ",", 1);
	w->row_open = true;
	bool guard = n && strchr("=+-@\t\r", s[0]);
	bool quote = false;
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (quote)
		put(w, "\"", 1);
	if (guard)
		put(w, "'", 1);
	size_t from = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '"') {
			put(w, s + from, i + 1 - from);   /* the quote, then its double */
			put(w, "\"", 1);
			from = i + 1;
		}
	put(w, s + from, n - from);
	if (quote)
		put(w, "\"", 1);
}

void csv_row_end(struct csv *w)
{
	put(w, "\r\n", 2);
	w->row_open = false;
}

void csv_json_field(struct csv *w, const struct jv *v)
{
	if (!v || v->t == J_NULL) {
		csv_field(w, "", 0);
	} else if (v->t == J_BOOL) {
		csv_field(w, v->b ? "true" : "false", v->b ? 4 : 5);
	} else if (v->t == J_STR || v->t == J_NUM) {
		csv_field(w, v->s, v->len);
	} else {
		yajl_gen g = jw_new();
		json_write(g, v);
		const unsigned char *text;
		size_t len;
		yajl_gen_get_buf(g, &text, &len);
		csv_field(w, (const char *)text, len);
		yajl_gen_free(g);
	}
}
