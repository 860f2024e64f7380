/* CSV as remit writes it: RFC 4180 with CRLF, and the spreadsheet-formula guard of API §9. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

static void put(struct csv *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		char *p = realloc(w->buf, cap);
		if (!p) {
			w->failed = true;
			return;
		}
		w->buf = p;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void csv_field(struct csv *w, const char *s, size_t n)
{
	if (w->in_row)
		put(w, ",", 1);
	w->in_row = true;
	bool quote = false;
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (quote)
		put(w, "\"", 1);
	if (n && strchr("=+-@\t\r", s[0]))
		put(w, "'", 1);
	for (size_t i = 0; i < n; i++)
		put(w, s[i] == '"' ? "\"\"" : s + i, s[i] == '"' ? 2 : 1);
	if (quote)
		put(w, "\"", 1);
}

void csv_end_row(struct csv *w)
{
	put(w, "\r\n", 2);
	w->in_row = false;
}

void csv_free(struct csv *w)
{
	free(w->buf);
	*w = (struct csv){ 0 };
}
