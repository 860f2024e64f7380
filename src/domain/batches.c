/* Batches: create, list, read, submit, cancel (doc/openapi.yaml#Lifecycle, #paths). */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/makers.h"
#include "domain/repr.h"
#include "valid.h"

static const char SQL_BATCH_INSERT[] =
	"INSERT INTO batches (org_id, name, description, created_by) VALUES (?, ?, ?, ?)";
static const char SQL_BATCH_REQUESTS_LOCK[] =
	"SELECT id, status, amount, currency, beneficiary_name, beneficiary_account, purpose"
	" FROM payment_requests WHERE batch_id = ? ORDER BY id FOR UPDATE";
enum { BR_ID, BR_STATUS, BR_AMOUNT, BR_CURRENCY, BR_NAME, BR_ACCOUNT, BR_PURPOSE };
static const char SQL_RULES_FOR_SUBMIT[] =
	"SELECT currency, min_amount, approvals FROM approval_rules WHERE org_id = ? LOCK IN SHARE MODE";
enum { RS_CURRENCY, RS_MIN, RS_APPROVALS };
static const char SQL_REQUEST_SUBMIT[] =
	"UPDATE payment_requests SET status = 'PENDING_APPROVAL', required_approvals = ?,"
	" snapshot = ?, version = version + 1, updated_at = NOW(3) WHERE id = ?";
static const char SQL_BATCH_SUBMIT[] =
	"UPDATE batches SET status = 'SUBMITTED', submitted_by = ?, submitted_at = NOW(3),"
	" updated_at = NOW(3), version = version + 1 WHERE id = ?";
static const char SQL_REQUESTS_CANCEL[] =
	"UPDATE payment_requests SET status = 'CANCELLED', version = version + 1,"
	" updated_at = NOW(3) WHERE batch_id = ? AND status IN ('DRAFT', 'PENDING_APPROVAL')";
static const char SQL_BATCH_CANCEL[] =
	"UPDATE batches SET status = 'CANCELLED', updated_at = NOW(3), version = version + 1"
	" WHERE id = ?";

static const char *const no_params[] = { NULL };

int h_batches_create(struct ctx *c)
{
	static const char *const known[] = { "name", "description", NULL };
	const char *name = NULL, *description = "";
	q_parse(c, no_params);
	v_text(c, "name", true, 1, 140, &name);
	v_text(c, "description", false, 0, 1000, &description);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if (db_exec(c->db, SQL_BATCH_INSERT, "issi", c->me.org_id, name, description,
			c->me.user_id) < 0)
		return STEP_DB_ERROR;
	long long id = db_insert_id(c->db);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "name", name);
	jw_str(g, "description", description);
	jw_close(g);
	audit_add(c, "batch.created", "batch", id, jw_finish(c->a, g));
	return reply_batch(c, 201, id);
}

int h_batches_list(struct ctx *c)
{
	static const char *const allowed[] = { "status", "limit", "cursor", NULL };
	struct page p;
	const char *status;
	int rc = page_begin_or_reply(c, allowed, batch_statuses, &status, &p);
	if (rc != STEP_GO_ON)
		return rc;
	return reply_batch_page(c, status, &p);
}

int h_batches_get(struct ctx *c)
{
	long long id = param_id(c, 0);
	if (!id)
		return reply_not_found(c);
	q_parse(c, no_params);   /* reported by reply_batch unless the batch is not found */
	return reply_batch(c, 200, id);
}

/* The start of submit and cancel: 404, 412, then a body and query that must be empty. */
static int lock_for_action_or_reply(struct ctx *c, struct batch_row *b)
{
	long long id = param_id(c, 0);
	int rc;
	if (!id)
		return reply_not_found(c);
	if ((rc = batch_lock_or_reply(c, id, b)) || (rc = check_if_match_or_reply(c, b->version)))
		return rc;
	q_parse(c, no_params);
	v_no_unknown(c, no_params);
	return c->ndetails ? reply_validation(c) : STEP_GO_ON;
}

/* The highest `approvals` among the rules for this currency whose minimum the amount
 * reaches; 1 when none applies. */
static int required_approvals(const struct dbres *rules, const char *currency, long long amount)
{
	long long need = 1;
	for (size_t i = 0; i < rules->nrows; i++)
		if (strcmp(db_s(rules, i, RS_CURRENCY), currency) == 0 &&
		    amount >= db_i(rules, i, RS_MIN) && db_i(rules, i, RS_APPROVALS) > need)
			need = db_i(rules, i, RS_APPROVALS);
	return (int)need;
}

