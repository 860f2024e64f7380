/* Recording and reading the makers of a request (see makers.h). */
#include "domain/makers.h"

#include "domain/handlers.h"

/* A bit set grows: a creator who later changes the request is both. Procedures with their
 * definer's rights (sql/migrations/0007): the pool's account may add makers but not UPDATE
 * request_makers, so it cannot move a maker to someone else. */
static const char SQL_MAKER_ADD[] = "CALL maker_add(?, ?, ?)";
static const char SQL_MAKERS_ADD_BATCH[] = "CALL makers_add_batch(?, ?)";
static const char SQL_MAKER_OF[] =
	"SELECT made FROM request_makers WHERE request_id = ? AND user_id = ? LOCK IN SHARE MODE";
enum { MO_MADE };

int maker_add(struct ctx *c, long long id, int made)
{
	return db_exec(c->db, SQL_MAKER_ADD, "iii", id, c->me.user_id, (long long)made) < 0
		? STEP_DB_ERROR : STEP_GO_ON;
}

int makers_add_batch(struct ctx *c, long long batch)
{
	return db_exec(c->db, SQL_MAKERS_ADD_BATCH, "ii", c->me.user_id, batch) < 0
		? STEP_DB_ERROR : STEP_GO_ON;
}

int maker_of(struct ctx *c, long long id)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_MAKER_OF, "ii", id, c->me.user_id) < 0)
		return -1;
	return r.nrows ? (int)db_i(&r, 0, MO_MADE) : 0;
}
