// DOM building (never innerHTML with data), money and text formatting, and the runner that
// gives every button and form its exactly-once behaviour.
import { call, newIntent, ApiError, all, download } from './api.js';

export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
		else if (k === 'class') el.className = v;
		else if (k === 'text') el.textContent = v;
		else if (v === true) el.setAttribute(k, '');
		else el.setAttribute(k, v);
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		el.append(c instanceof Node ? c : String(c));
	}
}

export function replace(el, ...children) {
	el.replaceChildren();
	append(el, children);
	return el;
}

// ---- money: decimal strings and BigInt minor units, never a float ----------------------

export const MINOR = {
	USD: 2, EUR: 2, GBP: 2, CHF: 2, JPY: 0, CAD: 2, AUD: 2, SEK: 2, NOK: 2, DKK: 2, PLN: 2,
	CZK: 2, HUF: 2, INR: 2, CNY: 2, KWD: 3, BHD: 3, NZD: 2, SGD: 2, HKD: 2, MXN: 2, ZAR: 2,
	BRL: 2, KRW: 0, ISK: 0, OMR: 3, JOD: 3, TND: 3, RON: 2, TRY: 2, ILS: 2, AED: 2, SAR: 2,
	THB: 2, CLP: 0,
};
export const CURRENCIES = Object.keys(MINOR);

const formats = new Map();
// Intl.NumberFormat formats a decimal string exactly (no Number conversion).
export function money(amount, currency) {
	const m = MINOR[currency] ?? 2;
	let f = formats.get(currency);
	if (!f) {
		f = new Intl.NumberFormat(undefined, {
			style: 'currency', currency, minimumFractionDigits: m, maximumFractionDigits: m,
		});
		formats.set(currency, f);
	}
	return f.format(String(amount));
}

export function toMinor(amount, currency) {
	const m = MINOR[currency] ?? 2;
	const [i, f = ''] = String(amount).split('.');
	return BigInt(i + f.padEnd(m, '0').slice(0, m));
}

export function fromMinor(units, currency) {
	const m = MINOR[currency] ?? 2;
	const s = units.toString().padStart(m + 1, '0');
	return m ? s.slice(0, -m) + '.' + s.slice(-m) : s;
}

// Totals per currency of [{amount, currency}] — never summed across currencies.
export function totals(items) {
	const t = new Map();
	for (const it of items) t.set(it.currency, (t.get(it.currency) || 0n) + toMinor(it.amount, it.currency));
	return [...t].sort(([a], [b]) => a.localeCompare(b))
		.map(([currency, units]) => ({ currency, amount: fromMinor(units, currency) }));
}

