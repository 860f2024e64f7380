/* One pool worker: accept a FastCGI request, serve it, repeat; drains on SIGTERM. */
#ifndef REMIT_WORKER_H
#define REMIT_WORKER_H
#include "conf.h"

/* Runs until SIGTERM (after the request in hand) or until the master is gone. `index` is the
 * worker's slot: slot 0 also purges expired idempotency keys. Returns the exit status. */
int worker_run(const struct config *cfg, int listen_fd, int index);

struct ctx;
struct FCGX_Request;
/* Serves the accepted request `fr` with `c` (the worker's one context, reset here for each
 * request): reads it, sheds it or routes it, writes the response to fr->out, logs it.
 * Returns the status. Exported for bench/floor.c, which runs this very pipeline on an
 * in-memory request to measure remit without nginx and FastCGI I/O. */
int worker_serve(struct ctx *c, struct FCGX_Request *fr);

#endif
