/* pain.002.001.10 read with libxml2's tree parser. Safety comes from the parser's options and
 * one SAX hook, not from a scan of the bytes: no XML_PARSE_NOENT (entities are not
 * substituted), no XML_PARSE_DTDLOAD (no external subset), XML_PARSE_NONET (nothing is
 * fetched), no XML_PARSE_HUGE (libxml2's own size and amplification caps hold), and a
 * DOCTYPE stops the parser as soon as its name is read, before any entity of an internal
 * subset is even declared: a billion-laughs document or a file entity never gets going. */
#include "pain002.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <string.h>

static int is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
		strcmp((const char *)n->ns->href, PAIN002_NS) == 0 &&
		strcmp((const char *)n->name, name) == 0;
}

/* The first child element of `n` called `name` (in the namespace), or NULL. */
static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *k = n ? n->children : NULL; k; k = k->next)
		if (is(k, name))
			return k;
	return NULL;
}

static size_t count(const xmlNode *n, const char *name)
{
	size_t m = 0;
	for (const xmlNode *k = n->children; k; k = k->next)
		m += is(k, name) != 0;
	return m;
}

/* The text of `n`, trimmed, in `a`; NULL when `n` is NULL. */
static const char *text(struct arena *a, const xmlNode *n)
{
	if (!n)
		return NULL;
	xmlChar *t = xmlNodeGetContent(n);
	const char *s = t ? (const char *)t : "";
	size_t len = strlen(s);
	while (len && strchr(" \t\r\n", s[len - 1]))
		len--;
	size_t skip = strspn(s, " \t\r\n");
	const char *out = arena_strndup(a, s + (skip < len ? skip : len), skip < len ? len - skip : 0);
	xmlFree(t);
	return out;
}

/* The first StsRsnInf's Rsn/Cd, else its Rsn/Prtry (*prtry set): the schema's choice of one,
 * and a bank that sends both is taken at its code. Its length and characters are the
 * caller's to check, as for every value read here. */
static const char *reason(struct arena *a, const xmlNode *n, bool *prtry)
{
	const xmlNode *rsn = child(child(n, "StsRsnInf"), "Rsn");
	const xmlNode *cd = child(rsn, "Cd");
	*prtry = !cd && child(rsn, "Prtry");
	return text(a, cd ? cd : child(rsn, "Prtry"));
}

/* Elements nested deeper than `left` levels below `n`? Bounded by the cap, not the input. */
static int too_deep(const xmlNode *n, int left)
{
	for (const xmlNode *k = n->children; k; k = k->next)
		if (k->type == XML_ELEMENT_NODE && (left == 0 || too_deep(k, left - 1)))
			return 1;
	return 0;
}

/* The parser stops at a DOCTYPE's name, before its internal subset is read. */
static void no_doctype(void *ctx, const xmlChar *name, const xmlChar *public_id,
	const xmlChar *system_id)
{
	(void)name, (void)public_id, (void)system_id;
	xmlParserCtxtPtr p = ctx;
	p->_private = (void *)1;
	xmlStopParser(p);
}

static xmlDocPtr parse(const char *bytes, size_t len)
{
	xmlParserCtxtPtr p = xmlNewParserCtxt();
	if (!p)
		return NULL;
	p->sax->internalSubset = no_doctype;
	p->sax->externalSubset = no_doctype;
	xmlDocPtr doc = xmlCtxtReadMemory(p, bytes, (int)len, NULL, "UTF-8",
		XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	int refused = p->_private != NULL || !p->wellFormed;
	xmlFreeParserCtxt(p);
	if (doc && (refused || doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	return doc;
}

static void read_pmt(struct arena *a, const xmlNode *n, struct pain002_pmt *pmt)
{
	pmt->original_id = text(a, child(n, "OrgnlPmtInfId"));
	pmt->status = text(a, child(n, "PmtInfSts"));
	pmt->reason = reason(a, n, &pmt->reason_prtry);
	pmt->ntx = count(n, "TxInfAndSts");
	pmt->tx = arena_alloc(a, (pmt->ntx + 1) * sizeof *pmt->tx);
	size_t i = 0;
	for (const xmlNode *k = n->children; k; k = k->next) {
		if (!is(k, "TxInfAndSts"))
			continue;
		pmt->tx[i].end_to_end_id = text(a, child(k, "OrgnlEndToEndId"));
		pmt->tx[i].status = text(a, child(k, "TxSts"));
		pmt->tx[i].reason = reason(a, k, &pmt->tx[i].reason_prtry);
		i++;
	}
}

static void read_report(struct arena *a, const xmlNode *rpt, struct pain002 *out)
{
	const xmlNode *grp = child(rpt, "OrgnlGrpInfAndSts");
	out->message_id = text(a, child(child(rpt, "GrpHdr"), "MsgId"));
	out->original_message_id = text(a, child(grp, "OrgnlMsgId"));
	out->group_status = text(a, child(grp, "GrpSts"));
	out->group_reason = grp ? reason(a, grp, &out->group_reason_prtry) : NULL;
	out->npmt = count(rpt, "OrgnlPmtInfAndSts");
	out->pmt = arena_alloc(a, (out->npmt + 1) * sizeof *out->pmt);
	size_t i = 0;
	for (const xmlNode *k = rpt->children; k; k = k->next)
		if (is(k, "OrgnlPmtInfAndSts"))
			read_pmt(a, k, &out->pmt[i++]);
}

int pain002_read(struct arena *a, const char *bytes, size_t len, struct pain002 *out)
{
	memset(out, 0, sizeof *out);
	if (len == 0 || len > INT_MAX)
		return -1;
	xmlDocPtr doc = parse(bytes, len);
	if (!doc)
		return -1;
	int rc = -1;
	const xmlNode *root = xmlDocGetRootElement(doc);
	const xmlNode *rpt = child(root, "CstmrPmtStsRpt");
	if (is(root, "Document") && rpt && !too_deep(root, PAIN002_DEPTH_MAX - 1)) {
		read_report(a, rpt, out);
		rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

int pain002_status_known(const char *code, int group)
{
	static const char *const known[] = { "ACSC", "ACCC", "RJCT", "ACCP", "ACSP", "ACWC",
		"ACTC", "PDNG", "RCVD", NULL };
	for (size_t i = 0; known[i]; i++)
		if (strcmp(code, known[i]) == 0)
			return 1;
	return group && strcmp(code, "PART") == 0;
}

int pain002_settled(const char *code)
{
	return code && (strcmp(code, "ACSC") == 0 || strcmp(code, "ACCC") == 0);
}
