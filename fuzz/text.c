/* libFuzzer target for src/text.c: each validator is checked against a slow reference written
 * from the definitions (decode bit by bit, then judge the code point), not from the same table. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes the sequence at p generically; returns its length or 0, and the code point in *cp. */
static size_t ref_decode(const uint8_t *p, size_t avail, uint32_t *cp)
{
	static const uint32_t min_cp[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t need = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3
		    : (p[0] & 0xF8) == 0xF0 ? 4 : 0;

	if (need == 0 || need > avail)
		return 0;
	*cp = need == 1 ? p[0] : p[0] & (0x7F >> need);
	for (size_t k = 1; k < need; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		*cp = *cp << 6 | (p[k] & 0x3F);
	}
	if (*cp < min_cp[need] || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
		return 0;
	return need;
}

/* Returns the code point count or -1, and whether any code point is Cc. */
static long ref_count(const uint8_t *p, size_t len, int *has_cc)
{
	long n = 0;

	*has_cc = 0;
	for (size_t i = 0; i < len; n++) {
		uint32_t cp;
		size_t k = ref_decode(p + i, len - i, &cp);
		if (k == 0)
			return -1;
		if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
			*has_cc = 1;
		i += k;
	}
	return n;
}

static int ref_request_id(const uint8_t *p, size_t len)
{
	static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789._:+/=@~-";

	if (len < 1 || len > 128)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] == 0 || !strchr(allowed, p[i]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int has_cc;
	long want = ref_count(data, size, &has_cc);
	long got = utf8_count(s, size);

	assert(got == want);
	assert(got <= (long)size && (got < 0 || got * 4 >= (long)size));
	/* text_has_control's contract needs valid UTF-8; its byte scan must still agree there. */
	if (got >= 0)
		assert(text_has_control(s, size) == (has_cc != 0));
	assert(request_id_valid(s, size) == (ref_request_id(data, size) != 0));
	return 0;
}
