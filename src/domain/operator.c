/* remit bootstrap and remit invite: see operator.h. */
#include "domain/operator.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "domain/people.h"
#include "http.h"
#include "text.h"
#include "tx.h"

static const char SQL_ORG[] = "INSERT INTO orgs (name) VALUES (?)";
static const char SQL_ADMIN[] =
	"INSERT INTO users (org_id, email, email_key, name, roles) VALUES (?, ?, ?, ?, 1)";
static const char SQL_TOKEN[] =
	"INSERT INTO tokens (org_id, user_id, name, token_hash) VALUES (?, ?, 'bootstrap', ?)";
static const char SQL_INVITEE[] =
	"SELECT id, active FROM users WHERE org_id = ? AND email_key = ? FOR UPDATE";
enum { INV_ID, INV_ACTIVE };

static bool text_ok(const char *s, long max)
{
	long n = utf8_count(s, strlen(s));
	return n >= 1 && n <= max && !text_has_control(s, strlen(s));
}

/* A context like a request's, for the helpers that take one (audit_add, invitation_issue). */
static void op_ctx(struct ctx *c, struct arena *a, struct db *db, const struct config *cfg,
	const char *name)
{
	memset(c, 0, sizeof *c);
	c->a = a;
	c->db = db;
	c->cfg = cfg;
	c->request_id = name;
	http_reset_response(c);
}

/* The organisation, its chain, the ADMIN and the token's row; the ids in c->me. */
static int insert_org(struct ctx *c, const char *org, const char *email, const char *name,
	const unsigned char hash[SHA256_LEN], long long *token_id)
{
	const char *key = lower_az(c->a, email, strlen(email));
	if (db_exec(c->db, SQL_ORG, "s", org) < 0)
		return -1;
	c->me.org_id = db_insert_id(c->db);
	if (audit_init_chain(c->db, c->me.org_id) < 0 ||
	    db_exec(c->db, SQL_ADMIN, "isss", c->me.org_id, email, key, name) < 0)
		return -1;
	c->me.user_id = db_insert_id(c->db);
	if (db_exec(c->db, SQL_TOKEN, "iib", c->me.org_id, c->me.user_id, hash, SHA256_LEN) < 0)
		return -1;
	*token_id = db_insert_id(c->db);
	return 0;
}

static void audit_bootstrap(struct ctx *c, const char *org, const char *email,
	const char *name, long long token_id)
{
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "name", org);
	jw_close(g);
	audit_add(c, "org.created", "org", c->me.org_id, jw_finish(c->a, g));
	g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "email", email);
	jw_str(g, "name", name);
	jw_array(g, "roles");
	jw_str(g, NULL, "ADMIN");
	jw_array_close(g);
	jw_close(g);
	audit_add(c, "user.created", "user", c->me.user_id, jw_finish(c->a, g));
	audit_add(c, "token.created", "token", token_id,
		arena_printf(c->a, "{\"userId\":\"%lld\"}", c->me.user_id));
}

#define BOOTSTRAP_ATTEMPTS 50

/* One attempt: the organisation, its ADMIN, token and invitation, and their events. */
static int bootstrap_once(struct ctx *c, const char *org, const char *email, const char *name,
	char token[TOKEN_LEN + 1], char invitation[TOKEN_LEN + 1])
{
	unsigned char hash[SHA256_LEN];
	long long token_id;
	const char *expires;
	auth_new_token(token, hash);
	if (db_begin(c->db) < 0 || insert_org(c, org, email, name, hash, &token_id) < 0)
		return -1;
	audit_bootstrap(c, org, email, name, token_id);
	if (invitation_issue(c, c->me.user_id, invitation, &expires) < 0 ||
	    audit_flush(c) < 0 || db_commit(c->db) < 0)
		return -1;
	return 0;
}

int org_bootstrap(struct db *db, const struct config *cfg, const char *org, const char *email,
	const char *name)
{
	if (!name)
		name = email;
	const char *at = email ? strchr(email, '@') : NULL;
	if (!org || !email || !text_ok(org, 140) || !text_ok(email, 254) || !text_ok(name, 140) ||
	    !at || at == email || !at[1] || strchr(at + 1, '@')) {
		fprintf(stderr, "remit: bootstrap needs --org NAME (1..140) and --email ADDRESS\n");
		return 2;
	}
	struct arena a = { 0 };
	struct ctx c;
	char token[TOKEN_LEN + 1], invitation[TOKEN_LEN + 1];
	int rc = 1;
	/* Bootstraps running side by side (an operator's script, bench/run) deadlock on the
	 * new rows' index gaps: like a request's transaction, run it again from BEGIN. Each
	 * deadlock lets one of them commit, so a dozen at once need more attempts than a
	 * request's tx_retries; an operator's command can afford to wait for them. */
	for (int attempt = 0; rc && attempt < BOOTSTRAP_ATTEMPTS; attempt++) {
		if (attempt) {
			db_rollback(db);
			yajl_gen_free(c.rs.gen);
			arena_free(&a);
			tx_backoff(attempt);
		}
		op_ctx(&c, &a, db, cfg, "bootstrap");
		rc = bootstrap_once(&c, org, email, name, token, invitation) < 0 ? 1 : 0;
		if (rc && !db_err_retryable(db))
			break;
	}
	if (rc == 0)
		printf("{\"orgId\":\"%lld\",\"userId\":\"%lld\",\"token\":\"%s\",\"invitation\":\"%s\"}\n",
			c.me.org_id, c.me.user_id, token, invitation);
	else {
		fprintf(stderr, "remit: bootstrap failed: %s\n", db_error(db));
		db_rollback(db);
	}
	yajl_gen_free(c.rs.gen);
	arena_free(&a);
	return rc;
}

int org_invite(struct db *db, const struct config *cfg, const char *org, const char *email)
{
	long long org_id = id_parse(org);
	if (!org_id || !email) {
		fprintf(stderr, "remit: invite needs --org ID and --email ADDRESS\n");
		return 2;
	}
	struct arena a = { 0 };
	struct ctx c;
	op_ctx(&c, &a, db, cfg, "invite");
	c.me.org_id = org_id;
	struct dbres r;
	char token[TOKEN_LEN + 1];
	const char *expires, *why = NULL;
	int rc = 1;
	if (db_begin(db) < 0 || db_query(db, &a, &r, SQL_INVITEE, "is", org_id,
			lower_az(&a, email, strlen(email))) < 0)
		goto out;
	if (r.nrows == 0 || !db_i(&r, 0, INV_ACTIVE)) {
		why = r.nrows ? "the user is deactivated" : "no such user in that organisation";
		goto out;
	}
	if (invitation_issue(&c, db_i(&r, 0, INV_ID), token, &expires) < 0 || audit_flush(&c) < 0 ||
	    db_commit(db) < 0)
		goto out;
	/* DATETIME(3) "2026-12-09 05:07:22.718" → RFC 3339 "2026-12-09T05:07:22.718Z" */
	printf("{\"orgId\":\"%lld\",\"userId\":\"%lld\",\"invitation\":\"%s\","
		"\"expiresAt\":\"%.10sT%sZ\"}\n", org_id, db_i(&r, 0, INV_ID), token, expires, expires + 11);
	rc = 0;
out:
	if (rc) {
		fprintf(stderr, "remit: invite failed: %s\n", why ? why : db_error(db));
		db_rollback(db);
	}
	yajl_gen_free(c.rs.gen);
	arena_free(&a);
	return rc;
}
