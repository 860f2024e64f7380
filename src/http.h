/* One HTTP exchange as a handler sees it: the request read from FastCGI, the caller, the
 * response being built, and the helpers that write replies and errors. */
#ifndef REMIT_HTTP_H
#define REMIT_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "arena.h"
#include "conf.h"
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
	const char *accept;        /* Accept as sent, NULL when absent */
	const char *body;
	size_t body_len;
	long content_length;       /* -1 when absent */
	unsigned media;            /* the body's media type (enum media), 0 when it has none */
	struct pain002 *report;    /* an XML body, read (headers.c), else NULL */
};

/* The media types a route may take its body in (router.c's table); a body in any but JSON
 * is handed to the handler as bytes (c->rq.body) and fingerprinted as such (idem.c). */
enum media {
	MT_JSON = 1,   /* application/json: parsed into c->body */
	MT_CSV = 2,    /* text/csv (RFC 4180) */
	MT_XML = 4,    /* application/xml or text/xml: a pain.002 read into c->rq.report */
};
/* The media type's name ("text/csv"), for messages and fingerprints. */
const char *media_name(unsigned media);

struct detail {                /* one member of error.details */
	const char *key;
	const char *str;           /* a string value, or NULL for the integer */
	long long num;
	const char *const *list;   /* with nlist: an array of strings (ids), str unused */
	size_t nlist;
};


struct qparam {
	const char *name, *value;
};

struct caller {
	long long user_id, org_id, token_id;   /* token_id 0: the request carried no credential */
	long long minted_by;       /* the ADMIN who made this API token for its owner, else 0 */
	unsigned roles;
	bool session;              /* signed in with a password (API §7), not an API token */
	const char *expires_at;    /* the session's end (DB text), NULL for API tokens */
};


struct response {
	int status;
	yajl_gen gen;              /* the body being written */
	const char *body;          /* set when the body is final (replays) */
	size_t body_len;
	long long etag;            /* version for ETag, 0 for none */
	const char *allow;         /* 405 */
	const char *content_type;  /* NULL: application/json */
	const char *attachment;    /* a download's file name (Content-Disposition), or NULL */
	long retry_after;          /* seconds for Retry-After, 0 for none (true: 1 s) */
	const char *accel_redirect; /* nginx answers from this internal location instead */
	bool www_authenticate, replayed;
};

struct idem;
struct audit_event;
struct signals;

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
	struct idem *idem;                     /* the Idempotency-Key's state (idem.h), NULL until
						* auth or the router meets a key */
	struct detail details[MAX_DETAILS];
	int ndetails;
	struct audit_event *audit, *audit_tail;   /* buffered by audit_add (audit.h) */
	const struct signals *signals;         /* of the page of requests being written */
};

/* The pipeline's return vocabulary (HACKING: "Return values"). A handler (h_*), a reply
 * helper (reply_*, *_reply, refuse*: answers) and every step that may answer for the handler
 * (*_or_reply: auth_authenticate_or_reply, http_body_parse_or_reply, check_if_match_or_reply,
 * the lock helpers of domain/lock.h, the lifecycle checks) return an int that is either the
 * HTTP status (100..599) of the reply it wrote, or one of these two STEP_ values, which are no
 * status. A handler's status decides its transaction (tx.c): only a 2xx commits. A function
 * whose name says neither never writes a reply. The other conventions in src/: functions that
 * only succeed or fail return 0 or -1 (the db layer, audit_flush); predicates return bool
 * (batch_may); validators return enum v_result (valid.h); the claim of a key returns enum
 * idem_claim (idem.h). */
enum step {
	STEP_GO_ON = 0,       /* nothing answered, nothing failed: the caller goes on */
	STEP_DB_ERROR = -1,   /* a database call failed: roll back, then retry (deadlock,
			       * lock wait timeout) or answer 503/500 (tx.c) */
};
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
/* A detail whose value is an array of strings (the ids a refusal names). */
void detail_list(struct ctx *c, const char *key, const char *const *list, size_t n);

/* Common errors. */
int reply_not_found(struct ctx *c);
int reply_invalid_state(struct ctx *c, const char *status);
int reply_version_conflict(struct ctx *c, long long current);
int reply_validation(struct ctx *c);   /* 400 VALIDATION_ERROR with the collected details */

/* If-Match check for a mutation of an object at `version`: STEP_GO_ON when absent or
 * matching, else the 412 reply's status. */
int check_if_match_or_reply(struct ctx *c, long long version);

/* True when the client's Accept names text/csv (API §10: a list as CSV). */
bool http_wants_csv(const struct ctx *c);

/* Parses a path parameter as an id; 0 when it is not one (the caller answers 404). */
long long param_id(struct ctx *c, int i);
/* The same rule for any text (a query parameter naming an object); NULL gives 0. */
long long id_parse(const char *s);

/* Response writing to FastCGI (http.c, used by the dispatcher). */
struct FCGX_Request;
void http_read_request(struct ctx *c, struct FCGX_Request *fr);
/* 0, or -1 when the body is longer than `max` bytes. */
int http_read_body(struct ctx *c, struct FCGX_Request *fr, long max);
void http_write_response(struct ctx *c, struct FCGX_Request *fr);
void http_reset_response(struct ctx *c);   /* discards what a failed attempt wrote */

#endif
