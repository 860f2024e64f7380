// "Import" on a DRAFT batch (API §11): pick a CSV file, see every row with the problems
// found in it before anything is sent, then one POST /batches/{id}/requests/import with the
// file's exact bytes under one Idempotency-Key kept for its retries. The server checks again
// (all or nothing); its per-row errors (`requests[i].field`) are shown on the same preview.
// API: POST /batches/{id}/requests/import (text/csv).
import { call, newIntent } from '../api.js';
import { h, replace, money, MINOR, flash, rerender, errorText, statusBox, doneText } from '../ui.js';

const MAX_ROWS = 5000;
const MAX_BYTES = 2 * 1024 * 1024;
const COLUMNS = ['amount', 'currency', 'beneficiaryName', 'beneficiaryAccount', 'purpose'];
const REQUIRED = COLUMNS.slice(0, 4);
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// RFC 4180 as the server reads it (src/csv_read.c): a leading BOM skipped, CRLF or LF line
// ends, quoted fields with commas, doubled quotes and line breaks, empty lines no record.
// Returns {records} or {error, at} (the record at fault).
export function parseCsv(text) {
	let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
	const records = [];
	while (i < text.length) {
		if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] === '\n')) { i += text[i] === '\r' ? 2 : 1; continue; }
		const rec = [];
		for (;;) {
			let f = '';
			if (text[i] === '"') {
				for (i++; ; i++) {
					if (i >= text.length) return { error: 'a quoted field is not closed', at: records.length };
					if (text[i] === '"' && text[i + 1] === '"') { f += '"'; i++; continue; }
					if (text[i] === '"') break;
					f += text[i];
				}
				i++;
			} else {
				const m = /^[^,\r\n"]*/.exec(text.slice(i, i + 65536 + 1))[0];
				f = m;
				i += m.length;
				if (text[i] === '"') return { error: 'a double quote inside a field that is not quoted', at: records.length };
			}
			rec.push(f);
			if (text[i] === '\r' && text[i + 1] === '\n') i++;
			if (i >= text.length) { i++; break; }
			if (text[i] === ',') { i++; continue; }
			if (text[i] === '\n') { i++; break; }
			return { error: 'a field must end with a comma or a line break', at: records.length };
		}
		records.push(rec);
		if (records.length > MAX_ROWS + 1) return { error: `more than ${MAX_ROWS} rows`, at: records.length - 1 };
	}
	return { records };
}

const chars = s => [...s].length;

// The problems of one row, by field, as the server would name them (§1, §4).
function rowErrors(row) {
	const e = {};
	for (const [k, v] of Object.entries(row)) if (CONTROL.test(v)) e[k] = 'must not contain control characters (a line break included)';
	const m = MINOR[row.currency];
	if (!e.currency && m === undefined) e.currency = 'is not a supported currency';
	if (!e.amount) {
		const a = /^(\d{1,15})(?:\.(\d+))?$/.exec(row.amount);
		if (!a) e.amount = row.amount ? 'must be a decimal number like "1000.00"' : 'is required';
		else if (m !== undefined && (a[2] || '').length > m) e.amount = m ? `at most ${m} decimals for ${row.currency}` : `${row.currency} has no decimals`;
		else if (/^[0.]*$/.test(row.amount)) e.amount = 'must be more than zero';
	}
	if (!e.beneficiaryName && (chars(row.beneficiaryName) < 1 || chars(row.beneficiaryName) > 140)) e.beneficiaryName = 'must be 1 to 140 characters long';
	const acc = /^[A-Za-z]{2}\d{2}/.test(row.beneficiaryAccount) ? row.beneficiaryAccount.replace(/ /g, '') : row.beneficiaryAccount;
	if (!e.beneficiaryAccount && (chars(acc) < 1 || chars(acc) > 34)) e.beneficiaryAccount = 'must be 1 to 34 characters long';
	if (!e.purpose && chars(row.purpose || '') > 140) e.purpose = 'must be at most 140 characters long';
	return e;
}

// The file → {rows: [{row, errors}], problems: [text]} (problems: the file as a whole).
export function preview(bytes) {
	if (bytes.length > MAX_BYTES) return { rows: [], problems: [`the file is larger than 2 MiB (${bytes.length} bytes)`] };
	let text;
	try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); }
	catch { return { rows: [], problems: ['the file is not UTF-8 text'] }; }
	const p = parseCsv(text);
	if (p.error) return { rows: [], problems: [p.at ? `row ${p.at}: ${p.error}` : `the header: ${p.error}`] };
	const [head = [], ...data] = p.records;
	const problems = [];
	head.forEach((c, k) => {
		if (!COLUMNS.includes(c)) problems.push(`unknown column “${c}”: the columns are ${COLUMNS.join(', ')}`);
		else if (head.indexOf(c) !== k) problems.push(`the column ${c} is repeated`);
	});
	for (const c of REQUIRED) if (!head.includes(c)) problems.push(`the column ${c} is missing`);
	if (!data.length) problems.push('the file has no rows');
	if (data.length > MAX_ROWS) problems.push(`at most ${MAX_ROWS} rows`);
	if (problems.length) return { rows: [], problems };
	const rows = data.map(rec => {
		if (rec.length !== head.length) return { row: {}, errors: { row: `has ${rec.length} fields: the header has ${head.length}` } };
		const row = Object.fromEntries(head.map((c, k) => [c, rec[k]]));
		return { row, errors: rowErrors(row) };
	});
	return { rows, problems };
}