int h_batches_submit(struct ctx *c)
{
	struct batch_row b;
	struct dbres reqs, rules;
	int rc;
	if ((rc = lock_for_action_or_reply(c, &b)))
		return rc;
	if ((rc = batch_check_or_reply(c, BA_SUBMIT, b.status)))
		return rc;
	if (db_query(c->db, c->a, &reqs, SQL_BATCH_REQUESTS_LOCK, "i", b.id) < 0)
		return STEP_DB_ERROR;
	if (reqs.nrows == 0) {
		c->ndetails = 0;
		detail_str(c, "status", batch_statuses[b.status]);
		return reply_error(c, 409, "INVALID_STATE", "an empty batch cannot be submitted");
	}
	/* Read after the batch lock, with a locking read (the snapshot predates the lock,
	 * lock.h): the rules in force when the batch is frozen. */
	if (db_query(c->db, c->a, &rules, SQL_RULES_FOR_SUBMIT, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "batch.submitted", "batch", b.id,
		arena_printf(c->a, "{\"status\":\"SUBMITTED\",\"requests\":%zu}", reqs.nrows));
	for (size_t i = 0; i < reqs.nrows; i++) {
		long long id = db_i(&reqs, i, BR_ID), amount = db_i(&reqs, i, BR_AMOUNT);
		const char *currency = db_s(&reqs, i, BR_CURRENCY);
		int minor = currency_minor(c, currency);
		if (minor < 0)
			return STEP_DB_ERROR;
		int need = required_approvals(&rules, currency, amount);
		const char *snapshot = request_snapshot(c->a, amount, minor, currency,
			db_s(&reqs, i, BR_NAME), db_s(&reqs, i, BR_ACCOUNT), db_s(&reqs, i, BR_PURPOSE),
			need);
		if (db_exec(c->db, SQL_REQUEST_SUBMIT, "isi", (long long)need, snapshot, id) < 0)
			return STEP_DB_ERROR;
		audit_add(c, "request.submitted", "request", id, arena_printf(c->a,
			"{\"status\":\"PENDING_APPROVAL\",\"requiredApprovals\":%d,\"snapshot\":%s}",
			need, snapshot));
	}
	if (db_exec(c->db, SQL_BATCH_SUBMIT, "ii", c->me.user_id, b.id) < 0)
		return STEP_DB_ERROR;
	if ((rc = makers_add_batch(c, b.id)))
		return rc;
	return reply_batch(c, 200, b.id);
}

int h_batches_cancel(struct ctx *c)
{
	struct batch_row b;
	struct dbres reqs;
	int rc;
	if ((rc = lock_for_action_or_reply(c, &b)))
		return rc;
	if ((rc = batch_check_or_reply(c, BA_CANCEL, b.status)))
		return rc;
	if (db_query(c->db, c->a, &reqs, SQL_BATCH_REQUESTS_LOCK, "i", b.id) < 0)
		return STEP_DB_ERROR;
	size_t changed = 0;
	for (size_t i = 0; i < reqs.nrows; i++) {
		enum cancel_effect e = request_on_cancel(request_status_of(db_s(&reqs, i, BR_STATUS)));
		if (e == CANCEL_REFUSED) {
			c->ndetails = 0;
			detail_str(c, "status", batch_statuses[b.status]);
			return reply_error(c, 409, "INVALID_STATE",
				"a batch with an APPROVED or PAID request cannot be cancelled");
		}
		changed += e == CANCEL_CANCELS;
	}
	if (db_exec(c->db, SQL_REQUESTS_CANCEL, "i", b.id) < 0 ||
	    db_exec(c->db, SQL_BATCH_CANCEL, "i", b.id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "batch.cancelled", "batch", b.id, arena_printf(c->a,
		"{\"from\":\"%s\",\"status\":\"CANCELLED\",\"requests\":%zu}", batch_statuses[b.status],
		changed));
	for (size_t i = 0; i < reqs.nrows; i++) {
		const char *s = db_s(&reqs, i, BR_STATUS);
		if (request_on_cancel(request_status_of(s)) == CANCEL_CANCELS)
			audit_add(c, "request.cancelled", "request", db_i(&reqs, i, BR_ID), arena_printf(c->a,
				"{\"from\":\"%s\",\"status\":\"CANCELLED\"}", s));
	}
	return reply_batch(c, 200, b.id);
}
