/* E-mail from the audit chain (API §12), sent by `remit deliver` when smtp_url is set: the
 * invitation link, "waiting for your approval", "rejected", "returned by the bank". */
#ifndef REMIT_MAIL_H
#define REMIT_MAIL_H
#include "http.h"

/* One pass over the organisations with events after their mail cursor: claims each with
 * FOR UPDATE SKIP LOCKED and mails what its events call for. How many organisations moved,
 * or -1 on a database error. */
int mail_pass(struct ctx *c);

#endif
