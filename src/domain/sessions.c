/* Sessions (API §7): signing in with a password, its throttle, signing out.
 *
 * An attempt is counted as a failure before its password is checked, in a transaction of
 * its own that holds the throttle row's lock (FOR UPDATE, then INSERT or UPDATE): so no
 * number of concurrent attempts gets more password checks than the throttle allows, on any
 * pool sharing the database, and a locked key costs one short transaction and no hash. A
 * success then clears the count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/people.h"
#include "log.h"
#include "password.h"
#include "valid.h"

#define FREE_FAILURES 5   /* failures before the first lock */
#define MAX_LOCK 900      /* seconds */

/* READ COMMITTED for the throttle's transaction: a locking read of a key that has no row yet
 * takes no gap lock there, so twins of a new key do not deadlock on their INSERTs; the second
 * waits for the first, gets a duplicate key error and runs again, finding the row. */
static const char SQL_READ_COMMITTED[] = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
static const char SQL_THROTTLE_READ[] =
	"SELECT failures, CEILING(TIMESTAMPDIFF(MICROSECOND, NOW(3), locked_until) / 1000000)"
	" FROM sign_in_throttle WHERE key_hash = ? FOR UPDATE";
enum { TH_FAILURES, TH_LEFT_S };
static const char SQL_THROTTLE_FIRST[] =
	"INSERT INTO sign_in_throttle (key_hash, failures) VALUES (?, 1)";
static const char SQL_THROTTLE_COUNT[] =
	"UPDATE sign_in_throttle SET failures = ?, updated_at = NOW(3),"
	" locked_until = IF(? > 0, NOW(3) + INTERVAL ? SECOND, NULL) WHERE key_hash = ?";
/* A failure that locks the key locks it from its own end, not from its start. */
static const char SQL_THROTTLE_RESTAMP[] =
	"UPDATE sign_in_throttle SET locked_until = NOW(3) + INTERVAL ? SECOND"
	" WHERE key_hash = ? AND failures = ?";
static const char SQL_THROTTLE_CLEAR[] = "DELETE FROM sign_in_throttle WHERE key_hash = ?";
static const char SQL_SIGNIN_USER[] =
	"SELECT id, password_hash, active FROM users WHERE org_id = ? AND email_key = ?";
enum { SI_ID, SI_HASH, SI_ACTIVE };
static const char SQL_USER_RECHECK[] =
	"SELECT password_hash FROM users WHERE id = ? AND active = 1 FOR UPDATE";
enum { RC_HASH };
static const char SQL_SESSION_INSERT[] =
	"INSERT INTO tokens (org_id, user_id, token_hash, kind, expires_at)"
	" VALUES (?, ?, ?, 'session', NOW(3) + INTERVAL 12 HOUR)";
static const char SQL_SESSION_EXPIRES[] = "SELECT expires_at FROM tokens WHERE id = ?";
enum { SE_EXPIRES_AT };
static const char SQL_REHASH[] = "UPDATE users SET password_hash = ? WHERE id = ?";
/* Rows of keys left alone for a day, and not locked now: the table stays as small as the
 * recent failures. */
static const char SQL_THROTTLE_PURGE[] =
	"DELETE FROM sign_in_throttle WHERE updated_at < NOW(3) - INTERVAL 1 DAY"
	" AND (locked_until IS NULL OR locked_until < NOW(3)) LIMIT 1000";
/* Sessions expired a day ago (sql/migrations/0006: the pool may not DELETE from tokens). */
static const char SQL_SESSIONS_PURGE[] = "CALL sessions_purge_expired()";
enum { SP_PURGED };   /* its one row: how many it deleted */
static const char SQL_USER_ROW[] = "SELECT " USER_COLS " FROM users WHERE id = ?";
static const char SQL_SESSION_END[] =
	"UPDATE tokens SET revoked_at = NOW(3) WHERE id = ? AND revoked_at IS NULL";

int throttle_clear(struct ctx *c, const unsigned char key[SHA256_LEN])
{
	return db_exec(c->db, SQL_THROTTLE_CLEAR, "b", key, SHA256_LEN);
}

void throttle_key(const char *org, size_t org_len, const char *email_key, size_t key_len,
	unsigned char out[SHA256_LEN])
{
	char head[48];
	int n = snprintf(head, sizeof head, "%zu:%zu:", org_len, key_len);
	size_t len = (size_t)n + org_len + key_len;
	char *buf = malloc(len);
	if (!buf)
		abort();
	memcpy(buf, head, (size_t)n);
	memcpy(buf + n, org, org_len);
	memcpy(buf + n + org_len, email_key, key_len);
	sha256(buf, len, out);
	free(buf);
}

/* Seconds a key is locked for after its n-th consecutive failure: 2^(n-5), at most 900. */
static long lock_seconds(long n)
{
	if (n < FREE_FAILURES)
		return 0;
	if (n - FREE_FAILURES >= 10)   /* 2^10 > 900; and no shift past the width of long */
		return MAX_LOCK;
	long s = 1L << (n - FREE_FAILURES);
	return s < MAX_LOCK ? s : MAX_LOCK;
}

