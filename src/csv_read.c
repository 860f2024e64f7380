/* RFC 4180 reading, strict where the RFC is and lenient only where spreadsheets differ from
 * it (a bare LF ends a record as CRLF does; a byte-order mark opens the file). */
#include "csv_read.h"

#include <string.h>

struct cursor {
	const char *p, *end;
};

/* One field at c->p: returns its end state: ',' (another field follows), '\n' (the record
 * ended), 0 (the buffer ended), or -1 with *err (a quote out of place). */
static int field(struct arena *a, struct cursor *c, const char **out, size_t *outlen,
	const char **err)
{
	const char *p = c->p, *end = c->end;
	if (p < end && *p == '"') {
		char *buf = arena_alloc(a, (size_t)(end - p) + 1), *w = buf;
		for (p++;; p++) {
			if (p == end) {
				*err = "a quoted field is not closed";
				return -1;
			}
			if (*p == '"' && (p + 1 == end || p[1] != '"'))
				break;
			if (*p == '"')
				p++;
			*w++ = *p;
		}
		*w = '\0';
		*out = buf;
		*outlen = (size_t)(w - buf);
		p++;
	} else {
		const char *s = p;
		while (p < end && *p != ',' && *p != '\n' && *p != '\r' && *p != '"')
			p++;
		if (p < end && *p == '"') {
			*err = "a double quote inside a field that is not quoted";
			return -1;
		}
		*out = arena_strndup(a, s, (size_t)(p - s));
		*outlen = (size_t)(p - s);
	}
	if (p < end && *p == '\r' && p + 1 < end && p[1] == '\n')
		p++;
	c->p = p + (p < end);
	if (p == end)
		return 0;
	if (*p == ',' || *p == '\n')
		return *p;
	*err = "a field must end with a comma or a line break";
	return -1;
}

/* One record; its fields are counted first, so that its arrays are allocated once. */
static int record(struct arena *a, struct cursor *c, struct csv_record *r, const char **err)
{
	const char *fields[256];
	size_t lens[256];
	size_t n = 0;
	int end;
	do {
		if (n == sizeof fields / sizeof *fields) {
			*err = "a record has more than 256 fields";
			return -1;
		}
		if ((end = field(a, c, &fields[n], &lens[n], err)) < 0)
			return -1;
		n++;
	} while (end == ',');
	r->field = arena_alloc(a, n * sizeof *r->field);
	r->len = arena_alloc(a, n * sizeof *r->len);
	memcpy(r->field, fields, n * sizeof *fields);
	memcpy(r->len, lens, n * sizeof *lens);
	r->n = n;
	return 0;
}

int csv_read(struct arena *a, const char *buf, size_t len, size_t max, struct csv *out,
	const char **err, size_t *at)
{
	struct cursor c = { buf, buf + len };
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		c.p += 3;
	out->rec = arena_alloc(a, (max + 1) * sizeof *out->rec);
	out->n = 0;
	while (c.p < c.end) {
		if (*c.p == '\n' || (*c.p == '\r' && c.p + 1 < c.end && c.p[1] == '\n')) {
			c.p += *c.p == '\r' ? 2 : 1;   /* an empty line */
			continue;
		}
		*at = out->n;
		if (out->n == max) {
			*err = "too many records";
			return -1;
		}
		if (record(a, &c, &out->rec[out->n], err) < 0)
			return -1;
		out->n++;
	}
	return 0;
}
