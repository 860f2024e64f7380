// One batch: its requests (add, edit, delete while DRAFT, with the API's field errors beside
// the fields), import from a CSV file (import.js), submit, cancel, a duplicate warning and the
// batch's audit timeline.
// API: GET /batches/{id}, GET /batches/{id}/requests, GET /requests?limit=200 (recent
// requests, for the duplicate warning), GET /audit?objectId={id}, POST /batches/{id}/requests,
// PATCH /requests/{id}, DELETE /requests/{id}, POST /batches/{id}/submit, POST /batches/{id}/cancel.
import { auth, get, all } from '../api.js';
import {
	h, replace, money, masked, groups, when, act, field, select, statusBox, parseAmount,
	CURRENCIES, fieldErrors, confirmDialog, flash, rerender, doneText, totals, userLabel, badge, signalChips } from '../ui.js';
import { timeline } from './timeline.js';
import { importPanel } from './import.js';

const DAY = 86400000;

export async function render({ parts }) {
	const id = parts[1];
	const [b, reqs, recent, events] = await Promise.all([
		get(`/batches/${encodeURIComponent(id)}`),
		all(`/batches/${encodeURIComponent(id)}/requests`),
		get('/requests?limit=200').then(r => r.data),
		get(`/audit?objectType=batch&objectId=${encodeURIComponent(id)}&limit=100`).then(r => r.data),
	]);
	const batch = b.data;
	const me = auth.user;
	const draft = batch.status === 'DRAFT';
	const canEdit = draft && auth.has('CREATOR');
	const dup = duplicateFinder(recent);

	const editSlot = h('div');
	const table = requestTable(reqs, { canEdit, dup, me, editSlot, batch });
	const actStatus = statusBox();
	const actions = h('div', { class: 'actions' });
	if (canEdit) actions.append(h('button', { type: 'button', id: 'submit-batch',
		onclick: ev => submitBatch(ev.currentTarget, batch, reqs, actStatus) }, 'Submit for approval'));
	if (auth.has('CREATOR') && (draft || batch.status === 'SUBMITTED')) actions.append(h('button', {
		type: 'button', class: 'danger', id: 'cancel-batch',
		onclick: ev => cancelBatch(ev.currentTarget, batch, actStatus) }, 'Cancel batch'));

	return h('div', null,
		h('p', null, h('a', { href: '#/batches' }, '← Batches')),
		h('h1', null, batch.name, ' ', badge(batch.status)),
		batch.description ? h('p', null, batch.description) : '',
		h('dl', { class: 'props card' },
			h('dt', null, 'Totals'), h('dd', null, batch.totals.length
				? batch.totals.map(t => h('div', null, `${money(t.amount, t.currency)} in ${t.count} request${t.count === 1 ? '' : 's'}`)) : '—'),
			h('dt', null, 'Requests'), h('dd', null, Object.entries(batch.counts).filter(([, n]) => n)
				.map(([s, n]) => badge(s, `${n} ${s.replace(/_/g, ' ')}`)), reqs.length ? '' : 'none'),
			h('dt', null, 'Created'), h('dd', null, when(batch.createdAt), ' by ', userLabel(batch.createdBy, me)),
			batch.submittedAt ? [h('dt', null, 'Submitted'), h('dd', null, when(batch.submittedAt), ' by ', userLabel(batch.submittedBy, me))] : ''),
		actions, actStatus,
		editSlot,
		canEdit ? requestForm({ batch, dup }) : '',
		h('h2', null, 'Requests'), table,
		canEdit ? importPanel(batch) : '',
		h('h2', null, 'History'), timeline(events, me));
}

// Same beneficiary account, amount and currency requested in the last 30 days (by any
// request other than `selfId`).
function duplicateFinder(recent) {
	const since = Date.now() - 30 * DAY;
	return (account, amount, currency, selfId) => recent.filter(r => r.id !== selfId &&
		r.status !== 'CANCELLED' && Date.parse(r.createdAt) >= since &&
		r.beneficiaryAccount === account.replace(/\s+/g, '').toUpperCase() &&
		r.currency === currency && r.amount === amount);
}

