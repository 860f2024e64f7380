/* ISO 20022 for the bank (API §9): SEPA folding as a table, pain.001.001.09 on xmlTextWriter. */
#include "iso20022.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/xmlwriter.h>

/* Generated from Unicode NFD (Python unicodedata): the code points of Latin-1 Supplement,
 * Latin Extended-A/B and Latin Extended Additional whose decomposition, combining marks
 * dropped, is ASCII, plus the letters §9 names that have no decomposition. Sorted. */
static const struct fold { unsigned cp; char to[3]; } folds[] = {
	{ 0xC0, "A" }, { 0xC1, "A" }, { 0xC2, "A" }, { 0xC3, "A" }, { 0xC4, "A" }, { 0xC5, "A" },
	{ 0xC6, "AE" }, { 0xC7, "C" }, { 0xC8, "E" }, { 0xC9, "E" }, { 0xCA, "E" }, { 0xCB, "E" },
	{ 0xCC, "I" }, { 0xCD, "I" }, { 0xCE, "I" }, { 0xCF, "I" }, { 0xD1, "N" }, { 0xD2, "O" },
	{ 0xD3, "O" }, { 0xD4, "O" }, { 0xD5, "O" }, { 0xD6, "O" }, { 0xD8, "O" }, { 0xD9, "U" },
	{ 0xDA, "U" }, { 0xDB, "U" }, { 0xDC, "U" }, { 0xDD, "Y" }, { 0xDF, "ss" }, { 0xE0, "a" },
	{ 0xE1, "a" }, { 0xE2, "a" }, { 0xE3, "a" }, { 0xE4, "a" }, { 0xE5, "a" }, { 0xE6, "ae" },
	{ 0xE7, "c" }, { 0xE8, "e" }, { 0xE9, "e" }, { 0xEA, "e" }, { 0xEB, "e" }, { 0xEC, "i" },
	{ 0xED, "i" }, { 0xEE, "i" }, { 0xEF, "i" }, { 0xF1, "n" }, { 0xF2, "o" }, { 0xF3, "o" },
	{ 0xF4, "o" }, { 0xF5, "o" }, { 0xF6, "o" }, { 0xF8, "o" }, { 0xF9, "u" }, { 0xFA, "u" },
	{ 0xFB, "u" }, { 0xFC, "u" }, { 0xFD, "y" }, { 0xFF, "y" }, { 0x100, "A" }, { 0x101, "a" },
	{ 0x102, "A" }, { 0x103, "a" }, { 0x104, "A" }, { 0x105, "a" }, { 0x106, "C" },
	{ 0x107, "c" }, { 0x108, "C" }, { 0x109, "c" }, { 0x10A, "C" }, { 0x10B, "c" },
	{ 0x10C, "C" }, { 0x10D, "c" }, { 0x10E, "D" }, { 0x10F, "d" }, { 0x110, "D" },
	{ 0x111, "d" }, { 0x112, "E" }, { 0x113, "e" }, { 0x114, "E" }, { 0x115, "e" },
	{ 0x116, "E" }, { 0x117, "e" }, { 0x118, "E" }, { 0x119, "e" }, { 0x11A, "E" },
	{ 0x11B, "e" }, { 0x11C, "G" }, { 0x11D, "g" }, { 0x11E, "G" }, { 0x11F, "g" },
	{ 0x120, "G" }, { 0x121, "g" }, { 0x122, "G" }, { 0x123, "g" }, { 0x124, "H" },
	{ 0x125, "h" }, { 0x128, "I" }, { 0x129, "i" }, { 0x12A, "I" }, { 0x12B, "i" },
	{ 0x12C, "I" }, { 0x12D, "i" }, { 0x12E, "I" }, { 0x12F, "i" }, { 0x130, "I" },
	{ 0x134, "J" }, { 0x135, "j" }, { 0x136, "K" }, { 0x137, "k" }, { 0x139, "L" },
	{ 0x13A, "l" }, { 0x13B, "L" }, { 0x13C, "l" }, { 0x13D, "L" }, { 0x13E, "l" },
	{ 0x141, "L" }, { 0x142, "l" }, { 0x143, "N" }, { 0x144, "n" }, { 0x145, "N" },
	{ 0x146, "n" }, { 0x147, "N" }, { 0x148, "n" }, { 0x14C, "O" }, { 0x14D, "o" },
	{ 0x14E, "O" }, { 0x14F, "o" }, { 0x150, "O" }, { 0x151, "o" }, { 0x152, "OE" },
	{ 0x153, "oe" }, { 0x154, "R" }, { 0x155, "r" }, { 0x156, "R" }, { 0x157, "r" },
	{ 0x158, "R" }, { 0x159, "r" }, { 0x15A, "S" }, { 0x15B, "s" }, { 0x15C, "S" },
	{ 0x15D, "s" }, { 0x15E, "S" }, { 0x15F, "s" }, { 0x160, "S" }, { 0x161, "s" },
	{ 0x162, "T" }, { 0x163, "t" }, { 0x164, "T" }, { 0x165, "t" }, { 0x168, "U" },
	{ 0x169, "u" }, { 0x16A, "U" }, { 0x16B, "u" }, { 0x16C, "U" }, { 0x16D, "u" },
	{ 0x16E, "U" }, { 0x16F, "u" }, { 0x170, "U" }, { 0x171, "u" }, { 0x172, "U" },
	{ 0x173, "u" }, { 0x174, "W" }, { 0x175, "w" }, { 0x176, "Y" }, { 0x177, "y" },
	{ 0x178, "Y" }, { 0x179, "Z" }, { 0x17A, "z" }, { 0x17B, "Z" }, { 0x17C, "z" },
	{ 0x17D, "Z" }, { 0x17E, "z" }, { 0x1A0, "O" }, { 0x1A1, "o" }, { 0x1AF, "U" },
	{ 0x1B0, "u" }, { 0x1CD, "A" }, { 0x1CE, "a" }, { 0x1CF, "I" }, { 0x1D0, "i" },
	{ 0x1D1, "O" }, { 0x1D2, "o" }, { 0x1D3, "U" }, { 0x1D4, "u" }, { 0x1D5, "U" },
	{ 0x1D6, "u" }, { 0x1D7, "U" }, { 0x1D8, "u" }, { 0x1D9, "U" }, { 0x1DA, "u" },
	{ 0x1DB, "U" }, { 0x1DC, "u" }, { 0x1DE, "A" }, { 0x1DF, "a" }, { 0x1E0, "A" },
	{ 0x1E1, "a" }, { 0x1E6, "G" }, { 0x1E7, "g" }, { 0x1E8, "K" }, { 0x1E9, "k" },
	{ 0x1EA, "O" }, { 0x1EB, "o" }, { 0x1EC, "O" }, { 0x1ED, "o" }, { 0x1F0, "j" },
	{ 0x1F4, "G" }, { 0x1F5, "g" }, { 0x1F8, "N" }, { 0x1F9, "n" }, { 0x1FA, "A" },
	{ 0x1FB, "a" }, { 0x200, "A" }, { 0x201, "a" }, { 0x202, "A" }, { 0x203, "a" },
	{ 0x204, "E" }, { 0x205, "e" }, { 0x206, "E" }, { 0x207, "e" }, { 0x208, "I" },
	{ 0x209, "i" }, { 0x20A, "I" }, { 0x20B, "i" }, { 0x20C, "O" }, { 0x20D, "o" },
	{ 0x20E, "O" }, { 0x20F, "o" }, { 0x210, "R" }, { 0x211, "r" }, { 0x212, "R" },
	{ 0x213, "r" }, { 0x214, "U" }, { 0x215, "u" }, { 0x216, "U" }, { 0x217, "u" },
	{ 0x218, "S" }, { 0x219, "s" }, { 0x21A, "T" }, { 0x21B, "t" }, { 0x21E, "H" },
	{ 0x21F, "h" }, { 0x226, "A" }, { 0x227, "a" }, { 0x228, "E" }, { 0x229, "e" },
	{ 0x22A, "O" }, { 0x22B, "o" }, { 0x22C, "O" }, { 0x22D, "o" }, { 0x22E, "O" },
	{ 0x22F, "o" }, { 0x230, "O" }, { 0x231, "o" }, { 0x232, "Y" }, { 0x233, "y" },
	{ 0x1E00, "A" }, { 0x1E01, "a" }, { 0x1E02, "B" }, { 0x1E03, "b" }, { 0x1E04, "B" },
	{ 0x1E05, "b" }, { 0x1E06, "B" }, { 0x1E07, "b" }, { 0x1E08, "C" }, { 0x1E09, "c" },
	{ 0x1E0A, "D" }, { 0x1E0B, "d" }, { 0x1E0C, "D" }, { 0x1E0D, "d" }, { 0x1E0E, "D" },
	{ 0x1E0F, "d" }, { 0x1E10, "D" }, { 0x1E11, "d" }, { 0x1E12, "D" }, { 0x1E13, "d" },
	{ 0x1E14, "E" }, { 0x1E15, "e" }, { 0x1E16, "E" }, { 0x1E17, "e" }, { 0x1E18, "E" },
	{ 0x1E19, "e" }, { 0x1E1A, "E" }, { 0x1E1B, "e" }, { 0x1E1C, "E" }, { 0x1E1D, "e" },
	{ 0x1E1E, "F" }, { 0x1E1F, "f" }, { 0x1E20, "G" }, { 0x1E21, "g" }, { 0x1E22, "H" },
	{ 0x1E23, "h" }, { 0x1E24, "H" }, { 0x1E25, "h" }, { 0x1E26, "H" }, { 0x1E27, "h" },
	{ 0x1E28, "H" }, { 0x1E29, "h" }, { 0x1E2A, "H" }, { 0x1E2B, "h" }, { 0x1E2C, "I" },
	{ 0x1E2D, "i" }, { 0x1E2E, "I" }, { 0x1E2F, "i" }, { 0x1E30, "K" }, { 0x1E31, "k" },
	{ 0x1E32, "K" }, { 0x1E33, "k" }, { 0x1E34, "K" }, { 0x1E35, "k" }, { 0x1E36, "L" },
	{ 0x1E37, "l" }, { 0x1E38, "L" }, { 0x1E39, "l" }, { 0x1E3A, "L" }, { 0x1E3B, "l" },
	{ 0x1E3C, "L" }, { 0x1E3D, "l" }, { 0x1E3E, "M" }, { 0x1E3F, "m" }, { 0x1E40, "M" },
	{ 0x1E41, "m" }, { 0x1E42, "M" }, { 0x1E43, "m" }, { 0x1E44, "N" }, { 0x1E45, "n" },
	{ 0x1E46, "N" }, { 0x1E47, "n" }, { 0x1E48, "N" }, { 0x1E49, "n" }, { 0x1E4A, "N" },
	{ 0x1E4B, "n" }, { 0x1E4C, "O" }, { 0x1E4D, "o" }, { 0x1E4E, "O" }, { 0x1E4F, "o" },
	{ 0x1E50, "O" }, { 0x1E51, "o" }, { 0x1E52, "O" }, { 0x1E53, "o" }, { 0x1E54, "P" },
	{ 0x1E55, "p" }, { 0x1E56, "P" }, { 0x1E57, "p" }, { 0x1E58, "R" }, { 0x1E59, "r" },
	{ 0x1E5A, "R" }, { 0x1E5B, "r" }, { 0x1E5C, "R" }, { 0x1E5D, "r" }, { 0x1E5E, "R" },
	{ 0x1E5F, "r" }, { 0x1E60, "S" }, { 0x1E61, "s" }, { 0x1E62, "S" }, { 0x1E63, "s" },
	{ 0x1E64, "S" }, { 0x1E65, "s" }, { 0x1E66, "S" }, { 0x1E67, "s" }, { 0x1E68, "S" },
	{ 0x1E69, "s" }, { 0x1E6A, "T" }, { 0x1E6B, "t" }, { 0x1E6C, "T" }, { 0x1E6D, "t" },
	{ 0x1E6E, "T" }, { 0x1E6F, "t" }, { 0x1E70, "T" }, { 0x1E71, "t" }, { 0x1E72, "U" },
	{ 0x1E73, "u" }, { 0x1E74, "U" }, { 0x1E75, "u" }, { 0x1E76, "U" }, { 0x1E77, "u" },
	{ 0x1E78, "U" }, { 0x1E79, "u" }, { 0x1E7A, "U" }, { 0x1E7B, "u" }, { 0x1E7C, "V" },
	{ 0x1E7D, "v" }, { 0x1E7E, "V" }, { 0x1E7F, "v" }, { 0x1E80, "W" }, { 0x1E81, "w" },
	{ 0x1E82, "W" }, { 0x1E83, "w" }, { 0x1E84, "W" }, { 0x1E85, "w" }, { 0x1E86, "W" },
	{ 0x1E87, "w" }, { 0x1E88, "W" }, { 0x1E89, "w" }, { 0x1E8A, "X" }, { 0x1E8B, "x" },
	{ 0x1E8C, "X" }, { 0x1E8D, "x" }, { 0x1E8E, "Y" }, { 0x1E8F, "y" }, { 0x1E90, "Z" },
	{ 0x1E91, "z" }, { 0x1E92, "Z" }, { 0x1E93, "z" }, { 0x1E94, "Z" }, { 0x1E95, "z" },
	{ 0x1E96, "h" }, { 0x1E97, "t" }, { 0x1E98, "w" }, { 0x1E99, "y" }, { 0x1E9E, "SS" },
	{ 0x1EA0, "A" }, { 0x1EA1, "a" }, { 0x1EA2, "A" }, { 0x1EA3, "a" }, { 0x1EA4, "A" },
	{ 0x1EA5, "a" }, { 0x1EA6, "A" }, { 0x1EA7, "a" }, { 0x1EA8, "A" }, { 0x1EA9, "a" },
	{ 0x1EAA, "A" }, { 0x1EAB, "a" }, { 0x1EAC, "A" }, { 0x1EAD, "a" }, { 0x1EAE, "A" },
	{ 0x1EAF, "a" }, { 0x1EB0, "A" }, { 0x1EB1, "a" }, { 0x1EB2, "A" }, { 0x1EB3, "a" },
	{ 0x1EB4, "A" }, { 0x1EB5, "a" }, { 0x1EB6, "A" }, { 0x1EB7, "a" }, { 0x1EB8, "E" },
	{ 0x1EB9, "e" }, { 0x1EBA, "E" }, { 0x1EBB, "e" }, { 0x1EBC, "E" }, { 0x1EBD, "e" },
	{ 0x1EBE, "E" }, { 0x1EBF, "e" }, { 0x1EC0, "E" }, { 0x1EC1, "e" }, { 0x1EC2, "E" },
	{ 0x1EC3, "e" }, { 0x1EC4, "E" }, { 0x1EC5, "e" }, { 0x1EC6, "E" }, { 0x1EC7, "e" },
	{ 0x1EC8, "I" }, { 0x1EC9, "i" }, { 0x1ECA, "I" }, { 0x1ECB, "i" }, { 0x1ECC, "O" },
	{ 0x1ECD, "o" }, { 0x1ECE, "O" }, { 0x1ECF, "o" }, { 0x1ED0, "O" }, { 0x1ED1, "o" },
	{ 0x1ED2, "O" }, { 0x1ED3, "o" }, { 0x1ED4, "O" }, { 0x1ED5, "o" }, { 0x1ED6, "O" },
	{ 0x1ED7, "o" }, { 0x1ED8, "O" }, { 0x1ED9, "o" }, { 0x1EDA, "O" }, { 0x1EDB, "o" },
	{ 0x1EDC, "O" }, { 0x1EDD, "o" }, { 0x1EDE, "O" }, { 0x1EDF, "o" }, { 0x1EE0, "O" },
	{ 0x1EE1, "o" }, { 0x1EE2, "O" }, { 0x1EE3, "o" }, { 0x1EE4, "U" }, { 0x1EE5, "u" },
	{ 0x1EE6, "U" }, { 0x1EE7, "u" }, { 0x1EE8, "U" }, { 0x1EE9, "u" }, { 0x1EEA, "U" },
	{ 0x1EEB, "u" }, { 0x1EEC, "U" }, { 0x1EED, "u" }, { 0x1EEE, "U" }, { 0x1EEF, "u" },
	{ 0x1EF0, "U" }, { 0x1EF1, "u" }, { 0x1EF2, "Y" }, { 0x1EF3, "y" }, { 0x1EF4, "Y" },
	{ 0x1EF5, "y" }, { 0x1EF6, "Y" }, { 0x1EF7, "y" }, { 0x1EF8, "Y" }, { 0x1EF9, "y" },
};

