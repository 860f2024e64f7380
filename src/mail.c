#include "mail.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "json.h"
#include "log.h"
#include "money.h"
#include "webhook.h"

#define EVENTS_PER_CLAIM 20

static const char SQL_NEW_ORGS[] =
	"SELECT h.org_id FROM audit_heads h LEFT JOIN mail_cursors m ON m.org_id = h.org_id"
	" WHERE m.org_id IS NULL LIMIT 100";
enum { NEW_ORG };
static const char SQL_ADD_ORG[] =
	"INSERT IGNORE INTO mail_cursors (org_id, cursor_seq) VALUES (?, 0)";
static const char SQL_DUE[] =
	"SELECT m.org_id FROM mail_cursors m JOIN audit_heads h ON h.org_id = m.org_id"
	" WHERE h.seq > m.cursor_seq AND m.next_at <= NOW(3) ORDER BY m.next_at LIMIT 100";
enum { DUE_ORG };
static const char SQL_CLAIM[] =
	"SELECT cursor_seq, failures FROM mail_cursors WHERE org_id = ? AND next_at <= NOW(3)"
	" FOR UPDATE SKIP LOCKED";
enum { CL_CURSOR, CL_FAILURES };
static const char SQL_EVENTS[] =
	"SELECT id, seq, action, actor_id, object_id, data FROM audit_events WHERE org_id = ?"
	" AND seq > ? ORDER BY seq LIMIT 20";
enum { EV_ID, EV_SEQ, EV_ACTION, EV_ACTOR, EV_OBJECT, EV_DATA };
static const char SQL_MOVED[] =
	"UPDATE mail_cursors SET cursor_seq = ?, failures = 0, next_at = NOW(3) WHERE org_id = ?";
static const char SQL_FAILED[] =
	"UPDATE mail_cursors SET cursor_seq = ?, failures = failures + 1,"
	" next_at = NOW(3) + INTERVAL ? MICROSECOND WHERE org_id = ?";
static const char SQL_INVITED[] =
	"SELECT u.id, u.email, u.name, i.token FROM users u JOIN invitation_mails i ON i.user_id = u.id"
	" WHERE u.id = ? AND u.org_id = ?";
static const char SQL_INVITED_DONE[] =
	"DELETE FROM invitation_mails WHERE user_id = ? AND token = ?";
/* SQL_INVITED, SQL_APPROVERS, SQL_CREATOR and SQL_TREASURERS answer rows of these columns
 * (mail_rows); TO_WHAT is the invitation's token, or a name for the notice's text; only
 * SQL_TREASURERS has the request's amount after it. */
enum { TO_ID, TO_EMAIL, TO_NAME, TO_WHAT, TO_AMOUNT, TO_CURRENCY, TO_MINOR };
/* The APPROVERs (role bit 4) who may decide: active, and not the one who submitted. */
static const char SQL_APPROVERS[] =
	"SELECT u.id, u.email, u.name, b.name FROM users u JOIN batches b ON b.id = ?"
	" WHERE u.org_id = ? AND b.org_id = u.org_id AND u.active = 1 AND u.roles & 4 AND u.id <> ?";
static const char SQL_CREATOR[] =
	"SELECT u.id, u.email, u.name, r.beneficiary_name FROM payment_requests r"
	" JOIN users u ON u.id = r.created_by WHERE r.id = ? AND u.org_id = ? AND u.active = 1"
	" AND u.id <> ?";
/* Every active TREASURER (role bit 8): the bank returned the request, no one of them did, so
 * the one who uploaded the report is told too (no actor among the parameters: `bind`). */
static const char SQL_TREASURERS[] =
	"SELECT u.id, u.email, u.name, r.beneficiary_name, r.amount, r.currency, cu.minor_unit"
	" FROM payment_requests r JOIN currencies cu ON cu.code = r.currency"
	" JOIN users u ON u.org_id = r.org_id"
	" WHERE r.id = ? AND r.org_id = ? AND u.active = 1 AND u.roles & 8"
	" ORDER BY u.id";

