/* libFuzzer target for src/json.c: the request body parser and the writers behind idempotency
 * fingerprints. Whatever json_parse accepts must be a tree the handlers may trust (strings and
 * names valid UTF-8, no duplicate names, depth within JSON_MAX_DEPTH, numbers in the JSON
 * grammar), and both writers must give text that parses back: json_write to the same tree,
 * json_write_canonical to the same tree with every object's members sorted, and canonicalising
 * that again must give the very same bytes (a fingerprint is stable). */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "jv.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* JSON's number grammar (RFC 8259 §6). */
static bool number_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < n && s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == n;
}

static int name_cmp(const struct jmember *x, const struct jmember *y)
{
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* The tree's invariants; `sorted`: every object's names are in strictly increasing order. */
static void check_tree(const struct jv *v, int depth, bool sorted)
{
	switch (v->t) {
	case J_NULL:
	case J_BOOL:
		break;
	case J_NUM:
		assert(number_ok(v->s, v->len));
		break;
	case J_STR:
		assert(utf8_count(v->s, v->len) >= 0);
		break;
	case J_ARR:
		assert(depth + 1 <= JSON_MAX_DEPTH);
		for (size_t i = 0; i < v->n; i++)
			check_tree(v->v[i], depth + 1, sorted);
		break;
	case J_OBJ:
		assert(depth + 1 <= JSON_MAX_DEPTH);
		for (size_t i = 0; i < v->n; i++) {
			const struct jmember *m = &v->m[i];
			assert(utf8_count(m->key, m->klen) >= 0);
			for (size_t k = 0; k < i; k++)
				assert(name_cmp(&v->m[k], m) != 0);
			if (sorted && i > 0)
				assert(name_cmp(&v->m[i - 1], m) < 0);
			check_tree(m->val, depth + 1, sorted);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena a;   /* reset per input, as a worker resets it per request */
	const char *doc = (const char *)data;
	struct jv *v;

	arena_reset(&a);
	if (json_parse(&a, doc, size, &v) < 0)
		return 0;
	assert(!(size >= 3 && memcmp(doc, "\xEF\xBB\xBF", 3) == 0));
	assert(utf8_count(doc, size) >= 0);
	check_tree(v, 0, false);

	size_t clen, c2len, wlen;
	const char *canon = jv_text(&a, v, true, &clen);
	struct jv *cv;
	assert(json_parse(&a, canon, clen, &cv) == 0);
	check_tree(cv, 0, true);
	assert(jv_equal(v, cv, false));
	const char *canon2 = jv_text(&a, cv, true, &c2len);
	assert(c2len == clen && memcmp(canon, canon2, clen) == 0);

	const char *written = jv_text(&a, v, false, &wlen);
	struct jv *wv;
	assert(json_parse(&a, written, wlen, &wv) == 0);
	assert(jv_equal(v, wv, true));
	return 0;
}
