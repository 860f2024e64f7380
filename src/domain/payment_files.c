/* Payment files (API §9): approved requests of one currency handed to the bank as one file.
 * Making one, reading them, and the shared pieces; confirm, void and the downloads are in
 * payment_file_actions.c. A request is in at most one live file because the database says
 * so (payment_file_items.live_request_id under a UNIQUE key, sql/migrations/0009): the
 * checks here only give the refusal its reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "csv.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/payfile.h"
#include "domain/repr.h"
#include "iso20022.h"
#include "page.h"
#include "valid.h"

#define FILE_MAX_ITEMS 2000
#define EXECUTION_DAYS_AHEAD 365
/* The EPC's cap on one SEPA credit transfer: 999,999,999.99 EUR, in cents. */
#define SEPA_AMOUNT_MAX 99999999999LL

#define FILE_COLS \
	"f.id, f.status, f.currency, f.item_count, f.total, f.execution_date, f.message_id," \
	" f.debtor_name, f.debtor_iban, f.debtor_bic, f.created_by, f.created_at, f.settled_at," \
	" f.voided_by, f.voided_at, f.void_reason, f.version, cu.minor_unit"
enum { F_ID, F_STATUS, F_CURRENCY, F_COUNT, F_TOTAL, F_DATE, F_MESSAGE, F_DNAME, F_DIBAN,
	F_DBIC, F_CREATED_BY, F_CREATED_AT, F_SETTLED_AT, F_VOIDED_BY, F_VOIDED_AT, F_REASON,
	F_VERSION, F_MINOR };
#define FILE_FROM " FROM payment_files f JOIN currencies cu ON cu.code = f.currency"
static const char SQL_FILE[] = "SELECT " FILE_COLS FILE_FROM " WHERE f.id = ? AND f.org_id = ?";
static const char SQL_FILES[] = "SELECT " FILE_COLS FILE_FROM
	" WHERE f.org_id = ? AND f.id < ? ORDER BY f.id DESC LIMIT ?";
static const char SQL_FILES_STATUS[] = "SELECT " FILE_COLS FILE_FROM
	" WHERE f.org_id = ? AND f.status = ? AND f.id < ? ORDER BY f.id DESC LIMIT ?";
#define ITEM_COLS \
	"i.file_id, i.request_id, i.end_to_end_id, i.amount, i.beneficiary_name, i.name_in_file," \
	" i.beneficiary_account, i.status, i.bank_status, i.reason_code"
enum { I_FILE, I_REQUEST, I_E2E, I_AMOUNT, I_NAME, I_NAME_IN_FILE, I_ACCOUNT, I_STATUS,
	I_BANK_STATUS, I_REASON };
static const char SQL_ITEMS[] =
	"SELECT " ITEM_COLS " FROM payment_file_items i WHERE i.file_id = ? ORDER BY i.position";
/* The items of a page of files, newest file first, each file's in their order. */
static const char SQL_PAGE_ITEMS[] =
	"SELECT " ITEM_COLS " FROM payment_file_items i WHERE i.file_id IN (SELECT id FROM"
	" (SELECT id FROM payment_files WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?) p)"
	" ORDER BY i.file_id DESC, i.position";
static const char SQL_PAGE_ITEMS_STATUS[] =
	"SELECT " ITEM_COLS " FROM payment_file_items i WHERE i.file_id IN (SELECT id FROM"
	" (SELECT id FROM payment_files WHERE org_id = ? AND status = ? AND id < ?"
	" ORDER BY id DESC LIMIT ?) p) ORDER BY i.file_id DESC, i.position";

/* Tenancy before locks (lock.h): a plain read, in the order given. */
static const char SQL_FIND[] =
	"SELECT j.id, r.batch_id FROM " IDS_TABLE
	" LEFT JOIN payment_requests r ON r.id = j.id AND r.org_id = ? ORDER BY j.pos";
enum { FIND_ID, FIND_BATCH };
static const char SQL_LOCK_BATCHES[] =
	"SELECT b.id FROM " IDS_TABLE " JOIN batches b ON b.id = j.id ORDER BY j.pos FOR UPDATE";
