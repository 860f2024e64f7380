#include "metrics.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "db.h"

#define MAX_ROUTES 64            /* route indexes; the last row counts unmatched paths */
#define MAX_SLOTS 1024
#define OUT_CAP (256 * 1024)

typedef _Atomic unsigned long long counter;

/* The statuses remit answers; any other lands in the last column as "other". */
static const int codes[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 412, 413, 415, 422,
	500, 503 };
#define NCODES (sizeof codes / sizeof *codes)

/* Upper bounds of the latency histogram, in seconds. */
static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10 };
#define NBOUNDS (sizeof bounds / sizeof *bounds)

struct slot {
	_Atomic pid_t pid;           /* the worker in this slot, 0 before the first starts */
	_Atomic int busy;
};

struct shm {
	counter requests[MAX_ROUTES][NCODES + 1];
	counter latency[NBOUNDS + 1];   /* per bucket, not cumulative: summed when written */
	counter latency_us;
	counter replays, key[2], db_errors[2], node_changes;
	counter tx_retries[3];           /* deadlock or certification failure, lock wait, other */
	int nslots;
	struct slot slots[];
};

static struct shm *m;
static struct slot *self;
static int route = -1;
static struct { const char *method, *pattern; } names[MAX_ROUTES - 1];

int metrics_init(int workers)
{
	if (workers > MAX_SLOTS)
		workers = MAX_SLOTS;
	size_t size = sizeof *m + (size_t)workers * sizeof(struct slot);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	m = p;   /* zero-filled by mmap */
	m->nslots = workers;
	return 0;
}

void metrics_worker_start(int slot)
{
	if (!m || slot < 0 || slot >= m->nslots)
		return;
	self = &m->slots[slot];
	atomic_store(&self->busy, 0);
	atomic_store(&self->pid, getpid());
}

void metrics_request_begin(void)
{
	route = -1;
	if (self)
		atomic_store(&self->busy, 1);
}

void metrics_route(int r) { route = r; }

void metrics_route_name(int i, const char *method, const char *pattern)
{
	if (i >= 0 && i < MAX_ROUTES - 1) {
		names[i].method = method;
		names[i].pattern = pattern;
	}
}

