/* Beneficiary accounts (§4): IBAN normalisation and ISO 13616 mod-97, other accounts as given. */
#include <string.h>

#include "iban.h"
#include "tap.h"

struct account_case {
	const char *name;
	const char *s;
	const char *want;     /* normalised account, or NULL when refused */
};

static const struct account_case cases[] = {
	{ "GB IBAN in print form", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432" },
	{ "GB IBAN in lower case", "gb82west12345698765432", "GB82WEST12345698765432" },
	{ "GB IBAN in mixed case", "Gb82 wEST 1234 5698 7654 32", "GB82WEST12345698765432" },
	{ "DE IBAN in print form", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000" },
	{ "NL IBAN in electronic form", "NL91ABNA0417164300", "NL91ABNA0417164300" },
	{ "BE IBAN", "BE71 0961 2345 6769", "BE71096123456769" },
	{ "FR IBAN with letters in the BBAN", "FR14 2004 1010 0505 0001 3M02 606",
	  "FR1420041010050500013M02606" },
	{ "NO IBAN, the shortest country format", "NO93 8601 1117 947", "NO9386011117947" },
	{ "MT IBAN, 31 characters", "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
	  "MT84MALT011000012345MTLCAST001S" },
	{ "LC IBAN, 32 characters", "LC55 HEMM 0001 0001 0012 0012 0002 3015",
	  "LC55HEMM000100010012001200023015" },
	{ "double and trailing spaces are removed", "GB82  WEST 1234 5698 7654 32 ",
	  "GB82WEST12345698765432" },
	{ "changed check digit is refused", "GB83 WEST 1234 5698 7654 32", NULL },
	{ "changed BBAN digit is refused", "GB82 WEST 1234 5698 7654 33", NULL },
	{ "swapped BBAN digits are refused", "GB82 WEST 1234 5698 7654 23", NULL },
	{ "changed bank code letter is refused", "GB82 WESU 1234 5698 7654 32", NULL },
	{ "IBAN with a '-' is refused", "GB82-WEST-1234-5698-7654-32", NULL },
	{ "IBAN with a '.' is refused", "GB82.WEST12345698765432", NULL },
	{ "IBAN with a non-ASCII letter is refused", "GB82 W\xC3\x89ST 1234 5698 7654 32", NULL },
	/* GB78 + 30 nines and GB84 + 31 nines both pass mod-97: only the length tells them apart. */
	{ "IBAN of 34 characters", "GB78 9999 9999 9999 9999 9999 9999 9999 99",
	  "GB78999999999999999999999999999999" },
	{ "IBAN of 35 characters (valid mod-97) is refused", "GB849999999999999999999999999999999",
	  NULL },
	{ "IBAN of 35 characters with spaces is refused",
	  "GB84 9999 9999 9999 9999 9999 9999 9999 999", NULL },
	{ "IBAN of 4 characters failing mod-97 is refused", "GB00", NULL },
	{ "non-IBAN account is kept as given", "123-456 789", "123-456 789" },
	{ "non-IBAN starting with one letter is kept", "A1234567", "A1234567" },
	{ "non-IBAN starting with letters and one digit is kept", "AB1-CD", "AB1-CD" },
	{ "non-IBAN starting with a space is kept", " GB82WEST", " GB82WEST" },
	{ "non-IBAN keeps its case", "acct-xyz", "acct-xyz" },
	{ "non-IBAN of 1 character", "7", "7" },
	{ "non-IBAN of 34 characters", "1234567890123456789012345678901234",
	  "1234567890123456789012345678901234" },
	{ "non-IBAN of 35 characters is refused", "12345678901234567890123456789012345", NULL },
	{ "non-IBAN of 34 two-byte code points is counted as 34",
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9" },
	{ "non-IBAN of 35 two-byte code points is refused",
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
	  "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
	  NULL },
	{ "non-IBAN with emoji counts it as one", "acct \xF0\x9F\x92\xB0", "acct \xF0\x9F\x92\xB0" },
	{ "non-IBAN with invalid UTF-8 is refused", "acct \xFF", NULL },
	{ "empty account is refused", "", NULL },
};

static void test_accounts(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct account_case *c = &cases[i];
		size_t len = strlen(c->s);
		char out[128];
		const char *err = account_normalise(c->s, len, out);

		if (c->want)
			is_str(err ? NULL : out, c->want, "%s", c->name);
		else
			ok(err != NULL && *err, "%s", c->name);
	}
}

static void test_output(void)
{
	char out[64];

	memset(out, 'x', sizeof out);
	ok(account_normalise("GB82 WEST 1234 5698 7654 32", 27, out) == NULL && strlen(out) == 22,
	   "the IBAN output is NUL-terminated after its last character");
	memset(out, 'x', sizeof out);
	ok(account_normalise("123-456 789", 11, out) == NULL && strlen(out) == 11,
	   "other output is NUL-terminated after its last character");
}

static void test_len_is_honoured(void)
{
	char out[64];
	is_str(account_normalise("NL91ABNA0417164300XYZ", 18, out) ? NULL : out,
	       "NL91ABNA0417164300", "only len bytes are read");
}

int main(void)
{
	test_accounts();
	test_output();
	test_len_is_honoured();
	return done();
}