/* The bank's reason codes (ISO 20022 ExternalStatusReason1Code) in words, as the screens
 * say them (www/public/assets/js/reasons.js); an unknown code is given as it is. */
static const struct { const char code[5], *words; } reasons[] = {
	{ "AC01", "incorrect account number" }, { "AC02", "invalid debtor account number" },
	{ "AC03", "invalid creditor account number" }, { "AC04", "account closed" },
	{ "AC06", "account blocked" }, { "AC13", "invalid debtor account type" },
	{ "AG01", "transaction forbidden on this account" }, { "AG02", "invalid bank operation code" },
	{ "AM01", "amount is zero" }, { "AM02", "amount not allowed" },
	{ "AM04", "insufficient funds" }, { "AM05", "duplicate payment" },
	{ "AM09", "wrong amount" }, { "BE01", "creditor name does not match the account" },
	{ "BE04", "creditor address missing" }, { "BE05", "unrecognised initiating party" },
	{ "CNOR", "creditor bank not registered" }, { "DNOR", "debtor bank not registered" },
	{ "DT01", "invalid date" }, { "ED05", "settlement failed" },
	{ "FF01", "invalid file format" }, { "MD01", "no mandate" },
	{ "MD07", "beneficiary deceased" }, { "MS02", "refused by the beneficiary" },
	{ "MS03", "reason not specified" }, { "NARR", "see the bank's narrative" },
	{ "RC01", "invalid bank identifier (BIC)" },
	{ "RR01", "debtor account or identification missing" },
	{ "RR02", "debtor name or address missing" }, { "RR03", "creditor name or address missing" },
	{ "RR04", "regulatory reason" }, { "SL01", "specific service offered by the debtor bank" },
	{ "TM01", "received after the bank's cut-off time" },
};

/* "AC04 (account closed)", the code alone if unknown, NULL when the event has none. */
static const char *reason_words(struct ctx *c, const char *data)
{
	struct jv *ev;
	const struct jv *code;
	if (json_parse(c->a, data, strlen(data), &ev) < 0 || !(code = json_get(ev, "reasonCode")) ||
	    code->t != J_STR)
		return NULL;
	for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
		if (code->len == 4 && memcmp(code->s, reasons[i].code, 4) == 0)
			return arena_printf(c->a, "%s (%s)", reasons[i].code, reasons[i].words);
	return arena_printf(c->a, "%.*s", (int)code->len, code->s);
}

/* "The payment request 12 of 12.34 EUR to Acme GmbH was returned by the bank: AC04
 * (account closed)." from SQL_TREASURERS' first row and the event's data. */
static const char *returned_text(struct ctx *c, const struct dbres *r, long long object,
	const char *data)
{
	char amount[MONEY_FMT_MAX];
	money_format(db_i(r, 0, TO_AMOUNT), (int)db_i(r, 0, TO_MINOR), amount);
	const char *why = reason_words(c, data);
	return arena_printf(c->a, "The payment request %lld of %s %s to %s was returned by the bank%s%s."
		" It is APPROVED again: it may go into a new payment file.", object, amount,
		db_s(r, 0, TO_CURRENCY), db_s(r, 0, TO_WHAT), why ? ": " : " (no reason given)",
		why ? why : "");
}

/* The events that mail people about an object: who (a statement taking the object, the
 * organisation and, when `bind` is "iii", the actor, who is never told of their own act; its
 * rows are id, email, name and a name for the text), what, and where to look. */
static const struct notice {
	const char *action, *sql, *bind, *subject, *text, *link;
	/* The text when it needs more than the name: the rows, the object, the event's data. */
	const char *(*describe)(struct ctx *, const struct dbres *, long long, const char *);
} notices[] = {
	{ "batch.submitted", SQL_APPROVERS, "iii", "A batch is waiting for your approval",
		"The batch \"%s\" is waiting for your approval.", "%s/#/batches/%lld", NULL },
	{ "request.rejected", SQL_CREATOR, "iii", "A payment request was rejected",
		"Your payment request to %s was rejected.", "%s/#/requests/%lld", NULL },
	{ "request.returned", SQL_TREASURERS, "ii", "A payment was returned by the bank", NULL,
		"%s/#/requests/%lld", returned_text },
};

