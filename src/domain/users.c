/* Health, the caller, users and their tokens (doc/openapi.yaml#paths). */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/people.h"
#include "page.h"
#include "tx.h"
#include "valid.h"

static const char SQL_PING[] = "SELECT 1";
static const char SQL_USER[] =
	"SELECT " USER_COLS " FROM users WHERE id = ? AND org_id = ?";
static const char SQL_USERS[] =
	"SELECT " USER_COLS " FROM users WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?";
static const char SQL_USER_INSERT[] =
	"INSERT INTO users (org_id, email, email_key, name, roles) VALUES (?, ?, ?, ?, ?)";
static const char SQL_TOKEN_INSERT[] =
	"INSERT INTO tokens (org_id, user_id, name, token_hash, minted_by) VALUES (?, ?, ?, ?, ?)";
/* The owner's row, locked: a PATCH that deactivates them waits for this mint and then revokes
 * the new token with the rest, or this waits for it and sees them inactive (API §7 v1.2). */
static const char SQL_OWNER_LOCK[] = "SELECT active FROM users WHERE id = ? FOR UPDATE";
enum { OWNER_ACTIVE };
static const char SQL_TOKEN_CREATED[] = "SELECT created_at FROM tokens WHERE id = ?";
enum { TC_CREATED_AT };
/* Sessions live in the tokens table too, but are not API tokens: their ids answer 404 here.
 * Filtered by organisation without a lock, then locked by id (lock.h). */
static const char SQL_TOKEN_FIND[] =
	"SELECT id FROM tokens WHERE id = ? AND org_id = ? AND kind = 'token'";
static const char SQL_TOKEN_LOCK[] =
	"SELECT revoked_at IS NOT NULL, user_id FROM tokens WHERE id = ? FOR UPDATE";
enum { TL_REVOKED, TL_USER };
static const char SQL_MY_TOKENS[] =
	"SELECT id, name, created_at FROM tokens WHERE user_id = ? AND kind = 'token'"
	" AND revoked_at IS NULL AND id < ? ORDER BY id DESC LIMIT ?";
enum { MT_ID, MT_NAME, MT_CREATED_AT };
static const char SQL_TOKEN_REVOKE[] = "UPDATE tokens SET revoked_at = NOW(3) WHERE id = ?";

static const char SQL_USER_LOCK[] =
	"SELECT name, roles, active FROM users WHERE id = ? AND org_id = ? FOR UPDATE";
enum { UL_NAME, UL_ROLES, UL_ACTIVE };
/* Locks every active ADMIN of the organisation but one: two PATCHes that would each remove
 * one of the last two ADMINs serialise here, and the second sees the first's change. */
static const char SQL_OTHER_ADMINS[] =
	"SELECT id FROM users WHERE org_id = ? AND id <> ? AND active = 1 AND (roles & 1) <> 0"
	" FOR UPDATE";
static const char SQL_USER_UPDATE[] =
	"UPDATE users SET name = ?, roles = ?, active = ? WHERE id = ?";
static const char SQL_REVOKE_ALL[] =
	"UPDATE tokens SET revoked_at = NOW(3) WHERE user_id = ? AND revoked_at IS NULL";
static const char SQL_VOID_INVITATIONS[] =
	"UPDATE invitations SET voided_at = NOW(3)"
	" WHERE user_id = ? AND used_at IS NULL AND voided_at IS NULL";

static const char *const role_names[] = { "ADMIN", "CREATOR", "APPROVER", "TREASURER", "VIEWER" };
#define NROLES 5

int h_healthz(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);   /* doc/openapi.yaml#Conventions: every route refuses unknown query parameters */
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_PING, "") < 0 &&
	    (db_connected(c->db) || tx_connect(c) < 0 || db_query(c->db, c->a, &r, SQL_PING, "") < 0))
		return reply_error(c, 503, "SERVICE_UNAVAILABLE", "the database does not answer");
	yajl_gen g = reply_data(c, 200);
	jw_open(g, NULL);
	jw_str(g, "status", "ok");
	jw_close(g);
	return reply_done(c);
}

static void write_roles(yajl_gen g, unsigned roles)
{
	jw_array(g, "roles");
	for (int i = 0; i < NROLES; i++)
		if (roles & (1u << i))
			jw_str(g, NULL, role_names[i]);
	jw_array_close(g);
}

