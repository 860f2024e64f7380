/* The one CSV writer of remit (API §9, §10): RFC 4180 with CRLF, a field quoted when it holds
 * a comma, quote, CR or LF, and the spreadsheet-formula guard: a field that begins with
 * = + - @ TAB or CR gets a leading ' so that no spreadsheet runs it as a formula. Every CSV
 * the service writes (exports, payment files) goes through here. */
#ifndef REMIT_CSV_H
#define REMIT_CSV_H
#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "json.h"

struct csv {
	struct arena *a;
	char *buf;
	size_t len, cap;
	bool row_open;        /* a field has been written on the current row */
};

void csv_init(struct csv *w, struct arena *a);
/* Appends one field of `n` bytes (a separator first unless it starts the row). */
void csv_field(struct csv *w, const char *s, size_t n);
/* Ends the row with CRLF. */
void csv_row_end(struct csv *w);
/* Appends a JSON value as a field: a string as its text, null as an empty field, booleans
 * as true/false, a number as its literal, an object or array as its JSON text. */
void csv_json_field(struct csv *w, const struct jv *v);

#endif
