// The approvals queue: tabs "needs me / waiting on others / all", each row with its snapshot
// and progress, rows the caller may not decide greyed with the reason, approve / reject, and
// bulk approve (eligibility checked first, confirmed with the count and totals per currency,
// then one POST /decisions for them all under one key kept for its retries, the result of
// every item reported as the API answered it).
// API: GET /requests?actionableBy=me&status=PENDING_APPROVAL, GET /requests?status=PENDING_APPROVAL,
// GET /requests/{id}/approvals and GET /batches/{id} per row shown,
// POST /requests/{id}/approve | /reject (per row), POST /decisions (bulk, API §11).
import { auth, all, get, call, newIntent } from '../api.js';
import { h, replace, money, masked, when, totals, confirmDialog, flash, rerender, errorText, statusBox } from '../ui.js';
import { decideControls, progress, whyNot } from './decide.js';

const TABS = [['mine', 'Needs me'], ['others', 'Waiting on others'], ['all', 'All pending']];

export async function render({ params }) {
	const tab = TABS.some(([t]) => t === params.get('tab')) ? params.get('tab') : 'mine';
	const me = auth.user;
	const [mine, pending] = await Promise.all([
		all('/requests?actionableBy=me&status=PENDING_APPROVAL'),
		all('/requests?status=PENDING_APPROVAL'),
	]);
	const mineIds = new Set(mine.map(r => r.id));
	const rows = tab === 'mine' ? mine : tab === 'others' ? pending.filter(r => !mineIds.has(r.id)) : pending;
	const details = await rowDetails(rows);

	const selected = new Set();
	const bulkStatus = statusBox();
	const bulkBtn = h('button', { type: 'button', id: 'bulk-approve', disabled: true,
		onclick: () => bulkApprove(bulkBtn, [...selected], bulkStatus) }, 'Approve selected');
	const updateBulk = () => {
		bulkBtn.disabled = selected.size === 0;
		bulkBtn.textContent = selected.size ? `Approve selected (${selected.size})` : 'Approve selected';
	};

	return h('div', null,
		h('h1', null, 'Approvals'),
		h('nav', { class: 'tabs', 'aria-label': 'Approval queues' }, TABS.map(([t, label]) =>
			h('a', { href: `#/approvals?tab=${t}`, 'aria-current': t === tab ? 'page' : null },
				`${label} (${t === 'mine' ? mine.length : t === 'others' ? pending.length - mine.length : pending.length})`))),
		rows.length ? '' : h('p', { class: 'muted' }, tab === 'mine' ? 'Nothing needs you now.' : 'Nothing here.'),
		rows.some(r => mineIds.has(r.id)) ? h('div', { class: 'actions' }, bulkBtn, bulkStatus) : '',
		h('div', { class: 'table-wrap' }, rows.length ? h('table', { class: 'stack' },
			h('caption', { class: 'visually-hidden' }, 'Requests waiting for approval'),
			h('thead', null, h('tr', null, h('th', null, h('span', { class: 'visually-hidden' }, 'Select')),
				h('th', { class: 'num' }, 'Amount'), h('th', null, 'Beneficiary'), h('th', null, 'Progress'), h('th', null, 'Decision'))),
			h('tbody', null, rows.map(r => row(r, details.get(r.id), me, mineIds.has(r.id), selected, updateBulk)))) : ''));
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

function row(r, d, me, actionable, selected, updateBulk) {
	const s = r.snapshot || r;
	const reason = whyNot(r, d.batch, d.approvals, me, actionable);
	const box = actionable ? h('input', { type: 'checkbox', id: `sel-${r.id}`, 'aria-label': `Select request ${r.id} for bulk approval`,
		onchange: ev => { ev.target.checked ? selected.add(r) : selected.delete(r); updateBulk(); } }) : '';
	return h('tr', { class: reason ? 'greyed' : '', 'data-id': r.id },
		h('td', null, box),
		h('td', { class: 'num' }, money(s.amount, s.currency)),
		h('td', null, h('a', { href: `#/requests/${r.id}` }, s.beneficiaryName),
			h('div', { class: 'mono muted' }, masked(s.beneficiaryAccount)),
			s.purpose ? h('div', { class: 'muted' }, s.purpose) : '',
			h('div', { class: 'muted' }, 'batch ', h('a', { href: `#/batches/${r.batchId}` }, d.batch ? d.batch.name : r.batchId))),
		h('td', null, progress(r, d.approvals, me)),
		h('td', null, reason ? h('span', { class: 'reason' }, `You cannot decide: ${reason}.`) : decideControls(r)));
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
		btn.disabled = false;
	}
}
