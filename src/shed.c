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

/* What this worker's requests have recently taken to serve, in milliseconds: a weighted
 * mean of the last few dozen (each worker is a process of its own, so a static is its own).
 * A sample is capped at the budget, so one long CSV export does not shed for minutes. */
static double served_ms;

void shed_note_served(const struct config *cfg, double ms)
{
	double cap = cfg->shed_after_ms > 0 ? (double)cfg->shed_after_ms : ms;
	if (ms > cap)
		ms = cap;
	served_ms = served_ms > 0 ? 0.9 * served_ms + 0.1 * ms : ms;
}

/* A request is admitted while it would be answered within the budget: what it waited, plus
 * twice the mean time a request takes here (the tail is longer than the mean), never less
 * than half the budget for the waiting itself. Admitting by the wait alone answered
 * requests that had waited 249 ms in 280. */
static long wait_allowed_ms(const struct config *cfg)
{
	long budget = cfg->shed_after_ms, serve = (long)(2 * served_ms);
	return serve < budget / 2 ? budget - serve : budget - budget / 2;
}

int shed_check_or_reply(struct ctx *c, FCGX_Request *fr)
{
	if (c->cfg->shed_after_ms <= 0)
		return STEP_GO_ON;
	long waited = shed_waited_ms(fr);
	if (waited <= wait_allowed_ms(c->cfg))
		return STEP_GO_ON;
	log_write(LOG_DEBUG, "request shed", "\"rid\":\"%s\",\"waited_ms\":%ld", c->request_id, waited);
	c->rs.retry_after = true;
	/* nginx paces the answer (nginx/remit.conf.in, /_errors/shed); the body is for a
	 * FastCGI client that is not nginx. */
	c->rs.accel_redirect = "/_errors/shed";
	return reply_error(c, 503, "SERVICE_UNAVAILABLE", "overloaded: the request waited too long "
		"for a worker; nothing was done, retry after Retry-After seconds");
}
