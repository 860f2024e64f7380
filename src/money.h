/* Money as integer minor units: parsed from decimal text, never through floating point. */
#ifndef REMIT_MONEY_H
#define REMIT_MONEY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MONEY_MAX_INT_DIGITS 15
#define MONEY_FMT_MAX 32   /* buffer size that fits any formatted amount */

/* Parses decimal text (a JSON string's content or a JSON number literal's text) for a currency
 * with `minor` fractional digits (0..4). Grammar: digits, optionally '.' and 1..minor digits;
 * no sign, no exponent, no white space, no leading zeros ("0.50" yes, "00.5" no), at most 15
 * integer digits. The value must be > 0, or >= 0 when allow_zero. On success stores the amount
 * in minor units and returns NULL; otherwise returns a static message for the client and leaves
 * *out alone. With minor 4, 15 integer digits can exceed INT64_MAX (999999999999999.9999 is
 * about 1e19 minor units): such amounts are refused as too large, never wrapped. */
const char *money_parse(const char *s, size_t len, int minor, bool allow_zero, int64_t *out);

/* Writes the normalised form with exactly `minor` (0..4) fractional digits ("5.00"),
 * NUL-terminated. Any int64 fits, negative ones (balances) with a leading '-'. */
void money_format(int64_t amount, int minor, char buf[MONEY_FMT_MAX]);

#endif
