/* The SEPA character set (API §9); the CSV writer has t/unit/csv.c. */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "iso20022.h"
#include "tap.h"

struct fold_case {
	const char *in, *want;
	size_t max;
};

static const struct fold_case folds_cases[] = {
	{ "W\xC3\xBCrth", "Wurth", 70 },                         /* not "Wrth" */
	{ "Caf\xC3\xA9", "Cafe", 70 },                           /* precomposed é */
	{ "Cafe\xCC\x81", "Cafe", 70 },                          /* e + combining acute (NFD) */
	{ "Stra\xC3\x9F" "e", "Strasse", 70 },                   /* ß */
	{ "\xE1\xBA\x9E", "SS", 70 },                            /* ẞ */
	{ "\xC3\x86 \xC3\xA6 \xC5\x92 \xC5\x93", "AE ae OE oe", 70 },
	{ "\xC3\x98 \xC3\xB8 \xC5\x81 \xC5\x82 \xC4\x90 \xC4\x91", "O o L l D d", 70 },
	{ "Smith & Sons", "Smith + Sons", 70 },
	{ "a<b>c\"d", "a b c d", 70 },
	{ "  many   spaces  ", "many spaces", 70 },
	{ "emoji \xF0\x9F\x98\x80 here", "emoji here", 70 },
	{ "\xF0\x9F\x98\x80", "", 70 },
	{ "/-?:().,'+", "/-?:().,'+", 70 },
	{ "abcdef ghij", "abcdef", 7 },                          /* cut, then trimmed */
	{ "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", "ee", 2 },         /* 70 counts characters out */
	{ "\xE4\xB8\xAD\xE6\x96\x87", "", 70 },                   /* CJK: spaces, trimmed */
	{ "\xE1\xBB\x87", "e", 70 },                             /* ệ, Latin Extended Additional */
};

static void test_fold(struct arena *a)
{
	for (size_t i = 0; i < sizeof folds_cases / sizeof folds_cases[0]; i++) {
		const struct fold_case *c = &folds_cases[i];
		is_str(sepa_fold(a, c->in, strlen(c->in), c->max), c->want, "fold case %zu -> '%s'",
			i, c->want);
	}
}

int main(void)
{
	struct arena a = { 0 };
	plan((int)(sizeof folds_cases / sizeof folds_cases[0]));
	test_fold(&a);
	arena_free(&a);
	return done();
}
