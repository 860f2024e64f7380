/* The transport ceiling for bench/run: a FastCGI "hello" with remit's pool shape and nothing
 * else. A master opens the unix socket, forks N single-threaded workers that wait on it with
 * an EPOLLEXCLUSIVE epoll each and accept without blocking (as src/worker.c does), and each
 * answers every request with a
 * small JSON body and the headers remit sends. No database, no parsing, no logging.
 *
 *   hello --config FILE serve     (reads listen, listen_mode, listen_group and workers from
 *                                  remit.conf)
 *
 * It takes remit's command line so that Remit::Stack can start it in place of src/remit,
 * behind the very same nginx configuration. SIGTERM stops the master and its workers.
 *
 *   cc -O2 -o bench/hello bench/hello.c -lfcgi
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

struct conf {
	char listen[512];
	char group[512];
	unsigned mode;
	int workers;
};

static int read_conf(const char *path, struct conf *c)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[1024];
	c->mode = 0666;
	c->workers = 4;
	c->listen[0] = '\0';
	c->group[0] = '\0';
	while (fgets(line, sizeof line, f)) {
		char key[64], val[512];
		if (line[0] == '#' || sscanf(line, " %63[a-z_] = %511[^\n]", key, val) != 2)
			continue;
		if (strcmp(key, "listen") == 0)
			snprintf(c->listen, sizeof c->listen, "%s", val);
		else if (strcmp(key, "listen_mode") == 0)
			c->mode = (unsigned)strtoul(val, NULL, 8);
		else if (strcmp(key, "listen_group") == 0)
			snprintf(c->group, sizeof c->group, "%s", val);
		else if (strcmp(key, "workers") == 0)
			c->workers = atoi(val);
	}
	fclose(f);
	return c->listen[0] ? 0 : -1;
}

static void worker(int fd)
{
	static const char body[] = "{\"data\":{\"hello\":\"world\"}}";
	sigset_t wait_mask;
	sigprocmask(SIG_SETMASK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);
	FCGX_Request fr;
	FCGX_InitRequest(&fr, fd, 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		_exit(1);
	pid_t parent = getppid();
	while (!stopping && getppid() == parent) {
		struct epoll_event ready;
		if (epoll_pwait(ep, &ready, 1, 1000, &wait_mask) <= 0)
			continue;
		if (FCGX_Accept_r(&fr) < 0)
			continue;
		const char *rid = FCGX_GetParam("HTTP_X_REQUEST_ID", fr.envp);
		FCGX_FPrintF(fr.out, "Status: 200 OK\r\nX-Request-Id: %s\r\n"
			"Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n%s",
			rid ? rid : "-", body);
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
}

int main(int argc, char **argv)
{
	struct conf cf;
	if (argc != 4 || strcmp(argv[1], "--config") != 0 || strcmp(argv[3], "serve") != 0 ||
	    read_conf(argv[2], &cf) < 0) {
		fprintf(stderr, "usage: hello --config FILE serve (FILE names `listen`)\n");
		return 2;
	}
	if (cf.workers < 1 || cf.workers > MAX_WORKERS)
		cf.workers = 4;
	if (FCGX_Init() != 0)
		return 1;
	unlink(cf.listen);
	int fd = FCGX_OpenSocket(cf.listen, 1024);
	if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    chmod(cf.listen, cf.mode) < 0) {
		fprintf(stderr, "hello: cannot listen on %s: %s\n", cf.listen, strerror(errno));
		return 1;
	}
	struct group *g = cf.group[0] ? getgrnam(cf.group) : NULL;
	if (cf.group[0] && (!g || chown(cf.listen, (uid_t)-1, g->gr_gid) < 0)) {
		fprintf(stderr, "hello: socket group %s: %s\n", cf.group, g ? strerror(errno) : "unknown");
		return 1;
	}
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pid_t pids[MAX_WORKERS];
	for (int i = 0; i < cf.workers; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			worker(fd);
			_exit(0);
		}
	}
	sigset_t empty;
	sigemptyset(&empty);
	while (!stopping) {
		struct timespec tick = { 1, 0 };
		ppoll(NULL, 0, &tick, &empty);
	}
	unlink(cf.listen);
	for (int i = 0; i < cf.workers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}
