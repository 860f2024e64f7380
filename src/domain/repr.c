/* Shared representations: batches with totals and counts, payment requests, money text. */
#include "domain/repr.h"

#include <string.h>

#include "domain/lock.h"
#include "domain/signals.h"

#define NREQUEST_STATUSES RS_COUNT


_Static_assert((int)R_ID == (int)SIGNALS_ROW_ID, "signals_load reads a request row's id");

#define REQUEST_FROM \
	"SELECT " REQUEST_COLS " FROM payment_requests r JOIN currencies cu ON cu.code = r.currency" \
	" WHERE r.id = ? AND r.org_id = ?"
static const char SQL_REQUEST[] = REQUEST_FROM;
/* A locking read sees the newest committed rows whatever the transaction's snapshot. Shared
 * locks suffice: the caller already holds the request's exclusive lock, and nothing takes an
 * exclusive lock on currencies. */
static const char SQL_REQUEST_LATEST[] = REQUEST_FROM " LOCK IN SHARE MODE";

/* A batch row, then one row per currency of its requests (one row of NULLs when it has none):
 * the count of each request status (in request_statuses order), and the count and sum of
 * the requests that are neither REJECTED nor CANCELLED, which make `totals`. Summing in SQL
 * keeps totals exact past int64 (SUM of BIGINT is a DECIMAL). */
#define BATCH_COLS \
	"b.id, b.name, b.description, b.status, b.created_by, b.submitted_by, b.created_at," \
	" b.updated_at, b.submitted_at, b.version, r.currency, cu.minor_unit"
#define BATCH_STATS \
	", SUM(r.status = 'DRAFT'), SUM(r.status = 'PENDING_APPROVAL'), SUM(r.status = 'APPROVED')," \
	" SUM(r.status = 'PAID'), SUM(r.status = 'REJECTED'), SUM(r.status = 'CANCELLED')," \
	" SUM(r.status NOT IN ('REJECTED', 'CANCELLED'))," \
	" SUM(CASE WHEN r.status NOT IN ('REJECTED', 'CANCELLED') THEN r.amount END)"
#define BATCH_JOIN \
	" LEFT JOIN payment_requests r ON r.batch_id = b.id" \
	" LEFT JOIN currencies cu ON cu.code = r.currency"
enum { B_ID, B_NAME, B_DESC, B_STATUS, B_CREATED_BY, B_SUBMITTED_BY, B_CREATED_AT, B_UPDATED_AT,
	B_SUBMITTED_AT, B_VERSION, B_CURRENCY, B_MINOR, B_COUNTS,
	B_ACTIVE = B_COUNTS + NREQUEST_STATUSES, B_ACTIVE_SUM };

static const char SQL_BATCH[] =
	"SELECT " BATCH_COLS BATCH_STATS " FROM batches b" BATCH_JOIN
	" WHERE b.id = ? AND b.org_id = ? GROUP BY " BATCH_COLS " ORDER BY r.currency";
/* A page: the batches are chosen in a derived table, so its LIMIT counts batches, not rows. */
static const char SQL_BATCH_PAGE[] =
	"SELECT " BATCH_COLS BATCH_STATS " FROM (SELECT * FROM batches"
	" WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?) b" BATCH_JOIN
	" GROUP BY " BATCH_COLS " ORDER BY b.id DESC, r.currency";
static const char SQL_BATCH_PAGE_STATUS[] =
	"SELECT " BATCH_COLS BATCH_STATS " FROM (SELECT * FROM batches"
	" WHERE org_id = ? AND status = ? AND id < ? ORDER BY id DESC LIMIT ?) b" BATCH_JOIN
	" GROUP BY " BATCH_COLS " ORDER BY b.id DESC, r.currency";

const char *decimal_minor(struct arena *a, const char *digits, int minor)
{
	if (!digits)
		digits = "0";
	bool neg = *digits == '-';
	if (neg || *digits == '+')
		digits++;
	size_t n = strspn(digits, "0123456789");
	while (n > 1 && *digits == '0') {
		digits++;
		n--;
	}
	if (n == 0 || (n == 1 && *digits == '0'))
		neg = false;   /* no "-0.00" */
	size_t width = n > (size_t)minor ? n : (size_t)minor + 1;   /* at least "0.xx" */
	char *out = arena_alloc(a, width + 3);
	char *p = out;
	if (neg)
		*p++ = '-';
	size_t pad = width - n;
	for (size_t i = 0; i < width; i++) {
		if (minor > 0 && i == width - (size_t)minor)
			*p++ = '.';
		*p++ = i < pad ? '0' : (n ? digits[i - pad] : '0');
	}
	*p = '\0';
	return out;
}