static int fold_cmp(const void *key, const void *elem)
{
	unsigned cp = *(const unsigned *)key, other = ((const struct fold *)elem)->cp;
	return cp < other ? -1 : cp > other;
}

/* Decodes one code point of valid UTF-8 at *p and advances *p. */
static unsigned utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned cp;
	int n;
	if (s[0] < 0x80) { cp = s[0]; n = 1; }
	else if (s[0] < 0xE0) { cp = s[0] & 0x1F; n = 2; }
	else if (s[0] < 0xF0) { cp = s[0] & 0x0F; n = 3; }
	else { cp = s[0] & 0x07; n = 4; }
	for (int i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3F);
	*p = s + n;
	return cp;
}

static bool sepa_ascii(unsigned cp)
{
	return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
		(cp && strchr("/-?:().,'+ ", (int)cp));
}

/* What one code point becomes: "" for a combining mark (U+0300..U+036F, dropped as NFD
 * drops them), else its ASCII letters, else a space. */
static const char *fold_one(unsigned cp, char own[2])
{
	if (cp == '&')
		return "+";
	if (cp < 0x80 && sepa_ascii(cp)) {
		own[0] = (char)cp;
		own[1] = '\0';
		return own;
	}
	if (cp >= 0x300 && cp <= 0x36F)
		return "";
	const struct fold *f = bsearch(&cp, folds, sizeof folds / sizeof folds[0], sizeof folds[0],
		fold_cmp);
	return f ? f->to : " ";
}

