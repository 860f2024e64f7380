#include "pool.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <grp.h>
#include <mysql.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

#define MAX_WORKERS 1024
#define DRAIN_TIMEOUT 30   /* seconds before a draining worker is killed */

/* A dead worker is replaced at once: it was killed, or crashed on one request, and the slot
 * is as good as before. Only a slot whose workers keep dying right after they start (a
 * crash on start: bad config, a broken library) is held back, and only that slot, so the
 * master does not turn into a fork loop while the other slots serve. */
#define QUICK_DEATH_MS 1000        /* a death this soon after the start counts as quick */
#define QUICK_DEATHS_TOLERATED 2   /* respawned at once up to here; backoff after */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define EMPTY_POOL_MAX_MS 1000     /* no slot waits longer while no worker runs at all */

struct slot {
	pid_t pid;
	pid_t retiring;        /* the worker this slot's new one replaces (SIGHUP) */
	long long started;     /* ms on the monotonic clock */
	int quick_deaths;      /* in a row, for the respawn backoff */
	long long respawn_at;  /* ms on the monotonic clock */
};

static volatile sig_atomic_t got_term, got_hup, got_chld;

static void on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		got_term = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
}

static void install(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static pid_t spawn(const struct config *cfg, int listen_fd, int index)
{
	pid_t pid = fork();
	if (pid < 0) {
		log_write(LOG_ERROR, "fork failed", "\"errno\":%d", errno);
		return -1;
	}
	if (pid == 0) {
		install(SIGCHLD, SIG_DFL);
		install(SIGHUP, SIG_IGN);
		install(SIGINT, SIG_IGN);   /* a terminal's ^C reaches the master, which drains */
		_exit(worker_run(cfg, listen_fd, index));
	}
	log_write(LOG_INFO, "worker started", "\"worker\":%d,\"slot\":%d", (int)pid, index);
	return pid;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When the slot's dead worker may be replaced: now, unless its workers keep dying on start. */
static void schedule_respawn(struct slot *s, int index)
{
	long long now = now_ms();
	s->quick_deaths = now - s->started < QUICK_DEATH_MS ? s->quick_deaths + 1 : 0;
	if (s->quick_deaths <= QUICK_DEATHS_TOLERATED) {
		s->respawn_at = now;
		return;
	}
	int k = s->quick_deaths - QUICK_DEATHS_TOLERATED - 1;
	long long delay = (long long)BACKOFF_MIN_MS << (k < 10 ? k : 10);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	s->respawn_at = now + delay;
	log_write(LOG_WARN, "worker dies on start; respawn delayed",
		"\"slot\":%d,\"quick_deaths\":%d,\"delay_ms\":%lld", index, s->quick_deaths, delay);
}

static struct slot *slot_of(struct slot *slots, int n, pid_t pid, bool *retired)
{
	for (int i = 0; i < n; i++) {
		if (slots[i].pid == pid) {
			*retired = false;
			return &slots[i];
		}
		if (slots[i].retiring == pid) {
			*retired = true;
			return &slots[i];
		}
	}
	return NULL;
}

static void reap(struct slot *slots, int n, bool stopping)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		bool retired = false;
		struct slot *s = slot_of(slots, n, pid, &retired);
		if (WIFSIGNALED(status))
			log_write(stopping || retired ? LOG_INFO : LOG_WARN, "worker exited",
				"\"worker\":%d,\"signal\":%d", (int)pid, WTERMSIG(status));
		else
			log_write(stopping || retired ? LOG_INFO : LOG_WARN, "worker exited",
				"\"worker\":%d,\"status\":%d", (int)pid, WEXITSTATUS(status));
		if (!s)
			continue;
		if (retired) {
			s->retiring = 0;
			continue;
		}
		s->pid = 0;
		if (!stopping)
			schedule_respawn(s, (int)(s - slots));
	}
}

static int live(const struct slot *slots, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += (slots[i].pid > 0) + (slots[i].retiring > 0);
	return k;
}

/* The socket's group: nginx's, so mode 0660 lets its workers in and nobody else. */
static int socket_group(const struct config *cfg)
{
	if (!cfg->listen_group[0])
		return 0;
	struct group *g = getgrnam(cfg->listen_group);
	if (!g || chown(cfg->listen, (uid_t)-1, g->gr_gid) < 0) {
		fprintf(stderr, "remit: socket group %s: %s\n", cfg->listen_group,
			g ? strerror(errno) : "no such group");
		return -1;
	}
	return 0;
}