static const char SQL_LOCK_REQUESTS[] =
	"SELECT " PAYFILE_REQUEST " FROM " IDS_TABLE
	" JOIN payment_requests r ON r.id = j.id ORDER BY j.pos FOR UPDATE";
static const char SQL_LIVE[] =
	"SELECT i.live_request_id FROM " IDS_TABLE
	" JOIN payment_file_items i ON i.live_request_id = j.id LOCK IN SHARE MODE";
enum { LIVE_REQUEST };
static const char SQL_MAKERS[] =
	"SELECT DISTINCT m.request_id FROM " IDS_TABLE
	" JOIN request_makers m ON m.request_id = j.id AND m.user_id = ? LOCK IN SHARE MODE";
enum { MK_REQUEST };
static const char SQL_DEBTOR[] =
	"SELECT name, iban, bic FROM debtor_accounts WHERE org_id = ? AND currency = ?"
	" LOCK IN SHARE MODE";
enum { DEB_NAME, DEB_IBAN, DEB_BIC };
static const char SQL_FILE_INSERT[] =
	"INSERT INTO payment_files (org_id, currency, item_count, total, execution_date,"
	" debtor_name, debtor_iban, debtor_bic, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_FILE_MESSAGE[] =
	"UPDATE payment_files SET message_id = ? WHERE id = ?";
static const char SQL_FILE_CREATED[] = "SELECT created_at FROM payment_files WHERE id = ?";
enum { FC_CREATED_AT };
static const char SQL_ITEMS_INSERT[] =
	"INSERT INTO payment_file_items (org_id, file_id, position, request_id, live_request_id,"
	" batch_id, end_to_end_id, amount, currency, beneficiary_name, name_in_file,"
	" beneficiary_account, purpose)"
	" SELECT ?, ?, j.pos, r.id, r.id, r.batch_id, CONCAT(?, '-', j.pos), r.amount, r.currency,"
	" r.beneficiary_name, j.n, r.beneficiary_account, r.purpose FROM JSON_TABLE(?, '$[*]'"
	" COLUMNS (pos FOR ORDINALITY, id BIGINT PATH '$.id', n VARCHAR(70) PATH '$.n')) j"
	" JOIN payment_requests r ON r.id = j.id";
/* A join, not `id IN (SELECT … JSON_TABLE)`: MariaDB runs that subquery once per row of
 * the table (no semi-join for an UPDATE), which made a 2,000-item file take seconds. */
static const char SQL_REQUESTS_BUMP[] =
	"UPDATE " IDS_TABLE " JOIN payment_requests r ON r.id = j.id"
	" SET r.version = r.version + 1, r.updated_at = NOW(3)";
static const char SQL_FILE_BYTES[] = "UPDATE payment_files SET pain_001 = ?, csv = ? WHERE id = ?";
static const char SQL_FILE_CSV[] = "UPDATE payment_files SET csv = ? WHERE id = ?";

static const char *const file_statuses[] = { "CREATED", "SETTLED", "VOIDED", NULL };

/* ---- the representation --------------------------------------------------------------- */

/* Writes the items of file `file` from rows [*row, …) of `items` and moves *row past them. */
static void write_items(yajl_gen g, const struct dbres *items, size_t *row, long long file,
	int minor)
{
	jw_array(g, "items");
	for (; *row < items->nrows && db_i(items, *row, I_FILE) == file; (*row)++) {
		size_t i = *row;
		char money[MONEY_FMT_MAX];
		money_format(db_i(items, i, I_AMOUNT), minor, money);
		jw_open(g, NULL);
		jw_id(g, "requestId", db_i(items, i, I_REQUEST));
		jw_str(g, "endToEndId", db_s(items, i, I_E2E));
		jw_str(g, "amount", money);
		jw_str(g, "beneficiaryName", db_s(items, i, I_NAME));
		jw_str(g, "nameInFile", db_s(items, i, I_NAME_IN_FILE));
		jw_str(g, "beneficiaryAccount", db_s(items, i, I_ACCOUNT));
		jw_str(g, "status", db_s(items, i, I_STATUS));
		jw_str(g, "bankStatus", db_s(items, i, I_BANK_STATUS));
		jw_str(g, "reasonCode", db_s(items, i, I_REASON));
		jw_close(g);
	}
	jw_array_close(g);
}

