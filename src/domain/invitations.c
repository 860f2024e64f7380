/* Invitations (API §7): one-time secrets that let a user set a password. */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/people.h"
#include "password.h"
#include "text.h"
#include "valid.h"

static const char SQL_VOID[] =
	"UPDATE invitations SET voided_at = NOW(3)"
	" WHERE user_id = ? AND used_at IS NULL AND voided_at IS NULL";
static const char SQL_INSERT[] =
	"INSERT INTO invitations (org_id, user_id, token_hash, expires_at)"
	" VALUES (?, ?, ?, NOW(3) + INTERVAL 72 HOUR)";
static const char SQL_EXPIRES[] = "SELECT expires_at FROM invitations WHERE id = ?";
enum { EX_EXPIRES_AT };
static const char SQL_USER_LOCK[] =
	"SELECT active FROM users WHERE id = ? AND org_id = ? FOR UPDATE";
enum { UL_ACTIVE };
/* Only a live invitation of an active user; the lock makes two accepts of one secret run
 * one after the other, and the second finds it used. */
static const char SQL_FIND[] =
	"SELECT i.id, i.user_id, i.org_id, u.email_key FROM invitations i"
	" JOIN users u ON u.id = i.user_id"
	" WHERE i.token_hash = ? AND i.used_at IS NULL AND i.voided_at IS NULL"
	" AND i.expires_at > NOW(3) AND u.active = 1 FOR UPDATE";
enum { F_ID, F_USER, F_ORG, F_EMAIL_KEY };
static const char SQL_SET_PASSWORD[] = "UPDATE users SET password_hash = ? WHERE id = ?";
static const char SQL_USED[] = "UPDATE invitations SET used_at = NOW(3) WHERE id = ?";
static const char SQL_END_SESSIONS[] =
	"UPDATE tokens SET revoked_at = NOW(3)"
	" WHERE user_id = ? AND kind = 'session' AND revoked_at IS NULL";
/* A session could mint a token that outlived a password reset; an ADMIN's stay (API §7 v1.2). */
static const char SQL_END_OWN_TOKENS[] =
	"UPDATE tokens SET revoked_at = NOW(3)"
	" WHERE user_id = ? AND kind = 'token' AND minted_by = user_id AND revoked_at IS NULL";

static const char SQL_MAIL_TOKEN[] =
	"REPLACE INTO invitation_mails (user_id, token) VALUES (?, ?)";

int invitation_issue(struct ctx *c, long long user_id, char token[TOKEN_LEN + 1],
	const char **expires_at)
{
	unsigned char hash[SHA256_LEN];
	struct dbres r;
	auth_new_secret(INVITATION_PREFIX, token, hash);
	if (db_exec(c->db, SQL_VOID, "i", user_id) < 0 ||
	    db_exec(c->db, SQL_INSERT, "iib", c->me.org_id, user_id, hash, sizeof hash) < 0 ||
	    db_query(c->db, c->a, &r, SQL_EXPIRES, "i", db_insert_id(c->db)) < 0)
		return -1;
	*expires_at = db_s(&r, 0, EX_EXPIRES_AT);
	/* For the mail (src/deliver.c), only when one will be sent; deleted once it is. */
	if (c->cfg->smtp_url[0] && db_exec(c->db, SQL_MAIL_TOKEN, "is", user_id, token) < 0)
		return -1;
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_time(g, "expiresAt", *expires_at);
	jw_close(g);
	audit_add(c, "user.invited", "user", user_id, jw_finish(c->a, g));
	return 0;
}

