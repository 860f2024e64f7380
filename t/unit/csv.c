/* The CSV writer (§9, §10): RFC 4180 quoting with CRLF and the spreadsheet-formula guard. */
#include <string.h>

#include "csv.h"
#include "tap.h"

struct field_case {
	const char *in, *out;   /* one field alone on its row, and what the writer makes of it */
};

static const struct field_case cases[] = {
	{ "plain", "plain" },
	{ "", "" },
	{ "a,b", "\"a,b\"" },
	{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
	{ "two\nlines", "\"two\nlines\"" },
	{ "cr\rhere", "\"cr\rhere\"" },
	{ "=SUM(A1:A2)", "'=SUM(A1:A2)" },
	{ "+1", "'+1" },
	{ "-5.00", "'-5.00" },
	{ "@home", "'@home" },
	{ "\tx", "'\tx" },
	{ "\rx", "\"'\rx\"" },
	{ "=HYPERLINK(\"a\",\"b\")", "\"'=HYPERLINK(\"\"a\"\",\"\"b\"\")\"" },
	{ "a=b", "a=b" },
	{ "Süd €", "Süd €" },
};

static const char *one_row(struct arena *a, const char *in)
{
	struct csv w;
	csv_init(&w, a);
	csv_field(&w, in, strlen(in));
	return arena_strndup(a, w.buf ? w.buf : "", w.len);
}

int main(void)
{
	struct arena a = { 0 };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		is_str(one_row(&a, cases[i].in), cases[i].out, "field %zu", i);

	struct csv w;
	csv_init(&w, &a);
	csv_field(&w, "id", 2);
	csv_field(&w, "name", 4);
	csv_row_end(&w);
	csv_field(&w, "1", 1);
	csv_field(&w, "", 0);
	csv_row_end(&w);
	is_str(arena_strndup(&a, w.buf, w.len), "id,name\r\n1,\r\n", "rows end with CRLF");

	/* Past the first 4 KiB the buffer grows and keeps what it held. */
	csv_init(&w, &a);
	for (int i = 0; i < 5000; i++)
		csv_field(&w, "abc", 3);
	ok(w.len == 5000 * 4 - 1 && memcmp(w.buf, "abc,abc", 7) == 0
	   && memcmp(w.buf + w.len - 7, "abc,abc", 7) == 0, "a long row stays whole (%zu bytes)",
	   w.len);

	struct jv *v;
	const char *doc = "[null,true,false,12.50,\"-x\",{\"a\":[1,\"b\"]}]";
	ok(json_parse(&a, doc, strlen(doc), &v) == 0, "the JSON values parse");
	csv_init(&w, &a);
	for (size_t i = 0; i < v->n; i++)
		csv_json_field(&w, v->v[i]);
	is_str(arena_strndup(&a, w.buf, w.len), ",true,false,12.50,'-x,\"{\"\"a\"\":[1,\"\"b\"\"]}\"",
	       "null empty, booleans, numbers, strings guarded, nested as JSON text");
	arena_free(&a);
	return done();
}