static void write_file(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i,
	const struct dbres *items, size_t *row)
{
	int minor = (int)db_i(r, i, F_MINOR);
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, F_ID));
	jw_str(g, "status", db_s(r, i, F_STATUS));
	jw_str(g, "currency", db_s(r, i, F_CURRENCY));
	jw_int(g, "count", db_i(r, i, F_COUNT));
	jw_str(g, "total", decimal_minor(c->a, db_s(r, i, F_TOTAL), minor));
	jw_str(g, "executionDate", db_s(r, i, F_DATE));
	jw_str(g, "messageId", db_s(r, i, F_MESSAGE));
	jw_open(g, "debtor");
	jw_str(g, "name", db_s(r, i, F_DNAME));
	jw_str(g, "iban", db_s(r, i, F_DIBAN));
	jw_str(g, "bic", db_s(r, i, F_DBIC));
	jw_close(g);
	jw_id(g, "createdBy", db_i(r, i, F_CREATED_BY));
	jw_time(g, "createdAt", db_s(r, i, F_CREATED_AT));
	jw_time(g, "settledAt", db_s(r, i, F_SETTLED_AT));
	jw_id(g, "voidedBy", db_i(r, i, F_VOIDED_BY));
	jw_time(g, "voidedAt", db_s(r, i, F_VOIDED_AT));
	jw_str(g, "voidReason", db_s(r, i, F_REASON));
	jw_int(g, "version", db_i(r, i, F_VERSION));
	write_items(g, items, row, db_i(r, i, F_ID), minor);
	jw_close(g);
}

int reply_payment_file(struct ctx *c, int status, long long id)
{
	struct dbres r, items;
	int rc;
	if ((rc = find_own_or_reply(c, &r, SQL_FILE, id)) != STEP_GO_ON)
		return rc;
	if (c->ndetails)
		return reply_validation(c);
	if (db_query(c->db, c->a, &items, SQL_ITEMS, "i", id) < 0)
		return STEP_DB_ERROR;
	size_t row = 0;
	write_file(c, reply_data(c, status), &r, 0, &items, &row);
	c->rs.etag = db_i(&r, 0, F_VERSION);
	return reply_done(c);
}

int h_payment_files_get(struct ctx *c)
{
	static const char *const none[] = { NULL };
	long long id = param_id(c, 0);
	q_parse(c, none);
	return id ? reply_payment_file(c, 200, id) : reply_not_found(c);
}

/* A page's items, read before the page is written (an item writer cannot fail). A worker
 * serves one request at a time, so one pointer per process is enough. */
static const struct dbres *page_items;
static size_t page_row;

static size_t file_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t row)
{
	while (page_row < page_items->nrows && db_i(page_items, page_row, I_FILE) > db_i(r, row, F_ID))
		page_row++;   /* the items of the row past the limit come first only if unsorted */
	write_file(c, g, r, row, page_items, &page_row);
	return row + 1;
}

