/* The transaction engine (tx.c): one transaction around a mutation's handler, retried on
 * deadlocks and lock wait timeouts; and the answer to a database failure. */
#ifndef REMIT_TX_H
#define REMIT_TX_H
#include <stdbool.h>

#include "http.h"

/* Runs `handler` in one transaction; with `idem`, claims c's Idempotency-Key first and stores
 * the answer under it. Deadlocks and lock wait timeouts re-run it from the start (at most
 * cfg->tx_retries times). Only a 2xx commits. Returns the status answered. */
int tx_run(struct ctx *c, handler_fn handler, bool idem);

/* Answers a database failure that is final: 503 SERVICE_UNAVAILABLE (Retry-After) for a lost
 * connection or contention that outlasted the retries, 500 INTERNAL_ERROR (logged) for
 * anything else. Returns the status. */
int reply_db_failure(struct ctx *c);

/* db_connect for a request: 0 or -1, a move to another node counted in /metrics. */
int tx_connect(struct ctx *c);

/* Sleeps a random time below 1 ms << attempt (capped at 32 ms) before re-running a
 * transaction, so that two that deadlocked do not meet again at once. */
void tx_backoff(int attempt);

#endif
