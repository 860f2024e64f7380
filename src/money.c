#include "money.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t count_digits(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && is_digit(s[n]))
		n++;
	return n;
}

/* *v = *v * 10 + d, refusing to overflow. With at most 15 integer digits this only fails for
 * four-digit minor units (999999999999999.9999 is about 1e19 > INT64_MAX). */
static bool push_digit(int64_t *v, int d)
{
	if (*v > (INT64_MAX - d) / 10)
		return false;
	*v = *v * 10 + d;
	return true;
}

const char *money_parse(const char *s, size_t len, int minor, bool allow_zero, int64_t *out)
{
	static const char syntax[] = "must be a decimal number like \"1000.00\"";
	size_t int_len = count_digits(s, len), frac_len = 0;

	if (minor < 0 || minor > 4)
		return "has an unsupported currency";
	if (int_len == 0)
		return syntax;
	if (int_len < len) {
		if (s[int_len] != '.')
			return syntax;
		frac_len = count_digits(s + int_len + 1, len - int_len - 1);
		if (frac_len == 0 || int_len + 1 + frac_len != len)
			return syntax;
	}
	if (int_len > 1 && s[0] == '0')
		return "must not have leading zeros";
	if (int_len > MONEY_MAX_INT_DIGITS)
		return "must have at most 15 integer digits";
	if (frac_len > (size_t)minor)
		return minor ? "has more fractional digits than the currency allows"
			     : "must be a whole number in this currency";

	/* The integer digits then the fractional ones (skipping the '.'), padded with zeros to
	 * `minor` fractional digits: "5.1" USD is 510. */
	int64_t v = 0;
	for (size_t i = 0; i < int_len + (size_t)minor; i++) {
		size_t at = i < int_len ? i : i + 1;
		if (!push_digit(&v, at < len ? s[at] - '0' : 0))
			return "is too large";
	}
	if (v == 0 && !allow_zero)
		return "must be greater than 0";
	*out = v;
	return NULL;
}

/* Amounts are positive, but balances may be formatted too: the magnitude is taken as unsigned so
 * that even INT64_MIN has one. */
void money_format(int64_t amount, int minor, char buf[MONEY_FMT_MAX])
{
	uint64_t mag = amount < 0 ? 0 - (uint64_t)amount : (uint64_t)amount;
	char rev[24];   /* 20 digits of UINT64_MAX, padded to minor + 1 <= 5 */
	int n = 0;
	char *p = buf;

	do {
		rev[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag);
	while (n <= minor)
		rev[n++] = '0';
	if (amount < 0)
		*p++ = '-';
	while (n > 0) {
		if (n == minor)
			*p++ = '.';
		*p++ = rev[--n];
	}
	*p = '\0';
}
