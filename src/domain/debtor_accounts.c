/* Debtor accounts (API §9): the organisation's own accounts, one per currency, that payment
 * files are paid from. Replaced as a whole set, like the approval rules. */
#include <ctype.h>
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "iban.h"
#include "valid.h"

#define MAX_ACCOUNTS 50
#define DEBTOR_NAME_MAX 70

static const char SQL_ACCOUNTS[] =
	"SELECT currency, name, iban, bic FROM debtor_accounts WHERE org_id = ? ORDER BY position";
enum { DA_CURRENCY, DA_NAME, DA_IBAN, DA_BIC };
static const char SQL_ACCOUNTS_DELETE[] = "DELETE FROM debtor_accounts WHERE org_id = ?";
static const char SQL_ACCOUNT_INSERT[] =
	"INSERT INTO debtor_accounts (org_id, currency, position, name, iban, bic)"
	" VALUES (?, ?, ?, ?, ?, ?)";

struct account {
	const char *currency, *name, *iban, *bic;
};

static void write_accounts(yajl_gen g, const struct dbres *r)
{
	jw_open(g, NULL);
	jw_array(g, "accounts");
	for (size_t i = 0; i < r->nrows; i++) {
		jw_open(g, NULL);
		jw_str(g, "currency", db_s(r, i, DA_CURRENCY));
		jw_str(g, "name", db_s(r, i, DA_NAME));
		jw_str(g, "iban", db_s(r, i, DA_IBAN));
		jw_str(g, "bic", db_s(r, i, DA_BIC));
		jw_close(g);
	}
	jw_array_close(g);
	jw_close(g);
}

int h_debtor_accounts_get(struct ctx *c)
{
	static const char *const none[] = { NULL };
	struct dbres r;
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	if (db_query(c->db, c->a, &r, SQL_ACCOUNTS, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	write_accounts(reply_data(c, 200), &r);
	return reply_done(c);
}

/* An IBAN (not any account): two letters and two digits first, then §4's normalisation. */
static void v_iban(struct ctx *c, const char **out)
{
	const char *s;
	if (v_text(c, "iban", true, 1, 64, &s) != V_OK)
		return;
	size_t len = strlen(s);
	char *norm = arena_alloc(c->a, len + 1);
	const char *err = account_normalise(s, len, norm);
	bool iban = len >= 4 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
		isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]);
	if (err || !iban)
		detail_str(c, "iban", err ? err : "must be an IBAN");
	else
		*out = norm;
}

/* null or 8 or 11 characters [A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})? after upper-casing. */
static void v_bic(struct ctx *c, const char **out)
{
	const char *s;
	*out = NULL;
	if (v_text(c, "bic", false, 0, 11, &s) != V_OK)
		return;
	size_t len = strlen(s);
	char *up = arena_strndup(c->a, s, len);
	bool ok = len == 8 || len == 11;
	for (size_t i = 0; ok && i < len; i++) {
		up[i] = (char)toupper((unsigned char)up[i]);
		ok = (i >= 4 && i < 6) ? isupper((unsigned char)up[i])
			: isupper((unsigned char)up[i]) || isdigit((unsigned char)up[i]);
	}
	if (!ok)
		detail_str(c, "bic", "must be a BIC of 8 or 11 characters");
	else
		*out = up;
}

/* accounts[i], named by its path as in rules.c: the element stands in for the body. */
static void v_account_elem(struct ctx *c, struct jv *elem, size_t i, struct account *out)
{
	static const char *const known[] = { "currency", "name", "iban", "bic", NULL };
	const char *path = arena_printf(c->a, "accounts[%zu]", i);
	if (elem->t != J_OBJ) {
		detail_str(c, path, "must be an object {currency, name, iban, bic}");
		return;
	}
	struct jv *body = c->body;
	int from = c->ndetails, minor;
	c->body = elem;
	v_currency(c, "currency", true, &out->currency, &minor);
	v_text(c, "name", true, 1, DEBTOR_NAME_MAX, &out->name);
	v_iban(c, &out->iban);
	v_bic(c, &out->bic);
	v_no_unknown(c, known);
	c->body = body;
	for (int d = from; d < c->ndetails; d++)
		c->details[d].key = arena_printf(c->a, "%s.%s", path, c->details[d].key);
}

static void v_accounts(struct ctx *c, struct jv *list, struct account *acc)
{
	for (size_t i = 0; i < list->n; i++) {
		v_account_elem(c, list->v[i], i, &acc[i]);
		for (size_t j = 0; j < i && acc[i].currency; j++)
			if (acc[j].currency && strcmp(acc[i].currency, acc[j].currency) == 0) {
				detail_str(c, arena_printf(c->a, "accounts[%zu].currency", i),
					"a second account for this currency");
				break;
			}
	}
}

int h_debtor_accounts_put(struct ctx *c)
{
	static const char *const none[] = { NULL };
	static const char *const known[] = { "accounts", NULL };
	q_parse(c, none);
	v_no_unknown(c, known);
	struct jv *list = json_get(c->body, "accounts");
	struct account *acc = NULL;
	if (!list || list->t == J_NULL)
		detail_str(c, "accounts", "is required");
	else if (list->t != J_ARR)
		detail_str(c, "accounts", "must be an array of {currency, name, iban, bic}");
	else if (list->n > MAX_ACCOUNTS)
		detail_str(c, "accounts", "must hold at most 50 accounts");
	else {
		acc = arena_alloc(c->a, (list->n ? list->n : 1) * sizeof *acc);
		memset(acc, 0, (list->n ? list->n : 1) * sizeof *acc);
		v_accounts(c, list, acc);
	}
	if (c->ndetails)
		return reply_validation(c);

	/* Replace-all: concurrent PUTs serialise on the rows (and gap) this DELETE locks. */
	if (db_exec(c->db, SQL_ACCOUNTS_DELETE, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	for (size_t i = 0; i < list->n; i++)
		if (db_exec(c->db, SQL_ACCOUNT_INSERT, "isisss", c->me.org_id, acc[i].currency,
				(long long)i, acc[i].name, acc[i].iban, acc[i].bic) < 0)
			return STEP_DB_ERROR;
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_ACCOUNTS, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = jw_new();
	write_accounts(g, &r);
	audit_add(c, "debtor_accounts.replaced", "debtor_accounts", c->me.org_id,
		jw_finish(c->a, g));
	write_accounts(reply_data(c, 200), &r);
	return reply_done(c);
}
