#include "deliver.h"

#include <mysql.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "audit.h"
#include "db.h"
#include "domain/repr.h"
#include "log.h"
#include "mail.h"
#include "webhook.h"

#define DUE_MAX 100           /* endpoints looked at per pass */
#define EVENTS_MAX 100        /* events read after a cursor per claim */
#define DISABLE_AFTER_MS (3LL * 86400 * 1000)
#define BATCH_MAX 20          /* events sent to one endpoint per claim (one commit) */
#define BATCH_S 2             /* ... or seconds: a claim is short, so a DELETE waits little */

/* Endpoints with an event after their cursor, due now. A plain read in autocommit: it
 * locks nothing (the chain's heads are the writers' hot rows) and sees the latest commits. */
static const char SQL_DUE[] =
	"SELECT e.id FROM webhook_endpoints e JOIN audit_heads h ON h.org_id = e.org_id"
	" WHERE e.active = 1 AND e.next_at <= NOW(3) AND h.seq > e.cursor_seq"
	" ORDER BY e.next_at LIMIT 100";
enum { DUE_ID };
/* The claim: the endpoint's row, locked until the attempt is recorded. SKIP LOCKED: another
 * deliverer holding it is sending to it now, and this one moves on to the next. */
static const char SQL_CLAIM[] =
	"SELECT org_id, url, events, secret, cursor_seq, failures, created_by,"
	" COALESCE(TIMESTAMPDIFF(MICROSECOND, failing_since, NOW(3)) DIV 1000, 0)"
	" FROM webhook_endpoints WHERE id = ? AND active = 1 AND next_at <= NOW(3)"
	" FOR UPDATE SKIP LOCKED";
enum { CL_ORG, CL_URL, CL_EVENTS, CL_SECRET, CL_CURSOR, CL_FAILURES, CL_CREATOR, CL_FAILING_MS };
static const char SQL_NEXT_EVENTS[] =
	"SELECT " AUDIT_EVENT_COLUMNS ", seq FROM audit_events WHERE org_id = ? AND seq > ?"
	" ORDER BY seq LIMIT 100";
enum { EV_SEQ = AUDIT_EVENT_NCOLS };
static const char SQL_SKIP[] =
	"UPDATE webhook_endpoints SET cursor_seq = GREATEST(cursor_seq, ?) WHERE id = ?";
static const char SQL_ATTEMPT[] =
	"INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, status, error, duration_ms)"
	" VALUES (?, ?, ?, NULLIF(?, 0), NULLIF(?, ''), ?)";
static const char SQL_DELIVERED[] =
	"UPDATE webhook_endpoints SET cursor_seq = ?, failures = 0, failing_since = NULL,"
	" next_at = NOW(3) WHERE id = ?";
static const char SQL_FAILED[] =
	"UPDATE webhook_endpoints SET failures = failures + 1,"
	" failing_since = COALESCE(failing_since, NOW(3)),"
	" next_at = NOW(3) + INTERVAL ? MICROSECOND WHERE id = ?";
static const char SQL_DISABLE[] = "UPDATE webhook_endpoints SET active = 0 WHERE id = ?";

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The claimed endpoint and what this pass does with it. */
struct claim {
	long long id, org, cursor, failures, creator, failing_ms;
	long long delivered;   /* seq of the claim's last event delivered not yet recorded, or 0 */
	const char *url, *events, *secret;
};

