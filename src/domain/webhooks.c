/* Webhook endpoints (API §12, doc/openapi.yaml#paths): what an ADMIN registers; `remit
 * deliver` (src/deliver.c) sends the organisation's audit events to them. */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "page.h"
#include "valid.h"
#include "webhook.h"

#define MAX_EVENTS 50
#define ACTION_MAX 40

#define ENDPOINT_COLUMNS "id, url, events, description, active, created_at"
enum { EP_ID, EP_URL, EP_EVENTS, EP_DESC, EP_ACTIVE, EP_CREATED_AT };
static const char SQL_ENDPOINT[] = "SELECT " ENDPOINT_COLUMNS
	" FROM webhook_endpoints WHERE id = ? AND org_id = ? AND deleted = 0";
static const char SQL_ENDPOINTS[] = "SELECT " ENDPOINT_COLUMNS
	" FROM webhook_endpoints WHERE org_id = ? AND deleted = 0 AND id < ? ORDER BY id DESC LIMIT ?";
static const char SQL_ENDPOINT_LOCK[] =
	"SELECT deleted FROM webhook_endpoints WHERE id = ? FOR UPDATE";
enum { EL_DELETED };
static const char SQL_ENDPOINT_DELETE[] =
	"UPDATE webhook_endpoints SET deleted = 1, active = 0 WHERE id = ?";
/* From the chain's current head on: an endpoint hears what happens after it exists. */
static const char SQL_ENDPOINT_INSERT[] =
	"INSERT INTO webhook_endpoints (org_id, url, events, description, secret, created_by,"
	" cursor_seq) SELECT ?, ?, ?, ?, ?, ?, seq FROM audit_heads WHERE org_id = ?";
static const char SQL_DELIVERIES[] =
	"SELECT id, event_id, attempt, status, error, at, duration_ms FROM webhook_deliveries"
	" WHERE endpoint_id = ? AND id < ? ORDER BY id DESC LIMIT ?";
enum { DL_ID, DL_EVENT, DL_ATTEMPT, DL_STATUS, DL_ERROR, DL_AT, DL_DURATION_MS };

/* An audit action's name: lower-case words joined by '.' or '_' ("batch.submitted"). */
static bool action_ok(const char *s, size_t n)
{
	if (n == 0 || n > ACTION_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || (s[i] == '.' && s[i - 1] != '.')))
			return false;
	return true;
}

/* `events` → "a,b,c" (or "*"), as stored. NULL with the problem recorded. */
static const char *v_events(struct ctx *c)
{
	const struct jv *list = json_get(c->body, "events");
	if (!list || list->t == J_NULL) {
		detail_str(c, "events", "is required");
		return NULL;
	}
	if (list->t != J_ARR || list->n == 0 || list->n > MAX_EVENTS) {
		detail_str(c, "events", "must be an array of 1 to 50 audit action names, or [\"*\"]");
		return NULL;
	}
	char *out = arena_alloc(c->a, list->n * (ACTION_MAX + 1) + 1), *w = out;
	for (size_t i = 0; i < list->n; i++) {
		const struct jv *e = list->v[i];
		bool star = e->t == J_STR && e->len == 1 && e->s[0] == '*';
		if (e->t != J_STR || (star ? list->n != 1 : !action_ok(e->s, e->len))) {
			detail_str(c, arena_printf(c->a, "events[%zu]", i),
				"must be an audit action name such as \"batch.submitted\", or \"*\" alone");
			return NULL;
		}
		if (i)
			*w++ = ',';
		memcpy(w, e->s, e->len);
		w += e->len;
	}
	*w = '\0';
	return out;
}

static void write_events(yajl_gen g, const char *events)
{
	jw_array(g, "events");
	while (*events) {
		size_t n = strcspn(events, ",");
		jw_strn(g, NULL, events, n);
		events += n + (events[n] == ',');
	}
	jw_array_close(g);
}

/* {id, url, events, description, active, createdAt} from a row of ENDPOINT_COLUMNS; the
 * secret only where `secret` is given (the POST). */
static void write_endpoint(yajl_gen g, const struct dbres *r, size_t i, const char *secret)
{
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, EP_ID));
	jw_str(g, "url", db_s(r, i, EP_URL));
	write_events(g, db_s(r, i, EP_EVENTS));
	jw_str(g, "description", db_s(r, i, EP_DESC));
	jw_bool(g, "active", db_i(r, i, EP_ACTIVE) != 0);
	jw_time(g, "createdAt", db_s(r, i, EP_CREATED_AT));
	if (secret)
		jw_str(g, "secret", secret);
	jw_close(g);
}

