/* What users.c, invitations.c, sessions.c and the command line share about people (API §5,
 * §7): the user representation, invitations, and the sign-in throttle's key. */
#ifndef REMIT_DOMAIN_PEOPLE_H
#define REMIT_DOMAIN_PEOPLE_H
#include "auth.h"
#include "hash.h"
#include "http.h"

/* A user's columns in the order write_user reads them, from `users`. */
#define USER_COLS "id, email, name, roles, org_id, created_at, active"
enum { U_ID, U_EMAIL, U_NAME, U_ROLES, U_ORG, U_CREATED_AT, U_ACTIVE };

/* Writes the user in row `row` of a result selected with USER_COLS. */
void write_user(yajl_gen g, const struct dbres *r, size_t row);

/* Replies with one user of the caller's organisation (c->me.org_id) as `data`; 404 if none. */
int reply_user(struct ctx *c, int status, long long id);

/* Issues an invitation for a user of c->me.org_id (locked by the caller): voids the user's
 * unused ones, stores the new secret's hash, buffers `user.invited`. Fills `token` and
 * `expires_at` (DB text, in c->a). 0 or -1 (database error). */
int invitation_issue(struct ctx *c, long long user_id, char token[TOKEN_LEN + 1],
	const char **expires_at);

/* The sign-in throttle's key: SHA-256 of the orgId as sent and the email lower-cased A-Z,
 * each length-prefixed. */
void throttle_key(const char *org, size_t org_len, const char *email_key, size_t key_len,
	unsigned char out[SHA256_LEN]);

/* Forgets a key's failed sign-ins (a sign-in succeeded, a password was set): 0 or -1. */
int throttle_clear(struct ctx *c, const unsigned char key[SHA256_LEN]);

/* 503 with Retry-After: 1 when no slot of the bound on password hashes is free (password.h). */
int reply_hashing_busy(struct ctx *c);

/* Deletes sign-in throttle rows idle for a day and sessions expired a day ago (at most
 * 1000 of each a call): the count or -1. */
long sessions_purge(struct db *db);

/* `s` lower-cased A-Z only (API §1), in `a`. */
char *lower_az(struct arena *a, const char *s, size_t len);

#endif
