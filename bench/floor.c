/* The floor of a bench/run scenario: what it costs without HTTP. N forked processes each open
 * their own database connection as a pool worker does and serve requests built in memory
 * through worker_serve (src/worker.c), the very function a worker calls for each accepted
 * request: route, auth, body, Idempotency-Key, transaction, handler, audit, the response
 * written and the request logged. What is left out is nginx, the FastCGI records and the
 * sockets: the response goes to a buffer that is thrown away.
 *
 *   floor --conf FILE --data FILE --scenario add|get|replay|flow [--conns N] [--duration S]
 *         [--key KEY] [--tag TEXT]
 *
 * --conf is the stack's remit.conf (database, log level, retries as the pool has them).
 * --data is bench/run's BENCH_DATA: one line per organisation,
 *   index creatorToken approverToken treasurerToken batchId requestId
 * and process i takes line i, as wrk's thread i does in the bench/ Lua scripts:
 *   add     POST /api/v1/batches/{batch}/requests, a fresh Idempotency-Key each (with
 *           bench/run's bench-org1.txt, whose lines are all organisation 1, that is add/1org)
 *   get     GET /api/v1/requests/{request} of line 1
 *   replay  POST add-request to line 1's batch with --key and the same body: every answer
 *           must be a replay (the key's first request is bench/run's)
 *   flow    create batch → add → submit → approve → mark paid, as bench/flow.lua
 * Each process first serves WARMUP requests (prepared statements, buffers), then all start
 * together and run --duration seconds. One line on stdout:
 *   FLOOR requests=N seconds=S rps=R p50_ms=X p99_ms=X max_ms=X non2xx=N statuses=LIST
 *         warmup=N flows=N cpu_s=S
 * where non2xx counts every answer outside 2xx and, for replay, every 2xx that was not a
 * replay (statuses lists them as status:count); cpu_s is the CPU time of the processes.
 * The worker's log lines go to stderr, as a pool's go to its log. Exits 1 on any non-2xx.
 *
 *   cc -std=c11 -O2 -I src -I . bench/floor.c src/libremit.a (remit's LIBS), see bench/run
 */
#define _GNU_SOURCE
#include <fcgiapp.h>
#include <getopt.h>
#include <mysql.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "password.h"
#include "worker.h"

#define MAX_CONNS 1024
#define WARMUP 5
#define BUCKET_US 10        /* latency histogram: 10 µs buckets up to 2 s, the last open */
#define NBUCKETS 200000
#define NENV 24

static const char add_body[] = "{\"amount\":\"12.34\",\"currency\":\"EUR\","
	"\"beneficiaryName\":\"Bench Supplies GmbH\","
	"\"beneficiaryAccount\":\"DE89 3704 0044 0532 0130 00\",\"purpose\":\"bench\"}";
static const char flow_add_body[] = "{\"amount\":\"250.00\",\"currency\":\"EUR\","
	"\"beneficiaryName\":\"Flow Partner SA\","
	"\"beneficiaryAccount\":\"DE89370400440532013000\",\"purpose\":\"invoice\"}";

enum scenario { SC_ADD, SC_GET, SC_REPLAY, SC_FLOW };

struct opts {
	const char *conf, *data, *key, *tag;
	enum scenario sc;
	int conns;
	double duration;
};

struct org {
	char creator[128], approver[128], treasurer[128], batch[32], request[32];
};

/* Shared by the processes (MAP_SHARED before the fork): the counts and the histogram. */
struct shared {
	atomic_long ready, requests, warm, non2xx, flows, max_us;
	atomic_long status[600];
	atomic_long deadline_ns;
	atomic_uint hist[NBUCKETS];
};

/* One request as nginx would hand it over: its params and an in-memory body and output. */
struct fake {
	FCGX_Request fr;
	FCGX_Stream in, out;
	char *envp[NENV + 1];
	char env[NENV][320];
	int nenv;
	unsigned char out_buf[65536];
};

/* The connection's state: which request comes next. */
struct conn {
	struct ctx c;
	struct fake f;
	const struct opts *o;
	const struct org *org, *org1;
	struct shared *sh;
	long seq;
	int step;                     /* flow: 0 create .. 4 mark paid */
	char batch[32], request[32];  /* flow: the ones this flow created */
	char ref[64];                 /* flow: mark-paid's body */
};

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The input stream has all of the body from the start: asked for more, it is at its end. */
static void in_fill(FCGX_Stream *s)
{
	s->isClosed = 1;
}

/* The output is thrown away when its buffer is full (no response comes near 64 KiB). */
static void out_empty(FCGX_Stream *s, int closing)
{
	(void)closing;
	s->wrNext = s->data;
}

