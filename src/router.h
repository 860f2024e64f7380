/* The route table and the request pipeline: auth → route → role → body (headers.c) →
 * idempotency key (headers.c) → one transaction around the handler (tx.c). */
#ifndef REMIT_ROUTER_H
#define REMIT_ROUTER_H
#include "http.h"

struct FCGX_Request;

/* Serves one request: fills c->rs. Returns the HTTP status for the log. */
int router_serve(struct ctx *c, struct FCGX_Request *fr);

/* Matches method and path against the table (exposed for tests and fuzzing): returns the
 * route index, -1 for an unknown path, -2 for a known path with another method (then `allow`
 * lists the methods it takes; otherwise it is left empty). */
int router_match(const char *method, const char *path, const char *params[MAX_PATH_PARAMS],
	char *allow, size_t allow_cap);

/* The method and pattern of route `i` ("/api/v1/batches/{}"), NULL past the last. */
const char *router_route(int i, const char **method);

/* Once per worker, before it serves: hands the route names to /metrics. */
void router_init(void);

#endif
