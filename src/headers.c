/* The request's header grammar beyond what FastCGI hands over: the JSON media type, a header
 * sent on more than one line, the body as a JSON object, the Idempotency-Key. */
#include "headers.h"

#include <fcgiapp.h>
#include <string.h>
#include <strings.h>

#include "idem.h"
#include "idem_key.h"

/* application/json, optionally with charset=utf-8 (any case, optionally quoted). */
bool http_content_type_ok(const char *ct)
{
	static const char type[] = "application/json";
	if (!ct || strncasecmp(ct, type, sizeof type - 1) != 0)
		return false;
	const char *p = ct + sizeof type - 1;
	p += strspn(p, " \t");
	if (!*p)
		return true;
	if (*p++ != ';')
		return false;
	p += strspn(p, " \t");
	if (strncasecmp(p, "charset=", 8) != 0)
		return false;
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return false;
	p += strspn(p, " \t");
	return *p == '\0';
}

/* nginx before 1.23 hands each line of a repeated header to FastCGI as a param of its own,
 * and FCGX_GetParam returns the first. Two Idempotency-Key lines are one value "k1, k2" (RFC
 * 9110 §5.3), which is no key: taking one line would let the request run once under each. */
bool http_param_repeated(FCGX_Request *fr, const char *name)
{
	size_t n = strlen(name);
	int seen = 0;
	for (char **e = fr->envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && ++seen > 1)
			return true;
	return false;
}

/* Reads and parses the body of a POST, PUT or PATCH into c->body; a DELETE's body must be
 * JSON too (§1: any request with a body) but means nothing. Two Content-Type lines are one
 * value "a, b" (RFC 9110 §5.3), which is no media type: checking the first alone would let
 * "application/json" then "text/plain" through. */
int http_body_parse(struct ctx *c, FCGX_Request *fr)
{
	bool has_body = c->rq.content_length > 0;
	if (has_body && (!http_content_type_ok(c->rq.content_type) || http_param_repeated(fr, "HTTP_CONTENT_TYPE")))
		return reply_error(c, 415, "UNSUPPORTED_MEDIA_TYPE",
			"the body must be application/json (charset utf-8)");
	if (http_read_body(c, fr) < 0)
		return reply_error(c, 413, "PAYLOAD_TOO_LARGE", "the body is larger than allowed");
	static struct jv empty = { .t = J_OBJ };
	if (strcmp(c->rq.method, "DELETE") == 0) {
		c->body = &empty;
		return STEP_GO_ON;
	}
	if (c->rq.body_len == 0) {
		if (strcmp(c->rq.method, "POST") != 0)
			return reply_error(c, 400, "MALFORMED_JSON", "this method needs a JSON body");
		c->body = &empty;
		return STEP_GO_ON;
	}
	if (json_parse(c->a, c->rq.body, c->rq.body_len, &c->body) < 0 || c->body->t != J_OBJ)
		return reply_error(c, 400, "MALFORMED_JSON", "the body is not a valid JSON object");
	return STEP_GO_ON;
}

/* The Idempotency-Key header: present, one line, 1..255 visible ASCII characters. */
int http_idem_key(struct ctx *c, FCGX_Request *fr)
{
	const char *h = c->rq.idem_header;
	if (!h)
		return reply_error(c, 400, "IDEMPOTENCY_KEY_MISSING",
			"this request needs an Idempotency-Key header");
	char *key = arena_alloc(c->a, IDEM_KEY_MAX + 1);
	if (idem_key_parse(h, strlen(h), key) < 0 || http_param_repeated(fr, "HTTP_IDEMPOTENCY_KEY"))
		return reply_error(c, 400, "IDEMPOTENCY_KEY_INVALID",
			"Idempotency-Key must be 1..255 visible ASCII characters");
	idem_state(c)->key = key;
	return STEP_GO_ON;
}
