/* remit: the command line (serve, migrate, bootstrap, purge-idempotency, verify-audit). */
#include <getopt.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "domain/people.h"
#include "http.h"
#include "idem.h"
#include "log.h"
#include "migrate.h"
#include "password.h"
#include "pool.h"
#include "text.h"

static const char SQL_ORG[] = "INSERT INTO orgs (name) VALUES (?)";
static const char SQL_ADMIN[] =
	"INSERT INTO users (org_id, email, email_key, name, roles) VALUES (?, ?, ?, ?, 1)";
static const char SQL_TOKEN[] =
	"INSERT INTO tokens (org_id, user_id, name, token_hash) VALUES (?, ?, 'bootstrap', ?)";
static const char SQL_INVITEE[] =
	"SELECT id, active FROM users WHERE org_id = ? AND email_key = ? FOR UPDATE";

static void usage(void)
{
	fprintf(stderr,
		"usage: remit [--config FILE] COMMAND\n"
		"  serve                 run the FastCGI pool in the foreground\n"
		"  migrate               apply the database migrations\n"
		"  bootstrap --org NAME --email EMAIL [--name NAME]\n"
		"                        create an organisation and its first ADMIN; prints\n"
		"                        {\"orgId\",\"userId\",\"token\",\"invitation\"}\n"
		"  invite --org ID --email EMAIL\n"
		"                        a new invitation for that user (a forgotten password);\n"
		"                        prints {\"orgId\",\"userId\",\"invitation\",\"expiresAt\"}\n"
		"  purge-idempotency     delete expired idempotency keys\n"
		"  verify-audit          check every organisation's audit hash chain\n"
		"The config file defaults to $REMIT_CONFIG.\n");
}

static struct db *connect_or_die(const struct config *cfg)
{
	if (mysql_library_init(0, NULL, NULL) != 0)
		exit(1);
	struct db *db = db_new(cfg);
	if (db_connect(db) < 0) {
		fprintf(stderr, "remit: cannot connect to the database: %s\n", db_error(db));
		exit(1);
	}
	return db;
}

static bool text_ok(const char *s, long max)
{
	long n = utf8_count(s, strlen(s));
	return n >= 1 && n <= max && !text_has_control(s, strlen(s));
}

/* One transaction: organisation, its audit chain, the ADMIN and a token, with audit events. */
static int bootstrap(struct db *db, const struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "org", required_argument, NULL, 'o' },
		{ "email", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL, *email = NULL, *name = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'o')
			org = optarg;
		else if (ch == 'e')
			email = optarg;
		else if (ch == 'n')
			name = optarg;
		else
			return 2;
	}
	if (!name)
		name = email;
	const char *at = email ? strchr(email, '@') : NULL;
	if (!org || !email || !text_ok(org, 140) || !text_ok(email, 254) || !text_ok(name, 140) ||
	    !at || at == email || !at[1] || strchr(at + 1, '@')) {
		fprintf(stderr, "remit: bootstrap needs --org NAME (1..140) and --email ADDRESS\n");
		return 2;
	}
	char key[1024];
	snprintf(key, sizeof key, "%s", email);
	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');

	struct arena a = { 0 };
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.a = &a;
	c.db = db;
	c.cfg = cfg;
	c.request_id = "bootstrap";
	http_reset_response(&c);
	char token[TOKEN_LEN + 1];
	unsigned char hash[SHA256_LEN];
	auth_new_token(token, hash);
	int rc = 1;
	if (db_begin(db) < 0 || db_exec(db, SQL_ORG, "s", org) < 0)
		goto out;
	c.me.org_id = db_insert_id(db);
	if (audit_init_chain(db, c.me.org_id) < 0 ||
	    db_exec(db, SQL_ADMIN, "isss", c.me.org_id, email, key, name) < 0)
		goto out;
	c.me.user_id = db_insert_id(db);
	if (db_exec(db, SQL_TOKEN, "iib", c.me.org_id, c.me.user_id, hash, sizeof hash) < 0)
		goto out;
	long long token_id = db_insert_id(db);
	yajl_gen g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "name", org);
	jw_close(g);
	audit_add(&c, "org.created", "org", c.me.org_id, jw_finish(&a, g));
	g = jw_new();
	jw_open(g, NULL);
	jw_str(g, "email", email);
	jw_str(g, "name", name);
	jw_array(g, "roles");
	jw_str(g, NULL, "ADMIN");
	jw_array_close(g);
	jw_close(g);
	audit_add(&c, "user.created", "user", c.me.user_id, jw_finish(&a, g));
	audit_add(&c, "token.created", "token", token_id,
		arena_printf(&a, "{\"userId\":\"%lld\"}", c.me.user_id));
	char invitation[TOKEN_LEN + 1];
	const char *expires;
	if (invitation_issue(&c, c.me.user_id, invitation, &expires) < 0 ||
	    audit_flush(&c) < 0 || db_commit(db) < 0)
		goto out;
	printf("{\"orgId\":\"%lld\",\"userId\":\"%lld\",\"token\":\"%s\",\"invitation\":\"%s\"}\n",
		c.me.org_id, c.me.user_id, token, invitation);
	rc = 0;
