/* CSV as remit writes it (API §9): RFC 4180 with CRLF, and the spreadsheet-formula guard. */
#ifndef REMIT_CSV_H
#define REMIT_CSV_H
#include <stdbool.h>
#include <stddef.h>

/* A growing buffer of CSV text (malloc'd: a file of 2,000 rows outgrows a request's arena
 * block several times over). Zero-initialise; csv_free when done. */
struct csv {
	char *buf;
	size_t len, cap;
	bool in_row;   /* a field was written on the current row: the next needs a comma */
	bool failed;   /* out of memory: the text is incomplete */
};

/* Appends one field: quoted when it holds a comma, quote, CR or LF (quotes doubled), and
 * with a leading ' when it begins with =, +, -, @, TAB or CR, so that no spreadsheet runs it
 * as a formula. */
void csv_field(struct csv *w, const char *s, size_t n);
/* Ends the row with CRLF. */
void csv_end_row(struct csv *w);
void csv_free(struct csv *w);

#endif