function requestTable(reqs, { canEdit, dup, me, editSlot, batch }) {
	if (!reqs.length) return h('p', { class: 'muted' }, 'No requests yet.');
	return h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
		h('caption', { class: 'visually-hidden' }, 'Requests of this batch'),
		h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'),
			h('th', { class: 'hide-narrow' }, 'Account'), h('th', null, 'Status'), h('th', null, h('span', { class: 'visually-hidden' }, 'Actions')))),
		h('tbody', null, reqs.map(r => {
			return h('tr', { 'data-id': r.id },
				h('td', { class: 'num' }, money(r.amount, r.currency)),
				h('td', null, h('a', { href: `#/requests/${r.id}` }, r.beneficiaryName),
					r.purpose ? h('div', { class: 'muted' }, r.purpose) : '',
					signalChips(r)),
				h('td', { class: 'hide-narrow mono' }, masked(r.beneficiaryAccount)),
				h('td', null, badge(r.status),
					r.status === 'PENDING_APPROVAL' ? h('div', { class: 'muted' }, `${r.approvalCount} of ${r.requiredApprovals} approvals`) : ''),
				h('td', null, canEdit ? h('div', { class: 'actions' },
					h('button', { type: 'button', class: 'secondary', 'aria-label': `Edit request ${r.id} (${r.beneficiaryName})`,
						onclick: () => { replace(editSlot, requestForm({ batch, dup, edit: r })); editSlot.querySelector('input').focus(); } }, 'Edit'),
					...deleteButton(r)) : ''));
		}))));
}

function deleteButton(r) {
	const status = statusBox('span');
	const btn = h('button', { type: 'button', class: 'secondary', 'aria-label': `Delete request ${r.id} (${r.beneficiaryName})`,
		onclick: async () => {
			if (!await confirmDialog('Delete this request?', h('p', null, `${money(r.amount, r.currency)} to ${r.beneficiaryName}`), 'Delete')) return;
			act({ method: 'DELETE', path: `/requests/${r.id}`, ifMatch: r.version, key: false, retrySafe: true,
				control: btn, status, label: 'Request deleted',
				failed: err => {
					// A retry after a lost 204 finds nothing to delete: that is the success.
					if (err.retried && err.status === 404) { flash('Request deleted'); rerender(); return true; }
					return false;
				},
				done: () => { flash('Request deleted'); rerender(); } });
		} }, 'Delete');
	return [btn, status];
}

let lastCurrency = null, afterAdd = false;

// Add a request, or edit one (`edit`: the request). Money is typed as text and sent as the
// decimal string the person typed, checked against the currency's minor unit first.
function requestForm({ batch, dup, edit }) {
	const id = edit ? 'editreq' : 'newreq';
	const status = statusBox();
	const warn = h('div', { role: 'status' });
	const lengthNote = h('div', { role: 'status', id: `${id}-length-note` });
	const v = edit || {};
	const form = h('form', { id, class: 'card', novalidate: true },
		h('h2', null, edit ? `Edit request ${edit.id}` : 'Add a request'),
		h('div', { class: 'row' },
			field(id, 'amount', 'Amount', { required: true, inputmode: 'decimal', autocomplete: 'off', value: v.amount || '' }),
			select(id, 'currency', 'Currency', CURRENCIES, v.currency || (!edit && lastCurrency) || 'EUR')),
		h('div', { class: 'row' },
			field(id, 'beneficiaryName', 'Beneficiary name', { required: true, value: v.beneficiaryName || '' }),
			field(id, 'beneficiaryAccount', 'Beneficiary account (IBAN)', { required: true, autocomplete: 'off', class: 'mono', value: v.beneficiaryAccount ? groups(v.beneficiaryAccount) : '' })),
		field(id, 'purpose', 'Purpose', { value: v.purpose || '' }),
		warn, lengthNote,
		h('div', { class: 'actions' },
			h('button', { type: 'submit', id: edit ? 'save-request' : 'add-request' }, edit ? 'Save changes' : 'Add request'),
			edit ? h('button', { type: 'button', class: 'secondary', onclick: () => form.remove() }, 'Close') : ''),
		status);
	const f = form.elements;
	const checkDup = () => {
		const a = parseAmount(f.amount.value, f.currency.value);
		const d = a.value && f.beneficiaryAccount.value ? dup(f.beneficiaryAccount.value, normal(a.value, f.currency.value), f.currency.value, v.id) : [];
		replace(warn, d.length ? h('p', { class: 'warning' }, `Warning: the same account, amount and currency was requested in the last 30 days (request ${d.map(x => x.id).join(', ')}).`) : '');
	};
	form.addEventListener('input', checkDup);
	const lengths = () => {
		const long = tooLong(f);
		replace(lengthNote, [...f.beneficiaryName.value].length > SEPA_NAME ? h('p', { class: 'muted' },
			`The payment file will shorten the name to ${SEPA_NAME} characters: “${[...f.beneficiaryName.value].slice(0, SEPA_NAME).join('').trim()}”.`) : '');
		return long;
	};
	form.addEventListener('input', lengths);
	if (!edit && afterAdd) {
		afterAdd = false;
		// After main.js has focused the title of the redrawn screen.
		requestAnimationFrame(() => f.amount.focus());
	}
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const a = parseAmount(f.amount.value, f.currency.value);
		const long = lengths();
		if (a.error || Object.keys(long).length) { fieldErrors(form, { ...(a.error ? { amount: a.error } : {}), ...long }); return; }
		const body = { amount: a.value, currency: f.currency.value, beneficiaryName: f.beneficiaryName.value,
			beneficiaryAccount: f.beneficiaryAccount.value, purpose: f.purpose.value };
		const label = edit ? 'Request saved' : 'Request added';
		const done = r => { flash(doneText(label, r)); rerender(); };
		if (!edit) {
			// The clerk's next request: the same currency, the cursor back in Amount.
			lastCurrency = body.currency;
			act({ method: 'POST', path: `/batches/${batch.id}/requests`, body, form, status, label,
				control: form.querySelector('#add-request'), done: r => { afterAdd = true; done(r); } });
			return;
		}
		act({ method: 'PATCH', path: `/requests/${edit.id}`, body, ifMatch: edit.version, key: false,
			retrySafe: true, form, status, label, control: form.querySelector('#save-request'), done,
			failed: async err => {
				// A retry after a lost 200 meets our own new version: 412, with our values stored.
				if (!(err.retried && err.code === 'VERSION_CONFLICT')) return false;
				const now = (await get(`/requests/${edit.id}`)).data;
				const same = now.amount === normal(body.amount, body.currency) && now.currency === body.currency &&
					now.beneficiaryName === body.beneficiaryName && now.purpose === body.purpose;
				if (same) { flash(label); rerender(); }
				return same;
			} });
	});
	return form;
}

