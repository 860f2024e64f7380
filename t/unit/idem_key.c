/* Header grammars (§1, §3): Idempotency-Key (bare or RFC 8941 sf-string) and If-Match. */
#include <string.h>

#include "idem_key.h"
#include "tap.h"

/* A string literal and its length, embedded NULs included. */
#define S(lit) lit, sizeof(lit) - 1

struct key_case {
	const char *name;
	const char *v;
	size_t len;
	const char *want;     /* the key, or NULL when the value is invalid */
};

static const struct key_case keys[] = {
	{ "bare key", S("abc"), "abc" },
	{ "bare UUID", S("f47ac10b-58cc-4372-a567-0e02b2c3d479"), "f47ac10b-58cc-4372-a567-0e02b2c3d479" },
	{ "bare single character", S("x"), "x" },
	{ "bare key of all visible punctuation", S("!#$%&'()*+,-./:;<=>?@[]^_`{|}~"),
	  "!#$%&'()*+,-./:;<=>?@[]^_`{|}~" },
	{ "bare key with a quote inside", S("a\"b"), "a\"b" },
	{ "bare key with a backslash", S("a\\b"), "a\\b" },
	{ "sf-string", S("\"abc\""), "abc" },
	{ "sf-string with escaped quote", S("\"a\\\"b\""), "a\"b" },
	{ "sf-string with escaped backslash", S("\"a\\\\b\""), "a\\b" },
	{ "sf-string of one escaped quote", S("\"\\\"\""), "\"" },
	{ "sf-string with other punctuation", S("\"k-1:2/3\""), "k-1:2/3" },
	{ "sf-string with bad escape \\n", S("\"a\\nb\""), NULL },
	{ "sf-string with bad escape \\u", S("\"a\\u0041\""), NULL },
	{ "sf-string ending in a backslash", S("\"abc\\"), NULL },
	{ "sf-string whose closing quote is escaped", S("\"abc\\\""), NULL },
	{ "empty value", S(""), NULL },
	{ "empty sf-string", S("\"\""), NULL },
	{ "lone quote", S("\""), NULL },
	{ "unterminated sf-string", S("\"abc"), NULL },
	{ "bytes after the closing quote", S("\"abc\"x"), NULL },
	{ "space after the closing quote", S("\"abc\" "), NULL },
	{ "two sf-strings", S("\"a\"\"b\""), NULL },
	{ "bare key with a space", S("a b"), NULL },
	{ "leading space", S(" abc"), NULL },
	{ "trailing space", S("abc "), NULL },
	{ "sf-string holding a space", S("\"a b\""), NULL },
	{ "bare key with a tab", S("a\tb"), NULL },
	{ "bare key with CR", S("a\rb"), NULL },
	{ "bare key with LF", S("a\nb"), NULL },
	{ "bare key with NUL", S("a\0b"), NULL },
	{ "bare key with 0x7F", S("a\x7F" "b"), NULL },
	{ "bare key with 0x80", S("a\x80" "b"), NULL },
	{ "bare key with UTF-8 e-acute", S("caf\xC3\xA9"), NULL },
	{ "sf-string with a tab", S("\"a\tb\""), NULL },
	{ "sf-string with 0x7F", S("\"a\x7F\""), NULL },
	{ "sf-string with 0x80", S("\"a\x80\""), NULL },
};

static void test_keys(void)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char out[IDEM_KEY_MAX + 1];
		int rc = idem_key_parse(keys[i].v, keys[i].len, out);
		if (keys[i].want)
			is_str(rc == 0 ? out : NULL, keys[i].want, "key: %s", keys[i].name);
		else
			is_int(rc, -1, "key: %s is invalid", keys[i].name);
	}
}

/* Builds a header value of `plain` k's, then an escaped quote when `escape`, quoted when `quote`. */
static size_t make_key(char *v, size_t plain, bool escape, bool quote)
{
	size_t n = 0;

	if (quote)
		v[n++] = '"';
	memset(v + n, 'k', plain);
	n += plain;
	if (escape) {
		v[n++] = '\\';
		v[n++] = '"';
	}
	if (quote)
		v[n++] = '"';
	return n;
}

