/* POST /api/v1/batches/{id}/requests/import (API §11): up to 5,000 requests added to a DRAFT
 * batch in one call, from JSON or CSV, all or nothing. Every row is validated as its own
 * POST …/requests body would be; the rows then go in with one INSERT per chunk and their
 * audit events in one CALL per chunk (audit.c), so an import costs a few round trips, not
 * one per request. Its makers and events are what adding each alone would have written. */
#include <string.h>

#include "audit.h"
#include "csv_read.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/requests.h"
#include "text.h"
#include "valid.h"

#define IMPORT_MAX BATCH_MAX_REQUESTS
/* Rows per INSERT: a chunk is ~300 bytes a row of JSON, far below max_allowed_packet. */
#define IMPORT_CHUNK 1000

/* The rows of a chunk as a JSON array of [amount, currency, name, account, purpose], read by
 * JSON_TABLE in their order. Each row's maker (its creator) and the batch's request_count
 * come from the triggers of sql/migrations/0005, as for a single add. */
static const char SQL_IMPORT[] =
	"INSERT INTO payment_requests (org_id, batch_id, amount, currency, beneficiary_name,"
	" beneficiary_account, purpose, created_by)"
	" SELECT ?, ?, j.amount, j.currency, j.name, j.account, j.purpose, ?"
	" FROM JSON_TABLE(?, '$[*]' COLUMNS (ord FOR ORDINALITY,"
	" amount BIGINT PATH '$[0]',"
	" currency CHAR(3) CHARACTER SET ascii PATH '$[1]',"
	" name VARCHAR(140) CHARACTER SET utf8mb4 PATH '$[2]',"
	" account VARCHAR(34) CHARACTER SET utf8mb4 PATH '$[3]',"
	" purpose VARCHAR(140) CHARACTER SET utf8mb4 PATH '$[4]')) j ORDER BY j.ord";
/* The batch is locked by this transaction: every request of it from the first id on is one
 * this import added, in input order (ids follow the SELECT's order). */
static const char SQL_IMPORTED[] =
	"SELECT id FROM payment_requests WHERE batch_id = ? AND org_id = ? AND id >= ? ORDER BY id";

static const char *const no_params[] = { NULL };

struct rows {
	struct jv **row;        /* each a request's create fields, as a JSON body would hold them */
	size_t n;
};

/* Renames the details recorded since `from` to requests[i].field. */
static void name_row(struct ctx *c, int from, size_t i)
{
	for (int d = from; d < c->ndetails; d++)
		c->details[d].key = arena_printf(c->a, "requests[%zu].%s", i, c->details[d].key);
}

/* Validates every row as a request's body; the fields of row i go to f[i]. */
static void validate_rows(struct ctx *c, const struct rows *rows, struct request_fields *f)
{
	struct jv *body = c->body;
	for (size_t i = 0; i < rows->n && c->ndetails < MAX_DETAILS; i++) {
		if (rows->row[i]->t != J_OBJ) {
			detail_str(c, arena_printf(c->a, "requests[%zu]", i), "must be an object");
			continue;
		}
		int from = c->ndetails;
		c->body = rows->row[i];
		request_fields_valid(c, &f[i]);
		name_row(c, from, i);
	}
	c->body = body;
}

/* {"requests": [...]}: its elements, checked for their number. */
static void json_rows(struct ctx *c, struct rows *out)
{
	static const char *const known[] = { "requests", NULL };
	const struct jv *v = json_get(c->body, "requests");
	v_no_unknown(c, known);
	if (!v || v->t == J_NULL)
		detail_str(c, "requests", "is required");
	else if (v->t != J_ARR)
		detail_str(c, "requests", "must be an array");
	else if (v->n < 1 || v->n > IMPORT_MAX)
		detail_str(c, "requests", arena_printf(c->a, "must hold 1 to %d requests", IMPORT_MAX));
	else
		*out = (struct rows){ v->v, v->n };
}

/* The header's columns: each a create field, none twice, the required ones all present.
 * col[k] is the field of column k. */
static void header(struct ctx *c, const struct csv_record *h, const char **col)
{
	static const char *const required[] = { "amount", "currency", "beneficiaryName",
		"beneficiaryAccount" };
	for (size_t k = 0; k < h->n; k++) {
		col[k] = NULL;
		for (const char *const *f = request_known_fields; *f && !col[k]; f++)
			if (strlen(*f) == h->len[k] && memcmp(*f, h->field[k], h->len[k]) == 0)
				col[k] = *f;
		for (size_t j = 0; col[k] && j < k; j++)
			if (col[j] == col[k])
				detail_str(c, "columns", arena_printf(c->a, "the column %s is repeated", col[k]));
		if (!col[k])
			detail_str(c, "columns", arena_printf(c->a, "unknown column %.*s: the columns are"
				" amount, currency, beneficiaryName, beneficiaryAccount and purpose",
				(int)(h->len[k] > 64 ? 64 : h->len[k]), h->field[k]));
	}
	for (size_t r = 0; r < sizeof required / sizeof *required; r++) {
		bool found = false;
		for (size_t k = 0; k < h->n; k++)
			found |= col[k] && strcmp(col[k], required[r]) == 0;
		if (!found)
			detail_str(c, "columns", arena_printf(c->a, "the column %s is missing", required[r]));
	}
}

