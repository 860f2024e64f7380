/* libFuzzer target for src/iban.c, checked against a reference normalisation with the textbook
 * mod-97 (digit string reduced in chunks): both must accept the same accounts and give the same
 * IBAN. The output buffer is exactly len + 1 bytes so ASan sees any overrun. An accepted IBAN is
 * 4..34 characters and normalises to itself; any other accepted account is the input unchanged
 * (NULs included: refusing controls is the caller's business) and 1..34 code points. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iban.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ref_letter(char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool ref_is_iban(const char *s, size_t len)
{
	return len >= 4 && ref_letter(s[0]) && ref_letter(s[1]) && s[2] >= '0' && s[2] <= '9' &&
	       s[3] >= '0' && s[3] <= '9';
}

/* The rearranged IBAN as a digit string, reduced 7 digits at a time as in ECBS TR 201. */
static int ref_mod97(const char *iban)
{
	char digits[2 * ACCOUNT_MAX + 1];
	size_t n = 0, len = strlen(iban);
	long long rem = 0;

	for (size_t k = 0; k < len; k++) {
		char c = iban[(k + 4) % len];
		if (c >= 'A' && c <= 'Z') {
			digits[n++] = (char)('0' + (c - 'A' + 10) / 10);
			digits[n++] = (char)('0' + (c - 'A' + 10) % 10);
		} else {
			digits[n++] = c;
		}
	}
	for (size_t i = 0; i < n; i += 7) {
		size_t take = i + 7 < n ? 7 : n - i;
		for (size_t k = 0; k < take; k++)
			rem = rem * 10 + (digits[i + k] - '0');
		rem %= 97;
	}
	return (int)rem;
}

/* The reference normalisation: NULL when the account must be refused. */
static const char *ref_normalise(const char *s, size_t len, char *buf)
{
	size_t n = 0;

	if (!ref_is_iban(s, len)) {
		long cps = utf8_count(s, len);
		return cps >= 1 && cps <= ACCOUNT_MAX ? memcpy(buf, s, len) : NULL;
	}
	for (size_t i = 0; i < len; i++) {
		char up = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
		if (up == ' ')
			continue;
		if (!(up >= 'A' && up <= 'Z') && !(up >= '0' && up <= '9'))
			return NULL;
		if (n == ACCOUNT_MAX)
			return NULL;
		buf[n++] = up;
	}
	buf[n] = '\0';
	return ref_mod97(buf) == 1 ? buf : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *out = malloc(size + 1), *want = malloc(size + 1);
	char again[ACCOUNT_MAX + 1];

	assert(out && want);
	const char *err = account_normalise(s, size, out);
	const char *ref = ref_normalise(s, size, want);
	assert((err == NULL) == (ref != NULL));
	if (!err && ref_is_iban(s, size)) {
		size_t out_len = strlen(out);
		assert(out_len >= 4 && out_len <= ACCOUNT_MAX && strcmp(out, want) == 0);
		assert(account_normalise(out, out_len, again) == NULL && strcmp(again, out) == 0);
	} else if (!err) {
		long cps = utf8_count(out, size);
		assert(cps >= 1 && cps <= ACCOUNT_MAX);
		assert(memcmp(out, s, size) == 0 && out[size] == '\0');
	}
	free(want);
	free(out);
	return 0;
}
