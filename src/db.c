#include "db.h"

#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define MAX_PARAMS 24
#define STMT_CACHE 96

/* Statements are cached by the address of their SQL text, which is always a string literal. */
struct cached {
	const char *sql;
	MYSQL_STMT *stmt;
};

struct db {
	const struct config *cfg;
	MYSQL *conn;
	struct cached cache[STMT_CACHE];
	size_t ncached;
	unsigned err;
	char errmsg[256];
	unsigned long long affected;
	long long insert_id;
	int node;   /* index in cfg->nodes of the server connected to (or tried first next) */
	bool galera;   /* the server is a Galera node: causal reads are switched per transaction */
	struct db_fault fault;   /* a test's injected error (fault_injection on), else all 0 */
	int nstmt;               /* statements sent since the fault was armed */
	unsigned refuse_connect; /* an injected refusal every connect meets until the next arm */
};

struct db *db_new(const struct config *cfg)
{
	struct db *db = calloc(1, sizeof *db);
	if (!db)
		abort();
	db->cfg = cfg;
	return db;
}

static void set_err(struct db *db, unsigned err, const char *msg)
{
	db->err = err;
	snprintf(db->errmsg, sizeof db->errmsg, "%s", msg);
}

/* 1047 is what a Galera node answers while it is not part of the primary component (joining,
 * partitioned): nothing can run there, so it counts as a lost connection and the worker moves
 * on to another node. */
#define ER_WSREP_NOT_READY 1047

/* The connection is of no further use: gone, killed, cut while reading or writing (the
 * server's 1158..1161 and 1184 as well as the client's 2013 and 2055, all seen when a node
 * dies or a proxy cuts), out of sync, or a statement that must be prepared again (1615, after
 * a node's restart or DDL): drop it, so that the next statement reconnects and prepares anew. */
static bool conn_lost(unsigned err)
{
	switch (err) {
	case ER_WSREP_NOT_READY: case CR_SERVER_GONE_ERROR: case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED: case CR_CONN_HOST_ERROR: case CR_CONNECTION_ERROR:
	case CR_COMMANDS_OUT_OF_SYNC: case ER_CONNECTION_KILLED: case ER_SERVER_SHUTDOWN:
	case ER_NET_READ_ERROR: case ER_NET_READ_INTERRUPTED: case ER_NET_ERROR_ON_WRITE:
	case ER_NET_WRITE_INTERRUPTED: case ER_NEW_ABORTING_CONNECTION: case ER_NEED_REPREPARE:
	case 4031:   /* MySQL 8: disconnected by the server */
		return true;
	default:
		return false;
	}
}

/* The server refuses to work now, or cannot say how a COMMIT ended, for reasons of its own
 * state rather than of the statement: read-only (1290, 1836, 1792: a node being demoted, a
 * replica after a failover), out of connections (1040, 1203, 1226), access denied after a
 * node's restart (1045, 4151, 1129), an error during COMMIT (1180, wsrep), a query killed or
 * timed out (1317, 1969, 3024), too many transactions or no room (1637, 1021, 1114). Nothing
 * the request did is wrong: 503 with Retry-After, and a key resolves what a COMMIT did. */
static bool server_refuses(unsigned err)
{
	switch (err) {
	case ER_OPTION_PREVENTS_STATEMENT: case 1836: case 1792:
	case ER_CON_COUNT_ERROR: case ER_TOO_MANY_USER_CONNECTIONS: case ER_USER_LIMIT_REACHED:
	case ER_ACCESS_DENIED_ERROR: case 4151: case ER_HOST_IS_BLOCKED:
	case ER_ERROR_DURING_COMMIT: case ER_QUERY_INTERRUPTED: case 1969: case 3024:
	case 1637: case ER_DISK_FULL: case ER_RECORD_FILE_FULL:
		return true;
	default:
		return false;
	}
}

static bool show_is(MYSQL *m, const char *sql, const char *want)
{
	if (mysql_query(m, sql) != 0)
		return false;
	MYSQL_RES *r = mysql_store_result(m);
	MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
	bool is = row && row[1] && strcasecmp(row[1], want) == 0;
	if (r)
		mysql_free_result(r);
	return is;
}

/* On a Galera node: refuse one that is not synced with the primary component (it would
 * answer 1047 to everything), and make reads outside a transaction and START TRANSACTION
 * wait until the node has applied what the cluster committed before them
 * (wsrep_sync_wait=1), so that a client that wrote through one app host reads its write
 * through the other, and a twin that lost the key race on one node reads the winner's row
 * committed on another. 1 on Galera, 0 on a standalone server, -1 when not usable. */
