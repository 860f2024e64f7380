/* Locking a batch and its requests for a mutation (see lock.h for the order). */
#include "domain/lock.h"
#include "audit.h"

static const char SQL_BATCH_FIND[] = "SELECT id FROM batches WHERE id = ? AND org_id = ?";
static const char SQL_BATCH_LOCK[] =
	"SELECT id, status, version, created_by, submitted_by, request_count FROM batches"
	" WHERE id = ? FOR UPDATE";
enum { BL_ID, BL_STATUS, BL_VERSION, BL_CREATED_BY, BL_SUBMITTED_BY, BL_REQUESTS };
static const char SQL_REQUEST_BATCH[] =
	"SELECT batch_id FROM payment_requests WHERE id = ? AND org_id = ?";
enum { RB_BATCH };
static const char SQL_REQUEST_LOCK[] =
	"SELECT id, batch_id, status, version, amount, currency, beneficiary_name,"
	" beneficiary_account, purpose, created_by, required_approvals, approval_count"
	" FROM payment_requests WHERE id = ? AND batch_id = ? FOR UPDATE";
enum { RL_ID, RL_BATCH, RL_STATUS, RL_VERSION, RL_AMOUNT, RL_CURRENCY, RL_NAME, RL_ACCOUNT,
	RL_PURPOSE, RL_CREATED_BY, RL_REQUIRED, RL_APPROVALS };
static const char SQL_BATCH_OPEN[] =
	"SELECT COUNT(*) FROM payment_requests"
	" WHERE batch_id = ? AND status NOT IN ('REJECTED', 'PAID', 'CANCELLED') LOCK IN SHARE MODE";
enum { BO_OPEN };
static const char SQL_BATCH_BUMP[] =
	"UPDATE batches SET version = version + 1, updated_at = NOW(3) WHERE id = ?";
static const char SQL_BATCH_COMPLETE[] =
	"UPDATE batches SET status = 'COMPLETED', version = version + 1, updated_at = NOW(3)"
	" WHERE id = ? AND status = 'SUBMITTED'";

int find_own_or_reply(struct ctx *c, struct dbres *r, const char *sql, long long id)
{
	if (db_query(c->db, c->a, r, sql, "ii", id, c->me.org_id) < 0)
		return STEP_DB_ERROR;
	return r->nrows ? STEP_GO_ON : reply_not_found(c);
}

int find_param_or_reply(struct ctx *c, struct dbres *r, const char *sql, long long *id)
{
	*id = param_id(c, 0);
	return *id ? find_own_or_reply(c, r, sql, *id) : reply_not_found(c);
}

int batch_find_or_reply(struct ctx *c, long long id)
{
	struct dbres r;
	return find_own_or_reply(c, &r, SQL_BATCH_FIND, id);
}

/* Locks batch `id`, known to be the caller's organisation's: a batch never changes
 * organisation and is never deleted. */
static int lock_own_batch_or_reply(struct ctx *c, long long id, struct batch_row *b)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_BATCH_LOCK, "i", id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	*b = (struct batch_row){
		.id = db_i(&r, 0, BL_ID),
		.status = batch_status_of(db_s(&r, 0, BL_STATUS)),
		.version = db_i(&r, 0, BL_VERSION),
		.created_by = db_i(&r, 0, BL_CREATED_BY),
		.submitted_by = db_i(&r, 0, BL_SUBMITTED_BY),
		.requests = db_i(&r, 0, BL_REQUESTS),
	};
	return STEP_GO_ON;
}

int batch_lock_or_reply(struct ctx *c, long long id, struct batch_row *b)
{
	int rc = batch_find_or_reply(c, id);
	return rc ? rc : lock_own_batch_or_reply(c, id, b);
}

int request_lock_or_reply(struct ctx *c, long long id, struct batch_row *b, struct request_row *q)
{
	struct dbres r;
	int rc;
	/* A request's batch is of the request's organisation: found, it needs no find of its own. */
	if ((rc = find_own_or_reply(c, &r, SQL_REQUEST_BATCH, id)) != STEP_GO_ON ||
	    (rc = lock_own_batch_or_reply(c, db_i(&r, 0, RB_BATCH), b)) != STEP_GO_ON)
		return rc;
	/* A request's batch never changes; a DELETE committed while we waited leaves no row. */
	if (db_query(c->db, c->a, &r, SQL_REQUEST_LOCK, "ii", id, b->id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	*q = (struct request_row){
		.id = db_i(&r, 0, RL_ID),
		.batch_id = db_i(&r, 0, RL_BATCH),
		.status = request_status_of(db_s(&r, 0, RL_STATUS)),
		.version = db_i(&r, 0, RL_VERSION),
		.amount = db_i(&r, 0, RL_AMOUNT),
		.currency = db_s(&r, 0, RL_CURRENCY),
		.name = db_s(&r, 0, RL_NAME),
		.account = db_s(&r, 0, RL_ACCOUNT),
		.purpose = db_s(&r, 0, RL_PURPOSE),
		.created_by = db_i(&r, 0, RL_CREATED_BY),
		.required_approvals = db_i(&r, 0, RL_REQUIRED),
		.approval_count = db_i(&r, 0, RL_APPROVALS),
	};
	return STEP_GO_ON;
}

int batch_touch(struct ctx *c, long long batch_id, bool settle)
{
	bool complete = false;
	if (settle) {
		/* A locking read: the caller's snapshot may predate its locks
		 * (request_lock_or_reply). */
		struct dbres r;
		if (db_query(c->db, c->a, &r, SQL_BATCH_OPEN, "i", batch_id) < 0)
			return STEP_DB_ERROR;
		complete = db_i(&r, 0, BO_OPEN) == 0;
	}
	if (db_exec(c->db, complete ? SQL_BATCH_COMPLETE : SQL_BATCH_BUMP, "i", batch_id) < 0)
		return STEP_DB_ERROR;
	if (complete && db_affected(c->db) == 1)
		audit_add(c, "batch.completed", "batch", batch_id,
			"{\"from\":\"SUBMITTED\",\"status\":\"COMPLETED\"}");
	return STEP_GO_ON;
}
