/* The request's header grammar (headers.c): Content-Type, repeated header lines, the JSON
 * body, the Idempotency-Key. Each check answers its own 4xx through the reply helpers. */
#ifndef REMIT_HEADERS_H
#define REMIT_HEADERS_H
#include <stdbool.h>

#include "http.h"

struct FCGX_Request;

/* application/json, optionally with charset=utf-8 (any case, optionally quoted). */
bool http_content_type_ok(const char *ct);

/* True when FastCGI param `name` ("HTTP_CONTENT_TYPE") came on more than one line. */
bool http_param_repeated(struct FCGX_Request *fr, const char *name);

/* Reads the body into c->body (415, 413, 400 MALFORMED_JSON). STEP_GO_ON, or the status answered. */
int http_body_parse(struct ctx *c, struct FCGX_Request *fr);

/* Parses the Idempotency-Key header into c's idempotency state (400 when missing or
 * invalid). STEP_GO_ON, or the status answered. */
int http_idem_key(struct ctx *c, struct FCGX_Request *fr);

#endif
