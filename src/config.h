/* The configuration file: `key = value` lines, `#` comments (see README.md). */
#ifndef REMIT_CONFIG_H
#define REMIT_CONFIG_H

struct config {
	char db_socket[256];
	char db_host[256];
	unsigned db_port;
	char db_user[128];
	char db_password[128];
	char db_name[64];
	char listen[256];        /* unix socket path of the FastCGI pool */
	unsigned listen_mode;
	int workers;             /* 0 → 2 × cores */
	int log_level;           /* LOG_ERROR .. LOG_DEBUG */
	long max_body;           /* bytes */
	int idem_wait;           /* seconds a twin waits for the first attempt's row lock */
	long idem_retention;     /* seconds an idempotency key is kept */
	int purge_interval;      /* seconds between purges of expired keys; 0 → never */
	int tx_retries;          /* re-runs of a transaction after a deadlock or lock timeout */
	long pw_opslimit;        /* Argon2id passes (crypto_pwhash opslimit) */
	long pw_memlimit;        /* Argon2id memory in bytes (crypto_pwhash memlimit) */
};

/* Fills defaults, then reads `path`. Returns 0, or -1 after printing the offending line. */
int config_load(struct config *c, const char *path);
void config_defaults(struct config *c);

#endif
