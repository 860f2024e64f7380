#include "router.h"

#include <fcgiapp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "domain/handlers.h"
#include "idem.h"
#include "idem_key.h"
#include "log.h"
#include "valid.h"
#include "metrics.h"

enum {
	R_TX = 1,    /* a mutation: runs in one transaction, retried on deadlock */
	R_IDEM = 2,  /* needs an Idempotency-Key, claimed in that transaction */
	R_BODY = 4,  /* reads a JSON body, but runs its own transactions (sign-in) */
	ROLE_NONE = 0,   /* no token needed */
	ROLE_ANY = 31,   /* any authenticated user */
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
	{ "GET",    "/api/v1/ledger/entries",            h_ledger_entries,    ROLE_ANY,       0 },
	{ "GET",    "/api/v1/ledger/balances",           h_ledger_balances,   ROLE_ANY,       0 },
	{ "GET",    "/api/v1/audit",                     h_audit_list,        ROLE_ANY,       0 },
};
#define NROUTES (sizeof routes / sizeof *routes)

const char *router_route(int i, const char **method)
{
	if (i < 0 || (size_t)i >= NROUTES)
		return NULL;
	*method = routes[i].method;
	return routes[i].pattern;
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

/* application/json, optionally with charset=utf-8 (any case, optionally quoted). */
static bool content_type_ok(const char *ct)
{
	static const char type[] = "application/json";
	if (!ct || strncasecmp(ct, type, sizeof type - 1) != 0)
		return false;
	const char *p = ct + sizeof type - 1;
	p += strspn(p, " \t");
	if (!*p)
		return true;
	if (*p++ != ';')
		return false;
	p += strspn(p, " \t");
	if (strncasecmp(p, "charset=", 8) != 0)
		return false;
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return false;
	p += strspn(p, " \t");
	return *p == '\0';
}

/* 503 with Retry-After: nothing changed, the client may retry. */
static int unavailable(struct ctx *c)
{
	metrics_db_error(MD_UNAVAILABLE);
	c->ndetails = 0;
	c->rs.retry_after = true;
	return reply_error(c, 503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry later");
}

/* A lost database or contention that outlasted the retries is the client's to retry (503);
 * anything else is our bug (500). Neither changed anything: the transaction rolled back. */
static int db_failure(struct ctx *c)
{
	c->ndetails = 0;
	if (!db_connected(c->db) || db_err_retryable(c->db))
		return unavailable(c);
	char msg[512];
	log_escape(msg, sizeof msg, db_error(c->db), strlen(db_error(c->db)));
	log_write(LOG_ERROR, "database error", "\"rid\":\"%s\",\"errno\":%u,\"error\":\"%s\"",
		c->request_id, db_errno(c->db), msg);
	metrics_db_error(MD_INTERNAL);
	return reply_error(c, 500, "INTERNAL_ERROR", "internal error");
}

static bool param_repeated(FCGX_Request *fr, const char *name);

/* Reads and parses the body of a POST, PUT or PATCH into c->body; a DELETE's body must be
 * JSON too (§1: any request with a body) but means nothing. Two Content-Type lines are one
 * value "a, b" (RFC 9110 §5.3), which is no media type: checking the first alone would let
 * "application/json" then "text/plain" through. */
static int read_body(struct ctx *c, FCGX_Request *fr)
{
	bool has_body = c->rq.content_length > 0;
	if (has_body && (!content_type_ok(c->rq.content_type) || param_repeated(fr, "HTTP_CONTENT_TYPE")))
		return reply_error(c, 415, "UNSUPPORTED_MEDIA_TYPE",
			"the body must be application/json (charset utf-8)");
	if (http_read_body(c, fr) < 0)
		return reply_error(c, 413, "PAYLOAD_TOO_LARGE", "the body is larger than allowed");
	static struct jv empty = { .t = J_OBJ };
	if (strcmp(c->rq.method, "DELETE") == 0) {
		c->body = &empty;
		return 0;
	}
	if (c->rq.body_len == 0) {
		if (strcmp(c->rq.method, "POST") != 0)
			return reply_error(c, 400, "MALFORMED_JSON", "this method needs a JSON body");
		c->body = &empty;
		return 0;
	}
	if (json_parse(c->a, c->rq.body, c->rq.body_len, &c->body) < 0 || c->body->t != J_OBJ)
		return reply_error(c, 400, "MALFORMED_JSON", "the body is not a valid JSON object");
	return 0;
}

/* nginx before 1.23 hands each line of a repeated header to FastCGI as a param of its own,
 * and FCGX_GetParam returns the first. Two Idempotency-Key lines are one value "k1, k2" (RFC
 * 9110 §5.3), which is no key: taking one line would let the request run once under each. */
static bool param_repeated(FCGX_Request *fr, const char *name)
{
	size_t n = strlen(name);
	int seen = 0;
	for (char **e = fr->envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && ++seen > 1)
			return true;
	return false;
}

static int parse_idem_key(struct ctx *c, FCGX_Request *fr)
{
	const char *h = c->rq.idem_header;
	if (!h)
		return reply_error(c, 400, "IDEMPOTENCY_KEY_MISSING",
			"this request needs an Idempotency-Key header");
	char *key = arena_alloc(c->a, IDEM_KEY_MAX + 1);
	if (idem_key_parse(h, strlen(h), key) < 0 || param_repeated(fr, "HTTP_IDEMPOTENCY_KEY"))
		return reply_error(c, 400, "IDEMPOTENCY_KEY_INVALID",
			"Idempotency-Key must be 1..255 visible ASCII characters");
	c->idem_key = key;
	return 0;
}

/* Waits a random 0..2^attempt ms (at most 32): twins queued on one key that deadlock when
 * its holder rolls back would otherwise collide again on the immediate re-run. */
static void backoff(int attempt)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid();
	long max_us = 1000L << (attempt < 5 ? attempt : 5);
	struct timespec ts = { 0, (rand_r(&seed) % max_us) * 1000 };
	nanosleep(&ts, NULL);
}

/* After a failed attempt (rolled back): true when it is worth running again. A lost
 * connection at COMMIT may have committed, and only a key can tell: no re-run then. */
static bool may_retry(struct ctx *c, int attempt, bool at_commit)
{
	bool transient = db_err_retryable(c->db) || (!db_connected(c->db) && !at_commit);
	if (!transient || attempt >= c->cfg->tx_retries ||
	    (!db_connected(c->db) && db_connect(c->db) < 0)) {
		log_write(LOG_WARN, "transaction failed", "\"rid\":\"%s\",\"errno\":%u,\"attempts\":%d",
			c->request_id, db_errno(c->db), attempt + 1);
		return false;
	}
	metrics_tx_retry(db_errno(c->db));
	log_write(LOG_INFO, "transaction retried", "\"rid\":\"%s\",\"errno\":%u,\"attempt\":%d",
		c->request_id, db_errno(c->db), attempt + 1);
	backoff(attempt);
	return true;
}

/* On Galera a replicated write set that conflicts with this transaction aborts it (brute
 * force abort), and what the handler saw then is not to be trusted: the statement that was
 * running can fail with the error the conflict looked like (1062 on a unique key the other
 * node's commit took: the audit chain's next seq, a twin's decision) instead of 1213, and a
 * transaction aborted between two statements can run the next ones on their own, without its
 * own rows (a 404 for the batch it had just inserted). Before a failure or a refusal is
 * answered, check the transaction is still open and still holds its key: if not, db_errno
 * reads 1213 and the whole transaction is run again. A single server never needs this. */
static bool tx_lost(struct ctx *c, const struct route *r)
{
	if (!db_galera(c->db) || db_err_retryable(c->db))
		return false;
	unsigned err = db_errno(c->db);
	char msg[256];
	snprintf(msg, sizeof msg, "%s", db_error(c->db));
	if (!db_tx_alive(c->db) || ((r->flags & R_IDEM) && !idem_held(c))) {
		log_write(LOG_INFO, "transaction aborted by the cluster", "\"rid\":\"%s\",\"errno\":%u",
			c->request_id, err);
		return true;
	}
	db_set_error(c->db, err, msg);   /* the probe succeeded: the handler's error stands */
	return false;
}

/* Runs a mutation in one transaction: claim the key, run the handler, write the audit events,
 * store the response, commit. Deadlocks and lock wait timeouts re-run it from the start. */
static int run_tx(struct ctx *c, const struct route *r)
{
	if ((r->flags & R_IDEM) && idem_answer_seen(c))
		return c->rs.status;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int twin_waits = 0;
	for (int attempt = 0;;) {
		http_reset_response(c);
		bool at_commit = false, opened = false;
		if (db_begin(c->db) < 0)
			goto failed;
		if (r->flags & R_IDEM) {
			int claim = idem_claim(c);
			if (claim == IDEM_DONE)
				return c->rs.status;
			/* No error to judge a retry by: the expired key is gone, claim it again. */
			if (claim == IDEM_RECLAIM) {
				if (attempt++ < c->cfg->tx_retries)
					continue;
				db_rollback(c->db);
				return unavailable(c);   /* contention on the key outlasted the retries */
			}
			/* Twins queued on the key deadlock among themselves when its holder rolls back:
			 * that is still waiting for the key, bounded by idem_wait like a lock wait. */
			if (claim == IDEM_AGAIN) {
				struct timespec t1;
				clock_gettime(CLOCK_MONOTONIC, &t1);
				if (t1.tv_sec - t0.tv_sec >= c->cfg->idem_wait)
					return idem_in_progress(c);
				backoff(twin_waits++);
				continue;
			}
			if (claim != IDEM_RUN)
				goto failed;
		}
		opened = true;
		int status = r->handler(c);
		if (status == HANDLER_DB_ERROR)
			goto failed;
		if (status < 200 || status > 299) {
			if (tx_lost(c, r))
				goto failed;
			db_rollback(c->db);
			return status;
		}
		/* The answer is stored before the audit chain's head is locked: that lock serialises
		 * the organisation's writers until COMMIT, so as little as possible runs under it. */
		if (((r->flags & R_IDEM) && idem_store(c) < 0) || audit_flush(c) < 0)
			goto failed;
		at_commit = true;
		if (db_commit(c->db) == 0)
			return status;
	failed:
		if (opened && !at_commit && db_connected(c->db))
			tx_lost(c, r);   /* an abort disguised as another error now reads 1213 */
		db_rollback(c->db);
		if (!may_retry(c, attempt++, at_commit)) {
			http_reset_response(c);
			return db_failure(c);
		}
	}
}

int router_serve(struct ctx *c, FCGX_Request *fr)
{
	const char *path = c->rq.path;
	bool api = strncmp(path, "/api/v1", 7) == 0 && (path[7] == '\0' || path[7] == '/');
	if (db_connect(c->db) < 0 && (api || strcmp(path, "/healthz") == 0))
		return db_failure(c);
	char allow[64];
	int i = router_match(c->rq.method, path, c->params, allow, sizeof allow);
	metrics_route(i);
	/* API §1: the routes that take no token (sign-in, accepting an invitation) are exactly
	 * those methods on those paths; any other method there needs a token first. */
	if (api && !(i >= 0 && routes[i].roles == ROLE_NONE)) {
		int a = auth_authenticate(c);
		/* The first statement is where a connection the server dropped is found out. */
		if (a == HANDLER_DB_ERROR && !db_connected(c->db) && db_connect(c->db) == 0)
			a = auth_authenticate(c);
		if (a == HANDLER_DB_ERROR)
			return db_failure(c);
		if (a)
			return a;
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
	int rc;
	if (r->roles != ROLE_NONE && currencies_load(c) < 0)
		return db_failure(c);
	if (r->flags & (R_TX | R_BODY) && (rc = read_body(c, fr)))
		return rc;
	if (r->flags & R_IDEM && (rc = parse_idem_key(c, fr)))
		return rc;
	if (r->flags & R_TX)
		return run_tx(c, r);
	rc = r->handler(c);
	return rc == HANDLER_DB_ERROR ? db_failure(c) : rc;
}
