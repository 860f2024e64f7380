/* Bearer tokens: random, shown once, stored only as SHA-256. */
#ifndef REMIT_AUTH_H
#define REMIT_AUTH_H
#include "hash.h"
#include "http.h"

#define TOKEN_PREFIX "rmt_"
#define TOKEN_LEN (4 + 43)   /* prefix + base64url of 32 random bytes */

struct idem_seen;

/* Resolves the request's bearer token into c->me: 0, 401 (reply written) or STEP_DB_ERROR.
 * A POST with an Idempotency-Key also gets the answer stored under it into `seen` (its key
 * stays NULL when there is none): the caller hands it to idem, auth calls nothing there. */
int auth_authenticate_or_reply(struct ctx *c, struct idem_seen *seen);

/* A fresh token (256 bits from the kernel) and its hash. */
void auth_new_token(char token[TOKEN_LEN + 1], unsigned char hash[SHA256_LEN]);
/* The same with another 4-character prefix (invitations: "rmi_"). */
#define INVITATION_PREFIX "rmi_"
void auth_new_secret(const char prefix[5], char token[TOKEN_LEN + 1],
	unsigned char hash[SHA256_LEN]);

#endif
