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

struct config {
	char db_nodes[1024];     /* "host:port, /socket, ..." in order of preference; "" → the three below */
	char db_socket[256];
	char db_host[256];
	unsigned db_port;
	char db_user[128];
	char db_password[128];
	char db_name[64];
	char migrate_user[128];  /* the schema's owner, for `migrate`; empty → db_user */
	char migrate_password[128];
	char listen[256];        /* unix socket path of the FastCGI pool */
	unsigned listen_mode;
	char listen_group[64];   /* group of the socket (nginx's); empty → the process's */
	int listen_backlog;       /* accept queue of the socket (the kernel caps it at somaxconn) */
	int workers;             /* 0 → 2 × cores */
	int log_level;           /* LOG_ERROR .. LOG_DEBUG */
	long max_body;           /* bytes */
	int idem_wait;           /* seconds a twin waits for the first attempt's row lock */
	long idem_retention;     /* seconds an idempotency key is kept */
	int purge_interval;      /* seconds between purges of expired keys; 0 → never */
	int tx_retries;          /* re-runs of a transaction after a deadlock or lock timeout */
	long pw_opslimit;        /* Argon2id passes (crypto_pwhash opslimit) */
	long pw_memlimit;        /* Argon2id memory in bytes (crypto_pwhash memlimit) */
	int db_connect_timeout;  /* seconds one connection attempt to one node may take */
	struct db_node nodes[MAX_DB_NODES];   /* filled by config_load from the keys above */
	int nnodes;
	int shed_after_ms;       /* a request that waited longer for a worker is answered 503; 0 → never */
	/* Events out (API §12, `remit deliver`). */
	int webhook_allow_http;      /* yes: http:// endpoints too */
	int webhook_allow_private;   /* yes: loopback, private, link-local, multicast destinations */
	int webhook_timeout_ms;      /* one delivery attempt, connection included */
	int webhook_time_scale;      /* the retry schedule and the 3 days divided by this (tests) */
	int deliver_poll_ms;         /* how often an idle deliverer looks for due work */
	char smtp_url[256];          /* "" → no e-mail; smtp://host:port or smtps:// */
	char mail_from[256];         /* the envelope and From: address */
	char public_url[256];        /* where people reach the web frontend (links in mails) */
};

/* Fills defaults, then reads `path`. Returns 0, or -1 after printing the offending line. */
int config_load(struct config *c, const char *path);
void config_defaults(struct config *c);

#endif
