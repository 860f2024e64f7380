#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "idem.h"

struct audit_event {           /* buffered by audit_add, written at commit (audit_flush*) */
	struct audit_event *next;
	const char *action;        /* "batch.submitted" */
	const char *object_type;   /* "batch" */
	long long object_id;
	const char *data;          /* a JSON object's text */
};

static const char GENESIS[] =
	"0000000000000000000000000000000000000000000000000000000000000000";

static const char SQL_HEAD_INIT[] = "INSERT INTO audit_heads (org_id, seq, hash) VALUES (?, 0, ?)";
/* Locks the chain's head, links the event to it, moves it: sql/migrations/0005. */
static const char SQL_APPEND[] = "CALL audit_append(?, ?, ?, ?, ?, ?, ?, ?, ?)";
/* A chunk of events in one CALL, each through audit_append: sql/migrations/0010. */
static const char SQL_APPEND_MANY[] = "CALL audit_append_many(?, ?, ?, ?, ?, ?)";
/* Events per CALL audit_append_many: a 5,000-request import is five round trips, each
 * statement well under max_allowed_packet (an event's data is at most a few hundred bytes). */
#define AUDIT_CHUNK 1000
static const char SQL_ORGS[] = "SELECT org_id FROM audit_heads ORDER BY org_id";
static const char SQL_HEAD[] = "SELECT seq, hash FROM audit_heads WHERE org_id = ?";
static const char SQL_CHAIN[] =
	"SELECT id, seq, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), actor_id, action, object_type,"
	" object_id, idempotency_key, correlation_id, data, hash, prev_hash"
	" FROM audit_events WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT 500";

/* Applies to the next transaction only: the verifier's snapshot, whatever the server's
 * default isolation level. */
static const char SQL_RR[] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ";
static const char SQL_SNAPSHOT[] = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

struct link {
	const char *prev;
	long long org, seq, actor, object;
	const char *at, *action, *type, *key, *corr, *data;
};

/* Every field length-prefixed, so no choice of contents can make two events hash alike. */
static void link_hash(const struct link *l, char out[65])
{
	char buf[8192];
	char *big = NULL;
	const char *f[] = { l->prev, l->at, l->action, l->type, l->key ? l->key : "", l->corr };
	size_t need = 128 + strlen(l->data);
	for (size_t i = 0; i < sizeof f / sizeof *f; i++)
		need += strlen(f[i]) + 24;
	char *p = need <= sizeof buf ? buf : (big = malloc(need));
	if (!p)
		abort();
	int n = snprintf(p, need, "%lld|%lld|%lld|%lld|", l->org, l->seq, l->actor, l->object);
	for (size_t i = 0; i < sizeof f / sizeof *f; i++)
		n += snprintf(p + n, need - (size_t)n, "%zu:%s|", strlen(f[i]), f[i]);
	n += snprintf(p + n, need - (size_t)n, "%zu:%s", strlen(l->data), l->data);
	unsigned char md[SHA256_LEN];
	sha256(p, (size_t)n, md);
	hex_encode(md, SHA256_LEN, out);
	free(big);
}

static void now_ms(char out[64])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02d %02d:%02d:%02d.%03ld", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

int audit_init_chain(struct db *db, long long org_id)
{
	return db_exec(db, SQL_HEAD_INIT, "is", org_id, GENESIS);
}

void audit_add(struct ctx *c, const char *action, const char *object_type, long long object_id,
	const char *data)
{
	struct audit_event *e = arena_alloc(c->a, sizeof *e);
	*e = (struct audit_event){ NULL, action, object_type, object_id, data };
	if (c->audit_tail)
		c->audit_tail->next = e;
	else
		c->audit = e;
	c->audit_tail = e;
}

/* Appends `n` events from `e` on: one CALL audit_append for one event, else one CALL
 * audit_append_many with them as a JSON array. 0 or -1. */
static int append(struct ctx *c, const struct audit_row *f, const struct audit_event *e, size_t n)
{
	if (n == 1)
		return db_exec(c->db, SQL_APPEND, "iisssisss", f->org, f->actor, f->at, e->action,
			e->object_type, e->object_id, f->key, f->corr, e->data);
	yajl_gen g = jw_new();
	jw_array(g, NULL);
	for (size_t i = 0; i < n; i++, e = e->next) {
		jw_array(g, NULL);
		jw_str(g, NULL, e->action);
		jw_str(g, NULL, e->object_type);
		jw_int(g, NULL, e->object_id);
		jw_str(g, NULL, e->data);
		jw_array_close(g);
	}
	jw_array_close(g);
	return db_exec(c->db, SQL_APPEND_MANY, "iissss", f->org, f->actor, f->at, f->key, f->corr,
		jw_finish(c->a, g));
}

