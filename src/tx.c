/* The transaction engine: runs a mutation in one transaction (claim the Idempotency-Key, run
 * the handler, store the answer, write the audit events, commit), re-runs it on deadlocks and
 * lock wait timeouts with a random backoff, and maps what failed for good to 503 or 500. */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"

/* 503 with Retry-After: nothing changed, the client may retry. */
static int reply_unavailable(struct ctx *c)
{
	metrics_db_error(MD_UNAVAILABLE);
	c->ndetails = 0;
	c->rs.retry_after = true;
	return reply_error(c, 503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry later");
}

/* A database that is away, busy, refusing or read-only, or contention that outlasted the
 * retries, is the client's to retry (503); anything else is our bug (500). Neither changed
 * anything the client cannot resolve with its key: the transaction rolled back, or the
 * COMMIT's outcome is the key's to tell. */
int reply_db_failure(struct ctx *c)
{
	c->ndetails = 0;
	if (db_err_unavailable(c->db))
		return reply_unavailable(c);
	char msg[512];
	log_escape(msg, sizeof msg, db_error(c->db), strlen(db_error(c->db)));
	log_write(LOG_ERROR, "database error", "\"rid\":\"%s\",\"errno\":%u,\"error\":\"%s\"",
		c->request_id, db_errno(c->db), msg);
	metrics_db_error(MD_INTERNAL);
	return reply_error(c, 500, "INTERNAL_ERROR", "internal error");
}

/* Waits a random 0..2^attempt ms (at most 32): twins queued on one key that deadlock when
 * its holder rolls back would otherwise collide again on the immediate re-run. */
void tx_backoff(int attempt)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid();
	long max_us = 1000L << (attempt < 5 ? attempt : 5);
	struct timespec ts = { 0, (rand_r(&seed) % max_us) * 1000 };
	nanosleep(&ts, NULL);
}

int tx_connect(struct ctx *c)
{
	int rc = db_connect(c->db);
	if (rc > 0)
		metrics_node_change();
	return rc < 0 ? -1 : 0;
}

/* After a failed attempt (rolled back): true when it is worth running again. A lost
 * connection at COMMIT may have committed, and only a key can tell: no re-run then. */
static bool may_retry(struct ctx *c, int attempt, bool at_commit)
{
	bool transient = db_err_retryable(c->db) || (!db_connected(c->db) && !at_commit);
	if (!transient || attempt >= c->cfg->tx_retries ||
	    (!db_connected(c->db) && tx_connect(c) < 0)) {
		log_write(LOG_WARN, "transaction failed", "\"rid\":\"%s\",\"errno\":%u,\"attempts\":%d",
			c->request_id, db_errno(c->db), attempt + 1);
		return false;
	}
	metrics_tx_retry(db_errno(c->db));
	log_write(LOG_INFO, "transaction retried", "\"rid\":\"%s\",\"errno\":%u,\"attempt\":%d",
		c->request_id, db_errno(c->db), attempt + 1);
	tx_backoff(attempt);
	return true;
}

/* On Galera a replicated write set that conflicts with this transaction aborts it (brute
 * force abort), and what the handler saw then is not to be trusted: the statement that was
 * running can fail with the error the conflict looked like (1062 on a unique key the other
 * node's commit took: the audit chain's next seq, a twin's decision) instead of 1213, and a
 * transaction aborted between two statements can run the next ones on their own, without its
 * own rows (a 404 for the batch it had just inserted). Before a failure or a refusal is
 * answered, check the transaction is still open and still holds its key: if not, db_errno
 * reads 1213 and the whole transaction is run again. A single server never needs this. */
static bool tx_lost(struct ctx *c, bool idem)
{
	if (!db_galera(c->db) || db_err_retryable(c->db))
		return false;
	unsigned err = db_errno(c->db);
	char msg[256];
	snprintf(msg, sizeof msg, "%s", db_error(c->db));
	if (!db_tx_alive(c->db) || (idem && !idem_held(c))) {
		log_write(LOG_INFO, "transaction aborted by the cluster", "\"rid\":\"%s\",\"errno\":%u",
			c->request_id, err);
		return true;
	}
	db_set_error(c->db, err, msg);   /* the probe succeeded: the handler's error stands */
	return false;
}

/* Where a transaction's runs stand: the first began at t0; n runs so far (each failure or
 * reclaim counts), twin_waits the backoffs spent waiting for a twin's key. */
struct attempts {
	struct timespec t0;
	int n, twin_waits;
};

/* What tx_run does after trying to claim the key. */
enum claim_next {
	CLAIM_RUN,        /* claimed: run the handler */
	CLAIM_ANSWERED,   /* the transaction is over and c->rs holds the answer */
	CLAIM_RERUN,      /* begin again at once: no database error to judge a retry by */
	CLAIM_FAILED,     /* a database error: roll back, then maybe retry */
};

