/* Money (§1): decimal text to integer minor units without floating point, and back. */
#include <stdint.h>
#include <string.h>

#include "money.h"
#include "tap.h"

enum { JPY = 0, USD = 2, KWD = 3, CLF = 4 };

struct parse_case {
	const char *s;
	int minor;
	bool allow_zero;
	const char *result;   /* "refused", or the expected amount formatted back */
	int64_t want;
};

static const struct parse_case cases[] = {
	{ "5", USD, false, "5.00", 500 },
	{ "1000.00", USD, false, "1000.00", 100000 },
	{ "0.01", USD, false, "0.01", 1 },
	{ "0.1", USD, false, "0.10", 10 },
	{ "0.50", USD, false, "0.50", 50 },
	{ "12.3", USD, false, "12.30", 1230 },
	{ "1.234", USD, false, "refused", 0 },
	{ "1.000", USD, false, "refused", 0 },
	{ "5", JPY, false, "5", 5 },
	{ "5.0", JPY, false, "refused", 0 },
	{ "5.", JPY, false, "refused", 0 },
	{ "1.234", KWD, false, "1.234", 1234 },
	{ "1.2345", KWD, false, "refused", 0 },
	{ "7", KWD, false, "7.000", 7000 },
	{ "0", USD, false, "refused", 0 },
	{ "0.00", USD, false, "refused", 0 },
	{ "0.0", USD, false, "refused", 0 },
	{ "0", JPY, false, "refused", 0 },
	{ "0", USD, true, "0.00", 0 },
	{ "0.00", USD, true, "0.00", 0 },
	{ "0", JPY, true, "0", 0 },
	{ "-1", USD, false, "refused", 0 },
	{ "-1", USD, true, "refused", 0 },
	{ "-0", USD, true, "refused", 0 },
	{ "+1", USD, false, "refused", 0 },
	{ "1e3", USD, false, "refused", 0 },
	{ "1E3", USD, false, "refused", 0 },
	{ "1.0e2", USD, false, "refused", 0 },
	{ " 1", USD, false, "refused", 0 },
	{ "1 ", USD, false, "refused", 0 },
	{ "1\t", USD, false, "refused", 0 },
	{ "", USD, false, "refused", 0 },
	{ ".", USD, false, "refused", 0 },
	{ "1.", USD, false, "refused", 0 },
	{ ".5", USD, false, "refused", 0 },
	{ "1..5", USD, false, "refused", 0 },
	{ "1.2.3", USD, false, "refused", 0 },
	{ "1,00", USD, false, "refused", 0 },
	{ "1_000", USD, false, "refused", 0 },
	{ "0x10", USD, false, "refused", 0 },
	{ "Infinity", USD, false, "refused", 0 },
	{ "NaN", USD, false, "refused", 0 },
	{ "00.5", USD, true, "refused", 0 },
	{ "01", USD, false, "refused", 0 },
	{ "00", USD, true, "refused", 0 },
	{ "10", USD, false, "10.00", 1000 },
	{ "100.05", USD, false, "100.05", 10005 },
	{ "999999999999999.99", USD, false, "999999999999999.99", 99999999999999999 },
	{ "999999999999999", JPY, false, "999999999999999", 999999999999999 },
	{ "1000000000000000", JPY, false, "refused", 0 },
	{ "1000000000000000.00", USD, false, "refused", 0 },
	{ "9999999999999999", USD, false, "refused", 0 },
	{ "999999999999999.999", KWD, false, "999999999999999.999", 999999999999999999 },
	{ "12345678901234567890123", USD, false, "refused", 0 },
	/* Four minor digits: 15 integer digits can exceed INT64_MAX (9223372036854775807). */
	{ "922337203685477.5807", CLF, false, "922337203685477.5807", INT64_MAX },
	{ "922337203685477.5808", CLF, false, "refused", 0 },
	{ "999999999999999.9999", CLF, false, "refused", 0 },
	{ "999999999999999", CLF, false, "refused", 0 },
	{ "1.5", CLF, false, "1.5000", 15000 },
	{ "0.0001", CLF, false, "0.0001", 1 },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct parse_case *c = &cases[i];
		int64_t got = -1;
		const char *err = money_parse(c->s, strlen(c->s), c->minor, c->allow_zero, &got);
		bool refuse = strcmp(c->result, "refused") == 0;

		if (refuse) {
			ok(err != NULL && got == -1, "\"%s\" minor %d%s is refused", c->s, c->minor,
			   c->allow_zero ? " allow_zero" : "");
			continue;
		}
		if (!ok(err == NULL && got == c->want, "\"%s\" minor %d%s parses to %lld", c->s,
			c->minor, c->allow_zero ? " allow_zero" : "", (long long)c->want))
			printf("#   error: %s, got %lld\n", err ? err : "none", (long long)got);
		char buf[MONEY_FMT_MAX];
		money_format(got, c->minor, buf);
		is_str(buf, c->result, "\"%s\" minor %d formats as \"%s\"", c->s, c->minor, c->result);
	}
}

