// The ledger: balances per currency and the entries, newest first.
// API: GET /ledger/balances, GET /ledger/entries?limit=&cursor=.
import { get } from '../api.js';
import { h, replace, money, when, csvButton } from '../ui.js';

export async function render() {
	const [balances, first] = await Promise.all([get('/ledger/balances'), get('/ledger/entries?limit=50')]);
	const body = h('tbody');
	const more = h('div', { class: 'actions' });
	const add = page => {
		body.append(...page.data.map(e => h('tr', null, h('td', null, when(e.createdAt)), h('td', null, e.type),
			h('td', { class: 'num' }, money(e.amount, e.currency)),
			h('td', null, h('a', { href: `#/requests/${e.requestId}` }, `request ${e.requestId}`)),
			h('td', { class: 'hide-narrow' }, h('a', { href: `#/batches/${e.batchId}` }, `batch ${e.batchId}`)))));
		replace(more, page.json.nextCursor ? h('button', { type: 'button', class: 'secondary',
			onclick: async () => add(await get(`/ledger/entries?limit=50&cursor=${encodeURIComponent(page.json.nextCursor)}`)) }, 'Show more') : '');
	};
	add(first);
	return h('div', null,
		h('h1', null, 'Ledger'),
		h('h2', null, 'Balances'),
		balances.data.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'balances' },
			h('caption', { class: 'visually-hidden' }, 'Balances per currency'),
			h('thead', null, h('tr', null, h('th', null, 'Currency'), h('th', { class: 'num' }, 'Obligated'),
				h('th', { class: 'num' }, 'Settled'), h('th', { class: 'num' }, 'Outstanding'))),
			h('tbody', null, balances.data.map(b => h('tr', null, h('td', null, b.currency),
				h('td', { class: 'num' }, money(b.obligated, b.currency)), h('td', { class: 'num' }, money(b.settled, b.currency)),
				h('td', { class: 'num' }, money(b.outstanding, b.currency))))))) : h('p', { class: 'muted' }, 'No entries yet.'),
		h('h2', null, 'Entries'), h('div', { class: 'actions' }, csvButton('/ledger/entries', 'ledger.csv', 'Download CSV')),
		h('div', { class: 'table-wrap' }, h('table', { id: 'entries' },
			h('caption', { class: 'visually-hidden' }, 'Ledger entries'),
			h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Type'), h('th', { class: 'num' }, 'Amount'),
				h('th', null, 'Request'), h('th', { class: 'hide-narrow' }, 'Batch'))), body)),
		more);
}
