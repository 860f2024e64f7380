/* JSON bodies: a strict, bounded parse into an arena-allocated tree, and output helpers. */
#ifndef REMIT_JSON_H
#define REMIT_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "arena.h"

#define JSON_MAX_DEPTH 32

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_OBJ, J_ARR };

struct jv;
struct jmember {
	const char *key;
	size_t klen;
	struct jv *val;
};

struct jv {
	enum jtype t;
	bool b;              /* J_BOOL */
	const char *s;       /* J_STR: decoded UTF-8 (may hold U+0000); J_NUM: the literal's text */
	size_t len;
	struct jmember *m;   /* J_OBJ members, in document order */
	struct jv **v;       /* J_ARR elements */
	size_t n;            /* member or element count */
};

/* Parses a whole document. Refuses (returns -1) invalid JSON, invalid UTF-8 (overlong forms,
 * surrogates, raw or escaped and unpaired), a byte-order mark, duplicate member names,
 * nesting deeper than JSON_MAX_DEPTH. Numbers keep their literal text. */
int json_parse(struct arena *a, const char *buf, size_t len, struct jv **out);

/* The member `key` of an object, or NULL. */
struct jv *json_get(const struct jv *obj, const char *key);

/* Writes v with object members sorted by name (bytewise): the canonical form used for
 * idempotency fingerprints. */
void json_write_canonical(yajl_gen g, const struct jv *v);

/* Output helpers: `k` is the member name (NULL inside an array). */
void jw_key(yajl_gen g, const char *k);
void jw_str(yajl_gen g, const char *k, const char *v);          /* v NULL → null */
void jw_strn(yajl_gen g, const char *k, const char *v, size_t n);
void jw_int(yajl_gen g, const char *k, long long v);
void jw_id(yajl_gen g, const char *k, long long id);             /* ids are opaque strings; 0 → null */
void jw_bool(yajl_gen g, const char *k, bool v);
void jw_null(yajl_gen g, const char *k);
void jw_time(yajl_gen g, const char *k, const char *dbtime);     /* DB DATETIME(3) → RFC 3339 */
void jw_open(yajl_gen g, const char *k);                         /* { */
void jw_close(yajl_gen g);                                       /* } */
void jw_array(yajl_gen g, const char *k);                        /* [ */
void jw_array_close(yajl_gen g);                                 /* ] */

/* A generator with UTF-8 validation on, and its text copied into the arena (freeing it):
 * for the JSON data of audit events and snapshots. */
yajl_gen jw_new(void);
const char *jw_finish(struct arena *a, yajl_gen g);

/* Writes a parsed value back out (member order preserved). */
void json_write(yajl_gen g, const struct jv *v);

#endif
