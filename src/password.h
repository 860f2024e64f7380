/* Passwords (API §7): Argon2id through libsodium's crypto_pwhash_str, never hand-made. The
 * cost (opslimit, memlimit) comes from the config; the hash text records its own, so a change
 * of settings keeps old hashes verifiable. */
#ifndef REMIT_PASSWORD_H
#define REMIT_PASSWORD_H
#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define PASSWORD_HASH_MAX 128   /* crypto_pwhash_STRBYTES */

/* libsodium's one-time initialisation; call before forking workers. 0 or -1. */
int password_init(void);

/* Makes the dummy hash password_verify uses for a NULL hash, once: `remit serve` calls it
 * before forking, so every worker has it and even a worker's first failed sign-in costs
 * exactly one hash. 0, or -1 when the memory could not be had. */
int password_prepare(const struct config *cfg);

/* Hashes `pw` into `out` (a NUL-terminated "$argon2id$..." string). 0, or -1 when the
 * memory could not be had. */
int password_hash(const struct config *cfg, const char *pw, size_t len,
	char out[PASSWORD_HASH_MAX]);

/* True when `pw` matches `hash`. A NULL hash (unknown user, inactive user, no password yet)
 * is checked against a dummy hash of the configured cost, so that every way to fail costs
 * the same time, and is always false. */
bool password_verify(const struct config *cfg, const char *hash, const char *pw, size_t len);

/* The bound on hashes at once (issue 23: a flood of sign-ins with made-up e-mails, each one
 * Argon2id, slowed everyone). A SysV semaphore of `n` slots (0: one per CPU) shared by the
 * master's workers; SEM_UNDO gives back the slot of a worker that dies holding it. The master
 * calls password_slots_init before forking, password_slots_free when it exits. 0 or -1. */
int password_slots_init(int n);
void password_slots_free(void);

/* Takes a slot without waiting: false when all are in use (answer 503 with Retry-After, no
 * hash run). Every true is followed by one password_slot_give. */
bool password_slot_take(void);
void password_slot_give(void);

/* True when `hash` was made with another cost than the configured one: a sign-in that
 * verified it stores a new hash of the password. */
bool password_needs_rehash(const struct config *cfg, const char *hash);

#endif
