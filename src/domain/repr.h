/* Shared representations (doc/openapi.yaml#Lifecycle): one batch with its totals and counts, one payment request,
 * and money text, for every handler that answers with them. */
#ifndef REMIT_DOMAIN_REPR_H
#define REMIT_DOMAIN_REPR_H
#include <stdbool.h>
#include <stdint.h>

#include "domain/lifecycle.h"
#include "http.h"
#include "money.h"
#include "page.h"

/* A request's columns in the order write_request reads them, then the currency's minor unit.
 * Selected from `payment_requests r JOIN currencies cu ON cu.code = r.currency`. The
 * procedure request_add (sql/migrations/0014) answers with the same list: change both
 * (script/check-lists fails until they agree). */
#define REQUEST_COLS \
	"r.id, r.batch_id, r.status, r.amount, r.currency, r.beneficiary_name," \
	" r.beneficiary_account, r.purpose, r.created_by, r.created_at, r.updated_at, r.version," \
	" r.required_approvals, r.approval_count, r.snapshot, r.paid_at, r.paid_by," \
	" r.payment_reference, cu.minor_unit" REQUEST_FILE_COLS
/* REQUEST_COLS (and REQUEST_FILE_COLS after them), by position. */
enum { R_ID, R_BATCH, R_STATUS, R_AMOUNT, R_CURRENCY, R_NAME, R_ACCOUNT, R_PURPOSE, R_CREATED_BY,
	R_CREATED_AT, R_UPDATED_AT, R_VERSION, R_REQUIRED, R_APPROVALS, R_SNAPSHOT, R_PAID_AT,
	R_PAID_BY, R_REFERENCE, R_MINOR, R_FILE, R_RETURN_FILE, R_RETURN_REASON, R_RETURN_AT };
/* Its payment file (API §9): the live one's id, then the latest RETURNED item's file, reason
 * and time (lastReturn). The procedure request_add answers without them (a new request is
 * in no file), and write_request writes null then. */
#define REQUEST_RETURN(col) \
	", (SELECT i." col " FROM payment_file_items i WHERE i.request_id = r.id" \
	" AND i.status = 'RETURNED' ORDER BY i.id DESC LIMIT 1)"
#define REQUEST_FILE_COLS \
	", (SELECT i.file_id FROM payment_file_items i WHERE i.live_request_id = r.id)" \
	REQUEST_RETURN("file_id") REQUEST_RETURN("reason_code") REQUEST_RETURN("final_at")

struct signals;
/* Writes the request in row `row` of a result selected with REQUEST_COLS (its snapshot is
 * parsed in `a`), with its signals from `s` (signals.h). */
void write_request(struct arena *a, yajl_gen g, const struct dbres *res, size_t row,
	const struct signals *s);

/* write_request as a list's item (page_item_fn), with the signals of c->signals. */
size_t request_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row);

/* Replies with a page of requests selected with REQUEST_COLS and their signals (one more
 * statement for the whole page); as CSV (page_reply_csv) when `csv`. */
int reply_request_page(struct ctx *c, const struct page *p, const struct dbres *r, bool csv);
/* An audit event as GET /api/v1/audit shows it, from a row whose first columns are
 * AUDIT_EVENT_COLUMNS; also the `data` of a webhook's payload (src/deliver.c). */
#define AUDIT_EVENT_COLUMNS "id, at, actor_id, action, object_type, object_id," \
	" idempotency_key, correlation_id, data, hash, prev_hash, cred_kind, cred_id, cred_minted_by"
enum { AE_ID, AE_AT, AE_ACTOR, AE_ACTION, AE_TYPE, AE_OBJECT, AE_KEY, AE_CORR, AE_DATA, AE_HASH,
	AE_PREV, AE_CRED_KIND, AE_CRED_ID, AE_CRED_MINTED,
	AUDIT_EVENT_NCOLS };   /* a column selected after them is number AUDIT_EVENT_NCOLS */
size_t audit_event_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row);

/* Replies with one request of the caller's organisation as `data` (ETag: its version); 404
 * when there is none, else 400 with the details recorded so far (a GET's query parameters
 * are checked after the object is found). `latest` reads the newest committed row with a locking read: a
 * mutation whose transaction may already hold an older snapshot needs that. */
int reply_request(struct ctx *c, int status, long long id, bool latest);
/* Replies with the request in the first row of `r`, selected with REQUEST_COLS. */
int reply_request_row(struct ctx *c, int status, const struct dbres *r);

/* Replies with one batch as `data` (ETag: its version), 404 when there is none, else 400 as
 * above. Runs one
 * statement, so the batch row and its totals and counts come from one snapshot. */
int reply_batch(struct ctx *c, int status, long long id);

/* Replies with a page of the caller's batches, newest first, optionally of one status. */
int reply_batch_page(struct ctx *c, const char *status, const struct page *p);

/* Formats a decimal integer of minor units as SQL's SUM gives it (any number of digits,
 * optionally negative; NULL means 0) with `minor` fractional digits, never through a
 * fixed-width integer: totals can exceed int64. */
const char *decimal_minor(struct arena *a, const char *digits, int minor);

/* The JSON text of a request's snapshot: its fields as submitted plus requiredApprovals. */
const char *request_snapshot(struct arena *a, int64_t amount, int minor, const char *currency,
	const char *name, const char *account, const char *purpose, int required);

#endif
