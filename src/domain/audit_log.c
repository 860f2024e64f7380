/* The audit log as the API shows it (doc/openapi.yaml#Lifecycle, #paths); audit.c writes and verifies the chain. */
#include "domain/handlers.h"
#include "domain/repr.h"
#include "page.h"
#include "valid.h"

#define EVENT_FROM "SELECT " AUDIT_EVENT_COLUMNS " FROM audit_events WHERE org_id = ?"
/* The filters (API §10) bind '' or 0 when absent, so two static statements cover them all:
 * one for an object (its id is the most selective filter, indexes audit_object and
 * audit_type_object), one without. */
#define EVENT_FILTERS \
	" AND (? = '' OR object_type = ?) AND (? = 0 OR actor_id = ?) AND (? = '' OR action = ?)" \
	" AND id < ? ORDER BY id DESC LIMIT ?"
static const char SQL_EVENTS[] = EVENT_FROM EVENT_FILTERS;
static const char SQL_EVENTS_OBJECT[] = EVENT_FROM " AND object_id = ?" EVENT_FILTERS;

/* The values events carry (API §4, with v1.2's). */
static const char *const object_types[] = { "org", "user", "token", "session", "approval_rules",
	"batch", "request", "debtor_accounts", "payment_file", "webhook_endpoint", NULL };
static const char *const actions[] = { "org.created", "user.created", "user.updated",
	"user.invited", "user.password_set", "token.created", "token.revoked", "session.created",
	"session.ended", "approval_rules.replaced", "batch.created", "batch.submitted",
	"batch.cancelled", "batch.completed", "request.created", "request.updated",
	"request.deleted", "request.submitted", "request.approved", "request.rejected",
	"request.paid", "request.cancelled", "request.returned", "debtor_accounts.replaced",
	"payment_file.created", "payment_file.settled", "payment_file.voided",
	"payment_file.report_applied", "webhook_endpoint.created", "webhook_endpoint.deleted",
	"webhook_endpoint.disabled", NULL };

static const char *const event_cols[] = { "id", "at", "actorId", "action", "objectType",
	"objectId", "idempotencyKey", "correlationId", "data", "hash", "prevHash", "credential",
	NULL };

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
	jw_id(g, "id", db_i(r, i, AE_ID));
	jw_time(g, "at", db_s(r, i, AE_AT));
	jw_id(g, "actorId", db_i(r, i, AE_ACTOR));
	jw_str(g, "action", db_s(r, i, AE_ACTION));
	jw_str(g, "objectType", db_s(r, i, AE_TYPE));
	jw_id(g, "objectId", db_i(r, i, AE_OBJECT));
	jw_str(g, "idempotencyKey", db_s(r, i, AE_KEY));
	jw_str(g, "correlationId", db_s(r, i, AE_CORR));
	write_data(c, g, db_s(r, i, AE_DATA), db_len(r, i, AE_DATA));
	jw_str(g, "hash", db_s(r, i, AE_HASH));
	jw_str(g, "prevHash", db_s(r, i, AE_PREV));
	if (db_s(r, i, AE_CRED_KIND)) {   /* API §7 v1.2: who made the credential shows who really acted */
		jw_open(g, "credential");
		jw_str(g, "kind", db_s(r, i, AE_CRED_KIND));
		jw_id(g, "id", db_i(r, i, AE_CRED_ID));
		jw_id(g, "mintedBy", db_i(r, i, AE_CRED_MINTED));
		jw_close(g);
	} else {
		jw_null(g, "credential");
	}
	jw_close(g);
	return i + 1;
}

int h_audit_list(struct ctx *c)
{
	static const char *const allowed[] = { "objectId", "objectType", "actorId", "action",
		"limit", "cursor", NULL };
	struct page p;
	page_parse(c, allowed, NULL, NULL, &p);
	const char *type = q_one_of(c, "objectType", object_types, "is not a type of object");
	const char *action = q_one_of(c, "action", actions, "is not an action");
	if (c->ndetails)
		return reply_validation(c);
	bool csv = page_export(c, &p);
	/* Any id that is no object or user of this organisation simply matches nothing. */
	long long object = q_id(c, "objectId"), actor = q_id(c, "actorId");
	struct dbres r = { 0 };
	type = type ? type : "";
	action = action ? action : "";
	int rc = object < 0 || actor < 0 ? 0
		: object ? db_query(c->db, c->a, &r, SQL_EVENTS_OBJECT, "iissiissii", c->me.org_id,
			object, type, type, actor, actor, action, action, p.before, p.fetch)
		: db_query(c->db, c->a, &r, SQL_EVENTS, "issiissii", c->me.org_id, type, type, actor,
			actor, action, action, p.before, p.fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	return csv ? page_reply_csv(c, &p, &r, audit_event_item, event_cols, "audit.csv")
		: page_reply(c, &p, &r, audit_event_item);
}
