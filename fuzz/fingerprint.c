/* libFuzzer target for the idempotency fingerprint's body part (json_write_canonical over
 * json_parse): a document and its twin — the same object with every object's members in
 * another order, other white space between the tokens, and each character of its strings and
 * names written another legal way (raw, \uXXXX, a surrogate pair, a short escape) — must
 * canonicalise to identical bytes. The twin is built from the parsed tree, its order and
 * spelling drawn from a generator seeded with a hash of the input, so every input reproduces. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng;

static uint32_t next(uint32_t bound)   /* xorshift64*: 0..bound-1 */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 2685821657736338717ULL) >> 32) % bound;
}

/* A copy of v with each object's members shuffled (Fisher–Yates). */
static struct jv *permuted(struct arena *a, const struct jv *v)
{
	struct jv *c = arena_alloc(a, sizeof *c);
	*c = *v;
	if (v->t == J_ARR) {
		c->v = arena_alloc(a, (v->n ? v->n : 1) * sizeof *c->v);
		for (size_t i = 0; i < v->n; i++)
			c->v[i] = permuted(a, v->v[i]);
	} else if (v->t == J_OBJ) {
		c->m = arena_alloc(a, (v->n ? v->n : 1) * sizeof *c->m);
		for (size_t i = 0; i < v->n; i++)
			c->m[i] = (struct jmember){ v->m[i].key, v->m[i].klen, permuted(a, v->m[i].val) };
		for (size_t i = v->n; i > 1; i--) {
			size_t k = next((uint32_t)i);
			struct jmember t = c->m[i - 1];
			c->m[i - 1] = c->m[k];
			c->m[k] = t;
		}
	}
	return c;
}

/* The twin's text goes into an arena buffer sized for the worst case of what is written. */
struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	assert(o->len + n <= o->cap);
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void space(struct out *o)
{
	static const char ws[] = " \t\n\r";
	for (uint32_t n = next(4); n > 0; n--)
		put(o, &ws[next(4)], 1);
}

/* One decoded character of a valid UTF-8 string; returns its length in bytes. */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
	*cp = s[0] & (0x3F >> (n - 1));
	for (size_t k = 1; k < n; k++)
		*cp = *cp << 6 | (s[k] & 0x3F);
	return n;
}

static void put_u(struct out *o, uint32_t u)
{
	char buf[7];
	snprintf(buf, sizeof buf, next(2) ? "\\u%04X" : "\\u%04x", (unsigned)u);
	put(o, buf, 6);
}

/* The letter of the character's two-character escape, or 0. */
static char short_escape(uint32_t cp)
{
	switch (cp) {
	case '"': return '"';
	case '\\': return '\\';
	case '/': return '/';
	case '\b': return 'b';
	case '\f': return 'f';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\t': return 't';
	default: return 0;
	}
}

static void string(struct out *o, const char *s, size_t len)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = decode((const unsigned char *)s + i, &cp);
		char sh = short_escape(cp);
		bool must = cp < 0x20 || cp == '"' || cp == '\\';
		switch (next(3)) {
		case 0:
			if (!must) {
				put(o, s + i, n);
				break;
			}
			/* fall through */
		case 1:
			if (sh) {
				put(o, "\\", 1);
				put(o, &sh, 1);
				break;
			}
			/* fall through */
		default:
			if (cp < 0x10000) {
				put_u(o, cp);
			} else {
				put_u(o, 0xD800 + ((cp - 0x10000) >> 10));
				put_u(o, 0xDC00 + ((cp - 0x10000) & 0x3FF));
			}
		}
		i += n;
	}
	put(o, "\"", 1);
}

static void write_twin(struct out *o, const struct jv *v)
{
	space(o);
	switch (v->t) {
	case J_NULL: put(o, "null", 4); break;
	case J_BOOL: v->b ? put(o, "true", 4) : put(o, "false", 5); break;
	case J_NUM: put(o, v->s, v->len); break;
	case J_STR: string(o, v->s, v->len); break;
	case J_ARR:
		put(o, "[", 1);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				put(o, ",", 1);
			write_twin(o, v->v[i]);
		}
		space(o);
		put(o, "]", 1);
		break;
	case J_OBJ:
		put(o, "{", 1);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				put(o, ",", 1);
			space(o);
			string(o, v->m[i].key, v->m[i].klen);
			space(o);
			put(o, ":", 1);
			write_twin(o, v->m[i].val);
		}
		space(o);
		put(o, "}", 1);
		break;
	}
	space(o);
}

/* An upper bound of write_twin's output for a document of `size` bytes: string contents grow
 * at most 6-fold (a 1-byte character as \uXXXX), and a token of one or two bytes gets at most
 * 9 bytes of white space around it. */
static size_t twin_cap(size_t size) { return 12 * size + 64; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena a;
	struct jv *v, *tv;

	arena_reset(&a);
	if (json_parse(&a, (const char *)data, size, &v) < 0)
		return 0;
	rng = 0xcbf29ce484222325ULL;   /* FNV-1a of the input seeds the twin */
	for (size_t i = 0; i < size; i++)
		rng = (rng ^ data[i]) * 0x100000001b3ULL;
	rng |= 1;

	size_t clen, tlen;
	const char *canon = jv_text(&a, v, true, &clen);
	struct jv *twin = permuted(&a, v);
	const char *tcanon = jv_text(&a, twin, true, &tlen);
	assert(tlen == clen && memcmp(canon, tcanon, clen) == 0);

	struct out o = { .cap = twin_cap(size) };
	o.p = arena_alloc(&a, o.cap);
	write_twin(&o, twin);
	assert(json_parse(&a, o.p, o.len, &tv) == 0);
	assert(jv_equal(twin, tv, true));
	tcanon = jv_text(&a, tv, true, &tlen);
	assert(tlen == clen && memcmp(canon, tcanon, clen) == 0);
	return 0;
}
