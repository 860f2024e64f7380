// The treasury queue: APPROVED requests the caller may mark paid (with a reference, after a
// confirmation); approved requests they may not pay are shown greyed with the reason.
// API: GET /requests?actionableBy=me&status=APPROVED, GET /requests?status=APPROVED,
// GET /batches/{id} per batch shown, POST /requests/{id}/mark-paid.
import { auth, all, get } from '../api.js';
import { h, money, masked, when, totals, signalChips } from '../ui.js';
import { payControls } from './decide.js';

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
	return h('div', null,
		h('h1', null, 'Treasury'),
		h('p', null, `${mine.length} approved request${mine.length === 1 ? '' : 's'} to pay`,
			mine.length ? ': ' + totals(mine.map(r => r.snapshot || r)).map(t => money(t.amount, t.currency)).join(', ') : '', '.'),
		approved.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'stack' },
			h('caption', { class: 'visually-hidden' }, 'Approved requests'),
			h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'),
				h('th', { class: 'hide-narrow' }, 'Approved'), h('th', null, 'Payment'))),
			h('tbody', null, approved.map(r => {
				const s = r.snapshot || r;
				const why = reason(r);
				return h('tr', { class: why ? 'greyed' : '', 'data-id': r.id },
					h('td', { class: 'num' }, money(s.amount, s.currency)),
					h('td', null, h('a', { href: `#/requests/${r.id}` }, s.beneficiaryName),
						h('div', { class: 'mono muted' }, masked(s.beneficiaryAccount)),
						s.purpose ? h('div', { class: 'muted' }, s.purpose) : '', signalChips(r)),
					h('td', { class: 'hide-narrow' }, when(r.updatedAt)),
					h('td', null, why ? h('span', { class: 'reason' }, `You cannot pay: ${why}.`) : payControls(r)));
			})))) : h('p', { class: 'muted' }, 'Nothing is waiting for payment.'));
}
