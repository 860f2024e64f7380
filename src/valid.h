/* Validation at the edge: body fields and query parameters become typed values, and every
 * problem becomes an entry of error.details (see reply_validation). */
#ifndef REMIT_VALID_H
#define REMIT_VALID_H
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* What a validator found in its field. */
enum v_result {
	V_BAD = -1,      /* present but invalid: the error is recorded in c->details */
	V_ABSENT = 0,    /* missing or null (recorded as an error when the field is required) */
	V_OK = 1,        /* present and valid: *out holds the typed value */
};

/* Each records its error under `field` and returns V_OK, V_ABSENT (missing or null; an error
 * too when `required`) or V_BAD. */
enum v_result v_text(struct ctx *c, const char *field, bool required, long min, long max, const char **out);
/* A currency code from the service's table; stores its minor unit. */
enum v_result v_currency(struct ctx *c, const char *field, bool required, const char **code, int *minor);
/* An amount (string or number literal) for a currency with `minor` digits; minor < 0 means
 * the currency is unknown and only the form is checked. */
enum v_result v_money(struct ctx *c, const char *field, bool required, int minor, bool allow_zero,
	int64_t *out);

/* A required string member of the body as it is, or NULL with "is required" or "must be a
 * string" recorded: for what is compared rather than shown (a password, a token). */
const struct jv *v_string(struct ctx *c, const char *field);

/* Flags every member of the body that is not in `known` (NULL-terminated). */
void v_no_unknown(struct ctx *c, const char *const known[]);

/* The minor unit of a currency code, or -1 if the service does not know it. */
int currency_minor(struct ctx *c, const char *code);
/* Reads the currency table once per process: 0, or -1 on a database failure. */
int currencies_load(struct ctx *c);

/* Query parameters: checks that only `allowed` ones (NULL-terminated) appear, each at most
 * once, recording errors; then q_get returns a decoded value or NULL. */
void q_parse(struct ctx *c, const char *const allowed[]);
const char *q_get(struct ctx *c, const char *name);
/* limit (1..200, default 50) and cursor (an id); records errors. Lists use page.h. */
void q_page(struct ctx *c, int *limit, long long *cursor);
/* An id filter (`requestId`, `objectId`): 0 when absent, else the id, or -1 when the value is
 * no id at all — then, like an id of another organisation, it matches nothing. */
long long q_id(struct ctx *c, const char *name);
/* status must be one of `statuses` (NULL-terminated); NULL when absent. */
const char *q_status(struct ctx *c, const char *const statuses[]);
/* The same for any parameter, recording `message` for a value not in `values`. */
const char *q_one_of(struct ctx *c, const char *name, const char *const values[],
	const char *message);
/* Text of min..max code points without control characters; NULL when absent or bad. */
const char *q_text(struct ctx *c, const char *name, long min, long max);
/* An amount for a currency with `minor` digits, 0 allowed (minor < 0: the currency is
 * unknown, only the form is checked and the result is V_BAD). */
enum v_result q_money(struct ctx *c, const char *name, int minor, int64_t *out);

#endif
