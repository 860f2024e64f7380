// Browser scenarios of issue 24: approvers see what they approve (API §10 and the bugs
// found when a finance team tried the flow). Each checks its effect through the API too.
// run.mjs merges them: approvers(helpers) → { name: async () => … }.
import AxeBuilder from '@axe-core/playwright';
import { screen, shot, ok, list } from './lib.mjs';

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
		check(who.includes('maker') && who.includes('you'), 'the audit log names people', who.join(','));
		check(!who.some(w => /^user \d+$/.test(w)), 'nobody shows as "user N"', who.join(','));
	};

	// Bug 1: while Approve retries offline, Reject must not be pressable on that row.
	s['approvers: one intent per row while a decision is retrying'] = async () => {
		const t = await team();
		const { ids: [id] } = await batchWith(t.maker, [['50.00', 'EUR']], t.maker);
		const p = await page(t.a1);
		await screen(p, '#/approvals');
		await p.fill(`#decide-${id}-comment`, 'fine');
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
		await p.click(`#decide-${id} button.approve`);
		const text = await (await p.waitForSelector(`#decide-${id} .status.error`)).textContent();
		check(!/\([A-Z_]+\)/.test(text) && /already finished by someone else/.test(text), 'plain words, no code', text);
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
