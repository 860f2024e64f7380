#include "router.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "domain/handlers.h"
#include "headers.h"
#include "idem.h"
#include "metrics.h"
#include "tx.h"
#include "valid.h"

enum {
	R_TX = 1,    /* a mutation: runs in one transaction, retried on deadlock */
	R_IDEM = 2,  /* needs an Idempotency-Key, claimed in that transaction */
	R_BODY = 4,  /* reads a JSON body, but runs its own transactions (sign-in) */
	/* A body other than JSON up to remit.conf's max_body (API §1): the row of bodies[]. */
	B_IMPORT = 1 << 8,
	B_DECISIONS = 2 << 8,
	B_REPORTS = 3 << 8,
	B_MASK = 15 << 8,
	ROLE_NONE = 0,   /* no token needed */
	ROLE_ANY = 31,   /* any authenticated user */
};

/* The bodies a route takes, by its flags' B_ bits: JSON up to remit.conf's max_body unless
 * a row here names other media types (enum media, http.h) or a limit of its own (API §1),
 * each with an nginx location raising client_max_body_size to match (nginx/remit.conf.in). */
static const struct body {
	unsigned media;
	long max;   /* bytes */
} bodies[] = {
	[B_IMPORT >> 8] = { MT_JSON | MT_CSV, 2L << 20 },
	[B_DECISIONS >> 8] = { MT_JSON, 256L << 10 },
	[B_REPORTS >> 8] = { MT_XML, 5L << 20 },
};

