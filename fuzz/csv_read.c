/* libFuzzer target for src/csv_read.c (the text/csv imports of API §11): any input either
 * parses or is refused with a message, never more than the cap of records; what parses
 * round-trips: written back with every field quoted (quotes doubled) and CRLF, it parses to
 * the same records (a record of one empty field too: it is written as ""). */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "csv_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 64

static size_t write_back(const struct csv *t, char *out)
{
	size_t n = 0;
	for (size_t r = 0; r < t->n; r++) {
		for (size_t f = 0; f < t->rec[r].n; f++) {
			if (f)
				out[n++] = ',';
			out[n++] = '"';
			for (size_t i = 0; i < t->rec[r].len[f]; i++) {
				if (t->rec[r].field[f][i] == '"')
					out[n++] = '"';
				out[n++] = t->rec[r].field[f][i];
			}
			out[n++] = '"';
		}
		out[n++] = '\r';
		out[n++] = '\n';
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a = { 0 };
	struct csv t, u;
	const char *err = NULL;
	size_t at = 0;
	if (csv_read(&a, (const char *)data, size, CAP, &t, &err, &at) < 0) {
		assert(err && *err && at <= CAP);
		arena_free(&a);
		return 0;
	}
	assert(t.n <= CAP);
	char *buf = malloc(size * 3 + t.n * 4 + 16);
	assert(buf);
	size_t n = write_back(&t, buf);
	assert(csv_read(&a, buf, n, CAP, &u, &err, &at) == 0);
	assert(u.n == t.n);
	for (size_t r = 0; r < t.n; r++) {
		assert(u.rec[r].n == t.rec[r].n);
		for (size_t f = 0; f < t.rec[r].n; f++)
			assert(u.rec[r].len[f] == t.rec[r].len[f] &&
				memcmp(u.rec[r].field[f], t.rec[r].field[f], t.rec[r].len[f]) == 0);
	}
	free(buf);
	arena_free(&a);
	return 0;
}
