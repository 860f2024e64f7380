// An object's audit events as a timeline (newest first).
import { h, when, userLabel } from '../ui.js';

const ACTIONS = {
	'batch.created': 'created the batch', 'batch.submitted': 'submitted the batch',
	'batch.cancelled': 'cancelled the batch', 'batch.completed': 'batch completed',
	'request.created': 'added the request', 'request.updated': 'changed the request',
	'request.deleted': 'deleted the request', 'request.submitted': 'submitted the request',
	'request.cancelled': 'cancelled the request', 'request.approved': 'approved',
	'request.rejected': 'rejected', 'request.paid': 'marked paid',
};

export function describe(e) {
	const d = e.data || {};
	const extra = e.action === 'request.updated'
		? Object.entries(d).map(([k, v]) => `${k}: ${v.from} → ${v.to}`).join('; ')
		: d.comment ? `“${d.comment}”` : d.paymentReference ? `reference ${d.paymentReference}` : '';
	return [ACTIONS[e.action] || e.action, extra ? ` (${extra})` : ''];
}

export function timeline(events, me) {
	if (!events.length) return h('p', { class: 'muted' }, 'No events.');
	return h('ol', { class: 'timeline' }, events.map(e => h('li', null,
		when(e.at), ' — ', e.actorId ? userLabel(e.actorId, me) : 'system', ' ', describe(e))));
}
