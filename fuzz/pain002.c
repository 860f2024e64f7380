/* libFuzzer target for src/pain002.c (the bank's status reports, API §9): any bytes are read
 * or refused, never more; what is read is valid UTF-8 with no control character but white
 * space, each count matches its array, a reason flagged proprietary (Rsn/Prtry) is one that
 * was read, and a second read of the same bytes gives the same report (libxml2 keeps no
 * state between documents that changes the answer). */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "pain002.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	if (s)
		assert(utf8_count(s, strlen(s)) >= 0);
}

static void same(const char *x, const char *y)
{
	assert((x == NULL) == (y == NULL));
	assert(!x || strcmp(x, y) == 0);
}

/* A reason and its flag, read twice. */
static void same_reason(const char *x, bool xp, const char *y, bool yp)
{
	check_text(x);
	assert(!xp || x);
	assert(xp == yp);
	same(x, y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a = { 0 };
	struct pain002 r, again;
	int rc = pain002_read(&a, (const char *)data, size, &r);
	assert(rc == 0 || rc == -1);
	assert(pain002_read(&a, (const char *)data, size, &again) == rc);
	if (rc == 0) {
		assert(size > 0);
		check_text(r.message_id);
		check_text(r.original_message_id);
		check_text(r.group_status);
		same_reason(r.group_reason, r.group_reason_prtry, again.group_reason, again.group_reason_prtry);
		same(r.message_id, again.message_id);
		same(r.original_message_id, again.original_message_id);
		assert(r.npmt == again.npmt);
		for (size_t p = 0; p < r.npmt; p++) {
			check_text(r.pmt[p].original_id);
			check_text(r.pmt[p].status);
			same(r.pmt[p].original_id, again.pmt[p].original_id);
			same_reason(r.pmt[p].reason, r.pmt[p].reason_prtry, again.pmt[p].reason,
				again.pmt[p].reason_prtry);
			assert(r.pmt[p].ntx == again.pmt[p].ntx);
			for (size_t t = 0; t < r.pmt[p].ntx; t++) {
				check_text(r.pmt[p].tx[t].end_to_end_id);
				check_text(r.pmt[p].tx[t].status);
				same_reason(r.pmt[p].tx[t].reason, r.pmt[p].tx[t].reason_prtry,
					again.pmt[p].tx[t].reason, again.pmt[p].tx[t].reason_prtry);
				same(r.pmt[p].tx[t].end_to_end_id, again.pmt[p].tx[t].end_to_end_id);
				same(r.pmt[p].tx[t].status, again.pmt[p].tx[t].status);
			}
		}
	}
	arena_free(&a);
	return 0;
}
