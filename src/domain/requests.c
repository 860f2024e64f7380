/* Payment requests of a DRAFT batch: add, list, read, edit, delete (doc/openapi.yaml#Lifecycle, #paths). */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/lock.h"
#include "domain/makers.h"
#include "domain/repr.h"
#include "domain/requests.h"
#include "iban.h"
#include "page.h"
#include "valid.h"

#define NAME_MAX_CHARS 140
#define PURPOSE_MAX_CHARS 140
/* The body's own cap bounds an account before normalisation: an IBAN may carry any number
 * of spaces, and only the normalised form must fit 1..34 characters. */
#define ACCOUNT_INPUT_MAX (2L << 20)

static const char SQL_REQUEST_ADD[] = "CALL request_add(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_REQUEST_UPDATE[] =
	"UPDATE payment_requests SET amount = ?, currency = ?, beneficiary_name = ?,"
	" beneficiary_account = ?, purpose = ?, version = version + 1, updated_at = NOW(3)"
	" WHERE id = ?";
static const char SQL_REQUEST_DELETE[] = "DELETE FROM payment_requests WHERE id = ?";
static const char SQL_BATCH_EXISTS[] = "SELECT id FROM batches WHERE id = ? AND org_id = ?";
#define REQUEST_LIST \
	"SELECT " REQUEST_COLS " FROM payment_requests r JOIN currencies cu ON cu.code = r.currency" \
	" WHERE r.batch_id = ? AND r.org_id = ?"
static const char SQL_REQUESTS[] = REQUEST_LIST " AND r.id < ? ORDER BY r.id DESC LIMIT ?";
static const char SQL_REQUESTS_STATUS[] =
	REQUEST_LIST " AND r.status = ? AND r.id < ? ORDER BY r.id DESC LIMIT ?";

const char *const request_known_fields[] = { "amount", "currency", "beneficiaryName",
	"beneficiaryAccount", "purpose", NULL };
static const char *const no_params[] = { NULL };

/* beneficiaryAccount: text, then IBAN normalisation and check (iban.h). */
static enum v_result v_account(struct ctx *c, bool required, const char **out)
{
	const char *s;
	enum v_result rc = v_text(c, "beneficiaryAccount", required, 0, ACCOUNT_INPUT_MAX, &s);
	if (rc != V_OK)
		return rc;
	size_t len = strlen(s);
	char *norm = arena_alloc(c->a, len + 1);
	const char *err = account_normalise(s, len, norm);
	if (err) {
		detail_str(c, "beneficiaryAccount", err);
		return V_BAD;
	}
	*out = norm;
	return V_OK;
}

void request_fields_audit(yajl_gen g, const struct request_fields *f)
{
	char money[MONEY_FMT_MAX];
	money_format(f->amount, f->minor, money);
	jw_str(g, "amount", money);
	jw_str(g, "currency", f->currency);
	jw_str(g, "beneficiaryName", f->name);
	jw_str(g, "beneficiaryAccount", f->account);
	jw_str(g, "purpose", f->purpose);
}

/* 409 BATCH_FULL when the locked batch has no room for `n` more requests (its request_count,
 * kept by the database's triggers: sql/migrations/0005); else STEP_GO_ON. */
static int batch_room_or_reply(struct ctx *c, const struct batch_row *b, long long n)
{
	if (b->requests + n <= BATCH_MAX_REQUESTS)
		return STEP_GO_ON;
	c->ndetails = 0;
	detail_str(c, "limit", arena_printf(c->a, "%d", BATCH_MAX_REQUESTS));
	return reply_error(c, 409, "BATCH_FULL", arena_printf(c->a,
		"a batch holds at most %d requests: start another batch", BATCH_MAX_REQUESTS));
}

int request_batch_ready(struct ctx *c, long long batch, long long n)
{
	struct batch_row b;
	int rc;
	if ((rc = batch_lock_or_reply(c, batch, &b)) ||
	    (rc = check_if_match_or_reply(c, b.version)))
		return rc;
	if (c->ndetails)
		return reply_validation(c);
	if ((rc = batch_check_or_reply(c, BA_EDIT, b.status)) ||
	    (rc = batch_room_or_reply(c, &b, n)))
		return rc;
	return STEP_GO_ON;
}

/* CALL request_add (sql/migrations/0014): finds the batch in the caller's organisation
 * without a lock, then locks it and bumps its version if its status is one BA_EDIT is allowed
 * from (handed over from the lifecycle table: the SQL names none) and it has room, inserts
 * the request and reads it back (REQUEST_COLS), in one round trip. No row: nothing added. */
