/* libFuzzer target for src/idem_key.c. A parsed key must be 1..255 bytes of 0x21..0x7E and must
 * reproduce the input: verbatim when bare, or quoted with '"' and '\' escaped when the input was
 * an sf-string. If-Match is compared, for a few versions, with a reference that splits the list
 * first and judges each element after (the library parses in one pass). */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "idem_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const char *v, size_t len)
{
	char key[IDEM_KEY_MAX + 1], again[2 * IDEM_KEY_MAX + 3];
	size_t n = 0;

	if (idem_key_parse(v, len, key) != 0)
		return;
	size_t key_len = strlen(key);
	assert(key_len >= 1 && key_len <= IDEM_KEY_MAX);
	for (size_t i = 0; i < key_len; i++)
		assert(key[i] >= 0x21 && key[i] <= 0x7E);
	if (v[0] != '"') {
		assert(key_len == len && memcmp(key, v, len) == 0);
		return;
	}
	again[n++] = '"';
	for (size_t i = 0; i < key_len; i++) {
		if (key[i] == '"' || key[i] == '\\')
			again[n++] = '\\';
		again[n++] = key[i];
	}
	again[n++] = '"';
	assert(n == len && memcmp(again, v, len) == 0);
}

static bool ref_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* One list element, OWS already trimmed: 1 a matching tag, 0 another tag, -1 malformed. */
static int ref_element(const char *e, size_t len, const char *want)
{
	bool weak = len >= 2 && e[0] == 'W' && e[1] == '/';

	if (weak) {
		e += 2;
		len -= 2;
	}
	if (len < 2 || e[0] != '"' || e[len - 1] != '"')
		return -1;
	for (size_t i = 1; i + 1 < len; i++) {
		unsigned char c = (unsigned char)e[i];
		if (c < 0x21 || c == '"' || c == 0x7F)
			return -1;
	}
	return !weak && len - 2 == strlen(want) && memcmp(e + 1, want, len - 2) == 0;
}

/* Splits first, at commas outside quotes (a tag may hold commas), then judges each element. */
static bool ref_if_match(const char *v, size_t len, const char *want)
{
	size_t b = 0, e = len, start;
	bool quoted = false, any = false, match = false;

	while (b < e && ref_ows(v[b]))
		b++;
	while (e > b && ref_ows(v[e - 1]))
		e--;
	if (e - b == 1 && v[b] == '*')
		return true;
	start = b;
	for (size_t i = b; i <= e; i++) {
		if (i < e && v[i] == '"')
			quoted = !quoted;
		if (i < e && (v[i] != ',' || quoted))
			continue;
		size_t s = start, t = i;
		while (s < t && ref_ows(v[s]))
			s++;
		while (t > s && ref_ows(v[t - 1]))
			t--;
		if (t > s) {
			int r = ref_element(v + s, t - s, want);
			if (r < 0)
				return false;
			any = true;
			match = match || r;
		}
		start = i + 1;
	}
	return any && match;
}

static void check_if_match(const char *v, size_t len, long long version)
{
	char want[24], tag[32];
	snprintf(want, sizeof want, "%lld", version);
	int tag_len = snprintf(tag, sizeof tag, "\"%s\"", want);

	assert(if_match_ok(v, len, version) == ref_if_match(v, len, want));
	assert(if_match_ok(tag, (size_t)tag_len, version));
	assert(!if_match_ok(tag + 1, (size_t)tag_len - 1, version));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long long versions[] = { 0, 1, 3, 10, 123456789, 9223372036854775807LL };
	const char *v = (const char *)data;

	check_key(v, size);
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
		check_if_match(v, size, versions[i]);
	return 0;
}
