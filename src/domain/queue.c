/* The organisation's requests across batches, and the work queues of the frontend
 * (API §5, v1.1: GET /api/v1/requests with ?status=, ?batchId= and ?actionableBy=me; §10,
 * v1.2: ?q=, ?currency=, ?minAmount=, ?maxAmount=, ?signal= and Accept: text/csv). */
#include <stdint.h>
#include <string.h>

#include "domain/handlers.h"
#include "domain/repr.h"
#include "domain/signals.h"
#include "page.h"
#include "valid.h"

/* Two statements, with and without a status (the queues always name one, and then the
 * index requests_org_status reads only that status's rows), each covering every other
 * combination of filters so its text stays static (the db layer caches statements by
 * address). A filter that is off binds its neutral value: 0 for the batch and for
 * "actionable".
 *
 * Actionable by the caller: an APPROVER may decide a PENDING_APPROVAL request they have not
 * decided yet; a TREASURER may mark an APPROVED one paid (having approved it is no bar,
 * §7) unless it is in a live payment file (§9: that file pays it); and for both the caller
 * is none of the request's makers (request_makers: creator, changer, submitter), which is
 * what approve, reject and mark-paid check too.
 *
 * §10's filters: `q` a substring (LOCATE follows the columns' case-insensitive collation) of
 * the name, the purpose or the account without its spaces; the amount's bounds bind 0 and
 * INT64_MAX when absent; `signal` reuses the conditions that make the signals (signals.h). */
#define QUEUE_FROM \
	"SELECT " REQUEST_COLS " FROM payment_requests r" \
	" JOIN currencies cu ON cu.code = r.currency WHERE r.org_id = ?"
#define QUEUE_FILTERS \
	" AND r.id < ?" \
	" AND (? = 0 OR r.batch_id = ?)" \
	" AND (? = 0 OR (" \
	"   ((? = 1 AND r.status = 'PENDING_APPROVAL' AND NOT EXISTS (SELECT 1 FROM decisions d" \
	"       WHERE d.request_id = r.id AND d.approver_id = ?))" \
	"    OR (? = 1 AND r.status = 'APPROVED' AND NOT EXISTS (SELECT 1 FROM payment_file_items i" \
	"       WHERE i.live_request_id = r.id)))" \
	"   AND NOT EXISTS (SELECT 1 FROM request_makers m" \
	"       WHERE m.request_id = r.id AND m.user_id = ?)))" \
	" AND (? = '' OR LOCATE(?, r.beneficiary_name) > 0 OR LOCATE(?, r.purpose) > 0" \
	"   OR LOCATE(REPLACE(?, ' ', ''), REPLACE(r.beneficiary_account, ' ', '')) > 0)" \
	" AND (? = '' OR r.currency = ?) AND r.amount BETWEEN ? AND ?" \
	" AND (? = '' OR (r.status IN " SIGNAL_STATUSES " AND (" \
	"   (? = 'DUPLICATE' AND EXISTS (SELECT 1 FROM payment_requests o WHERE " \
	SIGNAL_DUPLICATE("r") "))" \
	"   OR (? = 'NEW_BENEFICIARY' AND NOT EXISTS (SELECT 1 FROM payment_requests o WHERE " \
	SIGNAL_PAID_ACCOUNT("r") "))" \
	"   OR (? = 'ACCOUNT_CHANGED' AND EXISTS (SELECT 1 FROM payment_requests o WHERE " \
	SIGNAL_ACCOUNT_CHANGED("r") ")))))" \
	" ORDER BY r.id DESC LIMIT ?"
static const char SQL_QUEUE[] = QUEUE_FROM QUEUE_FILTERS;
static const char SQL_QUEUE_STATUS[] = QUEUE_FROM " AND r.status = ?" QUEUE_FILTERS;

/* ?actionableBy=: absent → false; "me" → true; anything else is a validation error. */
static bool q_actionable(struct ctx *c)
{
	const char *v = q_get(c, "actionableBy");
	if (!v)
		return false;
	if (strcmp(v, "me") != 0) {
		detail_str(c, "actionableBy", "the only value is \"me\"");
		return false;
	}
	return true;
}

/* §10's filters, neutral when absent: '' for text, 0..INT64_MAX for the amount. */
struct filters {
	const char *q, *currency, *signal;
	int64_t min, max;
};

/* minAmount and maxAmount follow the money rules of `currency`, which they need. */
static void q_filters(struct ctx *c, struct filters *f)
{
	const char *q = q_text(c, "q", 1, 100);
	const char *currency = q_get(c, "currency");
	const char *signal = q_one_of(c, "signal", signal_codes, "must be one of ACCOUNT_CHANGED,"
		" DUPLICATE, NEW_BENEFICIARY");
	int minor = currency ? currency_minor(c, currency) : -1;
	if (currency && minor < 0)
		detail_str(c, "currency", "must be an upper-case ISO 4217 currency code this service"
			" supports");
	*f = (struct filters){ q ? q : "", currency ? currency : "", signal ? signal : "", 0,
		INT64_MAX };
	static const char *const bounds[] = { "minAmount", "maxAmount" };
	for (int i = 0; i < 2; i++) {
		if (!q_get(c, bounds[i]))
			continue;
		if (!currency)
			detail_str(c, bounds[i], "needs currency");
		else
			q_money(c, bounds[i], minor, i ? &f->max : &f->min);
	}
}

int h_requests_queue(struct ctx *c)
{
	static const char *const allowed[] = { "status", "batchId", "actionableBy", "q",
		"currency", "minAmount", "maxAmount", "signal", "limit", "cursor", NULL };
	struct page p;
	struct filters f;
	const char *status;
	page_parse(c, allowed, request_statuses, &status, &p);
	bool actionable = q_actionable(c);
	q_filters(c, &f);
	if (c->ndetails)
		return reply_validation(c);
	bool csv = page_export(c, &p);
	/* A batchId that is no batch of this organisation matches nothing, like any other id. */
	long long batch = q_id(c, "batchId");
	long long me = c->me.user_id;
	long long approver = (c->me.roles & ROLE_APPROVER) != 0;
	long long treasurer = (c->me.roles & ROLE_TREASURER) != 0;
	long long act = actionable;
	struct dbres r = { 0 };
	int rc = batch < 0 ? 0 : status
		? db_query(c->db, c->a, &r, SQL_QUEUE_STATUS, "isiiiiiiiissssssiissssi",
			c->me.org_id, status, p.before, batch, batch, act, approver, me, treasurer, me,
			f.q, f.q, f.q, f.q, f.currency, f.currency, (long long)f.min, (long long)f.max,
			f.signal, f.signal, f.signal, f.signal, p.fetch)
		: db_query(c->db, c->a, &r, SQL_QUEUE, "iiiiiiiiissssssiissssi", c->me.org_id,
			p.before, batch, batch, act, approver, me, treasurer, me,
			f.q, f.q, f.q, f.q, f.currency, f.currency, (long long)f.min, (long long)f.max,
			f.signal, f.signal, f.signal, f.signal, p.fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	return reply_request_page(c, &p, &r, csv);
}
