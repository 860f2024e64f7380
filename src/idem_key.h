/* Header grammars: Idempotency-Key (bare or RFC 8941 sf-string) and If-Match. */
#ifndef REMIT_IDEM_KEY_H
#define REMIT_IDEM_KEY_H
#include <stdbool.h>
#include <stddef.h>

#define IDEM_KEY_MAX 255

/* Parses an Idempotency-Key header value. Either a bare key or an sf-string ("abc", with \" and
 * \\ as the only escapes, the quotes not part of the key). The key must be 1..255 characters of
 * 0x21..0x7E. Writes the key (NUL-terminated) into out[IDEM_KEY_MAX + 1] and returns 0, or -1
 * when the value is invalid (empty, "", unterminated quote, bad escape, space, control or
 * non-ASCII byte, too long, trailing bytes after the closing quote). */
int idem_key_parse(const char *v, size_t len, char out[IDEM_KEY_MAX + 1]);

/* RFC 9110 If-Match with strong comparison against the entity tag "<version>": `*` matches;
 * a comma-separated list matches when one of its tags does; a weak W/"n" never matches; any
 * malformed value matches nothing. Optional white space around list elements is allowed, and
 * empty elements (`"1", , "3"`) are ignored as RFC 9110 §5.6.1 requires, but a value must hold
 * at least one tag. Tags are compared byte for byte with the decimal version: "03" is not 3. */
bool if_match_ok(const char *v, size_t len, long long version);

#endif
