#include "iban.h"

#include <stdbool.h>
#include <string.h>

#include "text.h"

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char to_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool looks_like_iban(const char *s, size_t len)
{
	return len >= 4 && is_alpha(s[0]) && is_alpha(s[1]) && is_digit(s[2]) && is_digit(s[3]);
}

/* Folds one IBAN character into the running remainder: digits count as one decimal digit,
 * letters as two (A = 10 .. Z = 35). The remainder stays below 97, so rem * 100 + 35 never
 * comes near overflow, however long the account. */
static unsigned mod97_push(unsigned rem, char c)
{
	if (is_digit(c))
		return (rem * 10 + (unsigned)(c - '0')) % 97;
	return (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
}

/* ISO 13616: move the country code and check digits to the end, read letters as numbers, and
 * the whole must be 1 mod 97. s is already upper-case alphanumeric and at least 4 long. */
static bool mod97_ok(const char *s, size_t len)
{
	unsigned rem = 0;

	for (size_t i = 4; i < len; i++)
		rem = mod97_push(rem, s[i]);
	for (size_t i = 0; i < 4; i++)
		rem = mod97_push(rem, s[i]);
	return rem == 1;
}

static const char *iban_normalise(const char *s, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (!is_alpha(s[i]) && !is_digit(s[i]))
			return "an IBAN may hold only letters, digits and spaces";
		if (n == ACCOUNT_MAX)
			return "must be 1..34 characters";
		out[n++] = to_upper(s[i]);
	}
	out[n] = '\0';
	if (!mod97_ok(out, n))
		return "is not a valid IBAN (check digits)";
	return NULL;
}

const char *account_normalise(const char *s, size_t len, char *out)
{
	if (looks_like_iban(s, len))
		return iban_normalise(s, len, out);

	long cps = utf8_count(s, len);
	if (cps < 0)
		return "must be valid UTF-8";
	if (cps < 1 || cps > ACCOUNT_MAX)
		return "must be 1..34 characters";
	memcpy(out, s, len);
	out[len] = '\0';
	return NULL;
}
