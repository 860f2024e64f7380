/* One pool worker: accept a FastCGI request, serve it, repeat; drains on SIGTERM. */
#ifndef REMIT_WORKER_H
#define REMIT_WORKER_H
#include "conf.h"

/* Runs until SIGTERM (after the request in hand) or until the master is gone. `index` is the
 * worker's slot: slot 0 also purges expired idempotency keys. Returns the exit status. */
int worker_run(const struct config *cfg, int listen_fd, int index);

#endif