#define THROTTLE_BUSY (-2)

/* One transaction: 0 when the attempt may go on (it is counted as failure *n, and the caller
 * holds a slot of the bound on password hashes: password_slot_give), the seconds a lock has
 * left (> 0; nothing counted), THROTTLE_BUSY when every slot is taken (nothing counted: the
 * attempt is answered 503 and never checked), or -1 on a database error (rolled back). A
 * locked key is answered before any slot is taken: a 429 costs no hash. */
static long throttle_tx(struct ctx *c, const unsigned char key[SHA256_LEN], long *n)
{
	struct dbres r;
	if (db_exec_raw(c->db, SQL_READ_COMMITTED, sizeof SQL_READ_COMMITTED - 1) < 0 ||
	    db_begin(c->db) < 0 ||
	    db_query(c->db, c->a, &r, SQL_THROTTLE_READ, "b", key, SHA256_LEN) < 0)
		return -1;
	long left = r.nrows ? (long)db_i(&r, 0, TH_LEFT_S) : 0;
	if (left > 0) {
		db_rollback(c->db);
		return left;
	}
	if (!password_slot_take()) {
		db_rollback(c->db);
		return THROTTLE_BUSY;
	}
	*n = r.nrows ? (long)db_i(&r, 0, TH_FAILURES) + 1 : 1;
	long lock = lock_seconds(*n);
	if ((r.nrows ? db_exec(c->db, SQL_THROTTLE_COUNT, "iiib", (long long)*n, (long long)lock,
			(long long)lock, key, SHA256_LEN)
		: db_exec(c->db, SQL_THROTTLE_FIRST, "b", key, SHA256_LEN)) < 0 ||
	    db_commit(c->db) < 0) {
		password_slot_give();
		return -1;
	}
	return 0;
}

/* A twin's first INSERT of the key may lose (duplicate key): that is a retry too. */
static long throttle_enter(struct ctx *c, const unsigned char key[SHA256_LEN], long *n)
{
	for (int attempt = 0;; attempt++) {
		long rc = throttle_tx(c, key, n);
		if (rc >= 0 || rc == THROTTLE_BUSY)
			return rc;
		db_rollback(c->db);
		if (!(db_err_retryable(c->db) || db_errno(c->db) == DB_DUP_ENTRY) ||
		    attempt >= c->cfg->tx_retries)
			return -1;
	}
}

static int reply_invalid_credentials(struct ctx *c, long long user, const char *why)
{
	log_write(LOG_INFO, "sign-in failed", "\"rid\":\"%s\",\"user\":%lld,\"reason\":\"%s\"",
		c->request_id, user, why);
	return reply_error(c, 401, "INVALID_CREDENTIALS", "the organisation, email or password is wrong");
}

/* The session's transaction: the user is still active with the password just verified (a
 * deactivation or a new password may have committed while the hash ran), the count is
 * cleared, the session stored and audited. Returns the status, or -1 (to roll back). */
static int session_tx_or_reply(struct ctx *c, const unsigned char key[SHA256_LEN],
	const char *verified, const char *rehashed)
{
	char token[TOKEN_LEN + 1];
	unsigned char hash[SHA256_LEN];
	struct dbres r, e;
	if (db_begin(c->db) < 0 || db_query(c->db, c->a, &r, SQL_USER_RECHECK, "i", c->me.user_id) < 0)
		return -1;
	if (r.nrows == 0 || !db_s(&r, 0, RC_HASH) || strcmp(db_s(&r, 0, RC_HASH), verified) != 0) {
		db_rollback(c->db);
		return reply_invalid_credentials(c, c->me.user_id, "changed while checking");
	}
	auth_new_token(token, hash);
	if ((rehashed && db_exec(c->db, SQL_REHASH, "si", rehashed, c->me.user_id) < 0) ||
	    throttle_clear(c, key) < 0 ||
	    db_exec(c->db, SQL_SESSION_INSERT, "iib", c->me.org_id, c->me.user_id, hash, sizeof hash) < 0)
		return -1;
	long long id = db_insert_id(c->db);
	if (db_query(c->db, c->a, &e, SQL_SESSION_EXPIRES, "i", id) < 0)
		return -1;
	const char *expires = db_s(&e, 0, SE_EXPIRES_AT);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_time(g, "expiresAt", expires);
	jw_close(g);
	audit_add(c, "session.created", "session", id, jw_finish(c->a, g));
	if (audit_flush(c) < 0 ||
	    db_query(c->db, c->a, &r, SQL_USER_ROW, "i", c->me.user_id) < 0 || r.nrows != 1)
		return -1;
	g = reply_data(c, 201);
	jw_open(g, NULL);
	jw_str(g, "token", token);
	jw_time(g, "expiresAt", expires);
	jw_key(g, "user");
	write_user(g, &r, 0);
	jw_close(g);
	if (db_commit(c->db) < 0)
		return -1;
	return reply_done(c);
}

