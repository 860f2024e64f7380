#include "http.h"

#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idem_key.h"

static const char *param(FCGX_Request *fr, const char *name)
{
	return FCGX_GetParam(name, fr->envp);
}

void http_read_request(struct ctx *c, FCGX_Request *fr)
{
	struct request *r = &c->rq;
	const char *uri = param(fr, "REQUEST_URI");
	const char *qs = param(fr, "QUERY_STRING");
	r->method = param(fr, "REQUEST_METHOD");
	if (!r->method)
		r->method = "GET";
	/* The path is REQUEST_URI up to '?': it is what the client sent, not nginx's rewrite. */
	if (!uri)
		uri = "/";
	const char *q = strchr(uri, '?');
	r->path = q ? arena_strndup(c->a, uri, (size_t)(q - uri)) : uri;
	r->query = qs ? qs : "";
	r->content_type = param(fr, "CONTENT_TYPE");
	if (r->content_type && !*r->content_type)
		r->content_type = NULL;
	r->authorization = param(fr, "HTTP_AUTHORIZATION");
	r->idem_header = param(fr, "HTTP_IDEMPOTENCY_KEY");
	r->if_match = param(fr, "HTTP_IF_MATCH");
	r->accept = param(fr, "HTTP_ACCEPT");
	const char *cl = param(fr, "CONTENT_LENGTH");
	r->content_length = -1;
	if (cl && *cl) {
		char *end;
		long n = strtol(cl, &end, 10);
		r->content_length = (*end || n < 0) ? -1 : n;
	}
	r->body = "";
	r->body_len = 0;
}

const char *media_name(unsigned media)
{
	switch (media) {
	case MT_JSON: return "application/json";
	case MT_CSV: return "text/csv";
	case MT_XML: return "application/xml";
	default: return "";
	}
}

