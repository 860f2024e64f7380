/* `remit deliver`: sends the organisations' audit events to their webhook endpoints (API
 * §12), beside the pool, as many processes on as many hosts as one likes. */
#ifndef REMIT_DELIVER_H
#define REMIT_DELIVER_H
#include "conf.h"

/* Runs until SIGTERM or SIGINT (the delivery in hand is finished first). Exit status. */
int deliver_run(const struct config *cfg);

#endif
