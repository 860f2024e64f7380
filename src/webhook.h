/* One webhook delivery over HTTP (API §12): the URL rule, the secret, the Standard Webhooks
 * signature, the destination check and the POST itself (libcurl). No database here. */
#ifndef REMIT_WEBHOOK_H
#define REMIT_WEBHOOK_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_SECRET_LEN 50      /* "whsec_" + base64 of 32 bytes (44) */
#define WEBHOOK_SIG_LEN 48         /* "v1," + base64 of 32 bytes (44) + NUL */
#define WEBHOOK_BODY_CAP 4096      /* bytes of a receiver's answer read, the rest dropped */

/* NULL when `url` may be an endpoint (absolute, http(s), a host, no user:password), else why
 * not, for the 400's details. `allow_http` is the configuration's webhook_allow_http. */
const char *webhook_url_problem(const char *url, bool allow_http);

/* A fresh secret: "whsec_" + base64 of 32 random bytes, NUL-terminated. */
void webhook_secret_new(char out[WEBHOOK_SECRET_LEN + 1]);

/* "v1,<base64 HMAC-SHA256 of "<id>.<ts>.<body>">", keyed with the bytes the secret's
 * base64 after "whsec_" decodes to. 0, or -1 for a secret that does not decode. */
int webhook_sign(const char *secret, const char *id, long long ts, const char *body,
	size_t len, char out[WEBHOOK_SIG_LEN]);

/* True for an address a webhook may not reach unless webhook_allow_private: loopback,
 * private (RFC 1918, unique local), link-local, multicast, unspecified, CGNAT. */
bool webhook_addr_refused(const struct sockaddr *sa);

struct webhook_result {
	long status;            /* the HTTP status received, 0 when none came */
	char error[200];        /* "" when a 2xx came */
	long duration_ms;
};

/* POSTs `body` to `url` signed for event `id`, once: no redirects, the configured timeout,
 * the destination checked on the address actually connected. Fills *res. */
void webhook_post(const struct config *cfg, const char *url, const char *secret,
	const char *id, const char *body, size_t len, struct webhook_result *res);

/* curl_global_init, once per process, before any thread or fork that posts. */
int webhook_global_init(void);
/* Frees what webhook_post keeps between posts (its handle, with its open connections). */
void webhook_global_cleanup(void);

/* The wait after the n-th failure in a row (API §12): 5 s, 30 s, 2 min, 10 min, 1 h, then
 * 6 h; webhooks and mail alike. */
long long webhook_retry_after_ms(long long failures);

#endif