int h_invitations_create(struct ctx *c)
{
	static const char *const known[] = { NULL };
	long long user;
	struct dbres r;
	int rc;
	if ((rc = find_param_or_reply(c, &r, SQL_USER_LOCK, &user)) != STEP_GO_ON)
		return rc;
	q_parse(c, known);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	/* A deactivated user may not come back through an invitation (API §5: for good). */
	if (!db_i(&r, 0, UL_ACTIVE)) {
		detail_str(c, "reason", "USER_INACTIVE");
		return reply_error(c, 409, "INVALID_STATE", "the user is deactivated");
	}
	char token[TOKEN_LEN + 1];
	const char *expires;
	if (invitation_issue(c, user, token, &expires) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = reply_data(c, 201);
	jw_open(g, NULL);
	jw_str(g, "token", token);
	jw_time(g, "expiresAt", expires);
	/* Whether `remit deliver` will mail the link (invitation_issue kept the token for it) or
	 * the ADMIN must pass it on: the frontend's invitation dialog says which. */
	jw_str(g, "mail", c->cfg->smtp_url[0] ? "queued" : "off");
	jw_close(g);
	return reply_done(c);
}

/* API §7 password rules; records the error under `password`. */
static bool password_ok(struct ctx *c, const struct jv *pw, const char *email_key)
{
	long n = utf8_count(pw->s, pw->len);
	if (n < 12 || n > 256)
		detail_str(c, "password", "must be 12 to 256 characters long");
	else if (text_has_control(pw->s, pw->len))
		detail_str(c, "password", "must not contain control characters");
	else if (strcmp(lower_az(c->a, pw->s, pw->len), email_key) == 0 &&
		 strlen(email_key) == pw->len)
		detail_str(c, "password", "must not be the email address");
	else
		return true;
	return false;
}

/* Checks in the order of API §7: field types, the token, the password rules. */
int h_invitations_accept(struct ctx *c)
{
	static const char *const known[] = { "token", "password", NULL };
	static const char *const none[] = { NULL };
	int rc;
	q_parse(c, none);
	const struct jv *tok = v_string(c, "token"), *pw = v_string(c, "password");
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r = { 0 };
	unsigned char hash[SHA256_LEN];
	sha256(tok->s, tok->len, hash);
	if (tok->len == TOKEN_LEN && memcmp(tok->s, INVITATION_PREFIX, 4) == 0 &&
	    db_query(c->db, c->a, &r, SQL_FIND, "b", hash, sizeof hash) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_error(c, 400, "INVITATION_INVALID",
			"the invitation is unknown, used or expired");
	long long id = db_i(&r, 0, F_ID), user = db_i(&r, 0, F_USER);
	const char *email_key = db_s(&r, 0, F_EMAIL_KEY);
	c->me.org_id = db_i(&r, 0, F_ORG);
	c->me.user_id = user;   /* the audit's actor: the person setting their password */
	if (!password_ok(c, pw, email_key))
		return reply_validation(c);
	char stored[PASSWORD_HASH_MAX];
	if (!password_slot_take())
		return reply_hashing_busy(c);
	rc = password_hash(c->cfg, pw->s, pw->len, stored);
	password_slot_give();
	if (rc < 0)
		return reply_error(c, 503, "SERVICE_UNAVAILABLE", "the service is busy; retry later");
	char org[24];
	int olen = snprintf(org, sizeof org, "%lld", c->me.org_id);
	throttle_key(org, (size_t)olen, email_key, strlen(email_key), hash);
	if (db_exec(c->db, SQL_SET_PASSWORD, "si", stored, user) < 0 ||
	    db_exec(c->db, SQL_USED, "i", id) < 0 ||
	    db_exec(c->db, SQL_END_SESSIONS, "i", user) < 0)
		return STEP_DB_ERROR;
	unsigned long long ended = db_affected(c->db);
	if (db_exec(c->db, SQL_END_OWN_TOKENS, "i", user) < 0)
		return STEP_DB_ERROR;
	unsigned long long tokens = db_affected(c->db);
	if (throttle_clear(c, hash) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "user.password_set", "user", user,
		arena_printf(c->a, "{\"sessionsEnded\":%llu,\"tokensEnded\":%llu}", ended, tokens));
	return reply_user(c, 200, user);
}
