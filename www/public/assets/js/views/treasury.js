// The treasury queue: APPROVED requests the caller may mark paid (with a reference, after a
// confirmation), or select, per currency with totals, into a payment file for the bank;
// approved requests they may not pay are shown greyed with the reason, and those already in
// a payment file link to it; one the bank returned says why, in words.
// API: GET /requests?actionableBy=me&status=APPROVED, GET /requests?status=APPROVED,
// GET /batches/{id} per batch shown, POST /requests/{id}/mark-paid, POST /payment-files.
import { auth, all, get } from '../api.js';
import { h, replace, money, masked, groups, when, totals, signalChips, act, statusBox, field, flash, doneText } from '../ui.js';
import { payControls } from './decide.js';
import { reasonText } from '../reasons.js';

const today = () => new Date().toISOString().slice(0, 10);

export async function render() {
	const me = auth.user;
	const [mine, approved] = await Promise.all([
		all('/requests?actionableBy=me&status=APPROVED'),
		all('/requests?status=APPROVED'),
	]);
	const ids = new Set(mine.map(r => r.id));
	const batches = new Map(await Promise.all([...new Set(approved.map(r => r.batchId))]
		.map(id => get(`/batches/${id}`).then(x => [id, x.data]))));
	const reason = r => ids.has(r.id) ? '' : r.createdBy === me.id ? 'you created this request'
		: (batches.get(r.batchId) || {}).submittedBy === me.id ? 'you submitted its batch'
		: !me.roles.includes('TREASURER') ? 'you are not a treasurer' : 'you edited this request';
	const picker = filePicker(mine);
	const treasurer = auth.has('TREASURER');
	return h('div', null,
		h('h1', null, 'Treasury'),
		h('p', null, `${mine.length} approved request${mine.length === 1 ? '' : 's'} to pay`,
			mine.length ? ': ' + totals(mine.map(r => r.snapshot || r)).map(t => money(t.amount, t.currency)).join(', ') : '', '.'),
		mine.length ? picker.panel : '',
		approved.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
			h('caption', { class: 'visually-hidden' }, 'Approved requests, by currency'),
			h('thead', null, h('tr', null, h('th', null, h('span', { class: 'visually-hidden' }, 'Select')),
				h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'),
				h('th', { class: 'hide-narrow' }, 'Approved'), h('th', null, 'Payment'))),
			byCurrency(approved).map(([cur, list]) => h('tbody', { 'data-currency': cur },
				h('tr', { class: 'group' }, h('th', { colspan: 5, scope: 'colgroup' },
					`${cur}: ${list.length} request${list.length === 1 ? '' : 's'}, ${money(totals(list.map(r => r.snapshot || r))[0].amount, cur)}`)),
				list.map(r => {
					const s = r.snapshot || r;
					const why = r.paymentFileId ? '' : reason(r);
					return h('tr', { class: why ? 'greyed' : '', 'data-id': r.id },
						h('td', null, ids.has(r.id) ? picker.box(r) : ''),
						h('td', { class: 'num' }, money(s.amount, s.currency)),
						h('td', null, h('a', { href: `#/requests/${r.id}` }, s.beneficiaryName),
							treasurer ? account(r.id, s.beneficiaryAccount) : h('div', { class: 'mono muted' }, masked(s.beneficiaryAccount)),
							s.purpose ? h('div', { class: 'muted' }, s.purpose) : '', signalChips(r),
							r.lastReturn && !r.paymentFileId ? h('div', { class: 'returned' }, 'Returned by the bank (',
								h('a', { href: `#/files/${r.lastReturn.paymentFileId}` }, `file ${r.lastReturn.paymentFileId}`),
								`): ${reasonText(r.lastReturn.reasonCode)}`) : ''),
						h('td', { class: 'hide-narrow' }, when(r.updatedAt)),
						h('td', null, r.paymentFileId
							? h('a', { href: `#/files/${r.paymentFileId}`, class: 'in-file' }, `In payment file ${r.paymentFileId}`)
							: why ? h('span', { class: 'reason' }, `You cannot pay: ${why}.`) : payControls(r)));
				}))))) : h('p', { class: 'muted' }, 'Nothing is waiting for payment.'));
}

const byCurrency = rows => {
	const m = new Map();
	for (const r of rows) { const c = (r.snapshot || r).currency; if (!m.has(c)) m.set(c, []); m.get(c).push(r); }
	return [...m].sort(([a], [b]) => a.localeCompare(b));
};

// A treasurer pays from the full account: shown whole, in groups of four, with a copy button
// (the copy is the account without spaces, as a bank's form takes it).
function account(id, iban) {
	const status = h('span', { class: 'muted', role: 'status' });
	return h('div', { class: 'mono account' }, h('span', { class: 'iban' }, groups(iban)),
		h('button', { type: 'button', class: 'secondary copy-iban', 'aria-label': `Copy the account of request ${id}`,
			onclick: async () => {
				try { await navigator.clipboard.writeText(iban); replace(status, ' Copied'); }
				catch { replace(status, ' Select the account to copy it'); }
			} }, 'Copy'), status);
}

// The selection: a checkbox per payable request, the totals per currency of what is
// selected, and one button that makes the file (one currency at a time, as the bank takes it).
function filePicker(mine) {
	const chosen = new Map();
	const status = statusBox();
	const summary = h('p', { id: 'selection', role: 'status' }, 'Nothing selected.');
	const form = h('form', { id: 'newfile', novalidate: true },
		field('newfile', 'executionDate', 'Execution date', { type: 'date', value: today(), min: today() }),
		h('span', { id: 'newfile-requestIds-error', class: 'field-error' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'make-file', disabled: true }, 'Make payment file')),
		status);
	const refresh = () => {
		const list = [...chosen.values()];
		const tot = totals(list.map(r => r.snapshot || r));
		summary.textContent = list.length ? `${list.length} selected: ` + tot.map(t => money(t.amount, t.currency)).join(', ')
			+ (tot.length > 1 ? ' — a file holds one currency: select one.' : '') : 'Nothing selected.';
		form.querySelector('#make-file').disabled = !list.length || tot.length > 1;
	};
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const requestIds = [...chosen.keys()];
		const executionDate = form.elements.executionDate.value || undefined;
		act({ method: 'POST', path: '/payment-files', body: { requestIds, executionDate },
			control: form.querySelector('#make-file'), status, form, label: 'Payment file made',
			done: r => { flash(doneText(`Payment file ${r.data.id} made (${r.data.count} payments)`, r)); location.hash = `#/files/${r.data.id}`; } });
	});
	return {
		panel: h('section', { class: 'card', 'aria-labelledby': 'newfile-title' },
			h('h2', { id: 'newfile-title' }, 'Pay by file'),
			h('p', { class: 'muted' }, 'Select approved requests of one currency and make one file for the bank (pain.001 or CSV).'),
			summary, form),
		box: r => h('input', { type: 'checkbox', class: 'pick', 'aria-label': `Select request ${r.id} for a payment file`,
			onchange: ev => { if (ev.target.checked) chosen.set(r.id, r); else chosen.delete(r.id); refresh(); } }),
	};
}
