/* What a request tells an approver before they approve it (API §10): DUPLICATE,
 * NEW_BENEFICIARY and ACCOUNT_CHANGED, computed when read, for a whole page of requests in
 * one statement (the indexes of sql/migrations/0008_signals.sql answer each part). */
#ifndef REMIT_DOMAIN_SIGNALS_H
#define REMIT_DOMAIN_SIGNALS_H
#include "http.h"

/* Only these statuses carry signals. */
#define SIGNAL_STATUSES "('DRAFT', 'PENDING_APPROVAL', 'APPROVED')"

/* The conditions on `o`, another request, that make it a signal of request `x` (an alias):
 * the same text answers the page's signals (a join) and the `signal` filter (EXISTS). */
#define SIGNAL_DUPLICATE(x) \
	"o.org_id = " x ".org_id AND o.beneficiary_account = " x ".beneficiary_account" \
	" AND o.currency = " x ".currency AND o.amount = " x ".amount" \
	" AND o.created_at BETWEEN " x ".created_at - INTERVAL 90 DAY" \
	" AND " x ".created_at + INTERVAL 90 DAY" \
	" AND o.id <> " x ".id AND o.status NOT IN ('REJECTED', 'CANCELLED')"
#define SIGNAL_PAID_ACCOUNT(x) \
	"o.org_id = " x ".org_id AND o.beneficiary_account = " x ".beneficiary_account" \
	" AND o.status = 'PAID'"
#define SIGNAL_ACCOUNT_CHANGED(x) \
	"o.org_id = " x ".org_id AND o.name_key = " x ".name_key AND o.status = 'PAID'" \
	" AND o.beneficiary_account <> " x ".beneficiary_account"

/* The signal codes, sorted: the values of the `signal` filter. */
extern const char *const signal_codes[];

/* The signals of the requests whose ids are column 0 of `rows`, read in one statement. */
struct signals {
	struct dbres res;     /* (request id, code, other id or NULL), sorted */
};

/* The signals of the requests in `rows`, whose column SIGNALS_ROW_ID is the request's id
 * (REQUEST_COLS: R_ID, checked in repr.c). 0, or -1 when the database fails. */
enum { SIGNALS_ROW_ID = 0 };
int signals_load(struct ctx *c, const struct dbres *rows, struct signals *s);

/* Writes "signals": [...] for request `id` (an empty array when it has none). */
void signals_write(yajl_gen g, const struct signals *s, long long id);

#endif