static void test_key_lengths(void)
{
	char v[IDEM_KEY_MAX + 8], out[IDEM_KEY_MAX + 1];
	size_t n;

	n = make_key(v, 255, false, false);
	ok(idem_key_parse(v, n, out) == 0 && strlen(out) == 255, "key: 255 bare characters");
	n = make_key(v, 256, false, false);
	is_int(idem_key_parse(v, n, out), -1, "key: 256 bare characters are invalid");
	n = make_key(v, 255, false, true);
	ok(idem_key_parse(v, n, out) == 0 && strlen(out) == 255,
	   "key: 255 characters inside quotes");
	n = make_key(v, 256, false, true);
	is_int(idem_key_parse(v, n, out), -1, "key: 256 characters inside quotes are invalid");
	n = make_key(v, 254, true, true);
	ok(idem_key_parse(v, n, out) == 0 && strlen(out) == 255 && out[254] == '"',
	   "key: 254 characters and an escape are 255");
	n = make_key(v, 255, true, true);
	is_int(idem_key_parse(v, n, out), -1, "key: 255 characters and an escape are invalid");
	ok(idem_key_parse("abcdef", 3, out) == 0 && strcmp(out, "abc") == 0,
	   "key: only len bytes are read");
}

struct match_case {
	const char *v;
	long long version;
	bool want;
};

static const struct match_case matches[] = {
	{ "\"3\"", 3, true },
	{ "\"4\"", 3, false },
	{ "\"12\"", 12, true },
	{ "\"1\"", 12, false },
	{ "*", 3, true },
	{ " * ", 3, true },
	{ "W/\"3\"", 3, false },
	{ "w/\"3\"", 3, false },
	{ "W/\"3\", \"3\"", 3, true },
	{ "\"1\", \"3\"", 3, true },
	{ "\"1\" ,\"3\"", 3, true },
	{ "\"1\",\"3\"", 3, true },
	{ "\"1\"\t,\t\"3\"", 3, true },
	{ "\"3\", \"1\"", 3, true },
	{ "\"1\", \"2\"", 3, false },
	{ " \"3\" ", 3, true },
	{ "\"1\", , \"3\"", 3, true },
	{ ", \"3\"", 3, true },
	{ "\"3\",", 3, true },
	{ "3", 3, false },
	{ "\"3", 3, false },
	{ "3\"", 3, false },
	{ "\"03\"", 3, false },
	{ "\"3 \"", 3, false },
	{ "\"+3\"", 3, false },
	{ "\"\"", 3, false },
	{ "", 3, false },
	{ "   ", 3, false },
	{ ",", 3, false },
	{ "\"3\", garbage", 3, false },
	{ "garbage, \"3\"", 3, false },
	{ "\"3\" \"1\"", 3, false },
	{ "\"3\"\"1\"", 3, false },
	{ "\"3\";q=1", 3, false },
	{ "*, \"3\"", 3, false },
	{ "**", 3, false },
	{ "W/ \"3\"", 3, false },
	{ "\"9223372036854775807\"", 9223372036854775807LL, true },
};

static void test_if_match(void)
{
	for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
		const struct match_case *m = &matches[i];
		ok(if_match_ok(m->v, strlen(m->v), m->version) == m->want,
		   "If-Match: [%s] against version %lld %s", m->v, m->version,
		   m->want ? "matches" : "does not match");
	}
	ok(if_match_ok("\"3\"xyz", 3, 3), "If-Match: only len bytes are read");
	ok(!if_match_ok("\"3\0\"", 4, 3), "If-Match: a NUL inside a tag is malformed");
	ok(!if_match_ok("\"3\"\n", 4, 3), "If-Match: a trailing LF is malformed");
	ok(!if_match_ok("\"\x7F\"", 3, 3), "If-Match: DEL inside a tag is malformed");
}

int main(void)
{
	test_keys();
	test_key_lengths();
	test_if_match();
	return done();
}
