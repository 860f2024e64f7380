#include "webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SECRET_PREFIX "whsec_"
#define SECRET_BYTES 32

const char *webhook_url_problem(const char *url, bool allow_http)
{
	const char *why = NULL;
	char *scheme = NULL, *host = NULL, *user = NULL;
	CURLU *u = curl_url();
	if (!u)
		return "cannot be checked";
	if (strlen(url) > WEBHOOK_URL_MAX || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		why = "must be an absolute URL";
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		 (strcmp(scheme, "https") != 0 && (!allow_http || strcmp(scheme, "http") != 0)))
		why = allow_http ? "must be an http:// or https:// URL" : "must be an https:// URL";
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
		why = "must name a host";
	else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		why = "must not carry a user name or password";
	/* curl accepts what it would fix up (spaces, a missing "//"): only what it reads back
	 * unchanged is stored, so the endpoint shown is the one called. */
	else if (strncmp(url, scheme, strlen(scheme)) || strncmp(url + strlen(scheme), "://", 3) ||
		 strpbrk(url, " \t\r\n\"<>\\^`{|}"))
		why = "must be an absolute URL";
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return why;
}

void webhook_secret_new(char out[WEBHOOK_SECRET_LEN + 1])
{
	unsigned char raw[SECRET_BYTES];
	if (RAND_bytes(raw, sizeof raw) != 1)
		abort();   /* no randomness: never mint a guessable secret */
	strcpy(out, SECRET_PREFIX);
	EVP_EncodeBlock((unsigned char *)out + strlen(SECRET_PREFIX), raw, sizeof raw);
}

int webhook_sign(const char *secret, const char *id, long long ts, const char *body,
	size_t len, char out[WEBHOOK_SIG_LEN])
{
	size_t plen = strlen(SECRET_PREFIX);
	const char *b64 = secret + plen;
	size_t blen = strlen(b64);
	unsigned char key[(WEBHOOK_SECRET_LEN / 4 + 1) * 3], mac[EVP_MAX_MD_SIZE];
	if (strncmp(secret, SECRET_PREFIX, plen) || blen == 0 || blen % 4 || blen / 4 * 3 > sizeof key)
		return -1;
	int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)blen);
	if (klen < 0)
		return -1;
	klen -= (b64[blen - 1] == '=') + (b64[blen - 2] == '=');   /* DecodeBlock keeps padding */
	/* "<id>.<ts>.<body>": the body is signed as sent, byte for byte. */
	char head[64];
	int hlen = snprintf(head, sizeof head, "%s.%lld.", id, ts);
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *mc = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;
	int rc = mc && EVP_MAC_init(mc, key, (size_t)klen, params) &&
		EVP_MAC_update(mc, (const unsigned char *)head, (size_t)hlen) &&
		EVP_MAC_update(mc, (const unsigned char *)body, len) &&
		EVP_MAC_final(mc, mac, &outl, sizeof mac) ? 0 : -1;
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	if (rc == 0) {
		memcpy(out, "v1,", 3);
		EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)outl);
	}
	return rc;
}

static bool v4_refused(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
		(a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
		(a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) ||
		(a >> 28) == 14 || a == 0xffffffffu;
}

bool webhook_addr_refused(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_refused(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return true;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
		uint32_t v4;
		memcpy(&v4, a->s6_addr + 12, 4);
		return v4_refused(ntohl(v4));
	}
	return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
		IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) || (a->s6_addr[0] & 0xfe) == 0xfc;
}

struct post {
	const struct config *cfg;
	bool refused;          /* the open-socket callback refused the address */
	size_t got;            /* bytes of the answer read */
};

/* Called with the address curl is about to connect to, after name resolution: the check
 * is on what is connected, so a name that resolves differently later changes nothing. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct post *p = arg;
	(void)purpose;
	if (!p->cfg->webhook_allow_private && webhook_addr_refused(&addr->addr)) {
		p->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

/* The answer matters only for its status: read up to WEBHOOK_BODY_CAP, then stop. */
static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	struct post *p = arg;
	(void)data;
	p->got += size * n;
	return p->got > WEBHOOK_BODY_CAP ? 0 : size * n;
}

static struct curl_slist *headers_for(const char *id, long long ts, const char *sig)
{
	char line[160];
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof line, "webhook-id: %s", id);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof line, "webhook-signature: %s", sig);
	h = curl_slist_append(h, line);
	return curl_slist_append(h, "Expect:");   /* no 100-continue round trip */
}

static void set_options(CURL *k, const struct config *cfg, struct post *p, const char *url,
	const char *body, size_t len, struct curl_slist *h)
{
	curl_easy_setopt(k, CURLOPT_URL, url);
	curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, cfg->webhook_allow_http ? "http,https" : "https");
	curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k, CURLOPT_PROXY, "");          /* never a proxy from the environment */
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, (long)cfg->webhook_timeout_ms);
	curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(k, CURLOPT_USERAGENT, "remit-webhooks/1");
	curl_easy_setopt(k, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(k, CURLOPT_OPENSOCKETDATA, p);
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, p);
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* One handle for the process's posts, reset between them: its connection cache keeps the
 * connection to a receiver open from one event to the next (a new TCP, and for https TLS,
 * handshake an event was most of the deliverer's work). A kept connection was checked by
 * open_socket when it was made; the options, the timeout and the body limit are set
 * afresh for every post. NULL when curl cannot make one. */
static CURL *handle;

static CURL *reused(void)
{
	if (handle)
		curl_easy_reset(handle);
	else
		handle = curl_easy_init();
	return handle;
}

void webhook_post(const struct config *cfg, const char *url, const char *secret,
	const char *id, const char *body, size_t len, struct webhook_result *res)
{
	struct post p = { .cfg = cfg };
	char sig[WEBHOOK_SIG_LEN];
	long long ts = (long long)time(NULL);
	long start = now_ms();
	memset(res, 0, sizeof *res);
	if (webhook_sign(secret, id, ts, body, len, sig) < 0) {
		snprintf(res->error, sizeof res->error, "the endpoint's secret is unusable");
		return;
	}
	CURL *k = reused();
	struct curl_slist *h = headers_for(id, ts, sig);
	CURLcode rc = CURLE_FAILED_INIT;
	if (k && h) {
		set_options(k, cfg, &p, url, body, len, h);
		rc = curl_easy_perform(k);
		curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &res->status);
	}
	res->duration_ms = now_ms() - start;
	if (p.refused)
		snprintf(res->error, sizeof res->error,
			"destination refused: a loopback, private, link-local or multicast address");
	else if (res->status >= 200 && res->status < 300)
		res->error[0] = '\0';   /* a 2xx is enough, however much of the answer was read */
	else if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR)
		snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
	else
		snprintf(res->error, sizeof res->error, "HTTP %ld", res->status);
	curl_slist_free_all(h);
}

int webhook_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void webhook_global_cleanup(void)
{
	if (handle)
		curl_easy_cleanup(handle);
	handle = NULL;
	curl_global_cleanup();
}

long long webhook_retry_after_ms(long long failures)
{
	static const long long schedule[] = { 5000, 30000, 120000, 600000, 3600000, 21600000 };
	size_t n = sizeof schedule / sizeof *schedule;
	return schedule[failures < 1 ? 0 : (size_t)failures > n ? n - 1 : (size_t)failures - 1];
}
