/* The configuration file: `key = value` lines, `#` comments (see README.md). */
#ifndef REMIT_CONF_H
#define REMIT_CONF_H

#define MAX_DB_NODES 8

/* One database server to connect to: a unix socket, or a TCP host and port. */
struct db_node {
	char socket[256];        /* "" for TCP */
	char host[256];
	unsigned port;
};

/* One field per key of remit.conf (src/options.def), then what config_load derives. */
struct config {
#define OPT_STR(name, cap, def, doc) char name[cap];
#define OPT_NUM(name, kind, type, lo, hi, def, doc) type name;
#include "options.def"
#undef OPT_STR
#undef OPT_NUM
	struct db_node nodes[MAX_DB_NODES];   /* from db_nodes, or db_socket or db_host:db_port */
	int nnodes;
};

/* Fills defaults, then reads `path`. Returns 0, or -1 after printing the offending line. */
int config_load(struct config *c, const char *path);
void config_defaults(struct config *c);

#endif
