/* The lifecycle of batches and payment requests (doc/openapi.yaml#Lifecycle) in one table:
 * the statuses as enums with their names, and every allowed transition. Handlers never compare
 * status text: they parse a row's status with *_status_of and ask *_check (or *_may) whether
 * an action is allowed from it. The schema's CHECK constraints (sql/migrations) are the last
 * line of defence and list the same names.
 *
 *   batch:    DRAFT --submit--> SUBMITTED --(every request settled)--> COMPLETED
 *             DRAFT, SUBMITTED --cancel--> CANCELLED
 *   request:  DRAFT --(its batch submitted)--> PENDING_APPROVAL --approve--> APPROVED
 *             (after the last required approval; before it, PENDING_APPROVAL again)
 *             PENDING_APPROVAL --reject--> REJECTED;  APPROVED --mark-paid--> PAID
 *             DRAFT, PENDING_APPROVAL --(its batch cancelled)--> CANCELLED
 *             DRAFT: edited (PATCH) or deleted (DELETE). */
#ifndef REMIT_DOMAIN_LIFECYCLE_H
#define REMIT_DOMAIN_LIFECYCLE_H
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

enum batch_status {             /* in lifecycle order, as batch_statuses lists them */
	BS_DRAFT,               /* being filled: requests are added, edited, deleted */
	BS_SUBMITTED,           /* frozen: its requests are being decided and paid */
	BS_COMPLETED,           /* every request REJECTED, PAID or CANCELLED */
	BS_CANCELLED,           /* cancelled before any request was APPROVED or PAID */
	BS_COUNT                /* not a status: the number of them, and "unknown" */
};

enum request_status {           /* in lifecycle order, as request_statuses lists them */
	RS_DRAFT,               /* in a DRAFT batch */
	RS_PENDING_APPROVAL,    /* submitted, waiting for its required approvals */
	RS_APPROVED,            /* approved enough: an obligation in the ledger, to be paid */
	RS_PAID,                /* settled (terminal) */
	RS_REJECTED,            /* rejected by an approver (terminal) */
	RS_CANCELLED,           /* its batch was cancelled (terminal) */
	RS_COUNT                /* not a status: the number of them, and "unknown" */
};

/* The names, indexed by the enums and NULL-terminated (q_status takes them as they are). */
extern const char *const batch_statuses[];
extern const char *const request_statuses[];

/* A status's name to its enum; BS_COUNT or RS_COUNT for a name that is none. */
enum batch_status batch_status_of(const char *name);
enum request_status request_status_of(const char *name);

enum batch_action {
	BA_EDIT,                /* add a request to it */
	BA_SUBMIT,              /* → SUBMITTED */
	BA_CANCEL,              /* → CANCELLED */
	BA_COMPLETE,            /* → COMPLETED (batch_touch, when its last request settles) */
};

enum request_action {
	RA_EDIT,                /* PATCH or DELETE */
	RA_SUBMIT,              /* its batch is submitted: → PENDING_APPROVAL */
	RA_DECIDE,              /* approve or reject: → APPROVED, PENDING_APPROVAL or REJECTED */
	RA_PAY,                 /* → PAID */
	RA_CANCEL,              /* its batch is cancelled: → CANCELLED */
};

/* Whether `action` is allowed from status `s`. */
bool batch_may(enum batch_action action, enum batch_status s);
bool request_may(enum request_action action, enum request_status s);

/* The names of the statuses `action` is allowed from, comma-separated ("DRAFT"), in `out` of
 * `size` bytes: a MariaDB FIND_IN_SET list. The stored procedure request_add
 * (sql/migrations/0014) is handed BA_EDIT's, so the SQL names no status of its own and this
 * table stays the rule's one home. Returns `out`. */
char *batch_statuses_for(enum batch_action action, char *out, size_t size);

/* STEP_GO_ON when `action` is allowed from `s`, else the status of the 409 INVALID_STATE reply
 * (details.status: the current status). */
int batch_check_or_reply(struct ctx *c, enum batch_action action, enum batch_status s);
int request_check_or_reply(struct ctx *c, enum request_action action, enum request_status s);

/* What cancelling a batch does to one of its requests. */
enum cancel_effect {
	CANCEL_CANCELS,         /* the request becomes CANCELLED */
	CANCEL_KEEPS,           /* a REJECTED request stays REJECTED */
	CANCEL_REFUSED,         /* an APPROVED or PAID request forbids the cancel (409) */
};
enum cancel_effect request_on_cancel(enum request_status s);

#endif