int h_payment_files_list(struct ctx *c)
{
	static const char *const allowed[] = { "status", "limit", "cursor", NULL };
	struct page p;
	const char *status;
	struct dbres r, items;
	int rc;
	if ((rc = page_begin_or_reply(c, allowed, file_statuses, &status, &p)) != STEP_GO_ON)
		return rc;
	rc = status
		? db_query(c->db, c->a, &r, SQL_FILES_STATUS, "isii", c->me.org_id, status, p.before,
			p.fetch)
		: db_query(c->db, c->a, &r, SQL_FILES, "iii", c->me.org_id, p.before, p.fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	rc = status
		? db_query(c->db, c->a, &items, SQL_PAGE_ITEMS_STATUS, "isii", c->me.org_id, status,
			p.before, (long long)p.limit)
		: db_query(c->db, c->a, &items, SQL_PAGE_ITEMS, "iii", c->me.org_id, p.before,
			(long long)p.limit);
	if (rc < 0)
		return STEP_DB_ERROR;
	page_items = &items;
	page_row = 0;
	return page_reply(c, &p, &r, file_item);
}

/* ---- shared with payment_file_actions.c ------------------------------------------------- */

const char *ids_json(struct arena *a, const long long *ids, size_t n)
{
	char *out = arena_alloc(a, n * 21 + 3), *p = out;
	*p++ = '[';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, i ? ",%lld" : "%lld", ids[i]);
	*p++ = ']';
	*p = '\0';
	return out;
}

static int id_cmp(const void *x, const void *y)
{
	long long a = *(const long long *)x, b = *(const long long *)y;
	return a < b ? -1 : a > b;
}

/* Sorts and removes repeats; returns the new count. */
static size_t sort_unique(long long *ids, size_t n)
{
	qsort(ids, n, sizeof *ids, id_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || ids[m - 1] != ids[i])
			ids[m++] = ids[i];
	return m;
}

int payfile_lock(struct ctx *c, long long *batch_ids, size_t *nb, long long *ids, size_t *n,
	struct dbres *locked)
{
	struct dbres r;
	*nb = sort_unique(batch_ids, *nb);
	*n = sort_unique(ids, *n);
	if (db_query(c->db, c->a, &r, SQL_LOCK_BATCHES, "s", ids_json(c->a, batch_ids, *nb)) < 0 ||
	    db_query(c->db, c->a, locked, SQL_LOCK_REQUESTS, "s", ids_json(c->a, ids, *n)) < 0)
		return STEP_DB_ERROR;
	return STEP_GO_ON;
}

int payfile_makers_or_reply(struct ctx *c, const char *ids_text, const char *message)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_MAKERS, "si", ids_text, c->me.user_id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return STEP_GO_ON;
	const char **mine = arena_alloc(c->a, r.nrows * sizeof *mine);
	for (size_t i = 0; i < r.nrows; i++)
		mine[i] = db_s(&r, i, MK_REQUEST);
	c->ndetails = 0;
	detail_list(c, "requestIds", mine, r.nrows);
	return reply_error(c, 403, "SELF_PAYMENT_FORBIDDEN", message);
}

/* ---- POST /api/v1/payment-files ---------------------------------------------------------- */

/* One request going into the file, in the order given. */
struct entry {
	const char *raw;                 /* the id as sent, for details.requestIds */
	long long id, batch_id;
	size_t row;                      /* its row in the locked rows */
	const char *name_in_file;
};

struct create {
	struct entry *e;
	size_t n;
	const char *date;                /* YYYY-MM-DD */
	const char *ids_text;            /* JSON array of the ids */
	struct dbres locked;             /* PAYFILE_REQUEST rows */
	const char *currency, *debtor_name, *debtor_iban, *debtor_bic;
	int minor;
	long long file_id;
	const char *message_id, *total, *created_at;
};

/* Days since 1970-01-01 of a valid YYYY-MM-DD, else -1. */
static long civil_days(const char *s)
{
	int y, m, d, n = 0;
	if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12 };
	time_t t = timegm(&tm);
	if (tm.tm_year != y - 1900 || tm.tm_mon != m - 1 || tm.tm_mday != d)
		return -1;   /* normalised: no such day */
	return (long)(t / 86400);
}

