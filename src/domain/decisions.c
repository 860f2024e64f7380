/* Decisions on submitted requests: approve, reject, mark paid, and the approvals list
 * (doc/openapi.yaml#Lifecycle, #paths). Each may complete the request's batch. */
#include <stdlib.h>
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

/* POST /api/v1/decisions (API §11): up to DECISIONS_MAX approvals and rejections in one
 * transaction, each answered exactly as its own approve or reject call would be. */
#define DECISIONS_MAX 200

struct item {
	const char *request_id;   /* as sent: the item's answer echoes it */
	bool approve;
	struct jv *body;          /* what its own call's body would be: {"comment"} or {} */
	int status;               /* its answer */
	struct jv *answer;        /* its envelope's value ("data" or "error") */
};

/* One element of `decisions`: its shape, with problems named decisions[i].field. */
static void item_valid(struct ctx *c, struct jv *e, size_t i, struct item *it)
{
	static const char *const known[] = { "requestId", "decision", "comment", NULL };
	const char *decision = NULL, *comment = NULL;
	int from = c->ndetails;
	struct jv *body = c->body;
	c->body = e;
	v_text(c, "requestId", true, 1, 64, &it->request_id);
	if (v_text(c, "decision", true, 1, 16, &decision) == V_OK &&
	    strcmp(decision, "APPROVED") != 0 && strcmp(decision, "REJECTED") != 0)
		detail_str(c, "decision", "must be APPROVED or REJECTED");
	it->approve = decision && strcmp(decision, "APPROVED") == 0;
	bool reject = decision && strcmp(decision, "REJECTED") == 0;   /* needs its comment */
	v_text(c, "comment", reject, reject ? 1 : 0, COMMENT_MAX_CHARS, &comment);
	v_no_unknown(c, known);
	c->body = body;
	for (int d = from; d < c->ndetails; d++)
		c->details[d].key = arena_printf(c->a, "decisions[%zu].%s", i, c->details[d].key);
	struct jv *v = json_get(e, "comment");
	it->body = arena_alloc(c->a, sizeof *it->body);
	*it->body = (struct jv){ .t = J_OBJ };
	if (v && v->t != J_NULL) {
		it->body->m = arena_alloc(c->a, sizeof *it->body->m);
		it->body->m[0] = (struct jmember){ "comment", 7, v };
		it->body->n = 1;
	}
}

/* The body's list: 1..DECISIONS_MAX objects, no requestId twice. NULL when it is bad. */
static struct item *items_valid(struct ctx *c, size_t *n)
{
	static const char *const known[] = { "decisions", NULL };
	const struct jv *v = json_get(c->body, "decisions");
	v_no_unknown(c, known);
	if (!v || v->t != J_ARR || v->n < 1 || v->n > DECISIONS_MAX) {
		detail_str(c, "decisions", arena_printf(c->a, "must be an array of 1 to %d decisions",
			DECISIONS_MAX));
		return NULL;
	}
	struct item *it = arena_alloc(c->a, v->n * sizeof *it);
	memset(it, 0, v->n * sizeof *it);
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i]->t != J_OBJ) {
			detail_str(c, arena_printf(c->a, "decisions[%zu]", i), "must be an object");
			continue;
		}
		item_valid(c, v->v[i], i, &it[i]);
		for (size_t j = 0; it[i].request_id && j < i; j++)
			if (it[j].request_id && strcmp(it[j].request_id, it[i].request_id) == 0)
				detail_str(c, arena_printf(c->a, "decisions[%zu].requestId", i),
					"repeats the requestId of an earlier decision");
	}
	*n = v->n;
	return c->ndetails ? NULL : it;
}

/* Runs one item as its own call, its reply written to `g` instead of the response, and
 * keeps its status and envelope's value. STEP_GO_ON, or HANDLER_DB_ERROR. */
static int run_item(struct ctx *c, yajl_gen g, struct item *it)
{
	yajl_gen outer = c->rs.gen;
	struct jv *body = c->body;   /* kept for a re-run of the whole transaction (tx.c) */
	const unsigned char *buf;
	size_t len;
	struct jv *doc;
	yajl_gen_reset(g, NULL);
	yajl_gen_clear(g);
	c->rs.gen = g;
	c->params[0] = it->request_id;
	c->body = it->body;
	c->ndetails = 0;
	it->status = decide(c, it->approve);
	c->rs.gen = outer;
	c->rs.etag = 0;
	c->body = body;
	c->params[0] = NULL;
	if (it->status == HANDLER_DB_ERROR)
		return HANDLER_DB_ERROR;
	yajl_gen_get_buf(g, &buf, &len);
	if (json_parse(c->a, (const char *)buf, len, &doc) < 0 || doc->t != J_OBJ || doc->n != 1) {
		db_set_error(c->db, DB_INTERNAL, "a decision's answer is no envelope");
		return HANDLER_DB_ERROR;
	}
	it->answer = doc->m[0].val;
	return STEP_GO_ON;
}

static int reply_results(struct ctx *c, const struct item *it, size_t n)
{
	yajl_gen g = reply_data(c, 200);
	jw_open(g, NULL);
	jw_array(g, "results");
	for (size_t i = 0; i < n; i++) {
		jw_open(g, NULL);
		jw_str(g, "requestId", it[i].request_id);
		jw_int(g, "status", it[i].status);
		jw_key(g, it[i].status < 300 ? "data" : "error");
		json_write(g, it[i].answer);
		jw_close(g);
	}
	jw_array_close(g);
	jw_close(g);
	return reply_done(c);
}

int h_decisions(struct ctx *c)
{
	size_t n = 0;
	int rc = STEP_GO_ON;
	q_parse(c, no_params);
	struct item *it = items_valid(c, &n);
	if (!it)
		return reply_validation(c);
	/* Each item's own call would carry no If-Match: one tag cannot match them all. */
	c->rq.if_match = NULL;
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	for (size_t i = 0; i < n && rc == STEP_GO_ON; i++)
		rc = run_item(c, g, &it[i]);
	yajl_gen_free(g);
	return rc == STEP_GO_ON ? reply_results(c, it, n) : rc;
}
