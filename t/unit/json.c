/* The body parser (json.c): what it must refuse, what it must keep exactly, and the canonical
 * form that idempotency fingerprints hash. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "tap.h"

static struct arena a;

static bool parses(const char *s, size_t n)
{
	struct jv *v;
	return json_parse(&a, s, n, &v) == 0;
}

#define PARSES(lit) parses(lit, sizeof lit - 1)

static struct jv *parse(const char *s)
{
	struct jv *v = NULL;
	return json_parse(&a, s, strlen(s), &v) == 0 ? v : NULL;
}

static const char *canonical(const char *s)
{
	struct jv *v = parse(s);
	if (!v)
		return NULL;
	yajl_gen g = jw_new();
	json_write_canonical(g, v);
	return jw_finish(&a, g);
}

/* "[[[...]]]" style nesting: `depth` objects {"a":{"a":...}} */
static const char *nested(int depth)
{
	static char buf[1024];
	size_t k = 0;
	for (int i = 0; i < depth - 1; i++)
		k += (size_t)sprintf(buf + k, "{\"a\":");
	k += (size_t)sprintf(buf + k, "{}");
	for (int i = 0; i < depth - 1; i++)
		buf[k++] = '}';
	buf[k] = '\0';
	return buf;
}

int main(void)
{
	ok(PARSES("{}"), "empty object");
	ok(PARSES(" {\"a\" : [1, 2.50, true, null, \"x\"]} "), "white space and every type");
	ok(!PARSES(""), "empty text");
	ok(!PARSES("{"), "truncated");
	ok(!PARSES("{}x"), "trailing garbage");
	ok(!PARSES("{}{}"), "two documents");
	ok(!PARSES("{'a':1}"), "single quotes");
	ok(!PARSES("{\"a\":1,}"), "trailing comma");
	ok(!PARSES("{/*c*/}"), "comments");
	ok(!PARSES("\xEF\xBB\xBF{}"), "byte-order mark");
	ok(!PARSES("{\"a\":1,\"a\":2}"), "duplicate member names");
	ok(PARSES("{\"a\":{\"a\":1}}"), "the same name in nested objects");
	ok(!PARSES("{\"a\":\"\xC0\xAF\"}"), "overlong UTF-8");
	ok(!PARSES("{\"a\":\"\xED\xA0\x80\"}"), "raw surrogate");
	ok(!PARSES("{\"a\":\"\\ud800\"}"), "escaped lone high surrogate");
	ok(!PARSES("{\"a\":\"\\udc00\"}"), "escaped lone low surrogate");
	ok(!PARSES("{\"a\":\"\\ud800x\"}"), "high surrogate followed by text");
	ok(!PARSES("{\"a\":\"\\ud800\\u0041\"}"), "high surrogate followed by a non-surrogate escape");
	ok(!PARSES("{\"\\ud800\":1}"), "lone surrogate in a member name");
	ok(!PARSES("{\"a\":\"\xFF\"}"), "invalid byte");
	ok(!PARSES("{\v\"a\":1}"), "vertical tab is not white space (yajl takes it for one)");
	ok(!PARSES("{\"a\":1}\f"), "form feed is not white space");

	const char *deep32 = nested(32);
	ok(parses(deep32, strlen(deep32)), "32 levels parse");
	const char *deep33 = nested(33);
	ok(!parses(deep33, strlen(deep33)), "33 levels do not");

	struct jv *v = parse("{\"s\":\"a\\u0000b\\\"\\\\\\/\\n\",\"e\":\"\\ud83d\\ude00\",\"n\":-0.10e+3}");
	ok(v && v->t == J_OBJ && v->n == 3, "object with three members");
	struct jv *s = v ? json_get(v, "s") : NULL;
	ok(s && s->len == 7 && memcmp(s->s, "a\0b\"\\/\n", 7) == 0, "escapes decoded, U+0000 kept");
	struct jv *e = v ? json_get(v, "e") : NULL;
	is_str(e ? e->s : NULL, "\xF0\x9F\x98\x80", "surrogate pair decoded to one code point");
	struct jv *n = v ? json_get(v, "n") : NULL;
	is_str(n && n->t == J_NUM ? n->s : NULL, "-0.10e+3", "number keeps its literal text");
	ok(v && !json_get(v, "x"), "missing member");

	struct jv *big = parse("{\"a\":123456789012345678901234567890}");
	is_str(big ? json_get(big, "a")->s : NULL, "123456789012345678901234567890", "huge number kept");

	is_str(canonical("{ \"b\" : 1, \"a\" : {\"d\":[3, {\"z\":1,\"y\":2}], \"c\":\"x\"} }"),
		"{\"a\":{\"c\":\"x\",\"d\":[3,{\"y\":2,\"z\":1}]},\"b\":1}", "canonical: members sorted, no space");
	is_str(canonical("{\"ab\":1,\"a\":2,\"b\":3}"), "{\"a\":2,\"ab\":1,\"b\":3}", "canonical: prefix sorts first");
	is_str(canonical("{\"k\":\"\\u00e9\"}"), canonical("{\"k\":\"\xC3\xA9\"}"), "canonical: escape and raw agree");

	arena_free(&a);
	return done();
}