const char *sepa_fold(struct arena *a, const char *s, size_t len, size_t max)
{
	/* Each code point becomes at most two ASCII characters. */
	char *out = arena_alloc(a, 2 * len + 1);
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		char own[2];
		for (const char *t = fold_one(utf8_next(&p), own); *t; t++) {
			if (*t == ' ' && (n == 0 || out[n - 1] == ' '))
				continue;   /* collapsed, and none leading */
			out[n++] = *t;
		}
	}
	if (n > max)
		n = max;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}

/* The writer's calls, each 0 or more on success, summed as failures: one test at the end. */
static int el(xmlTextWriterPtr w, const char *name, const char *text)
{
	return xmlTextWriterWriteElement(w, BAD_CAST name, BAD_CAST text) < 0;
}
static int open_el(xmlTextWriterPtr w, const char *name)
{
	return xmlTextWriterStartElement(w, BAD_CAST name) < 0;
}
static int close_el(xmlTextWriterPtr w, int n)
{
	int bad = 0;
	while (n-- > 0)
		bad |= xmlTextWriterEndElement(w) < 0;
	return bad;
}
/* <Outer><Inner>text</Inner></Outer> for each level named in `path` ("Id/IBAN"). */
static int path_el(xmlTextWriterPtr w, const char *path, const char *text)
{
	char buf[64];
	int bad = 0, depth = 0;
	snprintf(buf, sizeof buf, "%s", path);
	char *name = buf, *slash;
	while ((slash = strchr(name, '/'))) {
		*slash = '\0';
		bad |= open_el(w, name);
		depth++;
		name = slash + 1;
	}
	bad |= el(w, name, text);
	return bad | close_el(w, depth);
}

