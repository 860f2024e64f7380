#include "pool.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
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
#include "worker.h"

#define MAX_WORKERS 1024
#define DRAIN_TIMEOUT 30   /* seconds before a draining worker is killed */

struct slot {
	pid_t pid;
	pid_t retiring;        /* the worker this slot's new one replaces (SIGHUP) */
	time_t started;
	int failures;          /* quick deaths in a row, for the respawn backoff */
	time_t respawn_at;
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
		if (stopping)
			continue;
		/* A worker that dies soon after starting is respawned with a growing delay, so a
		 * broken configuration does not turn into a fork loop. */
		time_t now = time(NULL);
		s->failures = now - s->started < 2 ? s->failures + 1 : 0;
		int delay = s->failures ? 1 << (s->failures < 5 ? s->failures : 5) : 0;
		s->respawn_at = now + (delay > 30 ? 30 : delay);
	}
}

static int live(const struct slot *slots, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += (slots[i].pid > 0) + (slots[i].retiring > 0);
	return k;
}

/* The kernel silently caps a listen backlog at net.core.somaxconn: a queue smaller than
 * nginx's in-flight limit would make nginx answer 502 (EAGAIN on connect) instead of the
 * queue absorbing the burst. Say so at start rather than under load. */
static void warn_somaxconn(int backlog)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	long max = 0;
	if (!f)
		return;
	if (fscanf(f, "%ld", &max) == 1 && max < backlog)
		log_write(LOG_WARN, "listen backlog capped by net.core.somaxconn",
			"\"listen_backlog\":%d,\"somaxconn\":%ld", backlog, max);
	fclose(f);
}

static int open_socket(const struct config *cfg)
{
	unlink(cfg->listen);   /* a stale socket of a previous run */
	warn_somaxconn(cfg->listen_backlog);
	int fd = FCGX_OpenSocket(cfg->listen, cfg->listen_backlog);
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
	return fd;
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
	struct slot *slots = calloc((size_t)n, sizeof *slots);
	if (!slots)
		abort();
	sigset_t block, empty;
	sigemptyset(&empty);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);
	install(SIGTERM, on_signal);
	install(SIGINT, on_signal);
	install(SIGHUP, on_signal);
	install(SIGCHLD, on_signal);
	log_write(LOG_INFO, "pool started", "\"workers\":%d", n);

	while (!got_term) {
		time_t now = time(NULL);
		for (int i = 0; i < n; i++) {
			if (slots[i].pid == 0 && slots[i].respawn_at <= now) {
				slots[i].started = now;
				slots[i].pid = spawn(cfg, fd, i);
				if (slots[i].pid < 0) {
					slots[i].pid = 0;
					slots[i].respawn_at = now + 1;
				}
			}
		}
		/* Signals are blocked except inside ppoll, so none is lost between checks. */
		struct timespec tick = { 1, 0 };
		ppoll(NULL, 0, &tick, &empty);
		if (got_chld) {
			got_chld = 0;
			reap(slots, n, false);
		}
		if (got_hup) {
			got_hup = 0;
			log_write(LOG_INFO, "replacing workers", NULL);
			for (int i = 0; i < n; i++) {
				if (slots[i].pid <= 0 || slots[i].retiring)
					continue;
				slots[i].retiring = slots[i].pid;
				kill(slots[i].pid, SIGTERM);   /* drains: finishes the request in hand */
				slots[i].pid = 0;
				slots[i].respawn_at = 0;
				slots[i].failures = 0;
			}
		}
	}

	log_write(LOG_INFO, "draining", NULL);
	/* Unlinked before the workers are told: from now on nginx's connect() fails at once (a
	 * clean 502), and the accept queue only shrinks. Each worker serves what is queued before
	 * it stops (ppoll reports a ready socket ahead of the pending SIGTERM), so the drain ends
	 * even under load, and no request is left in the queue when the socket is closed. */
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
		ppoll(NULL, 0, &tick, &empty);
		reap(slots, n, true);
		if (time(NULL) > deadline) {
			for (int i = 0; i < n; i++)
				if (slots[i].pid > 0)
					kill(slots[i].pid, SIGKILL);
			deadline = time(NULL) + 5;
		}
	}
	close(fd);   /* not unlinked again: the path may belong to a newer pool by now */
	free(slots);
	mysql_library_end();
	log_write(LOG_INFO, "pool stopped", NULL);
	return 0;
}
