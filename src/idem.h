/* Exactly-once mutations (doc/openapi.yaml#Idempotency): the key's row is claimed first in the mutation's own
 * transaction and carries the response when it commits; the unique index on (user, key)
 * decides every race. */
#ifndef REMIT_IDEM_H
#define REMIT_IDEM_H
#include "http.h"

/* The committed answer stored under the request's Idempotency-Key, read with the token
 * (auth.c) so that a replay needs no transaction of its own (idem_answer_seen). */
struct idem_seen {
	const char *key;           /* NULL when no live stored answer was found */
	const char *fingerprint;
	size_t fingerprint_len;
	int status;
	long long etag;
	const char *body;
	size_t body_len;
};

/* A request's idempotency state, allocated in its arena by idem_state on first use. */
struct idem {
	const char *key;           /* the parsed Idempotency-Key, NULL when the route takes none */
	struct idem_seen seen;     /* the key's stored answer, found by auth */
	long long row;             /* the claimed key's row, where tx_finish stores the answer */
};

/* c->idem, allocated (zeroed) on first use. */
struct idem *idem_state(struct ctx *c);

enum idem_claim {
	IDEM_RUN,        /* claimed: run the handler; tx.c stores its answer in the row at COMMIT */
	IDEM_DONE,       /* rolled back; c->rs holds the answer (replay, 422, 409 in progress) */
	IDEM_AGAIN,      /* rolled back on a deadlock; re-run the transaction */
	IDEM_RECLAIM,    /* rolled back; the key's row was expired (now deleted) or purged: the
			  * key is new again, claim it at once (no database error to retry on) */
	IDEM_DB_ERROR,   /* failed; the caller rolls back */
};

/* Before any transaction: when auth found a committed answer under c->idem_key (c->seen),
 * answers with it (replay, or 422 for another fingerprint) and returns true. A committed row
 * always holds its response and only the purge of an expired key removes it, so this is what
 * the claim would find after its duplicate-key error, two statements and a rollback later. */
bool idem_answer_seen(struct ctx *c);

/* Claims c->idem_key for the caller, inside a transaction just begun, or with `begin` in
 * the same round trip that begins it (CALL tx_claim). */
enum idem_claim idem_claim(struct ctx *c, bool begin);

/* Answers 409 IDEMPOTENCY_KEY_IN_PROGRESS (Retry-After: 1): the key's first attempt is still
 * running after the wait. Returns the status. */
int reply_idem_in_progress(struct ctx *c);

/* Deletes expired keys in batches of `batch` rows, each its own short transaction, until
 * none is left or `max_batches` ran. Returns the number deleted, or -1. */
long idem_purge(struct db *db, int batch, int max_batches);

/* True while this transaction still sees the key row it claimed; false (db_errno then reads
 * 1213) when the row is gone or the read fails: the transaction was aborted under us. */
bool idem_held(struct ctx *c);

#endif