/* `pw` verified against `verified`: a hash of another cost than the configured one is
 * replaced, so a change of pw_opslimit/pw_memlimit reaches every user who signs in. */
static int start_session(struct ctx *c, const unsigned char key[SHA256_LEN], const char *verified,
	const struct jv *pw)
{
	char fresh[PASSWORD_HASH_MAX];
	const char *rehashed = NULL;
	if (password_needs_rehash(c->cfg, verified) && password_hash(c->cfg, pw->s, pw->len, fresh) == 0)
		rehashed = fresh;
	for (int attempt = 0;; attempt++) {
		http_reset_response(c);
		int rc = session_tx_or_reply(c, key, verified, rehashed);
		if (rc >= 0)
			return rc;
		db_rollback(c->db);
		if (!db_err_retryable(c->db) || attempt >= c->cfg->tx_retries) {
			http_reset_response(c);
			return STEP_DB_ERROR;
		}
	}
}

/* The attempt, counted: one Argon2id verification (of a dummy hash when there is no usable
 * one) and, when it matches, the session. Every way to fail runs the same statements and
 * answers the same body. */
static int check_or_reply(struct ctx *c, const struct jv *org, const char *ekey, size_t elen,
	const struct jv *pw, const unsigned char key[SHA256_LEN], long n)
{
	struct dbres r;
	long long org_id = org->len == strlen(org->s) ? id_parse(org->s) : 0;
	if (db_query(c->db, c->a, &r, SQL_SIGNIN_USER, "iS", org_id, ekey, elen) < 0)
		return STEP_DB_ERROR;
	const char *stored = r.nrows && db_i(&r, 0, SI_ACTIVE) ? db_s(&r, 0, SI_HASH) : NULL;
	long long user = r.nrows ? db_i(&r, 0, SI_ID) : 0;
	if (!password_verify(c->cfg, stored, pw->s, pw->len)) {
		long lock = lock_seconds(n);
		if (lock && db_exec(c->db, SQL_THROTTLE_RESTAMP, "ibi", (long long)lock, key, SHA256_LEN,
				(long long)n) < 0)
			return STEP_DB_ERROR;
		return reply_invalid_credentials(c, user, !r.nrows ? "unknown"
			: !db_i(&r, 0, SI_ACTIVE) ? "inactive" : !stored ? "no password"
			: "wrong password");
	}
	c->me.org_id = org_id;
	c->me.user_id = user;
	return start_session(c, key, stored, pw);
}

int reply_hashing_busy(struct ctx *c)
{
	c->rs.retry_after = 1;
	return reply_error(c, 503, "SERVICE_UNAVAILABLE",
		"too many passwords are being checked at once; retry after Retry-After seconds");
}

int h_sessions_create(struct ctx *c)
{
	static const char *const known[] = { "orgId", "email", "password", NULL };
	static const char *const none[] = { NULL };
	q_parse(c, none);
	const struct jv *org = v_string(c, "orgId"), *email = v_string(c, "email"),
		*pw = v_string(c, "password");
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	const char *ekey = lower_az(c->a, email->s, email->len);
	unsigned char key[SHA256_LEN];
	throttle_key(org->s, org->len, ekey, email->len, key);
	long n = 0, left = throttle_enter(c, key, &n);
	if (left == THROTTLE_BUSY)
		return reply_hashing_busy(c);   /* issue 23: a flood must not slow the signed-in */
	if (left < 0)
		return STEP_DB_ERROR;
	if (left > 0) {
		log_write(LOG_INFO, "sign-in throttled", "\"rid\":\"%s\",\"retryAfter\":%ld",
			c->request_id, left);
		c->rs.retry_after = left;
		return reply_error(c, 429, "TOO_MANY_ATTEMPTS", "too many failed sign-ins; retry later");
	}
	int rc = check_or_reply(c, org, ekey, email->len, pw, key, n);
	password_slot_give();
	return rc;
}

int h_sessions_end(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);
	if (!c->me.session)
		return reply_not_found(c);   /* an API token is no session: nothing revoked */
	if (c->ndetails)
		return reply_validation(c);
	if (db_exec(c->db, SQL_SESSION_END, "i", c->me.token_id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "session.ended", "session", c->me.token_id, "{}");
	return reply_empty(c, 204);
}

long sessions_purge(struct db *db)
{
	struct arena a = { 0 };
	struct dbres r;
	long n = -1;
	if (db_exec(db, SQL_THROTTLE_PURGE, "") < 0)
		goto out;
	n = (long)db_affected(db);
	if (db_query(db, &a, &r, SQL_SESSIONS_PURGE, "") < 0 || r.nrows != 1) {
		n = -1;
		goto out;
	}
	n += (long)db_i(&r, 0, SP_PURGED);
out:
	arena_free(&a);
	return n;
}
