#include "shed.h"

#include <ctype.h>
#include <fcgiapp.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/* "1733470000.123" (nginx's $msec: seconds, a dot, three digits) → milliseconds; -1 when the
 * text is anything else. Parsed by hand: no float, no locale. */
static long long parse_msec(const char *s)
{
	long long ms = 0;
	int digits = 0;
	for (; isdigit((unsigned char)*s); s++) {
		if (++digits > 12)
			return -1;
		ms = ms * 10 + (*s - '0');
	}
	if (digits == 0 || *s++ != '.')
		return -1;
	for (int i = 0; i < 3; i++, s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		ms = ms * 10 + (*s - '0');
	}
	return *s ? -1 : ms;
}

long shed_waited_ms(FCGX_Request *fr)
{
	/* Set by nginx's fastcgi_param, never from a client header: those arrive as HTTP_*. */
	const char *start = FCGX_GetParam("REMIT_START", fr->envp);
	long long t0 = start ? parse_msec(start) : -1;
	if (t0 < 0)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long waited = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - t0;
	/* A start time in the future is a clock step or another host's clock: not a wait. */
	return waited < 0 ? 0 : (long)waited;
}

int shed_check_or_reply(struct ctx *c, FCGX_Request *fr)
{
	if (c->cfg->shed_after_ms <= 0)
		return STEP_GO_ON;
	long waited = shed_waited_ms(fr);
	if (waited <= c->cfg->shed_after_ms)
		return STEP_GO_ON;
	log_write(LOG_DEBUG, "request shed", "\"rid\":\"%s\",\"waited_ms\":%ld", c->request_id, waited);
	c->rs.retry_after = true;
	return reply_error(c, 503, "SERVICE_UNAVAILABLE", "overloaded: the request waited too long "
		"for a worker; nothing was done, retry after Retry-After seconds");
}
