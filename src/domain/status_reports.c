/* The bank's answer (API §9): a pain.002 status report applied to a payment file exactly once
 * per GrpHdr/MsgId, and the reports kept. The report's bytes were read in headers.c (into
 * c->rq.report, 400 MALFORMED_XML before the Idempotency-Key); here, in §1's order: the
 * file's 404, the report's VALIDATION_ERROR, 409, 403, then the effects. Once per message is
 * the database's: payment_status_reports has UNIQUE (file_id, message_id) and a report is
 * applied under the file's row lock, so a second post of the same report, however
 * concurrent, waits for the first and then finds it. */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/payfile.h"
#include "page.h"
#include "pain002.h"
#include "text.h"
#include "valid.h"

#define REASON_MAX 4   /* ExternalStatusReason1Code */
#define PRTRY_MAX 35   /* Max35Text: Rsn/Prtry, kept as the reason code (reason_code is 35) */

/* A locking read is the 404 check too: the transaction's snapshot is then taken after the
 * lock, so a report found already applied answers the file as its applier left it. */
static const char SQL_FILE_LOCK[] =
	"SELECT status, version, reports_applied, message_id FROM payment_files"
	" WHERE id = ? AND org_id = ? FOR UPDATE";
enum { FL_STATUS, FL_VERSION, FL_REPORTS, FL_MESSAGE };
static const char SQL_ITEMS_LOCK[] =
	"SELECT id, request_id, batch_id, end_to_end_id, status, bank_status, reason_code"
	" FROM payment_file_items WHERE file_id = ? ORDER BY position FOR UPDATE";
enum { IT_ID, IT_REQUEST, IT_BATCH, IT_E2E, IT_STATUS, IT_BANK, IT_REASON };
static const char SQL_SEEN[] =
	"SELECT id FROM payment_status_reports WHERE file_id = ? AND message_id = ?"
	" LOCK IN SHARE MODE";
/* Each changed item's new values, computed here; rc absent is NULL (JSON_TABLE's default). */
static const char SQL_ITEMS_SET[] =
	"UPDATE payment_file_items i JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$.id',"
	" st VARCHAR(8) PATH '$.st', bs VARCHAR(4) PATH '$.bs', rc VARCHAR(35) PATH '$.rc',"
	" fin INT PATH '$.fin')) j ON i.id = j.id"
	" SET i.status = j.st, i.bank_status = j.bs, i.reason_code = j.rc,"
	" i.live_request_id = IF(j.st = 'RETURNED', NULL, i.live_request_id),"
	" i.final_at = IF(j.fin = 1, NOW(3), i.final_at)";
static const char SQL_REQUESTS_BUMP[] =
	"UPDATE " IDS_TABLE " JOIN payment_requests r ON r.id = j.id"
	" SET r.version = r.version + 1, r.updated_at = NOW(3)";
static const char SQL_FILE_APPLIED[] =
	"UPDATE payment_files SET reports_applied = reports_applied + 1, version = version + 1,"
	" status = IF(? = 1, 'SETTLED', status), settled_at = IF(? = 1, NOW(3), settled_at)"
	" WHERE id = ?";
static const char SQL_REPORT_INSERT[] =
	"INSERT INTO payment_status_reports (org_id, file_id, message_id, created_by, body)"
	" VALUES (?, ?, ?, ?, ?)";
static const char SQL_FILE_FIND[] = "SELECT id FROM payment_files WHERE id = ? AND org_id = ?";
static const char SQL_REPORTS[] =
	"SELECT id, message_id, created_by, created_at FROM payment_status_reports"
	" WHERE file_id = ? AND id < ? ORDER BY id DESC LIMIT ?";
enum { RP_ID = PAGE_ID, RP_MESSAGE, RP_CREATED_BY, RP_CREATED_AT };
static const char SQL_REPORT_BODY[] =
	"SELECT body FROM payment_status_reports WHERE id = ? AND file_id = ? AND org_id = ?";
enum { RB_BODY };

/* One item of the file, and what the report makes of it. */
struct item {
	long long id, request, batch;
	const char *e2e, *status, *bank, *reason;
	const char *was;            /* status before the report */
	bool touched;               /* bank status or status changed */
};

