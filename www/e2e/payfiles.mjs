// Browser scenarios of payment files (API §9): debtor account on the admin screen, select on
// the treasury screen → one file (a double click makes one), its page with the name the bank
// will see, both downloads, confirm; the bank's report uploaded; and void. Effects are
// checked through the API.
// run.mjs passes its helpers: { page, check, eq, team, flash, clear, screen, ok, list, tag }.
import { readFile } from 'node:fs/promises';

export default function payfiles({ page, check, eq, team, flash, clear, screen, ok, list, tag }) {
	async function approved(t, names) {
		const b = await ok(t.maker.token, 'POST', '/batches', { name: 'Files ' + tag() });
		const ids = [];
		for (const [i, name] of names.entries())
			ids.push((await ok(t.maker.token, 'POST', `/batches/${b.id}/requests`, { amount: `${10 + i}.50`,
				currency: 'EUR', beneficiaryName: name, beneficiaryAccount: 'FR1420041010050500013M02606',
				purpose: `invoice ${i}` })).id);
		await ok(t.maker.token, 'POST', `/batches/${b.id}/submit`);
		for (const id of ids) await ok(t.a1.token, 'POST', `/requests/${id}/approve`, {});
		return ids;
	}

	async function downloaded(p, selector) {
		const [dl] = await Promise.all([p.waitForEvent('download'), p.click(selector)]);
		return { name: dl.suggestedFilename(), text: await readFile(await dl.path(), 'utf8') };
	}

	async function makeFile(tr, ids) {
		await screen(tr, '#/treasury');
		for (const id of ids) await tr.check(`tr[data-id="${id}"] input.pick`);
		await clear(tr);
		await tr.dblclick('#make-file');
		await tr.waitForSelector('h1:has-text("Payment file")');
		return tr.url().match(/files\/(\d+)/)[1];
	}

	return {
		'payment files: debtor account, select → one file, nameInFile, downloads, confirm': async () => {
			const t = await team();
			const admin = await page(t.admin);
			await screen(admin, '#/admin');
			await admin.selectOption('#debtor-currency', 'EUR');
			await admin.fill('#debtor-name', 'Acme GmbH');
			await admin.fill('#debtor-iban', 'DE89 3704 0044 0532 0130 00');
			await admin.fill('#debtor-bic', 'cobadeffxxx');
			await clear(admin);
			await admin.click('#save-debtor');
			await flash(admin);
			eq((await ok(t.admin.token, 'GET', '/debtor-accounts')).accounts,
				[{ currency: 'EUR', name: 'Acme GmbH', iban: 'DE89370400440532013000', bic: 'COBADEFFXXX' }],
				'admin screen: the EUR debtor account stored, normalised');

			const ids = await approved(t, ['Würth & Söhne', 'Plain Name', 'Third']);
			const tr = await page(t.tr);
			await screen(tr, '#/treasury');
			await tr.check(`tr[data-id="${ids[0]}"] input.pick`);
			await tr.check(`tr[data-id="${ids[1]}"] input.pick`);
			check((await tr.textContent('#selection')).includes('2 selected'), 'treasury: the selection and its total shown');
			const before = (await list(t.tr.token, '/payment-files')).length;
			await clear(tr);
			await tr.dblclick('#make-file');
			await tr.waitForSelector('h1:has-text("Payment file")');
			const fid = tr.url().match(/files\/(\d+)/)[1];
			eq((await list(t.tr.token, '/payment-files')).length, before + 1, 'make file (double click): one file');
			const f = await ok(t.tr.token, 'GET', `/payment-files/${fid}`);
			eq(f.items.map(i => i.requestId), [ids[0], ids[1]], 'the file holds the two selected requests');
			const shown = await tr.textContent(`#items tr[data-id="${ids[0]}"] .name-in-file`);
			eq(shown, 'Wurth + Sohne', 'file page: the name the bank will see');
			check(await tr.isVisible(`#items tr[data-id="${ids[0]}"] .differs`), 'and that it differs from what was typed');
			check(!(await tr.isVisible(`#items tr[data-id="${ids[1]}"] .differs`)), 'no mark where it is the same');

			const pain = await downloaded(tr, '#download-pain');
			eq(pain.name, `${f.messageId}.xml`, 'pain.001 downloads as <messageId>.xml');
			check(pain.text.includes(`<MsgId>${f.messageId}</MsgId>`) && pain.text.includes('<Nm>Wurth + Sohne</Nm>'),
				'with the file\'s MsgId and the folded name');
			const csv = await downloaded(tr, '#download-csv');
			eq(csv.name, `${f.messageId}.csv`, 'CSV downloads as <messageId>.csv');
			check(csv.text.startsWith('endToEndId,requestId,batchId,') && csv.text.includes('Würth & Söhne'),
				'with its header and the name as typed');

			await screen(tr, '#/treasury');
			check(await tr.isVisible(`tr[data-id="${ids[0]}"] a.in-file`), 'treasury: a filed request links to its file, no Mark paid');
			await screen(tr, `#/files/${fid}`);
			await clear(tr);
			await tr.dblclick('#confirm-file');
			await tr.dblclick('#confirm-ok');
			await tr.waitForSelector(`.flash:has-text("Payment file ${fid} confirmed paid")`);
			eq((await ok(t.tr.token, 'GET', `/payment-files/${fid}`)).status, 'SETTLED', 'confirm: the file SETTLED');
			for (const id of ids.slice(0, 2)) {
				eq((await ok(t.tr.token, 'GET', `/requests/${id}`)).status, 'PAID', `confirm: request ${id} PAID`);
				eq((await list(t.tr.token, `/ledger/entries?requestId=${id}`)).filter(e => e.type === 'SETTLEMENT').length, 1,
					`confirm: one SETTLEMENT for ${id}`);
			}
			await screen(tr, '#/files');
			check(await tr.isVisible(`#files tr[data-id="${fid}"]`), 'files screen: the file listed');
		},

		"payment files: the bank's report uploaded, per item in words, a returned request back in the queue": async () => {
			const t = await team();
			await ok(t.admin.token, 'PUT', '/debtor-accounts', { accounts: [
				{ currency: 'EUR', name: 'Acme', iban: 'DE89370400440532013000' }] });
			const ids = await approved(t, ['Paid Co', 'Closed Co', 'Own Co']);
			const tr = await page(t.tr);
			const fid = await makeFile(tr, ids);
			const f = await ok(t.tr.token, 'GET', `/payment-files/${fid}`);
			const [e1, e2, e3] = f.items.map(i => i.endToEndId);
			const xml = '<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">'
				+ `<CstmrPmtStsRpt><GrpHdr><MsgId>BANK-${tag()}</MsgId></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>${f.messageId}</OrgnlMsgId>`
				+ `</OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>${e1}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>`
				+ `<TxInfAndSts><OrgnlEndToEndId>${e2}</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf>`
				+ `</TxInfAndSts><TxInfAndSts><OrgnlEndToEndId>${e3}</OrgnlEndToEndId><TxSts>RJCT</TxSts>`
				+ '<StsRsnInf><Rsn><Prtry>constructor</Prtry></Rsn></StsRsnInf>'
				+ '</TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>';
			const upload = async () => {
				await tr.setInputFiles('#report-file', { name: 'report.xml', mimeType: 'application/xml', buffer: Buffer.from(xml) });
				await clear(tr);
				await tr.dblclick('#report-send');
				await tr.waitForSelector('.flash:has-text("Bank report applied")');
			};
			await upload();
			const g = await ok(t.tr.token, 'GET', `/payment-files/${fid}`);
			eq(g.items.map(i => [i.status, i.reasonCode]), [['PAID', null], ['RETURNED', 'AC04'], ['RETURNED', 'constructor']],
				'report (double click): item 1 PAID, item 2 RETURNED AC04, item 3 RETURNED with the bank\'s own reason (Prtry)');
			eq((await list(t.tr.token, `/payment-files/${fid}/status-reports`)).length, 1, 'one report kept');
			check((await tr.textContent(`#items tr[data-id="${ids[1]}"] td.bank`)).includes('AC04: account closed'),
				'file page: the returned item with its reason in words');
			check((await tr.textContent(`#items tr[data-id="${ids[0]}"] td.bank`)).includes('settled'), 'and the paid one settled');
			const own = await tr.textContent(`#items tr[data-id="${ids[2]}"] td.bank`);
			check(own.includes('Returned: constructor') && !own.includes('function'),
				'a bank\'s own reason shown as it is (not looked up on Object.prototype)');
			check(await tr.isVisible(`#reports li`), 'the report listed on the file page');
			await upload();
			eq((await list(t.tr.token, `/payment-files/${fid}/status-reports`)).length, 1, 'the same report again: nothing applied twice');
			eq((await ok(t.tr.token, 'GET', `/requests/${ids[0]}`)).status, 'PAID', 'request 1 PAID');
			await screen(tr, '#/treasury');
			check((await tr.textContent(`tr[data-id="${ids[1]}"] .returned`)).includes('account closed'),
				'treasury: the returned request is back in the queue, with its reason in words');
			check(await tr.isVisible(`tr[data-id="${ids[1]}"] input.pick`), 'and may go into a new file');
			await screen(tr, `#/requests/${ids[1]}`);
			check((await tr.textContent('dd.returned')).includes('AC04: account closed'), 'request page: returned by the bank, why');
		},

		'payment files: void frees the requests': async () => {
			const t = await team();
			await ok(t.admin.token, 'PUT', '/debtor-accounts', { accounts: [
				{ currency: 'EUR', name: 'Acme', iban: 'DE89370400440532013000' }] });
			const ids = await approved(t, ['One']);
			const tr = await page(t.tr);
			const fid = await makeFile(tr, ids);
			await tr.fill('#voidfile-reason', 'wrong date');
			await clear(tr);
			await tr.dblclick('#void-file');
			await tr.dblclick('#confirm-ok');
			await tr.waitForSelector(`.flash:has-text("Payment file ${fid} voided")`);
			const f = await ok(t.tr.token, 'GET', `/payment-files/${fid}`);
			eq([f.status, f.voidReason], ['VOIDED', 'wrong date'], 'void: VOIDED with its reason');
			eq((await ok(t.tr.token, 'GET', `/requests/${ids[0]}`)).paymentFileId, null, 'the request is free again');
			eq((await list(t.tr.token, `/audit?objectId=${fid}`)).filter(e => e.action === 'payment_file.voided').length, 1,
				'one payment_file.voided event');
		},
	};
}