static const struct route {
	const char *method, *pattern;
	handler_fn handler;
	unsigned roles;
	unsigned flags;
} routes[] = {
	{ "GET",    "/healthz",                          h_healthz,           ROLE_NONE,      0 },
	{ "GET",    "/metrics",                          h_metrics,           ROLE_NONE,      0 },
	{ "GET",    "/api/v1/me",                        h_me,                ROLE_ANY,       0 },
	{ "POST",   "/api/v1/users",                     h_users_create,      ROLE_ADMIN,     R_TX | R_IDEM },
	{ "GET",    "/api/v1/users",                     h_users_list,        ROLE_ADMIN,     0 },
	{ "GET",    "/api/v1/members",                   h_members_list,      ROLE_ANY,       0 },
	{ "POST",   "/api/v1/users/{}/tokens",           h_tokens_create,     ROLE_ADMIN,     R_TX },
	{ "DELETE", "/api/v1/tokens/{}",                 h_tokens_revoke,     ROLE_ANY,       R_TX },
	{ "PATCH",  "/api/v1/users/{}",                  h_users_patch,       ROLE_ADMIN,     R_TX },
	{ "POST",   "/api/v1/users/{}/invitations",      h_invitations_create, ROLE_ADMIN,    R_TX },
	{ "POST",   "/api/v1/invitations/accept",        h_invitations_accept, ROLE_NONE,     R_TX },
	{ "POST",   "/api/v1/sessions",                  h_sessions_create,   ROLE_NONE,      R_BODY },
	{ "DELETE", "/api/v1/sessions/current",          h_sessions_end,      ROLE_ANY,       R_TX },
	{ "POST",   "/api/v1/me/tokens",                 h_me_tokens_create,  ROLE_ANY,       R_TX },
	{ "GET",    "/api/v1/me/tokens",                 h_me_tokens_list,    ROLE_ANY,       0 },
	{ "GET",    "/api/v1/approval-rules",            h_rules_get,         ROLE_ANY,       0 },
	{ "PUT",    "/api/v1/approval-rules",            h_rules_put,         ROLE_ADMIN,     R_TX },
	{ "POST",   "/api/v1/batches",                   h_batches_create,    ROLE_CREATOR,   R_TX | R_IDEM },
	{ "GET",    "/api/v1/batches",                   h_batches_list,      ROLE_ANY,       0 },
	{ "GET",    "/api/v1/batches/{}",                h_batches_get,       ROLE_ANY,       0 },
	{ "POST",   "/api/v1/batches/{}/requests",       h_requests_create,   ROLE_CREATOR,   R_TX | R_IDEM },
	{ "GET",    "/api/v1/batches/{}/requests",       h_requests_list,     ROLE_ANY,       0 },
	{ "POST",   "/api/v1/batches/{}/requests/import", h_requests_import,  ROLE_CREATOR,   R_TX | R_IDEM | B_IMPORT },
	{ "POST",   "/api/v1/batches/{}/submit",         h_batches_submit,    ROLE_CREATOR,   R_TX | R_IDEM },
	{ "POST",   "/api/v1/batches/{}/cancel",         h_batches_cancel,    ROLE_CREATOR,   R_TX | R_IDEM },
	{ "GET",    "/api/v1/requests",                  h_requests_queue,    ROLE_ANY,       0 },
	{ "GET",    "/api/v1/requests/{}",               h_requests_get,      ROLE_ANY,       0 },
	{ "PATCH",  "/api/v1/requests/{}",               h_requests_patch,    ROLE_CREATOR,   R_TX },
	{ "DELETE", "/api/v1/requests/{}",               h_requests_delete,   ROLE_CREATOR,   R_TX },
	{ "POST",   "/api/v1/requests/{}/approve",       h_requests_approve,  ROLE_APPROVER,  R_TX | R_IDEM },
	{ "POST",   "/api/v1/requests/{}/reject",        h_requests_reject,   ROLE_APPROVER,  R_TX | R_IDEM },
	{ "POST",   "/api/v1/requests/{}/mark-paid",     h_requests_mark_paid, ROLE_TREASURER, R_TX | R_IDEM },
	{ "GET",    "/api/v1/requests/{}/approvals",     h_approvals_list,    ROLE_ANY,       0 },
	{ "POST",   "/api/v1/decisions",                 h_decisions,         ROLE_APPROVER,  R_TX | R_IDEM | B_DECISIONS },
	{ "GET",    "/api/v1/ledger/entries",            h_ledger_entries,    ROLE_ANY,       0 },
	{ "GET",    "/api/v1/ledger/balances",           h_ledger_balances,   ROLE_ANY,       0 },
	{ "GET",    "/api/v1/audit",                     h_audit_list,        ROLE_ANY,       0 },
	{ "GET",    "/api/v1/debtor-accounts",           h_debtor_accounts_get, ROLE_ANY,     0 },
	{ "PUT",    "/api/v1/debtor-accounts",           h_debtor_accounts_put, ROLE_ADMIN,   R_TX },
	{ "POST",   "/api/v1/payment-files",             h_payment_files_create, ROLE_TREASURER, R_TX | R_IDEM },
	{ "GET",    "/api/v1/payment-files",             h_payment_files_list, ROLE_ANY,      0 },
	{ "GET",    "/api/v1/payment-files/{}",          h_payment_files_get, ROLE_ANY,       0 },
	{ "GET",    "/api/v1/payment-files/{}/pain.001", h_payment_files_pain001, ROLE_ANY,   0 },
	{ "GET",    "/api/v1/payment-files/{}/csv",      h_payment_files_csv, ROLE_ANY,       0 },
	{ "POST",   "/api/v1/payment-files/{}/confirm",  h_payment_files_confirm, ROLE_TREASURER, R_TX | R_IDEM },
	{ "POST",   "/api/v1/payment-files/{}/void",     h_payment_files_void, ROLE_TREASURER, R_TX | R_IDEM },
	{ "POST",   "/api/v1/webhook-endpoints",         h_webhooks_create,   ROLE_ADMIN,     R_TX },
	{ "GET",    "/api/v1/webhook-endpoints",         h_webhooks_list,     ROLE_ADMIN,     0 },
	{ "GET",    "/api/v1/webhook-endpoints/{}",      h_webhooks_get,      ROLE_ADMIN,     0 },
	{ "DELETE", "/api/v1/webhook-endpoints/{}",      h_webhooks_delete,   ROLE_ADMIN,     R_TX },
	{ "GET",    "/api/v1/webhook-endpoints/{}/deliveries", h_webhooks_deliveries, ROLE_ADMIN, 0 },
	{ "POST",   "/api/v1/payment-files/{}/status-reports", h_status_reports_post, ROLE_TREASURER, R_TX | R_IDEM | B_REPORTS },
	{ "GET",    "/api/v1/payment-files/{}/status-reports", h_status_reports_list, ROLE_ANY, 0 },
	{ "GET",    "/api/v1/payment-files/{}/status-reports/{}", h_status_reports_get, ROLE_ANY, 0 },
};
#define NROUTES (sizeof routes / sizeof *routes)

const char *router_route(int i, const char **method)
{
	if (i < 0 || (size_t)i >= NROUTES)
		return NULL;
	*method = routes[i].method;
	return routes[i].pattern;
}

