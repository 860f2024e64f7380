// One request: the whole beneficiary account, its payment file and last return by the bank, its snapshot, decisions, ledger entries and
// audit timeline, and the decision the caller may take now.
// API: GET /requests/{id}, GET /requests/{id}/approvals, GET /batches/{batchId},
// GET /ledger/entries?requestId={id}, GET /audit?objectId={id}, GET /requests?actionableBy=me&batchId=
// (whether the caller may act now), then POST approve / reject / mark-paid.
import { auth, get, all, call, newIntent } from '../api.js';
import { h, money, groups, when, userLabel, badge, signalChips, act, statusBox, flash, doneText, errorText, replace } from '../ui.js';
import { decideControls, payControls, progress, whyNot } from './decide.js';
import { timeline } from './timeline.js';
import { reasonText } from '../reasons.js';

export async function render({ parts }) {
	const id = encodeURIComponent(parts[1]);
	const me = auth.user;
	const r = (await get(`/requests/${id}`)).data;
	const [approvals, batch, ledger, events, mine] = await Promise.all([
		all(`/requests/${id}/approvals`),
		get(`/batches/${r.batchId}`).then(x => x.data),
		get(`/ledger/entries?requestId=${id}`).then(x => x.data),
		get(`/audit?objectType=request&objectId=${id}&limit=100`).then(x => x.data),
		all(`/requests?actionableBy=me&batchId=${r.batchId}`),
	]);
	const actionable = mine.some(x => x.id === r.id);
	let action = '';
	if (r.status === 'PENDING_APPROVAL' && me.roles.includes('APPROVER')) {
		const why = whyNot(r, batch, approvals, me, actionable);
		action = why ? h('p', { class: 'reason' }, `You cannot decide: ${why}.`) : decideControls(r);
	} else if (r.status === 'APPROVED' && me.roles.includes('TREASURER')) {
		action = actionable ? payControls(r) : h('p', { class: 'reason' }, 'You cannot pay: you made this request (created, changed or submitted it).');
	}
	if (r.status === 'REJECTED' && auth.has('CREATOR')) action = await copyForm(r);
	const s = r.snapshot;
	return h('div', null,
		h('p', null, h('a', { href: `#/batches/${r.batchId}` }, '← ', batch.name)),
		h('h1', null, `Request ${r.id} `, badge(r.status)),
		signalChips(r),
		h('dl', { class: 'props card' },
			h('dt', null, 'Amount'), h('dd', null, money(r.amount, r.currency)),
			h('dt', null, 'Beneficiary'), h('dd', null, r.beneficiaryName),
			h('dt', null, 'Account'), h('dd', { class: 'mono', id: 'full-account' }, groups(r.beneficiaryAccount)),
			h('dt', null, 'Purpose'), h('dd', null, r.purpose || '—'),
			h('dt', null, 'Created'), h('dd', null, when(r.createdAt), ' by ', userLabel(r.createdBy, me)),
			r.paidAt ? [h('dt', null, 'Paid'), h('dd', null, when(r.paidAt), ' by ', userLabel(r.paidBy, me),
				r.paymentReference ? `, reference ${r.paymentReference}` : '')] : '',
			r.paymentFileId ? [h('dt', null, 'Payment file'), h('dd', null, h('a', { href: `#/files/${r.paymentFileId}` }, `file ${r.paymentFileId}`))] : '',
			r.lastReturn ? [h('dt', null, 'Returned by the bank'), h('dd', { class: 'returned' }, when(r.lastReturn.at), ' from ',
				h('a', { href: `#/files/${r.lastReturn.paymentFileId}` }, `file ${r.lastReturn.paymentFileId}`),
				`: ${reasonText(r.lastReturn.reasonCode)}`)] : '',
			s ? [h('dt', null, 'Approvals'), h('dd', null, progress(r, approvals, me))] : ''),
		action,
		s ? [h('h2', null, 'As submitted'), h('p', null, `${money(s.amount, s.currency)} to ${s.beneficiaryName}, `,
			h('span', { class: 'mono' }, groups(s.beneficiaryAccount)), s.purpose ? ` — ${s.purpose}` : '',
			`; ${s.requiredApprovals} approval${s.requiredApprovals === 1 ? '' : 's'} required.`)] : '',
		h('h2', null, 'Ledger'), ledger.length ? h('ul', null, ledger.map(e => h('li', null,
			`${e.type} ${money(e.amount, e.currency)}, `, when(e.createdAt)))) : h('p', { class: 'muted' }, 'No entries.'),
		h('h2', null, 'History'), timeline(events, me));
}

// A REJECTED request is final; its maker can copy it into a draft batch to correct and send
// it again (an existing draft, or a new one made for it).
async function copyForm(r) {
	const drafts = await all('/batches?status=DRAFT', 200);
	const status = statusBox();
	const form = h('form', { id: 'copyreq', class: 'card', novalidate: true },
		h('h2', null, 'Copy into a draft batch'),
		h('p', { class: 'muted' }, 'This request was rejected and stays so. A copy can be corrected and submitted again.'),
		h('div', { class: 'field' }, h('label', { for: 'copyreq-batch' }, 'Draft batch'),
			h('select', { id: 'copyreq-batch', name: 'batch' }, h('option', { value: 'new' }, 'a new draft batch'),
				drafts.map(b => h('option', { value: b.id }, b.name)))),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'copy-request' }, 'Copy into a draft batch')),
		status);
	let batchIntent = null;      // a new batch is made once, however often the press is retried
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		const btn = form.querySelector('#copy-request');
		if (btn.disabled) return;
		let batchId = form.elements.batch.value;
		if (batchId === 'new') {
			btn.disabled = true;
			try {
				batchIntent = batchIntent || newIntent();
				batchId = (await call('POST', '/batches', { intent: batchIntent, body: { name: `Copy of request ${r.id}` } })).data.id;
			} catch (err) {
				replace(status, errorText(err));
				return;
			} finally {
				btn.disabled = false;
			}
		}
		const label = `Request ${r.id} copied into a draft batch`;
		act({ method: 'POST', path: `/batches/${batchId}/requests`, control: btn, status, label,
			body: { amount: r.amount, currency: r.currency, beneficiaryName: r.beneficiaryName,
				beneficiaryAccount: r.beneficiaryAccount, purpose: r.purpose || '' },
			done: res => { flash(doneText(label, res)); location.hash = `#/batches/${batchId}`; } });
	});
	return form;
}
