/* One pager for every list endpoint (like redis's scanGenericCommand): the query's limit and
 * cursor, the keyset bounds for the statement, and the page's answer with its nextCursor.
 * Lists are newest first by id: a page is `WHERE id < before ORDER BY id DESC LIMIT fetch`,
 * and the row past the limit only tells that there is a next page. */
#ifndef REMIT_PAGE_H
#define REMIT_PAGE_H
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct page {
	int limit;            /* items per page: 1..200, 50 by default */
	long long before;     /* the cursor (an id), INT64_MAX on the first page */
	long long fetch;      /* rows to select: limit + 1 */
};

/* Writes the item that starts at row `row` of `r` and returns the row after it (items of
 * more than one row, such as a batch with one row per currency, return more than row + 1).
 * Column PAGE_ID of an item's first row is its id: the cursor. */
enum { PAGE_ID = 0 };   /* every list's SELECT names the id first */
typedef size_t (*page_item_fn)(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row);

/* A column of a row written as a JSON member, for items that are their row's columns. */
struct column {
	const char *name;     /* the member's name; NULL ends a table of columns */
	char kind;            /* 'i' an id (string, 0 → null), 's' text, 't' a DB time as RFC 3339 */
	int col;              /* the column's index in the row */
};

/* Writes row `row` of `r` as {members of `cols`}: one item of a list. */
void write_columns(yajl_gen g, const struct dbres *r, size_t row, const struct column *cols);

/* Parses a list's query: only `allowed` parameters (NULL-terminated), limit and cursor into
 * `p`, and when `statuses` is given the status filter into *status (NULL when absent). The
 * problems are recorded in c->details: a list with filters of its own checks them too, then
 * answers reply_validation when c->ndetails. */
void page_parse(struct ctx *c, const char *const allowed[], const char *const statuses[],
	const char **status, struct page *p);

/* page_parse, then STEP_GO_ON, or the status of the 400 VALIDATION_ERROR reply with every
 * problem found. */
int page_begin_or_reply(struct ctx *c, const char *const allowed[], const char *const statuses[],
	const char **status, struct page *p);

/* Answers {"data":[…],"nextCursor"} with the items of `r` up to the page's limit. */
int page_reply(struct ctx *c, const struct page *p, const struct dbres *r, page_item_fn item);

/* The whole of a list that takes only limit and cursor: `sql` selects the page with three
 * placeholders, the owner's id (`owner`), the cursor and the row count. */
int page_list_reply(struct ctx *c, const char *sql, long long owner, page_item_fn item);

/* At most this many rows in one CSV export (API §10). */
#define CSV_MAX_ROWS 100000

/* When the client asks for CSV (Accept: text/csv), widens `p` to every row that matches,
 * up to CSV_MAX_ROWS + 1 (the one more tells that there are too many), and returns true. */
bool page_export(struct ctx *c, struct page *p);

/* page_reply, then the items as CSV, attachment `filename`: one column per name of `cols`
 * (NULL-terminated; a member an item lacks is an empty field). More than CSV_MAX_ROWS rows
 * → 400 VALIDATION_ERROR naming `filters`. */
int page_reply_csv(struct ctx *c, const struct page *p, const struct dbres *r, page_item_fn item,
	const char *const cols[], const char *filename);

/* Answers an empty last page (a filter that can match nothing). */
int page_empty_reply(struct ctx *c);

#endif
