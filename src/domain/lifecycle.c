/* The lifecycle table: see lifecycle.h. */
#include "domain/lifecycle.h"

#include <stdio.h>
#include <string.h>

const char *const batch_statuses[] = {
	[BS_DRAFT] = "DRAFT",
	[BS_SUBMITTED] = "SUBMITTED",
	[BS_COMPLETED] = "COMPLETED",
	[BS_CANCELLED] = "CANCELLED",
	[BS_COUNT] = NULL,
};

const char *const request_statuses[] = {
	[RS_DRAFT] = "DRAFT",
	[RS_PENDING_APPROVAL] = "PENDING_APPROVAL",
	[RS_APPROVED] = "APPROVED",
	[RS_PAID] = "PAID",
	[RS_REJECTED] = "REJECTED",
	[RS_CANCELLED] = "CANCELLED",
	[RS_COUNT] = NULL,
};

#define B(s) (1u << (s))

/* The statuses each action is allowed from: the one table every handler consults. */
static const unsigned batch_from[] = {
	[BA_EDIT] = B(BS_DRAFT),
	[BA_SUBMIT] = B(BS_DRAFT),
	[BA_CANCEL] = B(BS_DRAFT) | B(BS_SUBMITTED),
	[BA_COMPLETE] = B(BS_SUBMITTED),
};

static const unsigned request_from[] = {
	[RA_EDIT] = B(RS_DRAFT),
	[RA_SUBMIT] = B(RS_DRAFT),
	[RA_DECIDE] = B(RS_PENDING_APPROVAL),
	[RA_PAY] = B(RS_APPROVED),
	[RA_CANCEL] = B(RS_DRAFT) | B(RS_PENDING_APPROVAL),
};

/* A batch's cancel leaves these as they are rather than refusing. */
static const unsigned cancel_keeps = B(RS_REJECTED);

static int index_of(const char *const names[], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (name && strcmp(names[i], name) == 0)
			return i;
	return n;
}

enum batch_status batch_status_of(const char *name)
{
	return (enum batch_status)index_of(batch_statuses, BS_COUNT, name);
}

enum request_status request_status_of(const char *name)
{
	return (enum request_status)index_of(request_statuses, RS_COUNT, name);
}

bool batch_may(enum batch_action action, enum batch_status s)
{
	return s < BS_COUNT && (batch_from[action] & B(s));
}

bool request_may(enum request_action action, enum request_status s)
{
	return s < RS_COUNT && (request_from[action] & B(s));
}

char *batch_statuses_for(enum batch_action action, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	for (int s = 0; s < BS_COUNT; s++) {
		if (!(batch_from[action] & B(s)))
			continue;
		int n = snprintf(out + len, size - len, "%s%s", len ? "," : "", batch_statuses[s]);
		if (n < 0 || (size_t)n >= size - len) {   /* too small: allow nothing, never a part */
			out[0] = '\0';
			break;
		}
		len += (size_t)n;
	}
	return out;
}

int batch_check_or_reply(struct ctx *c, enum batch_action action, enum batch_status s)
{
	return batch_may(action, s) ? STEP_GO_ON : reply_invalid_state(c, batch_statuses[s]);
}

int request_check_or_reply(struct ctx *c, enum request_action action, enum request_status s)
{
	return request_may(action, s) ? STEP_GO_ON : reply_invalid_state(c, request_statuses[s]);
}

enum cancel_effect request_on_cancel(enum request_status s)
{
	if (request_may(RA_CANCEL, s))
		return CANCEL_CANCELS;
	return s < RS_COUNT && (cancel_keeps & B(s)) ? CANCEL_KEEPS : CANCEL_REFUSED;
}