const char *request_snapshot(struct arena *a, int64_t amount, int minor, const char *currency,
	const char *name, const char *account, const char *purpose, int required)
{
	char money[MONEY_FMT_MAX];
	money_format(amount, minor, money);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "amount", money);
	jw_str(g, "currency", currency);
	jw_str(g, "beneficiaryName", name);
	jw_str(g, "beneficiaryAccount", account);
	jw_str(g, "purpose", purpose);
	jw_int(g, "requiredApprovals", required);
	jw_close(g);
	return jw_finish(a, g);
}

/* The stored snapshot is JSON this service wrote; it is parsed so it nests as an object. */
static void write_snapshot(struct arena *a, yajl_gen g, const char *text, size_t len)
{
	struct jv *v;
	if (text && json_parse(a, text, len, &v) == 0) {
		jw_key(g, "snapshot");
		json_write(g, v);
	} else {
		jw_null(g, "snapshot");
	}
}

/* paymentFileId and lastReturn (API §9), null for a row without their columns. */
static void write_file_link(yajl_gen g, const struct dbres *r, size_t i)
{
	bool has = r->ncols > R_RETURN_AT;
	jw_id(g, "paymentFileId", has ? db_i(r, i, R_FILE) : 0);
	if (!has || !db_s(r, i, R_RETURN_FILE)) {
		jw_null(g, "lastReturn");
		return;
	}
	jw_open(g, "lastReturn");
	jw_id(g, "paymentFileId", db_i(r, i, R_RETURN_FILE));
	jw_str(g, "reasonCode", db_s(r, i, R_RETURN_REASON));
	jw_time(g, "at", db_s(r, i, R_RETURN_AT));
	jw_close(g);
}

void write_request(struct arena *a, yajl_gen g, const struct dbres *r, size_t i,
	const struct signals *s)
{
	char money[MONEY_FMT_MAX];
	money_format(db_i(r, i, R_AMOUNT), (int)db_i(r, i, R_MINOR), money);
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, R_ID));
	jw_id(g, "batchId", db_i(r, i, R_BATCH));
	jw_str(g, "status", db_s(r, i, R_STATUS));
	jw_str(g, "amount", money);
	jw_str(g, "currency", db_s(r, i, R_CURRENCY));
	jw_str(g, "beneficiaryName", db_s(r, i, R_NAME));
	jw_str(g, "beneficiaryAccount", db_s(r, i, R_ACCOUNT));
	jw_str(g, "purpose", db_s(r, i, R_PURPOSE));
	jw_id(g, "createdBy", db_i(r, i, R_CREATED_BY));
	jw_time(g, "createdAt", db_s(r, i, R_CREATED_AT));
	jw_time(g, "updatedAt", db_s(r, i, R_UPDATED_AT));
	jw_int(g, "version", db_i(r, i, R_VERSION));
	if (db_s(r, i, R_REQUIRED))
		jw_int(g, "requiredApprovals", db_i(r, i, R_REQUIRED));
	else
		jw_null(g, "requiredApprovals");
	jw_int(g, "approvalCount", db_i(r, i, R_APPROVALS));
	write_snapshot(a, g, db_s(r, i, R_SNAPSHOT), db_len(r, i, R_SNAPSHOT));
	jw_time(g, "paidAt", db_s(r, i, R_PAID_AT));
	jw_id(g, "paidBy", db_i(r, i, R_PAID_BY));
	jw_str(g, "paymentReference", db_s(r, i, R_REFERENCE));
	write_file_link(g, r, i);
	signals_write(g, s, db_i(r, i, R_ID));
	jw_close(g);
}

size_t request_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row)
{
	write_request(c->a, g, r, row, c->signals);
	return row + 1;
}

/* The CSV columns: the representation's top-level members in the contract's order. */
static const char *const request_cols[] = { "id", "batchId", "status", "amount", "currency",
	"beneficiaryName", "beneficiaryAccount", "purpose", "createdBy", "createdAt", "updatedAt",
	"version", "requiredApprovals", "approvalCount", "snapshot", "paidAt", "paidBy",
	"paymentReference", "paymentFileId", "lastReturn", "signals", NULL };

