/* Locking a batch and its requests for a mutation, shared by batches.c, requests.c and
 * decisions.c.
 *
 * Lock order, everywhere: the batch row first, then its requests. A request's status, its
 * batch's version and counts, and the batch's COMPLETED status change together, so every
 * change of a request takes its batch's row lock first; holding that lock then means no
 * one else changes the batch or any of its requests until we commit.
 *
 * Tenancy before locks: an id is first looked up with a plain read filtered by the
 * caller's organisation, and only a row of that organisation is then locked. A locking read
 * `WHERE id = ? AND org_id = ?` would lock (and wait for) the row of another organisation
 * before the filter rejects it: a 404 that takes as long as that organisation's transaction
 * tells that the id exists and is busy. The plain read fixes the transaction's snapshot
 * before the locks are held: after these calls, read only rows this transaction changed,
 * or read with a locking read. */
#ifndef REMIT_DOMAIN_LOCK_H
#define REMIT_DOMAIN_LOCK_H
#include <stdbool.h>

#include "domain/lifecycle.h"
#include "http.h"

struct batch_row {
	long long id, version, created_by, submitted_by;   /* submitted_by 0 when NULL */
	long long requests;                                 /* how many it holds (request_count) */
	enum batch_status status;
};

struct request_row {
	long long id, batch_id, version, amount, created_by, required_approvals, approval_count;
	enum request_status status;
	const char *currency, *name, *account, *purpose;
};

/* Reads with `sql`, whose two placeholders are an id and the caller's organisation, into `r`:
 * STEP_GO_ON when it found a row, else the 404 reply's status, or STEP_DB_ERROR. The
 * plain read that comes before any lock (see above). */
int find_own_or_reply(struct ctx *c, struct dbres *r, const char *sql, long long id);

/* find_own_or_reply for the id in the route's first path parameter (*id, 0 and 404 when it
 * is none). */
int find_param_or_reply(struct ctx *c, struct dbres *r, const char *sql, long long *id);

/* Each returns STEP_GO_ON with the rows locked (SELECT … FOR UPDATE), or the status of the reply it
 * made (404 for an id of no batch or request of the caller's organisation), or
 * STEP_DB_ERROR. */
int batch_lock_or_reply(struct ctx *c, long long id, struct batch_row *b);
/* STEP_GO_ON when batch `id` belongs to the caller's organisation (a plain read, no lock), else the
 * 404 reply's status or STEP_DB_ERROR. */
int batch_find_or_reply(struct ctx *c, long long id);
/* Locks the request's batch, then the request. */
int request_lock_or_reply(struct ctx *c, long long id, struct batch_row *b, struct request_row *r);

/* Records that one of the batch's requests changed: bumps the batch's version. With
 * `settle`, a batch whose every request is REJECTED, PAID or CANCELLED becomes COMPLETED
 * (with its audit event). STEP_GO_ON or STEP_DB_ERROR. */
int batch_touch(struct ctx *c, long long batch_id, bool settle);

#endif
