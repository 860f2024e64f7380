// Browser scenarios for many at once (issue 27, API §11): the CSV import's preview and its
// one call, and bulk approve through one POST /decisions. run.mjs merges them into its
// scenarios, handing over its own helpers ({check, eq, page, team, batchWith, clear}).
import { screen, ok, list, shot } from './lib.mjs';

const IBAN = 'DE89 3704 0044 0532 0130 00';

export default ({ check, eq, page, team, batchWith, clear }) => ({
	'import: a CSV preview with per-row errors before anything is sent, then one call': async () => {
		const t = await team();
		const { batch } = await batchWith(t.maker, []);
		const p = await page(t.maker);
		const sent = [];
		await p.route('**/api/v1/batches/*/requests/import', async route => {
			sent.push(route.request().headers()['idempotency-key']);
			return route.continue();
		});
		await screen(p, `#/batches/${batch.id}`);
		const bad = 'amount,currency,beneficiaryName,beneficiaryAccount,purpose\r\n'
			+ `12.50,EUR,"Roe, Jane",${IBAN},"invoice 1, part 2"\r\n`
			+ `1.001,EUR,Bob,${IBAN},\r\n`
			+ `7,XXX,,${IBAN},\r\n`;
		await p.setInputFiles('#import-file', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
		await p.waitForSelector('#import-summary');
		check(/2 of 3 rows have problems/.test(await p.textContent('#import-summary')), 'the preview counts the rows with problems',
			await p.textContent('#import-summary'));
		const row1 = await p.textContent('#import-preview tr[data-row="1"] .row-errors');
		check(/amount: at most 2 decimals/.test(row1), 'row 2: its amount named', row1);
		const row2 = await p.textContent('#import-preview tr[data-row="2"] .row-errors');
		check(/currency/.test(row2) && /beneficiaryName/.test(row2), 'row 3: currency and name named', row2);
		check(await p.isDisabled('#import-send'), 'Import is disabled while a row has a problem');
		await shot(p, 'import-preview-errors');
		const head = 'beneficiaryAccount,amount,currency,beneficiaryName\n';
		await p.setInputFiles('#import-file', { name: 'cols.csv', mimeType: 'text/csv', buffer: Buffer.from('amount,iban\n1,x\n') });
		await p.waitForSelector('#import-problems');
		check(/unknown column “iban”/.test(await p.textContent('#import-problems')), 'an unknown column is named');
		eq(sent.length, 0, 'nothing was sent for a file with problems');

		// Passes the preview, refused by the server (the IBAN's check digits): shown on its row.
		await p.setInputFiles('#import-file', { name: 'iban.csv', mimeType: 'text/csv',
			buffer: Buffer.from(`${head}${IBAN},1.00,EUR,Ann\nGB83 WEST 1234 5698 7654 32,2.00,EUR,Ben\n`) });
		await p.waitForSelector('#import-summary:has-text("2 rows, no problem found")');
		await p.click('#import-send');
		await p.waitForSelector('#import-preview tr[data-row="1"] .field-error');
		check(/beneficiaryAccount/.test(await p.textContent('#import-preview tr[data-row="1"] .row-errors')),
			"the server's error shown on its row");
		eq((await list(t.maker.token, `/batches/${batch.id}/requests`)).length, 0, 'all or nothing: nothing added');

		const good = `\ufeff${head}${IBAN},12.5,EUR,"Roe, Jane"\r\n${IBAN},1000,JPY,Bob\r\n"${IBAN}",3.00,USD,Zoë\r\n`;
		await p.setInputFiles('#import-file', { name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
		await p.waitForSelector('#import-summary:has-text("3 rows, no problem found")');
		await shot(p, 'import-preview');
		await clear(p);
		sent.length = 0;
		await p.dblclick('#import-send');
		await p.waitForSelector('.flash:has-text("3 requests imported")');
		eq(sent.length, 1, 'one call for the whole file (a double click included)');
		const reqs = await list(t.maker.token, `/batches/${batch.id}/requests`);
		eq(reqs.map(r => `${r.amount} ${r.currency} ${r.beneficiaryName}`).sort(),
			['1000 JPY Bob', '12.50 EUR Roe, Jane', '3.00 USD Zoë'], 'the three requests, as in the file');
		const events = (await list(t.maker.token, '/audit')).filter(e => e.action === 'request.created');
		eq(events.length, 3, 'one request.created event each');
	},

	'bulk approve: one /decisions call, one key kept for its retry, each item reported': async () => {
		const t = await team({ self: ['CREATOR', 'APPROVER'] });
		const { ids } = await batchWith(t.maker, [['10.00', 'EUR'], ['20.00', 'EUR'], ['30.00', 'USD']], t.maker2);
		const a = await page(t.a1);
		const keys = [];
		let single = 0;
		await a.route('**/api/v1/requests/*/approve', route => { single++; return route.continue(); });
		await a.route('**/api/v1/decisions', async route => {
			keys.push(route.request().headers()['idempotency-key']);
			if (keys.length === 1) {
				await route.fetch();          // the server decides them all...
				return route.abort('failed'); // ...and the answer is lost
			}
			return route.continue();
		});
		await screen(a, '#/approvals');
		for (const id of ids) await a.check(`#sel-${id}`);
		await a.click('#bulk-approve');
		await a.waitForSelector('#confirm[open]');
		await clear(a);
		await a.click('#confirm-ok');
		await a.waitForSelector('.flash:has-text("Bulk approval: 3 of 3 approved")');
		eq(keys.length, 2, 'the lost answer was asked for again');
		check(keys[0] && keys[0] === keys[1], 'under the same Idempotency-Key', keys.join(' '));
		eq(single, 0, 'no call per request');
		const items = await a.locator('.flash #bulk-results li').allTextContents();
		eq(items.length, 3, 'each item reported');
		check(items.every(x => /approved/.test(x)), 'each approved', items.join('\n'));
		for (const id of ids) {
			eq((await ok(t.a1.token, 'GET', `/requests/${id}`)).status, 'APPROVED', `request ${id} APPROVED`);
			eq((await list(t.a1.token, `/requests/${id}/approvals`)).length, 1, `request ${id}: one decision`);
		}
		await shot(a, 'approvals-after-bulk-decisions');
	},
});
