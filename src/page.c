/* The pager: see page.h. */
#include "page.h"

#include <stdint.h>

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

int page_begin(struct ctx *c, const char *const allowed[], const char *const statuses[],
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
		last = db_i(r, i, 0);
		i = item(c, g, r, i);
		n++;
	}
	return reply_list_done(c, i < r->nrows ? last : 0);
}

int page_list(struct ctx *c, const char *sql, long long owner, page_item_fn item)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	struct page p;
	struct dbres r;
	int rc = page_begin(c, allowed, NULL, NULL, &p);
	if (rc != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, sql, "iii", owner, p.before, p.fetch) < 0)
		return HANDLER_DB_ERROR;
	return page_reply(c, &p, &r, item);
}

int page_empty(struct ctx *c)
{
	reply_list(c);
	return reply_list_done(c, 0);
}