struct apply {
	long long file, version, reports;
	const char *status, *message_id;
	struct item *items;
	size_t n;
	const struct pain002 *rp;
};

static struct item *item_of(struct apply *k, const char *e2e)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->items[i].e2e, e2e) == 0)
			return &k->items[i];
	return NULL;
}

static int load(struct ctx *c, struct apply *k)
{
	struct dbres f, r;
	int rc;
	if ((rc = find_param_or_reply(c, &f, SQL_FILE_LOCK, &k->file)) != STEP_GO_ON)
		return rc;
	k->status = db_s(&f, 0, FL_STATUS);
	k->version = db_i(&f, 0, FL_VERSION);
	k->reports = db_i(&f, 0, FL_REPORTS);
	k->message_id = db_s(&f, 0, FL_MESSAGE);
	if (db_query(c->db, c->a, &r, SQL_ITEMS_LOCK, "i", k->file) < 0)
		return STEP_DB_ERROR;
	k->n = r.nrows;
	k->items = arena_alloc(c->a, (k->n + 1) * sizeof *k->items);
	for (size_t i = 0; i < k->n; i++) {
		struct item *it = &k->items[i];
		it->id = db_i(&r, i, IT_ID);
		it->request = db_i(&r, i, IT_REQUEST);
		it->batch = db_i(&r, i, IT_BATCH);
		it->e2e = db_s(&r, i, IT_E2E);
		it->status = it->was = db_s(&r, i, IT_STATUS);
		it->bank = db_s(&r, i, IT_BANK);
		it->reason = db_s(&r, i, IT_REASON);
		it->touched = false;   /* the arena's memory is not zeroed */
	}
	return check_if_match_or_reply(c, k->version);
}

/* ---- the report's content: VALIDATION_ERROR naming the element's path ------------------- */

static void v_status(struct ctx *c, const char *path, const char *code, bool required, int group)
{
	if (!code) {
		if (required)
			detail_str(c, path, "is required");
	} else if (!pain002_status_known(code, group)) {
		detail_str(c, path, "is not a status code remit knows (ACSC ACCC RJCT ACCP ACSP ACWC"
			" ACTC PDNG RCVD)");
	}
}

/* A Cd is an ISO code; a Prtry is the bank's own text, which the screens show as it is: any
 * characters but control ones, so a bank's words in its own language are not refused. */
static void v_reason(struct ctx *c, const char *at, const char *code, bool prtry)
{
	if (!code)
		return;
	size_t n = strlen(code);
	long chars = utf8_count(code, n);
	if (prtry && (chars < 1 || chars > PRTRY_MAX || text_has_control(code, n)))
		detail_str(c, arena_printf(c->a, "%s/StsRsnInf/Rsn/Prtry", at),
			"must be 1..35 characters with no control character");
	else if (!prtry && (n < 1 || n > REASON_MAX || strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789") != n))
		detail_str(c, arena_printf(c->a, "%s/StsRsnInf/Rsn/Cd", at),
			"must be 1..4 letters or digits (an ISO 20022 reason code)");
}

static void v_tx(struct ctx *c, struct apply *k, const char *at, const struct pain002_tx *t)
{
	const char *e2e = arena_printf(c->a, "%s/OrgnlEndToEndId", at);
	if (!t->end_to_end_id)
		detail_str(c, e2e, "is required");
	else if (!item_of(k, t->end_to_end_id))
		detail_str(c, e2e, "is not the end-to-end id of an item of this file");
	v_status(c, arena_printf(c->a, "%s/TxSts", at), t->status, true, 0);
	v_reason(c, at, t->reason, t->reason_prtry);
}

static void v_report(struct ctx *c, struct apply *k)
{
	const struct pain002 *rp = k->rp;
	long n = rp->message_id ? utf8_count(rp->message_id, strlen(rp->message_id)) : 0;
	if (!rp->message_id || n < 1 || n > 35 ||
	    text_has_control(rp->message_id, strlen(rp->message_id)))
		detail_str(c, "GrpHdr/MsgId", rp->message_id ? "must be 1..35 characters" : "is required");
	if (!rp->original_message_id)
		detail_str(c, "OrgnlGrpInfAndSts/OrgnlMsgId", "is required");
	v_status(c, "OrgnlGrpInfAndSts/GrpSts", rp->group_status, false, 1);
	v_reason(c, "OrgnlGrpInfAndSts", rp->group_reason, rp->group_reason_prtry);
	for (size_t p = 0; p < rp->npmt; p++) {
		const char *at = arena_printf(c->a, "OrgnlPmtInfAndSts[%zu]", p);
		v_status(c, arena_printf(c->a, "%s/PmtInfSts", at), rp->pmt[p].status, false, 1);
		v_reason(c, at, rp->pmt[p].reason, rp->pmt[p].reason_prtry);
		for (size_t t = 0; t < rp->pmt[p].ntx; t++)
			v_tx(c, k, arena_printf(c->a, "%s/TxInfAndSts[%zu]", at, t), &rp->pmt[p].tx[t]);
	}
}

/* ---- what the report does --------------------------------------------------------------- */

/* An item's first final status stands; its bankStatus is the latest a report gave it. */
static void set(struct item *it, const char *status, const char *reason)
{
	it->touched = true;
	it->bank = status;
	if (strcmp(it->status, "INCLUDED") != 0)
		return;
	if (pain002_settled(status))
		it->status = "PAID";
	else if (strcmp(status, "RJCT") == 0)
		it->status = "RETURNED", it->reason = reason;
}

/* A payment-information or group RJCT returns every item still INCLUDED, with its reason. */
static void reject_rest(struct apply *k, const char *reason)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->items[i].status, "INCLUDED") == 0)
			set(&k->items[i], "RJCT", reason);
}

