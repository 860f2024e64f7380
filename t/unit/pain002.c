/* The pain.002.001.10 reader behind the bank's answer (API §9): what is read, and what is
 * refused as MALFORMED_XML (DOCTYPEs of every kind, depth, namespace, root, encoding). */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "pain002.h"
#include "tap.h"

#define NS "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
#define DOC(body) "<Document xmlns=\"" NS "\"><CstmrPmtStsRpt>" body "</CstmrPmtStsRpt></Document>"

static int read_it(struct arena *a, const char *s, struct pain002 *r)
{
	return pain002_read(a, s, strlen(s), r);
}

/* `levels` elements deep in all, Document and CstmrPmtStsRpt included. */
static char *deep(struct arena *a, int levels)
{
	char *out = arena_alloc(a, 256 + (size_t)levels * 16), *p = out;
	p += sprintf(p, "<Document xmlns=\"" NS "\"><CstmrPmtStsRpt>");
	for (int i = 0; i < levels - 2; i++)
		p += sprintf(p, "<X>");
	for (int i = 0; i < levels - 2; i++)
		p += sprintf(p, "</X>");
	sprintf(p, "</CstmrPmtStsRpt></Document>");
	return out;
}

int main(void)
{
	struct arena a = { 0 };
	struct pain002 r;
	ok(read_it(&a, DOC("<GrpHdr><MsgId> M-1 </MsgId></GrpHdr>"
		"<OrgnlGrpInfAndSts><OrgnlMsgId>REMIT-1</OrgnlMsgId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>"
		"<OrgnlPmtInfAndSts><OrgnlPmtInfId> REMIT-1 </OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>"
		"<TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
		"<StsRsnInf><Rsn><Prtry>X</Prtry></Rsn></StsRsnInf><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>"
		"<TxInfAndSts><OrgnlEndToEndId>E2</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
		"<StsRsnInf><Rsn><Prtry>K1</Prtry><Cd>AC01</Cd></Rsn></StsRsnInf></TxInfAndSts>"
		"</OrgnlPmtInfAndSts>"), &r) == 0, "a report is read");
	is_str(r.message_id, "M-1", "MsgId, trimmed");
	is_str(r.original_message_id, "REMIT-1", "OrgnlMsgId");
	is_str(r.group_status, "PART", "GrpSts");
	ok(r.npmt == 1 && r.pmt[0].ntx == 2, "one payment information, two transactions");
	is_str(r.pmt[0].status, "RJCT", "PmtInfSts");
	is_str(r.pmt[0].original_id, "REMIT-1", "OrgnlPmtInfId, trimmed");
	is_str(r.pmt[0].reason, "AM04", "its reason");
	ok(!r.pmt[0].reason_prtry && !r.group_reason_prtry, "a Cd is not proprietary");
	is_str(r.pmt[0].tx[0].reason, "X", "the first StsRsnInf only: its Prtry when it has no Cd");
	ok(r.pmt[0].tx[0].reason_prtry, "flagged proprietary");
	is_str(r.pmt[0].tx[1].reason, "AC01", "a Rsn with both is taken at its Cd");
	ok(!r.pmt[0].tx[1].reason_prtry, "not proprietary then");
	is_str(r.pmt[0].tx[1].status, "ACSC", "TxSts");
	ok(read_it(&a, "<p:Document xmlns:p=\"" NS "\"><p:CstmrPmtStsRpt><p:GrpHdr><p:MsgId>P</p:MsgId>"
		"</p:GrpHdr></p:CstmrPmtStsRpt></p:Document>", &r) == 0 && r.message_id &&
		strcmp(r.message_id, "P") == 0, "a prefixed namespace is the namespace");
	ok(read_it(&a, DOC("<GrpHdr/>"), &r) == 0 && !r.message_id && !r.original_message_id,
		"what is missing is NULL (the caller names it)");
	ok(read_it(&a, DOC("<GrpHdr><MsgId>&#77;&lt;</MsgId></GrpHdr>"), &r) == 0 &&
		strcmp(r.message_id, "M<") == 0, "character references and predefined entities");

	static const struct { const char *name, *xml; } bad[] = {
		{ "empty", "" },
		{ "not well-formed", "<Document" },
		{ "a DOCTYPE", "<!DOCTYPE Document>" DOC("") },
		{ "a DOCTYPE with an internal subset", "<!DOCTYPE Document [<!ENTITY a \"b\">]>" DOC("") },
		{ "an external DTD", "<!DOCTYPE Document SYSTEM \"http://127.0.0.1:1/x.dtd\">" DOC("") },
		{ "a file entity", "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			DOC("<GrpHdr><MsgId>&x;</MsgId></GrpHdr>") },
		{ "an undefined entity", DOC("<GrpHdr><MsgId>&x;</MsgId></GrpHdr>") },
		{ "another namespace", "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\">"
			"<CstmrPmtStsRpt/></Document>" },
		{ "no namespace", "<Document><CstmrPmtStsRpt/></Document>" },
		{ "another root", "<Report xmlns=\"" NS "\"><CstmrPmtStsRpt/></Report>" },
		{ "no CstmrPmtStsRpt", "<Document xmlns=\"" NS "\"><FIToFIPmtStsRpt/></Document>" },
		{ "invalid UTF-8", DOC("<GrpHdr><MsgId>\xC3\x28</MsgId></GrpHdr>") },
		{ "an overlong form", DOC("<GrpHdr><MsgId>\xC0\xAF</MsgId></GrpHdr>") },
		{ "a NUL byte", NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		if (!bad[i].xml) {
			static const char nul[] = "<Document xmlns=\"" NS "\"><CstmrPmtStsRpt>\0</CstmrPmtStsRpt></Document>";
			ok(pain002_read(&a, nul, sizeof nul - 1, &r) == -1, "refused: a NUL byte");
			continue;
		}
		ok(read_it(&a, bad[i].xml, &r) == -1, "refused: %s", bad[i].name);
	}
	ok(read_it(&a, deep(&a, 32), &r) == 0, "32 levels are read");
	ok(read_it(&a, deep(&a, 33), &r) == -1, "33 are refused");
	ok(read_it(&a, deep(&a, 300), &r) == -1, "300 are refused");
	ok(pain002_status_known("ACSC", 0) && pain002_status_known("RCVD", 0) && !pain002_status_known("PART", 0)
		&& pain002_status_known("PART", 1) && !pain002_status_known("acsc", 1), "the status codes known");
	arena_free(&a);
	return done();
}