static int add(struct ctx *c, long long batch, const struct request_fields *f, struct dbres *r)
{
	char editable[64];
	return db_query(c->db, c->a, r, SQL_REQUEST_ADD, "iisiissssi", c->me.org_id, batch,
		batch_statuses_for(BA_EDIT, editable, sizeof editable),
		(long long)BATCH_MAX_REQUESTS, (long long)f->amount, f->currency, f->name, f->account,
		f->purpose, c->me.user_id) < 0 ? STEP_DB_ERROR : STEP_GO_ON;
}

void request_fields_valid(struct ctx *c, struct request_fields *f)
{
	*f = (struct request_fields){ .minor = -1, .purpose = "" };
	v_currency(c, "currency", true, &f->currency, &f->minor);
	v_money(c, "amount", true, f->minor, false, &f->amount);
	v_text(c, "beneficiaryName", true, 1, NAME_MAX_CHARS, &f->name);
	v_account(c, true, &f->account);
	v_text(c, "purpose", false, 0, PURPOSE_MAX_CHARS, &f->purpose);
	v_no_unknown(c, request_known_fields);
}

int h_requests_create(struct ctx *c)
{
	long long batch = param_id(c, 0);
	struct dbres r = { 0 };
	int rc;
	if (!batch)
		return reply_not_found(c);
	struct request_fields f;
	q_parse(c, no_params);
	request_fields_valid(c, &f);
	/* Without If-Match and with a valid body, one CALL adds the request when the batch is a
	 * DRAFT of the caller's organisation with room for it. Anything else, or no row back, is
	 * told apart by the locking path, which answers the first error in the contract's order
	 * or adds the request with the same CALL under the batch's lock; a 4xx rolls back. */
	if (!c->rq.if_match && !c->ndetails && (rc = add(c, batch, &f, &r)))
		return rc;
	if (r.nrows == 0 && ((rc = request_batch_ready(c, batch, 1)) || (rc = add(c, batch, &f, &r))))
		return rc;
	if (r.nrows == 0)
		return STEP_DB_ERROR;   /* cannot happen: the batch is locked and was checked */
	long long id = db_i(&r, 0, R_ID);   /* its creator is a maker: a trigger records it */
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_id(g, "batchId", batch);
	request_fields_audit(g, &f);
	jw_close(g);
	audit_add(c, "request.created", "request", id, jw_finish(c->a, g));
	return reply_request_row(c, 201, &r);
}

int h_requests_list(struct ctx *c)
{
	static const char *const allowed[] = { "status", "limit", "cursor", NULL };
	long long batch;
	struct dbres r;
	struct page p;
	const char *status;
	int rc;
	if ((rc = find_param_or_reply(c, &r, SQL_BATCH_EXISTS, &batch)) != STEP_GO_ON ||
	    (rc = page_begin_or_reply(c, allowed, request_statuses, &status, &p)) != STEP_GO_ON)
		return rc;
	rc = status
		? db_query(c->db, c->a, &r, SQL_REQUESTS_STATUS, "iisii", batch, c->me.org_id, status,
			p.before, p.fetch)
		: db_query(c->db, c->a, &r, SQL_REQUESTS, "iiii", batch, c->me.org_id, p.before,
			p.fetch);
	if (rc < 0)
		return STEP_DB_ERROR;
	return reply_request_page(c, &p, &r, false);
}

int h_requests_get(struct ctx *c)
{
	long long id = param_id(c, 0);
	if (!id)
		return reply_not_found(c);
	q_parse(c, no_params);   /* reported by reply_request unless the request is not found */
	return reply_request(c, 200, id, false);
}

/* The stored amount (minor units of `from`) in the minor units of `to`, when it has no
 * more fractional digits than `to` allows; else a detail for `amount`. */
static void rescale(struct ctx *c, int64_t amount, int from, const char *currency, int to,
	int64_t *out)
{
	char text[MONEY_FMT_MAX];
	money_format(amount, from, text);
	size_t len = strlen(text);
	if (strchr(text, '.')) {
		while (text[len - 1] == '0')
			len--;
		if (text[len - 1] == '.')
			len--;
	}
	text[len] = '\0';
	if (money_parse(text, len, to, false, out) != NULL)
		detail_str(c, "amount", arena_printf(c->a,
			"the current amount %s is not a valid %s amount: send a new amount with the currency",
			text, currency));
}

static void audit_change(yajl_gen g, const char *field, const char *from, const char *to)
{
	jw_open(g, field);
	jw_str(g, "from", from);
	jw_str(g, "to", to);
	jw_close(g);
}

