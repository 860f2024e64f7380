/* A CSV reader (RFC 4180) for bodies sent as text/csv: a whole buffer into records of
 * fields, in the request's arena. (The CSV writer is another file's concern.) */
#ifndef REMIT_CSV_READ_H
#define REMIT_CSV_READ_H
#include <stddef.h>

#include "arena.h"

struct csv_record {
	const char **field;        /* decoded: quotes removed, "" made one " */
	size_t *len;
	size_t n;
};

struct csv {
	struct csv_record *rec;    /* the header first, when there is one */
	size_t n;
};

/* Parses `len` bytes: a leading UTF-8 byte-order mark is skipped, records end with CRLF or
 * LF (the last may end with the buffer), a field in double quotes may hold commas, quotes
 * doubled and line breaks. An empty line is no record. At most `max` records are read.
 * 0, or -1 with *err a message and *at the index of the record at fault (max when there are
 * more records than that). The text is not checked for UTF-8: that is the caller's rule. */
int csv_read(struct arena *a, const char *buf, size_t len, size_t max, struct csv *out,
	const char **err, size_t *at);

#endif
