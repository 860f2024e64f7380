/* `remit serve`: a master that owns the listening socket and N single-threaded workers. */
#ifndef REMIT_POOL_H
#define REMIT_POOL_H
#include "conf.h"

/* Runs the pool until SIGTERM/SIGINT (drain: each worker finishes the request in hand).
 * SIGHUP replaces the workers one by one. Returns the process exit status. */
int pool_run(const struct config *cfg);

#endif
