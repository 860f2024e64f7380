/* Signals: see signals.h. */
#include "domain/signals.h"

#include <string.h>

const char *const signal_codes[] = { "ACCOUNT_CHANGED", "DUPLICATE", "NEW_BENEFICIARY", NULL };

/* The page's ids arrive as one JSON array, so the statement's text stays static whatever
 * the page's size (the db layer caches statements by address). `x` is the page's requests
 * that may carry signals. A request can have thousands of twins (an import of identical
 * refunds, or a benchmark's), so DUPLICATE never joins them all: `dup` walks each request's
 * twins in id order, one index probe a step (the index of migration 0013 holds the twins of
 * a request in id order, with the window and status beside), and stops at ten. The other
 * two parts join (ROW_NUMBER keeps the ten lowest ids of ACCOUNT_CHANGED). Each part names
 * its index: left to choose, the optimizer walked a request's twins through the currency's
 * index (every request in that currency) and turned NOT EXISTS into a scan of every PAID
 * request of every organisation, both costs that grow with the table. NEW_BENEFICIARY is
 * a scalar subquery, which stays one probe per request. */
#define SIGNAL_NEXT_TWIN(after) \
	"(SELECT o.id FROM payment_requests o FORCE INDEX (requests_duplicate)" \
	" WHERE " SIGNAL_DUPLICATE("x") after \
	" ORDER BY o.id LIMIT 1)"
static const char SQL_SIGNALS[] =
	"WITH RECURSIVE x AS (SELECT p.id, p.org_id, p.beneficiary_account, p.currency,"
	" p.amount, p.created_at, p.name_key"
	" FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) j"
	" JOIN payment_requests p ON p.id = j.id AND p.org_id = ?"
	" AND p.status IN " SIGNAL_STATUSES "),"
	" dup (id, other, n) AS ("
	"SELECT x.id, " SIGNAL_NEXT_TWIN("") ", 1 FROM x"
	" UNION ALL SELECT x.id, " SIGNAL_NEXT_TWIN(" AND o.id > d.other") ", d.n + 1"
	" FROM dup d JOIN x ON x.id = d.id WHERE d.other IS NOT NULL AND d.n < 10)"
	" SELECT id, code, other FROM ("
	"SELECT id, 'DUPLICATE' AS code, other FROM dup WHERE other IS NOT NULL"
	" UNION ALL SELECT id, code, other FROM (SELECT x.id AS id, 'ACCOUNT_CHANGED' AS code,"
	" o.id AS other, ROW_NUMBER() OVER (PARTITION BY x.id ORDER BY o.id) AS n"
	" FROM x JOIN payment_requests o FORCE INDEX (requests_name_status)"
	" ON " SIGNAL_ACCOUNT_CHANGED("x") ") a WHERE n <= 10"
	" UNION ALL SELECT x.id, 'NEW_BENEFICIARY', NULL FROM x"
	" WHERE (SELECT 1 FROM payment_requests o FORCE INDEX (requests_account_status)"
	" WHERE " SIGNAL_PAID_ACCOUNT("x") " LIMIT 1) IS NULL"
	") s ORDER BY id, code, other";
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
	return db_query(c->db, c->a, &s->res, SQL_SIGNALS, "Si", ids, len, org);
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