int reply_request_page(struct ctx *c, const struct page *p, const struct dbres *r, bool csv)
{
	struct signals s;
	if (signals_load(c, r, &s) < 0)
		return STEP_DB_ERROR;
	c->signals = &s;
	int rc = csv ? page_reply_csv(c, p, r, request_item, request_cols, "requests.csv")
		: page_reply(c, p, r, request_item);
	c->signals = NULL;
	return rc;
}

int reply_request(struct ctx *c, int status, long long id, bool latest)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, latest ? SQL_REQUEST_LATEST : SQL_REQUEST, "ii", id,
			c->me.org_id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	if (c->ndetails)   /* a GET's query parameters: only a 404 goes before them */
		return reply_validation(c);
	return reply_request_row(c, status, &r);
}

int reply_request_row(struct ctx *c, int status, const struct dbres *r)
{
	struct signals s;
	if (signals_load(c, r, &s) < 0)
		return STEP_DB_ERROR;
	write_request(c->a, reply_data(c, status), r, 0, &s);
	c->rs.etag = db_i(r, 0, R_VERSION);
	return reply_done(c);
}

/* Writes the batch whose rows start at `first`; returns the index after its last row. */
static size_t write_batch(struct ctx *c, yajl_gen g, const struct dbres *r, size_t first)
{
	long long id = db_i(r, first, B_ID), counts[NREQUEST_STATUSES] = { 0 };
	size_t end = first;
	while (end < r->nrows && db_i(r, end, B_ID) == id)
		end++;
	jw_open(g, NULL);
	jw_id(g, "id", id);
	jw_str(g, "name", db_s(r, first, B_NAME));
	jw_str(g, "description", db_s(r, first, B_DESC));
	jw_str(g, "status", db_s(r, first, B_STATUS));
	jw_id(g, "createdBy", db_i(r, first, B_CREATED_BY));
	jw_id(g, "submittedBy", db_i(r, first, B_SUBMITTED_BY));
	jw_time(g, "createdAt", db_s(r, first, B_CREATED_AT));
	jw_time(g, "updatedAt", db_s(r, first, B_UPDATED_AT));
	jw_time(g, "submittedAt", db_s(r, first, B_SUBMITTED_AT));
	jw_int(g, "version", db_i(r, first, B_VERSION));
	jw_array(g, "totals");
	for (size_t i = first; i < end; i++) {
		for (int s = 0; s < NREQUEST_STATUSES; s++)
			counts[s] += db_i(r, i, B_COUNTS + s);
		if (!db_s(r, i, B_CURRENCY) || db_i(r, i, B_ACTIVE) == 0)
			continue;
		jw_open(g, NULL);
		jw_str(g, "currency", db_s(r, i, B_CURRENCY));
		jw_int(g, "count", db_i(r, i, B_ACTIVE));
		jw_str(g, "amount", decimal_minor(c->a, db_s(r, i, B_ACTIVE_SUM),
			(int)db_i(r, i, B_MINOR)));
		jw_close(g);
	}
	jw_array_close(g);
	jw_open(g, "counts");
	for (int s = 0; s < NREQUEST_STATUSES; s++)
		jw_int(g, request_statuses[s], counts[s]);
	jw_close(g);
	jw_close(g);
	return end;
}

int reply_batch(struct ctx *c, int status, long long id)
{
	struct dbres r;
	int rc;
	if ((rc = find_own_or_reply(c, &r, SQL_BATCH, id)) != STEP_GO_ON)
		return rc;
	if (c->ndetails)
		return reply_validation(c);
	write_batch(c, reply_data(c, status), &r, 0);
	c->rs.etag = db_i(&r, 0, B_VERSION);
	return reply_done(c);
}

int reply_batch_page(struct ctx *c, const char *status, const struct page *p)
{
	struct dbres r;
	int rc = status
		? db_query(c->db, c->a, &r, SQL_BATCH_PAGE_STATUS, "isii", c->me.org_id, status,
			p->before, p->fetch)
		: db_query(c->db, c->a, &r, SQL_BATCH_PAGE, "iii", c->me.org_id, p->before, p->fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	return page_reply(c, p, &r, write_batch);
}
