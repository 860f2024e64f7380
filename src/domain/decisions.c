/* Decisions on submitted requests: approve, reject, mark paid, and the approvals list
 * (doc/openapi.yaml#Lifecycle, #paths). Each may complete the request's batch. */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/makers.h"
#include "domain/repr.h"
#include "page.h"
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
/* The live file a request is in (API §9), read with a shared lock: a file's items change
 * under their file's lock, which this transaction does not hold. */
static const char SQL_REQUEST_FILED[] =
	"SELECT file_id FROM payment_file_items WHERE live_request_id = ? AND status = 'INCLUDED'"
	" LOCK IN SHARE MODE";
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

/* 409 IN_PAYMENT_FILE when the request is INCLUDED in a live payment file: that file pays
 * it (confirm, or the bank's report), never a hand-made payment too. */
static int refuse_filed(struct ctx *c, long long id)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_REQUEST_FILED, "i", id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return STEP_GO_ON;
	c->ndetails = 0;
	detail_str(c, "reason", "IN_PAYMENT_FILE");
	detail_str(c, "paymentFileId", db_s(&r, 0, 0));
	return reply_error(c, 409, "INVALID_STATE",
		"the request is in a payment file: confirm or void the file instead");
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
	if ((rc = request_check(c, RA_DECIDE, q.status)))
		return rc;
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
	enum request_status to = !approve ? RS_REJECTED
		: count >= q.required_approvals ? RS_APPROVED : RS_PENDING_APPROVAL;
	const char *status = request_statuses[to];
	if (db_exec(c->db, SQL_REQUEST_DECIDE, "sii", status, count, q.id) < 0)
		return HANDLER_DB_ERROR;
	if (to == RS_APPROVED && (rc = ledger_add(c, &q, "OBLIGATION")))
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
	if ((rc = request_check(c, RA_PAY, q.status)) || (rc = refuse_filed(c, q.id)))
		return rc;
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
	jw_str(g, "status", request_statuses[RS_PAID]);
	jw_close(g);
	audit_add(c, "request.paid", "request", q.id, jw_finish(c->a, g));
	if ((rc = batch_touch(c, b.id, true)))
		return rc;
	return reply_request(c, 200, q.id, true);
}

static size_t decision_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	static const struct column cols[] = { { "id", 'i', 0 }, { "approverId", 'i', 1 },
		{ "decision", 's', 2 }, { "comment", 's', 3 }, { "createdAt", 't', 4 }, { NULL } };
	write_columns(g, r, i, cols);
	return i + 1;
}

int h_approvals_list(struct ctx *c)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	long long id;
	struct dbres r;
	struct page p;
	int rc;
	if ((rc = find_param(c, &r, SQL_REQUEST_EXISTS, &id)) != STEP_GO_ON ||
	    (rc = page_begin(c, allowed, NULL, NULL, &p)) != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, SQL_DECISIONS, "iiii", id, c->me.org_id, p.before,
			p.fetch) < 0)
		return HANDLER_DB_ERROR;
	return page_reply(c, &p, &r, decision_item);
}
