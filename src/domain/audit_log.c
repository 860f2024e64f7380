/* The audit log as the API shows it (doc/openapi.yaml#Lifecycle, #paths); audit.c writes and verifies the chain. */
#include "domain/handlers.h"
#include "valid.h"

#define EVENT_FROM \
	"SELECT id, at, actor_id, action, object_type, object_id, idempotency_key, correlation_id," \
	" data, hash, prev_hash FROM audit_events WHERE org_id = ?"
static const char SQL_EVENTS[] = EVENT_FROM " AND id < ? ORDER BY id DESC LIMIT ?";
static const char SQL_EVENTS_OBJECT[] =
	EVENT_FROM " AND object_id = ? AND id < ? ORDER BY id DESC LIMIT ?";

/* `data` is the JSON text the event was written with: nested as an object, not a string. */
static void write_data(struct ctx *c, yajl_gen g, const char *text, size_t len)
{
	struct jv *v;
	if (text && json_parse(c->a, text, len, &v) == 0) {
		jw_key(g, "data");
		json_write(g, v);
	} else {
		jw_null(g, "data");
	}
}

int h_audit_list(struct ctx *c)
{
	static const char *const allowed[] = { "objectId", "limit", "cursor", NULL };
	int limit;
	long long cursor;
	q_parse(c, allowed);
	q_page(c, &limit, &cursor);
	if (c->ndetails)
		return reply_validation(c);
	/* Any objectId that is no object of this organisation simply matches nothing. */
	long long object = q_id(c, "objectId");
	if (object < 0) {
		reply_list(c);
		return reply_list_done(c, 0);
	}
	long long before = cursor ? cursor : INT64_MAX;
	struct dbres r;
	int rc = object
		? db_query(c->db, c->a, &r, SQL_EVENTS_OBJECT, "iiii", c->me.org_id, object, before,
			(long long)limit + 1)
		: db_query(c->db, c->a, &r, SQL_EVENTS, "iii", c->me.org_id, before,
			(long long)limit + 1);
	if (rc < 0)
		return HANDLER_DB_ERROR;
	yajl_gen g = reply_list(c);
	size_t n = page_len(&r, limit);
	for (size_t i = 0; i < n; i++) {
		jw_open(g, NULL);
		jw_id(g, "id", db_i(&r, i, 0));
		jw_time(g, "at", db_s(&r, i, 1));
		jw_id(g, "actorId", db_i(&r, i, 2));
		jw_str(g, "action", db_s(&r, i, 3));
		jw_str(g, "objectType", db_s(&r, i, 4));
		jw_id(g, "objectId", db_i(&r, i, 5));
		jw_str(g, "idempotencyKey", db_s(&r, i, 6));
		jw_str(g, "correlationId", db_s(&r, i, 7));
		write_data(c, g, db_s(&r, i, 8), db_len(&r, i, 8));
		jw_str(g, "hash", db_s(&r, i, 9));
		jw_str(g, "prevHash", db_s(&r, i, 10));
		jw_close(g);
	}
	return reply_list_done(c, page_next(&r, n));
}