static void v_execution_date(struct ctx *c, struct create *k)
{
	const char *s;
	long today = (long)(time(NULL) / 86400);
	if (v_text(c, "executionDate", false, 10, 10, &s) != V_OK) {
		if (!json_get(c->body, "executionDate") || json_get(c->body, "executionDate")->t == J_NULL) {
			time_t now = (time_t)today * 86400;
			struct tm tm;
			gmtime_r(&now, &tm);
			char *buf = arena_alloc(c->a, 11);
			strftime(buf, 11, "%Y-%m-%d", &tm);
			k->date = buf;
		}
		return;
	}
	long d = civil_days(s);
	if (d < 0)
		detail_str(c, "executionDate", "must be a date YYYY-MM-DD");
	else if (d < today || d > today + EXECUTION_DAYS_AHEAD)
		detail_str(c, "executionDate", "must be from today to today + 365 days (UTC)");
	else
		k->date = s;
}

/* requestIds: 1..2,000 distinct strings. One that is no id at all is looked up like any
 * other and found in no organisation (404). */
static void v_request_ids(struct ctx *c, struct create *k)
{
	struct jv *list = json_get(c->body, "requestIds");
	if (!list || list->t == J_NULL) {
		detail_str(c, "requestIds", "is required");
		return;
	}
	if (list->t != J_ARR || list->n < 1 || list->n > FILE_MAX_ITEMS) {
		detail_str(c, "requestIds", "must be an array of 1 to 2000 request ids");
		return;
	}
	k->n = list->n;
	k->e = arena_alloc(c->a, list->n * sizeof *k->e);
	long long *ids = arena_alloc(c->a, list->n * sizeof *ids);
	for (size_t i = 0; i < list->n; i++) {
		struct jv *v = list->v[i];
		if (v->t != J_STR) {
			detail_str(c, "requestIds", "must be an array of request ids (strings)");
			return;
		}
		const char *raw = arena_strndup(c->a, v->s, v->len);
		k->e[i] = (struct entry){ raw, id_parse(raw), 0, 0, NULL };
		ids[i] = k->e[i].id;
		for (size_t j = 0; j < i; j++)
			if (strcmp(k->e[j].raw, k->e[i].raw) == 0) {
				detail_str(c, "requestIds", "must not repeat an id");
				return;
			}
	}
	k->ids_text = ids_json(c->a, ids, k->n);
}

/* 404 naming every id that is no request of the caller's organisation. */
static int find_requests_or_reply(struct ctx *c, struct create *k)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_FIND, "si", k->ids_text, c->me.org_id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows != k->n)
		return STEP_DB_ERROR;
	const char **unknown = arena_alloc(c->a, k->n * sizeof *unknown);
	size_t nu = 0;
	for (size_t i = 0; i < k->n; i++) {
		if (!db_s(&r, i, FIND_BATCH))
			unknown[nu++] = k->e[i].raw;
		k->e[i].batch_id = db_i(&r, i, FIND_BATCH);
	}
	if (!nu)
		return STEP_GO_ON;
	c->ndetails = 0;
	detail_list(c, "requestIds", unknown, nu);
	return reply_error(c, 404, "NOT_FOUND", "no such request");
}

static int row_cmp(const void *key, const void *elem)
{
	long long a = *(const long long *)key, b = atoll(((const struct dbcell *)elem)->s);
	return a < b ? -1 : a > b;
}

/* Locks the batches, then the requests (lock.h), and finds each entry's locked row. */
static int lock_requests(struct ctx *c, struct create *k)
{
	long long *ids = arena_alloc(c->a, k->n * sizeof *ids);
	long long *batches = arena_alloc(c->a, k->n * sizeof *batches);
	for (size_t i = 0; i < k->n; i++) {
		ids[i] = k->e[i].id;
		batches[i] = k->e[i].batch_id;
	}
	size_t nb = k->n, n = k->n;
	int rc = payfile_lock(c, batches, &nb, ids, &n, &k->locked);
	if (rc)
		return rc;
	if (k->locked.nrows != k->n)
		return STEP_DB_ERROR;   /* a request deleted since the read: only DRAFTs can be */
	/* The rows come in id order, each row's first cell its id: a binary search finds one. */
	struct dbcell *firsts = arena_alloc(c->a, k->n * sizeof *firsts);
	for (size_t i = 0; i < k->n; i++)
		firsts[i] = k->locked.cells[i * k->locked.ncols];
	for (size_t i = 0; i < k->n; i++) {
		struct dbcell *hit = bsearch(&k->e[i].id, firsts, k->n, sizeof *firsts, row_cmp);
		if (!hit)
			return STEP_DB_ERROR;
		k->e[i].row = (size_t)(hit - firsts);
	}
	return STEP_GO_ON;
}

