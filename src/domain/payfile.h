/* What payment_files.c and payment_file_actions.c share (API §9): the file's
 * representation, the lookups by a JSON array of ids, and the locks of a file's requests. */
#ifndef REMIT_DOMAIN_PAYFILE_H
#define REMIT_DOMAIN_PAYFILE_H
#include "http.h"

/* Replies with file `id` of the caller's organisation (ETag its version), items included;
 * 404 when there is none, else 400 with the details recorded so far. */
int reply_payment_file(struct ctx *c, int status, long long id);

/* A JSON array of ids as a table (JSON_TABLE: MariaDB 10.6+ and MySQL 8 alike). */
#define IDS_TABLE "JSON_TABLE(?, '$[*]' COLUMNS (pos FOR ORDINALITY, id BIGINT PATH '$')) j"

/* "[1,2,3]": ids for JSON_TABLE, the one way a static statement takes a list of any size. */
const char *ids_json(struct arena *a, const long long *ids, size_t n);

/* Locks, in the lock order (lock.h), the batches `batch_ids` and then the requests `ids`
 * with locking reads. Both arrays are sorted and made unique in place (*nb and *n become
 * their new lengths). STEP_GO_ON or STEP_DB_ERROR; *locked gets the locked requests'
 * rows in id order (columns of PAYFILE_REQUEST). */
#define PAYFILE_REQUEST \
	"r.id, r.status, r.currency, r.amount, r.beneficiary_name, r.beneficiary_account," \
	" r.purpose, r.batch_id"
enum { PR_ID, PR_STATUS, PR_CURRENCY, PR_AMOUNT, PR_NAME, PR_ACCOUNT, PR_PURPOSE, PR_BATCH };
int payfile_lock(struct ctx *c, long long *batch_ids, size_t *nb, long long *ids, size_t *n,
	struct dbres *locked);

/* Separation of duties for money leaving (API §4, §9): when the caller is a maker of any
 * request of `ids_text` (a JSON array; a locking read), answers 403 SELF_PAYMENT_FORBIDDEN
 * with those ids in details.requestIds and `message`, and returns its status; else
 * STEP_GO_ON, or STEP_DB_ERROR. */
int payfile_makers_or_reply(struct ctx *c, const char *ids_text, const char *message);

/* Marks the requests of a file's PAID items PAID, with their SETTLEMENT entries (`ids`: the
 * JSON array of their ids). 0, or -1 on a database error. */
int payfile_pay_requests(struct ctx *c, long long file, const char *ids);

#endif