static void env_add(struct fake *f, const char *name, const char *value)
{
	snprintf(f->env[f->nenv], sizeof f->env[0], "%s=%s", name, value ? value : "");
	f->envp[f->nenv] = f->env[f->nenv];
	f->envp[++f->nenv] = NULL;
}

/* The params remit's nginx site sends (nginx/remit.conf.in), for one request. */
static void fake_request(struct conn *k, const char *method, const char *uri, const char *token,
	const char *key, const char *body)
{
	struct fake *f = &k->f;
	char v[64];
	size_t len = body ? strlen(body) : 0;
	memset(&f->fr, 0, sizeof f->fr);
	f->nenv = 0;
	env_add(f, "QUERY_STRING", "");
	env_add(f, "REQUEST_METHOD", method);
	env_add(f, "CONTENT_TYPE", body ? "application/json" : "");
	snprintf(v, sizeof v, "%zu", len);
	env_add(f, "CONTENT_LENGTH", body ? v : "");
	env_add(f, "REQUEST_URI", uri);
	env_add(f, "DOCUMENT_URI", uri);
	env_add(f, "SERVER_PROTOCOL", "HTTP/1.1");
	snprintf(v, sizeof v, "%016llx%08x%08lx", (unsigned long long)now_ns(),
		(unsigned)getpid(), (unsigned long)k->seq);
	env_add(f, "HTTP_X_REQUEST_ID", v);
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	snprintf(v, sizeof v, "%lld.%03ld", (long long)t.tv_sec, t.tv_nsec / 1000000);
	env_add(f, "REMIT_START", v);
	env_add(f, "HTTP_PROXY", "");
	snprintf(f->env[f->nenv], sizeof f->env[0], "HTTP_AUTHORIZATION=Bearer %s", token);
	f->envp[f->nenv] = f->env[f->nenv];
	f->envp[++f->nenv] = NULL;
	if (body)
		env_add(f, "HTTP_CONTENT_TYPE", "application/json");
	if (key)
		env_add(f, "HTTP_IDEMPOTENCY_KEY", key);
	f->in = (FCGX_Stream){ .rdNext = (unsigned char *)body, .stop = (unsigned char *)body + len,
		.stopUnget = (unsigned char *)body, .isReader = 1, .fillBuffProc = in_fill };
	f->in.wrNext = f->in.stop;
	f->out = (FCGX_Stream){ .wrNext = f->out_buf, .stop = f->out_buf + sizeof f->out_buf,
		.emptyBuffProc = out_empty, .data = f->out_buf };
	f->out.rdNext = f->out.stop;
	f->fr.in = &f->in;
	f->fr.out = &f->out;
	f->fr.envp = f->envp;
}

