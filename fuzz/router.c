/* libFuzzer target for router_match (src/router.c). The input is "METHOD\nPATH" (no newline:
 * all of it is the path, with GET); each is cut at a NUL, as FastCGI params are C strings, and
 * copied to a buffer of its own size so a read past either end is caught. Checked: a match's
 * parameters are non-empty segments inside the path, in order; the Allow list is written only
 * for -2, never names the method asked for, and each method it names does match; an unknown
 * path (-1) is unknown whatever the method; and a small allow buffer is never overrun. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" };
#define NMETHODS (sizeof methods / sizeof *methods)

static char *cstr(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n);
	n = nul ? (size_t)(nul - p) : n;
	char *s = malloc(n + 1);
	assert(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int match(const char *method, const char *path, const char *params[MAX_PATH_PARAMS],
	char *allow, size_t cap)
{
	for (int i = 0; i < MAX_PATH_PARAMS; i++)
		params[i] = NULL;
	memset(allow, 'x', cap);
	return router_match(method, path, params, allow, cap);
}

static void check_params(const char *path, const char *params[MAX_PATH_PARAMS])
{
	const char *end = path + strlen(path), *prev = path;
	for (int i = 0; i < MAX_PATH_PARAMS && params[i]; i++) {
		assert(params[i] > prev && params[i] < end);
		assert(params[i][-1] == '/');
		size_t n = strcspn(params[i], "/");
		assert(n > 0);
		prev = params[i] + n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *method = nl ? cstr(data, (size_t)(nl - data)) : cstr((const uint8_t *)"GET", 3);
	char *path = nl ? cstr(nl + 1, size - (size_t)(nl - data) - 1) : cstr(data, size);
	const char *params[MAX_PATH_PARAMS];
	char allow[64];   /* router_serve's size */

	int rc = match(method, path, params, allow, sizeof allow);
	assert(rc >= -2);
	assert(memchr(allow, '\0', sizeof allow));
	if (rc != -2)
		assert(allow[0] == '\0');
	if (rc >= 0)
		check_params(path, params);

	if (rc == -2) {
		assert(allow[0] != '\0');
		char *list = strdup(allow), *save = NULL;
		assert(list);
		for (char *m = strtok_r(list, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
			assert(strcmp(m, method) != 0);
			const char *p2[MAX_PATH_PARAMS];
			char a2[64];
			int k = match(m, path, p2, a2, sizeof a2);
			assert(k >= 0 && a2[0] == '\0');
			check_params(path, p2);
		}
		free(list);
	}
	/* Whether the path is known does not depend on the method. */
	for (size_t i = 0; i < NMETHODS; i++) {
		const char *p2[MAX_PATH_PARAMS];
		char a2[64];
		int k = match(methods[i], path, p2, a2, sizeof a2);
		assert((k == -1) == (rc == -1));
	}
	/* A short buffer truncates the list but stays within its bounds and terminated. */
	size_t cap = 1 + (size ? data[size - 1] % 16 : 0);
	char *small = malloc(cap);
	assert(small);
	int k = match(method, path, params, small, cap);
	assert(k == rc && memchr(small, '\0', cap));
	free(small);

	free(method);
	free(path);
	return 0;
}
