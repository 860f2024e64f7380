/* Health, the caller, users and their tokens (API §5). */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "domain/handlers.h"
#include "text.h"
#include "valid.h"

static const char SQL_PING[] = "SELECT 1";
static const char SQL_USER[] =
	"SELECT id, email, name, roles, org_id, created_at FROM users WHERE id = ? AND org_id = ?";
static const char SQL_USERS[] =
	"SELECT id, email, name, roles, org_id, created_at FROM users"
	" WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?";
static const char SQL_USER_INSERT[] =
	"INSERT INTO users (org_id, email, email_key, name, roles) VALUES (?, ?, ?, ?, ?)";
static const char SQL_TOKEN_INSERT[] =
	"INSERT INTO tokens (org_id, user_id, name, token_hash) VALUES (?, ?, ?, ?)";
static const char SQL_TOKEN_CREATED[] = "SELECT created_at FROM tokens WHERE id = ?";
static const char SQL_TOKEN_FIND[] = "SELECT id FROM tokens WHERE id = ? AND org_id = ?";
static const char SQL_TOKEN_LOCK[] =
	"SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ? FOR UPDATE";
static const char SQL_TOKEN_REVOKE[] = "UPDATE tokens SET revoked_at = NOW(3) WHERE id = ?";

static const char *const role_names[] = { "ADMIN", "CREATOR", "APPROVER", "TREASURER", "VIEWER" };
#define NROLES 5

int h_healthz(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);   /* API §1: every route refuses unknown query parameters */
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_PING, "") < 0 &&
	    (db_connected(c->db) || db_connect(c->db) < 0 || db_query(c->db, c->a, &r, SQL_PING, "") < 0))
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

static void write_user(yajl_gen g, const struct dbres *r, size_t i)
{
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, 0));
	jw_str(g, "email", db_s(r, i, 1));
	jw_str(g, "name", db_s(r, i, 2));
	write_roles(g, (unsigned)db_i(r, i, 3));
	jw_id(g, "orgId", db_i(r, i, 4));
	jw_time(g, "createdAt", db_s(r, i, 5));
	jw_close(g);
}

static int reply_user(struct ctx *c, int status, long long id)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_USER, "ii", id, c->me.org_id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	write_user(reply_data(c, status), &r, 0);
	return reply_done(c);
}

int h_me(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	return reply_user(c, 200, c->me.user_id);
}

int h_users_list(struct ctx *c)
{
	static const char *const allowed[] = { "limit", "cursor", NULL };
	int limit;
	long long cursor;
	q_parse(c, allowed);
	q_page(c, &limit, &cursor);
	if (c->ndetails)
		return reply_validation(c);
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_USERS, "iii", c->me.org_id,
			cursor ? cursor : INT64_MAX, (long long)limit + 1) < 0)
		return HANDLER_DB_ERROR;
	yajl_gen g = reply_list(c);
	size_t n = page_len(&r, limit);
	for (size_t i = 0; i < n; i++)
		write_user(g, &r, i);
	return reply_list_done(c, page_next(&r, n));
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

/* Exactly one '@' with something on each side; the key compares case-insensitively (A-Z). */
static char *email_key(struct ctx *c, const char *email)
{
	const char *at = strchr(email, '@');
	if (!at || at == email || !at[1] || strchr(at + 1, '@')) {
		detail_str(c, "email", "must be an address with one @ and text on each side");
		return NULL;
	}
	char *key = arena_strndup(c->a, email, strlen(email));
	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return key;
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
			return HANDLER_DB_ERROR;
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

int h_tokens_create(struct ctx *c)
{
	static const char *const known[] = { "name", NULL };
	static const char *const none[] = { NULL };
	long long user = param_id(c, 0);
	struct dbres r;
	if (!user)
		return reply_not_found(c);
	if (db_query(c->db, c->a, &r, SQL_USER, "ii", user, c->me.org_id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	const char *name = NULL;
	q_parse(c, none);
	v_text(c, "name", false, 0, 140, &name);
	v_no_unknown(c, known);
	if (c->ndetails)
		return reply_validation(c);
	char token[TOKEN_LEN + 1];
	unsigned char hash[SHA256_LEN];
	auth_new_token(token, hash);
	if (db_exec(c->db, SQL_TOKEN_INSERT, "iisb", c->me.org_id, user, name, hash, sizeof hash) < 0)
		return HANDLER_DB_ERROR;
	long long id = db_insert_id(c->db);
	if (db_query(c->db, c->a, &r, SQL_TOKEN_CREATED, "i", id) < 0)
		return HANDLER_DB_ERROR;
	audit_add(c, "token.created", "token", id,
		arena_printf(c->a, "{\"userId\":\"%lld\"}", user));
	yajl_gen g = reply_data(c, 201);
	jw_open(g, NULL);
	jw_id(g, "id", id);
	jw_str(g, "token", token);
	jw_id(g, "userId", user);
	jw_str(g, "name", name);
	jw_time(g, "createdAt", db_s(&r, 0, 0));
	jw_close(g);
	return reply_done(c);
}

int h_tokens_revoke(struct ctx *c)
{
	static const char *const none[] = { NULL };
	long long id = param_id(c, 0);
	struct dbres r;
	if (!id)
		return reply_not_found(c);
	/* Filtered by organisation before the lock, never while waiting for it (lock.h). */
	if (db_query(c->db, c->a, &r, SQL_TOKEN_FIND, "ii", id, c->me.org_id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	if (db_query(c->db, c->a, &r, SQL_TOKEN_LOCK, "i", id) < 0)
		return HANDLER_DB_ERROR;
	if (r.nrows == 0)
		return reply_not_found(c);
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	if (db_i(&r, 0, 0))
		return reply_empty(c, 204);   /* already revoked: nothing changes, no event */
	if (db_exec(c->db, SQL_TOKEN_REVOKE, "i", id) < 0)
		return HANDLER_DB_ERROR;
	audit_add(c, "token.revoked", "token", id, "{}");
	return reply_empty(c, 204);
}
