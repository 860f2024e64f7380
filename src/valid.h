/* Validation at the edge: body fields and query parameters become typed values, and every
 * problem becomes an entry of error.details (see reply_validation). */
#ifndef REMIT_VALID_H
#define REMIT_VALID_H
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

enum { V_ABSENT = 0, V_OK = 1, V_BAD = -1 };

/* Each records its error under `field` and returns V_OK, V_ABSENT (missing or null; an error
 * too when `required`) or V_BAD. */
int v_text(struct ctx *c, const char *field, bool required, long min, long max, const char **out);
/* A currency code from the service's table; stores its minor unit. */
int v_currency(struct ctx *c, const char *field, bool required, const char **code, int *minor);
/* An amount (string or number literal) for a currency with `minor` digits; minor < 0 means
 * the currency is unknown and only the form is checked. */
int v_money(struct ctx *c, const char *field, bool required, int minor, bool allow_zero,
	int64_t *out);

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
/* limit (1..200, default 50) and cursor (an id); records errors. */
void q_page(struct ctx *c, int *limit, long long *cursor);
/* An id filter (`requestId`, `objectId`): 0 when absent, else the id, or -1 when the value is
 * no id at all — then, like an id of another organisation, it matches nothing. */
long long q_id(struct ctx *c, const char *name);
/* A list is fetched with LIMIT limit + 1: page_len gives the rows of this page, page_next the
 * cursor for the next one (the id in column 0 of the page's last row), 0 on the last page. */
size_t page_len(const struct dbres *r, int limit);
long long page_next(const struct dbres *r, size_t len);
/* status must be one of `statuses` (NULL-terminated); NULL when absent. */
const char *q_status(struct ctx *c, const char *const statuses[]);

#endif
