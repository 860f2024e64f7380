/* Text rules of the API (§1): strict UTF-8, lengths in code points, no Unicode Cc characters. */
#ifndef REMIT_TEXT_H
#define REMIT_TEXT_H
#include <stdbool.h>
#include <stddef.h>

/* Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates (U+D800..DFFF), code points above
 * U+10FFFF and truncated sequences. Returns the number of code points, or -1 when invalid. */
long utf8_count(const char *s, size_t len);

/* True when s holds a Unicode control character (Cc: U+0000..U+001F, U+007F..U+009F).
 * s must be valid UTF-8. */
bool text_has_control(const char *s, size_t len);

/* True when s matches [A-Za-z0-9._:+/=@~-]{1,128} (a client's X-Request-Id we may echo). */
bool request_id_valid(const char *s, size_t len);

#endif