out:
	if (rc) {
		fprintf(stderr, "remit: bootstrap failed: %s\n", db_error(db));
		db_rollback(db);
	}
	yajl_gen_free(c.rs.gen);
	arena_free(&a);
	return rc;
}

/* An operator's invitation for an existing, active user: how an organisation whose last
 * ADMIN forgot the password gets back in. The audit event has no actor (the operator). */
static int invite(struct db *db, const struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "org", required_argument, NULL, 'o' },
		{ "email", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL, *email = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'o')
			org = optarg;
		else if (ch == 'e')
			email = optarg;
		else
			return 2;
	}
	long long org_id = id_parse(org);
	if (!org_id || !email) {
		fprintf(stderr, "remit: invite needs --org ID and --email ADDRESS\n");
		return 2;
	}
	struct arena a = { 0 };
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.a = &a;
	c.db = db;
	c.cfg = cfg;
	c.request_id = "invite";
	c.me.org_id = org_id;
	http_reset_response(&c);
	struct dbres r;
	char token[TOKEN_LEN + 1];
	const char *expires, *why = NULL;
	int rc = 1;
	if (db_begin(db) < 0 || db_query(db, &a, &r, SQL_INVITEE, "is", org_id,
			lower_az(&a, email, strlen(email))) < 0)
		goto out;
	if (r.nrows == 0 || !db_i(&r, 0, 1)) {
		why = r.nrows ? "the user is deactivated" : "no such user in that organisation";
		goto out;
	}
	if (invitation_issue(&c, db_i(&r, 0, 0), token, &expires) < 0 || audit_flush(&c) < 0 ||
	    db_commit(db) < 0)
		goto out;
	/* DATETIME(3) "2026-12-09 05:07:22.718" → RFC 3339 "2026-12-09T05:07:22.718Z" */
	printf("{\"orgId\":\"%lld\",\"userId\":\"%lld\",\"invitation\":\"%s\","
		"\"expiresAt\":\"%.10sT%sZ\"}\n", org_id, db_i(&r, 0, 0), token, expires, expires + 11);
	rc = 0;
out:
	if (rc) {
		fprintf(stderr, "remit: invite failed: %s\n", why ? why : db_error(db));
		db_rollback(db);
	}
	yajl_gen_free(c.rs.gen);
	arena_free(&a);
	return rc;
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("REMIT_CONFIG");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_path = argv[i] + 9;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		} else {
			usage();
			return 2;
		}
	}
	if (i >= argc || !config_path) {
		usage();
		return 2;
	}
	struct config cfg;
	if (config_load(&cfg, config_path) < 0)
		return 2;
	log_set_level(cfg.log_level);
	if (password_init() < 0) {
		fprintf(stderr, "remit: libsodium failed to initialise\n");
		return 1;
	}
	const char *cmd = argv[i];
	int sub_argc = argc - i;
	char **sub_argv = argv + i;

	if (strcmp(cmd, "serve") == 0) {
		if (password_prepare(&cfg) < 0) {
			fprintf(stderr, "remit: cannot hash a password at pw_memlimit=%ld\n", cfg.pw_memlimit);
			return 1;
		}
		return pool_run(&cfg);
	}

	int rc;
	if (strcmp(cmd, "migrate") == 0) {
		/* The schema's owner migrates; the pool's own user may not even ALTER a table. */
		struct config owner = cfg;
		if (cfg.migrate_user[0]) {
			strcpy(owner.db_user, cfg.migrate_user);
			strcpy(owner.db_password, cfg.migrate_password);
		}
		struct db *db = connect_or_die(&owner);
		rc = migrate_run(db) < 0 ? 1 : 0;
		db_free(db);
	} else if (strcmp(cmd, "bootstrap") == 0) {
		struct db *db = connect_or_die(&cfg);
		rc = bootstrap(db, &cfg, sub_argc, sub_argv);
		db_free(db);
	} else if (strcmp(cmd, "invite") == 0) {
		struct db *db = connect_or_die(&cfg);
		rc = invite(db, &cfg, sub_argc, sub_argv);
		db_free(db);
	} else if (strcmp(cmd, "purge-idempotency") == 0) {
		struct db *db = connect_or_die(&cfg);
		long n = idem_purge(db, 1000, 1000000);
		if (n >= 0)
			printf("{\"deleted\":%ld}\n", n);
		else
			fprintf(stderr, "remit: purge failed: %s\n", db_error(db));
		rc = n < 0;
		db_free(db);
	} else if (strcmp(cmd, "verify-audit") == 0) {
		struct db *db = connect_or_die(&cfg);
		rc = audit_verify(db);
		if (rc == 0)
			printf("{\"audit\":\"ok\"}\n");
		else if (rc < 0)
			fprintf(stderr, "remit: verify-audit: %s\n", db_error(db));
		rc = rc != 0;
		db_free(db);
	} else {
		usage();
		return 2;
	}
	mysql_library_end();
	return rc;
}
