/* Numbered SQL migrations compiled into the binary, applied once each. */
#ifndef REMIT_MIGRATE_H
#define REMIT_MIGRATE_H
#include "db.h"

struct migration {
	const char *name;   /* "0001_init" */
	const char *sql;
};

extern const struct migration migrations[];   /* generated from sql/migrations, ends with {0} */

/* Applies the migrations not yet recorded in schema_migrations, in order, under a named lock
 * so concurrent migrators wait for each other. Returns 0 or -1 (logged). */
int migrate_run(struct db *db);

#endif