/* The members of a user object, without its braces (h_me adds to them). */
static void user_members(yajl_gen g, const struct dbres *r, size_t i)
{
	jw_id(g, "id", db_i(r, i, U_ID));
	jw_str(g, "email", db_s(r, i, U_EMAIL));
	jw_str(g, "name", db_s(r, i, U_NAME));
	write_roles(g, (unsigned)db_i(r, i, U_ROLES));
	jw_id(g, "orgId", db_i(r, i, U_ORG));
	jw_time(g, "createdAt", db_s(r, i, U_CREATED_AT));
	jw_bool(g, "active", db_i(r, i, U_ACTIVE) != 0);
}

void write_user(yajl_gen g, const struct dbres *r, size_t i)
{
	jw_open(g, NULL);
	user_members(g, r, i);
	jw_close(g);
}

int reply_user(struct ctx *c, int status, long long id)
{
	struct dbres r;
	int rc;
	if ((rc = find_own_or_reply(c, &r, SQL_USER, id)) != STEP_GO_ON)
		return rc;
	write_user(reply_data(c, status), &r, 0);
	return reply_done(c);
}

int h_me(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_USER, "ii", c->me.user_id, c->me.org_id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	yajl_gen g = reply_data(c, 200);
	jw_open(g, NULL);
	user_members(g, &r, 0);
	jw_str(g, "authenticatedBy", c->me.session ? "session" : "token");
	jw_time(g, "expiresAt", c->me.expires_at);
	jw_close(g);
	return reply_done(c);
}

static size_t user_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	write_user(g, r, i);
	return i + 1;
}

int h_users_list(struct ctx *c)
{
	return page_list_reply(c, SQL_USERS, c->me.org_id, user_item);
}

/* Members (API §10): how every screen names people, so any user may list them; without
 * the email, which stays an ADMIN's to see. */
static const char SQL_MEMBERS[] =
	"SELECT id, name, roles, active FROM users WHERE org_id = ? AND id < ?"
	" ORDER BY id DESC LIMIT ?";
enum { M_ID, M_NAME, M_ROLES, M_ACTIVE };

static size_t member_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	(void)c;
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, M_ID));
	jw_str(g, "name", db_s(r, i, M_NAME));
	write_roles(g, (unsigned)db_i(r, i, M_ROLES));
	jw_bool(g, "active", db_i(r, i, M_ACTIVE) != 0);
	jw_close(g);
	return i + 1;
}

int h_members_list(struct ctx *c)
{
	return page_list_reply(c, SQL_MEMBERS, c->me.org_id, member_item);
}

/* `roles`: a non-empty array of role names → bit set; 0 after recording an error. */
static unsigned parse_roles(struct ctx *c)
{
	struct jv *v = json_get(c->body, "roles");
	unsigned roles = 0;
	if (!v || v->t == J_NULL) {
		detail_str(c, "roles", "is required");
		return 0;
	}
	if (v->t != J_ARR || v->n == 0) {
		detail_str(c, "roles", "must be a non-empty array of ADMIN, CREATOR, APPROVER, TREASURER, VIEWER");
		return 0;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct jv *e = v->v[i];
		unsigned bit = 0;
		for (int k = 0; k < NROLES && e->t == J_STR; k++)
			if (strlen(role_names[k]) == e->len && memcmp(role_names[k], e->s, e->len) == 0)
				bit = 1u << k;
		if (!bit) {
			detail_str(c, "roles", "must hold only ADMIN, CREATOR, APPROVER, TREASURER, VIEWER");
			return 0;
		}
		roles |= bit;
	}
	return roles;
}

char *lower_az(struct arena *a, const char *s, size_t len)
{
	char *key = arena_strndup(a, s, len);
	for (size_t i = 0; i < len; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
	return key;
}

/* Exactly one '@' with something on each side; the key compares case-insensitively (A-Z). */
static char *email_key(struct ctx *c, const char *email)
{
	const char *at = strchr(email, '@');
	if (!at || at == email || !at[1] || strchr(at + 1, '@')) {
		detail_str(c, "email", "must be an address with one @ and text on each side");
		return NULL;
	}
	return lower_az(c->a, email, strlen(email));
}

int h_users_create(struct ctx *c)
{
	static const char *const known[] = { "email", "name", "roles", NULL };
	static const char *const none[] = { NULL };
	const char *email = NULL, *name = NULL, *key = NULL;
	q_parse(c, none);
	if (v_text(c, "email", true, 1, 254, &email) == V_OK)
		key = email_key(c, email);
	v_text(c, "name", true, 1, 140, &name);
	unsigned roles = parse_roles(c);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if (db_exec(c->db, SQL_USER_INSERT, "isssi", c->me.org_id, email, key, name,
			(long long)roles) < 0) {
		if (db_errno(c->db) != DB_DUP_ENTRY)
			return STEP_DB_ERROR;
		detail_str(c, "email", "is already taken in this organisation");
		return reply_error(c, 409, "CONFLICT", "a user with this email already exists");
	}
	long long id = db_insert_id(c->db);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "email", email);
	jw_str(g, "name", name);
	write_roles(g, roles);
	jw_close(g);
	audit_add(c, "user.created", "user", id, jw_finish(c->a, g));
	return reply_user(c, 201, id);
}