/* What one mail says; `link` goes into both parts. */
struct letter {
	long long event, user;
	const char *to, *name, *subject, *text, *link;
};

struct upload {
	const char *p;
	size_t left;
};

static size_t feed(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t k = size * n < u->left ? size * n : u->left;
	memcpy(buf, u->p, k);
	u->p += k;
	u->left -= k;
	return k;
}

/* "&<>\"" escaped for the HTML part. */
static const char *html_escape(struct arena *a, const char *s)
{
	char *out = arena_alloc(a, strlen(s) * 6 + 1), *w = out;
	for (; *s; s++) {
		const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
			: *s == '"' ? "&quot;" : NULL;
		if (e)
			w = stpcpy(w, e);
		else
			*w++ = *s;
	}
	*w = '\0';
	return out;
}

/* The message, CRLF lines, plain text and HTML. Message-ID: the event and the recipient,
 * so a retry is recognisably the same mail. */
static const char *compose(struct ctx *c, const struct letter *l)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *b = "remit-alt-boundary-7f3a";
	const char *html = arena_printf(c->a,
		"<html><body><p>Hello %s,</p><p>%s</p><p><a href=\"%s\">%s</a></p></body></html>",
		html_escape(c->a, l->name), html_escape(c->a, l->text), html_escape(c->a, l->link),
		html_escape(c->a, l->link));
	return arena_printf(c->a,
		"From: remit <%s>\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
		"Message-ID: <remit.event-%lld.user-%lld@remit>\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
		"--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		"Hello %s,\r\n\r\n%s\r\n\r\n%s\r\n\r\n"
		"--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		"%s\r\n--%s--\r\n",
		c->cfg->mail_from, l->to, l->subject, date, l->event, l->user, b, b, l->name, l->text,
		l->link, b, html, b);
}

