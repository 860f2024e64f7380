#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static const char SQL_TOKEN[] =
	"SELECT t.id, u.id, u.org_id, u.roles FROM tokens t JOIN users u ON u.id = t.user_id"
	" WHERE t.token_hash = ? AND t.revoked_at IS NULL";

static int unauthenticated(struct ctx *c)
{
	c->rs.www_authenticate = true;
	return reply_error(c, 401, "UNAUTHENTICATED", "a valid bearer token is required");
}

int auth_authenticate(struct ctx *c)
{
	const char *h = c->rq.authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return unauthenticated(c);
	const char *tok = h + 7;
	tok += strspn(tok, " ");
	size_t n = strlen(tok);
	if (n != TOKEN_LEN || strncmp(tok, TOKEN_PREFIX, 4) != 0)
		return unauthenticated(c);
	unsigned char hash[SHA256_LEN];
	sha256(tok, n, hash);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_TOKEN, "b", hash, sizeof hash) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return unauthenticated(c);
	c->me.token_id = db_i(&r, 0, 0);
	c->me.user_id = db_i(&r, 0, 1);
	c->me.org_id = db_i(&r, 0, 2);
	c->me.roles = (unsigned)db_i(&r, 0, 3);
	return 0;
}

void auth_new_token(char token[TOKEN_LEN + 1], unsigned char hash[SHA256_LEN])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33] = { 0 };
	if (getrandom(raw, 32, 0) != 32)
		abort();   /* no randomness from the kernel: never hand out a weak token */
	memcpy(token, TOKEN_PREFIX, 4);
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
