#include "password.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/sem.h>
#include <unistd.h>

#include "log.h"

int password_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int password_hash(const struct config *cfg, const char *pw, size_t len,
	char out[PASSWORD_HASH_MAX])
{
	return crypto_pwhash_str(out, pw, len, cfg->pw_opslimit, (size_t)cfg->pw_memlimit) == 0
		? 0 : -1;
}

/* The dummy hash: of a random password nobody knows, with the configured cost, so verifying
 * against it costs what verifying against a real user's hash does. Made by the master before
 * it forks (password_prepare), else on a process's first need. */
static const char *dummy_hash(const struct config *cfg)
{
	static char dummy[PASSWORD_HASH_MAX];
	if (!dummy[0]) {
		unsigned char pw[32];
		randombytes_buf(pw, sizeof pw);
		if (crypto_pwhash_str(dummy, (const char *)pw, sizeof pw, cfg->pw_opslimit,
				(size_t)cfg->pw_memlimit) != 0) {
			dummy[0] = '\0';
			return NULL;
		}
	}
	return dummy;
}

int password_prepare(const struct config *cfg)
{
	return dummy_hash(cfg) ? 0 : -1;
}

bool password_verify(const struct config *cfg, const char *hash, const char *pw, size_t len)
{
	if (hash)
		return crypto_pwhash_str_verify(hash, pw, len) == 0;
	const char *d = dummy_hash(cfg);
	if (!d || crypto_pwhash_str_verify(d, pw, len) == 0)
		log_write(LOG_WARN, "dummy password hash unavailable or matched", "\"ok\":false");
	return false;
}

bool password_needs_rehash(const struct config *cfg, const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, cfg->pw_opslimit, (size_t)cfg->pw_memlimit) != 0;
}

static int slots = -1;   /* the semaphore's id; -1: no bound (the command-line operations) */

int password_slots_init(int n)
{
	union semun {   /* semctl(2): the caller defines it */
		int val;
		struct semid_ds *buf;
		unsigned short *array;
	} arg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	arg.val = n > 0 ? n : cpus > 0 ? (int)cpus : 1;
	int id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (id < 0)
		return -1;
	if (semctl(id, 0, SETVAL, arg) < 0) {
		semctl(id, 0, IPC_RMID);
		return -1;
	}
	slots = id;
	return 0;
}

void password_slots_free(void)
{
	if (slots >= 0)
		semctl(slots, 0, IPC_RMID);
	slots = -1;
}

bool password_slot_take(void)
{
	struct sembuf op = { 0, -1, IPC_NOWAIT | SEM_UNDO };
	if (slots < 0)
		return true;
	while (semop(slots, &op, 1) < 0)
		if (errno != EINTR)
			return false;
	return true;
}

void password_slot_give(void)
{
	struct sembuf op = { 0, 1, SEM_UNDO };
	if (slots >= 0)
		while (semop(slots, &op, 1) < 0 && errno == EINTR)
			;
}