/* The "id" of the object in the response just written ({"data":{"id":"123",...}}). */
static bool response_id(struct conn *k, char *out, size_t cap)
{
	size_t n = (size_t)(k->f.out.wrNext - k->f.out_buf);
	const char *p = memmem(k->f.out_buf, n, "\"id\":\"", 6);
	if (!p)
		return false;
	p += 6;
	size_t len = strcspn(p, "\"");
	if (len == 0 || len >= cap || p + len >= (const char *)k->f.out_buf + n)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/* The flow's next step, as bench/flow.lua: the request, then (after) what it moves to. */
static void flow_request(struct conn *k, char *uri, size_t cap, const char **token,
	const char **body)
{
	const struct org *o = k->org;
	static const char *const paths[] = { "/api/v1/batches", "/api/v1/batches/%s/requests",
		"/api/v1/batches/%s/submit", "/api/v1/requests/%s/approve",
		"/api/v1/requests/%s/mark-paid" };
	snprintf(uri, cap, paths[k->step], k->step < 3 ? k->batch : k->request);
	*token = k->step < 3 ? o->creator : k->step == 3 ? o->approver : o->treasurer;
	snprintf(k->ref, sizeof k->ref, "{\"paymentReference\":\"BENCH-%d-%ld\"}", (int)getpid(),
		k->seq);
	const char *bodies[] = { "{\"name\":\"flow batch\"}", flow_add_body, "{}",
		"{\"comment\":\"ok\"}", k->ref };
	*body = bodies[k->step];
}

static void flow_after(struct conn *k, bool ok)
{
	if (ok && k->step == 0)
		ok = response_id(k, k->batch, sizeof k->batch);
	else if (ok && k->step == 1)
		ok = response_id(k, k->request, sizeof k->request);
	if (ok && k->step == 4)
		atomic_fetch_add(&k->sh->flows, 1);
	k->step = ok && k->step < 4 ? k->step + 1 : 0;
}

/* Serves one request of the scenario; false when the answer was not the expected 2xx. */
static bool one(struct conn *k)
{
	char uri[160], key[200];
	const char *token = k->org->creator, *body = add_body, *method = "POST", *ikey = key;
	k->seq++;
	snprintf(key, sizeof key, "%s-%d-%ld", k->o->tag, (int)getpid(), k->seq);
	if (k->o->sc == SC_ADD) {
		snprintf(uri, sizeof uri, "/api/v1/batches/%s/requests", k->org->batch);
	} else if (k->o->sc == SC_REPLAY) {
		snprintf(uri, sizeof uri, "/api/v1/batches/%s/requests", k->org1->batch);
		token = k->org1->creator;
		ikey = k->o->key;
	} else if (k->o->sc == SC_GET) {
		snprintf(uri, sizeof uri, "/api/v1/requests/%s", k->org1->request);
		token = k->org1->creator;
		method = "GET";
		body = ikey = NULL;
	} else {
		flow_request(k, uri, sizeof uri, &token, &body);
	}
	fake_request(k, method, uri, token, ikey, body);
	int status = worker_serve(&k->c, &k->f.fr);
	bool is2xx = status >= 200 && status <= 299;
	bool ok = is2xx && (k->o->sc != SC_REPLAY || k->c.rs.replayed);
	/* status[0] counts the 2xx of a replay run that were not replays */
	int slot = !ok && is2xx ? 0 : status < 1 ? 1 : status > 599 ? 599 : status;
	atomic_fetch_add(&k->sh->status[slot], 1);
	if (!ok)
		atomic_fetch_add(&k->sh->non2xx, 1);
	if (k->o->sc == SC_FLOW)
		flow_after(k, ok);
	return ok;
}

static void record(struct shared *sh, long long ns)
{
	long us = (long)(ns / 1000);
	long b = us / BUCKET_US;
	atomic_fetch_add(&sh->hist[b < NBUCKETS ? b : NBUCKETS - 1], 1);
	atomic_fetch_add(&sh->requests, 1);
	long max = atomic_load(&sh->max_us);
	while (us > max && !atomic_compare_exchange_weak(&sh->max_us, &max, us))
		;
}

/* One connection: a worker's context, WARMUP requests, then the run. The exit status. */
static int conn_run(const struct config *cfg, struct conn *k, int go_fd)
{
	struct arena arena = { 0 };
	struct db *db = db_new(cfg);
	int rc = 1;
	k->c.a = &arena;
	k->c.db = db;
	k->c.cfg = cfg;
	if (db_connect(db) < 0) {
		fprintf(stderr, "floor: cannot connect to the database: %s\n", db_error(db));
		goto out;
	}
	for (int i = 0; i < WARMUP; i++) {
		one(k);
		atomic_fetch_add(&k->sh->warm, 1);
	}
	atomic_fetch_add(&k->sh->ready, 1);
	char b;
	if (read(go_fd, &b, 1) != 0)   /* EOF: the parent closed it, all start now */
		goto out;
	long long deadline = atomic_load(&k->sh->deadline_ns);
	for (long long t0 = now_ns(); t0 < deadline; t0 = now_ns()) {
		one(k);
		record(k->sh, now_ns() - t0);
	}
	rc = 0;
out:
	if (k->c.rs.gen)
		yajl_gen_free(k->c.rs.gen);
	db_free(db);
	arena_free(&arena);
	return rc;
}

/* The lines of --data; returns how many, or -1. */
static int read_orgs(const char *path, struct org *orgs, int cap)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	if (!f)
		return -1;
	char line[1024];
	while (n < cap && fgets(line, sizeof line, f)) {
		struct org *o = &orgs[n];
		if (sscanf(line, "%*s %127s %127s %127s %31s %31s", o->creator, o->approver,
			    o->treasurer, o->batch, o->request) == 5)
			n++;
	}
	fclose(f);
	return n;
}

static double pct_ms(const struct shared *sh, double p)
{
	long n = atomic_load(&sh->requests), rank = (long)(p / 100 * (double)n + 0.999999), seen = 0;
	for (long b = 0; b < NBUCKETS && n; b++) {
		seen += atomic_load(&sh->hist[b]);
		if (seen >= rank)
			return (double)((b + 1) * BUCKET_US) / 1000;
	}
	return 0;
}

