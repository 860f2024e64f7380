/* remit: the command line (serve, deliver, migrate, bootstrap, purge-idempotency, verify-audit). */
#include <getopt.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "conf.h"
#include "db.h"
#include "deliver.h"
#include "domain/operator.h"
#include "idem.h"
#include "log.h"
#include "migrate.h"
#include "password.h"
#include "pool.h"

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
		"  deliver               send audit events to webhook endpoints, in the foreground\n"
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

/* --org, --email and, when `name` is given, --name of bootstrap and invite. 0, or 2 (usage). */
static int org_options(int argc, char **argv, const char **org, const char **email,
	const char **name)
{
	static const struct option all[] = {
		{ "org", required_argument, NULL, 'o' },
		{ "email", required_argument, NULL, 'e' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option no_name[] = {
		{ "org", required_argument, NULL, 'o' },
		{ "email", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", name ? all : no_name, NULL)) != -1) {
		if (ch == 'o')
			*org = optarg;
		else if (ch == 'e')
			*email = optarg;
		else if (ch == 'n' && name)
			*name = optarg;
		else
			return 2;
	}
	return 0;
}

static int bootstrap(struct db *db, const struct config *cfg, int argc, char **argv)
{
	const char *org = NULL, *email = NULL, *name = NULL;
	if (org_options(argc, argv, &org, &email, &name))
		return 2;
	return org_bootstrap(db, cfg, org, email, name);
}

static int invite(struct db *db, const struct config *cfg, int argc, char **argv)
{
	const char *org = NULL, *email = NULL;
	if (org_options(argc, argv, &org, &email, NULL))
		return 2;
	return org_invite(db, cfg, org, email);
}

/* The commands that connect to the database and run once. Returns the exit status. */
static int db_command(const char *cmd, struct config cfg, int sub_argc, char **sub_argv)
{
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
		if (password_slots_init(cfg.pw_concurrency) < 0) {
			fprintf(stderr, "remit: cannot create the password hashing semaphore\n");
			return 1;
		}
		int rc = pool_run(&cfg);
		password_slots_free();
		return rc;
	}
	if (strcmp(cmd, "deliver") == 0)
		return deliver_run(&cfg);

	return db_command(cmd, cfg, sub_argc, sub_argv);
}
