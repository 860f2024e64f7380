// Requests: search (API §10 `q`: beneficiary name, purpose or account) and filters as chips
// (currency, signal, status), kept in the URL; totals per currency of what is listed, and
// the whole selection as CSV.
// API: GET /requests?q=&currency=&signal=&status=&limit=&cursor=, the same with Accept: text/csv.
import { get } from '../api.js';
import { h, replace, money, masked, totals, signalChips, badge, csvButton } from '../ui.js';
import { go } from '../nav.js';

const CURRENCY = ['EUR', 'USD', 'GBP', 'CHF', 'JPY'];
const SIGNAL = [['DUPLICATE', 'Duplicate'], ['NEW_BENEFICIARY', 'New beneficiary'], ['ACCOUNT_CHANGED', 'Account changed']];
const STATUS = ['DRAFT', 'PENDING_APPROVAL', 'APPROVED', 'REJECTED', 'PAID', 'CANCELLED'];
const KEYS = ['q', 'currency', 'signal', 'status'];

export async function render({ params }) {
	const f = Object.fromEntries(KEYS.map(k => [k, (params.get(k) || '').trim()]));
	const query = () => { const q = new URLSearchParams(); for (const k of KEYS) if (f[k]) q.set(k, f[k]); return q; };
	const rows = [];
	const body = h('div', { class: 'table-wrap' });
	const sum = h('p', { id: 'requests-totals', role: 'status' });
	const more = h('div', { class: 'actions' });
	const load = async cursor => {
		const q = query();
		q.set('limit', '100');
		if (cursor) q.set('cursor', cursor);
		const page = await get('/requests?' + q);
		rows.push(...page.data);
		replace(body, table(rows));
		replace(sum, rows.length ? `${rows.length}${page.json.nextCursor ? ' shown (more below)' : ''} request${rows.length === 1 ? '' : 's'}: `
			+ totals(rows).map(t => money(t.amount, t.currency)).join(', ') : 'No request matches.');
		replace(more, page.json.nextCursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(page.json.nextCursor) }, 'Show more') : '');
	};
	await load();
	const apply = changes => go('requests', { ...f, ...changes });
	const search = h('form', { id: 'requests-search', role: 'search', class: 'row' },
		h('div', { class: 'field' }, h('label', { for: 'requests-q' }, 'Search name, purpose or account'),
			h('input', { id: 'requests-q', name: 'q', type: 'search', value: f.q, maxlength: 100, autocomplete: 'off' })),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
	search.addEventListener('submit', ev => { ev.preventDefault(); apply({ q: search.elements.q.value.trim() }); });
	return h('div', null,
		h('h1', null, 'Requests'),
		search,
		chips('currency', 'Currency', [...new Set([...CURRENCY, ...(f.currency ? [f.currency] : [])])].map(c => [c, c]), f.currency, apply),
		chips('signal', 'Signal', SIGNAL, f.signal, apply),
		chips('status', 'Status', STATUS.map(s => [s, s.replace(/_/g, ' ').toLowerCase()]), f.status, apply),
		h('div', { class: 'actions' }, sum, csvButton(() => '/requests?' + query(), 'requests.csv', 'Download CSV')),
		body, more);
}

// One filter as a row of chips (radio buttons: the API takes one value per filter).
function chips(name, legend, options, value, apply) {
	const set = h('fieldset', { class: 'chips', id: `chips-${name}` }, h('legend', null, legend),
		[['', 'any'], ...options].map(([v, label]) => h('label', { class: 'chip' },
			h('input', { type: 'radio', name: `chip-${name}`, value: v, checked: v === value }), label)));
	set.addEventListener('change', ev => apply({ [name]: ev.target.value }));
	return set;
}

function table(rows) {
	if (!rows.length) return '';
	return h('table', { class: 'stack', id: 'requests-list' },
		h('caption', { class: 'visually-hidden' }, 'Requests'),
		h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'),
			h('th', { class: 'hide-narrow' }, 'Account'), h('th', null, 'Status'))),
		h('tbody', null, rows.map(r => h('tr', { 'data-id': r.id },
			h('td', { class: 'num' }, money(r.amount, r.currency)),
			h('td', null, h('a', { href: `#/requests/${r.id}` }, r.beneficiaryName),
				r.purpose ? h('div', { class: 'muted' }, r.purpose) : '', signalChips(r, true)),
			h('td', { class: 'hide-narrow mono' }, masked(r.beneficiaryAccount)),
			h('td', null, badge(r.status))))));
}