// What a person typed → the API's decimal string, or an error message.
export function parseAmount(text, currency) {
	const s = String(text).replace(/[\s\u00a0']/g, '');
	const m = MINOR[currency];
	if (m === undefined) return { error: 'choose a currency' };
	if (!/^\d+(\.\d*)?$/.test(s)) return { error: 'digits, with a "." before the decimals' };
	const [i, f = ''] = s.split('.');
	const int = i.replace(/^0+(?=\d)/, '');
	if (int.length > 15) return { error: 'at most 15 digits before the decimals' };
	if (f.length > m) return { error: m ? `at most ${m} decimals for ${currency}` : `${currency} has no decimals` };
	if (/^[0.]*$/.test(s)) return { error: 'must be more than zero' };
	return { value: f ? `${int}.${f}` : int };
}

// ---- accounts, dates --------------------------------------------------------------------

const isIban = a => /^[A-Z]{2}\d{2}/.test(a);
export const groups = a => isIban(a) ? a.replace(/(.{4})(?=.)/g, '$1 ') : a;
export function masked(a) {
	if (!a) return '';
	return (isIban(a) ? a.slice(0, 4) + ' ' : '') + '•••• ' + a.slice(-4);
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const when = iso => iso ? h('time', { datetime: iso, title: iso }, dtf.format(new Date(iso))) : '';

// People by name (API §10: GET /members, for every user), loaded once per page load.
const members = new Map();
export async function loadMembers() {
	for (const m of await all('/members')) members.set(m.id, m.name);
}
export const memberName = id => members.get(id) || `user ${id}`;
export const memberList = () => [...members].sort(([, a], [, b]) => a.localeCompare(b));
export const userLabel = (id, me) => id === me.id ? 'you' : memberName(id);

// The signals the server computed for a request (API §10), as short chips, each saying
// what to check; nothing for a request without any.
const SIGNALS = {
	DUPLICATE: ids => `Possible duplicate of request ${ids.join(', ')}: same account, currency and amount within 90 days`,
	NEW_BENEFICIARY: () => 'New beneficiary: nothing was ever paid to this account',
	ACCOUNT_CHANGED: ids => `Account changed: this name was paid to another account (request ${ids.join(', ')})`,
};
const SHORT = { DUPLICATE: 'Duplicate?', NEW_BENEFICIARY: 'New beneficiary', ACCOUNT_CHANGED: 'Account changed' };
export const signalText = s => (SIGNALS[s.code] || (() => s.code))(s.requestIds);
// `short`: a one-word chip (a phone's queue row), the sentence kept for screen readers and
// shown in the row's details.
export function signalChips(r, short) {
	const list = r.signals || [];
	if (!list.length) return '';
	return h('ul', { class: 'signals', 'aria-label': 'Signals' }, list.map(s => h('li', {
		class: 'signal ' + s.code.toLowerCase(), 'data-code': s.code, title: short ? signalText(s) : null,
	}, short ? [SHORT[s.code] || s.code, h('span', { class: 'visually-hidden' }, ': ' + signalText(s))] : signalText(s))));
}

// ---- messages ---------------------------------------------------------------------------

export function announce(text) {
	const live = document.getElementById('live');
	live.textContent = '';
	setTimeout(() => { live.textContent = text; }, 30);
}

// What an error code means for the person in front of the screen, and what to do next.
const PLAIN = {
	INVALID_STATE: e => `This was already finished by someone else (it is now ${String(e.details && e.details.status || 'changed').replace(/_/g, ' ').toLowerCase()}): nothing more to do here.`,
	ALREADY_DECIDED: () => 'You have already decided this request: nothing more to do here.',
	SELF_APPROVAL_FORBIDDEN: () => 'You made this request (created, changed or submitted it), so someone else must approve it.',
	SELF_PAYMENT_FORBIDDEN: () => 'You made this request, so another treasurer must mark it paid.',
	FORBIDDEN: () => 'Your account may not do this. Ask an administrator for the role it needs.',
	NOT_FOUND: () => 'This no longer exists, or it belongs to another organisation.',
	VERSION_CONFLICT: () => 'Someone else changed this while you were working: reload to see their change.',
	BATCH_FULL: () => 'This batch is full (5,000 requests): start a new batch for the rest.',
	TOO_MANY_ATTEMPTS: () => 'Too many attempts: wait a moment, then try again.',
};

export function errorText(err) {
	if (!(err instanceof ApiError)) return String(err && err.message || err);
	if (err.code === 'NETWORK') return 'The server cannot be reached. Nothing was lost: try again.';
	const plain = PLAIN[err.code];
	return plain ? plain(err) : `${err.message} (${err.code})`;
}

// Shows field errors of a VALIDATION_ERROR beside their fields (inputs named like the API's
// fields, each with an element #<form id>-<field>-error); returns what matched no field.
export function fieldErrors(form, details) {
	for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
	for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
	const rest = {};
	for (const [field, msg] of Object.entries(details || {})) {
		const named = form.elements.namedItem(field);
		const input = named instanceof RadioNodeList ? named[0] : named;
		const out = form.querySelector(`#${form.id}-${CSS.escape(field)}-error`);
		if (input && out) {
			out.textContent = msg;
			input.setAttribute('aria-invalid', 'true');
		} else rest[field] = msg;
	}
	const first = form.querySelector('[aria-invalid="true"]');
	if (first) first.focus();
	return rest;
}

// A labelled input with its error slot.
export function field(formId, name, label, attrs = {}) {
	const id = `${formId}-${name}`;
	const tag = attrs.tag || 'input';
	delete attrs.tag;
	const input = h(tag, { id, name, 'aria-describedby': `${id}-error`, ...attrs }, attrs.options || []);
	return h('div', { class: 'field' },
		h('label', { for: id }, label), input, h('span', { id: `${id}-error`, class: 'field-error' }));
}

export function select(formId, name, label, options, value) {
	return field(formId, name, label, {
		tag: 'select',
		options: options.map(o => h('option', { value: o, selected: o === value }, o)),
	});
}

// ---- exactly-once actions ---------------------------------------------------------------

// Runs one user intent. The control is disabled at once (a second click of a double click
// finds it disabled), one Idempotency-Key serves every retry of this intent, and a press
// after a failure that may have reached the server (network, 5xx) reuses that key while the
// body is the same. `status` shows sending / retrying / done / the error.
//   opts: {method, path, body, ifMatch, key: true|false, control, status, done(result),
//          failed(err) → true when handled, form (for field errors), retrySafe, label}
// Intents sent and not yet answered: leaving the page now would drop them silently, so the
// browser asks first (bug 5).
let pendingIntents = 0;
export const pending = { start() { pendingIntents++; }, end() { pendingIntents--; }, get count() { return pendingIntents; } };
window.addEventListener('beforeunload', ev => {
	if (pendingIntents > 0) { ev.preventDefault(); ev.returnValue = ''; }
});

export async function act(opts) {
	const { control, status } = opts;
	if (control.disabled || control.dataset.busy) return null;
	pending.start();
	control.disabled = true;
	control.dataset.busy = '1';
	control.setAttribute('aria-busy', 'true');
	const bodyText = JSON.stringify(opts.body ?? null) + opts.path;
	let intent = null;
	if (opts.key !== false) {
		const kept = control._intent;
		intent = kept && kept.body === bodyText ? kept : Object.assign(newIntent(), { body: bodyText });
		control._intent = intent;
	}
	const say = (cls, text, ...more) => {
		if (!status) return;
		status.className = 'status ' + cls;
		replace(status, text, ...more);
	};
	say('busy', 'Sending…');
	let succeeded = false;
	try {
		const r = await call(opts.method, opts.path, {
			body: opts.body, ifMatch: opts.ifMatch, intent, retrySafe: opts.retrySafe,
			onRetry: (n, why) => say('retrying', `Retrying (attempt ${n + 1}: ${why})…`),
		});
		// The intent stays on the control: pressing it again with the same input (the second
		// click of a slow double click, landing after a fast answer) replays, never repeats.
		succeeded = true;
		say('ok', r.replayed ? `${opts.label || 'Done'} (already done: this was a repeat)` : (opts.label || 'Done'));
		announce(opts.label || 'Done');
		if (opts.done) await opts.done(r);
		return r;
	} catch (err) {
		const mayHaveLanded = err instanceof ApiError && (err.status === 0 || err.status >= 500 ||
			err.code === 'IDEMPOTENCY_KEY_IN_PROGRESS');
		if (!mayHaveLanded) control._intent = null;
		if (opts.failed && await opts.failed(err)) return null;
		if (err.code === 'VERSION_CONFLICT') {
			say('error', 'Someone else changed this while you were working. ',
				h('button', { type: 'button', class: 'link', onclick: () => location.reload() }, 'Reload'),
				' to see their change.');
		} else if (err.code === 'VALIDATION_ERROR' && opts.form) {
			const rest = fieldErrors(opts.form, err.details);
			say('error', 'Please correct the marked fields.',
				Object.keys(rest).length ? ' ' + Object.entries(rest).map(([k, v]) => `${k}: ${v}`).join('; ') : '');
		} else {
			say('error', errorText(err));
		}
		announce(errorText(err));
		return null;
	} finally {
		pending.end();
		delete control.dataset.busy;
		control.removeAttribute('aria-busy');
		// After a success the screen is usually redrawn; until then a second click is void.
		if (succeeded) setTimeout(() => { control.disabled = false; }, 1000);
		else control.disabled = false;
	}
}

export function statusBox(tag = 'p') {
	return h(tag, { class: 'status', role: 'status' });
}

// ---- confirmation, flash, re-render -------------------------------------------------------

// A modal confirmation; resolves true when confirmed. Escape or "Cancel" → false.
export function confirmDialog(title, body, confirmLabel) {
	const dlg = document.getElementById('confirm');
	return new Promise(resolve => {
		const form = h('form', { method: 'dialog' },
			h('h2', { id: 'confirm-title' }, title), body,
			h('div', { class: 'actions' },
				h('button', { type: 'submit', value: 'ok', id: 'confirm-ok' }, confirmLabel),
				h('button', { type: 'submit', value: 'cancel', class: 'secondary', id: 'confirm-cancel' }, 'Cancel')));
		replace(dlg, form);
		dlg.setAttribute('aria-labelledby', 'confirm-title');
		dlg.returnValue = '';
		dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
		dlg.showModal();
		dlg.querySelector('#confirm-ok').focus();
	});
}

// Asks for a reason (a rejection's comment) in a modal; resolves to the text, or null when
// cancelled. The reason is required: an empty one is refused in the dialog itself.
export function reasonDialog(title, body, confirmLabel) {
	const dlg = document.getElementById('confirm');
	return new Promise(resolve => {
		const area = h('textarea', { id: 'reason-text', name: 'reason', rows: 3, maxlength: 500, required: true,
			'aria-describedby': 'reason-error' });
		const err = h('span', { id: 'reason-error', class: 'field-error' });
		const form = h('form', { method: 'dialog', id: 'reason-form', novalidate: true },
			h('h2', { id: 'confirm-title' }, title), body,
			h('div', { class: 'field' }, h('label', { for: 'reason-text' }, 'Reason (required)'), area, err),
			h('div', { class: 'actions' },
				h('button', { type: 'submit', value: 'ok', id: 'confirm-ok', class: 'danger' }, confirmLabel),
				h('button', { type: 'submit', value: 'cancel', class: 'secondary', id: 'confirm-cancel' }, 'Cancel')));
		form.addEventListener('submit', ev => {
			if (ev.submitter && ev.submitter.value === 'ok' && !area.value.trim()) {
				ev.preventDefault();
				err.textContent = 'Say why: the maker reads this.';
				area.setAttribute('aria-invalid', 'true');
				area.focus();
			}
		});
		replace(dlg, form);
		dlg.setAttribute('aria-labelledby', 'confirm-title');
		dlg.returnValue = '';
		dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok' ? area.value.trim() : null), { once: true });
		dlg.showModal();
		area.focus();
	});
}

// A CSV export (API §10): fetched with the bearer token and Accept: text/csv, then handed to
// the browser as a file (a plain link could not carry the token).
export function csvButton(path, filename, label = 'Download CSV') {
	const status = statusBox('span');
	const btn = h('button', { type: 'button', class: 'secondary csv', onclick: async () => {
		if (btn.disabled) return;
		btn.disabled = true;
		replace(status, 'Preparing…');
		try {
			const blob = await download(typeof path === 'function' ? path() : path);
			const a = h('a', { href: URL.createObjectURL(blob), download: filename, class: 'visually-hidden' });
			document.body.append(a);
			a.click();
			setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
			replace(status, '');
		} catch (err) {
			replace(status, errorText(err));
		} finally {
			btn.disabled = false;
		}
	} }, label);
	return h('span', { class: 'csv-download' }, btn, status);
}

let flashText = null;
// A message that survives the next re-render (shown at the top of the screen).
export function flash(text) { flashText = text; }
export function takeFlash() { const t = flashText; flashText = null; return t; }

export function rerender() { window.dispatchEvent(new HashChangeEvent('hashchange')); }

// The label `act` shows for a result: a replay is the success it is.
export const doneText = (label, r) => r.replayed ? `${label} (already done: this was a repeat of the same action)` : label;

// A status as a badge; "PENDING_APPROVAL" reads (and wraps) as "PENDING APPROVAL".
export const badge = (status, text) => h('span', { class: 'badge ' + status }, text ?? status.replace(/_/g, ' '));
