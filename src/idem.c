#include "idem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "metrics.h"

static const char SQL_CLAIM[] =
	"INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, expires_at)"
	" VALUES (?, ?, ?, NOW(3) + INTERVAL ? SECOND)";
/* START TRANSACTION, then SQL_CLAIM; answers with the row's id (sql/migrations/0005). */
static const char SQL_BEGIN_CLAIM[] = "CALL tx_claim(?, ?, ?, ?)";
static const char SQL_FIND[] =
	"SELECT id, fingerprint, status, etag, body, expires_at <= NOW(3)"
	" FROM idempotency_keys WHERE user_id = ? AND idem_key = ?";
static const char SQL_HELD[] = "SELECT 1 FROM idempotency_keys WHERE id = ?";
static const char SQL_DROP_EXPIRED[] =
	"DELETE FROM idempotency_keys WHERE id = ? AND expires_at <= NOW(3)";
/* PURGE_IN ids at a time: point lookups on the primary key lock only those rows, never a
 * neighbour (a range would read, and wait for, the row after its end). The expiry test is
 * written so that no index can serve it: a range on idem_expiry would end on the first
 * live key, which may be the claim of a request still running. */
#define PURGE_IN 16
static const char SQL_DROP_EXPIRED_IN[] =
	"DELETE FROM idempotency_keys WHERE id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	" AND TIMESTAMPDIFF(MICROSECOND, expires_at, NOW(3)) >= 0";
static const char SQL_EXPIRED[] =
	"SELECT id FROM idempotency_keys WHERE expires_at <= NOW(3) ORDER BY expires_at LIMIT ?";

/* SHA-256 of method, path and the body: its canonical JSON (members sorted, no white space),
 * or for any other media type (API §3) the type's name and the exact bytes. The body is
 * written as a JSON string of its bytes, not validated: the handler refuses bad UTF-8 later,
 * and no JSON body's document (an object there) can look like a string. */
static void fingerprint(struct ctx *c, unsigned char out[SHA256_LEN])
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_array_open(g);   /* one document: [method, path, body] or [method, path, type, bytes] */
	yajl_gen_string(g, (const unsigned char *)c->rq.method, strlen(c->rq.method));
	yajl_gen_string(g, (const unsigned char *)c->rq.path, strlen(c->rq.path));
	if (c->rq.media && c->rq.media != MT_JSON) {
		const char *type = media_name(c->rq.media);
		yajl_gen_string(g, (const unsigned char *)type, strlen(type));
		yajl_gen_string(g, (const unsigned char *)c->rq.body, c->rq.body_len);
	} else {
		json_write_canonical(g, c->body);
	}
	yajl_gen_array_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	sha256(buf, len, out);
	yajl_gen_free(g);
}

/* The answer to a key whose committed row holds `stored_fp` and the response: the same
 * fingerprint replays it, another one is 422. */
static void answer(struct ctx *c, const unsigned char fp[SHA256_LEN], const char *stored_fp,
	size_t stored_fp_len, int status, long long etag, const char *body, size_t body_len)
{
	if (stored_fp_len != SHA256_LEN || memcmp(stored_fp, fp, SHA256_LEN) != 0) {
		metrics_key_outcome(MK_REUSED);
		c->ndetails = 0;
		reply_error(c, 422, "IDEMPOTENCY_KEY_REUSED",
			"this Idempotency-Key was used for another request");
		return;
	}
	c->rs.status = status;
	c->rs.etag = etag;
	c->rs.body = body;
	c->rs.body_len = body_len;
	c->rs.replayed = true;
}

struct idem *idem_state(struct ctx *c)
{
	if (!c->idem) {
		c->idem = arena_alloc(c->a, sizeof *c->idem);
		memset(c->idem, 0, sizeof *c->idem);
	}
	return c->idem;
}

bool idem_answer_seen(struct ctx *c)
{
	if (!c->idem)
		return false;
	const struct idem_seen *s = &c->idem->seen;
	if (!s->key || !c->idem->key || strcmp(s->key, c->idem->key) != 0)
		return false;
	unsigned char fp[SHA256_LEN];
	fingerprint(c, fp);
	answer(c, fp, s->fingerprint, s->fingerprint_len, s->status, s->etag, s->body, s->body_len);
	return true;
}

/* After a duplicate key: the first attempt has committed (a committed row always holds its
 * response). Read it with a fresh statement outside the rolled-back transaction. */