static void report(struct shared *sh, double secs)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
		+ (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	char statuses[1024] = "";
	size_t used = 0;
	for (int s = 0; s < 600 && used < sizeof statuses - 40; s++) {
		long c = atomic_load(&sh->status[s]);
		const char *sep = used ? "," : "";
		if (c && s == 0)
			used += (size_t)snprintf(statuses + used, sizeof statuses - used,
				"%snot-replayed:%ld", sep, c);
		else if (c && (s < 200 || s > 299))
			used += (size_t)snprintf(statuses + used, sizeof statuses - used, "%s%d:%ld",
				sep, s, c);
	}
	long n = atomic_load(&sh->requests);
	printf("FLOOR requests=%ld seconds=%.3f rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
		"non2xx=%ld statuses=%s warmup=%ld flows=%ld cpu_s=%.3f\n", n, secs,
		(double)n / secs, pct_ms(sh, 50), pct_ms(sh, 99),
		(double)atomic_load(&sh->max_us) / 1000, atomic_load(&sh->non2xx),
		used ? statuses : "-", atomic_load(&sh->warm), atomic_load(&sh->flows), cpu);
}

static int usage(void)
{
	fprintf(stderr, "usage: floor --conf FILE --data FILE --scenario add|get|replay|flow "
		"[--conns N] [--duration S] [--key KEY] [--tag TEXT]\n");
	return 2;
}

/* 0, or 2 after the usage. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option all[] = {
		{ "conf", required_argument, NULL, 'c' }, { "data", required_argument, NULL, 'd' },
		{ "scenario", required_argument, NULL, 's' }, { "conns", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 't' }, { "key", required_argument, NULL, 'k' },
		{ "tag", required_argument, NULL, 'g' }, { NULL, 0, NULL, 0 },
	};
	static const char *const names[] = { "add", "get", "replay", "flow" };
	static char tag[64];
	const char *sc = NULL;
	int ch;
	*o = (struct opts){ .conns = 1, .duration = 10, .sc = -1 };
	snprintf(tag, sizeof tag, "floor-%lld", (long long)time(NULL));
	o->tag = tag;
	while ((ch = getopt_long(argc, argv, "", all, NULL)) != -1) {
		if (ch == 'c') o->conf = optarg;
		else if (ch == 'd') o->data = optarg;
		else if (ch == 's') sc = optarg;
		else if (ch == 'n') o->conns = atoi(optarg);
		else if (ch == 't') o->duration = atof(optarg);
		else if (ch == 'k') o->key = optarg;
		else if (ch == 'g') o->tag = optarg;
		else return usage();
	}
	for (int i = 0; sc && i < 4; i++)
		if (strcmp(sc, names[i]) == 0)
			o->sc = (enum scenario)i;
	if (!o->conf || !o->data || (int)o->sc < 0 || o->conns < 1 || o->conns > MAX_CONNS
	    || o->duration <= 0 || (o->sc == SC_REPLAY && !o->key))
		return usage();
	return 0;
}

/* Forks the connections, starts them together once all are warm, waits for them. */
static int run(const struct config *cfg, const struct opts *o, const struct org *orgs,
	struct shared *sh)
{
	int go[2], failed = 0, forked = 0, done = 0, status;
	if (pipe(go) < 0)
		return 1;
	static struct conn k;   /* each process's own after the fork: too large for the stack */
	for (; forked < o->conns; forked++) {
		pid_t pid = fork();
		if (pid < 0) {
			failed = 1;
			break;
		}
		if (pid == 0) {
			close(go[1]);
			k = (struct conn){ .o = o, .org = &orgs[forked], .org1 = &orgs[0], .sh = sh };
			_exit(conn_run(cfg, &k, go[0]));
		}
	}
	close(go[0]);
	/* A process that exits before it is ready failed (its stderr says why). */
	while (!failed && atomic_load(&sh->ready) + done < forked) {
		if (waitpid(-1, &status, WNOHANG) > 0 && ++done)
			failed = 1;
		usleep(2000);
	}
	long long t0 = now_ns();
	atomic_store(&sh->deadline_ns, failed ? 0 : t0 + (long long)(o->duration * 1e9));
	close(go[1]);   /* EOF: every process starts (or, when one failed, stops) */
	for (; done < forked; done++)
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;
	report(sh, (double)(now_ns() - t0) / 1e9);
	return failed || atomic_load(&sh->non2xx) ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct config cfg;
	static struct org orgs[MAX_CONNS];
	if (parse_opts(argc, argv, &o))
		return 2;
	if (config_load(&cfg, o.conf) < 0)
		return 2;
	int n = read_orgs(o.data, orgs, MAX_CONNS);
	if (n < (o.sc == SC_ADD || o.sc == SC_FLOW ? o.conns : 1)) {
		fprintf(stderr, "floor: %s has %d usable lines, %d needed\n", o.data, n < 0 ? 0 : n,
			o.conns);
		return 2;
	}
	/* As remit serve does before it forks its workers. */
	log_set_level(cfg.log_level);
	if (password_init() < 0 || mysql_library_init(0, NULL, NULL) != 0)
		return 1;
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
		MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	fflush(stdout);
	return run(&cfg, &o, orgs, sh);
}
