/* The pager: see page.h. */
#include "page.h"

#include <stdint.h>

#include "valid.h"

int page_begin(struct ctx *c, const char *const allowed[], const char *const statuses[],
	const char **status, struct page *p)
{
	long long cursor;
	q_parse(c, allowed);
	q_page(c, &p->limit, &cursor);
	if (statuses)
		*status = q_status(c, statuses);
	if (c->ndetails)
		return reply_validation(c);
	p->before = cursor ? cursor : INT64_MAX;
	p->fetch = (long long)p->limit + 1;
	return STEP_GO_ON;
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

int page_empty(struct ctx *c)
{
	reply_list(c);
	return reply_list_done(c, 0);
}