static int galera_session(MYSQL *m)
{
	if (!show_is(m, "SHOW VARIABLES LIKE 'wsrep_on'", "ON"))
		return mysql_errno(m) ? -1 : 0;
	if (!show_is(m, "SHOW STATUS LIKE 'wsrep_ready'", "ON"))
		return -1;
	return mysql_query(m, "SET SESSION wsrep_sync_wait = 1") == 0 ? 1 : -1;
}

static bool read_only(unsigned err)
{
	return err == ER_OPTION_PREVENTS_STATEMENT || err == 1836 || err == 1792;
}

/* A table whose trigger the server could not load on this node: seen on Galera nodes that had
 * just joined or rejoined (1064 "Trigger ... has an error in its body" for a trigger that
 * parses everywhere else, until the node's table cache lets the table go). It is the node's
 * state, not the statement: like a read-only node, drop the connection and try another. */
static bool broken_table(unsigned err, const char *msg)
{
	return err == ER_PARSE_ERROR && msg && strstr(msg, "has an error in its body");
}

/* Records a failed statement's error. A lost connection is dropped; so is a read-only node's
 * (a Galera node or a primary being demoted) and one that cannot load a table's triggers, and
 * the next connection tries the next node first: a re-run may find a sound one. */
static void failed(struct db *db, unsigned err, const char *msg)
{
	set_err(db, err, msg);
	bool node_state = read_only(err) || broken_table(err, msg);
	if (node_state && db->cfg->nnodes > 1)
		db->node = (db->node + 1) % db->cfg->nnodes;
	if (conn_lost(err) || node_state)
		db_disconnect(db);
}

static void from_conn(struct db *db) { failed(db, mysql_errno(db->conn), mysql_error(db->conn)); }

static void from_stmt(struct db *db, MYSQL_STMT *st)
{
	failed(db, mysql_stmt_errno(st), mysql_stmt_error(st));
}

void db_fault_arm(struct db *db, struct db_fault f)
{
	db->fault = f;
	db->nstmt = 0;
	db->refuse_connect = 0;
}


/* Fails the statement with the armed fault, once, as the server or the network would. A
 * refusal that only a connect can meet (too many connections, access denied) cuts the
 * connection here (2013) and refuses every connect until the request ends. */
static void fault_raise(struct db *db)
{
	unsigned err = db->fault.err;
	log_write(LOG_WARN, "fault injected", "\"errno\":%u,\"statement\":%d,\"after\":%s", err,
		db->nstmt, db->fault.after ? "true" : "false");
	db->fault.err = 0;
	if (err == ER_CON_COUNT_ERROR || err == ER_ACCESS_DENIED_ERROR || err == 4151 ||
	    err == ER_TOO_MANY_USER_CONNECTIONS || err == ER_HOST_IS_BLOCKED) {
		db->refuse_connect = err;
		err = CR_SERVER_LOST;
	}
	failed(db, err, "injected fault");
}

/* Counts a statement about to be sent. True when the armed fault fails it before it is
 * sent; *after is set when it fails once the server has run it (fault_after). */
static bool fault_before(struct db *db, bool *after)
{
	*after = false;
	if (!db->fault.err || ++db->nstmt != db->fault.at)
		return false;
	if (db->fault.after) {
		*after = true;
		return false;
	}
	fault_raise(db);
	return true;
}

static bool fault_after(struct db *db, bool after)
{
	if (after)
		fault_raise(db);
	return after;
}

void db_disconnect(struct db *db)
{
	for (size_t i = 0; i < db->ncached; i++)
		mysql_stmt_close(db->cache[i].stmt);
	db->ncached = 0;
	if (db->conn)
		mysql_close(db->conn);
	db->conn = NULL;
}

void db_free(struct db *db)
{
	if (!db)
		return;
	db_disconnect(db);
	free(db);
}

bool db_connected(const struct db *db) { return db->conn != NULL; }

