/* The makers of a payment request (API §4): who created it, changed it (a PATCH that
 * changed something) or submitted its batch. A maker may neither approve nor reject the
 * request nor mark it paid. The record lives in request_makers, written in the same
 * transaction as the change that makes someone a maker, under the batch's row lock
 * (lock.h); the database's triggers refuse a decision or a payment by a maker. */
#ifndef REMIT_DOMAIN_MAKERS_H
#define REMIT_DOMAIN_MAKERS_H

#include "http.h"

/* What made someone a maker: bits of request_makers.made. */
enum {
	MADE_CREATED = 1,     /* written by the INSERT's trigger (sql/migrations/0005) */
	MADE_CHANGED = 2,
	MADE_SUBMITTED = 4,
};

/* Records the caller as a maker of request `id`. STEP_GO_ON or STEP_DB_ERROR. */
int maker_add(struct ctx *c, long long id, int made);
/* Records the caller as a submitter of every request of batch `batch`. STEP_GO_ON or
 * STEP_DB_ERROR. */
int makers_add_batch(struct ctx *c, long long batch);
/* What made the caller a maker of request `id` (0: nothing), read with a locking read so a
 * maker committed after the transaction's snapshot counts; -1 on a database error. */
int maker_of(struct ctx *c, long long id);

#endif
