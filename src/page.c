/* The pager: see page.h. */
#include "page.h"

#include <stdint.h>
#include <string.h>

#include "csv.h"

#include "valid.h"

void write_columns(yajl_gen g, const struct dbres *r, size_t row, const struct column *cols)
{
	jw_open(g, NULL);
	for (const struct column *k = cols; k->name; k++) {
		if (k->kind == 'i')
			jw_id(g, k->name, db_i(r, row, k->col));
		else if (k->kind == 't')
			jw_time(g, k->name, db_s(r, row, k->col));
		else
			jw_str(g, k->name, db_s(r, row, k->col));
	}
	jw_close(g);
}

void page_parse(struct ctx *c, const char *const allowed[], const char *const statuses[],
	const char **status, struct page *p)
{
	long long cursor;
	q_parse(c, allowed);
	q_page(c, &p->limit, &cursor);
	if (statuses)
		*status = q_status(c, statuses);
	p->before = cursor ? cursor : INT64_MAX;
	p->fetch = (long long)p->limit + 1;
}

int page_begin_or_reply(struct ctx *c, const char *const allowed[], const char *const statuses[],
	const char **status, struct page *p)
{
	page_parse(c, allowed, statuses, status, p);
	return c->ndetails ? reply_validation(c) : STEP_GO_ON;
}

int page_reply(struct ctx *c, const struct page *p, const struct dbres *r, page_item_fn item)
{
	yajl_gen g = reply_list(c);
	long long last = 0;
	int n = 0;
	size_t i = 0;
	while (i < r->nrows && n < p->limit) {
		last = db_i(r, i, PAGE_ID);
		i = item(c, g, r, i);
		n++;
	}
	return reply_list_done(c, i < r->nrows ? last : 0);
}

int page_list_reply(struct ctx *c, const char *sql, long long owner, page_item_fn item)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	struct page p;
	struct dbres r;
	int rc = page_begin_or_reply(c, allowed, NULL, NULL, &p);
	if (rc != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, sql, "iii", owner, p.before, p.fetch) < 0)
		return STEP_DB_ERROR;
	return page_reply(c, &p, &r, item);
}

int page_empty_reply(struct ctx *c)
{
	reply_list(c);
	return reply_list_done(c, 0);
}

bool page_export(struct ctx *c, struct page *p)
{
	if (!http_wants_csv(c))
		return false;
	p->before = INT64_MAX;
	p->limit = CSV_MAX_ROWS;
	p->fetch = CSV_MAX_ROWS + 1;
	return true;
}

/* The items are written as the JSON list every client gets, then read back as CSV: one
 * representation per resource, so the CSV can never say other than the JSON does. */
int page_reply_csv(struct ctx *c, const struct page *p, const struct dbres *r, page_item_fn item,
	const char *const cols[], const char *filename)
{
	if (r->nrows > CSV_MAX_ROWS) {
		detail_str(c, "filters", "match more than 100000 rows: narrow them");
		return reply_validation(c);
	}
	page_reply(c, p, r, item);
	const unsigned char *text;
	size_t len;
	struct jv *doc;
	yajl_gen_get_buf(c->rs.gen, &text, &len);
	if (json_parse(c->a, (const char *)text, len, &doc) < 0)
		return http_reset_response(c), reply_error(c, 500, "INTERNAL_ERROR", "internal error");
	struct jv *items = json_get(doc, "data");
	struct csv w;
	csv_init(&w, c->a);
	for (const char *const *k = cols; *k; k++)
		csv_field(&w, *k, strlen(*k));
	csv_row_end(&w);
	for (size_t i = 0; i < items->n; i++) {
		for (const char *const *k = cols; *k; k++)
			csv_json_field(&w, json_get(items->v[i], *k));
		csv_row_end(&w);
	}
	c->rs.body = w.buf;
	c->rs.body_len = w.len;
	c->rs.content_type = "text/csv; charset=utf-8";
	c->rs.attachment = filename;
	return c->rs.status;
}