static enum idem_claim existing(struct ctx *c, const unsigned char fp[SHA256_LEN])
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_FIND, "is", c->me.user_id, c->idem->key) < 0)
		return IDEM_DB_ERROR;
	if (r.nrows == 0)
		return IDEM_RECLAIM;   /* purged in between: the key is new again */
	if (db_i(&r, 0, 5)) {
		if (db_exec(c->db, SQL_DROP_EXPIRED, "i", db_i(&r, 0, 0)) < 0)
			return IDEM_DB_ERROR;
		return IDEM_RECLAIM;   /* expired: a new key */
	}
	answer(c, fp, db_s(&r, 0, 1), db_len(&r, 0, 1), (int)db_i(&r, 0, 2), db_i(&r, 0, 3),
		db_s(&r, 0, 4), db_len(&r, 0, 4));
	return IDEM_DONE;
}

bool idem_held(struct ctx *c)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_HELD, "i", c->idem->row) == 0 && r.nrows == 1)
		return true;
	db_set_error(c->db, DB_DEADLOCK, "the transaction lost its idempotency key");
	return false;
}

int idem_in_progress(struct ctx *c)
{
	metrics_key_outcome(MK_IN_PROGRESS);
	c->ndetails = 0;
	c->rs.retry_after = true;
	return reply_error(c, 409, "IDEMPOTENCY_KEY_IN_PROGRESS",
		"a request with this Idempotency-Key is still running; retry later");
}

/* The claim's INSERT; its row's id in c->idem->row. 0 or -1. */
static int insert(struct ctx *c, const unsigned char fp[SHA256_LEN], bool begin)
{
	long long user = c->me.user_id, retention = c->cfg->idem_retention;
	if (!begin) {
		if (db_exec(c->db, SQL_CLAIM, "isbi", user, c->idem->key, fp, SHA256_LEN, retention) < 0)
			return -1;
		c->idem->row = db_insert_id(c->db);
		return 0;
	}
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_BEGIN_CLAIM, "isbi", user, c->idem->key, fp, SHA256_LEN,
			retention) < 0)
		return -1;
	if (r.nrows != 1 || db_i(&r, 0, 0) <= 0) {   /* no row to store the answer in: never commit */
		db_set_error(c->db, DB_INTERNAL, "tx_claim answered no key row");
		return -1;
	}
	c->idem->row = db_i(&r, 0, 0);
	return 0;
}

enum idem_claim idem_claim(struct ctx *c, bool begin)
{
	unsigned char fp[SHA256_LEN];
	fingerprint(c, fp);
	if (insert(c, fp, begin) == 0)
		return IDEM_RUN;
	unsigned err = db_errno(c->db);
	db_rollback(c->db);
	if (err == DB_LOCK_WAIT_TIMEOUT) {   /* the first attempt still holds the key */
		idem_in_progress(c);
		return IDEM_DONE;
	}
	if (err == DB_DEADLOCK)
		return IDEM_AGAIN;
	if (err != DB_DUP_ENTRY)
		return IDEM_DB_ERROR;
	return existing(c, fp);
}

/* One batch of expired keys, read without locks, deleted in one READ COMMITTED transaction
 * (no gap locks), PURGE_IN at a time, each row only if it is still expired: the purge never
 * waits for a running claim next to an expired row. Returns the number of ids read (0: none
 * left) or -1. */
static long purge_batch(struct db *db, struct arena *a, int batch, long *deleted)
{
	static const char SQL_RC[] = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
	struct dbres r;
	if (db_query(db, a, &r, SQL_EXPIRED, "i", (long long)batch) < 0)
		return -1;
	if (r.nrows == 0)
		return 0;
	if (db_exec_raw(db, SQL_RC, sizeof SQL_RC - 1) < 0 || db_begin(db) < 0)
		return -1;
	for (size_t k = 0; k < r.nrows; k += PURGE_IN) {
		long long id[PURGE_IN];
		for (size_t j = 0; j < PURGE_IN; j++)   /* the last batch repeats its last id */
			id[j] = db_i(&r, k + j < r.nrows ? k + j : r.nrows - 1, 0);
		if (db_exec(db, SQL_DROP_EXPIRED_IN, "iiiiiiiiiiiiiiii", id[0], id[1], id[2], id[3],
				id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
				id[14], id[15]) < 0)
			return -1;
		*deleted += (long)db_affected(db);
	}
	return db_commit(db) < 0 ? -1 : (long)r.nrows;
}

long idem_purge(struct db *db, int batch, int max_batches)
{
	struct arena a = { 0 };
	long total = 0;
	for (int i = 0; i < max_batches; i++) {
		arena_reset(&a);
		long n = purge_batch(db, &a, batch, &total);
		if (n < 0)
			goto failed;
		if (n < batch)
			break;
	}
	arena_free(&a);
	return total;
failed:
	db_rollback(db);
	arena_free(&a);
	return -1;
}
