/* The worker's one MySQL connection: prepared statements (cached per connection), typed
 * parameters, buffered results as text, transactions, and reconnection. */
#ifndef REMIT_DB_H
#define REMIT_DB_H
#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "conf.h"

/* Server errors the callers act on. */
enum {
	DB_DUP_ENTRY = 1062,
	DB_LOCK_WAIT_TIMEOUT = 1205,
	DB_DEADLOCK = 1213,
	DB_INTERNAL = 2000,   /* CR_UNKNOWN_ERROR: an answer the caller cannot use (our bug) */
};

struct db;

struct dbcell {
	const char *s;   /* NULL for SQL NULL */
	size_t len;
};

struct dbres {
	size_t nrows, ncols;
	struct dbcell *cells;   /* row-major, in the request's arena */
};

struct db *db_new(const struct config *cfg);
void db_free(struct db *db);
/* No-op when connected. 0, or 1 when it connected to another node than the last one (the
 * caller counts that: db calls nothing above it), or -1. */
int db_connect(struct db *db);
bool db_connected(const struct db *db);
void db_disconnect(struct db *db);

/* Runs one statement. `types` has one letter per `?`: i (long long), s (const char *,
 * NUL-terminated; NULL binds SQL NULL), S (const char *, size_t), b (const void *, size_t:
 * binary). Returns 0 or -1 (see db_errno). */
int db_exec(struct db *db, const char *sql, const char *types, ...);

/* Like db_exec, and stores every row, each column as text, into `res` (allocated from `a`). */
int db_query(struct db *db, struct arena *a, struct dbres *res, const char *sql,
	const char *types, ...);

unsigned long long db_affected(const struct db *db);
long long db_insert_id(const struct db *db);

/* Runs fixed SQL with no parameters through the text protocol (migrations, DDL). */
int db_exec_raw(struct db *db, const char *sql, size_t len);

int db_begin(struct db *db);
int db_commit(struct db *db);
/* After a statement that committed on the server's side (a CALL ending in COMMIT): what
 * db_commit does after its COMMIT. */
void db_committed(struct db *db);
int db_rollback(struct db *db);          /* best effort; never fails the caller */

unsigned db_errno(const struct db *db);  /* last server or client error, 0 if none */
const char *db_error(const struct db *db);
bool db_err_retryable(const struct db *db);   /* deadlock, lock wait timeout: run again */
/* The last error is the database's state, not the statement's fault: away, lost, busy,
 * refusing or read-only (db.c: conn_lost, server_refuses). What fails for good with it is a
 * 503 with Retry-After; any other error is a bug (500). */
bool db_err_unavailable(const struct db *db);

/* Fault injection for the tests (remit.conf fault_injection, never on in production): the
 * at-th statement sent after db_fault_arm fails with err, once; with `after` it is sent
 * first and fails once the server has run it (a connection lost after the server got the
 * statement). Arming with err 0 disarms. */
struct db_fault {
	unsigned err;
	int at;
	bool after;
};
void db_fault_arm(struct db *db, struct db_fault f);

/* False when the server says the session is no longer inside the transaction db_begin
 * opened: on Galera a replicated write set can abort it (brute force) between two
 * statements. The transaction is then gone, and db_errno reads as a deadlock (1213). */
bool db_tx_alive(struct db *db);
bool db_galera(const struct db *db);     /* connected to a Galera node */
void db_set_error(struct db *db, unsigned err, const char *msg);

/* Cell accessors. */
static inline const char *db_s(const struct dbres *r, size_t row, size_t col)
{
	return r->cells[row * r->ncols + col].s;
}
static inline size_t db_len(const struct dbres *r, size_t row, size_t col)
{
	return r->cells[row * r->ncols + col].len;
}
long long db_i(const struct dbres *r, size_t row, size_t col);   /* NULL → 0 */

/* Ends a claim's transaction (`remit deliver`): COMMIT when `rc` is 1 (the claim did its
 * work), else ROLLBACK. Returns the claim's result: 1, 0 (nothing done), or -1 (database
 * error, the commit's included). */
int db_end_claim(struct db *db, int rc);

#endif
