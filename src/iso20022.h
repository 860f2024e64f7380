/* ISO 20022 for the bank (API §9): the SEPA character set, and the pain.001.001.09
 * credit-transfer initiation written with libxml2's xmlTextWriter. */
#ifndef REMIT_ISO20022_H
#define REMIT_ISO20022_H
#include <stddef.h>

#include "arena.h"

#define SEPA_NAME_MAX 70
#define SEPA_USTRD_MAX 140

/* Folds valid UTF-8 text into the SEPA character set (A-Z a-z 0-9 / - ? : ( ) . , ' + and
 * space): accented Latin letters lose their marks (é → e), ß → ss, Æ → AE, Œ → OE, Ø → O,
 * Ł → L, Đ → D, & → +, anything else → space; spaces collapsed and trimmed, the text cut
 * to `max` characters and trimmed again. Returns the folded text (possibly "") in `a`. */
const char *sepa_fold(struct arena *a, const char *s, size_t len, size_t max);

struct pain_item {
	const char *end_to_end_id, *amount;   /* amount: "1234.50" */
	const char *name, *iban, *purpose;    /* already folded; purpose "" is left out */
};

struct pain_file {
	const char *message_id, *created_at;  /* created_at: RFC 3339 */
	const char *execution_date, *control_sum;
	const char *debtor_name, *debtor_iban, *debtor_bic;   /* bic NULL: NOTPROVIDED */
	size_t n;
	const struct pain_item *items;
};

/* The pain.001.001.09 document for `f`, UTF-8, in `a` (*len its size); NULL when libxml2
 * fails (out of memory). */
const char *pain001_write(struct arena *a, const struct pain_file *f, size_t *len);

#endif
