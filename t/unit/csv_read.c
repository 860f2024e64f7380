/* The CSV reader (RFC 4180) behind text/csv imports: records, quoting, line ends, refusals. */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "csv_read.h"
#include "tap.h"

struct csv_case {
	const char *name;
	const char *in;
	const char *want;      /* fields as [f] and records ended by '/', or NULL when refused */
};

static const struct csv_case cases[] = {
	{ "one record, no line end", "a,b,c", "[a][b][c]/" },
	{ "LF line ends", "a,b\n1,2\n", "[a][b]/[1][2]/" },
	{ "CRLF line ends", "a,b\r\n1,2\r\n", "[a][b]/[1][2]/" },
	{ "mixed line ends", "a,b\r\n1,2\n3,4", "[a][b]/[1][2]/[3][4]/" },
	{ "a byte-order mark is skipped", "\xEF\xBB\xBF" "a,b\n", "[a][b]/" },
	{ "empty fields", ",a,,\n", "[][a][][]/" },
	{ "a quoted comma", "\"x,y\",z\n", "[x,y][z]/" },
	{ "a quoted line break is kept", "\"x\r\ny\",z\n", "[x\r\ny][z]/" },
	{ "doubled quotes are one", "\"say \"\"hi\"\"\",z", "[say \"hi\"][z]/" },
	{ "an empty quoted field", "\"\",a", "[][a]/" },
	{ "a bare quote in a formula is refused", "=HYPERLINK(\"\"),b", NULL },
	{ "a quoted formula is text", "\"=HYPERLINK(\"\"x\"\")\",b", "[=HYPERLINK(\"x\")][b]/" },
	{ "empty lines are no records", "a\n\n\r\nb\n\n", "[a]/[b]/" },
	{ "an empty buffer has no record", "", "" },
	{ "an unterminated quote is refused", "\"abc,d\n", NULL },
	{ "a quote inside a bare field is refused", "ab\"c\",d", NULL },
	{ "text after a closing quote is refused", "\"ab\"c,d", NULL },
	{ "a lone CR is refused", "a\rb", NULL },
	{ "spaces are kept", " a , b ", "[ a ][ b ]/" },
};

static void render(const struct csv *t, char *out, size_t cap)
{
	size_t n = 0;
	for (size_t r = 0; r < t->n; r++) {
		for (size_t f = 0; f < t->rec[r].n && n + t->rec[r].len[f] + 4 < cap; f++) {
			out[n++] = '[';
			memcpy(out + n, t->rec[r].field[f], t->rec[r].len[f]);
			n += t->rec[r].len[f];
			out[n++] = ']';
		}
		out[n++] = '/';
	}
	out[n] = '\0';
}

int main(void)
{
	struct arena a = { 0 };
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct csv_case *k = &cases[i];
		struct csv t;
		const char *err = NULL;
		size_t at = 0;
		int rc = csv_read(&a, k->in, strlen(k->in), 10, &t, &err, &at);
		if (!k->want) {
			ok(rc < 0 && err, "%s", k->name);
			continue;
		}
		char got[256];
		if (rc < 0) {
			ok(0, "%s (refused: %s)", k->name, err);
			continue;
		}
		render(&t, got, sizeof got);
		is_str(got, k->want, "%s", k->name);
	}

	struct csv t;
	const char *err = NULL;
	size_t at = 0;
	ok(csv_read(&a, "h\n1\n2\n3\n", 8, 3, &t, &err, &at) < 0 && at == 3,
		"more records than the cap are refused at the first one over it");
	ok(csv_read(&a, "h\n1\n2\n", 6, 3, &t, &err, &at) == 0 && t.n == 3,
		"exactly the cap is read");
	ok(csv_read(&a, "h\n1\n\"x\n", 7, 3, &t, &err, &at) < 0 && at == 2,
		"a refusal names the record at fault");
	arena_free(&a);
	return done();
}
