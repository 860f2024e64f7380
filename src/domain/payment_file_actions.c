/* What happens to a payment file after it is made (API §9): confirm (the bank paid all of
 * it), void (it was never sent), and its two downloads, served as stored. */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/payfile.h"
#include "valid.h"

#define VOID_REASON_MAX 500

static const char SQL_FILE_FIND[] = "SELECT id FROM payment_files WHERE id = ? AND org_id = ?";
static const char SQL_FILE_LOCK[] =
	"SELECT status, version, reports_applied FROM payment_files WHERE id = ? FOR UPDATE";
enum { FL_STATUS, FL_VERSION, FL_REPORTS };
/* A file's items change only under its row's lock, which the caller holds; shared locks
 * read them as committed whatever the transaction's snapshot. */
static const char SQL_INCLUDED[] =
	"SELECT request_id, batch_id FROM payment_file_items WHERE file_id = ?"
	" AND status = 'INCLUDED' ORDER BY position LOCK IN SHARE MODE";
enum { IN_REQUEST, IN_BATCH };
static const char SQL_ITEMS_PAY[] =
	"UPDATE payment_file_items SET status = 'PAID', final_at = NOW(3)"
	" WHERE file_id = ? AND status = 'INCLUDED'";
static const char SQL_FILE_SETTLE[] =
	"UPDATE payment_files SET status = 'SETTLED', settled_at = NOW(3), version = version + 1"
	" WHERE id = ?";
static const char SQL_ITEMS_VOID[] =
	"UPDATE payment_file_items SET status = 'VOIDED', live_request_id = NULL, final_at = NOW(3)"
	" WHERE file_id = ? AND status = 'INCLUDED'";
/* A join, not `id IN (SELECT … JSON_TABLE)`: MariaDB runs that subquery once per row of
 * the table (no semi-join for an UPDATE), which made a 2,000-item file take seconds. */
static const char SQL_REQUESTS_BUMP[] =
	"UPDATE " IDS_TABLE " JOIN payment_requests r ON r.id = j.id"
	" SET r.version = r.version + 1, r.updated_at = NOW(3)";
static const char SQL_FILE_VOID[] =
	"UPDATE payment_files SET status = 'VOIDED', voided_by = ?, voided_at = NOW(3),"
	" void_reason = ?, version = version + 1 WHERE id = ?";
static const char SQL_PAIN[] =
	"SELECT message_id, pain_001 FROM payment_files WHERE id = ? AND org_id = ?";
static const char SQL_CSV[] =
	"SELECT message_id, csv FROM payment_files WHERE id = ? AND org_id = ?";
enum { DOC_MESSAGE, DOC_BYTES };   /* of SQL_PAIN and SQL_CSV */

static const char *const no_params[] = { NULL };

/* A file being confirmed or voided, locked, with its INCLUDED items' requests. */
struct locked_file {
	long long id, version, reports;
	const char *status;
	size_t n, nbatches;
	long long *requests, *batches;
	const char *ids_text;
};

/* 404, the file's lock, 412. */
static int lock_file_or_reply(struct ctx *c, struct locked_file *f)
{
	struct dbres r;
	int rc;
	if ((rc = find_param_or_reply(c, &r, SQL_FILE_FIND, &f->id)) != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, SQL_FILE_LOCK, "i", f->id) < 0 || r.nrows != 1)
		return STEP_DB_ERROR;
	f->status = db_s(&r, 0, FL_STATUS);
	f->version = db_i(&r, 0, FL_VERSION);
	f->reports = db_i(&r, 0, FL_REPORTS);
	return check_if_match_or_reply(c, f->version);
}

/* The INCLUDED items' batches, then their requests, locked in the lock order (lock.h). */
static int lock_items(struct ctx *c, struct locked_file *f)
{
	struct dbres r, locked;
	if (db_query(c->db, c->a, &r, SQL_INCLUDED, "i", f->id) < 0)
		return STEP_DB_ERROR;
	f->n = r.nrows;
	f->requests = arena_alloc(c->a, (f->n + 1) * sizeof *f->requests);
	f->batches = arena_alloc(c->a, (f->n + 1) * sizeof *f->batches);
	for (size_t i = 0; i < f->n; i++) {
		f->requests[i] = db_i(&r, i, IN_REQUEST);
		f->batches[i] = db_i(&r, i, IN_BATCH);
	}
	f->ids_text = ids_json(c->a, f->requests, f->n);
	f->nbatches = f->n;
	if (f->n == 0)
		return STEP_GO_ON;
	return payfile_lock(c, f->batches, &f->nbatches, f->requests, &f->n, &locked);
}

static int makers_or_reply(struct ctx *c, const struct locked_file *f)
{
	return payfile_makers_or_reply(c, f->ids_text,
		"you may not pay a request you created, changed or whose batch you submitted");
}

/* Each paid request's audit event, and its batch touched (maybe COMPLETED). */
static int paid_events(struct ctx *c, const struct locked_file *f)
{
	int rc;
	for (size_t i = 0; i < f->n; i++)
		audit_add(c, "request.paid", "request", f->requests[i],
			arena_printf(c->a, "{\"paymentFileId\":\"%lld\",\"status\":\"PAID\"}", f->id));
	for (size_t i = 0; i < f->nbatches; i++)
		if ((rc = batch_touch(c, f->batches[i], true)))
			return rc;
	return STEP_GO_ON;
}

