// Browser scenarios of issue 24: approvers see what they approve (API §10 and the bugs
// found when a finance team tried the flow). Each checks its effect through the API too.
// run.mjs merges them: approvers(helpers) → { name: async () => … }.
import AxeBuilder from '@axe-core/playwright';
import { readFileSync } from 'node:fs';
import { screen, shot, ok, list, tag } from './lib.mjs';

export default function approvers({ check, eq, page, team, batchWith, flash, clear }) {
	const s = {};

	// Bug 2: `#/audit?objectId=1` mixed request 1, batch 1, user 1… Make a batch and a request
	// of one organisation share an id, then follow the request's link in the audit table.
	s['approvers: the audit object link filters by type and id'] = async () => {
		const t = await team();
		const b0 = await ok(t.maker.token, 'POST', '/batches', { name: 'Ids' });
		const add = () => ok(t.maker.token, 'POST', `/batches/${b0.id}/requests`, { amount: '1.00',
			currency: 'EUR', beneficiaryName: 'Ida', beneficiaryAccount: 'DE89370400440532013000' });
		const batches = new Set([b0.id]), requests = new Set();
		let shared = null;
		for (let i = 0; i < 400 && !shared; i++) {
			const lastB = Math.max(...[...batches].map(Number)), lastR = requests.size ? Math.max(...[...requests].map(Number)) : 0;
			if (lastR < lastB) requests.add((await add()).id);
			else batches.add((await ok(t.maker.token, 'POST', '/batches', { name: 'Ids ' + i })).id);
			shared = [...requests].find(id => batches.has(id)) || null;
		}
		check(shared, 'a batch and a request share an id', `${[...batches]} / ${[...requests]}`);
		if (!shared) return;
		const p = await page(t.a1);
		await screen(p, '#/audit');
		await p.click(`#main td a[href="#/audit?objectType=request&objectId=${shared}"] >> nth=0`);
		await p.waitForFunction(() => location.hash.includes('objectType=request'));
		await screen(p);
		const types = await p.$$eval('#main tbody tr td:nth-child(4)', tds => tds.map(td => td.textContent.split(' ')[0]));
		check(types.length > 0 && types.every(x => x === 'request'), 'only the request\'s events', types.join(','));
		eq(await p.textContent('h1'), `Audit log of request ${shared}`, 'the title names the type');
		const events = await list(t.a1.token, `/audit?objectType=request&objectId=${shared}`);
		eq(types.length, events.length, 'as many rows as the API gives for that object');
	};

	// Signals computed by the server, on every queue, and people named (API §10).
	s['approvers: duplicates flagged to approvers and treasurers, people named'] = async () => {
		const t = await team();
		const { ids } = await batchWith(t.maker, [['1234.56', 'EUR'], ['1234.56', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		for (const id of ids) {
			const codes = await p.$$eval(`tr[data-id="${id}"] .signal`, els => els.map(e => e.dataset.code));
			check(codes.includes('DUPLICATE'), `approvals: request ${id} is flagged DUPLICATE`, codes.join(','));
		}
		await shot(p, 'approvals-signals');
		await clear(p);
		await p.click(`#decide-${ids[0]} button.approve`);
		await flash(p);
		eq((await ok(t.a1.token, 'GET', `/requests/${ids[0]}`)).status, 'APPROVED', 'approved');
		const tr = await page(t.tr);
		await screen(tr, '#/treasury');
		const codes = await tr.$$eval(`tr[data-id="${ids[0]}"] .signal`, els => els.map(e => e.dataset.code));
		check(codes.includes('DUPLICATE'), 'treasury: the approved twin is still flagged', codes.join(','));
		await screen(p, `#/audit?objectType=request&objectId=${ids[0]}`);
		const who = await p.$$eval('#main tbody tr td:nth-child(2)', tds => tds.map(td => td.textContent));
		check(who.some(w => w.startsWith('maker')) && who.some(w => w.startsWith('you')), 'the audit log names people', who.join(','));
		check(!who.some(w => /^user \d+$/.test(w)), 'nobody shows as "user N"', who.join(','));
	};

	// Bug 1: while Approve retries offline, Reject must not be pressable on that row.
	s['approvers: one intent per row while a decision is retrying'] = async () => {
		const t = await team();
		const { ids: [id] } = await batchWith(t.maker, [['50.00', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		await p.context().setOffline(true);
		await p.click(`#decide-${id} button.approve`);
		await p.waitForSelector(`#decide-${id} .status.retrying`);
		check(await p.isDisabled(`#decide-${id} button.reject`), 'Reject is disabled while Approve is pending');
		await p.click(`#decide-${id} button.reject`, { force: true }).catch(() => {});
		await p.context().setOffline(false);
		await flash(p);
		const r = await ok(t.a1.token, 'GET', `/requests/${id}`);
		eq(r.status, 'APPROVED', 'the approval went through');
		eq((await list(t.a1.token, `/requests/${id}/approvals`)).map(d => d.decision), ['APPROVED'], 'and nothing else');
	};

	// Bug 4: a row someone else just finished says so plainly.
	s['approvers: a request decided elsewhere reads as a plain sentence'] = async () => {
		const t = await team();
		const { ids: [id] } = await batchWith(t.maker, [['70.00', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		await ok(t.a2.token, 'POST', `/requests/${id}/approve`, {});
		await clear(p);
		await p.click(`#decide-${id} button.approve`);
		const text = await (await flash(p)).textContent();
		check(!/\([A-Z_]+\)/.test(text) && /already finished by someone else/.test(text), 'plain words, no code', text);
		check(text.includes(`Request ${id}`) && /left the queue/.test(text), 'the note names the request that left', text);
		await screen(p);
		eq(await p.locator(`#main tr[data-id="${id}"]`).count(), 0, 'the decided row left the queue');
	};
	// Bug 3: a 193-character name was stored cut at 140 without a word.
	s['approvers: a long name is refused with its length, never cut'] = async () => {
		const t = await team();
		const b = await ok(t.maker.token, 'POST', '/batches', { name: 'Long ' + Date.now() });
		const p = await page(t.maker);
		await screen(p, `#/batches/${b.id}`);
		const long = 'Nordwind Logistik und Spedition Gesellschaft mit beschränkter Haftung, Niederlassung Süd-West, Abteilung Kreditorenbuchhaltung und Zahlungsverkehr, Hauptstraße 1–3, 70173 Stuttgart, Deutschland';
		await p.fill('#newreq-amount', '12.00');
		await p.fill('#newreq-beneficiaryAccount', 'DE89 3704 0044 0532 0130 00');
		await p.focus('#newreq-beneficiaryName');
		await p.keyboard.insertText(long);   // as a paste: maxlength would cut it here
		eq([...await p.inputValue('#newreq-beneficiaryName')].length, [...long].length, 'what was pasted stays whole');
		await p.click('#add-request');
		const err = await p.textContent('#newreq-beneficiaryName-error');
		check(err.includes(`${[...long].length} characters`) && err.includes('140'), 'the error says how long it is and the limit', err);
		eq((await list(t.maker.token, `/batches/${b.id}/requests`)).length, 0, 'nothing was stored');
		const name = [...long].slice(0, 100).join('');
		await p.fill('#newreq-beneficiaryName', name);
		check(/shorten the name to 70/.test(await p.textContent('#newreq-length-note')), 'over 70: the payment file\'s cut is announced');
		await p.click('#add-request');
		await flash(p);
		eq((await list(t.maker.token, `/batches/${b.id}/requests`)).map(r => r.beneficiaryName), [name], 'stored as typed');
	};

	// Approving on a phone: compact rows, a one-line header, select-all with a bulk bar that
	// stays in view, and Reject asking for its reason.
	s['approvers: on a phone: rows at most 160 px, header at most 64 px, select-all, sticky bar, reject asks why'] = async () => {
		const t = await team();
		const reqs = [['1234.56', 'EUR'], ['1234.56', 'EUR'],
			['980.00', 'USD', 'Nordwind Logistik und Spedition Gesellschaft mit beschränkter Haftung, Niederlassung Süd-West'],
			...Array.from({ length: 9 }, (_, i) => [`${i + 1}0.00`, 'EUR', 'Firma ' + i])];
		const { ids } = await batchWith(t.maker, reqs, t.maker);
		const p = await page(t.a1, { viewport: { width: 360, height: 740 } });
		await screen(p, '#/approvals');
		const header = (await p.locator('header.top').boundingBox()).height;
		const heights = [];
		for (const id of ids) heights.push((await p.locator(`#main tr[data-id="${id}"]`).boundingBox()).height);
		console.log(`# measured at 360 px: header ${header} px, queue rows ${Math.min(...heights)}–${Math.max(...heights)} px`);
		check(header <= 64, 'the header is at most 64 px tall', `${header}px`);
		check(Math.max(...heights) <= 160, 'every queue row is at most 160 px tall', heights.join(','));
		const codes = await p.$$eval(`tr[data-id="${ids[0]}"] .signal`, els => els.map(e => e.dataset.code));
		check(codes.includes('DUPLICATE'), 'the compact row shows its signals', codes.join(','));
		for (const sel of ['.approve', '.reject']) check(await p.locator(`tr[data-id="${ids[0]}"] button${sel}`).isVisible(), `${sel} visible in the row`);
		await p.click(`tr[data-id="${ids[0]}"] summary`);
		check(/Possible duplicate of request/.test(await p.textContent(`tr[data-id="${ids[0]}"] details`)), 'details on tap: the signal in words');
		const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
		check(overflow <= 0, 'no sideways scrolling at 360 px', `${overflow}px`);
		// Select-all, and the bar still in view at the bottom of the queue.
		await p.click('#select-all');
		eq(await p.locator('#main input[id^="sel-"]:checked').count(), ids.length, 'select-all selects every row');
		eq(await p.textContent('#bulk-approve'), `Approve selected (${ids.length})`, 'the bulk button counts them');
		await p.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
		await p.waitForTimeout(100);
		const bar = await p.locator('#bulkbar').boundingBox();
		check(bar && bar.y >= 0 && bar.y + bar.height <= 740, 'the bulk bar stays in view at the bottom', JSON.stringify(bar));
		await p.click('#select-all');
		eq(await p.locator('#main input[id^="sel-"]:checked').count(), 0, 'and unselects them');
		// Reject asks for its reason: empty is refused, nothing sent.
		const id = ids[2];
		await p.click(`#decide-${id} button.reject`);
		await p.waitForSelector('#reason-text');
		await p.click('#confirm-ok');
		check((await p.textContent('#reason-error')).length > 0, 'an empty reason is refused in the dialog');
		check(await p.isVisible('#confirm[open]'), 'the dialog stays open');
		eq((await ok(t.a1.token, 'GET', `/requests/${id}`)).status, 'PENDING_APPROVAL', 'nothing was rejected yet');
		await p.fill('#reason-text', 'Wrong account for Nordwind');
		await clear(p);
		await p.click('#confirm-ok');
		await flash(p);
		eq((await ok(t.a1.token, 'GET', `/requests/${id}`)).status, 'REJECTED', 'rejected once the reason is given');
		eq((await list(t.a1.token, `/requests/${id}/approvals`)).map(a => [a.decision, a.comment]),
			[['REJECTED', 'Wrong account for Nordwind']], 'with that reason');
		await shot(p, 'approvals-phone-360');
	};

	// Bug 4, the stale queue: back on the page, the queue is fetched again.
	s['approvers: the queue refreshes when the page regains focus, decided rows leave with a note'] = async () => {
		const t = await team();
		const { ids } = await batchWith(t.maker, [['31.00', 'EUR'], ['32.00', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		eq(await p.locator('#main tr[data-id]').count(), 2, 'two rows');
		await ok(t.a2.token, 'POST', `/requests/${ids[0]}/approve`, {});
		await p.evaluate(() => { document.dispatchEvent(new Event('visibilitychange')); window.dispatchEvent(new Event('focus')); });
		const note = await (await p.waitForSelector('#queue-note')).textContent();
		check(note.includes(`request ${ids[0]} is now approved`), 'the note says which request left and why', note);
		await screen(p);
		eq(await p.$$eval('#main tr[data-id]', trs => trs.map(tr => tr.dataset.id)), [String(ids[1])], 'only the undecided row stays');
		check((await p.textContent('#queue-totals')).includes('32.00'), 'the totals follow', await p.textContent('#queue-totals'));
	};

	// Search, chips, totals per currency, CSV of requests, ledger and audit.
	s['approvers: search and chips on requests, totals per currency, CSV downloads'] = async () => {
		const t = await team();
		const unique = 'Searchable ' + tag();
		const { ids } = await batchWith(t.maker, [['10.00', 'EUR', unique], ['20.00', 'USD'], ['1234.56', 'EUR'], ['1234.56', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/requests');
		await p.fill('#requests-q', unique.slice(0, 20));
		await p.press('#requests-q', 'Enter');
		await p.waitForFunction(() => location.hash.includes('q='));
		await screen(p);
		eq(await p.$$eval('#requests-list tr[data-id]', trs => trs.map(tr => tr.dataset.id)), [String(ids[0])], 'search finds the one request');
		await screen(p, '#/requests');
		await p.click('#chips-signal label:has-text("Duplicate")');
		await p.waitForFunction(() => location.hash.includes('signal=DUPLICATE'));
		await screen(p);
		const dup = (await list(t.a1.token, '/requests?signal=DUPLICATE')).map(r => String(r.id)).sort();
		eq((await p.$$eval('#requests-list tr[data-id]', trs => trs.map(tr => tr.dataset.id))).sort(), dup, 'the signal chip filters as the API does');
		check(await p.isChecked('#chips-signal input[value="DUPLICATE"]'), 'the chip shows as chosen');
		check((await p.textContent('#requests-totals')).includes('2,469.12'), 'totals per currency', await p.textContent('#requests-totals'));
		const csv = async () => {
			const [dl] = await Promise.all([p.waitForEvent('download'), p.click('#main button.csv')]);
			return { name: dl.suggestedFilename(), lines: readFileSync(await dl.path(), 'utf8').split(/\r?\n/).filter(Boolean) };
		};
		let c = await csv();
		eq([c.name, c.lines.length - 1], ['requests.csv', dup.length], 'requests CSV: the filtered rows');
		await p.click('#chips-currency label:has-text("USD")');
		await p.waitForFunction(() => location.hash.includes('currency=USD'));
		await screen(p);
		eq(await p.locator('#requests-list tr[data-id]').count(), 0, 'chips combine (duplicates in USD: none)');
		await screen(p, '#/ledger');
		c = await csv();
		eq([c.name, c.lines.length - 1], ['ledger.csv', (await list(t.a1.token, '/ledger/entries')).length], 'ledger CSV: every entry');
		await screen(p, `#/audit?objectType=request&objectId=${ids[0]}`);
		c = await csv();
		eq([c.name, c.lines.length - 1], ['audit.csv', (await list(t.a1.token, `/audit?objectType=request&objectId=${ids[0]}`)).length], 'audit CSV: the filtered events');
		await screen(p, '#/audit');
		await p.selectOption('#audit-actorId', String(t.maker.id));
		await p.click('#auditfilter button[type=submit]');
		await p.waitForFunction(() => location.hash.includes('actorId='));
		await screen(p);
		const who = await p.$$eval('#main tbody tr td:nth-child(2)', tds => tds.map(td => td.textContent));
		check(who.length > 0 && who.every(w => w.startsWith('maker')), 'the audit filtered by who', who.join(','));
	};

	// Item 4: duplicates are named before a batch is sent.
	s['approvers: the submit dialog lists the batch\'s duplicates'] = async () => {
		const t = await team();
		const { batch, ids } = await batchWith(t.maker, [['777.00', 'EUR'], ['777.00', 'EUR'], ['5.00', 'EUR', 'Other']]);
		const p = await page(t.maker);
		await screen(p, `#/batches/${batch.id}`);
		await p.click('#submit-batch');
		await p.waitForSelector('#submit-duplicates');
		eq((await p.$$eval('#submit-duplicates li', lis => lis.map(li => li.dataset.id))).sort(), ids.slice(0, 2).map(String).sort(), 'both twins listed');
		await p.click('#confirm-cancel');
		eq((await ok(t.maker.token, 'GET', `/batches/${batch.id}`)).status, 'DRAFT', 'nothing sent');
	};

	// Item 5: the clerk's speed.
	s['approvers: the clerk: focus back to Amount with the currency kept; a rejected request copied into a draft'] = async () => {
		const t = await team();
		const b = await ok(t.maker.token, 'POST', '/batches', { name: 'Clerk ' + tag() });
		const p = await page(t.maker);
		await screen(p, `#/batches/${b.id}`);
		await p.fill('#newreq-amount', '12.00');
		await p.selectOption('#newreq-currency', 'USD');
		await p.fill('#newreq-beneficiaryName', 'Quick Co');
		await p.fill('#newreq-beneficiaryAccount', 'DE89 3704 0044 0532 0130 00');
		await clear(p);
		await p.click('#add-request');
		await flash(p);
		await p.waitForFunction(() => document.activeElement && document.activeElement.id === 'newreq-amount');
		eq(await p.inputValue('#newreq-currency'), 'USD', 'the currency is kept');
		eq(await p.inputValue('#newreq-amount'), '', 'the amount is empty for the next one');
		const form = await p.locator('#newreq').boundingBox(), table = await p.locator('#main table').boundingBox();
		check(form.y < table.y, 'the form is above the list');
		const { ids: [rid] } = await batchWith(t.maker, [['66.00', 'GBP', 'Redo Ltd']], t.maker);
		await ok(t.a1.token, 'POST', `/requests/${rid}/reject`, { comment: 'wrong invoice' });
		await screen(p, `#/requests/${rid}`);
		await p.selectOption('#copyreq-batch', String(b.id));
		await clear(p);
		await p.click('#copy-request');
		await flash(p);
		await p.waitForFunction(id => location.hash === `#/batches/${id}`, b.id);
		const got = (await list(t.maker.token, `/batches/${b.id}/requests`)).map(r => [r.amount, r.currency, r.beneficiaryName]);
		eq(got.sort(), [['12.00', 'USD', 'Quick Co'], ['66.00', 'GBP', 'Redo Ltd']], 'the copy is in the draft batch, once');
		eq((await ok(t.maker.token, 'GET', `/requests/${rid}`)).status, 'REJECTED', 'the original stays rejected');
	};

	// Item 6: the treasurer pays from the full account.
	s['approvers: the treasurer sees full IBANs with a copy button, grouped by currency'] = async () => {
		const t = await team();
		const { ids } = await batchWith(t.maker, [['10.00', 'USD'], ['20.00', 'EUR'], ['30.00', 'EUR']], t.maker);
		for (const id of ids) await ok(t.a1.token, 'POST', `/requests/${id}/approve`, {});
		const p = await page(t.tr);
		await p.context().grantPermissions(['clipboard-read', 'clipboard-write']);
		await screen(p, '#/treasury');
		eq(await p.$$eval('#main tbody[data-currency]', bs => bs.map(b => b.dataset.currency)), ['EUR', 'USD'], 'grouped by currency');
		eq((await p.$$eval('tbody[data-currency="EUR"] tr[data-id]', trs => trs.map(tr => tr.dataset.id))).sort(), [ids[1], ids[2]].map(String).sort(), 'the EUR group');
		check((await p.textContent('tbody[data-currency="EUR"] tr.group')).includes('50.00'), 'the group\'s total');
		eq(await p.textContent(`tr[data-id="${ids[0]}"] .iban`), 'DE89 3704 0044 0532 0130 00', 'the full IBAN');
		await p.click(`tr[data-id="${ids[0]}"] .copy-iban`);
		await p.waitForSelector(`tr[data-id="${ids[0]}"] .account [role=status]:has-text("Copied")`);
		eq(await p.evaluate(() => navigator.clipboard.readText()), 'DE89370400440532013000', 'copied without spaces');
		const a = await page(t.a1);
		await screen(a, '#/treasury');
		eq(await a.locator('#main .iban').count(), 0, 'not a treasurer: the account stays masked');
	};

	// Bug 5: leaving while a bulk approval is on its way warns, and the outcome is shown.
	s['approvers: leaving during a bulk approval warns first'] = async () => {
		const t = await team();
		const { ids } = await batchWith(t.maker, [['41.00', 'EUR'], ['42.00', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		let release;
		const held = new Promise(r => { release = r; });
		await p.route('**/api/v1/decisions', async route => { await held; await route.continue(); });
		await p.click('#select-all');
		await p.click('#bulk-approve');
		await p.click('#confirm-ok');
		await p.waitForSelector('#bulkbar .status.busy');
		const dialogs = [];
		p.on('dialog', d => { dialogs.push(d.type()); d.dismiss(); });
		await p.close({ runBeforeUnload: true });
		await p.waitForTimeout(300);
		eq(dialogs, ['beforeunload'], 'the browser asks before leaving');
		check(!p.isClosed(), 'staying keeps the page');
		await clear(p);
		release();
		const text = await (await flash(p)).textContent();
		check(text.includes('2 of 2 approved'), 'what was done is shown', text);
		for (const id of ids) eq((await ok(t.a1.token, 'GET', `/requests/${id}`)).status, 'APPROVED', `request ${id} approved`);
		await p.close({ runBeforeUnload: true });
		await new Promise(r => setTimeout(r, 300));
		eq(dialogs.length, 1, 'nothing pending: leaving asks nothing');
		check(p.isClosed(), 'and the page closes');
	};

	// Screenshots for doc/screenshots and axe on the screens this issue changed, both widths.
	s['approvers: signals and the audit filter at 1280 and 360 px, axe clean'] = async () => {
		const t = await team();
		const { ids } = await batchWith(t.maker, [['1234.56', 'EUR'], ['1234.56', 'EUR'], ['980.00', 'USD', 'Nordwind Logistik Süd-West GmbH']], t.maker);
		for (const [w, hgt, suffix] of [[1280, 900, ''], [360, 740, '-360']]) {
			const p = await page(t.a1, { viewport: { width: w, height: hgt } });
			for (const [name, hash] of [['approvals-signals', '#/approvals'],
				['audit-filter', `#/audit?objectType=request&objectId=${ids[0]}`]]) {
				await screen(p, hash);
				const r = await new AxeBuilder({ page: p }).analyze();
				eq(r.violations.map(v => v.id), [], `axe ${name}${suffix}: no violation`);
				await shot(p, name + suffix);
			}
		}
	};
	return s;
}
