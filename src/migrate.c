#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static const char SQL_CREATE[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" name VARCHAR(100) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
	" applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB";
static const char SQL_LOCK[] = "SELECT GET_LOCK('remit_migrate', 60)";
static const char SQL_UNLOCK[] = "SELECT RELEASE_LOCK('remit_migrate')";
static const char SQL_APPLIED[] = "SELECT 1 FROM schema_migrations WHERE name = ?";
static const char SQL_RECORD[] = "INSERT INTO schema_migrations (name) VALUES (?)";
static const char SQL_CHARSET[] =
	"SELECT DATABASE(), DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
	" WHERE SCHEMA_NAME = DATABASE()";
enum { CS_DATABASE, CS_CHARSET };

/* Text is full UTF-8 (API §1): a column that inherits latin1 or utf8mb3 from its database
 * would accept the migration and then fail on the first emoji. Refuse before creating
 * anything. */
static int check_charset(struct db *db, struct arena *a)
{
	struct dbres r;
	if (db_query(db, a, &r, SQL_CHARSET, "") < 0)
		return -1;
	const char *cs = r.nrows ? db_s(&r, 0, CS_CHARSET) : NULL;
	if (cs && strcmp(cs, "utf8mb4") == 0)
		return 0;
	const char *name = r.nrows ? db_s(&r, 0, CS_DATABASE) : "(none)";
	fprintf(stderr, "remit: migrate: database %s has character set %s, remit needs utf8mb4:"
		" ALTER DATABASE %s CHARACTER SET utf8mb4 (and convert any tables) first\n",
		name, cs ? cs : "(unknown)", name);
	log_write(LOG_ERROR, "migration refused", "\"reason\":\"character set\"");
	return -1;
}

static bool only_comments(const char *p, size_t len)
{
	const char *end = p + len;
	while (p < end) {
		p += strspn(p, " \t\n");
		if (p >= end)
			break;
		if (strncmp(p, "--", 2) != 0)
			return false;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	return true;
}

/* The end of the statement that starts at p: a ';' closing a line that is not followed by
 * an indented one, since a stored program's body, END included, is indented and holds
 * statements of its own. NULL: the statement runs to the end of the text. */
static const char *statement_end(const char *p)
{
	for (const char *end = strstr(p, ";\n"); end; end = strstr(end + 2, ";\n"))
		if (end[2] != ' ' && end[2] != '\t')
			return end;
	return NULL;
}

/* DDL commits implicitly, so a migration that fails halfway is reported and must be fixed by
 * hand before it is retried. */
static int apply(struct db *db, const struct migration *m)
{
	const char *p = m->sql;
	while (*p) {
		const char *end = statement_end(p);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (!only_comments(p, len)) {
			if (db_exec_raw(db, p, len) < 0) {
				log_write(LOG_ERROR, "migration failed", "\"migration\":\"%s\",\"error\":\"%u\"",
					m->name, db_errno(db));
				fprintf(stderr, "remit: migration %s: %s\n", m->name, db_error(db));
				return -1;
			}
		}
		p += len + (end ? 2 : 0);
	}
	return 0;
}

int migrate_run(struct db *db)
{
	struct arena a = { 0 };
	struct dbres r;
	int rc = -1;
	if (check_charset(db, &a) < 0 ||
	    db_exec_raw(db, SQL_CREATE, sizeof SQL_CREATE - 1) < 0 ||
	    db_exec_raw(db, SQL_LOCK, sizeof SQL_LOCK - 1) < 0)
		goto out;
	for (const struct migration *m = migrations; m->name; m++) {
		if (db_query(db, &a, &r, SQL_APPLIED, "s", m->name) < 0)
			goto unlock;
		if (r.nrows)
			continue;
		if (apply(db, m) < 0 || db_exec(db, SQL_RECORD, "s", m->name) < 0)
			goto unlock;
		log_write(LOG_INFO, "migration applied", "\"migration\":\"%s\"", m->name);
	}
	rc = 0;
unlock:
	db_exec_raw(db, SQL_UNLOCK, sizeof SQL_UNLOCK - 1);
out:
	if (rc < 0 && db_errno(db))
		fprintf(stderr, "remit: migrate: %s\n", db_error(db));
	arena_free(&a);
	return rc;
}