static void outcome(struct apply *k)
{
	const struct pain002 *rp = k->rp;
	for (size_t p = 0; p < rp->npmt; p++)
		for (size_t t = 0; t < rp->pmt[p].ntx; t++) {
			const struct pain002_tx *tx = &rp->pmt[p].tx[t];
			set(item_of(k, tx->end_to_end_id), tx->status, tx->reason);
		}
	for (size_t p = 0; p < rp->npmt; p++)
		if (rp->pmt[p].status && strcmp(rp->pmt[p].status, "RJCT") == 0)
			reject_rest(k, rp->pmt[p].reason);
	if (rp->group_status && strcmp(rp->group_status, "RJCT") == 0)
		reject_rest(k, rp->group_reason);
}

static bool became(const struct item *it, const char *status)
{
	return strcmp(it->status, status) == 0 && strcmp(it->was, status) != 0;
}

/* The changed items as SQL_ITEMS_SET's JSON, through yajl: a reason may be a bank's own text
 * (Rsn/Prtry), quotes and backslashes included. An item with no reason leaves "rc" out. */
static const char *changes_json(struct ctx *c, const struct apply *k)
{
	yajl_gen g = jw_new();
	jw_array(g, NULL);
	for (size_t i = 0; i < k->n; i++) {
		const struct item *it = &k->items[i];
		if (!it->touched || !it->bank)
			continue;
		jw_open(g, NULL);
		jw_int(g, "id", it->id);
		jw_str(g, "st", it->status);
		jw_str(g, "bs", it->bank);
		if (it->reason)
			jw_str(g, "rc", it->reason);
		jw_int(g, "fin", strcmp(it->status, it->was) != 0);
		jw_close(g);
	}
	jw_array_close(g);
	return jw_finish(c->a, g);
}

/* The requests whose item was paid or returned (and their batches), locked in the lock
 * order; *paid and *returned their ids as JSON arrays. */
