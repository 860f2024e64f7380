/* What an operator does from the command line (remit bootstrap, remit invite): domain
 * operations run in one transaction each, outside any HTTP request, printing their result as
 * one JSON line on stdout. Each returns the exit status: 0, 1 (database failure, or for invite
 * no such active user), 2 (bad arguments). */
#ifndef REMIT_DOMAIN_OPERATOR_H
#define REMIT_DOMAIN_OPERATOR_H
#include "conf.h"
#include "db.h"

/* Creates an organisation, its audit chain, its first ADMIN (named `name`, else by the
 * e-mail), a token and an invitation; prints {"orgId","userId","token","invitation"}. */
int org_bootstrap(struct db *db, const struct config *cfg, const char *org, const char *email,
	const char *name);

/* A new invitation for an existing, active user of organisation `org` (an id's text): how an
 * organisation whose last ADMIN forgot the password gets back in. The audit event has no
 * actor (the operator). Prints {"orgId","userId","invitation","expiresAt"}. */
int org_invite(struct db *db, const struct config *cfg, const char *org, const char *email);

#endif
