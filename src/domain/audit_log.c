/* The audit log as the API shows it (doc/openapi.yaml#Lifecycle, #paths); audit.c writes and verifies the chain. */
#include "domain/handlers.h"
#include "domain/repr.h"
#include "page.h"
#include "valid.h"

#define EVENT_FROM "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events WHERE org_id = ?"
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

size_t audit_event_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, 0));
	jw_time(g, "at", db_s(r, i, 1));
	jw_id(g, "actorId", db_i(r, i, 2));
	jw_str(g, "action", db_s(r, i, 3));
	jw_str(g, "objectType", db_s(r, i, 4));
	jw_id(g, "objectId", db_i(r, i, 5));
	jw_str(g, "idempotencyKey", db_s(r, i, 6));
	jw_str(g, "correlationId", db_s(r, i, 7));
	write_data(c, g, db_s(r, i, 8), db_len(r, i, 8));
	jw_str(g, "hash", db_s(r, i, 9));
	jw_str(g, "prevHash", db_s(r, i, 10));
	jw_close(g);
	return i + 1;
}

int h_audit_list(struct ctx *c)
{
	static const char *const allowed[] = { "objectId", "limit", "cursor", NULL };
	struct page p;
	int rc = page_begin(c, allowed, NULL, NULL, &p);
	if (rc != STEP_GO_ON)
		return rc;
	/* Any objectId that is no object of this organisation simply matches nothing. */
	long long object = q_id(c, "objectId");
	if (object < 0)
		return page_empty(c);
	struct dbres r;
	rc = object
		? db_query(c->db, c->a, &r, SQL_EVENTS_OBJECT, "iiii", c->me.org_id, object, p.before,
			p.fetch)
		: db_query(c->db, c->a, &r, SQL_EVENTS, "iii", c->me.org_id, p.before, p.fetch);
	if (rc < 0)
		return HANDLER_DB_ERROR;
	return page_reply(c, &p, &r, audit_event_item);
}
