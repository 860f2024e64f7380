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

/* The keys and their defaults, from src/options.def. */
static const struct option {
	const char *name;
	enum kind kind;
	size_t offset, size;
	long min, max;
	const char *def;   /* as written in remit.conf */
} options[] = {
#define OPT_STR(f, cap, d, doc) \
	{ #f, K_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), 0, 0, d },
#define OPT_NUM(f, k, type, lo, hi, d, doc) \
	{ #f, K_##k, offsetof(struct config, f), sizeof(((struct config *)0)->f), lo, hi, d },
#include "options.def"
#undef OPT_STR
#undef OPT_NUM
};
#define NOPTIONS (sizeof options / sizeof *options)

static int set(struct config *c, const struct option *o, const char *v);

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < NOPTIONS; i++)
		if (set(c, &options[i], options[i].def) < 0)
			abort();   /* a default its own key refuses: src/options.def is wrong */
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
	if (o->kind == K_BOOL) {   /* yes or no, nothing else */
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
			for (size_t i = 0; i < NOPTIONS; i++)
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