static enum claim_next claim_key(struct ctx *c, struct attempts *at, bool begin)
{
	enum idem_claim claim = idem_claim(c, begin);
	if (claim == IDEM_DONE)
		return CLAIM_ANSWERED;
	/* No error to judge a retry by: the expired key is gone, claim it again. */
	if (claim == IDEM_RECLAIM) {
		if (at->n++ < c->cfg->tx_retries)
			return CLAIM_RERUN;
		db_rollback(c->db);
		reply_unavailable(c);   /* contention on the key outlasted the retries */
		return CLAIM_ANSWERED;
	}
	/* Twins queued on the key deadlock among themselves when its holder rolls back:
	 * that is still waiting for the key, bounded by idem_wait like a lock wait. */
	if (claim == IDEM_AGAIN) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - at->t0.tv_sec >= c->cfg->idem_wait) {
			reply_idem_in_progress(c);
			return CLAIM_ANSWERED;
		}
		tx_backoff(at->twin_waits++);
		return CLAIM_RERUN;
	}
	return claim == IDEM_RUN ? CLAIM_RUN : CLAIM_FAILED;
}

static const char SQL_FINISH[] = "CALL tx_finish(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/* Ends a mutation that answered 2xx: its audit events, its answer stored under its key's row,
 * and COMMIT, the last three in one round trip (tx_finish, sql/migrations/0005). The chain's
 * head is locked in that last statement: the lock serialises the organisation's writers
 * until COMMIT, so nothing else runs under it. *committing is set once the statement that
 * commits is sent: a connection lost after that may have committed. */
static int finish(struct ctx *c, bool idem, bool *committing)
{
	struct audit_row e;
	int events = audit_flush_but_last(c, &e);
	if (events < 0)
		return -1;
	*committing = true;
	if (!idem && !events)
		return db_commit(c->db);
	const unsigned char *body = (const unsigned char *)"";
	size_t len = 0;
	char etag[24] = "";
	if (idem) {
		yajl_gen_get_buf(c->rs.gen, &body, &len);
		if (c->rs.etag > 0)
			snprintf(etag, sizeof etag, "%lld", c->rs.etag);
	}
	if (db_exec(c->db, SQL_FINISH, "iisSiisssissssss", idem ? c->idem->row : 0LL,
			(long long)c->rs.status, etag[0] ? etag : NULL, (const char *)body, len, e.org,
			e.actor, e.at, e.action, e.type, e.object, e.key, e.corr, e.data, e.cred_kind,
			e.cred_id, e.cred_minted) < 0)
		return -1;
	db_committed(c->db);
	return 0;
}

/* Runs a mutation in one transaction: claim the key, run the handler, write the audit events,
 * store the response, commit. Deadlocks and lock wait timeouts re-run it from the start. */
int tx_run(struct ctx *c, handler_fn handler, bool idem)
{
	if (idem && idem_answer_seen(c))
		return c->rs.status;
	struct attempts at = { .n = 0 };
	clock_gettime(CLOCK_MONOTONIC, &at.t0);
	for (;;) {
		http_reset_response(c);
		bool at_commit = false, opened = false;
		/* A key's claim begins the transaction in the same round trip, but on Galera, where
		 * START TRANSACTION waits for the node to catch up and the session's causal reads are
		 * then switched off (db_begin). */
		bool claim_begins = idem && !db_galera(c->db) && db_connected(c->db);
		if (!claim_begins && db_begin(c->db) < 0)
			goto failed;
		enum claim_next next = idem ? claim_key(c, &at, claim_begins) : CLAIM_RUN;
		if (next == CLAIM_ANSWERED)
			return c->rs.status;
		if (next == CLAIM_RERUN)
			continue;
		if (next == CLAIM_FAILED)
			goto failed;
		opened = true;
		int status = handler(c);
		if (status == STEP_DB_ERROR)
			goto failed;
		if (status < 200 || status > 299) {
			if (tx_lost(c, idem))
				goto failed;
			db_rollback(c->db);
			return status;
		}
		bool committing = false;
		if (finish(c, idem, &committing) == 0)
			return status;
		at_commit = committing && !db_connected(c->db);   /* lost where it may have committed */
	failed:
		if (opened && !at_commit && db_connected(c->db))
			tx_lost(c, idem);   /* an abort disguised as another error now reads 1213 */
		db_rollback(c->db);
		if (!may_retry(c, at.n++, at_commit)) {
			http_reset_response(c);
			return reply_db_failure(c);
		}
	}
}