static const char *col(const struct create *k, size_t i, int column)
{
	return db_s(&k->locked, k->e[i].row, (size_t)column);
}

static int refuse(struct ctx *c, int status, const char *code, const char *reason,
	const char **ids, size_t n, const char *message)
{
	c->ndetails = 0;
	if (reason)
		detail_str(c, "reason", reason);
	if (ids)
		detail_list(c, "requestIds", ids, n);
	return reply_error(c, status, code, message);
}

/* 409 NOT_APPROVED, IN_PAYMENT_FILE, MIXED_CURRENCIES, in that order (§9). */
static int check_requests_or_reply(struct ctx *c, struct create *k)
{
	const char **bad = arena_alloc(c->a, k->n * sizeof *bad);
	size_t nbad = 0;
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(col(k, i, PR_STATUS), "APPROVED") != 0)
			bad[nbad++] = k->e[i].raw;
	if (nbad)
		return refuse(c, 409, "INVALID_STATE", "NOT_APPROVED", bad, nbad,
			"only APPROVED requests go into a payment file");
	struct dbres live;
	if (db_query(c->db, c->a, &live, SQL_LIVE, "s", k->ids_text) < 0)
		return STEP_DB_ERROR;
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < live.nrows; j++)
			if (db_i(&live, j, LIVE_REQUEST) == k->e[i].id)
				bad[nbad++] = k->e[i].raw;
	if (nbad)
		return refuse(c, 409, "INVALID_STATE", "IN_PAYMENT_FILE", bad, nbad,
			"a request is already in a live payment file");
	k->currency = col(k, 0, PR_CURRENCY);
	for (size_t i = 1; i < k->n; i++)
		if (strcmp(col(k, i, PR_CURRENCY), k->currency) != 0)
			return refuse(c, 409, "INVALID_STATE", "MIXED_CURRENCIES", NULL, 0,
				"a payment file holds requests of one currency");
	return STEP_GO_ON;
}

/* 409 NO_DEBTOR_ACCOUNT, then 403 SELF_PAYMENT_FORBIDDEN. */
static int check_debtor_and_makers_or_reply(struct ctx *c, struct create *k)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_DEBTOR, "is", c->me.org_id, k->currency) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return refuse(c, 409, "INVALID_STATE", "NO_DEBTOR_ACCOUNT", NULL, 0,
			"no debtor account for this currency (PUT /api/v1/debtor-accounts)");
	k->debtor_name = db_s(&r, 0, DEB_NAME);
	k->debtor_iban = db_s(&r, 0, DEB_IBAN);
	k->debtor_bic = db_s(&r, 0, DEB_BIC);
	return payfile_makers_or_reply(c, k->ids_text,
		"you may not pay a request you created, changed or whose batch you submitted");
}

/* The exact sum of the amounts as decimal text: two base-10^18 limbs hold 2,000 × 2^63. */
static const char *sum_text(struct ctx *c, const struct create *k)
{
	const unsigned long long base = 1000000000000000000ULL;
	unsigned long long hi = 0, lo = 0;
	for (size_t i = 0; i < k->n; i++) {
		unsigned long long a = (unsigned long long)atoll(col(k, i, PR_AMOUNT));
		lo += a % base;
		hi += a / base + lo / base;
		lo %= base;
	}
	return hi ? arena_printf(c->a, "%llu%018llu", hi, lo) : arena_printf(c->a, "%llu", lo);
}

static bool is_iban(const char *s)
{
	return strlen(s) >= 5 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
		s[2] >= '0' && s[2] <= '9' && s[3] >= '0' && s[3] <= '9';
}

