/* Approval rules (doc/openapi.yaml#paths): how many approvers a request needs, applied at submit. */
#include <string.h>

#include "audit.h"
#include "domain/handlers.h"
#include "domain/repr.h"
#include "valid.h"

#define MAX_RULES 100
#define MAX_APPROVALS 10

static const char SQL_RULES[] =
	"SELECT ar.currency, ar.min_amount, ar.approvals, cu.minor_unit FROM approval_rules ar"
	" JOIN currencies cu ON cu.code = ar.currency WHERE ar.org_id = ? ORDER BY ar.position";
enum { RU_CURRENCY, RU_MIN, RU_APPROVALS, RU_MINOR };
static const char SQL_RULES_DELETE[] = "DELETE FROM approval_rules WHERE org_id = ?";
static const char SQL_RULE_INSERT[] =
	"INSERT INTO approval_rules (org_id, position, currency, min_amount, approvals)"
	" VALUES (?, ?, ?, ?, ?)";

struct rule {
	const char *currency;
	int minor;
	int64_t min_amount;
	int approvals;
};

static void write_rules(yajl_gen g, const struct dbres *r)
{
	jw_open(g, NULL);
	jw_array(g, "rules");
	for (size_t i = 0; i < r->nrows; i++) {
		char money[MONEY_FMT_MAX];
		money_format(db_i(r, i, RU_MIN), (int)db_i(r, i, RU_MINOR), money);
		jw_open(g, NULL);
		jw_str(g, "currency", db_s(r, i, RU_CURRENCY));
		jw_str(g, "minAmount", money);
		jw_int(g, "approvals", db_i(r, i, RU_APPROVALS));
		jw_close(g);
	}
	jw_array_close(g);
	jw_close(g);
}

static int reply_rules(struct ctx *c)
{
	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_RULES, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	write_rules(reply_data(c, 200), &r);
	return reply_done(c);
}

int h_rules_get(struct ctx *c)
{
	static const char *const none[] = { NULL };
	q_parse(c, none);
	if (c->ndetails)
		return reply_validation(c);
	return reply_rules(c);
}

/* An integer literal from 1 to MAX_APPROVALS: "2.0", "2e0" and "2" (a string) are not. */
static void v_approvals(struct ctx *c, int *out)
{
	const struct jv *v = json_get(c->body, "approvals");
	if (!v || v->t == J_NULL) {
		detail_str(c, "approvals", "is required");
		return;
	}
	int n = 0;
	bool ok = v->t == J_NUM && v->len >= 1 && v->len <= 2 && v->s[0] != '0';
	for (size_t i = 0; ok && i < v->len; i++) {
		ok = v->s[i] >= '0' && v->s[i] <= '9';
		n = n * 10 + (v->s[i] - '0');
	}
	if (!ok || n < 1 || n > MAX_APPROVALS) {
		detail_str(c, "approvals", "must be an integer from 1 to 10");
		return;
	}
	*out = n;
}

/* Validates rules[i]. The field validators read the body's top level and name what they
 * find by member name, so the rule stands in for the body while they run, and what they
 * recorded is then renamed by its path ("rules[0].approvals"). */
static void v_rule(struct ctx *c, struct jv *elem, size_t i, struct rule *out)
{
	static const char *const known[] = { "currency", "minAmount", "approvals", NULL };
	const char *path = arena_printf(c->a, "rules[%zu]", i);
	if (elem->t != J_OBJ) {
		detail_str(c, path, "must be an object {currency, minAmount, approvals}");
		return;
	}
	struct jv *body = c->body;
	int from = c->ndetails;
	c->body = elem;
	out->minor = -1;
	v_currency(c, "currency", true, &out->currency, &out->minor);
	v_money(c, "minAmount", true, out->minor, true, &out->min_amount);
	v_approvals(c, &out->approvals);
	v_no_unknown(c, known);
	c->body = body;
	for (int d = from; d < c->ndetails; d++)
		c->details[d].key = arena_printf(c->a, "%s.%s", path, c->details[d].key);
}

int h_rules_put(struct ctx *c)
{
	static const char *const none[] = { NULL };
	static const char *const known[] = { "rules", NULL };
	q_parse(c, none);
	v_no_unknown(c, known);
	struct jv *list = json_get(c->body, "rules");
	struct rule *rules = NULL;
	if (!list || list->t == J_NULL)
		detail_str(c, "rules", "is required");
	else if (list->t != J_ARR)
		detail_str(c, "rules", "must be an array of {currency, minAmount, approvals}");
	else if (list->n > MAX_RULES)
		detail_str(c, "rules", "must hold at most 100 rules");
	else {
		rules = arena_alloc(c->a, (list->n ? list->n : 1) * sizeof *rules);
		for (size_t i = 0; i < list->n; i++)
			v_rule(c, list->v[i], i, &rules[i]);
	}
	if (c->ndetails)
		return reply_validation(c);

	/* Replace-all: concurrent PUTs serialise on the rows (and gap) this DELETE locks. */
	if (db_exec(c->db, SQL_RULES_DELETE, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	for (size_t i = 0; i < list->n; i++)
		if (db_exec(c->db, SQL_RULE_INSERT, "iisii", c->me.org_id, (long long)i,
				rules[i].currency, (long long)rules[i].min_amount,
				(long long)rules[i].approvals) < 0)
			return STEP_DB_ERROR;

	struct dbres r;
	if (db_query(c->db, c->a, &r, SQL_RULES, "i", c->me.org_id) < 0)
		return STEP_DB_ERROR;
	yajl_gen g = jw_new();
	write_rules(g, &r);
	audit_add(c, "approval_rules.replaced", "approval_rules", c->me.org_id, jw_finish(c->a, g));
	write_rules(reply_data(c, 200), &r);
	return reply_done(c);
}
