/* Beneficiary accounts: IBANs are normalised and checked with ISO 13616 mod-97. */
#ifndef REMIT_IBAN_H
#define REMIT_IBAN_H
#include <stddef.h>

#define ACCOUNT_MAX 34

/* Validates and normalises a beneficiary account (valid UTF-8 assumed, control characters
 * already refused by the caller). When the text starts with two ASCII letters (either case)
 * and two digits it is an IBAN: spaces are removed, letters upper-cased, every remaining
 * character must be an ASCII letter or digit, and the mod-97 check must give 1. Any account
 * must be 1..34 code points after that normalisation (other accounts are kept as given).
 * The IBAN test looks at the text as given: " GB82..." or "G B82..." is another account.
 * Writes the normalised account into out (NUL-terminated; out must hold len + 1 bytes) and
 * returns NULL, or returns a static message for the client (out is then unspecified). */
const char *account_normalise(const char *s, size_t len, char *out);

#endif
