#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum kind { K_STR, K_UINT, K_INT, K_LONG, K_OCTAL, K_LEVEL, K_BOOL };

static const struct option {
	const char *name;
	enum kind kind;
	size_t offset, size;
	long min, max;
} options[] = {
#define STR(f) #f, K_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), 0, 0
#define NUM(f, k, lo, hi) #f, k, offsetof(struct config, f), sizeof(((struct config *)0)->f), lo, hi
	{ STR(db_nodes) },
	{ STR(db_socket) },
	{ STR(db_host) },
	{ NUM(db_port, K_UINT, 1, 65535) },
	{ STR(db_user) },
	{ STR(db_password) },
	{ STR(db_name) },
	{ STR(migrate_user) },
	{ STR(migrate_password) },
	{ STR(listen) },
	{ NUM(listen_mode, K_OCTAL, 0, 0777) },
	{ STR(listen_group) },
	{ NUM(listen_backlog, K_INT, 1, 65535) },
	{ NUM(workers, K_INT, 0, 1024) },
	{ NUM(log_level, K_LEVEL, 0, 0) },
	{ NUM(max_body, K_LONG, 1, 64L << 20) },
	{ NUM(idem_wait, K_INT, 1, 3600) },
	{ NUM(idem_retention, K_LONG, 1, 365L * 86400) },
	{ NUM(purge_interval, K_INT, 0, 86400) },
	{ NUM(tx_retries, K_INT, 0, 100) },
	{ NUM(pw_opslimit, K_LONG, 1, 64) },
	{ NUM(pw_memlimit, K_LONG, 8192, 1L << 30) },
	{ NUM(db_connect_timeout, K_INT, 1, 60) },
	{ NUM(shed_after_ms, K_INT, 0, 600000) },
	{ NUM(webhook_allow_http, K_BOOL, 0, 1) },
	{ NUM(webhook_allow_private, K_BOOL, 0, 1) },
	{ NUM(webhook_timeout_ms, K_INT, 1, 600000) },
	{ NUM(webhook_time_scale, K_INT, 1, 100000000) },
	{ NUM(deliver_poll_ms, K_INT, 1, 60000) },
	{ STR(smtp_url) },
	{ STR(mail_from) },
	{ STR(public_url) },
#undef STR
#undef NUM
};

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->db_host, "127.0.0.1");
	c->db_port = 3306;
	strcpy(c->db_user, "remit");
	strcpy(c->db_name, "remit");
	strcpy(c->listen, "/run/remit/remit.sock");
	c->listen_mode = 0660;
	c->listen_backlog = 1024;
	c->log_level = LOG_INFO;
	c->max_body = 65536;
	c->idem_wait = 5;
	c->idem_retention = 86400;
	c->purge_interval = 60;
	c->tx_retries = 5;
	/* libsodium's INTERACTIVE cost: ~90 ms of one core and 64 MiB per sign-in on the
	 * reference host (README.md, "Passwords"). */
	c->pw_opslimit = 2;
	c->pw_memlimit = 64L << 20;
	c->db_connect_timeout = 2;
	c->shed_after_ms = 1000;
	c->webhook_timeout_ms = 10000;
	c->webhook_time_scale = 1;
	c->deliver_poll_ms = 100;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int set(struct config *c, const struct option *o, const char *v)
{
	void *field = (char *)c + o->offset;
	if (o->kind == K_STR) {
		if (strlen(v) >= o->size)
			return -1;
		strcpy(field, v);
		return 0;
	}
	if (o->kind == K_BOOL) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return -1;
		*(int *)field = strcmp(v, "yes") == 0;
		return 0;
	}
	if (o->kind == K_LEVEL) {
		int l = log_level_parse(v);
		if (l < 0)
			return -1;
		*(int *)field = l;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, o->kind == K_OCTAL ? 8 : 10);
	if (errno || end == v || *end || n < o->min || n > o->max)
		return -1;
	if (o->kind == K_LONG)
		*(long *)field = n;
	else if (o->kind == K_INT)
		*(int *)field = (int)n;
	else
		*(unsigned *)field = (unsigned)n;
	return 0;
}

/* One entry of db_nodes: "/path/to/socket", "host:port" or "host" (port db_port). */
static int parse_node(struct db_node *n, const char *s, size_t len, unsigned default_port)
{
	memset(n, 0, sizeof *n);
	if (len == 0 || len >= sizeof n->host)
		return -1;
	if (s[0] == '/') {
		memcpy(n->socket, s, len);
		return 0;
	}
	const char *colon = memchr(s, ':', len);
	size_t hlen = colon ? (size_t)(colon - s) : len;
	if (hlen == 0)
		return -1;
	memcpy(n->host, s, hlen);
	n->port = default_port;
	if (colon) {
		char port[8] = "", *end;
		size_t plen = len - hlen - 1;
		if (plen == 0 || plen >= sizeof port)
			return -1;
		memcpy(port, colon + 1, plen);
		long p = strtol(port, &end, 10);
		if (*end || p < 1 || p > 65535)
			return -1;
		n->port = (unsigned)p;
	}
	return 0;
}

/* The servers a worker tries in turn: db_nodes when set, else db_socket or db_host:db_port. */
static int fill_nodes(struct config *c)
{
	c->nnodes = 0;
	if (!c->db_nodes[0]) {
		struct db_node *n = &c->nodes[c->nnodes++];
		strcpy(n->socket, c->db_socket);
		strcpy(n->host, c->db_host);
		n->port = c->db_port;
		return 0;
	}
	for (const char *p = c->db_nodes; *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (!len)
			break;
		if (c->nnodes == MAX_DB_NODES || parse_node(&c->nodes[c->nnodes], p, len, c->db_port) < 0)
			return -1;
		c->nnodes++;
		p += strcspn(p, ",");
	}
	return c->nnodes ? 0 : -1;
}

int config_load(struct config *c, const char *path)
{
	config_defaults(c);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "remit: cannot read config %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		const struct option *o = NULL;
		if (eq) {
			*eq = '\0';
			char *key = trim(s);
			for (size_t i = 0; i < sizeof options / sizeof *options; i++)
				if (strcmp(options[i].name, key) == 0)
					o = &options[i];
		}
		if (!o || set(c, o, trim(eq + 1)) < 0) {
			fprintf(stderr, "remit: %s:%d: bad setting\n", path, lineno);
			rc = -1;
			break;
		}
	}
	fclose(f);
	if (rc == 0 && fill_nodes(c) < 0) {
		fprintf(stderr, "remit: %s: bad db_nodes (at most %d of host:port or /socket)\n", path,
			MAX_DB_NODES);
		rc = -1;
	}
	if (rc == 0 && c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = 2 * (int)(n > 0 ? n : 1);
	}
	return rc;
}