/* SEPA (pain.001 can be made): EUR, IBANs only, every amount within the EPC's cap. */
static bool is_sepa(const struct create *k)
{
	if (strcmp(k->currency, "EUR") != 0 || !is_iban(k->debtor_iban))
		return false;
	for (size_t i = 0; i < k->n; i++)
		if (!is_iban(col(k, i, PR_ACCOUNT)) || atoll(col(k, i, PR_AMOUNT)) > SEPA_AMOUNT_MAX)
			return false;
	return true;
}

/* A DB DATETIME(3) as RFC 3339 with milliseconds, as jw_time writes it. */
static const char *rfc3339(struct arena *a, const char *t)
{
	char *out = arena_printf(a, "%.10sT%.8s.000Z", t, t + 11);
	if (t[19] == '.')
		memcpy(out + 20, t + 20, strnlen(t + 20, 3));
	return out;
}

static const char *e2e_id(struct ctx *c, const struct create *k, size_t i)
{
	return arena_printf(c->a, "%s-%zu", k->message_id, i + 1);
}

static const char *pain_bytes(struct ctx *c, const struct create *k, size_t *len)
{
	struct pain_item *items = arena_alloc(c->a, k->n * sizeof *items);
	for (size_t i = 0; i < k->n; i++) {
		char money[MONEY_FMT_MAX];
		money_format(atoll(col(k, i, PR_AMOUNT)), k->minor, money);
		const char *purpose = col(k, i, PR_PURPOSE);
		items[i] = (struct pain_item){ e2e_id(c, k, i), arena_strndup(c->a, money, strlen(money)),
			k->e[i].name_in_file, col(k, i, PR_ACCOUNT),
			sepa_fold(c->a, purpose, strlen(purpose), SEPA_USTRD_MAX) };
	}
	struct pain_file f = { k->message_id, rfc3339(c->a, k->created_at), k->date,
		decimal_minor(c->a, k->total, k->minor),
		sepa_fold(c->a, k->debtor_name, strlen(k->debtor_name), SEPA_NAME_MAX),
		k->debtor_iban, k->debtor_bic, k->n, items };
	return pain001_write(c->a, &f, len);
}

static void csv_text(struct csv *w, const char *s)
{
	csv_field(w, s, strlen(s));
}

static void csv_bytes(struct ctx *c, const struct create *k, struct csv *w)
{
	static const char *const header[] = { "endToEndId", "requestId", "batchId",
		"beneficiaryName", "beneficiaryAccount", "amount", "currency", "purpose",
		"executionDate" };
	for (size_t h = 0; h < sizeof header / sizeof header[0]; h++)
		csv_text(w, header[h]);
	csv_row_end(w);
	for (size_t i = 0; i < k->n; i++) {
		char money[MONEY_FMT_MAX];
		money_format(atoll(col(k, i, PR_AMOUNT)), k->minor, money);
		csv_text(w, e2e_id(c, k, i));
		csv_text(w, col(k, i, PR_ID));
		csv_text(w, col(k, i, PR_BATCH));
		csv_text(w, col(k, i, PR_NAME));
		csv_text(w, col(k, i, PR_ACCOUNT));
		csv_text(w, money);
		csv_text(w, k->currency);
		csv_text(w, col(k, i, PR_PURPOSE));
		csv_text(w, k->date);
		csv_row_end(w);
	}
}

/* The bytes of both downloads, made once and stored with the file. */
static int store_downloads(struct ctx *c, const struct create *k)
{
	struct dbres r;
	struct csv w;
	int rc = STEP_DB_ERROR;
	csv_init(&w, c->a);
	if (db_query(c->db, c->a, &r, SQL_FILE_CREATED, "i", k->file_id) < 0 || r.nrows != 1)
		goto done;
	((struct create *)k)->created_at = db_s(&r, 0, FC_CREATED_AT);
	csv_bytes(c, k, &w);
	size_t plen = 0;
	const char *pain = is_sepa(k) ? pain_bytes(c, k, &plen) : NULL;
	if (is_sepa(k) && !pain)
		goto done;
	if (pain ? db_exec(c->db, SQL_FILE_BYTES, "bbi", pain, plen, w.buf, w.len, k->file_id)
		 : db_exec(c->db, SQL_FILE_CSV, "bi", w.buf, w.len, k->file_id))
		goto done;
	rc = STEP_GO_ON;
done:
	return rc;
}