function previewTable(rows) {
	return h('div', { class: 'table-wrap' }, h('table', { class: 'stack', id: 'import-preview' },
		h('caption', { class: 'visually-hidden' }, 'Rows of the file'),
		h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Row'), h('th', { class: 'num' }, 'Amount'),
			h('th', null, 'Beneficiary'), h('th', null, 'Account'), h('th', null, 'Problems'))),
		h('tbody', null, rows.slice(0, 200).map(({ row, errors }, i) => h('tr', {
			'data-row': i, class: Object.keys(errors).length ? 'invalid' : '' },
			h('td', { class: 'num' }, String(i + 1)),
			h('td', { class: 'num' }, !errors.amount && !errors.currency && row.amount ? money(row.amount, row.currency) : `${row.amount || ''} ${row.currency || ''}`),
			h('td', null, row.beneficiaryName || '', row.purpose ? h('div', { class: 'muted' }, row.purpose) : ''),
			h('td', { class: 'mono' }, row.beneficiaryAccount || ''),
			h('td', { class: 'row-errors' }, Object.entries(errors).map(([k, v]) => h('div', { class: 'field-error' }, `${k}: ${v}`))))))),
		rows.length > 200 ? h('p', { class: 'muted' }, `The first 200 of ${rows.length} rows are shown.`) : '');
}

// The server's VALIDATION_ERROR details (requests[i].field, columns, requests) onto the rows.
function serverErrors(rows, details) {
	const rest = [];
	for (const [k, v] of Object.entries(details)) {
		const m = /^requests\[(\d+)\](?:\.(\w+))?$/.exec(k);
		if (m && rows[m[1]]) rows[m[1]].errors[m[2] || 'row'] = v;
		else rest.push(`${k}: ${v}`);
	}
	return rest;
}

export function importPanel(batch) {
	const out = h('div', { id: 'import-result' });
	const status = statusBox();
	let bytes = null, rows = [];
	const send = h('button', { type: 'button', id: 'import-send', disabled: true }, 'Import');
	const file = h('input', { type: 'file', id: 'import-file', accept: '.csv,text/csv' });
	const show = problems => {
		const bad = rows.filter(r => Object.keys(r.errors).length).length;
		send.disabled = !rows.length || bad > 0 || problems.length > 0;
		send.textContent = rows.length ? `Import ${rows.length} request${rows.length === 1 ? '' : 's'}` : 'Import';
		replace(out,
			problems.length ? h('ul', { class: 'results', id: 'import-problems' }, problems.map(p => h('li', { class: 'error' }, p))) : '',
			rows.length ? h('p', { id: 'import-summary', class: bad ? 'warning' : '' },
				bad ? `${bad} of ${rows.length} rows have problems: fix the file and choose it again. Nothing was sent.`
					: `${rows.length} rows, no problem found.`) : '',
			rows.length ? previewTable(rows) : '');
	};
	let intent = null;
	file.addEventListener('change', async () => {
		const f = file.files[0];
		intent = null;       // another file is another intent
		replace(status);
		if (!f) { rows = []; show([]); return; }
		bytes = new Uint8Array(await f.arrayBuffer());
		const p = preview(bytes);
		rows = p.rows;
		show(p.problems);
	});
	send.addEventListener('click', async () => {
		if (send.disabled) return;
		send.disabled = true;
		intent = intent || newIntent();     // one key for this file, kept for every retry
		replace(status, h('span', { class: 'status busy' }, 'Sending…'));
		try {
			const r = await call('POST', `/batches/${batch.id}/requests/import`, { intent,
				raw: { type: 'text/csv', data: bytes },
				onRetry: n => replace(status, h('span', { class: 'status retrying' }, `Retrying (attempt ${n + 1})…`)) });
			flash(doneText(`${r.data.count} requests imported`, r));
			rerender();
		} catch (err) {
			// A refusal is final: the next press is a new intent. A failure that may have
			// reached the server (network, 5xx after the retries) keeps the key.
			if (err.status >= 400 && err.status < 500) intent = null;
			const rest = err.code === 'VALIDATION_ERROR' ? serverErrors(rows, err.details) : [];
			show(rest);
			replace(status, h('span', { class: 'status error' }, errorText(err)));
			send.disabled = err.code === 'VALIDATION_ERROR';
		}
	});
	return h('section', { class: 'card', id: 'import' },
		h('h2', null, 'Import from a spreadsheet'),
		h('p', { class: 'muted' }, 'A CSV file (UTF-8) with a header row: amount, currency, beneficiaryName, beneficiaryAccount and optionally purpose, in any order; up to 5,000 rows. All rows are added, or none.'),
		h('div', { class: 'field' }, h('label', { for: 'import-file' }, 'CSV file'), file),
		h('div', { class: 'actions' }, send, status),
		out);
}
