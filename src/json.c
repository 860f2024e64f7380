/* yajl checks the grammar; strings are decoded here from the raw text, because yajl 2.1 drops
 * an escaped U+0000, turns a lone escaped high surrogate into '?' and lets overlong UTF-8
 * through: each would let a forbidden character reach a handler unseen. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "text.h"

struct node {
	struct jv v;
	struct node *next;
	const char *key;
	size_t klen;
};

struct frame {
	struct jv *container;
	struct node *head, *tail;
	const char *key;     /* pending member name inside an object */
	size_t klen;
};

struct parser {
	struct arena *a;
	yajl_handle h;
	const char *buf;
	struct frame stack[JSON_MAX_DEPTH + 1];
	int depth;           /* open containers */
	struct jv *root;
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long hex4(const char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hexval((unsigned char)p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes the raw string ending just before the closing quote at `end` (the grammar was checked
 * by yajl). Returns -1 for an unpaired surrogate escape. */
static int decode_raw(struct parser *p, size_t end, const char **out, size_t *outlen)
{
	size_t start = end;
	for (;;) {   /* back to the opening quote: the first one not escaped by an odd run of '\' */
		start--;
		if (p->buf[start] != '"')
			continue;
		size_t bs = 0;
		while (start - bs > 0 && p->buf[start - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0)
			break;
	}
	const char *s = p->buf + start + 1;
	size_t n = end - start - 1;
	char *o = arena_alloc(p->a, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			o[k++] = s[i];
			continue;
		}
		char e = s[++i];
		switch (e) {
		case 'b': o[k++] = '\b'; break;
		case 'f': o[k++] = '\f'; break;
		case 'n': o[k++] = '\n'; break;
		case 'r': o[k++] = '\r'; break;
		case 't': o[k++] = '\t'; break;
		case 'u': {
			unsigned long cp = (unsigned long)hex4(s + i + 1);
			i += 4;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return -1;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u')
					return -1;
				long lo = hex4(s + i + 3);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
				i += 6;
			}
			k += put_utf8(o + k, cp);
			break;
		}
		default: o[k++] = e; break;   /* \" \\ \/ */
		}
	}
	o[k] = '\0';
	*out = o;
	*outlen = k;
	return 0;
}

static struct node *add(struct parser *p, enum jtype t)
{
	struct node *nd = arena_alloc(p->a, sizeof *nd);
	memset(nd, 0, sizeof *nd);
	nd->v.t = t;
	if (p->depth == 0) {
		p->root = &nd->v;
		return nd;
	}
	struct frame *f = &p->stack[p->depth - 1];
	nd->key = f->key;
	nd->klen = f->klen;
	if (f->tail)
		f->tail->next = nd;
	else
		f->head = nd;
	f->tail = nd;
	f->container->n++;
	return nd;
}

static int on_null(void *ctx)
{
	add(ctx, J_NULL);
	return 1;
}

static int on_bool(void *ctx, int b)
{
	add(ctx, J_BOOL)->v.b = b != 0;
	return 1;
}

static int on_number(void *ctx, const char *s, size_t len)
{
	struct parser *p = ctx;
	struct node *nd = add(p, J_NUM);
	nd->v.s = arena_strndup(p->a, s, len);
	nd->v.len = len;
	return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct parser *p = ctx;
	(void)s;
	(void)len;
	const char *v;
	size_t n;
	if (decode_raw(p, yajl_get_bytes_consumed(p->h) - 1, &v, &n) < 0)
		return 0;
	struct node *nd = add(p, J_STR);
	nd->v.s = v;
	nd->v.len = n;
	return 1;
}

static int on_key(void *ctx, const unsigned char *s, size_t len)
{
	struct parser *p = ctx;
	(void)s;
	(void)len;
	struct frame *f = &p->stack[p->depth - 1];
	const char *k;
	size_t n;
	if (decode_raw(p, yajl_get_bytes_consumed(p->h) - 1, &k, &n) < 0)
		return 0;
	f->key = k;
	f->klen = n;
	return 1;
}

static int open_container(struct parser *p, enum jtype t)
{
	if (p->depth >= JSON_MAX_DEPTH)
		return 0;
	struct node *nd = add(p, t);
	struct frame *f = &p->stack[p->depth++];
	memset(f, 0, sizeof *f);
	f->container = &nd->v;
	return 1;
}

static int member_cmp(const void *x, const void *y)
{
	const struct jmember *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, n);
	if (c)
		return c;
	return (a->klen > b->klen) - (a->klen < b->klen);
}

/* Whether two members share a name. Sorted, twins are neighbours: O(n log n), where comparing
 * each name with those before it cost ~160 ms of a worker for one 64 KiB body of 7,700 short
 * names. */
static bool has_duplicate(struct arena *a, const struct jmember *m, size_t n)
{
	if (n < 2)
		return false;
	struct jmember *s = arena_alloc(a, n * sizeof *s);
	memcpy(s, m, n * sizeof *s);
	qsort(s, n, sizeof *s, member_cmp);
	for (size_t i = 1; i < n; i++)
		if (member_cmp(&s[i - 1], &s[i]) == 0)
			return true;
	return false;
}

static int close_container(struct parser *p)
{
	struct frame *f = &p->stack[--p->depth];
	struct jv *c = f->container;
	size_t i = 0;
	if (c->t == J_OBJ) {
		c->m = arena_alloc(p->a, (c->n ? c->n : 1) * sizeof *c->m);
		for (struct node *nd = f->head; nd; nd = nd->next, i++)
			c->m[i] = (struct jmember){ nd->key, nd->klen, &nd->v };
		if (has_duplicate(p->a, c->m, c->n))
			return 0;
	} else {
		c->v = arena_alloc(p->a, (c->n ? c->n : 1) * sizeof *c->v);
		for (struct node *nd = f->head; nd; nd = nd->next, i++)
			c->v[i] = &nd->v;
	}
	return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, J_OBJ); }