/* The items as JSON_TABLE reads them: [{"id":…,"n":nameInFile},…] in the order given. */
static const char *items_json(struct ctx *c, struct create *k)
{
	yajl_gen g = jw_new();
	yajl_gen_array_open(g);
	for (size_t i = 0; i < k->n; i++) {
		const char *name = col(k, i, PR_NAME);
		const char *folded = sepa_fold(c->a, name, strlen(name), SEPA_NAME_MAX);
		k->e[i].name_in_file = *folded ? folded : "NOTPROVIDED";
		jw_open(g, NULL);
		jw_int(g, "id", k->e[i].id);
		jw_str(g, "n", k->e[i].name_in_file);
		jw_close(g);
	}
	yajl_gen_array_close(g);
	return jw_finish(c->a, g);
}

static int write_file_rows_or_reply(struct ctx *c, struct create *k)
{
	k->total = sum_text(c, k);
	if (db_exec(c->db, SQL_FILE_INSERT, "isisssssi", c->me.org_id, k->currency,
			(long long)k->n, k->total, k->date, k->debtor_name, k->debtor_iban, k->debtor_bic,
			c->me.user_id) < 0)
		return STEP_DB_ERROR;
	k->file_id = db_insert_id(c->db);
	k->message_id = arena_printf(c->a, "REMIT-%lld", k->file_id);
	if (db_exec(c->db, SQL_FILE_MESSAGE, "si", k->message_id, k->file_id) < 0)
		return STEP_DB_ERROR;
	if (db_exec(c->db, SQL_ITEMS_INSERT, "iiss", c->me.org_id, k->file_id, k->message_id,
			items_json(c, k)) < 0) {
		if (db_errno(c->db) != DB_DUP_ENTRY)
			return STEP_DB_ERROR;
		/* Cannot happen past the checks under the locks; the key decides anyway. */
		return refuse(c, 409, "INVALID_STATE", "IN_PAYMENT_FILE", NULL, 0,
			"a request is already in a live payment file");
	}
	if (db_exec(c->db, SQL_REQUESTS_BUMP, "s", k->ids_text) < 0)
		return STEP_DB_ERROR;
	return store_downloads(c, k);
}

static void audit_created(struct ctx *c, const struct create *k)
{
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "messageId", k->message_id);
	jw_str(g, "currency", k->currency);
	jw_int(g, "count", (long long)k->n);
	jw_str(g, "total", decimal_minor(c->a, k->total, k->minor));
	jw_str(g, "executionDate", k->date);
	jw_array(g, "requestIds");
	for (size_t i = 0; i < k->n; i++)
		jw_id(g, NULL, k->e[i].id);
	jw_array_close(g);
	jw_close(g);
	audit_add(c, "payment_file.created", "payment_file", k->file_id, jw_finish(c->a, g));
}

int h_payment_files_create(struct ctx *c)
{
	static const char *const none[] = { NULL };
	static const char *const known[] = { "requestIds", "executionDate", NULL };
	struct create k = { 0 };
	int rc;
	q_parse(c, none);
	v_request_ids(c, &k);
	v_execution_date(c, &k);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if ((rc = find_requests_or_reply(c, &k)) || (rc = lock_requests(c, &k)) ||
	    (rc = check_requests_or_reply(c, &k)) || (rc = check_debtor_and_makers_or_reply(c, &k)))
		return rc;
	k.minor = currency_minor(c, k.currency);
	if (k.minor < 0)
		return STEP_DB_ERROR;
	if ((rc = write_file_rows_or_reply(c, &k)))
		return rc;
	audit_created(c, &k);
	return reply_payment_file(c, 201, k.file_id);
}
