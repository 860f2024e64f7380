/* What adding one request and importing many share (requests.c, import.c): the create
 * fields' validation, their audit data, and the batch cap. */
#ifndef REMIT_DOMAIN_REQUESTS_H
#define REMIT_DOMAIN_REQUESTS_H
#include <stdint.h>

#include "domain/lock.h"
#include "http.h"

/* Submitting a batch writes an audit event per request while it holds the organisation's
 * audit chain lock, which every other writer of the organisation waits for (at most
 * idem_wait): the size at which that stays short is measured by t/66-large-batch.t and
 * README "Batch size". */
#define BATCH_MAX_REQUESTS 5000

/* A request's create fields, validated. */
struct request_fields {
	int64_t amount;
	const char *currency, *name, *account, *purpose;
	int minor;
};

/* The create fields' names (NULL-terminated), as the body and a CSV header name them. */
extern const char *const request_known_fields[];

/* Validates c->body as a request's create fields into *f, recording each problem under its
 * field's name in c->details. */
void request_fields_valid(struct ctx *c, struct request_fields *f);

/* The members of a request.created event's data after batchId (open object of g). */
void request_fields_audit(yajl_gen g, const struct request_fields *f);

/* The batch locked and checked as with If-Match, in the contract's order: 404, 412, the
 * body's problems already in c->details (400 VALIDATION_ERROR), 409 INVALID_STATE, 409
 * BATCH_FULL when it has no room for `n` more requests. STEP_GO_ON when they may be added. */
int request_batch_ready(struct ctx *c, long long batch, long long n);

#endif
