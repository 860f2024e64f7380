// The approvals queue: tabs "needs me / waiting on others / all", each row with its snapshot
// and progress, rows the caller may not decide greyed with the reason, approve / reject, and
// bulk approve (eligibility checked first, confirmed with the count and totals per currency,
// then one POST /decisions for them all under one key kept for its retries, the result of
// every item reported as the API answered it).
// API: GET /requests?actionableBy=me&status=PENDING_APPROVAL, GET /requests?status=PENDING_APPROVAL,
// GET /requests/{id}/approvals and GET /batches/{id} per row shown,
// POST /requests/{id}/approve | /reject (per row), POST /decisions (bulk, API §11).
import { auth, all, get, call, newIntent } from '../api.js';
import { h, replace, money, masked, totals, confirmDialog, flash, rerender, errorText, statusBox, signalChips, signalText, pending } from '../ui.js';
import { decideControls, progress, whyNot } from './decide.js';

const TABS = [['mine', 'Needs me'], ['others', 'Waiting on others'], ['all', 'All pending']];
const MINE = '/requests?actionableBy=me&status=PENDING_APPROVAL';
const PENDING = '/requests?status=PENDING_APPROVAL';

// What the screen shows now (tab and request ids), for the refresh when the page regains focus.
let shown = null;

async function queues(tab) {
	const [mine, pending] = await Promise.all([all(MINE), all(PENDING)]);
	const mineIds = new Set(mine.map(r => r.id));
	const rows = tab === 'mine' ? mine : tab === 'others' ? pending.filter(r => !mineIds.has(r.id)) : pending;
	return { mine, pending, mineIds, rows };
}

export async function render({ params }) {
	const tab = TABS.some(([t]) => t === params.get('tab')) ? params.get('tab') : 'mine';
	const me = auth.user;
	const { mine, pending, mineIds, rows } = await queues(tab);
	const details = await rowDetails(rows);
	shown = { tab, ids: new Set(rows.map(r => r.id)) };

	const selected = new Map();
	const bulkStatus = statusBox();
	const chosenTotals = h('span', { id: 'bulk-selection', class: 'muted' });
	const bulkBtn = h('button', { type: 'button', id: 'bulk-approve', disabled: true,
		onclick: () => bulkApprove(bulkBtn, [...selected.values()], bulkStatus) }, 'Approve selected');
	const boxes = [];
	const allBox = h('input', { type: 'checkbox', id: 'select-all', onchange: ev => {
		const on = ev.target.checked;     // read once: each row's change redraws this box
		for (const b of boxes) if (b.checked !== on) { b.checked = on; b.dispatchEvent(new Event('change')); }
	} });
	const updateBulk = () => {
		bulkBtn.disabled = selected.size === 0;
		bulkBtn.textContent = selected.size ? `Approve selected (${selected.size})` : 'Approve selected';
		allBox.checked = selected.size > 0 && selected.size === boxes.length;
		allBox.indeterminate = selected.size > 0 && selected.size < boxes.length;
		chosenTotals.textContent = selected.size ? totalsText([...selected.values()]) : '';
	};
	const trs = rows.map(r => row(r, details.get(r.id), me, mineIds.has(r.id), selected, updateBulk, boxes));
	// The bulk bar stays in view (position: sticky) however far down the queue one scrolls.
	const bar = boxes.length ? h('div', { class: 'bulkbar', id: 'bulkbar' },
		h('label', { for: 'select-all', class: 'select-all' }, allBox, ` Select all (${boxes.length})`),
		bulkBtn, chosenTotals, bulkStatus) : '';

	return h('div', null,
		h('h1', null, 'Approvals'),
		h('nav', { class: 'tabs', 'aria-label': 'Approval queues' }, TABS.map(([t, label]) =>
			h('a', { href: `#/approvals?tab=${t}`, 'aria-current': t === tab ? 'page' : null },
				`${label} (${t === 'mine' ? mine.length : t === 'others' ? pending.length - mine.length : pending.length})`))),
		rows.length ? h('p', { id: 'queue-totals' }, `${rows.length} request${rows.length === 1 ? '' : 's'}: ${totalsText(rows)}`)
			: h('p', { class: 'muted' }, tab === 'mine' ? 'Nothing needs you now.' : 'Nothing here.'),
		bar,
		h('div', { class: 'table-wrap' }, rows.length ? h('table', { class: 'queue' },
			h('caption', { class: 'visually-hidden' }, 'Requests waiting for approval'),
			h('thead', null, h('tr', null, h('th', null, h('span', { class: 'visually-hidden' }, 'Select')),
				h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'), h('th', null, 'Progress'),
				h('th', null, 'Decision'), h('th', null, 'Details'))),
			h('tbody', null, trs)) : ''));
}