static int lock_changed(struct ctx *c, struct apply *k, const char **paid, const char **returned,
	size_t *npaid, size_t *nret)
{
	long long *ids = arena_alloc(c->a, (k->n + 1) * sizeof *ids);
	long long *batches = arena_alloc(c->a, (k->n + 1) * sizeof *batches);
	long long *p = arena_alloc(c->a, (k->n + 1) * sizeof *p);
	long long *r = arena_alloc(c->a, (k->n + 1) * sizeof *r);
	size_t n = 0, nb;
	*npaid = *nret = 0;
	for (size_t i = 0; i < k->n; i++) {
		const struct item *it = &k->items[i];
		bool pd = became(it, "PAID"), rt = became(it, "RETURNED");
		if (pd)
			p[(*npaid)++] = it->request;
		if (rt)
			r[(*nret)++] = it->request;
		if (pd || rt)
			ids[n] = it->request, batches[n++] = it->batch;
	}
	*paid = ids_json(c->a, p, *npaid);
	*returned = ids_json(c->a, r, *nret);
	struct dbres locked;
	nb = n;
	return n ? payfile_lock(c, batches, &nb, ids, &n, &locked) : STEP_GO_ON;
}

static void events(struct ctx *c, const struct apply *k, long long report_id, bool settled)
{
	size_t paid = 0, returned = 0;
	for (size_t i = 0; i < k->n; i++) {
		const struct item *it = &k->items[i];
		if (became(it, "PAID")) {
			paid++;
			audit_add(c, "request.paid", "request", it->request, arena_printf(c->a,
				"{\"paymentFileId\":\"%lld\",\"status\":\"PAID\",\"bankStatus\":\"%s\"}",
				k->file, it->bank));
		} else if (became(it, "RETURNED")) {
			returned++;
			yajl_gen g = jw_new();
			jw_open(g, NULL);
			jw_id(g, "paymentFileId", k->file);
			jw_str(g, "reasonCode", it->reason);
			jw_str(g, "status", "APPROVED");
			jw_close(g);
			audit_add(c, "request.returned", "request", it->request, jw_finish(c->a, g));
		}
	}
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_id(g, "reportId", report_id);
	jw_str(g, "messageId", k->rp->message_id);
	jw_int(g, "paid", (long long)paid);
	jw_int(g, "returned", (long long)returned);
	jw_close(g);
	audit_add(c, "payment_file.report_applied", "payment_file", k->file, jw_finish(c->a, g));
	if (settled)
		audit_add(c, "payment_file.settled", "payment_file", k->file,
			arena_printf(c->a, "{\"count\":%zu,\"status\":\"SETTLED\"}", k->n));
}

/* Each touched request's batch: a paid one may complete it (batch_touch). */
static int touch_batches(struct ctx *c, const struct apply *k)
{
	int rc;
	for (size_t i = 0; i < k->n; i++)
		if (became(&k->items[i], "PAID") && (rc = batch_touch(c, k->items[i].batch, true)))
			return rc;
	return STEP_GO_ON;
}

static int apply(struct ctx *c, struct apply *k)
{
	const char *paid, *returned;
	size_t npaid, nret;
	int rc;
	outcome(k);
	if ((rc = lock_changed(c, k, &paid, &returned, &npaid, &nret)))
		return rc;
	bool settle = strcmp(k->status, "CREATED") == 0;
	for (size_t i = 0; i < k->n; i++)
		settle = settle && strcmp(k->items[i].status, "INCLUDED") != 0;
	if (db_exec(c->db, SQL_ITEMS_SET, "s", changes_json(c, k)) < 0 ||
	    (npaid && payfile_pay_requests(c, k->file, paid) < 0) ||
	    (nret && db_exec(c->db, SQL_REQUESTS_BUMP, "s", returned) < 0) ||
	    db_exec(c->db, SQL_FILE_APPLIED, "iii", (long long)settle, (long long)settle, k->file) < 0 ||
	    db_exec(c->db, SQL_REPORT_INSERT, "iisib", c->me.org_id, k->file, k->rp->message_id,
		    c->me.user_id, c->rq.body, c->rq.body_len) < 0)
		return STEP_DB_ERROR;
	if ((rc = touch_batches(c, k)))
		return rc;
	events(c, k, db_insert_id(c->db), settle);
	return reply_payment_file(c, 200, k->file);
}

static int makers_or_reply(struct ctx *c, const struct apply *k)
{
	long long *ids = arena_alloc(c->a, (k->n + 1) * sizeof *ids);
	for (size_t i = 0; i < k->n; i++)
		ids[i] = k->items[i].request;
	return payfile_makers_or_reply(c, ids_json(c->a, ids, k->n), "a maker of a request in"
		" this file may not post the bank's answer for it (a report moves money as a payment"
		" does)");
}

