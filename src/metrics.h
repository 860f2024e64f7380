/* Counters for GET /metrics (API §8), one view over all workers of a pool: they live in
 * shared memory that the master maps before it forks, and every worker adds to them with
 * atomics. Outside `remit serve` (no metrics_init) every hook does nothing. */
#ifndef REMIT_METRICS_H
#define REMIT_METRICS_H
#include <stdbool.h>

#include "http.h"

enum metrics_key { MK_IN_PROGRESS, MK_REUSED };      /* 409 / 422 key outcomes */
enum metrics_db { MD_UNAVAILABLE, MD_INTERNAL };     /* answered 503 / 500 */

/* The master, before forking: room for `workers` worker slots. 0, or -1 (no metrics). */
int metrics_init(int workers);

/* Worker hooks. */
void metrics_worker_start(int slot);          /* once, when the worker starts */
void metrics_request_begin(void);             /* a request was accepted: busy */
void metrics_route(int route);                /* router: the route matched (-1: none) */
/* router_init, once per worker: the method and pattern of route `i`, for the labels (metrics
 * sit below the router and never ask it). Past MAX_ROUTES - 2, ignored. */
void metrics_route_name(int i, const char *method, const char *pattern);
void metrics_request_end(int status, bool replayed, double seconds);   /* idle again */
void metrics_key_outcome(enum metrics_key k);
void metrics_tx_retry(unsigned err);          /* tx_run re-runs a transaction after `err` */
void metrics_db_error(enum metrics_db d);
void metrics_node_change(void);               /* a worker moved to another database node */

/* GET /metrics: the Prometheus text exposition of everything above. */
int h_metrics(struct ctx *c);

#endif