/* One attempt on one node; the connection with the session set up, or NULL (db->err set). */
static MYSQL *connect_node(struct db *db, const struct db_node *n)
{
	const struct config *c = db->cfg;
	if (db->refuse_connect) {
		set_err(db, db->refuse_connect, "injected fault");
		return NULL;
	}
	MYSQL *m = mysql_init(NULL);
	if (!m)
		abort();
	/* Every request of a worker whose database is away tries to connect once before its
	 * 503: a refused connect fails at once, and one to a host that does not answer must not
	 * hold the worker longer than db_connect_timeout (1 s by default). Reads wait longer: a statement may wait idem_wait
	 * seconds for a row lock, and a server killed mid-statement closes the socket at once. */
	unsigned timeout = (unsigned)c->db_connect_timeout, io_timeout = (unsigned)c->idem_wait + 30;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/* A twin of an idempotent request waits on the first one's key row at most idem_wait
	 * seconds; every other lock wait is bounded the same way and retried, a table's
	 * metadata lock (an administrator's ALTER or LOCK TABLES) included: 1205 as well. */
	char init[256];
	snprintf(init, sizeof init,
		"SET time_zone = '+00:00', innodb_lock_wait_timeout = %d, lock_wait_timeout = %d, "
		"sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
		"ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'", c->idem_wait, c->idem_wait);
	mysql_options(m, MYSQL_INIT_COMMAND, init);
	const char *sock = n->socket[0] ? n->socket : NULL;
	int galera = -1;
	if (!mysql_real_connect(m, sock ? NULL : n->host, c->db_user, c->db_password, c->db_name,
			sock ? 0 : n->port, sock, CLIENT_FOUND_ROWS) ||
	    mysql_query(m, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ") != 0 ||
	    (galera = galera_session(m)) < 0) {
		set_err(db, mysql_errno(m) ? mysql_errno(m) : CR_CONNECTION_ERROR,
			mysql_errno(m) ? mysql_error(m) : "the Galera node is not ready");
		mysql_close(m);
		return NULL;
	}
	db->galera = galera == 1;
	return m;
}

/* Tries the nodes in the order of db_nodes, starting with the one that answered last: a
 * worker whose node died moves on to the next one and stays there. */
int db_connect(struct db *db)
{
	if (db->conn)
		return 0;
	const struct config *c = db->cfg;
	for (int i = 0; i < c->nnodes; i++) {
		int k = (db->node + i) % c->nnodes;
		db->conn = connect_node(db, &c->nodes[k]);
		if (db->conn) {
			/* The caller counts the move (metrics sit above db: it reports, they count). */
			bool moved = k != db->node && c->nnodes > 1;
			if (moved)
				log_write(LOG_WARN, "database node changed", "\"node\":%d,\"was\":%d", k, db->node);
			db->node = k;
			return moved ? 1 : 0;
		}
	}
	return -1;
}

static MYSQL_STMT *prepare(struct db *db, const char *sql)
{
	for (size_t i = 0; i < db->ncached; i++)
		if (db->cache[i].sql == sql)
			return db->cache[i].stmt;
	MYSQL_STMT *st = mysql_stmt_init(db->conn);
	if (!st) {
		from_conn(db);
		return NULL;
	}
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
		from_stmt(db, st);
		mysql_stmt_close(st);
		return NULL;
	}
	if (db->ncached == STMT_CACHE) {   /* full: the oldest goes (never reached in practice) */
		mysql_stmt_close(db->cache[0].stmt);
		memmove(db->cache, db->cache + 1, (STMT_CACHE - 1) * sizeof *db->cache);
		db->ncached--;
	}
	db->cache[db->ncached++] = (struct cached){ sql, st };
	return st;
}

/* Binds the parameters described by `types` and executes. */
static MYSQL_STMT *run(struct db *db, const char *sql, const char *types, va_list ap)
{
	db->err = 0;
	db->errmsg[0] = '\0';
	if (!db->conn) {
		set_err(db, CR_SERVER_GONE_ERROR, "not connected");
		return NULL;
	}
	bool after;
	if (fault_before(db, &after))
		return NULL;
	MYSQL_STMT *st = prepare(db, sql);
	if (!st)
		return NULL;
	size_t n = strlen(types);
	if (n > MAX_PARAMS || n != mysql_stmt_param_count(st)) {
		log_write(LOG_ERROR, "parameter count mismatch", NULL);
		abort();
	}
	MYSQL_BIND bind[MAX_PARAMS];
	long long ints[MAX_PARAMS];
	unsigned long lens[MAX_PARAMS];
	memset(bind, 0, sizeof bind);
	for (size_t i = 0; i < n; i++) {
		const char *s;
		switch (types[i]) {
		case 'i':
			ints[i] = va_arg(ap, long long);
			bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
			bind[i].buffer = &ints[i];
			break;
		case 's':
			s = va_arg(ap, const char *);
			bind[i].buffer_type = s ? MYSQL_TYPE_STRING : MYSQL_TYPE_NULL;
			bind[i].buffer = (void *)s;
			lens[i] = s ? strlen(s) : 0;
			bind[i].buffer_length = lens[i];
			bind[i].length = &lens[i];
			break;
		case 'S':
		case 'b':
			s = va_arg(ap, const char *);
			lens[i] = va_arg(ap, size_t);
			bind[i].buffer_type = types[i] == 'b' ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
			bind[i].buffer = (void *)s;
			bind[i].buffer_length = lens[i];
			bind[i].length = &lens[i];
			break;
		default:
			abort();
		}
	}
	if ((n && mysql_stmt_bind_param(st, bind) != 0) || mysql_stmt_execute(st) != 0) {
		from_stmt(db, st);
		return NULL;
	}
	if (fault_after(db, after))   /* the server got it, then the connection went */
		return NULL;
	return st;
}