int h_payment_files_confirm(struct ctx *c)
{
	struct locked_file f = { 0 };
	int rc;
	if ((rc = lock_file_or_reply(c, &f)))
		return rc;
	q_parse(c, no_params);
	v_no_unknown(c, no_params);
	if (c->ndetails)
		return reply_validation(c);
	if (strcmp(f.status, "CREATED") != 0)
		return reply_invalid_state(c, f.status);
	if ((rc = lock_items(c, &f)) || (rc = makers_or_reply(c, &f)))
		return rc;
	if (db_exec(c->db, SQL_ITEMS_PAY, "i", f.id) < 0 ||
	    payfile_pay_requests(c, f.id, f.ids_text) < 0 ||
	    db_exec(c->db, SQL_FILE_SETTLE, "i", f.id) < 0)
		return STEP_DB_ERROR;
	if ((rc = paid_events(c, &f)))
		return rc;
	audit_add(c, "payment_file.settled", "payment_file", f.id,
		arena_printf(c->a, "{\"count\":%zu,\"status\":\"SETTLED\"}", f.n));
	return reply_payment_file(c, 200, f.id);
}

int h_payment_files_void(struct ctx *c)
{
	static const char *const known[] = { "reason", NULL };
	struct locked_file f = { 0 };
	const char *reason = NULL;
	int rc;
	if ((rc = lock_file_or_reply(c, &f)))
		return rc;
	q_parse(c, no_params);
	v_text(c, "reason", true, 1, VOID_REASON_MAX, &reason);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if (f.reports > 0) {
		detail_str(c, "reason", "REPORT_APPLIED");
		detail_str(c, "status", f.status);
		return reply_error(c, 409, "INVALID_STATE",
			"the bank has answered for this file: it was sent");
	}
	if (strcmp(f.status, "CREATED") != 0)
		return reply_invalid_state(c, f.status);
	if ((rc = lock_items(c, &f)))
		return rc;
	if (db_exec(c->db, SQL_ITEMS_VOID, "i", f.id) < 0 ||
	    db_exec(c->db, SQL_REQUESTS_BUMP, "s", f.ids_text) < 0 ||
	    db_exec(c->db, SQL_FILE_VOID, "isi", c->me.user_id, reason, f.id) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "reason", reason);
	jw_str(g, "status", "VOIDED");
	jw_close(g);
	audit_add(c, "payment_file.voided", "payment_file", f.id, jw_finish(c->a, g));
	return reply_payment_file(c, 200, f.id);
}

/* A download, exactly the bytes stored when the file was made. */
static int download_reply(struct ctx *c, const char *sql, const char *type, const char *ext)
{
	struct dbres r;
	long long id;
	int rc;
	if ((rc = find_param_or_reply(c, &r, sql, &id)) != STEP_GO_ON)
		return rc;
	q_parse(c, no_params);
	if (c->ndetails)
		return reply_validation(c);
	if (!db_s(&r, 0, DOC_BYTES)) {
		detail_str(c, "reason", "NOT_SEPA");
		return reply_error(c, 409, "INVALID_STATE", "a pain.001 is made only for EUR files"
			" of IBANs with every amount at most 999,999,999.99");
	}
	c->rs.status = 200;
	c->rs.body = db_s(&r, 0, DOC_BYTES);
	c->rs.body_len = db_len(&r, 0, DOC_BYTES);
	c->rs.content_type = type;
	c->rs.attachment = arena_printf(c->a, "%s.%s", db_s(&r, 0, DOC_MESSAGE), ext);
	return 200;
}

int h_payment_files_pain001(struct ctx *c)
{
	return download_reply(c, SQL_PAIN, "application/xml; charset=utf-8", "xml");
}

int h_payment_files_csv(struct ctx *c)
{
	return download_reply(c, SQL_CSV, "text/csv; charset=utf-8", "csv");
}

/* The requests of file `file` whose items are now PAID become PAID as at confirm (the caller
 * as paidBy, the item's endToEndId as paymentReference), each with its SETTLEMENT entry;
 * `ids` is the JSON array of those requests' ids. Confirm and the bank's report share it. */
static const char SQL_REQUESTS_PAY[] =
	"UPDATE payment_requests r JOIN payment_file_items i ON i.live_request_id = r.id"
	" SET r.status = 'PAID', r.paid_at = NOW(3), r.paid_by = ?,"
	" r.payment_reference = i.end_to_end_id, r.version = r.version + 1, r.updated_at = NOW(3)"
	" WHERE i.file_id = ? AND i.status = 'PAID' AND r.status = 'APPROVED'";
static const char SQL_SETTLEMENTS[] =
	"INSERT INTO ledger_entries (org_id, request_id, batch_id, type, amount, currency)"
	" SELECT ?, i.request_id, i.batch_id, 'SETTLEMENT', i.amount, i.currency FROM " IDS_TABLE
	" JOIN payment_file_items i ON i.live_request_id = j.id";

int payfile_pay_requests(struct ctx *c, long long file, const char *ids)
{
	if (db_exec(c->db, SQL_REQUESTS_PAY, "ii", c->me.user_id, file) < 0 ||
	    db_exec(c->db, SQL_SETTLEMENTS, "is", c->me.org_id, ids) < 0)
		return -1;
	return 0;
}