/* The report must answer this file: its OrgnlMsgId, and the OrgnlPmtInfId of each payment
 * information it names, are the file's messageId (our pain.001 writes it as both MsgId and
 * PmtInfId). Another file's payment information, even under this file's message, could
 * otherwise return all of this file's items with one PmtInfSts RJCT. An OrgnlPmtInfAndSts
 * without OrgnlPmtInfId is taken as this file's, as OrgnlMsgId already names the file. */
static int same_message_or_reply(struct ctx *c, const struct apply *k)
{
	const struct pain002 *rp = k->rp;
	const char *at = NULL;
	if (strcmp(rp->original_message_id, k->message_id) != 0)
		at = "OrgnlGrpInfAndSts/OrgnlMsgId";
	for (size_t p = 0; !at && p < rp->npmt; p++)
		if (rp->pmt[p].original_id && strcmp(rp->pmt[p].original_id, k->message_id) != 0)
			at = arena_printf(c->a, "OrgnlPmtInfAndSts[%zu]/OrgnlPmtInfId", p);
	if (!at)
		return STEP_GO_ON;
	detail_str(c, "reason", "MESSAGE_MISMATCH");
	detail_str(c, "messageId", k->message_id);
	detail_str(c, "element", at);
	return reply_error(c, 409, "INVALID_STATE", "the report answers another message or payment"
		" information than this file's");
}

int h_status_reports_post(struct ctx *c)
{
	static const char *const none[] = { NULL };
	struct apply k = { .rp = c->rq.report };
	struct dbres seen;
	int rc;
	if ((rc = load(c, &k)))
		return rc;
	q_parse(c, none);
	v_report(c, &k);
	if (c->ndetails)
		return reply_validation(c);
	if (strcmp(k.status, "VOIDED") == 0)
		return reply_invalid_state(c, k.status);
	if ((rc = same_message_or_reply(c, &k)))
		return rc;
	if ((rc = makers_or_reply(c, &k)))
		return rc;
	if (db_query(c->db, c->a, &seen, SQL_SEEN, "is", k.file, k.rp->message_id) < 0)
		return STEP_DB_ERROR;
	if (seen.nrows)   /* applied before: the file as it is, nothing changed */
		return reply_payment_file(c, 200, k.file);
	return apply(c, &k);
}

/* ---- reading the reports kept ----------------------------------------------------------- */

static const struct column report_cols[] = {
	{ "id", 'i', RP_ID }, { "messageId", 's', RP_MESSAGE }, { "createdBy", 'i', RP_CREATED_BY },
	{ "createdAt", 't', RP_CREATED_AT }, { NULL, 0, 0 },
};

static size_t report_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row)
{
	(void)c;
	write_columns(g, r, row, report_cols);
	return row + 1;
}

int h_status_reports_list(struct ctx *c)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	struct dbres f, r;
	struct page p;
	long long id;
	int rc;
	if ((rc = find_param_or_reply(c, &f, SQL_FILE_FIND, &id)) != STEP_GO_ON)
		return rc;
	if ((rc = page_begin_or_reply(c, allowed, NULL, NULL, &p)) != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, SQL_REPORTS, "iii", id, p.before, p.fetch) < 0)
		return STEP_DB_ERROR;
	return page_reply(c, &p, &r, report_item);
}

int h_status_reports_get(struct ctx *c)
{
	static const char *const none[] = { NULL };
	struct dbres r;
	long long file = param_id(c, 0), id = param_id(c, 1);
	if (!file || !id)
		return reply_not_found(c);
	if (db_query(c->db, c->a, &r, SQL_REPORT_BODY, "iii", id, file, c->me.org_id) < 0)
		return STEP_DB_ERROR;
	if (!r.nrows)
		return reply_not_found(c);
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	c->rs.status = 200;
	c->rs.body = db_s(&r, 0, RB_BODY);
	c->rs.body_len = db_len(&r, 0, RB_BODY);
	c->rs.content_type = "application/xml";
	return 200;
}