static int write_tx(xmlTextWriterPtr w, const struct pain_item *it)
{
	int bad = open_el(w, "CdtTrfTxInf");
	bad |= path_el(w, "PmtId/EndToEndId", it->end_to_end_id);
	bad |= open_el(w, "Amt") | open_el(w, "InstdAmt");
	bad |= xmlTextWriterWriteAttribute(w, BAD_CAST "Ccy", BAD_CAST "EUR") < 0;
	bad |= xmlTextWriterWriteString(w, BAD_CAST it->amount) < 0;
	bad |= close_el(w, 2);
	bad |= path_el(w, "Cdtr/Nm", *it->name ? it->name : "NOTPROVIDED");
	bad |= path_el(w, "CdtrAcct/Id/IBAN", it->iban);
	if (*it->purpose)
		bad |= path_el(w, "RmtInf/Ustrd", it->purpose);
	return bad | close_el(w, 1);
}

static int write_header(xmlTextWriterPtr w, const struct pain_file *f, const char *count)
{
	int bad = open_el(w, "GrpHdr");
	bad |= el(w, "MsgId", f->message_id) | el(w, "CreDtTm", f->created_at);
	bad |= el(w, "NbOfTxs", count) | el(w, "CtrlSum", f->control_sum);
	bad |= path_el(w, "InitgPty/Nm", *f->debtor_name ? f->debtor_name : "NOTPROVIDED");
	return bad | close_el(w, 1);
}