void router_init(void)
{
	for (size_t i = 0; i < NROUTES; i++)
		metrics_route_name((int)i, routes[i].method, routes[i].pattern);
}

/* Matches a path against a pattern whose "{}" segments take one non-empty segment each. */
static bool match(const char *pat, const char *path, const char *params[MAX_PATH_PARAMS],
	size_t lens[MAX_PATH_PARAMS])
{
	int np = 0;
	while (*pat && *path) {
		if (pat[0] == '{' && pat[1] == '}') {
			size_t n = strcspn(path, "/");
			if (n == 0 || np == MAX_PATH_PARAMS)
				return false;
			params[np] = path;
			lens[np++] = n;
			pat += 2;
			path += n;
		} else if (*pat++ != *path++) {
			return false;
		}
	}
	return *pat == '\0' && *path == '\0';
}

int router_match(const char *method, const char *path, const char *params[MAX_PATH_PARAMS],
	char *allow, size_t allow_cap)
{
	size_t lens[MAX_PATH_PARAMS];
	int found = -1;
	allow[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		const char *p[MAX_PATH_PARAMS] = { NULL };
		if (!match(routes[i].pattern, path, p, lens))
			continue;
		if (strcmp(routes[i].method, method) == 0) {
			memcpy(params, p, sizeof p);
			allow[0] = '\0';   /* a match has no Allow list: drop what earlier rows wrote */
			return (int)i;
		}
		size_t used = strlen(allow);
		snprintf(allow + used, allow_cap - used, "%s%s", used ? ", " : "", routes[i].method);
		found = -2;
	}
	return found;
}

int router_serve(struct ctx *c, struct FCGX_Request *fr)
{
	const char *path = c->rq.path;
	bool api = strncmp(path, "/api/v1", 7) == 0 && (path[7] == '\0' || path[7] == '/');
	if (tx_connect(c) < 0 && (api || strcmp(path, "/healthz") == 0))
		return reply_db_failure(c);
	char allow[64];
	int i = router_match(c->rq.method, path, c->params, allow, sizeof allow);
	metrics_route(i);
	/* API §1: the routes that take no token (sign-in, accepting an invitation) are exactly
	 * those methods on those paths; any other method there needs a token first. */
	if (api && !(i >= 0 && routes[i].roles == ROLE_NONE)) {
		struct idem_seen seen = { 0 };
		int a = auth_authenticate_or_reply(c, &seen);
		/* The first statement is where a connection the server dropped is found out. */
		if (a == STEP_DB_ERROR && !db_connected(c->db) && tx_connect(c) == 0)
			a = auth_authenticate_or_reply(c, &seen);
		if (a == STEP_DB_ERROR)
			return reply_db_failure(c);
		if (a != STEP_GO_ON)
			return a;
		if (seen.key)
			idem_state(c)->seen = seen;
	}
	if (i == -1)
		return reply_error(c, 404, "NOT_FOUND", "no such resource");
	if (i == -2) {
		c->rs.allow = arena_strndup(c->a, allow, strlen(allow));
		return reply_error(c, 405, "METHOD_NOT_ALLOWED", "this resource does not take that method");
	}
	const struct route *r = &routes[i];
	if (r->roles != ROLE_NONE && !(c->me.roles & r->roles))
		return reply_error(c, 403, "FORBIDDEN", "your roles do not allow this action");
	/* Path parameters end at the next '/': cut them out of the path. */
	for (int p = 0; p < MAX_PATH_PARAMS && c->params[p]; p++)
		c->params[p] = arena_strndup(c->a, c->params[p], strcspn(c->params[p], "/"));
	int rc;   /* enum step or the status answered */
	if (r->roles != ROLE_NONE && currencies_load(c) < 0)
		return reply_db_failure(c);
	const struct body *b = r->flags & B_MASK ? &bodies[(r->flags & B_MASK) >> 8] : NULL;
	if (r->flags & (R_TX | R_BODY) &&
	    (rc = http_body_parse_or_reply(c, fr, b ? b->media : MT_JSON,
			b ? b->max : c->cfg->max_body)) != STEP_GO_ON)
		return rc;
	if (r->flags & R_IDEM && (rc = http_idem_key_or_reply(c, fr)) != STEP_GO_ON)
		return rc;
	if (r->flags & R_TX)
		return tx_run(c, r->handler, r->flags & R_IDEM);
	rc = r->handler(c);
	return rc == STEP_DB_ERROR ? reply_db_failure(c) : rc;
}