/* 0 when `user` is active, under a lock until COMMIT; else the reply: the ADMIN route's 409,
 * or for the caller's own token the 401 of a credential just revoked by a deactivation. */
static int lock_owner_or_reply(struct ctx *c, long long user, bool with_user)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_OWNER_LOCK, "i", user) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 1 && db_i(&r, 0, OWNER_ACTIVE))
		return STEP_GO_ON;
	if (!with_user) {
		c->rs.www_authenticate = true;
		return reply_error(c, 401, "UNAUTHENTICATED", "a valid bearer token is required");
	}
	detail_str(c, "reason", "USER_INACTIVE");
	return reply_error(c, 409, "INVALID_STATE", "the user is deactivated");
}

/* Mints an API token for `user` from the body {name?}: 201 {id, token, [userId,] name,
 * createdAt}. `with_user`: the ADMIN route also names the owner. */
static int mint_token_reply(struct ctx *c, long long user, bool with_user)
{
	static const char *const known[] = { "name", NULL };
	static const char *const none[] = { NULL };
	const char *name = NULL;
	struct dbres r;
	int rc;
	q_parse(c, none);
	v_text(c, "name", false, 0, 140, &name);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	if ((rc = lock_owner_or_reply(c, user, with_user)) != STEP_GO_ON)
		return rc;
	char token[TOKEN_LEN + 1];
	unsigned char hash[SHA256_LEN];
	auth_new_token(token, hash);
	/* Who made it: accepting an invitation ends the owner's own and keeps an ADMIN's. */
	if (db_exec(c->db, SQL_TOKEN_INSERT, "iisbi", c->me.org_id, user, name, hash, sizeof hash,
			c->me.user_id) < 0)
		return STEP_DB_ERROR;
	long long id = db_insert_id(c->db);
	if (db_query(c->db, c->a, &r, SQL_TOKEN_CREATED, "i", id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "token.created", "token", id,
		arena_printf(c->a, "{\"userId\":\"%lld\"}", user));
	yajl_gen g = reply_data(c, 201);
	jw_open(g, NULL);
	jw_id(g, "id", id);
	jw_str(g, "token", token);
	if (with_user)
		jw_id(g, "userId", user);
	jw_str(g, "name", name);
	jw_time(g, "createdAt", db_s(&r, 0, TC_CREATED_AT));
	jw_close(g);
	return reply_done(c);
}

int h_tokens_create(struct ctx *c)
{
	long long user;
	struct dbres r;
	int rc;
	/* A token minted for a deactivated user would come to life if they were reactivated,
	 * which deactivation rules out (API §5: for good): mint_token_reply checks under the lock. */
	if ((rc = find_param_or_reply(c, &r, SQL_USER, &user)) != STEP_GO_ON)
		return rc;
	return mint_token_reply(c, user, true);
}

int h_me_tokens_create(struct ctx *c)
{
	return mint_token_reply(c, c->me.user_id, false);
}

static size_t token_item(struct ctx *c, yajl_gen g, const struct dbres *r, size_t i)
{
	static const struct column cols[] = { { "id", 'i', MT_ID }, { "name", 's', MT_NAME },
		{ "createdAt", 't', MT_CREATED_AT }, { NULL } };
	write_columns(g, r, i, cols);
	return i + 1;
}

int h_me_tokens_list(struct ctx *c)
{
	return page_list_reply(c, SQL_MY_TOKENS, c->me.user_id, token_item);
}

int h_tokens_revoke(struct ctx *c)
{
	static const char *const none[] = { NULL };
	long long id;
	struct dbres r;
	int rc;
	/* Filtered by organisation before the lock, never while waiting for it (lock.h). */
	if ((rc = find_param_or_reply(c, &r, SQL_TOKEN_FIND, &id)) != STEP_GO_ON)
		return rc;
	if (db_query(c->db, c->a, &r, SQL_TOKEN_LOCK, "i", id) < 0)
		return STEP_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	long long owner = db_i(&r, 0, TL_USER);
	/* API §5: an unknown id answers 404 before someone else's token answers 403. */
	if (owner != c->me.user_id && !(c->me.roles & ROLE_ADMIN))
		return reply_error(c, 403, "FORBIDDEN", "only the token's owner or an ADMIN may revoke it");
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	if (db_i(&r, 0, TL_REVOKED))
		return reply_empty(c, 204);   /* already revoked: nothing changes, no event */
	if (db_exec(c->db, SQL_TOKEN_REVOKE, "i", id) < 0)
		return STEP_DB_ERROR;
	audit_add(c, "token.revoked", "token", id,
		arena_printf(c->a, "{\"userId\":\"%lld\"}", owner));
	return reply_empty(c, 204);
}

/* The validated body of a PATCH /users/{id}: each field NULL/-1 when left out or null. */
struct user_patch {
	const char *name;
	unsigned roles;       /* 0: unchanged */
	int active;           /* -1: unchanged */
};

static void parse_patch(struct ctx *c, struct user_patch *p)
{
	static const char *const known[] = { "name", "roles", "active", NULL };
	static const char *const none[] = { NULL };
	*p = (struct user_patch){ NULL, 0, -1 };
	q_parse(c, none);
	v_text(c, "name", false, 1, 140, &p->name);
	struct jv *v = json_get(c->body, "roles");
	if (v && v->t != J_NULL)
		p->roles = parse_roles(c);
	v = json_get(c->body, "active");
	if (v && v->t == J_BOOL)
		p->active = v->b;
	else if (v && v->t != J_NULL)
		detail_str(c, "active", "must be true or false");
	v_no_unknown(c, known);
}

/* Ends every credential of a user that is being deactivated: for good (API §5). */
static int cut_off(struct ctx *c, long long id, unsigned long long *ended)
{
	if (db_exec(c->db, SQL_REVOKE_ALL, "i", id) < 0)
		return -1;
	*ended = db_affected(c->db);
	return db_exec(c->db, SQL_VOID_INVITATIONS, "i", id);
}

int h_users_patch(struct ctx *c)
{
	long long id;
	struct dbres r;
	int rc;
	if ((rc = find_param_or_reply(c, &r, SQL_USER_LOCK, &id)) != STEP_GO_ON)
		return rc;
	struct user_patch p;
	parse_patch(c, &p);
	if (c->ndetails)
		return reply_validation(c);
	const char *old_name = db_s(&r, 0, UL_NAME);
	unsigned old_roles = (unsigned)db_i(&r, 0, UL_ROLES);
	int old_active = (int)db_i(&r, 0, UL_ACTIVE);
	const char *name = p.name ? p.name : old_name;
	unsigned roles = p.roles ? p.roles : old_roles;
	int active = p.active >= 0 ? p.active : old_active;
	if (strcmp(name, old_name) == 0 && roles == old_roles && active == old_active)
		return reply_user(c, 200, id);   /* nothing changes: no event (API §1) */
	bool was_admin = old_active && (old_roles & ROLE_ADMIN);
	if (was_admin && !(active && (roles & ROLE_ADMIN))) {
		struct dbres a;
		if (db_query(c->db, c->a, &a, SQL_OTHER_ADMINS, "ii", c->me.org_id, id) < 0)
			return STEP_DB_ERROR;
		if (a.nrows == 0) {
			detail_str(c, "reason", "LAST_ACTIVE_ADMIN");
			return reply_error(c, 409, "INVALID_STATE",
				"the organisation must keep at least one active ADMIN");
		}
	}
	if (db_exec(c->db, SQL_USER_UPDATE, "siii", name, (long long)roles,
			(long long)active, id) < 0)
		return STEP_DB_ERROR;
	unsigned long long ended = 0;
	if (old_active && !active && cut_off(c, id, &ended) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	if (strcmp(name, old_name) != 0)
		jw_str(g, "name", name);
	if (roles != old_roles)
		write_roles(g, roles);
	if (active != old_active)
		jw_bool(g, "active", active);
	if (ended)
		jw_int(g, "credentialsRevoked", (long long)ended);
	jw_close(g);
	audit_add(c, "user.updated", "user", id, jw_finish(c->a, g));
	return reply_user(c, 200, id);
}