static int write_payment(xmlTextWriterPtr w, const struct pain_file *f, const char *count)
{
	int bad = open_el(w, "PmtInf");
	bad |= el(w, "PmtInfId", f->message_id) | el(w, "PmtMtd", "TRF");
	bad |= el(w, "BtchBookg", "true") | el(w, "NbOfTxs", count);
	bad |= el(w, "CtrlSum", f->control_sum);
	bad |= path_el(w, "PmtTpInf/SvcLvl/Cd", "SEPA");
	bad |= path_el(w, "ReqdExctnDt/Dt", f->execution_date);
	bad |= path_el(w, "Dbtr/Nm", *f->debtor_name ? f->debtor_name : "NOTPROVIDED");
	bad |= path_el(w, "DbtrAcct/Id/IBAN", f->debtor_iban);
	bad |= f->debtor_bic ? path_el(w, "DbtrAgt/FinInstnId/BICFI", f->debtor_bic)
		: path_el(w, "DbtrAgt/FinInstnId/Othr/Id", "NOTPROVIDED");
	bad |= el(w, "ChrgBr", "SLEV");
	for (size_t i = 0; i < f->n; i++)
		bad |= write_tx(w, &f->items[i]);
	return bad | close_el(w, 1);
}

const char *pain001_write(struct arena *a, const struct pain_file *f, size_t *len)
{
	const char *out = NULL;
	char count[24];
	snprintf(count, sizeof count, "%zu", f->n);
	xmlBufferPtr buf = xmlBufferCreate();
	xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
	if (!w)
		goto done;
	int bad = xmlTextWriterSetIndent(w, 1) < 0;
	bad |= xmlTextWriterSetIndentString(w, BAD_CAST "  ") < 0;
	bad |= xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL) < 0;
	bad |= open_el(w, "Document");
	bad |= xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns",
		BAD_CAST "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09") < 0;
	bad |= open_el(w, "CstmrCdtTrfInitn");
	bad |= write_header(w, f, count) | write_payment(w, f, count);
	bad |= xmlTextWriterEndDocument(w) < 0;
	xmlFreeTextWriter(w);   /* flushes into buf */
	w = NULL;
	if (bad)
		goto done;
	*len = (size_t)xmlBufferLength(buf);
	out = arena_strndup(a, (const char *)xmlBufferContent(buf), *len);
done:
	if (w)
		xmlFreeTextWriter(w);
	if (buf)
		xmlBufferFree(buf);
	return out;
}
