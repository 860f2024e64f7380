#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "domain/people.h"
#include "http.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "shed.h"
#include "text.h"

/* The purge deletes expired keys PURGE_BATCH at a time (one transaction each) for at most
 * PURGE_BUDGET_MS, then serves a request; while expired keys remain it goes on at once
 * instead of waiting purge_interval. A fixed count per interval (it was 10,000 a minute)
 * falls behind any write rate above it and the table grows without bound; this keeps up
 * with whatever rate the pool can write (BENCHMARKS.md "Purge"). */
#define PURGE_BATCH 500
#define PURGE_BUDGET_MS 500.0

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* The client's X-Request-Id if it is one we may echo (nginx already checks), else ours. */
static const char *request_id(struct arena *a, FCGX_Request *fr)
{
	const char *rid = FCGX_GetParam("HTTP_X_REQUEST_ID", fr->envp);
	if (rid && request_id_valid(rid, strlen(rid)))
		return rid;
	unsigned char raw[16];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		memset(raw, 0, sizeof raw);
	char *out = arena_alloc(a, 33);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return out;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Tests only (remit.conf fault_injection = 1): "X-Remit-Fault: ERRNO@N" fails the request's
 * N-th database statement (the first is auth's) with ERRNO, once; "ERRNO@N/after" sends it
 * first (the server ran it, then the connection went). Every request arms its own fault or
 * none, so nothing carries over to the next one. */
static void arm_fault(struct ctx *c, FCGX_Request *fr)
{
	struct db_fault f = { 0 };
	const char *h = c->cfg->fault_injection ? FCGX_GetParam("HTTP_X_REMIT_FAULT", fr->envp) : NULL;
	char after[8] = "";
	if (h && sscanf(h, "%u@%d/%7s", &f.err, &f.at, after) >= 2 && f.at > 0)
		f.after = strcmp(after, "after") == 0;
	else
		f = (struct db_fault){ 0 };
	db_fault_arm(c->db, f);
}

int worker_serve(struct ctx *c, FCGX_Request *fr)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	metrics_request_begin();
	arena_reset(c->a);
	http_reset_response(c);
	memset(&c->rq, 0, sizeof c->rq);
	memset(&c->me, 0, sizeof c->me);
	memset(c->params, 0, sizeof c->params);
	c->body = NULL;
	c->idem = NULL;
	c->q = NULL;
	c->nq = 0;
	c->request_id = request_id(c->a, fr);
	http_read_request(c, fr);
	arm_fault(c, fr);
	int shed = shed_check_or_reply(c, fr), status = shed;
	if (!shed)
		status = router_serve(c, fr);
	http_write_response(c, fr);
	if (!shed)
		shed_note_served(c->cfg, ms_since(&t0));
	db_fault_arm(c->db, (struct db_fault){ 0 });   /* an unfired fault ends with its request */
	metrics_request_end(status, c->rs.replayed, ms_since(&t0) / 1e3);
	if (log_enabled(LOG_INFO)) {
		char path[512], method[64];
		log_escape(path, sizeof path, c->rq.path, strlen(c->rq.path));
		log_escape(method, sizeof method, c->rq.method, strlen(c->rq.method));
		log_write(LOG_INFO, "request",
			"\"rid\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"ms\":%.2f,"
			"\"user\":%lld,\"replayed\":%s", c->request_id, method, path, status,
			ms_since(&t0), c->me.user_id, c->rs.replayed ? "true" : "false");
	}
	return status;
}

/* db_connect, a move to another node counted (db reports it, metrics sit above db). */
static int connect_db(struct db *db)
{
	int rc = db_connect(db);
	if (rc > 0)
		metrics_node_change();
	return rc;
}

/* True when expired keys are left: purge again at once. */
static bool purge(struct db *db)
{
	if (connect_db(db) < 0)
		return false;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long total = 0, n;
	do {
		n = idem_purge(db, PURGE_BATCH, 1);
		total += n > 0 ? n : 0;
	} while (n >= PURGE_BATCH && ms_since(&t0) < PURGE_BUDGET_MS);
	if (n < 0)
		log_write(LOG_WARN, "purge failed", "\"deleted\":%ld,\"errno\":%u", total, db_errno(db));
	else if (total)
		log_write(LOG_INFO, "purged idempotency keys", "\"deleted\":%ld,\"ms\":%.1f", total,
			ms_since(&t0));
	long t = sessions_purge(db);
	if (t != 0)
		log_write(t < 0 ? LOG_WARN : LOG_INFO, "purged sign-in throttle rows and expired sessions",
			"\"deleted\":%ld", t);
	return n >= PURGE_BATCH;
}

int worker_run(const struct config *cfg, int listen_fd, int index)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t wait_mask;   /* SIGTERM is blocked but while waiting for a request */
	sigprocmask(SIG_SETMASK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);

	pid_t parent = getppid();
	struct arena arena = { 0 };
	struct db *db = db_new(cfg);
	struct ctx c;
	memset(&c, 0, sizeof c);
	c.a = &arena;
	c.db = db;
	c.cfg = cfg;
	FCGX_Request fr;
	FCGX_InitRequest(&fr, listen_fd, 0);
	metrics_worker_start(index);
	router_init();
	connect_db(db);   /* failures are retried by each request */
	time_t next_purge = time(NULL) + (index == 0 ? 1 : 0);
	/* Each worker waits on the shared socket through an epoll of its own with EPOLLEXCLUSIVE,
	 * so a new connection wakes one idle worker, not all of them (with poll, N workers meant
	 * N wake-ups and N-1 accepts failing with EAGAIN for every request). Like ppoll,
	 * epoll_pwait unblocks SIGTERM only while waiting and reports a ready socket first. */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		log_write(LOG_ERROR, "epoll failed", "\"errno\":%d", errno);
		return 1;
	}

	while (!stopping && getppid() == parent) {
		if (index == 0 && cfg->purge_interval > 0 && time(NULL) >= next_purge) {
			next_purge = time(NULL) + (purge(db) ? 0 : cfg->purge_interval);
		}
		struct epoll_event ready;
		if (epoll_pwait(ep, &ready, 1, 1000, &wait_mask) <= 0)
			continue;
		/* The socket is non-blocking: when another worker won the connection this fails
		 * with EAGAIN and we go back to waiting. */
		if (FCGX_Accept_r(&fr) < 0)
			continue;
		worker_serve(&c, &fr);
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
	close(ep);
	if (c.rs.gen)
		yajl_gen_free(c.rs.gen);
	db_free(db);
	arena_free(&arena);
	return 0;
}
