/* Signals: see signals.h. */
#include "domain/signals.h"

#include <string.h>

const char *const signal_codes[] = { "ACCOUNT_CHANGED", "DUPLICATE", "NEW_BENEFICIARY", NULL };

/* The page's ids arrive as one JSON array, so the statement's text stays static whatever
 * the page's size (the db layer caches statements by address). Each part joins the page's
 * requests that may carry signals to the rows that make them; ROW_NUMBER keeps the ten
 * lowest ids of each signal. */
#define SIGNAL_TARGETS \
	" FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j" \
	" JOIN payment_requests x ON x.id = j.id AND x.org_id = ?" \
	" AND x.status IN " SIGNAL_STATUSES
static const char SQL_SIGNALS[] =
	"SELECT id, code, other FROM (SELECT s.*, ROW_NUMBER() OVER"
	" (PARTITION BY s.id, s.code ORDER BY s.other) AS n FROM ("
	"SELECT x.id AS id, 'ACCOUNT_CHANGED' AS code, o.id AS other" SIGNAL_TARGETS
	" JOIN payment_requests o ON " SIGNAL_ACCOUNT_CHANGED("x")
	" UNION ALL SELECT x.id, 'DUPLICATE', o.id" SIGNAL_TARGETS
	" JOIN payment_requests o ON " SIGNAL_DUPLICATE("x")
	" UNION ALL SELECT x.id, 'NEW_BENEFICIARY', NULL" SIGNAL_TARGETS
	" WHERE NOT EXISTS (SELECT 1 FROM payment_requests o WHERE " SIGNAL_PAID_ACCOUNT("x") ")"
	") s) t WHERE n <= 10 ORDER BY id, code, other";
enum { SG_ID, SG_CODE, SG_OTHER };

int signals_load(struct ctx *c, const struct dbres *rows, struct signals *s)
{
	memset(s, 0, sizeof *s);
	if (rows->nrows == 0)
		return 0;
	size_t cap = 2 + rows->nrows * 21, len = 0;
	char *ids = arena_alloc(c->a, cap);
	ids[len++] = '[';
	for (size_t i = 0; i < rows->nrows; i++) {
		const char *id = db_s(rows, i, SIGNALS_ROW_ID);
		size_t n = strlen(id);
		if (len > 1)
			ids[len++] = ',';
		memcpy(ids + len, id, n);
		len += n;
	}
	ids[len++] = ']';
	long long org = c->me.org_id;
	return db_query(c->db, c->a, &s->res, SQL_SIGNALS, "SiSiSi", ids, len, org, ids, len, org,
		ids, len, org);
}

/* The first row of request `id`, by binary search (rows are sorted by id), or nrows. */
static size_t first_row(const struct dbres *r, long long id)
{
	size_t lo = 0, hi = r->nrows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (db_i(r, mid, SG_ID) < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void signals_write(yajl_gen g, const struct signals *s, long long id)
{
	const struct dbres *r = &s->res;
	size_t i = first_row(r, id);
	jw_array(g, "signals");
	while (i < r->nrows && db_i(r, i, SG_ID) == id) {
		const char *code = db_s(r, i, SG_CODE);
		jw_open(g, NULL);
		jw_str(g, "code", code);
		jw_array(g, "requestIds");
		for (; i < r->nrows && db_i(r, i, SG_ID) == id &&
		       strcmp(db_s(r, i, SG_CODE), code) == 0; i++)
			if (db_s(r, i, SG_OTHER))
				jw_id(g, NULL, db_i(r, i, SG_OTHER));
		jw_array_close(g);
		jw_close(g);
	}
	jw_array_close(g);
}
