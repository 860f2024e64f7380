/* The audit trail: append-only events, SHA-256 hash-chained per organisation. */
#ifndef REMIT_AUDIT_H
#define REMIT_AUDIT_H
#include "http.h"

/* One event's fields, in the order the procedures audit_append and tx_finish take them
 * (sql/migrations/0005_round_trips.sql, which computes its hash). */
struct audit_row {
	long long org, actor, object;
	const char *at, *action, *type, *key, *corr, *data;
	/* The credential that made it (API §7 v1.2), as text: NULL kind for none; the ids
	 * travel as text because a NULL mintedBy must bind SQL NULL. */
	const char *cred_kind, *cred_id, *cred_minted;
};

/* Writes the events buffered with audit_add into the organisation's chain, inside the
 * mutation's transaction, one CALL audit_append each. Locks the chain's head row, so it
 * runs last, just before COMMIT, to keep that critical section short. Returns 0 or -1. */
int audit_flush(struct ctx *c);

/* audit_flush but for the last event, whose fields it leaves in *last for the statement
 * that ends the transaction (tx.c: tx_finish). 1 with *last set, 0 when no event was
 * buffered (*last's action NULL), -1 on a database error. */
int audit_flush_but_last(struct ctx *c, struct audit_row *last);

/* Buffers an audit event for this mutation (written in its transaction). `data` is JSON. */
void audit_add(struct ctx *c, const char *action, const char *object_type, long long object_id,
	const char *data);

/* Walks every chain; prints the first broken link of each to stderr. 0 intact, 1 broken,
 * -1 database error. */
int audit_verify(struct db *db);

/* Creates an organisation's chain head (the first prevHash is 64 zeros). */
int audit_init_chain(struct db *db, long long org_id);

#endif