/* A data record as the JSON object its row would be: each column's text a string member. */
static struct jv *record_object(struct ctx *c, const struct csv_record *r, const char **col)
{
	struct jv *o = arena_alloc(c->a, sizeof *o);
	*o = (struct jv){ .t = J_OBJ, .n = r->n };
	o->m = arena_alloc(c->a, r->n * sizeof *o->m);
	for (size_t k = 0; k < r->n; k++) {
		struct jv *s = arena_alloc(c->a, sizeof *s);
		*s = (struct jv){ .t = J_STR, .s = r->field[k], .len = r->len[k] };
		o->m[k] = (struct jmember){ col[k], strlen(col[k]), s };
	}
	return o;
}

/* A text/csv body (RFC 4180, UTF-8): its header, then one row per data record. */
static void csv_rows(struct ctx *c, struct rows *out)
{
	struct csv t;
	const char *err;
	size_t at;
	if (utf8_count(c->rq.body, c->rq.body_len) < 0) {
		detail_str(c, "requests", "the CSV must be UTF-8 text");
	} else if (csv_read(c->a, c->rq.body, c->rq.body_len, IMPORT_MAX + 1, &t, &err, &at) < 0) {
		detail_str(c, at == IMPORT_MAX + 1 ? "requests" : at ? arena_printf(c->a,
			"requests[%zu]", at - 1) : "columns", at == IMPORT_MAX + 1 ? arena_printf(c->a,
			"must hold 1 to %d requests", IMPORT_MAX) : err);
	} else if (t.n == 0) {
		detail_str(c, "requests", "is required: the CSV has no header row");
	}
	if (c->ndetails)
		return;
	const char **col = arena_alloc(c->a, t.rec[0].n * sizeof *col);
	header(c, &t.rec[0], col);
	if (t.n == 1)
		detail_str(c, "requests", arena_printf(c->a, "must hold 1 to %d requests", IMPORT_MAX));
	if (c->ndetails)
		return;
	out->row = arena_alloc(c->a, (t.n - 1) * sizeof *out->row);
	for (size_t i = 0; i + 1 < t.n && c->ndetails < MAX_DETAILS; i++) {
		if (t.rec[i + 1].n != t.rec[0].n)
			detail_str(c, arena_printf(c->a, "requests[%zu]", i), arena_printf(c->a,
				"has %zu fields: the header has %zu", t.rec[i + 1].n, t.rec[0].n));
		else
			out->row[out->n++] = record_object(c, &t.rec[i + 1], col);
	}
	if (c->ndetails)
		out->n = 0;
}

/* Inserts rows [from, from + n) in one statement; *first gets the first one's id. */
static int insert_chunk(struct ctx *c, long long batch, const struct request_fields *f,
	size_t n, long long *first)
{
	yajl_gen g = jw_new();
	jw_array(g, NULL);
	for (size_t i = 0; i < n; i++) {
		jw_array(g, NULL);
		jw_str(g, NULL, arena_printf(c->a, "%lld", (long long)f[i].amount));
		jw_str(g, NULL, f[i].currency);
		jw_str(g, NULL, f[i].name);
		jw_str(g, NULL, f[i].account);
		jw_str(g, NULL, f[i].purpose);
		jw_array_close(g);
	}
	jw_array_close(g);
	if (db_exec(c->db, SQL_IMPORT, "iiis", c->me.org_id, batch, c->me.user_id,
			jw_finish(c->a, g)) < 0)
		return HANDLER_DB_ERROR;
	if (!*first)
		*first = db_insert_id(c->db);
	return STEP_GO_ON;
}

/* Adds the rows, their audit events, and answers 201 with their ids in input order. */
static int add_all(struct ctx *c, long long batch, const struct request_fields *f, size_t n)
{
	long long first = 0;
	struct dbres r;
	int rc;
	for (size_t i = 0; i < n; i += IMPORT_CHUNK)
		if ((rc = insert_chunk(c, batch, f + i, n - i < IMPORT_CHUNK ? n - i : IMPORT_CHUNK,
				&first)))
			return rc;
	if (db_query(c->db, c->a, &r, SQL_IMPORTED, "iii", batch, c->me.org_id, first) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows != n) {
		db_set_error(c->db, DB_INTERNAL, "an import read back another number of requests");
		return HANDLER_DB_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		yajl_gen g = jw_new();
		jw_open(g, NULL);
		jw_id(g, "batchId", batch);
		request_fields_audit(g, &f[i]);
		jw_close(g);
		audit_add(c, "request.created", "request", db_i(&r, i, 0), jw_finish(c->a, g));
	}
	if ((rc = batch_touch(c, batch, false)))
		return rc;
	yajl_gen g = reply_data(c, 201);
	jw_open(g, NULL);
	jw_id(g, "batchId", batch);
	jw_int(g, "count", (long long)n);
	jw_array(g, "requestIds");
	for (size_t i = 0; i < n; i++)
		jw_id(g, NULL, db_i(&r, i, 0));
	jw_array_close(g);
	jw_close(g);
	return reply_done(c);
}

int h_requests_import(struct ctx *c)
{
	struct rows rows = { 0 };
	long long batch = param_id(c, 0);
	if (!batch)
		return reply_not_found(c);
	q_parse(c, no_params);
	if (c->rq.media == MT_CSV)
		csv_rows(c, &rows);
	else
		json_rows(c, &rows);
	struct request_fields *f = arena_alloc(c->a, (rows.n ? rows.n : 1) * sizeof *f);
	validate_rows(c, &rows, f);
	int rc = request_batch_ready(c, batch, (long long)rows.n);
	return rc ? rc : add_all(c, batch, f, rows.n);
}
