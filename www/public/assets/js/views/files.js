// Payment files: the list, and one file's page with its items (the name the bank will see,
// marked where it differs from what was typed), its downloads, and confirm / void, each
// press one intent as everywhere; the bank's answer (a pain.002 status report) uploaded, with
// each item's bank status and reason in words, and every report kept listed.
// API: GET /payment-files, GET /payment-files/{id}, GET …/pain.001, GET …/csv,
// POST …/confirm, POST …/void, POST and GET …/status-reports, GET …/status-reports/{id}.
import { auth, all, get, call, newIntent } from '../api.js';
import { h, replace, money, when, badge, act, statusBox, field, confirmDialog, flash, rerender, doneText, errorText } from '../ui.js';
import { statusText, reasonText } from '../reasons.js';

export async function render({ parts }) {
	return parts[1] ? filePage(parts[1]) : fileList();
}

async function fileList() {
	const files = await all('/payment-files', 200);
	return h('div', null, h('h1', null, 'Payment files'),
		files.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'files' },
			h('caption', { class: 'visually-hidden' }, 'Payment files, newest first'),
			h('thead', null, h('tr', null, h('th', null, 'File'), h('th', null, 'Status'),
				h('th', { class: 'num' }, 'Total'), h('th', null, 'Payments'), h('th', { class: 'hide-narrow' }, 'Execution'))),
			h('tbody', null, files.map(f => h('tr', { 'data-id': f.id },
				h('td', null, h('a', { href: `#/files/${f.id}` }, f.messageId)),
				h('td', null, badge(f.status)),
				h('td', { class: 'num' }, money(f.total, f.currency)),
				h('td', null, String(f.count)),
				h('td', { class: 'hide-narrow' }, f.executionDate))))))
			: h('p', { class: 'muted' }, 'No payment file yet: make one from the Treasury screen.'));
}

// Downloads with the bearer token (a plain link would carry none), as a file.
async function download(f, kind, status, name) {
	try {
		const res = await fetch(`/api/v1/payment-files/${f.id}/${kind}`, {
			headers: { Authorization: 'Bearer ' + auth.token }, cache: 'no-store', credentials: 'omit' });
		if (!res.ok) {
			const body = await res.json().catch(() => null);
			status.className = 'status error';
			status.textContent = (body && body.error && body.error.message) || `HTTP ${res.status}`;
			return;
		}
		const url = URL.createObjectURL(await res.blob());
		const a = h('a', { href: url, download: name || `${f.messageId}.${kind === 'csv' ? 'csv' : 'xml'}` });
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 10000);
	} catch (err) {
		status.className = 'status error';
		status.textContent = errorText(err);
	}
}

function actions(f, etag) {
	const status = statusBox();
	const reason = field('voidfile', 'reason', 'Why void it (it was never sent)', { maxlength: 500, autocomplete: 'off' });
	const form = h('form', { id: 'voidfile', novalidate: true }, reason);
	const confirmBtn = h('button', { type: 'button', id: 'confirm-file' }, 'Confirm paid by the bank');
	const voidBtn = h('button', { type: 'button', id: 'void-file', class: 'danger' }, 'Void file');
	confirmBtn.addEventListener('click', async () => {
		if (confirmBtn.disabled) return;
		const ok = await confirmDialog('The bank paid this whole file?', h('p', null,
			`${f.count} payment${f.count === 1 ? '' : 's'}, ${money(f.total, f.currency)}: each request becomes PAID and settled in the ledger.`), 'Confirm paid');
		if (!ok) return;
		act({ method: 'POST', path: `/payment-files/${f.id}/confirm`, body: {}, ifMatch: etag, control: confirmBtn, status,
			label: `Payment file ${f.id} confirmed paid`, done: r => { flash(doneText(`Payment file ${f.id} confirmed paid`, r)); rerender(); } });
	});
	voidBtn.addEventListener('click', async () => {
		if (voidBtn.disabled) return;
		const text = form.elements.reason.value.trim();
		if (!text) { form.querySelector('#voidfile-reason-error').textContent = 'say why'; return; }
		const ok = await confirmDialog('Void this file?', h('p', null, 'Only if it was never sent to the bank: its requests become free to pay again.'), 'Void file');
		if (!ok) return;
		act({ method: 'POST', path: `/payment-files/${f.id}/void`, body: { reason: text }, ifMatch: etag, control: voidBtn, status, form,
			label: `Payment file ${f.id} voided`, done: r => { flash(doneText(`Payment file ${f.id} voided`, r)); rerender(); } });
	});
	return f.status === 'CREATED' && auth.has('TREASURER')
		? h('section', { class: 'card' }, h('h2', null, 'What happened to it'), h('div', { class: 'actions' }, confirmBtn), form,
			h('div', { class: 'actions' }, voidBtn), status) : '';
}

