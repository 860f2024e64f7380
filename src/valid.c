#include "valid.h"

#include <stdio.h>
#include <string.h>

#include "money.h"
#include "text.h"

static const char SQL_CURRENCIES[] = "SELECT code, minor_unit FROM currencies";
enum { CUR_CODE, CUR_MINOR };

/* Currencies change only with a migration (and a restart): each worker reads them once,
 * before its first request that may need them (router.c), so that a failure to read them is
 * a database failure (503) and never looks like an unsupported currency (400). */
static struct {
	char code[4];
	int minor;
} currencies[256];
static int ncurrencies;

int currencies_load(struct ctx *c)
{
	struct dbres r;
	if (ncurrencies > 0)
		return 0;
	if (db_query(c->db, c->a, &r, SQL_CURRENCIES, "") < 0)
		return -1;
	for (size_t i = 0; i < r.nrows && i < 256; i++) {
		snprintf(currencies[i].code, 4, "%s", db_s(&r, i, CUR_CODE));
		currencies[i].minor = (int)db_i(&r, i, CUR_MINOR);
	}
	ncurrencies = r.nrows < 256 ? (int)r.nrows : 256;
	return 0;
}

int currency_minor(struct ctx *c, const char *code)
{
	(void)c;
	for (int i = 0; i < ncurrencies; i++)
		if (strcmp(currencies[i].code, code) == 0)
			return currencies[i].minor;
	return -1;
}

static struct jv *field_value(struct ctx *c, const char *field, bool required,
	enum v_result *rc)
{
	struct jv *v = json_get(c->body, field);
	if (!v || v->t == J_NULL) {
		*rc = V_ABSENT;
		if (required) {
			detail_str(c, field, "is required");
			*rc = V_BAD;
		}
		return NULL;
	}
	*rc = V_OK;
	return v;
}

enum v_result v_text(struct ctx *c, const char *field, bool required, long min, long max, const char **out)
{
	enum v_result rc;
	struct jv *v = field_value(c, field, required, &rc);
	if (!v)
		return rc;
	if (v->t != J_STR) {
		detail_str(c, field, "must be a string");
		return V_BAD;
	}
	long n = utf8_count(v->s, v->len);
	if (n < 0 || text_has_control(v->s, v->len)) {
		detail_str(c, field, "must not contain control characters");
		return V_BAD;
	}
	if (n < min || n > max) {
		if (min > 0)
			detail_str(c, field, arena_printf(c->a, "must be %ld to %ld characters long", min, max));
		else
			detail_str(c, field, arena_printf(c->a, "must be at most %ld characters long", max));
		return V_BAD;
	}
	*out = v->s;
	return V_OK;
}

enum v_result v_currency(struct ctx *c, const char *field, bool required, const char **code, int *minor)
{
	const char *s;
	enum v_result rc = v_text(c, field, required, 3, 3, &s);
	if (rc != V_OK) {
		if (rc == V_BAD)
			detail_str(c, field, "must be an ISO 4217 currency code");
		return rc;
	}
	if ((*minor = currency_minor(c, s)) < 0) {
		detail_str(c, field, "must be an upper-case ISO 4217 currency code this service supports");
		return V_BAD;
	}
	*code = s;
	return V_OK;
}

enum v_result v_money(struct ctx *c, const char *field, bool required, int minor, bool allow_zero,
	int64_t *out)
{
	enum v_result rc;
	struct jv *v = field_value(c, field, required, &rc);
	if (!v)
		return rc;
	if (v->t != J_STR && v->t != J_NUM) {
		detail_str(c, field, "must be a decimal string such as \"1000.00\"");
		return V_BAD;
	}
	int64_t amount;
	const char *err = money_parse(v->s, v->len, minor < 0 ? 4 : minor, allow_zero, &amount);
	if (err) {
		detail_str(c, field, err);
		return V_BAD;
	}
	if (minor < 0)
		return V_BAD;   /* the currency's error is reported; the form was fine */
	*out = amount;
	return V_OK;
}

const struct jv *v_string(struct ctx *c, const char *field)
{
	const struct jv *v = json_get(c->body, field);
	if (!v || v->t == J_NULL)
		detail_str(c, field, "is required");
	else if (v->t != J_STR)
		detail_str(c, field, "must be a string");
	else
		return v;
	return NULL;
}

