#include "jv.h"

#include <string.h>

const char *jv_text(struct arena *a, const struct jv *v, bool canonical, size_t *len)
{
	yajl_gen g = jw_new();
	if (canonical)
		json_write_canonical(g, v);
	else
		json_write(g, v);
	const unsigned char *buf;
	yajl_gen_get_buf(g, &buf, len);
	return jw_finish(a, g);
}

static bool bytes_equal(const char *x, size_t xn, const char *y, size_t yn)
{
	return xn == yn && memcmp(x, y, xn) == 0;
}

bool jv_equal(const struct jv *x, const struct jv *y, bool ordered)
{
	if (x->t != y->t)
		return false;
	switch (x->t) {
	case J_NULL: return true;
	case J_BOOL: return x->b == y->b;
	case J_NUM:
	case J_STR: return bytes_equal(x->s, x->len, y->s, y->len);
	case J_ARR:
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (!jv_equal(x->v[i], y->v[i], ordered))
				return false;
		return true;
	case J_OBJ:
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++) {
			const struct jmember *m = &x->m[i];
			const struct jv *other = NULL;
			if (ordered) {
				if (bytes_equal(m->key, m->klen, y->m[i].key, y->m[i].klen))
					other = y->m[i].val;
			} else {
				for (size_t k = 0; k < y->n && !other; k++)
					if (bytes_equal(m->key, m->klen, y->m[k].key, y->m[k].klen))
						other = y->m[k].val;
			}
			if (!other || !jv_equal(m->val, other, ordered))
				return false;
		}
		return true;
	}
	return false;
}