/* The start of PATCH and DELETE: the request and its batch locked (404), If-Match (412). */
static int lock_for_edit_or_reply(struct ctx *c, struct batch_row *b, struct request_row *q)
{
	long long id = param_id(c, 0);
	int rc;
	if (!id)
		return reply_not_found(c);
	if ((rc = request_lock_or_reply(c, id, b, q)) ||
	    (rc = check_if_match_or_reply(c, q->version)))
		return rc;
	return STEP_GO_ON;
}

/* The audit event's data for a PATCH: {"field":{"from","to"},…} for each field that changes,
 * NULL when none does. */
static const char *changes(struct ctx *c, const struct request_row *q, const struct request_fields *f,
	int old_minor)
{
	char old_money[MONEY_FMT_MAX], new_money[MONEY_FMT_MAX];
	money_format(q->amount, old_minor, old_money);
	money_format(f->amount, f->minor, new_money);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	bool changed = false;
	if (strcmp(old_money, new_money) != 0) {
		audit_change(g, "amount", old_money, new_money);
		changed = true;
	}
	static const char *const names[] = { "currency", "beneficiaryName", "beneficiaryAccount",
		"purpose" };
	const char *olds[] = { q->currency, q->name, q->account, q->purpose };
	const char *news[] = { f->currency, f->name, f->account, f->purpose };
	for (int i = 0; i < 4; i++)
		if (strcmp(olds[i], news[i]) != 0) {
			audit_change(g, names[i], olds[i], news[i]);
			changed = true;
		}
	jw_close(g);
	const char *data = jw_finish(c->a, g);
	return changed ? data : NULL;
}

int h_requests_patch(struct ctx *c)
{
	struct batch_row b;
	struct request_row q;
	int rc;
	if ((rc = lock_for_edit_or_reply(c, &b, &q)))
		return rc;
	long long id = q.id;

	/* Absent and null fields keep their value; `amount` is checked against the currency the
	 * request will have, and a new currency alone must fit the amount it already has. */
	int old_minor = currency_minor(c, q.currency);
	if (old_minor < 0)
		return STEP_DB_ERROR;
	struct request_fields f = { q.amount, q.currency, q.name, q.account, q.purpose, old_minor };
	q_parse(c, no_params);
	enum v_result cur = v_currency(c, "currency", false, &f.currency, &f.minor);
	enum v_result amt = v_money(c, "amount", false, cur == V_BAD ? -1 : f.minor, false, &f.amount);
	if (cur == V_OK && amt == V_ABSENT)
		rescale(c, q.amount, old_minor, f.currency, f.minor, &f.amount);
	v_text(c, "beneficiaryName", false, 1, NAME_MAX_CHARS, &f.name);
	v_account(c, false, &f.account);
	v_text(c, "purpose", false, 0, PURPOSE_MAX_CHARS, &f.purpose);
	v_no_unknown(c, request_known_fields);
	if (c->ndetails)
		return reply_validation(c);
	if ((rc = request_check_or_reply(c, RA_EDIT, q.status)))
		return rc;

	const char *data = changes(c, &q, &f, old_minor);
	if (!data)   /* nothing to do: no version, no event */
		return reply_request(c, 200, id, true);

	if (db_exec(c->db, SQL_REQUEST_UPDATE, "issssi", (long long)f.amount, f.currency, f.name,
			f.account, f.purpose, id) < 0)
		return STEP_DB_ERROR;
	if ((rc = maker_add(c, id, MADE_CHANGED)) || (rc = batch_touch(c, b.id, false)))
		return rc;
	audit_add(c, "request.updated", "request", id, data);
	return reply_request(c, 200, id, true);
}

int h_requests_delete(struct ctx *c)
{
	struct batch_row b;
	struct request_row q;
	int rc;
	if ((rc = lock_for_edit_or_reply(c, &b, &q)))
		return rc;
	q_parse(c, no_params);
	if (c->ndetails)
		return reply_validation(c);
	if ((rc = request_check_or_reply(c, RA_EDIT, q.status)))
		return rc;
	if (db_exec(c->db, SQL_REQUEST_DELETE, "i", q.id) < 0)
		return STEP_DB_ERROR;
	if ((rc = batch_touch(c, b.id, false)))
		return rc;
	audit_add(c, "request.deleted", "request", q.id,
		arena_printf(c->a, "{\"batchId\":\"%lld\"}", b.id));
	return reply_empty(c, 204);
}