static bool wants(const char *events, const char *action)
{
	if (strcmp(events, "*") == 0)
		return true;
	size_t n = strlen(action);
	for (const char *p = events; *p; ) {
		size_t len = strcspn(p, ",");
		if (len == n && memcmp(p, action, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* {id, type, createdAt, data}: the payload of event row `i`, as sent and signed. */
static const char *payload(struct ctx *c, const struct dbres *r, size_t i)
{
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_id(g, "id", db_i(r, i, AE_ID));
	jw_str(g, "type", db_s(r, i, AE_ACTION));
	jw_time(g, "createdAt", db_s(r, i, AE_AT));
	jw_key(g, "data");
	audit_event_item(c, g, r, i);
	jw_close(g);
	return jw_finish(c->a, g);
}

/* The endpoint becomes inactive, with its audit event in the same transaction: the chain
 * says why deliveries stopped. The event's actor is the ADMIN who made the endpoint. */
static int disable(struct ctx *c, const struct claim *e, const char *why)
{
	if (db_exec(c->db, SQL_DISABLE, "i", e->id) < 0)
		return -1;
	c->me.org_id = e->org;
	c->me.user_id = e->creator;
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "reason", why);
	jw_close(g);
	audit_add(c, "webhook_endpoint.disabled", "webhook_endpoint", e->id, jw_finish(c->a, g));
	log_write(LOG_WARN, "webhook endpoint disabled", "\"endpoint\":%lld,\"reason\":\"%s\"",
		e->id, why);
	return audit_flush(c);
}

/* Moves the cursor past the events of this claim delivered so far (e->delivered, 0: none).
 * Once a claim, not once an event: they all commit together. */
static int moved(struct ctx *c, struct claim *e)
{
	if (!e->delivered)
		return 0;
	long long seq = e->delivered;
	e->delivered = 0;
	return db_exec(c->db, SQL_DELIVERED, "ii", seq, e->id);
}

/* Records the attempt and moves the endpoint on: past the event when a 2xx came (with the
 * claim's others, by `moved`), else the next try per the schedule, or inactive (a 410, or
 * failing for 3 days). */
static int record(struct ctx *c, struct claim *e, long long event, long long seq,
	const struct webhook_result *res)
{
	const struct config *cfg = c->cfg;
	if (db_exec(c->db, SQL_ATTEMPT, "iiiisi", e->id, event, e->failures + 1,
			(long long)res->status, res->error, (long long)res->duration_ms) < 0)
		return -1;
	if (!res->error[0]) {
		e->delivered = seq;
		return 0;
	}
	/* What went out before this failure moves the cursor first: its reset of the failures
	 * comes before this one's count. */
	if (moved(c, e) < 0)
		return -1;
	if (res->status == 410)
		return disable(c, e, "the receiver answered 410 Gone");
	long long scale = cfg->webhook_time_scale;
	long long delay = webhook_retry_after_ms(e->failures + 1) / scale;
	if (db_exec(c->db, SQL_FAILED, "ii", delay * 1000, e->id) < 0)
		return -1;
	if (e->failures > 0 && e->failing_ms + res->duration_ms >= DISABLE_AFTER_MS / scale)
		return disable(c, e, "deliveries failed for 3 days");
	return 0;
}

static int claim(struct ctx *c, long long id, struct claim *e)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_CLAIM, "i", id) < 0)
		return -1;
	if (r.nrows == 0)
		return 0;
	*e = (struct claim){ .id = id, .org = db_i(&r, 0, CL_ORG), .url = db_s(&r, 0, CL_URL),
		.events = db_s(&r, 0, CL_EVENTS), .secret = db_s(&r, 0, CL_SECRET),
		.cursor = db_i(&r, 0, CL_CURSOR), .failures = db_i(&r, 0, CL_FAILURES),
		.creator = db_i(&r, 0, CL_CREATOR), .failing_ms = db_i(&r, 0, CL_FAILING_MS) };
	return 1;
}

/* Sends the claimed endpoint the wanted events among `r` (read after its cursor), in
 * order, each attempt recorded as it ends; stops at the first that fails, after BATCH_MAX
 * or after BATCH_MS. The cursor then stands past the last delivered, or past all of `r`
 * when every one of them was delivered or unwanted. 0, or -1 on a database error. */
static int send_run(struct ctx *c, struct claim *e, const struct dbres *r)
{
	long start = (long)time(NULL);
	int sent = 0;
	for (size_t i = 0; i < r->nrows; i++) {
		if (!wants(e->events, db_s(r, i, AE_ACTION)))
			continue;
		if (sent == BATCH_MAX || (long)time(NULL) - start >= BATCH_S)
			return moved(c, e);
		struct webhook_result res;
		const char *body = payload(c, r, i);
		webhook_post(c->cfg, e->url, e->secret, db_s(r, i, AE_ID), body, strlen(body), &res);
		sent++;
		if (record(c, e, db_i(r, i, AE_ID), db_i(r, i, EV_SEQ), &res) < 0)
			return -1;
		if (res.error[0])
			return 0;
		e->failures = 0;
	}
	/* Everything read went out or was not wanted: the cursor moves past all of it. */
	if (moved(c, e) < 0)
		return -1;
	return r->nrows ? db_exec(c->db, SQL_SKIP, "ii", db_i(r, r->nrows - 1, EV_SEQ), e->id) : 0;
}