static int on_end_map(void *ctx) { return close_container(ctx); }
static int on_start_array(void *ctx) { return open_container(ctx, J_ARR); }
static int on_end_array(void *ctx) { return close_container(ctx); }

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end_map,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end_array,
};

int json_parse(struct arena *a, const char *buf, size_t len, struct jv **out)
{
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		return -1;
	if (utf8_count(buf, len) < 0)
		return -1;
	/* yajl takes \v and \f for white space; RFC 8259 does not, and inside a string they are
	 * control characters that must be escaped: anywhere in the text they make it invalid. */
	if (memchr(buf, '\v', len) || memchr(buf, '\f', len))
		return -1;
	struct parser p = { .a = a, .buf = buf };
	p.h = yajl_alloc(&callbacks, NULL, &p);
	if (!p.h)
		abort();
	int rc = -1;
	if (yajl_parse(p.h, (const unsigned char *)buf, len) != yajl_status_ok)
		goto out;
	if (yajl_complete_parse(p.h) != yajl_status_ok || !p.root)
		goto out;
	*out = p.root;
	rc = 0;
out:
	yajl_free(p.h);
	return rc;
}

struct jv *json_get(const struct jv *obj, const char *key)
{
	size_t n = strlen(key);
	for (size_t i = 0; i < obj->n; i++)
		if (obj->m[i].klen == n && memcmp(obj->m[i].key, key, n) == 0)
			return obj->m[i].val;
	return NULL;
}

static void write_value(yajl_gen g, const struct jv *v, bool sorted)
{
	switch (v->t) {
	case J_NULL: yajl_gen_null(g); break;
	case J_BOOL: yajl_gen_bool(g, v->b); break;
	case J_NUM: yajl_gen_number(g, v->s, v->len); break;
	case J_STR: yajl_gen_string(g, (const unsigned char *)v->s, v->len); break;
	case J_ARR:
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->n; i++)
			write_value(g, v->v[i], sorted);
		yajl_gen_array_close(g);
		break;
	case J_OBJ: {
		struct jmember *m = v->m;
		if (sorted && v->n > 1) {
			if (!(m = malloc(v->n * sizeof *m)))
				abort();
			memcpy(m, v->m, v->n * sizeof *m);
			qsort(m, v->n, sizeof *m, member_cmp);
		}
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->n; i++) {
			yajl_gen_string(g, (const unsigned char *)m[i].key, m[i].klen);
			write_value(g, m[i].val, sorted);
		}
		yajl_gen_map_close(g);
		if (m != v->m)
			free(m);
		break;
	}
	}
}

void json_write_canonical(yajl_gen g, const struct jv *v) { write_value(g, v, true); }
void json_write(yajl_gen g, const struct jv *v) { write_value(g, v, false); }

void jw_key(yajl_gen g, const char *k)
{
	if (k)
		yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

void jw_str(yajl_gen g, const char *k, const char *v)
{
	jw_key(g, k);
	if (v)
		yajl_gen_string(g, (const unsigned char *)v, strlen(v));
	else
		yajl_gen_null(g);
}

void jw_strn(yajl_gen g, const char *k, const char *v, size_t n)
{
	jw_key(g, k);
	yajl_gen_string(g, (const unsigned char *)v, n);
}

void jw_int(yajl_gen g, const char *k, long long v)
{
	jw_key(g, k);
	yajl_gen_integer(g, v);
}

void jw_id(yajl_gen g, const char *k, long long id)
{
	char buf[24];
	jw_key(g, k);
	if (id <= 0) {
		yajl_gen_null(g);
		return;
	}
	int n = snprintf(buf, sizeof buf, "%lld", id);
	yajl_gen_string(g, (const unsigned char *)buf, (size_t)n);
}

void jw_bool(yajl_gen g, const char *k, bool v)
{
	jw_key(g, k);
	yajl_gen_bool(g, v);
}

void jw_null(yajl_gen g, const char *k)
{
	jw_key(g, k);
	yajl_gen_null(g);
}

/* "2026-11-28 02:10:53.123" (any fraction length) → "2026-11-28T02:10:53.123Z" */
void jw_time(yajl_gen g, const char *k, const char *t)
{
	jw_key(g, k);
	if (!t || strlen(t) < 19) {
		yajl_gen_null(g);
		return;
	}
	char buf[25];
	memcpy(buf, t, 19);
	buf[10] = 'T';
	buf[19] = '.';
	const char *frac = t[19] == '.' ? t + 20 : "";
	for (int i = 0; i < 3; i++)
		buf[20 + i] = *frac ? *frac++ : '0';
	buf[23] = 'Z';
	buf[24] = '\0';
	yajl_gen_string(g, (const unsigned char *)buf, 24);
}

void jw_open(yajl_gen g, const char *k)
{
	jw_key(g, k);
	yajl_gen_map_open(g);
}

void jw_close(yajl_gen g) { yajl_gen_map_close(g); }

void jw_array(yajl_gen g, const char *k)
{
	jw_key(g, k);
	yajl_gen_array_open(g);
}

void jw_array_close(yajl_gen g) { yajl_gen_array_close(g); }

yajl_gen jw_new(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	return g;
}

const char *jw_finish(struct arena *a, yajl_gen g)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	const char *s = arena_strndup(a, (const char *)buf, len);
	yajl_gen_free(g);
	return s;
}
