/* `remit deliver`: sends the organisations' audit events to their webhook endpoints (API
 * §12), beside the pool, as many processes on as many hosts as one likes. */
#ifndef REMIT_DELIVER_H
#define REMIT_DELIVER_H
#include "conf.h"

/* Runs until SIGTERM or SIGINT (the delivery in hand is finished first). Exit status. */
int deliver_run(const struct config *cfg);

/* The wait after the n-th failure in a row (API §12): 5 s, 30 s, 2 min, 10 min, 1 h, then
 * 6 h; webhooks and mail alike. */
long long deliver_retry_after_ms(long long failures);

struct db;
/* Ends a claim's transaction: COMMIT when `rc` is 1 (the claim did its work), else
 * ROLLBACK. Returns the claim's result: 1, 0 (nothing done), or -1 (database error, the
 * commit's included). */
int deliver_end(struct db *db, int rc);

#endif
