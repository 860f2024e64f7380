/* The request's header grammar beyond what FastCGI hands over: the JSON media type, a header
 * sent on more than one line, the body as a JSON object, the Idempotency-Key. */
#include "headers.h"

#include <fcgiapp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "idem.h"
#include "idem_key.h"
#include "pain002.h"

/* The media type a Content-Type names (enum media), with no parameter but an optional
 * charset=utf-8 (any case, optionally quoted); 0 for any other value. */
unsigned http_media_of(const char *ct)
{
	/* text/xml is XML as much as application/xml (RFC 7303): one media type, one name. */
	static const struct { unsigned media; const char *name; } known[] = {
		{ MT_JSON, "application/json" }, { MT_CSV, "text/csv" },
		{ MT_XML, "application/xml" }, { MT_XML, "text/xml" },
	};
	unsigned media = 0;
	const char *p = ct;
	for (size_t i = 0; ct && !media && i < sizeof known / sizeof *known; i++) {
		size_t n = strlen(known[i].name);
		if (strncasecmp(ct, known[i].name, n) == 0 && strchr(" \t;", ct[n]))
			media = known[i].media, p = ct + n;
	}
	if (!media)
		return 0;
	p += strspn(p, " \t");
	if (!*p)
		return media;
	if (*p++ != ';')
		return 0;
	p += strspn(p, " \t");
	if (strncasecmp(p, "charset=", 8) != 0)
		return 0;
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return 0;
	p += strspn(p, " \t");
	return *p == '\0' ? media : 0;
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

/* 415 naming the media types the route takes. */
static int reply_unsupported(struct ctx *c, unsigned accepted)
{
	char names[128] = "";
	for (unsigned m = 1; m <= MT_XML; m <<= 1)
		if (accepted & m)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
				names[0] ? " or " : "", media_name(m));
	return reply_error(c, 415, "UNSUPPORTED_MEDIA_TYPE", arena_printf(c->a,
		"the body must be %s (charset utf-8)", names));
}

/* An XML body is read where a JSON one is parsed (API §1's order puts MALFORMED_XML where
 * MALFORMED_JSON is). The one XML route takes a pain.002 status report (API §9), so that is
 * what is read, into c->rq.report; what is wrong inside a well-formed report is the
 * handler's to name, after the file's 404. An empty body is no report either. */
static int xml_parse(struct ctx *c)
{
	c->rq.report = arena_alloc(c->a, sizeof *c->rq.report);
	if (pain002_read(c->a, c->rq.body, c->rq.body_len, c->rq.report) < 0)
		return reply_error(c, 400, "MALFORMED_XML", "the body is not a pain.002.001.10 status"
			" report (well-formed UTF-8 XML, no DOCTYPE, at most 32 levels deep, root"
			" Document/CstmrPmtStsRpt in " PAIN002_NS ")");
	return STEP_GO_ON;
}

/* Reads the body of a POST, PUT or PATCH: JSON is parsed into c->body, any other media type
 * the route accepts stays bytes in c->rq.body with c->rq.media saying which (c->body is then
 * {}); a DELETE's body must be JSON too (§1: any request with a body) but means nothing. Two
 * Content-Type lines are one value "a, b" (RFC 9110 §5.3), which is no media type: checking
 * the first alone would let "application/json" then "text/plain" through. */
int http_body_parse_or_reply(struct ctx *c, FCGX_Request *fr, unsigned accepted, long max)
{
	static struct jv empty = { .t = J_OBJ };
	bool has_body = c->rq.content_length > 0;
	unsigned media = http_media_of(c->rq.content_type);
	if (has_body && (!(media & accepted) || http_param_repeated(fr, "HTTP_CONTENT_TYPE")))
		return reply_unsupported(c, accepted);
	if (http_read_body(c, fr, max) < 0)
		return reply_error(c, 413, "PAYLOAD_TOO_LARGE", arena_printf(c->a,
			"the body is larger than the %ld bytes this resource accepts", max));
	c->body = &empty;
	if (strcmp(c->rq.method, "DELETE") == 0)
		return STEP_GO_ON;
	if (c->rq.body_len == 0) {
		if (accepted == MT_XML)
			return xml_parse(c);
		if (strcmp(c->rq.method, "POST") != 0)
			return reply_error(c, 400, "MALFORMED_JSON", "this method needs a JSON body");
		return STEP_GO_ON;
	}
	c->rq.media = media;
	if (media == MT_XML)
		return xml_parse(c);
	if (media != MT_JSON)
		return STEP_GO_ON;
	if (json_parse(c->a, c->rq.body, c->rq.body_len, &c->body) < 0 || c->body->t != J_OBJ)
		return reply_error(c, 400, "MALFORMED_JSON", "the body is not a valid JSON object");
	return STEP_GO_ON;
}

/* The Idempotency-Key header: present, one line, 1..255 visible ASCII characters. */
int http_idem_key_or_reply(struct ctx *c, FCGX_Request *fr)
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