void v_no_unknown(struct ctx *c, const char *const known[])
{
	for (size_t i = 0; i < c->body->n; i++) {
		const struct jmember *m = &c->body->m[i];
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strlen(*k) == m->klen && memcmp(*k, m->key, m->klen) == 0;
		if (!ok) {
			char *name = arena_alloc(c->a, m->klen * 6 + 1);
			if (utf8_count(m->key, m->klen) >= 0 && !memchr(m->key, 0, m->klen))
				memcpy(name, m->key, m->klen + 1);
			else
				snprintf(name, 8, "(field)");
			detail_str(c, name, "is not a known field");
		}
	}
}

static int hexdigit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) ('+' is a space); NULL when an escape is malformed. */
static char *decode(struct ctx *c, const char *s, size_t n)
{
	char *o = arena_alloc(c->a, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexdigit((unsigned char)s[i + 1]) : -1;
			int lo = hi >= 0 ? hexdigit((unsigned char)s[i + 2]) : -1;
			if (lo < 0)
				return NULL;
			o[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			o[k++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	o[k] = '\0';
	if (memchr(o, 0, k) || utf8_count(o, k) < 0)
		return NULL;
	return o;
}

void q_parse(struct ctx *c, const char *const allowed[])
{
	const char *p = c->rq.query;
	size_t count = 1;
	for (const char *s = p; *s; s++)
		count += *s == '&';
	c->q = arena_alloc(c->a, count * sizeof *c->q);
	c->nq = 0;
	while (*p) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		size_t kn = eq ? (size_t)(eq - p) : n;
		char *name = decode(c, p, kn);
		char *value = eq ? decode(c, eq + 1, n - kn - 1) : arena_strndup(c->a, "", 0);
		if (n == 0)
			goto next;
		if (!name) {
			detail_str(c, "query", "is not a valid query string");
			goto next;
		}
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, name) == 0;
		if (!known) {
			detail_str(c, name, "is not a known query parameter");
			goto next;
		}
		if (q_get(c, name)) {
			detail_str(c, name, "must not be repeated");
			goto next;
		}
		if (!value) {
			detail_str(c, name, "is not validly encoded");
			goto next;
		}
		c->q[c->nq++] = (struct qparam){ name, value };
	next:
		p += n + (p[n] == '&');
	}
}

const char *q_get(struct ctx *c, const char *name)
{
	for (int i = 0; i < c->nq; i++)
		if (strcmp(c->q[i].name, name) == 0)
			return c->q[i].value;
	return NULL;
}

/* A positive decimal integer without sign or leading zeros, at most `max`; else -1. */
static long long positive(const char *s, long long max)
{
	long long v = 0;
	if (!*s || *s == '0' || strlen(s) > 18)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -1;
}

void q_page(struct ctx *c, int *limit, long long *cursor)
{
	const char *l = q_get(c, "limit"), *cur = q_get(c, "cursor");
	*limit = 50;
	*cursor = 0;
	if (l) {
		long long n = positive(l, 200);
		if (n < 0)
			detail_str(c, "limit", "must be an integer from 1 to 200");
		else
			*limit = (int)n;
	}
	if (cur && (*cursor = positive(cur, 999999999999999999LL)) < 0) {
		*cursor = 0;
		detail_str(c, "cursor", "is not a cursor this service gave out");
	}
}

long long q_id(struct ctx *c, const char *name)
{
	const char *v = q_get(c, name);
	if (!v)
		return 0;
	long long id = id_parse(v);
	return id ? id : -1;
}

const char *q_one_of(struct ctx *c, const char *name, const char *const values[],
	const char *message)
{
	const char *s = q_get(c, name);
	if (!s)
		return NULL;
	for (const char *const *v = values; *v; v++)
		if (strcmp(*v, s) == 0)
			return *v;
	detail_str(c, name, message);
	return NULL;
}

const char *q_status(struct ctx *c, const char *const statuses[])
{
	return q_one_of(c, "status", statuses, "is not a known status");
}

const char *q_text(struct ctx *c, const char *name, long min, long max)
{
	const char *s = q_get(c, name);
	if (!s)
		return NULL;
	size_t len = strlen(s);
	long n = utf8_count(s, len);
	if (n < min || n > max || text_has_control(s, len)) {
		detail_str(c, name, arena_printf(c->a, "must be %ld to %ld characters, none a control"
			" character", min, max));
		return NULL;
	}
	return s;
}

enum v_result q_money(struct ctx *c, const char *name, int minor, int64_t *out)
{
	const char *s = q_get(c, name);
	if (!s)
		return V_ABSENT;
	const char *err = money_parse(s, strlen(s), minor < 0 ? 4 : minor, true, out);
	if (err) {
		detail_str(c, name, err);
		return V_BAD;
	}
	return minor < 0 ? V_BAD : V_OK;
}
