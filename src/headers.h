/* The request's header grammar (headers.c): Content-Type, repeated header lines, the JSON
 * body, the Idempotency-Key. Each check answers its own 4xx through the reply helpers. */
#ifndef REMIT_HEADERS_H
#define REMIT_HEADERS_H
#include <stdbool.h>

#include "http.h"

struct FCGX_Request;

/* The media type (enum media) a Content-Type names, with no parameter but an optional
 * charset=utf-8 (any case, optionally quoted); 0 for anything else. */
unsigned http_media_of(const char *ct);

/* True when FastCGI param `name` ("HTTP_CONTENT_TYPE") came on more than one line. */
bool http_param_repeated(struct FCGX_Request *fr, const char *name);

/* Reads the body, in one of the `accepted` media types (enum media) and at most `max` bytes:
 * JSON into c->body, any other type as bytes in c->rq.body (415, 413, 400 MALFORMED_JSON).
 * STEP_GO_ON, or the status answered. */
int http_body_parse(struct ctx *c, struct FCGX_Request *fr, unsigned accepted, long max);

/* Parses the Idempotency-Key header into c's idempotency state (400 when missing or
 * invalid). STEP_GO_ON, or the status answered. */
int http_idem_key(struct ctx *c, struct FCGX_Request *fr);

#endif