int http_read_body(struct ctx *c, FCGX_Request *fr, long max)
{
	long want = c->rq.content_length;
	if (want > max)
		return -1;
	if (want <= 0)
		return 0;
	char *buf = arena_alloc(c->a, (size_t)want + 1);
	int got = FCGX_GetStr(buf, (int)want, fr->in);
	buf[got > 0 ? got : 0] = '\0';
	c->rq.body = buf;
	c->rq.body_len = got > 0 ? (size_t)got : 0;
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

void http_write_response(struct ctx *c, FCGX_Request *fr)
{
	struct response *rs = &c->rs;
	const unsigned char *body = (const unsigned char *)rs->body;
	size_t len = rs->body_len;
	if (!body && rs->status != 204)
		yajl_gen_get_buf(rs->gen, &body, &len);
	char head[1024];
	int n = snprintf(head, sizeof head, "Status: %d %s\r\nX-Request-Id: %s\r\n", rs->status,
		reason(rs->status), c->request_id);
	if (rs->status != 204)
		n += snprintf(head + n, sizeof head - (size_t)n,
			"Content-Type: %s\r\nCache-Control: no-store\r\n",
			rs->content_type ? rs->content_type : "application/json");
	if (rs->attachment)
		n += snprintf(head + n, sizeof head - (size_t)n,
			"Content-Disposition: attachment; filename=\"%s\"\r\n", rs->attachment);
	if (rs->etag > 0)
		n += snprintf(head + n, sizeof head - (size_t)n, "ETag: \"%lld\"\r\n", rs->etag);
	if (rs->allow)
		n += snprintf(head + n, sizeof head - (size_t)n, "Allow: %s\r\n", rs->allow);
	if (rs->www_authenticate)
		n += snprintf(head + n, sizeof head - (size_t)n, "WWW-Authenticate: Bearer\r\n");
	if (rs->retry_after)
		n += snprintf(head + n, sizeof head - (size_t)n, "Retry-After: %ld\r\n", rs->retry_after);
	if (rs->replayed)
		n += snprintf(head + n, sizeof head - (size_t)n, "Idempotent-Replayed: true\r\n");
	if (rs->accel_redirect)
		n += snprintf(head + n, sizeof head - (size_t)n, "X-Accel-Redirect: %s\r\n",
			rs->accel_redirect);
	n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
	FCGX_PutStr(head, n, fr->out);
	if (rs->status != 204 && len)
		FCGX_PutStr((const char *)body, (int)len, fr->out);
}

void http_reset_response(struct ctx *c)
{
	struct response *rs = &c->rs;
	if (!rs->gen) {
		rs->gen = yajl_gen_alloc(NULL);
		if (!rs->gen)
			abort();
		yajl_gen_config(rs->gen, yajl_gen_validate_utf8, 1);
	} else {
		yajl_gen_reset(rs->gen, NULL);
		yajl_gen_clear(rs->gen);
	}
	yajl_gen g = rs->gen;
	memset(rs, 0, sizeof *rs);
	rs->gen = g;
	c->ndetails = 0;
	c->audit = c->audit_tail = NULL;
}

yajl_gen reply_data(struct ctx *c, int status)
{
	c->rs.status = status;
	yajl_gen_map_open(c->rs.gen);
	jw_key(c->rs.gen, "data");
	return c->rs.gen;
}

int reply_done(struct ctx *c)
{
	yajl_gen_map_close(c->rs.gen);
	return c->rs.status;
}

yajl_gen reply_list(struct ctx *c)
{
	yajl_gen g = reply_data(c, 200);
	yajl_gen_array_open(g);
	return g;
}

int reply_list_done(struct ctx *c, long long next_cursor)
{
	yajl_gen g = c->rs.gen;
	yajl_gen_array_close(g);
	jw_id(g, "nextCursor", next_cursor);
	return reply_done(c);
}

int reply_empty(struct ctx *c, int status)
{
	c->rs.status = status;
	return status;
}

void detail_str(struct ctx *c, const char *key, const char *value)
{
	for (int i = 0; i < c->ndetails; i++)
		if (strcmp(c->details[i].key, key) == 0)
			return;   /* the first problem with a field is the one reported */
	if (c->ndetails < MAX_DETAILS)
		c->details[c->ndetails++] = (struct detail){ key, value, 0, NULL, 0 };
}

void detail_int(struct ctx *c, const char *key, long long value)
{
	if (c->ndetails < MAX_DETAILS)
		c->details[c->ndetails++] = (struct detail){ key, NULL, value, NULL, 0 };
}

void detail_list(struct ctx *c, const char *key, const char *const *list, size_t n)
{
	if (c->ndetails < MAX_DETAILS)
		c->details[c->ndetails++] = (struct detail){ key, NULL, 0, list, n };
}

int reply_error(struct ctx *c, int status, const char *code, const char *message)
{
	/* An error replaces whatever a handler had started to write. */
	yajl_gen_reset(c->rs.gen, NULL);
	yajl_gen_clear(c->rs.gen);
	c->rs.etag = 0;
	c->rs.status = status;
	/* A 503 is always "come back soon" (the database is away or busy): say when. */
	if (status == 503)
		c->rs.retry_after = true;
	yajl_gen g = c->rs.gen;
	jw_open(g, NULL);
	jw_open(g, "error");
	jw_str(g, "code", code);
	jw_str(g, "message", message);
	jw_open(g, "details");
	for (int i = 0; i < c->ndetails; i++) {
		if (c->details[i].list) {
			jw_array(g, c->details[i].key);
			for (size_t j = 0; j < c->details[i].nlist; j++)
				jw_str(g, NULL, c->details[i].list[j]);
			jw_array_close(g);
		} else if (c->details[i].str)
			jw_str(g, c->details[i].key, c->details[i].str);
		else
			jw_int(g, c->details[i].key, c->details[i].num);
	}
	jw_close(g);
	jw_close(g);
	jw_close(g);
	return status;
}

int reply_not_found(struct ctx *c)
{
	c->ndetails = 0;
	return reply_error(c, 404, "NOT_FOUND", "no such resource");
}

int reply_invalid_state(struct ctx *c, const char *status)
{
	c->ndetails = 0;
	detail_str(c, "status", status);
	return reply_error(c, 409, "INVALID_STATE", "the resource's status does not allow this action");
}

int reply_version_conflict(struct ctx *c, long long current)
{
	c->ndetails = 0;
	detail_int(c, "currentVersion", current);
	return reply_error(c, 412, "VERSION_CONFLICT", "If-Match does not match the current version");
}

int reply_validation(struct ctx *c)
{
	return reply_error(c, 400, "VALIDATION_ERROR", "the request has invalid fields");
}

int check_if_match_or_reply(struct ctx *c, long long version)
{
	const char *h = c->rq.if_match;
	if (!h || if_match_ok(h, strlen(h), version))
		return STEP_GO_ON;
	return reply_version_conflict(c, version);
}

long long param_id(struct ctx *c, int i)
{
	return id_parse(c->params[i]);
}

long long id_parse(const char *s)
{
	long long v = 0;
	if (!s || !*s || strlen(s) > 18 || *s == '0')
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Any media range of the list that is text/csv, whatever its parameters: a client that asks
 * for CSV at all gets it, every other Accept gets JSON (API §10). */
bool http_wants_csv(const struct ctx *c)
{
	const char *s = c->rq.accept;
	while (s && *s) {
		s += strspn(s, " \t,");
		size_t n = strcspn(s, ";, \t");
		if (n == 8 && strncasecmp(s, "text/csv", 8) == 0)
			return true;
		s += strcspn(s, ",");
	}
	return false;
}