static void add(counter *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

void metrics_request_end(int status, bool replayed, double seconds)
{
	if (!m)
		return;
	int row = route >= 0 && route < MAX_ROUTES - 1 ? route : MAX_ROUTES - 1;
	size_t col = 0;
	while (col < NCODES && codes[col] != status)
		col++;
	add(&m->requests[row][col]);
	size_t b = 0;
	while (b < NBOUNDS && seconds > bounds[b])
		b++;
	add(&m->latency[b]);
	atomic_fetch_add_explicit(&m->latency_us, (unsigned long long)(seconds * 1e6),
		memory_order_relaxed);
	if (replayed)
		add(&m->replays);
	if (self)
		atomic_store(&self->busy, 0);
}

void metrics_key_outcome(enum metrics_key k) { if (m) add(&m->key[k]); }
void metrics_db_error(enum metrics_db d) { if (m) add(&m->db_errors[d]); }
void metrics_node_change(void) { if (m) add(&m->node_changes); }

void metrics_tx_retry(unsigned err)
{
	if (m)
		add(&m->tx_retries[err == DB_DEADLOCK ? 0 : err == DB_LOCK_WAIT_TIMEOUT ? 1 : 2]);
}

/* ---- the exposition ---------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len;
};

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, OUT_CAP - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + (size_t)n < OUT_CAP ? o->len + (size_t)n : OUT_CAP - 1;
}

static unsigned long long get(counter *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/* Only the (route, status) pairs seen so far: a counter that never moved has no line. */
static void put_requests(struct out *o)
{
	put(o, "# HELP remit_http_requests_total Requests answered, by route and status.\n"
		"# TYPE remit_http_requests_total counter\n");
	for (int r = 0; r < MAX_ROUTES; r++) {
		const char *pattern = r < MAX_ROUTES - 1 ? names[r].pattern : NULL;
		const char *method = pattern ? names[r].method : "";
		if (!pattern && r < MAX_ROUTES - 1)
			continue;
		for (size_t col = 0; col <= NCODES; col++) {
			unsigned long long n = get(&m->requests[r][col]);
			if (!n)
				continue;
			char status[8] = "other";
			if (col < NCODES)
				snprintf(status, sizeof status, "%d", codes[col]);
			put(o, "remit_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
				pattern ? method : "", pattern ? pattern : "unmatched", status, n);
		}
	}
}

static void put_latency(struct out *o)
{
	put(o, "# HELP remit_http_request_duration_seconds Time from accept to response written.\n"
		"# TYPE remit_http_request_duration_seconds histogram\n");
	unsigned long long cum = 0;
	for (size_t b = 0; b <= NBOUNDS; b++) {
		cum += get(&m->latency[b]);
		if (b < NBOUNDS)
			put(o, "remit_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[b], cum);
		else
			put(o, "remit_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	}
	put(o, "remit_http_request_duration_seconds_sum %.6f\n"
		"remit_http_request_duration_seconds_count %llu\n",
		(double)get(&m->latency_us) / 1e6, cum);
}

static void put_counter(struct out *o, const char *name, const char *help, const char *label,
	unsigned long long n)
{
	put(o, "# HELP %s %s\n# TYPE %s counter\n%s%s %llu\n", name, help, name, name, label, n);
}

/* A slot counts while its worker lives: one killed in the middle of a request left busy set,
 * and the slot's next worker overwrites both. */
static void put_workers(struct out *o)
{
	int total = 0, busy = 0;
	for (int i = 0; i < m->nslots; i++) {
		pid_t pid = atomic_load(&m->slots[i].pid);
		if (pid <= 0 || kill(pid, 0) != 0)
			continue;
		total++;
		busy += atomic_load(&m->slots[i].busy) != 0;
	}
	put(o, "# HELP remit_workers_busy Workers serving a request (this one included).\n"
		"# TYPE remit_workers_busy gauge\nremit_workers_busy %d\n"
		"# HELP remit_workers_total Workers alive in the pool.\n"
		"# TYPE remit_workers_total gauge\nremit_workers_total %d\n", busy, total);
}

int h_metrics(struct ctx *c)
{
	if (!m)
		return reply_error(c, 404, "NOT_FOUND", "no such resource");
	struct out o = { arena_alloc(c->a, OUT_CAP), 0 };
	o.buf[0] = '\0';
	put_requests(&o);
	put_latency(&o);
	put_counter(&o, "remit_idempotent_replays_total", "Answers replayed from a stored key.", "",
		get(&m->replays));
	put(&o, "# HELP remit_idempotency_key_outcomes_total Keys answered 409 (in progress) or 422"
		" (reused with another request).\n# TYPE remit_idempotency_key_outcomes_total counter\n"
		"remit_idempotency_key_outcomes_total{outcome=\"in_progress\"} %llu\n"
		"remit_idempotency_key_outcomes_total{outcome=\"reused\"} %llu\n",
		get(&m->key[MK_IN_PROGRESS]), get(&m->key[MK_REUSED]));
	put(&o, "# HELP remit_tx_retries_total Transactions run again, by cause (deadlock includes"
		" Galera certification failures).\n# TYPE remit_tx_retries_total counter\n"
		"remit_tx_retries_total{cause=\"deadlock\"} %llu\n"
		"remit_tx_retries_total{cause=\"lock_wait_timeout\"} %llu\n"
		"remit_tx_retries_total{cause=\"connection\"} %llu\n",
		get(&m->tx_retries[0]), get(&m->tx_retries[1]), get(&m->tx_retries[2]));
	put(&o, "# HELP remit_db_errors_total Requests failed by the database: unavailable (503) or"
		" an error (500).\n# TYPE remit_db_errors_total counter\n"
		"remit_db_errors_total{kind=\"unavailable\"} %llu\n"
		"remit_db_errors_total{kind=\"internal\"} %llu\n",
		get(&m->db_errors[MD_UNAVAILABLE]), get(&m->db_errors[MD_INTERNAL]));
	put_counter(&o, "remit_db_node_changes_total",
		"Times a worker moved to another database node (db_nodes).", "", get(&m->node_changes));
	put_workers(&o);
	c->rs.status = 200;
	c->rs.body = o.buf;
	c->rs.body_len = o.len;
	c->rs.content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}
