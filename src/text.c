#include "text.h"

#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 §4, the Unicode table of well-formed
 * byte sequences), or 0 when it is not one. Narrowing the range of the second byte per lead byte
 * is what refuses overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points
 * above U+10FFFF (F4 90..BF); C0, C1 and F5..FF can never start a sequence. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t need;

	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xC2)
		return 0;
	if (p[0] < 0xE0) {
		need = 2;
	} else if (p[0] < 0xF0) {
		need = 3;
		if (p[0] == 0xE0)
			lo = 0xA0;
		else if (p[0] == 0xED)
			hi = 0x9F;
	} else if (p[0] < 0xF5) {
		need = 4;
		if (p[0] == 0xF0)
			lo = 0x90;
		else if (p[0] == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < need; k++)
		if ((p[k] & 0xC0) != 0x80)
			return 0;
	return need;
}

long utf8_count(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;

	for (size_t i = 0; i < len; n++) {
		size_t k = utf8_seq_len(p + i, len - i);
		if (k == 0)
			return -1;
		i += k;
	}
	return n;
}

/* U+0080..U+009F are encoded as C2 80..C2 9F. C2 is never a continuation byte, so a byte scan
 * finds every Cc character without decoding, and never misreads the middle of a sequence. */
bool text_has_control(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7F)
			return true;
		if (p[i] == 0xC2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F)
			return true;
	}
	return false;
}

/* Only characters that need no quoting or escaping anywhere we write the id (headers, JSON, log
 * lines), so a client's id can be echoed verbatim. */
bool request_id_valid(const char *s, size_t len)
{
	static const char punct[] = "._:+/=@~-";

	if (len < 1 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
		if (!alnum && !memchr(punct, c, sizeof punct - 1))
			return false;
	}
	return true;
}
