/* Decisions on submitted requests: approve, reject, mark paid, and the approvals list
 * (doc/openapi.yaml#Lifecycle, #paths). Each may complete the request's batch. */
#include <string.h>

#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/makers.h"
#include "domain/repr.h"
#include "valid.h"

#define COMMENT_MAX_CHARS 500
#define REFERENCE_MAX_CHARS 35

static const char SQL_DECISION_INSERT[] =
	"INSERT INTO decisions (org_id, request_id, approver_id, decision, comment)"
	" VALUES (?, ?, ?, ?, ?)";
static const char SQL_REQUEST_DECIDE[] =
	"UPDATE payment_requests SET status = ?, approval_count = ?, version = version + 1,"
	" updated_at = NOW(3) WHERE id = ?";
static const char SQL_REQUEST_PAY[] =
	"UPDATE payment_requests SET status = 'PAID', paid_at = NOW(3), paid_by = ?,"
	" payment_reference = ?, version = version + 1, updated_at = NOW(3) WHERE id = ?";
static const char SQL_LEDGER_INSERT[] =
	"INSERT INTO ledger_entries (org_id, request_id, batch_id, type, amount, currency)"
	" VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_REQUEST_EXISTS[] =
	"SELECT id FROM payment_requests WHERE id = ? AND org_id = ?";
static const char SQL_DECISIONS[] =
	"SELECT id, approver_id, decision, comment, created_at FROM decisions"
	" WHERE request_id = ? AND org_id = ? AND id < ? ORDER BY id DESC LIMIT ?";

static const char *const no_params[] = { NULL };

/* 404, then 412 against the request's version. */
static int lock_request(struct ctx *c, struct batch_row *b, struct request_row *q)
{
	long long id = param_id(c, 0);
	int rc;
	if (!id)
		return reply_not_found(c);
	if ((rc = request_lock(c, id, b, q)))
		return rc;
	return check_if_match(c, q->version);
}

static int ledger_add(struct ctx *c, const struct request_row *q, const char *type)
{
	return db_exec(c->db, SQL_LEDGER_INSERT, "iiisis", c->me.org_id, q->id, q->batch_id, type,
		q->amount, q->currency) < 0 ? HANDLER_DB_ERROR : 0;
}

/* 403 SELF_APPROVAL_FORBIDDEN (SELF_PAYMENT_FORBIDDEN with `pay`) when the caller is a
 * maker of request `id` (makers.h), naming what made them one; else 0. */
static int refuse_maker(struct ctx *c, long long id, bool pay)
{
	int made = maker_of(c, id);
	if (made < 0)
		return HANDLER_DB_ERROR;
	if (!made)
		return 0;
	const char *why = made & MADE_CREATED ? "you created"
		: made & MADE_CHANGED ? "you changed" : "whose batch you submitted";
	return reply_error(c, 403, pay ? "SELF_PAYMENT_FORBIDDEN" : "SELF_APPROVAL_FORBIDDEN",
		arena_printf(c->a, pay ? "you may not mark a request %s as paid"
			: "you may not decide on a request %s", why));
}

/* Approve or reject: validation, then the state, then separation of duties, then one
 * decision per approver (the UNIQUE key decisions_once is the arbiter). */