static int open_socket(const struct config *cfg)
{
	unlink(cfg->listen);   /* a stale socket of a previous run */
	int fd = FCGX_OpenSocket(cfg->listen, 1024);
	if (fd < 0) {
		fprintf(stderr, "remit: cannot listen on %s: %s\n", cfg->listen, strerror(errno));
		return -1;
	}
	/* Workers poll and accept without blocking, so an idle one never sleeps in accept(). */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    chmod(cfg->listen, cfg->listen_mode) < 0) {
		fprintf(stderr, "remit: chmod %s: %s\n", cfg->listen, strerror(errno));
		close(fd);
		return -1;
	}
	if (socket_group(cfg) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Starts a worker in every empty slot that is due; returns the ms until the next one is
 * (at most 1000: the master also wakes for signals). While no worker runs at all, no slot
 * waits longer than EMPTY_POOL_MAX_MS, so a crash loop never leaves the pool empty long. */
static int respawn_due(const struct config *cfg, int fd, struct slot *slots, int n)
{
	long long now = now_ms(), wait = 1000;
	bool empty = true;
	for (int i = 0; i < n && empty; i++)
		empty = slots[i].pid <= 0;
	for (int i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		if (s->pid > 0)
			continue;
		if (empty && s->respawn_at > now + EMPTY_POOL_MAX_MS)
			s->respawn_at = now + EMPTY_POOL_MAX_MS;
		if (s->respawn_at <= now) {
			s->started = now;
			s->pid = spawn(cfg, fd, i);
			if (s->pid > 0)
				continue;
			s->pid = 0;
			s->respawn_at = now + 1000;   /* fork failed: the machine is short of something */
		}
		if (s->respawn_at - now < wait)
			wait = s->respawn_at - now;
	}
	return (int)wait;
}

/* SIGHUP: each worker drains (finishes the request in hand) while its successor starts. */
static void replace_all(struct slot *slots, int n)
{
	log_write(LOG_INFO, "replacing workers", NULL);
	for (int i = 0; i < n; i++) {
		if (slots[i].pid <= 0 || slots[i].retiring)
			continue;
		slots[i].retiring = slots[i].pid;
		kill(slots[i].pid, SIGTERM);
		slots[i].pid = 0;
		slots[i].respawn_at = 0;
		slots[i].quick_deaths = 0;
	}
}

/* Signals are blocked except inside ppoll, so none is lost between checks. */
static void block_signals(sigset_t *empty)
{
	sigset_t block;
	sigemptyset(empty);
	sigemptyset(&block);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, NULL);
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		install(sigs[i], on_signal);
}

/* Unlinked before the workers are told: from now on nginx's connect() fails at once (a clean
 * 502), and the accept queue only shrinks. Each worker serves what is queued before it stops
 * (ppoll reports a ready socket ahead of the pending SIGTERM), so the drain ends even under
 * load, and no request is left in the queue when the socket is closed. */
static void drain(const struct config *cfg, struct slot *slots, int n, const sigset_t *empty)
{
	log_write(LOG_INFO, "draining", NULL);
	unlink(cfg->listen);
	for (int i = 0; i < n; i++) {
		if (slots[i].pid > 0)
			kill(slots[i].pid, SIGTERM);
		if (slots[i].retiring > 0)
			kill(slots[i].retiring, SIGTERM);
	}
	time_t deadline = time(NULL) + DRAIN_TIMEOUT;
	while (live(slots, n) > 0) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		ppoll(NULL, 0, &tick, empty);
		reap(slots, n, true);
		if (time(NULL) > deadline) {
			for (int i = 0; i < n; i++)
				if (slots[i].pid > 0)
					kill(slots[i].pid, SIGKILL);
			deadline = time(NULL) + 5;
		}
	}
}

int pool_run(const struct config *cfg)
{
	if (FCGX_Init() != 0 || mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "remit: library initialisation failed\n");
		return 1;
	}
	int fd = open_socket(cfg);
	if (fd < 0)
		return 1;
	int n = cfg->workers < MAX_WORKERS ? cfg->workers : MAX_WORKERS;
	if (metrics_init(n) < 0)   /* shared with the workers forked below */
		log_write(LOG_WARN, "no shared memory for /metrics", NULL);
	struct slot *slots = calloc((size_t)n, sizeof *slots);
	if (!slots)
		abort();
	sigset_t empty;
	block_signals(&empty);
	log_write(LOG_INFO, "pool started", "\"workers\":%d", n);

	while (!got_term) {
		int wait = respawn_due(cfg, fd, slots, n);
		struct timespec tick = { wait / 1000, (long)(wait % 1000) * 1000000 };
		ppoll(NULL, 0, &tick, &empty);
		if (got_chld) {
			got_chld = 0;
			reap(slots, n, false);
		}
		if (got_hup) {
			got_hup = 0;
			replace_all(slots, n);
		}
	}
	drain(cfg, slots, n, &empty);
	close(fd);   /* not unlinked again: the path may belong to a newer pool by now */
	free(slots);
	mysql_library_end();
	log_write(LOG_INFO, "pool stopped", NULL);
	return 0;
}
