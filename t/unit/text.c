/* Text rules of the API (§1): strict UTF-8 counting, Unicode Cc detection, X-Request-Id grammar. */
#include <string.h>

#include "tap.h"
#include "text.h"

/* A string literal and its length, embedded NULs included. */
#define S(lit) lit, sizeof(lit) - 1

struct count_case {
	const char *name;
	const char *s;
	size_t len;
	long want;
};

static const struct count_case counts[] = {
	{ "empty string has 0 code points", S(""), 0 },
	{ "ASCII counts one per byte", S("hello"), 5 },
	{ "U+0000 is valid UTF-8", S("a\0b"), 3 },
	{ "2-byte e-acute counts as one", S("caf\xC3\xA9"), 4 },
	{ "3-byte euro sign counts as one", S("\xE2\x82\xAC" "1"), 2 },
	{ "4-byte emoji U+1F600 counts as one", S("\xF0\x9F\x98\x80"), 1 },
	{ "mixed 1-2-3-4 byte sequences", S("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), 4 },
	{ "smallest 2-byte U+0080", S("\xC2\x80"), 1 },
	{ "largest 2-byte U+07FF", S("\xDF\xBF"), 1 },
	{ "smallest 3-byte U+0800", S("\xE0\xA0\x80"), 1 },
	{ "last before surrogates U+D7FF", S("\xED\x9F\xBF"), 1 },
	{ "first after surrogates U+E000", S("\xEE\x80\x80"), 1 },
	{ "U+FFFF", S("\xEF\xBF\xBF"), 1 },
	{ "smallest 4-byte U+10000", S("\xF0\x90\x80\x80"), 1 },
	{ "largest code point U+10FFFF", S("\xF4\x8F\xBF\xBF"), 1 },
	{ "overlong 2-byte NUL C0 80", S("\xC0\x80"), -1 },
	{ "overlong 2-byte C1 BF", S("\xC1\xBF"), -1 },
	{ "overlong 3-byte E0 80 80", S("\xE0\x80\x80"), -1 },
	{ "overlong 3-byte E0 9F BF", S("\xE0\x9F\xBF"), -1 },
	{ "overlong 4-byte F0 80 80 80", S("\xF0\x80\x80\x80"), -1 },
	{ "overlong 4-byte F0 8F BF BF", S("\xF0\x8F\xBF\xBF"), -1 },
	{ "high surrogate ED A0 80", S("\xED\xA0\x80"), -1 },
	{ "low surrogate ED BF BF", S("\xED\xBF\xBF"), -1 },
	{ "surrogate pair as CESU-8", S("\xED\xA0\xBD\xED\xB8\x80"), -1 },
	{ "above U+10FFFF F4 90 80 80", S("\xF4\x90\x80\x80"), -1 },
	{ "5-byte lead F8", S("\xF8\x88\x80\x80\x80"), -1 },
	{ "lead F5", S("\xF5\x80\x80\x80"), -1 },
	{ "byte FF", S("\xFF"), -1 },
	{ "byte FE", S("\xFE"), -1 },
	{ "lone continuation byte 80", S("\x80"), -1 },
	{ "lone continuation byte BF after ASCII", S("a\xBF"), -1 },
	{ "truncated 2-byte at end", S("ab\xC3"), -1 },
	{ "truncated 3-byte at end", S("\xE2\x82"), -1 },
	{ "truncated 4-byte at end", S("\xF0\x9F\x98"), -1 },
	{ "truncated 2-byte followed by ASCII", S("\xC3" "a"), -1 },
	{ "3-byte with ASCII as third byte", S("\xE2\x82" "a"), -1 },
	{ "4-byte with ASCII as fourth byte", S("\xF0\x9F\x98" "a"), -1 },
	{ "4-byte with lead as second byte", S("\xF0\xF0\x98\x80"), -1 },
	{ "invalid byte after valid text", S("ok\xC3\xA9\xFF"), -1 },
};

static void test_counts(void)
{
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
		is_int(utf8_count(counts[i].s, counts[i].len), counts[i].want, "utf8_count: %s",
		       counts[i].name);

	/* The length must bound the scan: a valid prefix of a longer buffer. */
	is_int(utf8_count("\xC3\xA9\xFF", 2), 1, "utf8_count: stops at len, not at the next byte");
	is_int(utf8_count("\xF0\x9F\x98\x80", 3), -1, "utf8_count: sequence cut by len is truncated");
}

struct bool_case {
	const char *name;
	const char *s;
	size_t len;
	bool want;
};

static const struct bool_case controls[] = {
	{ "empty string", S(""), false },
	{ "plain ASCII", S("Hello, world!"), false },
	{ "U+0000", S("a\0b"), true },
	{ "U+0009 tab", S("a\tb"), true },
	{ "U+000A line feed", S("a\n"), true },
	{ "U+000D carriage return", S("\rb"), true },
	{ "U+001F", S("\x1F"), true },
	{ "U+0020 space", S(" "), false },
	{ "U+007E tilde", S("~"), false },
	{ "U+007F delete", S("a\x7F"), true },
	{ "U+0080 C2 80", S("\xC2\x80"), true },
	{ "U+0085 next line C2 85", S("x\xC2\x85y"), true },
	{ "U+009F C2 9F", S("\xC2\x9F"), true },
	{ "U+00A0 no-break space C2 A0", S("\xC2\xA0"), false },
	{ "U+00E9 e-acute C3 A9", S("caf\xC3\xA9"), false },
	{ "U+2028 line separator is Zl, not Cc", S("\xE2\x80\xA8"), false },
	{ "U+200B zero width space is Cf, not Cc", S("\xE2\x80\x8B"), false },
	{ "emoji U+1F600", S("\xF0\x9F\x98\x80"), false },
	{ "3-byte U+0880 holds byte 80 but no Cc", S("\xE0\xA2\x80"), false },
	{ "4-byte U+10080 holds C2-like bytes but no Cc", S("\xF0\x90\x82\x80"), false },
	{ "control after multibyte text", S("\xE2\x82\xAC\x01"), true },
};

static void test_controls(void)
{
	for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++)
		ok(text_has_control(controls[i].s, controls[i].len) == controls[i].want,
		   "text_has_control: %s is %s", controls[i].name,
		   controls[i].want ? "a control" : "not a control");
	ok(!text_has_control("ab\x01", 2), "text_has_control: looks only at len bytes");
}

static void test_request_ids(void)
{
	char buf[130];

	memset(buf, 'a', sizeof buf);
	ok(request_id_valid(buf, 1), "request_id_valid: length 1 is valid");
	ok(request_id_valid(buf, 128), "request_id_valid: length 128 is valid");
	ok(!request_id_valid(buf, 0), "request_id_valid: length 0 is invalid");
	ok(!request_id_valid(buf, 129), "request_id_valid: length 129 is invalid");
	ok(request_id_valid(S("AZaz09")), "request_id_valid: letters and digits are valid");
	ok(request_id_valid(S("f47ac10b-58cc-4372-a567-0e02b2c3d479")),
	   "request_id_valid: a UUID is valid");

	for (const char *p = "._:+/=@~-"; *p; p++) {
		char id[] = { 'a', *p, 'b' };
		ok(request_id_valid(id, sizeof id), "request_id_valid: '%c' is allowed", *p);
	}

	static const struct bool_case bad[] = {
		{ "space", S("a b"), false },
		{ "double quote", S("a\"b"), false },
		{ "single quote", S("a'b"), false },
		{ "backslash", S("a\\b"), false },
		{ "comma", S("a,b"), false },
		{ "semicolon", S("a;b"), false },
		{ "percent", S("a%b"), false },
		{ "angle bracket", S("a<b"), false },
		{ "NUL byte", S("a\0b"), false },
		{ "line feed", S("a\nb"), false },
		{ "tab", S("a\tb"), false },
		{ "DEL", S("a\x7F" "b"), false },
		{ "non-ASCII e-acute", S("caf\xC3\xA9"), false },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ok(!request_id_valid(bad[i].s, bad[i].len), "request_id_valid: %s is refused",
		   bad[i].name);
}

int main(void)
{
	test_counts();
	test_controls();
	test_request_ids();
	return done();
}
