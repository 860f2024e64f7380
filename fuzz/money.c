/* libFuzzer target for src/money.c. The first byte picks the minor unit (its low 7 bits mod 5)
 * and allow_zero (its high bit); the rest is the amount text. A parsed amount must format back
 * to the input padded with zeros to the minor unit, and that text must parse to the same amount.
 * The 8 bytes after the first are also formatted as an arbitrary int64, which must fit the
 * buffer and parse back when it is in range. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input text in normalised form: a '.' and zeros appended up to `minor` fractional digits. */
static bool expected_form(const char *s, size_t len, int minor, char *buf, size_t cap)
{
	const char *dot = memchr(s, '.', len);
	size_t frac = dot ? len - (size_t)(dot - s) - 1 : 0;

	if (len + (size_t)minor + 2 > cap)
		return false;
	memcpy(buf, s, len);
	if (!dot && minor > 0)
		buf[len++] = '.';
	while (frac++ < (size_t)minor)
		buf[len++] = '0';
	buf[len] = '\0';
	return true;
}

static void check_parse(const char *s, size_t len, int minor, bool allow_zero)
{
	char buf[MONEY_FMT_MAX], want[MONEY_FMT_MAX + 8];
	int64_t v = -1, back = -1;

	if (money_parse(s, len, minor, allow_zero, &v))
		return;
	assert(v > 0 || (allow_zero && v == 0));
	money_format(v, minor, buf);
	assert(strlen(buf) < MONEY_FMT_MAX);
	assert(expected_form(s, len, minor, want, sizeof want));
	assert(strcmp(buf, want) == 0);
	assert(money_parse(buf, strlen(buf), minor, allow_zero, &back) == NULL && back == v);
}

static void check_format(int64_t amount, int minor)
{
	char buf[MONEY_FMT_MAX];
	int64_t limit = 999999999999999, back = -1;

	money_format(amount, minor, buf);
	assert(strlen(buf) < MONEY_FMT_MAX);
	for (int i = 0; i < minor; i++)
		limit = limit <= (INT64_MAX - 9) / 10 ? limit * 10 + 9 : INT64_MAX;
	if (amount > 0 && amount <= limit)
		assert(money_parse(buf, strlen(buf), minor, false, &back) == NULL && back == amount);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int minor = (data[0] & 0x7F) % 5;
	bool allow_zero = data[0] & 0x80;

	check_parse((const char *)data + 1, size - 1, minor, allow_zero);
	if (size >= 9) {
		int64_t amount;
		memcpy(&amount, data + 1, sizeof amount);
		check_format(amount, minor);
	}
	return 0;
}
