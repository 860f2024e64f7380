// Batches: the list (status filter kept in the URL, totals per currency, counts by status)
// and the create form. API: GET /batches?status=&limit=&cursor=, POST /batches.
import { auth, get } from '../api.js';
import { h, replace, money, when, act, field, statusBox, badge } from '../ui.js';
import { go, setParams } from '../nav.js';

const STATUSES = ['DRAFT', 'SUBMITTED', 'COMPLETED', 'CANCELLED'];

export async function render({ params }) {
	const status = params.get('status') || '';
	const table = h('div', { class: 'table-wrap' });
	const more = h('div', { class: 'actions' });
	const filter = h('select', { id: 'batch-status', name: 'status' },
		h('option', { value: '' }, 'All'),
		STATUSES.map(s => h('option', { value: s, selected: s === status }, s)));
	filter.addEventListener('change', () => { setParams({ status: filter.value }); load(); });

	const rows = [];
	async function load(cursor) {
		if (!cursor) rows.length = 0;
		const q = new URLSearchParams({ limit: '50' });
		if (filter.value) q.set('status', filter.value);
		if (cursor) q.set('cursor', cursor);
		const r = await get('/batches?' + q);
		rows.push(...r.data);
		replace(table, batchTable(rows));
		replace(more, r.json.nextCursor ? h('button', { type: 'button', class: 'secondary',
			onclick: () => load(r.json.nextCursor) }, 'Show more') : '');
	}
	await load();

	return h('div', null,
		h('h1', null, 'Batches'),
		auth.has('CREATOR') ? createForm() : '',
		h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: 'batch-status' }, 'Status'), filter)),
		table, more);
}

function batchTable(rows) {
	if (!rows.length) return h('p', { class: 'muted' }, 'No batches.');
	return h('table', null,
		h('caption', { class: 'visually-hidden' }, 'Batches'),
		h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Status'),
			h('th', null, 'Totals'), h('th', { class: 'hide-narrow' }, 'Requests by status'),
			h('th', { class: 'hide-narrow' }, 'Created'))),
		h('tbody', null, rows.map(b => h('tr', null,
			h('td', null, h('a', { href: `#/batches/${b.id}` }, b.name)),
			h('td', null, badge(b.status)),
			h('td', { class: 'num' }, b.totals.length ? b.totals.map(t => h('div', null, `${money(t.amount, t.currency)} (${t.count})`)) : '—'),
			h('td', { class: 'hide-narrow' }, Object.entries(b.counts).filter(([, n]) => n)
				.map(([s, n]) => badge(s, `${n} ${s.replace(/_/g, ' ')}`)), ''),
			h('td', { class: 'hide-narrow' }, when(b.createdAt))))));
}

function createForm() {
	const status = statusBox();
	const form = h('form', { id: 'newbatch', class: 'card', novalidate: true },
		h('h2', null, 'New batch'),
		h('div', { class: 'row' },
			field('newbatch', 'name', 'Name', { required: true, maxlength: 140 }),
			field('newbatch', 'description', 'Description', { maxlength: 1000 })),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'create-batch' }, 'Create batch')),
		status);
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const f = form.elements;
		act({ method: 'POST', path: '/batches', form, status, label: 'Batch created',
			control: form.querySelector('#create-batch'),
			body: { name: f.name.value, description: f.description.value },
			done: r => go(`batches/${r.data.id}`) });
	});
	return form;
}
