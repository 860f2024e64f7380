/* SHA-256 (OpenSSL's libcrypto) and hex. */
#ifndef REMIT_HASH_H
#define REMIT_HASH_H
#include <stddef.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);
void hex_encode(const unsigned char *in, size_t n, char *out);   /* out: 2n + 1 bytes */

#endif