/* One message over SMTP. 0 sent, -1 not (logged, without the message). */
static int send_one(struct ctx *c, const struct letter *l)
{
	const char *msg = compose(c, l);
	struct upload u = { msg, strlen(msg) };
	char to[300];
	snprintf(to, sizeof to, "<%s>", l->to);
	struct curl_slist *rcpt = curl_slist_append(NULL, to);
	CURL *k = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;
	if (k && rcpt) {
		curl_easy_setopt(k, CURLOPT_URL, c->cfg->smtp_url);
		curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(k, CURLOPT_MAIL_FROM, c->cfg->mail_from);
		curl_easy_setopt(k, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(k, CURLOPT_READFUNCTION, feed);
		curl_easy_setopt(k, CURLOPT_READDATA, &u);
		curl_easy_setopt(k, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, (long)c->cfg->webhook_timeout_ms);
		rc = curl_easy_perform(k);
	}
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(k);
	if (rc != CURLE_OK)
		log_write(LOG_WARN, "mail not sent", "\"event\":%lld,\"error\":\"%s\"", l->event,
			curl_easy_strerror(rc));
	return rc == CURLE_OK ? 0 : -1;
}

/* Mails each row of `r` (id, email, name, what) the letter `l` with its own address. 0, 1
 * when a mail failed (retry the event), -1 on a database error. */
static int mail_rows(struct ctx *c, const struct dbres *r, struct letter *l)
{
	for (size_t i = 0; i < r->nrows; i++) {
		l->user = db_i(r, i, TO_ID);
		l->to = db_s(r, i, TO_EMAIL);
		l->name = db_s(r, i, TO_NAME);
		if (send_one(c, l) < 0)
			return 1;
	}
	return 0;
}

/* The mails event row `i` calls for. 0 done (or none), 1 a mail failed, -1 database. */
static int mail_event(struct ctx *c, long long org, const struct dbres *ev, size_t i)
{
	const char *action = db_s(ev, i, EV_ACTION), *base = c->cfg->public_url;
	long long object = db_i(ev, i, EV_OBJECT);
	struct letter l = { .event = db_i(ev, i, EV_ID), .link = base };
	struct dbres r;
	if (strcmp(action, "user.invited") == 0) {
		if (db_query(c->db, c->a, &r, SQL_INVITED, "ii", object, org) < 0)
			return -1;
		if (r.nrows == 0)
			return 0;   /* mailed already, or made before smtp_url was set */
		l.subject = "Your invitation to remit";
		l.text = "You are invited to remit. Open this link to choose your password:";
		l.link = arena_printf(c->a, "%s/#/accept?token=%s", base, db_s(&r, 0, TO_WHAT));
		int rc = mail_rows(c, &r, &l);
		return rc ? rc : db_exec(c->db, SQL_INVITED_DONE, "is", object, db_s(&r, 0, TO_WHAT));
	}
	for (size_t n = 0; n < sizeof notices / sizeof *notices; n++) {
		const struct notice *no = &notices[n];
		if (strcmp(action, no->action) != 0)
			continue;
		if (db_query(c->db, c->a, &r, no->sql, no->bind, object, org, db_i(ev, i, EV_ACTOR)) < 0)
			return -1;
		l.subject = no->subject;
		if (r.nrows == 0)
			l.text = "";
		else if (no->describe)
			l.text = no->describe(c, &r, object, db_s(ev, i, EV_DATA));
		else
			l.text = arena_printf(c->a, no->text, db_s(&r, 0, TO_WHAT));
		l.link = arena_printf(c->a, no->link, base, object);
		return mail_rows(c, &r, &l);
	}
	return 0;
}

/* Mails organisation `org`'s next events in one transaction holding its mail cursor. */
static int mail_org(struct ctx *c, long long org)
{
	struct dbres r, ev;
	int rc = -1;
	if (db_begin(c->db) < 0)
		return -1;
	if (db_query(c->db, c->a, &r, SQL_CLAIM, "i", org) < 0)
		goto out;
	if (r.nrows == 0) {
		rc = 0;
		goto out;
	}
	long long failures = db_i(&r, 0, CL_FAILURES), done = db_i(&r, 0, CL_CURSOR);
	if (db_query(c->db, c->a, &ev, SQL_EVENTS, "ii", org, done) < 0)
		goto out;
	int sent = 0;
	for (size_t i = 0; i < ev.nrows && sent == 0; i++) {
		if ((sent = mail_event(c, org, &ev, i)) == 0)
			done = db_i(&ev, i, EV_SEQ);
	}
	if (sent < 0 || (sent == 0 && db_exec(c->db, SQL_MOVED, "ii", done, org) < 0))
		goto out;
	if (sent == 1) {   /* the cursor stops before the event; its retry waits (§12 schedule) */
		long long delay = webhook_retry_after_ms(failures + 1) / c->cfg->webhook_time_scale;
		if (db_exec(c->db, SQL_FAILED, "iii", done, delay * 1000, org) < 0)
			goto out;
	}
	rc = 1;
out:
	return db_end_claim(c->db, rc);
}

int mail_pass(struct ctx *c)
{
	struct dbres r;
	int worked = 0;
	if (db_query(c->db, c->a, &r, SQL_NEW_ORGS, "") < 0)
		return -1;
	for (size_t i = 0; i < r.nrows; i++)
		if (db_exec(c->db, SQL_ADD_ORG, "i", db_i(&r, i, NEW_ORG)) < 0)
			return -1;
	if (db_query(c->db, c->a, &r, SQL_DUE, "") < 0)
		return -1;
	for (size_t i = 0; i < r.nrows; i++) {
		int rc = mail_org(c, db_i(&r, i, DUE_ORG));
		if (rc < 0)
			return -1;
		worked += rc;
	}
	return worked;
}
