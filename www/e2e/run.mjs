// The browser tests of the web frontend, against the real stack (REMIT_URL), printing TAP.
// Started by t/../www/e2e/browser.t (which starts the stack); by hand:
//   REMIT_URL=... REMIT_BIN=src/remit REMIT_CONFIG=var/remit.conf node www/e2e/run.mjs [name...]
// Each scenario checks its effects through the API, never only on the screen.
import AxeBuilder from '@axe-core/playwright';
import {
	launch, newOrg, newUser, newPage, signIn, screen, shot, api, ok, list, tag, URL,
} from './lib.mjs';
import approvers from './approvers.mjs';
import bulk from './bulk.mjs';
import webhooks from './webhooks.mjs';
import invite from './invite.mjs';

let n = 0, failed = 0;
function check(cond, name, diag) {
	n++;
	if (cond) console.log(`ok ${n} - ${name}`);
	else { failed++; console.log(`not ok ${n} - ${name}`); if (diag) console.log('# ' + String(diag).replace(/\n/g, '\n# ')); }
}
const eq = (got, want, name) => check(JSON.stringify(got) === JSON.stringify(want), name,
	`got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
function skip(name, why) { n++; console.log(`ok ${n} - ${name} # SKIP ${why}`); }

const browser = await launch();
const pages = [];
async function page(user, opts) {
	const p = await newPage(browser, opts);
	pages.push(p);
	if (user) await signIn(p, user);
	return p;
}
const flash = p => p.waitForSelector('.flash');
// Removes the message of the previous action, so that waiting for the next one waits for it.
const clear = p => p.evaluate(() => { for (const f of document.querySelectorAll('.flash')) f.remove(); });

// Does the stack have password sign-in (API §7)? Before it does, people sign in with tokens.
const sessions = (await api(null, 'POST', '/sessions', {})).status !== 401;

// An organisation with people holding API tokens: {admin, maker, a1, a2, tr, ...}.
async function team(extra = {}) {
	const org = newOrg();
	const admin = { ...org, id: org.userId, token: org.token };
	const t = { admin };
	const roles = { maker: ['CREATOR'], maker2: ['CREATOR'], a1: ['APPROVER'], a2: ['APPROVER'], tr: ['TREASURER'], ...extra };
	for (const [k, r] of Object.entries(roles)) t[k] = await newUser(admin, r, k);
	return t;
}

async function batchWith(maker, reqs, submit) {
	const b = await ok(maker.token, 'POST', '/batches', { name: 'Batch ' + tag() });
	const ids = [];
	for (const [amount, currency, name] of reqs)
		ids.push((await ok(maker.token, 'POST', `/batches/${b.id}/requests`, { amount, currency,
			beneficiaryName: name || 'Bea Beneficiary', beneficiaryAccount: 'DE89370400440532013000' })).id);
	if (submit) await ok(submit.token, 'POST', `/batches/${b.id}/submit`);
	return { batch: b, ids };
}

const audit = async (token, id, action) => (await list(token, `/audit?objectId=${id}`)).filter(e => e.action === action).length;

const scenarios = {};

// ---- the promise: a double click on every money button is one effect -----------------
scenarios['double click on every money button makes one effect'] = async () => {
	const t = await team();
	const p = await page(t.maker);
	await screen(p, '#/batches');
	const name = 'Double ' + tag();
	await p.fill('#newbatch-name', name);
		await p.dblclick('#create-batch');
	await p.waitForSelector('#newreq');
	eq((await list(t.maker.token, '/batches')).filter(b => b.name === name).length, 1, 'create batch: one batch');
	const bid = p.url().match(/batches\/(\d+)/)[1];

	for (const [amount, cur] of [['1250.50', 'EUR'], ['80', 'USD']]) {
		await p.fill('#newreq-amount', amount);
		await p.selectOption('#newreq-currency', cur);
		await p.fill('#newreq-beneficiaryName', 'Zed Ltd');
		await p.fill('#newreq-beneficiaryAccount', 'DE89 3704 0044 0532 0130 00');
		await clear(p);
		await p.dblclick('#add-request');
		await flash(p);
	}
	eq((await list(t.maker.token, `/batches/${bid}/requests`)).length, 2, 'add request ×2 (double clicks): two requests');

	await p.dblclick('#submit-batch');
	await clear(p);
	await p.dblclick('#confirm-ok');
	await p.waitForSelector('.flash:has-text("Batch submitted")');
	eq((await ok(t.maker.token, 'GET', `/batches/${bid}`)).status, 'SUBMITTED', 'submit: batch SUBMITTED');
	eq(await audit(t.maker.token, bid, 'batch.submitted'), 1, 'submit: one batch.submitted event');
	const [r2, r1] = (await list(t.maker.token, `/batches/${bid}/requests`)).map(r => r.id);

	const a = await page(t.a1);
	await screen(a, '#/approvals');
	await clear(a);
	await a.dblclick(`tr[data-id="${r1}"] button.approve`);
	await a.waitForSelector(`.flash:has-text("Request ${r1} approved")`);
	eq((await list(t.a1.token, `/requests/${r1}/approvals`)).length, 1, 'approve: one decision');
	eq((await list(t.a1.token, `/ledger/entries?requestId=${r1}`)).length, 1, 'approve: one OBLIGATION entry');
	await a.dblclick(`tr[data-id="${r2}"] button.reject`);   // Reject asks for its reason first
	await a.fill('#reason-text', 'not this month');
	await clear(a);
	await a.dblclick('#confirm-ok');
	await a.waitForSelector(`.flash:has-text("Request ${r2} rejected")`);
	eq((await list(t.a1.token, `/requests/${r2}/approvals`)).map(d => d.decision), ['REJECTED'], 'reject: one decision');
	eq(await audit(t.a1.token, r2, 'request.rejected'), 1, 'reject: one event');

	const tr = await page(t.tr);
	await screen(tr, '#/treasury');
	await tr.fill(`#pay-${r1}-paymentReference`, 'WIRE-1');
	await tr.dblclick(`tr[data-id="${r1}"] button.mark-paid`);
	await clear(tr);
	await tr.dblclick('#confirm-ok');
	await tr.waitForSelector(`.flash:has-text("Request ${r1} marked paid")`);
	const entries = await list(t.tr.token, `/ledger/entries?requestId=${r1}`);
	eq(entries.map(e => e.type).sort(), ['OBLIGATION', 'SETTLEMENT'], 'mark paid: one SETTLEMENT entry');
	eq((await ok(t.tr.token, 'GET', `/requests/${r1}`)).paymentReference, 'WIRE-1', 'mark paid: the reference');
	eq(await audit(t.tr.token, r1, 'request.paid'), 1, 'mark paid: one event');
};

// ---- a lost response, and a visible retrying state ------------------------------------
scenarios['lost response: retried with the same key, one effect, success shown'] = async () => {
	const t = await team();
	const { batch } = await batchWith(t.maker, []);
	const p = await page(t.maker);
	const keys = [];
	await p.route('**/api/v1/batches/*/requests', async route => {
		if (route.request().method() !== 'POST') return route.continue();
		keys.push(route.request().headers()['idempotency-key']);
		if (keys.length === 1) {
			await route.fetch();          // the server gets it and commits...
			return route.abort('failed'); // ...and the browser never sees the answer
		}
		return route.continue();
	});
	await screen(p, `#/batches/${batch.id}`);
	await p.fill('#newreq-amount', '42.10');
	await p.fill('#newreq-beneficiaryName', 'Lost Response GmbH');
	await p.fill('#newreq-beneficiaryAccount', 'DE89370400440532013000');
	await clear(p);
	await p.click('#add-request');
	const f = await p.waitForSelector('.flash');
	check(/Request added/.test(await f.textContent()), 'success shown', await f.textContent());
	eq(keys.length, 2, 'the browser sent it twice');
	check(keys[0] && keys[0] === keys[1], 'with the same Idempotency-Key', keys.join(' '));
	const reqs = await list(t.maker.token, `/batches/${batch.id}/requests`);
	eq(reqs.map(r => r.amount), ['42.10'], 'one request on the server');

	// A 503 with Retry-After, then the real answer: "retrying" is shown meanwhile.
	const { ids: [rid] } = await batchWith(t.maker, [['10.00', 'EUR']], t.maker2);
	const a = await page(t.a1);
	let shown = 0;
	await a.route(`**/api/v1/requests/${rid}/approve`, async route => {
		if (shown++ === 0) return route.fulfill({ status: 503, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
			body: '{"error":{"code":"SERVICE_UNAVAILABLE","message":"try later","details":{}}}' });
		return route.continue();
	});
	await screen(a, '#/approvals');
	await a.click(`tr[data-id="${rid}"] button.approve`);
	const retrying = await a.waitForSelector('.status.retrying', { timeout: 3000 }).catch(() => null);
	check(retrying, 'a 503 shows the retrying state');
	await a.waitForSelector(`.flash:has-text("Request ${rid} approved")`);
	eq((await ok(t.a1.token, 'GET', `/requests/${rid}`)).status, 'APPROVED', 'then approved, once');
};

// ---- separation of duties --------------------------------------------------------------
scenarios['the maker cannot approve their own request'] = async () => {
	const t = await team({ self: ['CREATOR', 'APPROVER'] });
	const { ids: [rid] } = await batchWith(t.self, [['500.00', 'GBP']], t.maker);
	const p = await page(t.self);
	await screen(p, '#/approvals?tab=all');
	const row = p.locator(`tr[data-id="${rid}"]`);
	check(await row.getAttribute('class') === 'greyed', 'the row is greyed');
	check(/you created this request/.test(await row.textContent()), 'with the reason', await row.textContent());
	eq(await row.locator('button.approve').count(), 0, 'no Approve button');
	await screen(p, `#/requests/${rid}`);
	eq(await p.locator('button.approve').count(), 0, 'no Approve button on the request page');
	await shot(p, 'request-maker');

	// Forced: a queue that (wrongly) offers it. The API's 403 is shown, nothing changes.
	await p.route('**/api/v1/requests?actionableBy=me*', async route => {
		const res = await route.fetch();
		const body = await res.json();
		const own = await ok(t.self.token, 'GET', `/requests/${rid}`);
		body.data = [own, ...body.data.filter(r => r.id !== rid)];
		await route.fulfill({ response: res, json: body });
	});
	await screen(p, '#/approvals');
	await p.click(`tr[data-id="${rid}"] button.approve`);
	const err = await p.waitForSelector(`tr[data-id="${rid}"] .status.error`);
	check(/You made this request/.test(await err.textContent()), "the API's 403 is shown in plain words", await err.textContent());
	eq((await list(t.self.token, `/requests/${rid}/approvals`)).length, 0, 'no decision was recorded');
};

// ---- the API's field errors beside their fields -----------------------------------------
scenarios["field errors: the API's details beside the fields, nothing stored"] = async () => {
	const t = await team();
	const { batch } = await batchWith(t.maker, []);
	const p = await page(t.maker);
	await screen(p, `#/batches/${batch.id}`);
	await p.fill('#newreq-amount', '10.123');
	await p.click('#add-request');
	check(/at most 2 decimals/.test(await p.textContent('#newreq-amount-error')), 'too many decimals: refused before sending');
	await p.fill('#newreq-amount', '10.12');
	await p.fill('#newreq-beneficiaryName', 'Checksum Ltd');
	await p.fill('#newreq-beneficiaryAccount', 'DE89 3704 0044 0532 0130 01');   // bad check digits
	await p.click('#add-request');
	await p.waitForSelector('#newreq-beneficiaryAccount[aria-invalid="true"]');
	check((await p.textContent('#newreq-beneficiaryAccount-error')).length > 0, "the API's message for beneficiaryAccount is beside it");
	check(await p.evaluate(() => document.activeElement.id) === 'newreq-beneficiaryAccount', 'and the field has the focus');
	eq(await p.inputValue('#newreq-beneficiaryName'), 'Checksum Ltd', 'what was typed stays');
	eq((await list(t.maker.token, `/batches/${batch.id}/requests`)).length, 0, 'nothing was stored');
	await shot(p, 'field-errors');
};

// ---- two people edit one request --------------------------------------------------------
scenarios['two contexts edit one request: the second sees the 412 flow'] = async () => {
	const t = await team();
	const { batch, ids: [rid] } = await batchWith(t.maker, [['75.00', 'CHF', 'Original AG']]);
	const a = await page(t.maker), b = await page(t.maker2);
	for (const p of [a, b]) {
		await screen(p, `#/batches/${batch.id}`);
		await p.click(`tr[data-id="${rid}"] button:has-text("Edit")`);
	}
	await a.fill('#editreq-purpose', 'invoice 17');
	await clear(a);
	await a.click('#save-request');
	await a.waitForSelector('.flash:has-text("Request saved")');
	await b.fill('#editreq-beneficiaryName', 'Second Writer AG');
	await b.click('#save-request');
	const st = await b.waitForSelector('#editreq .status.error');
	check(/Someone else changed this/.test(await st.textContent()), 'the second is told someone else changed it', await st.textContent());
	await shot(b, 'conflict-412');
	const r = await ok(t.maker.token, 'GET', `/requests/${rid}`);
	eq([r.version, r.purpose, r.beneficiaryName], [2, 'invoice 17', 'Original AG'], "only the first change is stored");
	await Promise.all([b.waitForEvent('load'), b.click('#editreq .status button:has-text("Reload")')]);
	await b.waitForSelector('main:not([aria-busy]) h1');
	check(/invoice 17/.test(await b.textContent(`tr[data-id="${rid}"]`)), 'after reload the first change is shown');
};

// ---- keyboard only ----------------------------------------------------------------------
// Tab until `selector` has the focus (at most 80 presses); fails otherwise.
async function tabTo(p, selector) {
	for (let i = 0; i < 80; i++) {
		if (await p.evaluate(s => document.activeElement && document.activeElement.matches(s), selector)) return;
		await p.keyboard.press('Tab');
	}
	throw new Error(`Tab never reached ${selector}`);
}

async function keyboardSignIn(p, user) {
	await p.goto(URL + '/#/signin');
	await p.waitForSelector('#signin');
	if (user.password) {
		await tabTo(p, '#signin-orgId'); await p.keyboard.type(String(user.orgId));
		await tabTo(p, '#signin-email'); await p.keyboard.type(user.email);
		await tabTo(p, '#signin-password'); await p.keyboard.type(user.password);
		await p.keyboard.press('Enter');
	} else {
		await tabTo(p, 'summary'); await p.keyboard.press('Enter');
		await tabTo(p, '#tokensignin-token'); await p.keyboard.type(user.token);
		await p.keyboard.press('Enter');
	}
	await p.waitForSelector('#signout');
}

scenarios['keyboard only: create, add, submit, approve, pay'] = async () => {
	const t = await team();
	const m = await page(null);
	await keyboardSignIn(m, t.maker);
	await m.waitForSelector('main:not([aria-busy]) h1');
	await tabTo(m, '#newbatch-name'); await m.keyboard.type('Keyboard batch');
	await m.keyboard.press('Enter');
	await m.waitForSelector('#newreq');
	await tabTo(m, '#newreq-amount'); await m.keyboard.type('19.99');
	await tabTo(m, '#newreq-currency'); await m.keyboard.type('USD');
	await tabTo(m, '#newreq-beneficiaryName'); await m.keyboard.type('Keys Inc');
	await tabTo(m, '#newreq-beneficiaryAccount'); await m.keyboard.type('GB82WEST12345698765432');
	await clear(m);
	await m.keyboard.press('Enter');
	await m.waitForSelector('.flash:has-text("Request added")');
	await tabTo(m, '#submit-batch'); await m.keyboard.press('Enter');
	await m.waitForSelector('#confirm[open]');
	check(await m.evaluate(() => document.activeElement.id) === 'confirm-ok', 'the confirmation takes the focus');
	await clear(m);
	await m.keyboard.press('Enter');
	await m.waitForSelector('.flash:has-text("Batch submitted")');
	const bid = m.url().match(/batches\/(\d+)/)[1];
	const [req] = await list(t.maker.token, `/batches/${bid}/requests`);
	eq([req.status, req.amount, req.currency], ['PENDING_APPROVAL', '19.99', 'USD'], 'maker: submitted by keyboard');

	const a = await page(null);
	await keyboardSignIn(a, t.a1);
	await a.goto(URL + '/?k=1#/approvals');
	await a.waitForSelector('main:not([aria-busy]) h1');
	await clear(a);
	await tabTo(a, `tr[data-id="${req.id}"] button.approve`); await a.keyboard.press('Enter');
	await a.waitForSelector(`.flash:has-text("Request ${req.id} approved")`);
	const tr = await page(null);
	await keyboardSignIn(tr, t.tr);
	await tr.goto(URL + '/?k=1#/treasury');
	await tr.waitForSelector('main:not([aria-busy]) h1');
	await tabTo(tr, `#pay-${req.id}-paymentReference`); await tr.keyboard.type('KEY-1');
	await tr.keyboard.press('Enter');
	await tr.waitForSelector('#confirm[open]');
	await clear(tr);
	await tr.keyboard.press('Enter');
	await tr.waitForSelector(`.flash:has-text("Request ${req.id} marked paid")`);
	eq((await ok(t.tr.token, 'GET', `/requests/${req.id}`)).status, 'PAID', 'approved and paid by keyboard');
};

// ---- the whole flow with invitations (API §7) ------------------------------------------
async function acceptInvitation(link, password) {
	const p = await page(null);
	await p.goto(link);
	await p.fill('#accept-password', password);
	await p.fill('#accept-confirm', password);
	await p.click('#accept button[type=submit]');
	await p.click('#accept .status a');            // "Sign in now", organisation and email filled in
	await p.fill('#signin-password', password);
	await p.click('#signin button[type=submit]');
	await p.waitForSelector('#signout');
	return p;
}

scenarios['whole flow: invitations, batch in two currencies, two approvals, payment, ledger, audit'] = async () => {
	if (!sessions) return skip('whole flow', 'password sign-in (POST /api/v1/sessions) is not in this build');
	const org = newOrg('Flow ' + tag());
	const pw = 'correct horse battery staple';
	const adminPage = await acceptInvitation(`${URL}/#/accept?token=${encodeURIComponent(org.invitation)}&org=${org.orgId}`, pw);
	await screen(adminPage, '#/admin');
	// The admin makes themself the maker, and invites three people.
	const adminRow = adminPage.locator(`tr[data-email="${org.email}"]`);
	await adminRow.locator('input[value=CREATOR]').check();
	await adminRow.locator('button:has-text("Save roles")').click();
	await adminRow.locator('.status.ok').waitFor();
	const people = { ann: ['APPROVER'], ben: ['APPROVER'], tess: ['TREASURER'] };
	const links = {};
	for (const [who, roles] of Object.entries(people)) {
		await adminPage.fill('#newuser-email', `${who}-${org.orgId}@example.test`);
		await adminPage.fill('#newuser-name', who);
		for (const r of roles) await adminPage.check(`#newuser-${r}`);
		await clear(adminPage);
		await adminPage.click('#add-user');
		await adminPage.waitForSelector('.flash');
		const row = adminPage.locator(`tr[data-email="${who}-${org.orgId}@example.test"]`);
		await row.locator('button:has-text("Invite")').click();
		links[who] = await row.locator('.invite-link').textContent();
	}
	await adminPage.click('#rules button:has-text("Add rule")');
	await adminPage.click('#rules button:has-text("Add rule")');
	const rules = adminPage.locator('#rules tbody tr');
	await rules.nth(0).locator('select').selectOption('EUR');
	await rules.nth(1).locator('select').selectOption('USD');
	await adminPage.click('#save-rules');
	await adminPage.waitForSelector('#rules .status.ok');
	await shot(adminPage, 'admin');
	const pages = {};
	for (const who of Object.keys(people)) pages[who] = await acceptInvitation(links[who], pw + ' ' + who);

	// The maker (the admin, now CREATOR too) creates a batch of three requests in two currencies.
	await screen(adminPage, '#/batches');
	await adminPage.fill('#newbatch-name', 'June suppliers');
	await adminPage.click('#create-batch');
	await adminPage.waitForSelector('#newreq');
	for (const [amount, cur, name] of [['1000.00', 'EUR', 'Acier SA'], ['250.5', 'EUR', 'Bois SARL'], ['99.99', 'USD', 'Cable Inc']]) {
		await adminPage.fill('#newreq-amount', amount);
		await adminPage.selectOption('#newreq-currency', cur);
		await adminPage.fill('#newreq-beneficiaryName', name);
		await adminPage.fill('#newreq-beneficiaryAccount', 'FR14 2004 1010 0505 0001 3M02 606');
		await clear(adminPage);
		await adminPage.click('#add-request');
		await adminPage.waitForSelector('.flash:has-text("Request added")');
	}
	await shot(adminPage, 'batch-draft');
	await adminPage.click('#submit-batch');
	await clear(adminPage);
	await adminPage.click('#confirm-ok');
	await adminPage.waitForSelector('.flash:has-text("Batch submitted")');
	const token = await adminPage.evaluate(() => JSON.parse(sessionStorage.getItem('remit.session')).token);
	const bid = adminPage.url().match(/batches\/(\d+)/)[1];
	const reqs = await list(token, `/batches/${bid}/requests`);
	eq(reqs.map(r => r.requiredApprovals), [2, 2, 2], 'the 2-approval rules apply');

	// Ann approves all three with bulk approve; Ben one by one.
	const ann = pages.ann;
	await screen(ann, '#/approvals');
	for (const r of reqs) await ann.check(`#sel-${r.id}`);
	await ann.click('#bulk-approve');
	await ann.waitForSelector('#confirm[open]');
	const totalsText = await ann.textContent('#bulk-totals');
	check(/1,250\.50/.test(totalsText) && /99\.99/.test(totalsText), 'bulk: totals per currency confirmed', totalsText);
	await shot(ann, 'bulk-approve-confirm');
	await clear(ann);
	await ann.click('#confirm-ok');
	await ann.waitForSelector('.flash:has-text("Bulk approval: 3 of 3 approved")');
	await shot(ann, 'approvals-after-bulk');
	const ben = pages.ben;
	await screen(ben, '#/approvals');
	check(/1 of 2 EUR approvals/.test(await ben.textContent('main')), 'progress "1 of 2 EUR approvals" shown');
	await shot(ben, 'approvals');
	for (const r of reqs) {
		await clear(ben);
		await ben.click(`tr[data-id="${r.id}"] button.approve`);
		await ben.waitForSelector(`.flash:has-text("Request ${r.id} approved")`);
	}
	const tess = pages.tess;
	await screen(tess, '#/treasury');
	await shot(tess, 'treasury');
	for (const r of reqs) {
		await tess.fill(`#pay-${r.id}-paymentReference`, 'PAY-' + r.id);
		await tess.click(`tr[data-id="${r.id}"] button.mark-paid`);
		await clear(tess);
		await tess.click('#confirm-ok');
		await tess.waitForSelector(`.flash:has-text("Request ${r.id} marked paid")`);
	}
	eq((await ok(token, 'GET', `/batches/${bid}`)).status, 'COMPLETED', 'the batch is COMPLETED');
	await screen(tess, '#/ledger');
	const bal = await tess.textContent('#balances');
	check(/1,250\.50/.test(bal) && /\$99\.99/.test(bal), 'balances show the settlements', bal);
	await shot(tess, 'ledger');
	await screen(tess, '#/audit');
	const log = await tess.textContent('main');
	check(/request\.paid/.test(log) && /batch\.completed/.test(log), 'the audit log shows payment and completion');
	check(/Chain links consistent/.test(log), 'and a consistent chain');
	await shot(tess, 'audit');
};

// ---- an expired session keeps what was typed -------------------------------------------
scenarios['expired session: sign in again without losing what was typed'] = async () => {
	if (!sessions) return skip('expired session', 'password sign-in (POST /api/v1/sessions) is not in this build');
	const t = await team();
	const { batch } = await batchWith(t.maker, []);
	const pw = 'a long enough password';
	const inv = await ok(t.admin.token, 'POST', `/users/${t.maker.id}/invitations`, {});
	await ok(null, 'POST', '/invitations/accept', { token: inv.token, password: pw });
	const p = await page({ ...t.maker, password: pw });
	await screen(p, `#/batches/${batch.id}`);
	await p.fill('#newreq-amount', '12.34');
	await p.fill('#newreq-beneficiaryName', 'Typed Before Expiry');
	await p.fill('#newreq-beneficiaryAccount', 'DE89370400440532013000');
	const token = await p.evaluate(() => JSON.parse(sessionStorage.getItem('remit.session')).token);
	await api(token, 'DELETE', '/sessions/current');     // the session ends
	await p.click('#add-request');
	await p.waitForSelector('#reauth[open]');
	await p.fill('#reauth-form-password', pw);
	await clear(p);
	await p.click('#reauth-form button[type=submit]');
	await p.waitForSelector('.flash:has-text("Request added")');
	const reqs = await list(t.maker.token, `/batches/${batch.id}/requests`);
	eq(reqs.map(r => [r.amount, r.beneficiaryName]), [['12.34', 'Typed Before Expiry']], 'what was typed was sent, once');
};

// ---- accessibility, small screens and screenshots of every screen ----------------------
scenarios['every screen: no serious or critical axe violation, 360 px wide, screenshots'] = async () => {
	const t = await team({ boss: ['ADMIN', 'CREATOR', 'APPROVER', 'TREASURER'] });
	const { batch } = await batchWith(t.maker, [['1200.00', 'EUR', 'Dup Co'], ['1200.00', 'EUR', 'Dup Co'], ['50000', 'JPY']], t.maker2);
	const { batch: draft, ids: [did] } = await batchWith(t.maker, [['7.5', 'KWD', 'Three Decimals']]);
	const { ids: [aid] } = await batchWith(t.maker, [['10.00', 'USD']], t.maker2);
	await ok(t.a1.token, 'POST', `/requests/${aid}/approve`, {});
	const screens = [['batches', '#/batches'], ['batch', `#/batches/${draft.id}`], ['batch-submitted', `#/batches/${batch.id}`],
		['request', `#/requests/${did}`], ['requests', '#/requests'], ['approvals', '#/approvals?tab=all'], ['treasury', '#/treasury'],
		['ledger', '#/ledger'], ['audit', '#/audit'], ['admin', '#/admin']];
	for (const [w, h, suffix] of [[1280, 900, ''], [360, 740, '-360']]) {
		const p = await page(t.boss, { viewport: { width: w, height: h } });
		for (const [name, hash] of screens) {
			await screen(p, hash);
			const r = await new AxeBuilder({ page: p }).analyze();
			const bad = r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical');
			check(!bad.length, `axe ${name}${suffix}: no serious or critical violation`,
				bad.map(v => `${v.impact} ${v.id}: ${v.nodes.map(x => x.target).join(', ')}`).join('\n'));
			const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
			check(overflow <= 0, `${name}${suffix}: no sideways scrolling of the page`, `${overflow}px too wide`);
			await shot(p, `${name}${suffix}`);
		}
	}
	const p = await page(null);
	await p.goto(URL + '/');
	await p.waitForSelector('#signin');
	await shot(p, 'signin');
	const r = await new AxeBuilder({ page: p }).analyze();
	check(!r.violations.some(v => v.impact === 'serious' || v.impact === 'critical'), 'axe sign-in: no serious or critical violation');
	await p.goto(URL + '/#/accept?token=x&org=1');
	await p.waitForSelector('#accept');
	await shot(p, 'accept');
	const m = await page(t.maker);
	await screen(m, `#/batches/${batch.id}`);
	eq(await m.locator('tr .signal[data-code="DUPLICATE"]').count(), 2, 'same account, amount and currency: both flagged');
};

scenarios['security headers on / and no console error or CSP violation anywhere'] = async () => {
	const res = await fetch(URL + '/');
	eq(res.headers.get('content-security-policy'), "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'", 'CSP');
	eq(res.headers.get('x-content-type-options'), 'nosniff', 'nosniff');
	eq(res.headers.get('referrer-policy'), 'no-referrer', 'Referrer-Policy');
	// Expected: the 4xx and 5xx the scenarios provoke, and the response they drop on purpose.
	const errors = pages.flatMap(p => p.errors.filter(e => !/status of (4\d\d|5\d\d)|net::ERR_FAILED/.test(e)));
	check(!errors.length, 'no page error or CSP violation in any page of the run', errors.join('\n'));
};

Object.assign(scenarios, approvers({ check, eq, page, team, batchWith, flash, clear }));
Object.assign(scenarios, (await import('./payfiles.mjs')).default({ page, check, eq, team, flash, clear, screen, ok, list, tag }));
Object.assign(scenarios, bulk({ check, eq, page, team, batchWith, clear }));
Object.assign(scenarios, webhooks({ page, check, eq, team, screen, list, api }));
Object.assign(scenarios, invite({ page, check, eq, team, screen, list, api }));

const only = process.argv.slice(2);
for (const [name, fn] of Object.entries(scenarios)) {
	if (only.length && !only.some(o => name.includes(o))) continue;
	console.log(`# ${name}`);
	try {
		await fn();
	} catch (err) {
		check(false, `${name}: ran to the end`, err.stack || err);
	}
}
await browser.close();
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
