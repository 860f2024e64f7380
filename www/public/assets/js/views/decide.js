// The decision controls shared by the queues and the request page: approve / reject (its
// reason asked in a dialog) and mark paid (with a reference, after a confirmation).
// API: POST /requests/{id}/approve, /reject, /mark-paid — each press one intent, one key.
import { h, act, statusBox, money, confirmDialog, reasonDialog, flash, rerender, doneText, userLabel, when, errorText } from '../ui.js';

const snap = r => r.snapshot || r;

export function decideControls(r) {
	const id = `decide-${r.id}`;
	const status = statusBox();
	const s = snap(r);
	const form = h('form', { id, class: 'decide', novalidate: true },
		h('div', { class: 'actions' },
			h('button', { type: 'button', class: 'approve', 'aria-label': `Approve request ${r.id}`, onclick: ev => send(ev.currentTarget, 'approve') }, 'Approve'),
			h('button', { type: 'button', class: 'danger reject', 'aria-label': `Reject request ${r.id}`, onclick: ev => askReject(ev.currentTarget) }, 'Reject…')),
		status);
	form.addEventListener('submit', ev => ev.preventDefault());
	// Reject sits next to Approve: it asks for its reason in a dialog first, so a slip of
	// the thumb on a phone rejects nothing.
	async function askReject(btn) {
		if (form.dataset.intent || btn.disabled) return;
		form.dataset.intent = 'asking';
		const why = await reasonDialog(`Reject request ${r.id}?`,
			h('p', null, `${money(s.amount, s.currency)} to ${s.beneficiaryName}. The maker sees your reason.`), 'Reject');
		delete form.dataset.intent;
		if (why !== null) send(btn, 'reject', why);
	}
	// One intent per row at a time (bug 1): while one decision is being sent or retried, the
	// other button stays disabled, so an approval can never be overtaken by a rejection.
	function send(btn, what, text) {
		if (form.dataset.intent) return;
		const label = what === 'approve' ? `Request ${r.id} approved` : `Request ${r.id} rejected`;
		const buttons = [...form.querySelectorAll('.actions button')];
		form.dataset.intent = what;
		for (const b of buttons) if (b !== btn) b.disabled = true;
		act({ method: 'POST', path: `/requests/${r.id}/${what}`, body: text ? { comment: text } : {},
			control: btn, status, form, label,
			// Decided by someone else meanwhile: the row leaves the queue, with a note saying so.
			failed: err => {
				if (err.code !== 'INVALID_STATE' && err.code !== 'ALREADY_DECIDED') return false;
				flash(`Request ${r.id} (${money(s.amount, s.currency)} to ${s.beneficiaryName}) left the queue: ${errorText(err)}`);
				rerender();
				return true;
			},
			done: res => { flash(doneText(label, res)); rerender(); } }).finally(() => {
			delete form.dataset.intent;
			for (const b of buttons) if (b !== btn) b.disabled = false;
		});
	}
	return form;
}

export function payControls(r) {
	const id = `pay-${r.id}`;
	const status = statusBox();
	const ref = h('input', { id: `${id}-paymentReference`, name: 'paymentReference', maxlength: 35, autocomplete: 'off',
		'aria-describedby': `${id}-paymentReference-error` });
	const form = h('form', { id, class: 'pay', novalidate: true },
		h('div', { class: 'field' }, h('label', { for: `${id}-paymentReference` }, 'Payment reference'), ref,
			h('span', { id: `${id}-paymentReference-error`, class: 'field-error' })),
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'mark-paid', 'aria-label': `Mark request ${r.id} paid` }, 'Mark paid')),
		status);
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		const btn = form.querySelector('button.mark-paid');
		if (btn.disabled || btn.dataset.confirming) return;
		btn.dataset.confirming = '1';
		const s = snap(r);
		const ok = await confirmDialog('Mark this request paid?', h('p', null,
			`${money(s.amount, s.currency)} to ${s.beneficiaryName}`, ref.value ? ` with reference ${ref.value}` : ' (no reference)',
			'. This records the settlement in the ledger.'), 'Mark paid');
		delete btn.dataset.confirming;
		if (!ok) return;
		const label = `Request ${r.id} marked paid`;
		act({ method: 'POST', path: `/requests/${r.id}/mark-paid`, body: { paymentReference: ref.value.trim() },
			control: btn, status, form, label, done: res => { flash(doneText(label, res)); rerender(); } });
	});
	return form;
}

// "1 of 2 EUR approvals", with who and when.
export function progress(r, approvals, me) {
	const cur = snap(r).currency;
	return h('div', null,
		h('div', null, `${r.approvalCount} of ${r.requiredApprovals} ${cur} approval${r.requiredApprovals === 1 ? '' : 's'}`),
		approvals.length ? h('ul', { class: 'muted' }, approvals.map(a => h('li', null,
			`${a.decision === 'APPROVED' ? 'approved' : 'rejected'} by ${userLabel(a.approverId, me)}, `, when(a.createdAt),
			a.comment ? ` — “${a.comment}”` : ''))) : '');
}

// Why the caller may not decide `r` now, or '' when they may. Makers: creator, submitter of
// its batch, or one who changed it (the only maker left when the others do not apply).
export function whyNot(r, batch, approvals, me, actionable) {
	if (actionable) return '';
	const mine = approvals.find(a => a.approverId === me.id);
	if (r.createdBy === me.id) return 'you created this request';
	if (batch && batch.submittedBy === me.id) return 'you submitted its batch';
	if (mine) return `you already ${mine.decision === 'APPROVED' ? 'approved' : 'rejected'} it`;
	if (!me.roles.includes('APPROVER')) return 'you are not an approver';
	if (r.status !== 'PENDING_APPROVAL') return `it is ${r.status}`;
	return 'you edited this request';
}