// Never cut what a person typed or pasted (bug 3): a field over its limit is refused with its
// length, and a name the payment file (API §9) will shorten says so.
const LIMITS = { beneficiaryName: 140, purpose: 140 };
const SEPA_NAME = 70;
function tooLong(f) {
	const out = {};
	for (const [k, max] of Object.entries(LIMITS)) {
		const n = [...f[k].value].length;
		if (n > max) out[k] = `This is ${n} characters long; at most ${max} are allowed. Shorten it: nothing is cut for you.`;
	}
	return out;
}

// The API's normal form of an amount: exactly the currency's minor digits.
function normal(amount, currency) {
	const [t] = totals([{ amount, currency }]);
	return t.amount;
}

async function submitBatch(btn, batch, reqs, status) {
	const t = totals(reqs);
	if (!await confirmDialog(`Submit “${batch.name}” for approval?`, h('div', null,
		h('p', null, `${reqs.length} request${reqs.length === 1 ? '' : 's'}; they can no longer be changed afterwards.`),
		h('ul', null, t.map(x => h('li', null, money(x.amount, x.currency)))),
		duplicatesNote(reqs)), 'Submit')) return;
	act({ method: 'POST', path: `/batches/${batch.id}/submit`, ifMatch: batch.version, control: btn, status,
		label: 'Batch submitted', done: r => { flash(doneText('Batch submitted', r)); rerender(); } });
}

async function cancelBatch(btn, batch, status) {
	if (!await confirmDialog(`Cancel “${batch.name}”?`, h('p', null, 'Its draft and pending requests are cancelled. This cannot be undone.'), 'Cancel batch')) return;
	act({ method: 'POST', path: `/batches/${batch.id}/cancel`, ifMatch: batch.version, control: btn, status,
		label: 'Batch cancelled', done: r => { flash(doneText('Batch cancelled', r)); rerender(); } });
}

// The batch's possible duplicates (signal DUPLICATE, API §10), listed before it is sent.
function duplicatesNote(reqs) {
	const dups = reqs.filter(r => (r.signals || []).some(x => x.code === 'DUPLICATE'));
	if (!dups.length) return '';
	return h('div', { class: 'warning', id: 'submit-duplicates' },
		h('p', null, `${dups.length} possible duplicate${dups.length === 1 ? '' : 's'}: check before sending.`),
		h('ul', null, dups.map(r => h('li', { 'data-id': r.id }, `Request ${r.id}: ${money(r.amount, r.currency)} to ${r.beneficiaryName}, like request `
			+ r.signals.find(x => x.code === 'DUPLICATE').requestIds.join(', ')))));
}