static size_t endpoint_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	(void)c;
	write_endpoint(g, r, i, NULL);
	return i + 1;
}

int h_webhooks_create(struct ctx *c)
{
	static const char *const known[] = { "url", "events", "description", NULL };
	static const char *const none[] = { NULL };
	const char *url = NULL, *description = "", *why;
	q_parse(c, none);
	if (v_text(c, "url", true, 1, WEBHOOK_URL_MAX, &url) == V_OK &&
	    (why = webhook_url_problem(url, c->cfg->webhook_allow_http)))
		detail_str(c, "url", why);
	const char *events = v_events(c);
	v_text(c, "description", false, 0, 500, &description);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	char secret[WEBHOOK_SECRET_LEN + 1];
	webhook_secret_new(secret);
	struct dbres r;
	if (db_exec(c->db, SQL_ENDPOINT_INSERT, "issssii", c->me.org_id, url, events,
			description ? description : "", secret, c->me.user_id, c->me.org_id) < 0)
		return STEP_DB_ERROR;
	long long id = db_insert_id(c->db);
	if (db_query(c->db, c->a, &r, SQL_ENDPOINT, "ii", id, c->me.org_id) < 0 || r.nrows != 1)
		return STEP_DB_ERROR;
	/* The event names the endpoint, never its secret. */
	yajl_gen e = jw_new();
	write_endpoint(e, &r, 0, NULL);
	audit_add(c, "webhook_endpoint.created", "webhook_endpoint", id, jw_finish(c->a, e));
	write_endpoint(reply_data(c, 201), &r, 0, secret);
	return reply_done(c);
}

int h_webhooks_list(struct ctx *c)
{
	return page_list_reply(c, SQL_ENDPOINTS, c->me.org_id, endpoint_item);
}

/* The route's endpoint of the caller's organisation, for a request that takes no query:
 * STEP_GO_ON with its row in *r, or the reply's status. */
static int find_endpoint_or_reply(struct ctx *c, struct dbres *r, long long *id)
{
	static const char *const none[] = { NULL };
	int rc = find_param_or_reply(c, r, SQL_ENDPOINT, id);
	if (rc != STEP_GO_ON)
		return rc;
	q_parse(c, none);
	return c->ndetails ? reply_validation(c) : STEP_GO_ON;
}

int h_webhooks_get(struct ctx *c)
{
	long long id;
	struct dbres r;
	int rc;
	if ((rc = find_endpoint_or_reply(c, &r, &id)) != STEP_GO_ON)
		return rc;
	write_endpoint(reply_data(c, 200), &r, 0, NULL);
	return reply_done(c);
}

/* Deleted for good: the row stays (its deliveries name it) but no one sees or calls it. */
int h_webhooks_delete(struct ctx *c)
{
	long long id;
	struct dbres r;
	int rc;
	if ((rc = find_endpoint_or_reply(c, &r, &id)) != STEP_GO_ON)
		return rc;
	/* Waits for a deliverer sending to it: after the 204, nothing more is sent. */
	if (db_query(c->db, c->a, &r, SQL_ENDPOINT_LOCK, "i", id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0 || db_i(&r, 0, EL_DELETED))
		return reply_not_found(c);
	if (db_exec(c->db, SQL_ENDPOINT_DELETE, "i", id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "webhook_endpoint.deleted", "webhook_endpoint", id, "{}");
	return reply_empty(c, 204);
}

static size_t delivery_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	(void)c;
	jw_open(g, NULL);
	jw_id(g, "eventId", db_i(r, i, DL_EVENT));
	jw_int(g, "attempt", db_i(r, i, DL_ATTEMPT));
	if (db_s(r, i, DL_STATUS))
		jw_int(g, "status", db_i(r, i, DL_STATUS));
	else
		jw_null(g, "status");
	jw_str(g, "error", db_s(r, i, DL_ERROR));
	jw_time(g, "at", db_s(r, i, DL_AT));
	jw_int(g, "durationMs", db_i(r, i, DL_DURATION_MS));
	jw_close(g);
	return i + 1;
}

int h_webhooks_deliveries(struct ctx *c)
{
	long long id;
	struct dbres r;
	int rc;
	if ((rc = find_param_or_reply(c, &r, SQL_ENDPOINT, &id)) != STEP_GO_ON)
		return rc;
	return page_list_reply(c, SQL_DELIVERIES, id, delivery_item);
}
