/* One HTTP exchange as a handler sees it: the request read from FastCGI, the caller, the
 * response being built, and the helpers that write replies and errors. */
#ifndef REMIT_HTTP_H
#define REMIT_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "arena.h"
#include "config.h"
#include "db.h"
#include "json.h"

#define MAX_PATH_PARAMS 2
#define MAX_DETAILS 32

enum role {
	ROLE_ADMIN = 1,
	ROLE_CREATOR = 2,
	ROLE_APPROVER = 4,
	ROLE_TREASURER = 8,
	ROLE_VIEWER = 16,
};

struct request {
	const char *method;
	const char *path;          /* without the query string */
	const char *query;         /* raw, "" when none */
	const char *content_type;  /* NULL when absent */
	const char *authorization;
	const char *idem_header;   /* Idempotency-Key as sent, NULL when absent */
	const char *if_match;
	const char *body;
	size_t body_len;
	long content_length;       /* -1 when absent */
};

struct detail {                /* one member of error.details */
	const char *key;
	const char *str;           /* a string value, or NULL for the integer */
	long long num;
};

struct audit_event {           /* buffered by handlers, written at commit (audit.c) */
	struct audit_event *next;
	const char *action;        /* "batch.submitted" */
	const char *object_type;   /* "batch" */
	long long object_id;
	const char *data;          /* a JSON object's text */
};

struct qparam {
	const char *name, *value;
};

struct caller {
	long long user_id, org_id, token_id;
	unsigned roles;
	bool session;              /* signed in with a password (API §7), not an API token */
	const char *expires_at;    /* the session's end (DB text), NULL for API tokens */
};

/* The committed answer stored under the request's Idempotency-Key, read with the token
 * (auth.c) so that a replay needs no transaction of its own (idem_answer_seen). */
struct idem_seen {
	const char *key;           /* NULL when no live stored answer was found */
	const char *fingerprint;
	size_t fingerprint_len;
	int status;
	long long etag;
	const char *body;
	size_t body_len;
};

struct response {
	int status;
	yajl_gen gen;              /* the body being written */
	const char *body;          /* set when the body is final (replays) */
	size_t body_len;
	long long etag;            /* version for ETag, 0 for none */
	const char *allow;         /* 405 */
	const char *content_type;  /* NULL: application/json */
	long retry_after;          /* seconds for Retry-After, 0 for none (true: 1 s) */
	bool www_authenticate, replayed;
};

struct ctx {
	struct arena *a;
	struct db *db;
	const struct config *cfg;
	struct request rq;
	struct response rs;
	struct caller me;
	const char *request_id;
	const char *params[MAX_PATH_PARAMS];   /* {id} segments of the route, in order */
	struct jv *body;                       /* the parsed JSON object ({} when none) */
	struct qparam *q;                      /* query parameters, after q_parse */
	int nq;
	const char *idem_key;                  /* parsed key, NULL when the route takes none */
	struct idem_seen seen;                 /* the key's stored answer, found by auth */
	long long idem_row;                    /* the claimed key's row */
	struct detail details[MAX_DETAILS];
	int ndetails;
	struct audit_event *audit, *audit_tail;
};

/* A handler returns the HTTP status it answered with (the body is written through the reply
 * helpers), or HANDLER_DB_ERROR after a failed database call: the dispatcher then rolls back
 * and retries (deadlock, lock wait timeout) or answers 503/500. Only a 2xx commits. */
#define HANDLER_DB_ERROR (-1)
typedef int (*handler_fn)(struct ctx *c);

/* Starts {"data": and returns the generator positioned for the value. */
yajl_gen reply_data(struct ctx *c, int status);
/* Closes the envelope opened by reply_data and returns the status. */
int reply_done(struct ctx *c);
/* Starts {"data":[ for a list; close with reply_list_done. */
yajl_gen reply_list(struct ctx *c);
int reply_list_done(struct ctx *c, long long next_cursor);   /* 0 → "nextCursor": null */
int reply_empty(struct ctx *c, int status);                  /* 204 */

/* Error envelope {"error":{"code","message","details"}}, details from c->details. */
int reply_error(struct ctx *c, int status, const char *code, const char *message);
void detail_str(struct ctx *c, const char *key, const char *value);
void detail_int(struct ctx *c, const char *key, long long value);

/* Common errors. */
int reply_not_found(struct ctx *c);
int reply_invalid_state(struct ctx *c, const char *status);
int reply_version_conflict(struct ctx *c, long long current);
int reply_validation(struct ctx *c);   /* 400 VALIDATION_ERROR with the collected details */

/* If-Match check for a mutation of an object at `version`: 0 when absent or matching, else
 * the 412 reply's status. */
int check_if_match(struct ctx *c, long long version);

/* Parses a path parameter as an id; 0 when it is not one (the caller answers 404). */
long long param_id(struct ctx *c, int i);
/* The same rule for any text (a query parameter naming an object); NULL gives 0. */
long long id_parse(const char *s);

/* Buffers an audit event for this mutation (written in its transaction). `data` is JSON. */
void audit_add(struct ctx *c, const char *action, const char *object_type, long long object_id,
	const char *data);

/* Response writing to FastCGI (http.c, used by the dispatcher). */
struct FCGX_Request;
void http_read_request(struct ctx *c, struct FCGX_Request *fr);
int http_read_body(struct ctx *c, struct FCGX_Request *fr);   /* 0, or -1 when over max_body */
void http_write_response(struct ctx *c, struct FCGX_Request *fr);
void http_reset_response(struct ctx *c);   /* discards what a failed attempt wrote */

#endif
