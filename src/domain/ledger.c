/* The ledger (doc/openapi.yaml#Lifecycle, #paths): its entries, and balances per currency. */
#include "domain/handlers.h"
#include "domain/repr.h"
#include "page.h"
#include "valid.h"

#define ENTRY_FROM \
	"SELECT l.id, l.request_id, l.batch_id, l.type, l.amount, l.currency, l.created_at," \
	" cu.minor_unit FROM ledger_entries l JOIN currencies cu ON cu.code = l.currency" \
	" WHERE l.org_id = ?"
enum { E_ID, E_REQUEST, E_BATCH, E_TYPE, E_AMOUNT, E_CURRENCY, E_CREATED_AT, E_MINOR };
static const char SQL_ENTRIES[] = ENTRY_FROM " AND l.id < ? ORDER BY l.id DESC LIMIT ?";
static const char SQL_ENTRIES_REQUEST[] =
	ENTRY_FROM " AND l.request_id = ? AND l.id < ? ORDER BY l.id DESC LIMIT ?";
/* Sums stay in SQL (DECIMAL), so no balance can overflow on its way to the client. */
static const char SQL_BALANCES[] =
	"SELECT l.currency, cu.minor_unit,"
	" SUM(CASE WHEN l.type = 'OBLIGATION' THEN l.amount ELSE 0 END),"
	" SUM(CASE WHEN l.type = 'SETTLEMENT' THEN l.amount ELSE 0 END),"
	" SUM(CASE WHEN l.type = 'OBLIGATION' THEN l.amount ELSE -l.amount END)"
	" FROM ledger_entries l JOIN currencies cu ON cu.code = l.currency"
	" WHERE l.org_id = ? GROUP BY l.currency, cu.minor_unit ORDER BY l.currency";
enum { BAL_CURRENCY, BAL_MINOR, BAL_OBLIGATED, BAL_SETTLED, BAL_OUTSTANDING };


static const char *const entry_cols[] = { "id", "requestId", "batchId", "type", "amount",
	"currency", "createdAt", NULL };

static size_t entry_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	char money[MONEY_FMT_MAX];
	money_format(db_i(r, i, E_AMOUNT), (int)db_i(r, i, E_MINOR), money);
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, E_ID));
	jw_id(g, "requestId", db_i(r, i, E_REQUEST));
	jw_id(g, "batchId", db_i(r, i, E_BATCH));
	jw_str(g, "type", db_s(r, i, E_TYPE));
	jw_str(g, "amount", money);
	jw_str(g, "currency", db_s(r, i, E_CURRENCY));
	jw_time(g, "createdAt", db_s(r, i, E_CREATED_AT));
	jw_close(g);
	return i + 1;
}

int h_ledger_entries(struct ctx *c)
{
	static const char *const allowed[] = { "requestId", "limit", "cursor", NULL };
	struct page p;
	int rc = page_begin_or_reply(c, allowed, NULL, NULL, &p);
	if (rc != STEP_GO_ON)
		return rc;
	bool csv = page_export(c, &p);
	/* Any requestId that is no request of this organisation simply matches nothing. */
	long long request = q_id(c, "requestId");
	struct dbres r = { 0 };
	rc = request < 0 ? 0
		: request ? db_query(c->db, c->a, &r, SQL_ENTRIES_REQUEST, "iiii", c->me.org_id,
			request, p.before, p.fetch)
		: db_query(c->db, c->a, &r, SQL_ENTRIES, "iii", c->me.org_id, p.before, p.fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	return csv ? page_reply_csv(c, &p, &r, entry_item, entry_cols, "ledger-entries.csv")
		: page_reply(c, &p, &r, entry_item);
}

/* One entry per currency the organisation's ledger holds: a short list, never paged, so
 * nextCursor is always null. */
int h_ledger_balances(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_BALANCES, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = reply_list(c);
	for (size_t i = 0; i < r.nrows; i++) {
		int minor = (int)db_i(&r, i, BAL_MINOR);
		jw_open(g, NULL);
		jw_str(g, "currency", db_s(&r, i, BAL_CURRENCY));
		jw_str(g, "obligated", decimal_minor(c->a, db_s(&r, i, BAL_OBLIGATED), minor));
		jw_str(g, "settled", decimal_minor(c->a, db_s(&r, i, BAL_SETTLED), minor));
		jw_str(g, "outstanding", decimal_minor(c->a, db_s(&r, i, BAL_OUTSTANDING), minor));
		jw_close(g);
	}
	return reply_list_done(c, 0);
}
