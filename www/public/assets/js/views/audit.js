// The audit log, organisation-wide or filtered (?objectType=&objectId=&action=&actorId= kept
// in the URL; a type and an id name one object: an id alone would mix request 1, batch 1,
// user 1...), with a
// check that the events shown link into one chain (each prevHash is the hash before it).
// The API offers no verification of the hashes themselves: `remit verify-audit` does that.
// API: GET /audit?objectType=&objectId=&action=&actorId=&limit=&cursor=, GET /audit as CSV.
import { auth, get } from '../api.js';
import { h, replace, when, userLabel, memberName, memberList, csvButton } from '../ui.js';
import { describe } from './timeline.js';

export async function render({ params }) {
	const me = auth.user;
	const objectId = params.get('objectId') || '';
	const objectType = TYPES.includes(params.get('objectType')) ? params.get('objectType') : '';
	const actorId = params.get('actorId') || '';
	const action = (params.get('action') || '').trim();
	const filters = { objectType, objectId, actorId, action };
	const events = [];
	const body = h('tbody');
	const more = h('div', { class: 'actions' });
	const chain = h('p', { id: 'chain-state', role: 'status' });
	const load = async cursor => {
		const q = new URLSearchParams({ limit: '100' });
		for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
		if (cursor) q.set('cursor', cursor);
		const page = await get('/audit?' + q);
		events.push(...page.data);
		body.append(...page.data.map(e => h('tr', null, h('td', null, when(e.at)),
			h('td', null, e.actorId ? userLabel(e.actorId, me) : 'system', madeBy(e, me)),
			h('td', null, e.action), h('td', null, `${e.objectType} `, h('a', { href: `#/audit?objectType=${e.objectType}&objectId=${e.objectId}` }, e.objectId)),
			h('td', null, describe(e)), h('td', { class: 'mono hide-narrow' }, e.hash.slice(0, 12) + '…'))));
		replace(more, page.json.nextCursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(page.json.nextCursor) }, 'Show more') : '');
		replace(chain, objectId || objectType || actorId || action ? 'Filtered: the chain links are checked on the organisation-wide log.' : chainState(events));
	};
	await load();
	const filter = h('form', { id: 'auditfilter', class: 'row' },
		h('div', { class: 'field' }, h('label', { for: 'audit-objectType' }, 'Object type'),
			h('select', { id: 'audit-objectType', name: 'objectType' }, ['', ...TYPES].map(t =>
				h('option', { value: t, selected: t === objectType }, t ? t.replace(/_/g, ' ') : 'any')))),
		h('div', { class: 'field' }, h('label', { for: 'audit-objectId' }, 'Object ID'),
			h('input', { id: 'audit-objectId', name: 'objectId', value: objectId, inputmode: 'numeric' })),
		h('div', { class: 'field' }, h('label', { for: 'audit-actorId' }, 'Who'),
			h('select', { id: 'audit-actorId', name: 'actorId' }, h('option', { value: '' }, 'anyone'),
				memberList().map(([id, name]) => h('option', { value: id, selected: String(id) === actorId }, name)))),
		h('div', { class: 'field' }, h('label', { for: 'audit-action' }, 'Action (e.g. request.approved)'),
			h('input', { id: 'audit-action', name: 'action', type: 'search', value: action, autocomplete: 'off' })),
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Filter')));
	filter.addEventListener('submit', ev => {
		ev.preventDefault();
		const q = new URLSearchParams();
		for (const k of ['objectType', 'objectId', 'actorId', 'action']) if (filter.elements[k].value.trim()) q.set(k, filter.elements[k].value.trim());
		location.hash = '#/audit' + (String(q) ? '?' + q : '');
	});
	const csvPath = () => { const q = new URLSearchParams(); for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v); return '/audit?' + q; };
	return h('div', null, h('h1', null, title(objectType, objectId, actorId)),
		filter, h('div', { class: 'actions' }, chain, csvButton(csvPath, 'audit.csv', 'Download CSV')),
		h('div', { class: 'table-wrap' }, h('table', null,
			h('caption', { class: 'visually-hidden' }, 'Audit events'),
			h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Who'), h('th', null, 'Action'),
				h('th', null, 'Object'), h('th', null, 'Details'), h('th', { class: 'hide-narrow' }, 'Hash'))), body)),
		more);
}

// API §7 v1.2: an ADMIN can mint a token for someone else and act as them; the event says so.
function madeBy(e, me) {
	const admin = e.credential && e.credential.mintedBy;
	return admin ? h('span', { class: 'minted-by' }, ` with a token made by ${userLabel(admin, me)}`) : null;
}

const TYPES = ['org', 'user', 'token', 'session', 'approval_rules', 'batch', 'request', 'debtor_accounts',
	'payment_file', 'webhook_endpoint'];

function title(type, id, actor) {
	const what = type ? type.replace(/_/g, ' ') : 'object';
	const of = id ? ` of ${what} ${id}` : type ? ` of every ${what}` : '';
	return `Audit log${of}${actor ? ` by ${memberName(actor)}` : ''}`;
}

function chainState(events) {
	for (let i = 0; i + 1 < events.length; i++)
		if (events[i].prevHash !== events[i + 1].hash)
			return `Chain broken: event ${events[i].id} does not follow event ${events[i + 1].id}.`;
	const last = events[events.length - 1];
	const complete = last && /^0{64}$/.test(last.prevHash);
	return `Chain links consistent for the ${events.length} events shown${complete ? ', back to the first event' : ''}.`;
}
