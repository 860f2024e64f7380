// The bank's words (API §9): ISO 20022 status codes and the common ExternalStatusReason1Code
// reason codes of a pain.002, in plain English for the screens. An unknown code is shown as
// it is; so is a bank's own reason (Rsn/Prtry, kept as the code), which may be any text, so
// the tables are looked up by own property only ("constructor" is not a reason).
export const STATUS = {
	ACSC: 'settled', ACCC: 'settled (credited to the beneficiary)', RJCT: 'rejected by the bank',
	ACCP: 'accepted, not yet paid', ACSP: 'accepted, settlement in progress', ACWC: 'accepted with a change',
	ACTC: 'technically accepted', PDNG: 'pending at the bank', RCVD: 'received by the bank',
};

export const REASONS = {
	AC01: 'incorrect account number', AC02: 'invalid debtor account number', AC03: 'invalid creditor account number',
	AC04: 'account closed', AC06: 'account blocked', AC13: 'invalid debtor account type',
	AG01: 'transaction forbidden on this account', AG02: 'invalid bank operation code',
	AM01: 'amount is zero', AM02: 'amount not allowed', AM04: 'insufficient funds', AM05: 'duplicate payment',
	AM09: 'wrong amount', BE01: 'creditor name does not match the account', BE04: 'creditor address missing',
	BE05: 'unrecognised initiating party', CNOR: 'creditor bank not registered', DNOR: 'debtor bank not registered',
	DT01: 'invalid date', ED05: 'settlement failed', FF01: 'invalid file format', MD01: 'no mandate',
	MD07: 'beneficiary deceased', MS02: 'refused by the beneficiary', MS03: 'reason not specified',
	NARR: 'see the bank\'s narrative', RC01: 'invalid bank identifier (BIC)', RR01: 'debtor account or identification missing',
	RR02: 'debtor name or address missing', RR03: 'creditor name or address missing', RR04: 'regulatory reason',
	SL01: 'specific service offered by the debtor bank', TM01: 'received after the bank\'s cut-off time',
};

const known = (table, code) => Object.prototype.hasOwnProperty.call(table, code);
export const statusText = code => code ? (known(STATUS, code) ? `${code}: ${STATUS[code]}` : code) : '';
export const reasonText = code => code ? (known(REASONS, code) ? `${code}: ${REASONS[code]}` : code) : 'no reason given';