/* Sends endpoint `id` its next wanted events, in one transaction that holds the endpoint's
 * row from the claim to the commit: a deliverer killed in between leaves the cursor where
 * it was, and the events go again with the same webhook-ids (at least once). Several per
 * transaction save a commit each (BENCHMARKS.md, "Events out"). 1 worked, 0 nothing to
 * do (or another deliverer has it), -1 database error. */
static int deliver_one(struct ctx *c, long long id)
{
	struct claim e;
	struct dbres r;
	int rc = -1;
	if (db_begin(c->db) < 0)
		return -1;
	int got = claim(c, id, &e);
	if (got <= 0) {
		rc = got;
		goto out;
	}
	if (db_query(c->db, c->a, &r, SQL_NEXT_EVENTS, "ii", e.org, e.cursor) < 0 ||
	    send_run(c, &e, &r) < 0)
		goto out;
	rc = 1;
out:
	return db_end_claim(c->db, rc);
}

/* One pass over the due endpoints. How many got an event, or -1 on a database error. */
static int pass(struct ctx *c)
{
	struct dbres due;
	int worked = 0;
	if (db_query(c->db, c->a, &due, SQL_DUE, "") < 0)
		return -1;
	for (size_t i = 0; i < due.nrows && !stopping; i++) {
		int rc = deliver_one(c, db_i(&due, i, DUE_ID));
		if (rc < 0)
			return -1;
		worked += rc;
	}
	return worked;
}

static void pause_ms(long ms)
{
	struct timespec t = { ms / 1000, ms % 1000 * 1000000L };
	nanosleep(&t, NULL);
}

static void on_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int deliver_run(const struct config *cfg)
{
	struct arena a = { 0 };
	struct ctx c;
	on_signals();
	if (mysql_library_init(0, NULL, NULL) != 0 || webhook_global_init() < 0)
		return 1;
	/* Events are at least once and after the commit, the pool's answers are waited for:
	 * on shared cores the pool goes first (bench/deliver: add-request kept 0.84 x of its
	 * rate beside a deliverer at the same priority). */
	if (cfg->deliver_nice > 0 && setpriority(PRIO_PROCESS, 0, cfg->deliver_nice) != 0)
		log_write(LOG_WARN, "deliverer: cannot lower its priority", NULL);
	memset(&c, 0, sizeof c);
	c.a = &a;
	c.cfg = cfg;
	c.db = db_new(cfg);
	c.request_id = "remit-deliver";
	log_write(LOG_INFO, "deliverer started", NULL);
	while (!stopping) {
		arena_reset(&a);
		http_reset_response(&c);
		int worked = db_connect(c.db) < 0 ? -1 : pass(&c);
		if (worked >= 0 && cfg->smtp_url[0]) {
			int mailed = mail_pass(&c);
			worked = mailed < 0 ? -1 : worked + mailed;
		}
		if (worked < 0) {
			char why[256];
			log_escape(why, sizeof why, db_error(c.db), strlen(db_error(c.db)));
			log_write(LOG_ERROR, "deliverer: database error", "\"error\":\"%s\"", why);
		}
		/* Busy: straight on. Idle or failing: wait a poll interval (or a second). */
		if (worked <= 0 && !stopping)
			pause_ms(worked < 0 ? 1000 : cfg->deliver_poll_ms);
	}
	log_write(LOG_INFO, "deliverer stopped", NULL);
	if (c.rs.gen)   /* http_reset_response's, as worker.c frees its own */
		yajl_gen_free(c.rs.gen);
	db_free(c.db);
	arena_free(&a);
	webhook_global_cleanup();
	mysql_library_end();
	return 0;
}