/* A CALL answers with its procedure's status after any results: read it, or the next
 * statement finds the connection out of sync. */
static int drain(struct db *db, MYSQL_STMT *st)
{
	while (mysql_stmt_more_results(st)) {
		int rc = mysql_stmt_next_result(st);
		if (rc > 0) {
			from_stmt(db, st);
			return -1;
		}
		if (rc < 0)
			break;
		mysql_stmt_free_result(st);
	}
	return 0;
}

int db_exec(struct db *db, const char *sql, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	MYSQL_STMT *st = run(db, sql, types, ap);
	va_end(ap);
	if (!st)
		return -1;
	db->affected = mysql_stmt_affected_rows(st);
	db->insert_id = (long long)mysql_stmt_insert_id(st);
	return drain(db, st);
}

/* Copies the rows of a bound, stored result into res's cells (allocated for all of them). */
static int fetch_rows(struct db *db, MYSQL_STMT *st, struct arena *a, struct dbres *res,
	const MYSQL_BIND *bind)
{
	size_t ncols = res->ncols;
	for (;;) {
		int f = mysql_stmt_fetch(st);
		if (f == MYSQL_NO_DATA)
			return 0;
		if (f != 0) {   /* MYSQL_DATA_TRUNCATED cannot happen with max_length buffers */
			from_stmt(db, st);
			return -1;
		}
		for (size_t c = 0; c < ncols; c++) {
			bool null = *bind[c].is_null;
			struct dbcell *cell = &res->cells[res->nrows * ncols + c];
			cell->s = null ? NULL : arena_strndup(a, bind[c].buffer, *bind[c].length);
			cell->len = null ? 0 : *bind[c].length;
		}
		res->nrows++;
	}
}

/* Reads every row of an executed statement as text cells. */
static int fetch_all(struct db *db, MYSQL_STMT *st, struct arena *a, struct dbres *res)
{
	int rc = -1;
	MYSQL_RES *meta = NULL;
	my_bool update_max = 1;
	mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
	if (mysql_stmt_store_result(st) != 0) {
		from_stmt(db, st);
		return -1;
	}
	meta = mysql_stmt_result_metadata(st);
	size_t ncols = meta ? mysql_num_fields(meta) : 0;
	size_t nrows = (size_t)mysql_stmt_num_rows(st);
	res->ncols = ncols;
	res->nrows = 0;
	size_t ncells = nrows * ncols;
	res->cells = arena_alloc(a, (ncells ? ncells : 1) * sizeof *res->cells);
	MYSQL_FIELD *fields = ncols ? mysql_fetch_fields(meta) : NULL;
	MYSQL_BIND *bind = arena_alloc(a, (ncols + 1) * sizeof *bind);
	unsigned long *lens = arena_alloc(a, (ncols + 1) * sizeof *lens);
	my_bool *nulls = arena_alloc(a, (ncols + 1) * sizeof *nulls);
	memset(bind, 0, (ncols + 1) * sizeof *bind);
	if (ncols == 0) {
		rc = 0;
		goto out;
	}
	for (size_t c = 0; c < ncols; c++) {
		/* max_length counts text for strings; numbers and dates come as text up to 64 bytes */
		unsigned long cap = fields[c].max_length > 64 ? fields[c].max_length : 64;
		bind[c].buffer_type = MYSQL_TYPE_STRING;
		bind[c].buffer = arena_alloc(a, cap + 1);
		bind[c].buffer_length = cap + 1;
		bind[c].length = &lens[c];
		bind[c].is_null = &nulls[c];
	}
	if (mysql_stmt_bind_result(st, bind) != 0) {
		from_stmt(db, st);
		goto out;
	}
	rc = fetch_rows(db, st, a, res, bind);
out:
	if (meta)
		mysql_free_result(meta);
	mysql_stmt_free_result(st);
	return rc;
}