// The bank's answer: the report's exact bytes, sent once per chosen file under one key (a
// retry or a second press replays); the same report sent again later changes nothing.
function bankAnswer(f) {
	const status = statusBox();
	const file = h('input', { type: 'file', id: 'report-file', accept: '.xml,application/xml,text/xml' });
	const send = h('button', { type: 'button', id: 'report-send', disabled: true }, 'Apply the bank\'s report');
	let bytes = null, intent = null;
	file.addEventListener('change', async () => {
		const chosen = file.files[0];
		intent = null;       // another file is another intent
		bytes = chosen ? new Uint8Array(await chosen.arrayBuffer()) : null;
		send.disabled = !bytes;
		replace(status);
	});
	send.addEventListener('click', async () => {
		if (send.disabled || !bytes) return;
		send.disabled = true;
		intent = intent || newIntent();
		status.className = 'status busy';
		status.textContent = 'Sending…';
		try {
			const r = await call('POST', `/payment-files/${f.id}/status-reports`, { intent, ifMatch: null,
				raw: { type: 'application/xml', data: bytes },
				onRetry: n => { status.className = 'status retrying'; status.textContent = `Retrying (attempt ${n + 1})…`; } });
			const paid = r.data.items.filter(it => it.status === 'PAID').length;
			const back = r.data.items.filter(it => it.status === 'RETURNED').length;
			flash(doneText(`Bank report applied to file ${f.id}: ${paid} paid, ${back} returned`, r));
			rerender();
		} catch (err) {
			if (err.status >= 400 && err.status < 500) intent = null;
			status.className = 'status error';
			const where = err.details ? Object.entries(err.details).map(([k, v]) => `${k} ${v}`).join('; ') : '';
			status.textContent = errorText(err) + (err.code === 'VALIDATION_ERROR' && where ? ` (${where})` : '');
			send.disabled = false;
		}
	});
	return f.status !== 'VOIDED' && auth.has('TREASURER')
		? h('section', { class: 'card', id: 'bank-answer' }, h('h2', null, 'The bank\'s answer'),
			h('p', { class: 'muted' }, 'Upload the status report (pain.002 XML) the bank sent for this file: settled payments become paid, rejected ones go back to the treasury queue. A report applied before changes nothing.'),
			h('div', { class: 'field' }, h('label', { for: 'report-file' }, 'Status report'), file),
			h('div', { class: 'actions' }, send), status) : '';
}

function reportList(f, reports) {
	const dl = statusBox();
	return reports.length ? h('section', { class: 'card' }, h('h2', null, 'Reports received'),
		h('ul', { id: 'reports' }, reports.map(rp => h('li', { 'data-id': rp.id },
			h('span', { class: 'mono' }, rp.messageId), ' · ', when(rp.createdAt), ' · ',
			h('button', { type: 'button', class: 'link', onclick: () => download(f, `status-reports/${rp.id}`, dl, `${rp.messageId}.xml`) }, 'download')))),
		dl) : '';
}

const bankCell = it => it.bankStatus
	? [h('span', { class: 'bank-status' }, statusText(it.bankStatus)),
		it.status === 'RETURNED' ? h('div', { class: 'reason' }, `Returned: ${reasonText(it.reasonCode)}`) : '']
	: h('span', { class: 'muted' }, 'no answer yet');

async function filePage(id) {
	const [r, reports] = await Promise.all([get(`/payment-files/${id}`), all(`/payment-files/${id}/status-reports`, 200)]);
	const f = r.data;
	const dl = statusBox();
	const differs = it => it.nameInFile !== it.beneficiaryName;
	return h('div', null,
		h('h1', null, `Payment file ${f.messageId}`),
		h('p', null, badge(f.status), ' ', `${f.count} payment${f.count === 1 ? '' : 's'}, ${money(f.total, f.currency)}, to be executed on ${f.executionDate}, from `,
			h('span', null, f.debtor.name), ' ', h('span', { class: 'mono' }, f.debtor.iban), '. Made ', when(f.createdAt),
			f.settledAt ? [' · settled ', when(f.settledAt)] : '', f.voidedAt ? [' · voided ', when(f.voidedAt), `: “${f.voidReason}”`] : ''),
		h('div', { class: 'actions' },
			f.currency === 'EUR' ? h('button', { type: 'button', id: 'download-pain', class: 'secondary', onclick: () => download(f, 'pain.001', dl) }, 'Download pain.001 (SEPA XML)') : '',
			h('button', { type: 'button', id: 'download-csv', class: 'secondary', onclick: () => download(f, 'csv', dl) }, 'Download CSV')),
		dl,
		actions(f, r.etag && r.etag.replace(/"/g, '')),
		bankAnswer(f),
		reportList(f, reports),
		h('div', { class: 'table-wrap' }, h('table', { id: 'items', class: 'stack' },
			h('caption', null, 'Payments in this file, in file order'),
			h('thead', null, h('tr', null, h('th', null, 'End-to-end id'), h('th', { class: 'num' }, 'Amount'),
				h('th', null, 'Beneficiary (as the bank sees it)'), h('th', null, 'Account'), h('th', null, 'Status'), h('th', null, 'Bank'))),
			h('tbody', null, f.items.map(it => h('tr', { 'data-id': it.requestId },
				h('td', { class: 'mono' }, it.endToEndId),
				h('td', { class: 'num' }, money(it.amount, f.currency)),
				h('td', null, h('span', { class: 'name-in-file' }, it.nameInFile),
					differs(it) ? h('div', { class: 'muted differs' }, `changed for the bank; typed as “${it.beneficiaryName}”`) : ''),
				h('td', { class: 'mono' }, it.beneficiaryAccount),
				h('td', null, badge(it.status), ' ', h('a', { href: `#/requests/${it.requestId}` }, 'request')),
				h('td', { class: 'bank' }, bankCell(it))))))));
}