static int decide(struct ctx *c, bool approve)
{
	static const char *const known[] = { "comment", NULL };
	struct batch_row b;
	struct request_row q;
	int rc;
	if ((rc = lock_request(c, &b, &q)))
		return rc;
	const char *comment = NULL;
	q_parse(c, no_params);
	v_text(c, "comment", !approve, approve ? 0 : 1, COMMENT_MAX_CHARS, &comment);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if (strcmp(q.status, "PENDING_APPROVAL") != 0)
		return reply_invalid_state(c, q.status);
	if ((rc = refuse_maker(c, q.id, false)))
		return rc;

	const char *decision = approve ? "APPROVED" : "REJECTED";
	if (db_exec(c->db, SQL_DECISION_INSERT, "iiiss", c->me.org_id, q.id, c->me.user_id,
			decision, comment) < 0) {
		if (db_errno(c->db) != DB_DUP_ENTRY)
			return HANDLER_DB_ERROR;
		return reply_error(c, 409, "ALREADY_DECIDED", "you have already decided on this request");
	}
	long long count = q.approval_count + approve;
	const char *status = !approve ? "REJECTED"
		: count >= q.required_approvals ? "APPROVED" : "PENDING_APPROVAL";
	if (db_exec(c->db, SQL_REQUEST_DECIDE, "sii", status, count, q.id) < 0)
		return HANDLER_DB_ERROR;
	if (strcmp(status, "APPROVED") == 0 && (rc = ledger_add(c, &q, "OBLIGATION")))
		return rc;

	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "decision", decision);
	jw_str(g, "comment", comment);
	jw_int(g, "approvalCount", count);
	jw_int(g, "requiredApprovals", q.required_approvals);
	jw_str(g, "status", status);
	jw_close(g);
	audit_add(c, approve ? "request.approved" : "request.rejected", "request", q.id,
		jw_finish(c->a, g));
	if ((rc = batch_touch(c, b.id, !approve)))
		return rc;
	return reply_request(c, 200, q.id, true);
}

int h_requests_approve(struct ctx *c) { return decide(c, true); }
int h_requests_reject(struct ctx *c) { return decide(c, false); }

int h_requests_mark_paid(struct ctx *c)
{
	static const char *const known[] = { "paymentReference", NULL };
	struct batch_row b;
	struct request_row q;
	int rc;
	if ((rc = lock_request(c, &b, &q)))
		return rc;
	const char *reference = NULL;
	q_parse(c, no_params);
	v_text(c, "paymentReference", false, 0, REFERENCE_MAX_CHARS, &reference);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if (strcmp(q.status, "APPROVED") != 0)
		return reply_invalid_state(c, q.status);
	/* Only makers are barred: a treasurer who approved the request may pay it. */
	if ((rc = refuse_maker(c, q.id, true)))
		return rc;

	if (db_exec(c->db, SQL_REQUEST_PAY, "isi", c->me.user_id, reference, q.id) < 0)
		return HANDLER_DB_ERROR;
	if ((rc = ledger_add(c, &q, "SETTLEMENT")))
		return rc;
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "paymentReference", reference);
	jw_str(g, "status", "PAID");
	jw_close(g);
	audit_add(c, "request.paid", "request", q.id, jw_finish(c->a, g));
	if ((rc = batch_touch(c, b.id, true)))
		return rc;
	return reply_request(c, 200, q.id, true);
}

int h_approvals_list(struct ctx *c)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	long long id = param_id(c, 0);
	struct dbres r;
	if (!id)
		return reply_not_found(c);
	if (db_query(c->db, c->a, &r, SQL_REQUEST_EXISTS, "ii", id, c->me.org_id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	int limit;
	long long cursor;
	q_parse(c, allowed);
	q_page(c, &limit, &cursor);
	if (c->ndetails)
		return reply_validation(c);
	if (db_query(c->db, c->a, &r, SQL_DECISIONS, "iiii", id, c->me.org_id,
			cursor ? cursor : INT64_MAX, (long long)limit + 1) < 0)
		return HANDLER_DB_ERROR;
	yajl_gen g = reply_list(c);
	size_t n = page_len(&r, limit);
	for (size_t i = 0; i < n; i++) {
		jw_open(g, NULL);
		jw_id(g, "id", db_i(&r, i, 0));
		jw_id(g, "approverId", db_i(&r, i, 1));
		jw_str(g, "decision", db_s(&r, i, 2));
		jw_str(g, "comment", db_s(&r, i, 3));
		jw_time(g, "createdAt", db_s(&r, i, 4));
		jw_close(g);
	}
	return reply_list_done(c, page_next(&r, n));
}
