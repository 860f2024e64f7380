#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "idem.h"   /* struct idem_seen only */
#include "idem_key.h"

/* A deactivated user's credentials are revoked when they are deactivated; `u.active` is checked
 * as well so that no credential can outlive it. */
static const char SQL_TOKEN[] =
	"SELECT t.id, u.id, u.org_id, u.roles, t.kind, t.expires_at,"
	" IF(t.minted_by <> t.user_id, t.minted_by, NULL)"
	" FROM tokens t JOIN users u ON u.id = t.user_id"
	" WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.active = 1"
	" AND (t.expires_at IS NULL OR t.expires_at > NOW(3))";
/* Columns of SQL_TOKEN, and of SQL_TOKEN_KEY, which selects the same seven first. */
enum { TOK_ID, TOK_USER, TOK_ORG, TOK_ROLES, TOK_KIND, TOK_EXPIRES, TOK_MINTED_BY,
	TOK_FINGERPRINT, TOK_STATUS, TOK_ETAG, TOK_BODY };
/* A POST that carries a key also reads the answer stored under it, if a live one was
 * committed: a replay then costs this one statement (idem_answer_seen). The row of an
 * attempt still running is not visible to this consistent read, nor is an expired one: both
 * take the claim's path. */
static const char SQL_TOKEN_KEY[] =
	"SELECT t.id, u.id, u.org_id, u.roles, t.kind, t.expires_at,"
	" IF(t.minted_by <> t.user_id, t.minted_by, NULL),"
	" k.fingerprint, k.status, k.etag, k.body"
	" FROM tokens t JOIN users u ON u.id = t.user_id"
	" LEFT JOIN idempotency_keys k ON k.user_id = u.id AND k.idem_key = ?"
	" AND k.expires_at > NOW(3)"
	" WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.active = 1"
	" AND (t.expires_at IS NULL OR t.expires_at > NOW(3))";

static int reply_unauthenticated(struct ctx *c)
{
	c->rs.www_authenticate = true;
	return reply_error(c, 401, "UNAUTHENTICATED", "a valid bearer token is required");
}

int auth_authenticate_or_reply(struct ctx *c, struct idem_seen *seen)
{
	const char *h = c->rq.authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return reply_unauthenticated(c);
	const char *tok = h + 7;
	tok += strspn(tok, " ");
	size_t n = strlen(tok);
	if (n != TOKEN_LEN || strncmp(tok, TOKEN_PREFIX, 4) != 0)
		return reply_unauthenticated(c);
	unsigned char hash[SHA256_LEN];
	sha256(tok, n, hash);
	/* The router parses and checks the header again before any use of what is read here. */
	const char *h_key = c->rq.idem_header;
	char *key = NULL;
	if (h_key && strcmp(c->rq.method, "POST") == 0) {
		key = arena_alloc(c->a, IDEM_KEY_MAX + 1);
		if (idem_key_parse(h_key, strlen(h_key), key) < 0)
			key = NULL;
	}
	struct dbres r;
	if ((key ? db_query(c->db, c->a, &r, SQL_TOKEN_KEY, "sb", key, hash, sizeof hash)
		 : db_query(c->db, c->a, &r, SQL_TOKEN, "b", hash, sizeof hash)) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_unauthenticated(c);
	c->me.token_id = db_i(&r, 0, TOK_ID);
	c->me.user_id = db_i(&r, 0, TOK_USER);
	c->me.org_id = db_i(&r, 0, TOK_ORG);
	c->me.roles = (unsigned)db_i(&r, 0, TOK_ROLES);
	c->me.session = strcmp(db_s(&r, 0, TOK_KIND), "session") == 0;
	c->me.expires_at = db_s(&r, 0, TOK_EXPIRES);
	c->me.minted_by = db_i(&r, 0, TOK_MINTED_BY);
	if (key && db_s(&r, 0, TOK_FINGERPRINT) && db_s(&r, 0, TOK_STATUS)) {
		*seen = (struct idem_seen){ key, db_s(&r, 0, TOK_FINGERPRINT),
			db_len(&r, 0, TOK_FINGERPRINT), (int)db_i(&r, 0, TOK_STATUS),
			db_i(&r, 0, TOK_ETAG), db_s(&r, 0, TOK_BODY), db_len(&r, 0, TOK_BODY) };
	}
	return STEP_GO_ON;
}

void auth_new_token(char token[TOKEN_LEN + 1], unsigned char hash[SHA256_LEN])
{
	auth_new_secret(TOKEN_PREFIX, token, hash);
}

void auth_new_secret(const char prefix[5], char token[TOKEN_LEN + 1],
	unsigned char hash[SHA256_LEN])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33] = { 0 };
	if (getrandom(raw, 32, 0) != 32)
		abort();   /* no randomness from the kernel: never hand out a weak token */
	memcpy(token, prefix, 4);
	char *o = token + 4;
	for (int i = 0; i < 33; i += 3) {   /* 32 bytes → 43 characters, no padding */
		unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		if (i + 1 < 32)
			*o++ = b64[v >> 6 & 63];
		if (i + 2 < 32)
			*o++ = b64[v & 63];
	}
	*o = '\0';
	sha256(token, TOKEN_LEN, hash);
}
