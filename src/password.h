/* Passwords (API §7): Argon2id through libsodium's crypto_pwhash_str, never hand-made. The
 * cost (opslimit, memlimit) comes from the config; the hash text records its own, so a change
 * of settings keeps old hashes verifiable. */
#ifndef REMIT_PASSWORD_H
#define REMIT_PASSWORD_H
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

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

/* True when `hash` was made with another cost than the configured one: a sign-in that
 * verified it stores a new hash of the password. */
bool password_needs_rehash(const struct config *cfg, const char *hash);

#endif
