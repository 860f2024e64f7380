#include "idem_key.h"

#include <stdio.h>
#include <string.h>

static bool is_visible(char c)
{
	return c >= 0x21 && c <= 0x7E;
}

/* Appends c to the key being built, refusing what a key may not hold. */
static bool key_push(char *out, size_t *n, char c)
{
	if (!is_visible(c) || *n == IDEM_KEY_MAX)
		return false;
	out[(*n)++] = c;
	return true;
}

/* The body of an sf-string (RFC 8941 §3.3.3) after its opening quote. Its own grammar allows
 * spaces, but a key may not hold them, so key_push refuses them with the controls. */
static bool parse_quoted(const char *v, size_t len, char *out, size_t *n)
{
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '"')
			return i + 1 == len;    /* nothing may follow the closing quote */
		if (c == '\\') {
			if (++i == len || (v[i] != '"' && v[i] != '\\'))
				return false;
			c = v[i];
		}
		if (!key_push(out, n, c))
			return false;
	}
	return false;                           /* unterminated */
}

static bool parse_bare(const char *v, size_t len, char *out, size_t *n)
{
	for (size_t i = 0; i < len; i++)
		if (!key_push(out, n, v[i]))
			return false;
	return true;
}

int idem_key_parse(const char *v, size_t len, char out[IDEM_KEY_MAX + 1])
{
	size_t n = 0;
	bool ok = (len > 0 && v[0] == '"') ? parse_quoted(v + 1, len - 1, out, &n)
					 : parse_bare(v, len, out, &n);

	if (!ok || n == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_ows(const char *v, size_t len, size_t i)
{
	while (i < len && is_ows(v[i]))
		i++;
	return i;
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3) */
static bool is_etagc(char c)
{
	unsigned char u = (unsigned char)c;
	return u == 0x21 || (u >= 0x23 && u != 0x7F);
}

/* Reads one entity-tag at v[*i], advancing *i past it. A weak tag is read (so the list stays
 * well-formed) but reported as matching nothing: If-Match uses the strong comparison. */
static bool parse_etag(const char *v, size_t len, size_t *i, const char *want, size_t want_len,
		       bool *match)
{
	size_t p = *i;
	bool weak = len - p >= 2 && v[p] == 'W' && v[p + 1] == '/';

	if (weak)
		p += 2;
	if (p == len || v[p] != '"')
		return false;
	size_t start = ++p;
	while (p < len && is_etagc(v[p]))
		p++;
	if (p == len || v[p] != '"')
		return false;
	*match = !weak && p - start == want_len && memcmp(v + start, want, want_len) == 0;
	*i = p + 1;
	return true;
}

/* If-Match = "*" / #entity-tag. Empty list elements ("a", , "b") are ignored as RFC 9110 §5.6.1
 * asks of recipients, but at least one tag must be present. */
bool if_match_ok(const char *v, size_t len, long long version)
{
	char want[24];
	size_t want_len = (size_t)snprintf(want, sizeof want, "%lld", version);
	size_t i = skip_ows(v, len, 0), end = len;
	bool any = false, matched = false;

	while (end > i && is_ows(v[end - 1]))
		end--;
	if (end - i == 1 && v[i] == '*')
		return true;
	while (i < end) {
		if (v[i] != ',') {
			bool m;
			if (!parse_etag(v, end, &i, want, want_len, &m))
				return false;
			any = true;
			matched |= m;
			i = skip_ows(v, end, i);
			if (i == end)
				break;
			if (v[i] != ',')
				return false;
		}
		i = skip_ows(v, end, i + 1);
	}
	return any && matched;
}