int audit_flush_but_last(struct ctx *c, struct audit_row *last)
{
	*last = (struct audit_row){ .org = c->me.org_id, .actor = c->me.user_id };
	if (!c->audit)
		return 0;
	char *at = arena_alloc(c->a, 64);
	now_ms(at);
	const struct audit_row f = { c->me.org_id, c->me.user_id, 0, at, NULL, NULL,
		c->idem ? c->idem->key : NULL, c->request_id, NULL };
	const struct audit_event *first = c->audit, *e = c->audit;
	size_t n = 0;
	for (; e->next; e = e->next)
		if (++n == AUDIT_CHUNK) {
			if (append(c, &f, first, n) < 0)
				return -1;
			first = e->next;
			n = 0;
		}
	if (n && append(c, &f, first, n) < 0)
		return -1;
	*last = f;
	last->object = e->object_id;
	last->action = e->action;
	last->type = e->object_type;
	last->data = e->data;
	return 1;
}

int audit_flush(struct ctx *c)
{
	struct audit_row e;
	int n = audit_flush_but_last(c, &e);
	if (n <= 0)
		return n;
	return db_exec(c->db, SQL_APPEND, "iisssisss", e.org, e.actor, e.at, e.action, e.type,
		e.object, e.key, e.corr, e.data);
}

/* Checks one organisation's chain; prints the first broken link. 0, 1 broken, -1 error. */
static int verify_chain(struct db *db, long long org, long long head_seq, const char *head_hash)
{
	struct arena a = { 0 };
	char prev[65], hash[65];
	long long seq = 0;
	int rc = -1;
	memcpy(prev, GENESIS, sizeof prev);
	for (;;) {
		struct dbres r;
		arena_reset(&a);
		if (db_query(db, &a, &r, SQL_CHAIN, "ii", org, seq) < 0)
			goto out;
		if (r.nrows == 0)
			break;
		for (size_t i = 0; i < r.nrows; i++) {
			long long id = db_i(&r, i, 0);
			char at[24];
			snprintf(at, sizeof at, "%s", db_s(&r, i, 2));   /* microseconds → milliseconds */
			struct link l = { prev, org, db_i(&r, i, 1), db_i(&r, i, 3), db_i(&r, i, 6), at,
				db_s(&r, i, 4), db_s(&r, i, 5), db_s(&r, i, 7), db_s(&r, i, 8), db_s(&r, i, 9) };
			const char *why = NULL;
			if (l.seq != seq + 1)
				why = "sequence gap";
			else if (strcmp(db_s(&r, i, 11), prev) != 0)
				why = "prevHash does not match the previous event's hash";
			else if (link_hash(&l, hash), strcmp(hash, db_s(&r, i, 10)) != 0)
				why = "hash does not match the event's contents";
			if (why) {
				fprintf(stderr, "audit chain of organisation %lld broken at event %lld (seq %lld): %s\n",
					org, id, l.seq, why);
				rc = 1;
				goto out;
			}
			seq = l.seq;
			memcpy(prev, hash, sizeof prev);
		}
	}
	if (seq != head_seq || strcmp(prev, head_hash) != 0) {
		fprintf(stderr, "audit chain of organisation %lld broken after seq %lld: the chain head "
			"(seq %lld) does not match its last event\n", org, seq, head_seq);
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	arena_free(&a);
	return rc;
}

/* One organisation's head and chain, read in one consistent snapshot: writers commit the
 * events and the head together, so a live database shows either both or neither. Read in
 * separate snapshots, a commit landing in between looked like a broken chain. Within the
 * snapshot the whole chain is read, not just up to the head: an event past the head is a
 * real break (one appended behind the writers' backs). One snapshot per organisation, not
 * one for all: a long verification holds back InnoDB's purge for one chain's time only. */
static int verify_org(struct db *db, long long org)
{
	struct arena a = { 0 };
	struct dbres head;
	int rc = -1;
	if (db_exec_raw(db, SQL_RR, sizeof SQL_RR - 1) < 0 ||
	    db_exec_raw(db, SQL_SNAPSHOT, sizeof SQL_SNAPSHOT - 1) < 0)
		goto out;
	if (db_query(db, &a, &head, SQL_HEAD, "i", org) < 0)
		goto out;
	rc = head.nrows == 1 ? verify_chain(db, org, db_i(&head, 0, 0), db_s(&head, 0, 1)) : 0;
	if (rc >= 0 && db_commit(db) < 0)
		rc = -1;
out:
	if (rc < 0)
		db_rollback(db);
	arena_free(&a);
	return rc;
}

int audit_verify(struct db *db)
{
	struct arena a = { 0 };
	struct dbres orgs;
	int rc = -1;
	if (db_query(db, &a, &orgs, SQL_ORGS, "") < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < orgs.nrows; i++) {
		int v = verify_org(db, db_i(&orgs, i, 0));
		if (v < 0) {
			rc = -1;
			goto out;
		}
		if (v > 0)
			rc = 1;
	}
out:
	arena_free(&a);
	return rc;
}
