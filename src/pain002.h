/* The bank's answer (API §9): a pain.002.001.10 Customer Payment Status Report read with
 * libxml2, with no DTD, no entity expansion and no network. */
#ifndef REMIT_PAIN002_H
#define REMIT_PAIN002_H
#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

#define PAIN002_NS "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
#define PAIN002_DEPTH_MAX 32   /* elements, Document being 1 */

/* Each value is the element's text with surrounding white space trimmed, NULL when the
 * element is absent. A reason is the first StsRsnInf's Rsn: its Cd, or when it has none its
 * Prtry (a bank's own code or words; `reason_prtry` set then). */
struct pain002_tx {
	const char *end_to_end_id, *status, *reason;
	bool reason_prtry;
};

struct pain002_pmt {
	const char *original_id;              /* OrgnlPmtInfId */
	const char *status, *reason;          /* PmtInfSts */
	bool reason_prtry;
	size_t ntx;
	struct pain002_tx *tx;                /* TxInfAndSts, in document order */
};

struct pain002 {
	const char *message_id;               /* GrpHdr/MsgId */
	const char *original_message_id;      /* OrgnlGrpInfAndSts/OrgnlMsgId */
	const char *group_status, *group_reason;   /* OrgnlGrpInfAndSts/GrpSts */
	bool group_reason_prtry;
	size_t npmt;
	struct pain002_pmt *pmt;              /* OrgnlPmtInfAndSts, in document order */
};

/* Reads `len` bytes into *out, every string in `a`. -1 (MALFORMED_XML) when they are empty,
 * not well-formed UTF-8 XML, hold a DOCTYPE, nest deeper than PAIN002_DEPTH_MAX elements, or
 * their root is not Document/CstmrPmtStsRpt in PAIN002_NS; else 0. What is missing or wrong
 * inside a well-formed report is for the caller to name (VALIDATION_ERROR). */
int pain002_read(struct arena *a, const char *bytes, size_t len, struct pain002 *out);

/* true for a TxSts, PmtInfSts or GrpSts code remit knows (ACSC ACCC RJCT ACCP ACSP ACWC
 * ACTC PDNG RCVD; PART too when `group` is set). */
int pain002_status_known(const char *code, int group);

/* true for ACSC and ACCC, the statuses that say the money has left. */
int pain002_settled(const char *code);

#endif