static void test_parse_bounds(void)
{
	int64_t got = 0;

	/* The parser must honour len, not look for a NUL. */
	ok(money_parse("12.34xyz", 5, USD, false, &got) == NULL && got == 1234,
	   "parses only len bytes");
	ok(money_parse("1.5", 2, USD, false, &got) != NULL, "\"1.\" cut from \"1.5\" is refused");
	ok(money_parse("5", 1, -1, false, &got) != NULL, "minor -1 is refused");
	ok(money_parse("5", 1, 5, false, &got) != NULL, "minor 5 is refused");
	ok(money_parse(NULL, 0, USD, false, &got) != NULL, "empty input with NULL pointer is refused");

	const char *msg = money_parse("1.234", 5, USD, false, &got);
	ok(msg && *msg, "a refusal comes with a message for the client");
}

struct format_case {
	int64_t amount;
	int minor;
	const char *want;
};

static const struct format_case formats[] = {
	{ 0, USD, "0.00" },
	{ 1, USD, "0.01" },
	{ 10, USD, "0.10" },
	{ 100, USD, "1.00" },
	{ 123456, USD, "1234.56" },
	{ 0, JPY, "0" },
	{ 42, JPY, "42" },
	{ 1, KWD, "0.001" },
	{ 1000, KWD, "1.000" },
	{ 1, CLF, "0.0001" },
	{ -150, USD, "-1.50" },
	{ -1, USD, "-0.01" },
	{ INT64_MAX, USD, "92233720368547758.07" },
	{ INT64_MIN, USD, "-92233720368547758.08" },
	{ INT64_MIN, CLF, "-922337203685477.5808" },
	{ INT64_MIN, JPY, "-9223372036854775808" },
};

static void test_format(void)
{
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		char buf[MONEY_FMT_MAX];
		memset(buf, 'x', sizeof buf);
		money_format(formats[i].amount, formats[i].minor, buf);
		is_str(buf, formats[i].want, "money_format(%lld, %d) is \"%s\"",
		       (long long)formats[i].amount, formats[i].minor, formats[i].want);
	}
}

/* Amounts up to the largest with 15 integer digits format back to text that parses to itself. */
static void test_round_trip(void)
{
	static const int64_t samples[] = { 1, 9, 10, 99, 100, 101, 12345, 1000000, 999999999999999 };

	for (int minor = 0; minor <= 3; minor++) {
		int64_t largest = 999999999999999;
		int bad = 0;
		for (int i = 0; i < minor; i++)
			largest = largest * 10 + 9;
		for (size_t i = 0; i <= sizeof samples / sizeof samples[0]; i++) {
			int64_t amount = i < sizeof samples / sizeof samples[0] ? samples[i] : largest;
			char buf[MONEY_FMT_MAX];
			int64_t back = 0;
			money_format(amount, minor, buf);
			if (money_parse(buf, strlen(buf), minor, false, &back) || back != amount)
				bad++;
		}
		ok(bad == 0, "minor %d: format then parse gives the same amount (%d mismatches)",
		   minor, bad);
	}
}

int main(void)
{
	test_parse();
	test_parse_bounds();
	test_format();
	test_round_trip();
	return done();
}
