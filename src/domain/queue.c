/* The organisation's requests across batches, and the work queues of the frontend
 * (API §5, v1.1: GET /api/v1/requests with ?status=, ?batchId= and ?actionableBy=me). */
#include <string.h>

#include "domain/handlers.h"
#include "domain/repr.h"
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
 * what approve, reject and mark-paid check too. */
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

int h_requests_queue(struct ctx *c)
{
	static const char *const allowed[] = { "status", "batchId", "actionableBy", "limit",
		"cursor", NULL };
	struct page p;
	const char *status;
	page_parse(c, allowed, request_statuses, &status, &p);
	bool actionable = q_actionable(c);
	if (c->ndetails)
		return reply_validation(c);
	/* A batchId that is no batch of this organisation matches nothing, like any other id. */
	long long batch = q_id(c, "batchId");
	if (batch < 0)
		return page_empty(c);
	long long me = c->me.user_id;
	long long approver = (c->me.roles & ROLE_APPROVER) != 0;
	long long treasurer = (c->me.roles & ROLE_TREASURER) != 0;
	long long act = actionable;
	struct dbres r;
	int rc = status
		? db_query(c->db, c->a, &r, SQL_QUEUE_STATUS, "isiiiiiiiii", c->me.org_id, status,
			p.before, batch, batch, act, approver, me, treasurer, me, p.fetch)
		: db_query(c->db, c->a, &r, SQL_QUEUE, "iiiiiiiiii", c->me.org_id,
			p.before, batch, batch, act, approver, me, treasurer, me, p.fetch);
	if (rc < 0)
		return HANDLER_DB_ERROR;
	return page_reply(c, &p, &r, request_item);
}