const totalsText = rows => totals(rows.map(r => r.snapshot || r)).map(t => money(t.amount, t.currency)).join(', ');

// Back on the page (another tab, another app, the phone unlocked): the queue is fetched again;
// rows decided meanwhile leave it with a note. Not while an intent or a dialog is open.
let refreshing = false;
async function onReturn() {
	if (document.visibilityState !== 'visible' || !shown || refreshing) return;
	if (!/^#\/approvals(\?|$)/.test(location.hash) || pending.count || document.querySelector('dialog[open]')) return;
	refreshing = true;
	try {
		const before = shown;
		const now = new Set((await queues(before.tab)).rows.map(r => r.id));
		const gone = [...before.ids].filter(id => !now.has(id));
		const changed = gone.length || [...now].some(id => !before.ids.has(id));
		if (!changed || shown !== before) return;
		if (gone.length) flash(await goneNote(gone));
		rerender();
	} catch { /* offline: the next return tries again */ } finally {
		refreshing = false;
	}
}
document.addEventListener('visibilitychange', onReturn);
window.addEventListener('focus', onReturn);

async function goneNote(ids) {
	const parts = await Promise.all(ids.slice(0, 10).map(id => get(`/requests/${id}`).then(
		x => `request ${id} is now ${x.data.status.replace(/_/g, ' ').toLowerCase()}`, () => `request ${id} is gone`)));
	return h('span', { id: 'queue-note' }, `Decided by someone else, and so left the queue: ${parts.join('; ')}${ids.length > 10 ? '…' : ''}.`);
}

// Approvals and batch of each row, in parallel (the batch tells who submitted it).
async function rowDetails(rows) {
	const batchIds = [...new Set(rows.map(r => r.batchId))];
	const [approvals, batches] = await Promise.all([
		Promise.all(rows.map(r => get(`/requests/${r.id}/approvals?limit=200`).then(x => x.data))),
		Promise.all(batchIds.map(id => get(`/batches/${id}`).then(x => x.data))),
	]);
	const byBatch = new Map(batches.map(b => [b.id, b]));
	return new Map(rows.map((r, i) => [r.id, { approvals: approvals[i], batch: byBatch.get(r.batchId) }]));
}

// One row: what a phone shows in at most 160 px (amount, beneficiary, signals, progress,
// Approve and Reject); the account, purpose, batch, the signals' sentences and who decided
// what are in the details, opened on tap.
function row(r, d, me, actionable, selected, updateBulk, boxes) {
	const s = r.snapshot || r;
	const reason = whyNot(r, d.batch, d.approvals, me, actionable);
	const box = actionable ? h('input', { type: 'checkbox', id: `sel-${r.id}`, 'aria-label': `Select request ${r.id} for bulk approval`,
		onchange: ev => { ev.target.checked ? selected.set(r.id, r) : selected.delete(r.id); updateBulk(); } }) : '';
	if (box) boxes.push(box);
	return h('tr', { class: reason ? 'greyed' : '', 'data-id': r.id },
		h('td', { class: 'sel' }, box),
		h('td', { class: 'num amount' }, money(s.amount, s.currency)),
		h('td', { class: 'benef-cell' }, h('a', { href: `#/requests/${r.id}`, class: 'benef', title: s.beneficiaryName }, s.beneficiaryName),
			signalChips(r, true)),
		h('td', { class: 'prog' }, `${r.approvalCount} of ${r.requiredApprovals} approval${r.requiredApprovals === 1 ? '' : 's'}`),
		h('td', { class: 'act' }, reason ? h('span', { class: 'reason' }, `You cannot decide: ${reason}.`) : decideControls(r)),
		h('td', { class: 'more' }, h('details', null, h('summary', null, 'Details', h('span', { class: 'visually-hidden' }, ` of request ${r.id}`)),
			h('div', { class: 'mono' }, masked(s.beneficiaryAccount)),
			s.purpose ? h('div', null, s.purpose) : '',
			(r.signals || []).length ? h('ul', { class: 'signal-text' }, r.signals.map(x => h('li', null, signalText(x)))) : '',
			h('div', null, 'batch ', h('a', { href: `#/batches/${r.batchId}` }, d.batch ? d.batch.name : r.batchId)),
			progress(r, d.approvals, me))));
}

async function bulkApprove(btn, chosen, status) {
	if (btn.disabled) return;
	btn.disabled = true;
	try {
		// Eligibility first: only what still needs the caller now is sent.
		const now = new Set((await all('/requests?actionableBy=me&status=PENDING_APPROVAL')).map(r => r.id));
		const go = chosen.filter(r => now.has(r.id));
		const gone = chosen.filter(r => !now.has(r.id));
		if (!go.length) { replace(status, 'None of the selected requests needs you any more.'); return; }
		const t = totals(go.map(r => r.snapshot || r));
		const ok = await confirmDialog(`Approve ${go.length} request${go.length === 1 ? '' : 's'}?`, h('div', null,
			h('p', null, 'Totals per currency:'),
			h('ul', { id: 'bulk-totals' }, t.map(x => h('li', null, money(x.amount, x.currency)))),
			gone.length ? h('p', { class: 'warning' }, `${gone.length} selected request${gone.length === 1 ? ' no longer needs' : 's no longer need'} you and will be skipped.`) : ''),
			`Approve ${go.length}`);
		if (!ok) return;
		const results = [];
		for (const r of gone) results.push([r, 'skipped: no longer needs you', 'error']);
		const list = h('ul', { class: 'results', id: 'bulk-results' });
		const show = () => replace(list, results.map(([r, text, cls]) => h('li', { class: cls, 'data-id': r.id },
			`Request ${r.id} (${money((r.snapshot || r).amount, (r.snapshot || r).currency)}): ${text}`)));
		replace(status, h('p', { class: 'status busy' }, `Approving ${go.length}…`));
		pending.start();   // leaving now would lose the answer: the browser asks first
		btn._pending = true;
		const intent = newIntent();     // one key for the whole bulk approval, kept for its retries
		try {
			const res = await call('POST', '/decisions', { intent,
				body: { decisions: go.map(r => ({ requestId: r.id, decision: 'APPROVED' })) },
				onRetry: n => replace(status, h('p', { class: 'status retrying' }, `Retrying (attempt ${n + 1})…`)) });
			const byId = new Map(res.data.results.map(x => [x.requestId, x]));
			for (const r of go) {
				const x = byId.get(r.id);
				if (x && x.status === 200) results.push([r, (res.replayed ? 'approved (a repeat: already done)' : 'approved')
					+ (x.data.status === 'APPROVED' ? '' : ` (${x.data.approvalCount} of ${x.data.requiredApprovals} approvals)`), 'ok']);
				else results.push([r, 'failed: ' + (x ? `${x.error.code}: ${x.error.message}` : 'no answer'), 'error']);
			}
		} catch (err) {
			for (const r of go) results.push([r, 'not approved: ' + errorText(err), 'error']);
		}
		show();
		replace(status, list);
		const n = results.filter(([, , c]) => c === 'ok').length;
		flash(h('div', null, `Bulk approval: ${n} of ${chosen.length} approved.`, list));
		rerender();
	} catch (err) {
		replace(status, errorText(err));
	} finally {
		if (btn._pending) pending.end();
		btn._pending = false;
		btn.disabled = false;
	}
}