int db_query(struct db *db, struct arena *a, struct dbres *res, const char *sql,
	const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	MYSQL_STMT *st = run(db, sql, types, ap);
	va_end(ap);
	memset(res, 0, sizeof *res);
	if (!st)
		return -1;
	return fetch_all(db, st, a, res) < 0 ? -1 : drain(db, st);
}

unsigned long long db_affected(const struct db *db) { return db->affected; }
long long db_insert_id(const struct db *db) { return db->insert_id; }

int db_exec_raw(struct db *db, const char *sql, size_t len)
{
	db->err = 0;
	if (!db->conn) {
		set_err(db, CR_SERVER_GONE_ERROR, "not connected");
		return -1;
	}
	bool after;
	if (fault_before(db, &after))
		return -1;
	if (mysql_real_query(db->conn, sql, len) != 0) {
		from_conn(db);
		return -1;
	}
	db->affected = mysql_affected_rows(db->conn);
	MYSQL_RES *r = mysql_store_result(db->conn);   /* a statement may return rows: drop them */
	if (r)
		mysql_free_result(r);
	return fault_after(db, after) ? -1 : 0;
}

static int simple(struct db *db, const char *sql) { return db_exec_raw(db, sql, strlen(sql)); }

/* Inside a transaction a Galera session reads without the causal wait: START TRANSACTION
 * has waited already, and a statement's causal wait can let a transaction that a replicated
 * write set aborted meanwhile (brute-force abort) go on reading as if nothing happened —
 * seen on MariaDB 10.11 as an INSERT's own row missing from the SELECT after it, instead of
 * 1213. Without the wait the aborted transaction's next statement gets 1213 and is re-run. */
static void causal_reads(struct db *db, bool on)
{
	if (db->galera && db->conn)
		simple(db, on ? "SET SESSION wsrep_sync_wait = 1" : "SET SESSION wsrep_sync_wait = 0");
}

int db_begin(struct db *db)
{
	if (simple(db, "START TRANSACTION") < 0)
		return -1;
	causal_reads(db, false);
	return db->conn ? 0 : -1;
}

int db_commit(struct db *db)
{
	if (simple(db, "COMMIT") < 0)
		return -1;   /* the caller rolls back, which switches causal reads on again */
	causal_reads(db, true);
	return 0;
}

void db_committed(struct db *db) { causal_reads(db, true); }

int db_rollback(struct db *db)
{
	if (!db->conn)
		return 0;
	unsigned err = db->err;   /* keep the error that made the caller roll back */
	char msg[sizeof db->errmsg];
	memcpy(msg, db->errmsg, sizeof msg);
	simple(db, "ROLLBACK");
	causal_reads(db, true);
	db->err = err;
	memcpy(db->errmsg, msg, sizeof msg);
	return 0;
}

bool db_galera(const struct db *db) { return db->conn && db->galera; }
void db_set_error(struct db *db, unsigned err, const char *msg) { set_err(db, err, msg); }

bool db_tx_alive(struct db *db)
{
	if (db->conn && (db->conn->server_status & SERVER_STATUS_IN_TRANS))
		return true;
	if (db->conn)
		set_err(db, ER_LOCK_DEADLOCK, "the transaction was aborted by the cluster");
	return false;
}

unsigned db_errno(const struct db *db) { return db->err; }
const char *db_error(const struct db *db) { return db->errmsg; }

/* Contention, and a row or table that changed under the transaction (1020, 1412): the
 * whole transaction runs again. 1467 is contention too: an INSERT ... SELECT (a payment
 * file's items) takes InnoDB's table-level AUTO-INC lock, and when that lock's wait ends in a
 * deadlock or a timeout the server reports "Failed to read auto-increment value" (seen in
 * t/82's model test under load: a 500 where the re-run succeeds). */
bool db_err_retryable(const struct db *db)
{
	return db->err == ER_LOCK_DEADLOCK || db->err == ER_LOCK_WAIT_TIMEOUT ||
	       db->err == ER_CHECKREAD || db->err == ER_TABLE_DEF_CHANGED ||
	       db->err == ER_AUTOINC_READ_FAILED;
}

bool db_err_unavailable(const struct db *db)
{
	return !db->conn || db_err_retryable(db) || conn_lost(db->err) || server_refuses(db->err);
}

long long db_i(const struct dbres *r, size_t row, size_t col)
{
	const char *s = db_s(r, row, col);
	return s ? strtoll(s, NULL, 10) : 0;
}

int db_end_claim(struct db *db, int rc)
{
	if (rc == 1 && db_commit(db) == 0)
		return 1;
	db_rollback(db);
	return rc == 1 ? -1 : rc;
}
