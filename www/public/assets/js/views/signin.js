// Sign in (organisation, email, password; or an API token) and accept an invitation.
// API: POST /sessions, GET /me, POST /invitations/accept.
import { auth, call } from '../api.js';
import { h, field, statusBox, replace, errorText, fieldErrors } from '../ui.js';
import { go } from '../nav.js';

export async function render({ name, params }) {
	return name === 'accept' ? accept(params) : signin(params);
}

function signin(params) {
	const status = statusBox();
	const form = h('form', { id: 'signin', class: 'card narrow', novalidate: true },
		h('h1', null, 'Sign in to remit'),
		field('signin', 'orgId', 'Organisation ID', { required: true, autocomplete: 'organization', value: params.get('org') || localStorage.getItem('remit.org') || '' }),
		field('signin', 'email', 'Email', { type: 'email', required: true, autocomplete: 'username', value: params.get('email') || '' }),
		field('signin', 'password', 'Password', { type: 'password', required: true, autocomplete: 'current-password' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')),
		status);
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		const btn = form.querySelector('button[type=submit]');
		if (btn.disabled) return;
		btn.disabled = true;
		replace(status, 'Signing in…');
		const f = form.elements;
		try {
			const r = await call('POST', '/sessions', { noAuth: true, body: {
				orgId: f.orgId.value.trim(), email: f.email.value.trim(), password: f.password.value } });
			localStorage.setItem('remit.org', f.orgId.value.trim());
			auth.set({ kind: 'session', token: r.data.token, expiresAt: r.data.expiresAt,
				user: r.data.user, orgId: f.orgId.value.trim() });
			await afterSignIn();
		} catch (err) {
			status.className = 'status error';
			if (err.code === 'VALIDATION_ERROR') fieldErrors(form, err.details);
			replace(status, err.code === 'INVALID_CREDENTIALS' ? 'Organisation, email or password is wrong.'
				: err.code === 'TOO_MANY_ATTEMPTS' ? `Too many attempts: wait ${err.headers.get('Retry-After')} s and try again.`
				: errorText(err));
		} finally {
			btn.disabled = false;
		}
	});

	const tokStatus = statusBox();
	const tokForm = h('form', { id: 'tokensignin', novalidate: true },
		field('tokensignin', 'token', 'API token', { type: 'password', required: true, autocomplete: 'off' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Use token')),
		tokStatus);
	tokForm.addEventListener('submit', async ev => {
		ev.preventDefault();
		auth.set({ kind: 'token', token: tokForm.elements.token.value.trim() });
		try {
			await afterSignIn();
		} catch (err) {
			auth.set(null);
			replace(tokStatus, 'This token is not valid.');
		}
	});
	return h('div', null, form,
		h('details', { class: 'card narrow' }, h('summary', null, 'Sign in with an API token instead'), tokForm));
}

async function afterSignIn() {
	const me = await call('GET', '/me', { noAuth: false });
	auth.set({ ...JSON.parse(sessionStorage.getItem('remit.session')), user: me.data,
		orgId: me.data.orgId });
	document.dispatchEvent(new Event('remit:signedin'));
	const back = sessionStorage.getItem('remit.after');
	sessionStorage.removeItem('remit.after');
	if (back) location.hash = back; else go(auth.has('APPROVER') ? 'approvals' : 'batches');
	if (!back && location.hash === '#/batches') window.dispatchEvent(new HashChangeEvent('hashchange'));
}

function accept(params) {
	const status = statusBox();
	const form = h('form', { id: 'accept', class: 'card narrow', novalidate: true },
		h('h1', null, 'Accept your invitation'),
		h('p', null, 'Choose a password of 12 characters or more.'),
		field('accept', 'token', 'Invitation code', { required: true, value: params.get('token') || '', autocomplete: 'off' }),
		field('accept', 'password', 'New password', { type: 'password', required: true, autocomplete: 'new-password', minlength: 12 }),
		field('accept', 'confirm', 'Repeat the password', { type: 'password', required: true, autocomplete: 'new-password' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Set password')),
		status);
	form.addEventListener('submit', async ev => {
		ev.preventDefault();
		const f = form.elements;
		const btn = form.querySelector('button[type=submit]');
		if (btn.disabled) return;
		if (f.password.value !== f.confirm.value) {
			fieldErrors(form, { confirm: 'the two passwords differ' });
			return;
		}
		btn.disabled = true;
		replace(status, 'Setting your password…');
		try {
			const r = await call('POST', '/invitations/accept', { noAuth: true,
				body: { token: f.token.value.trim(), password: f.password.value } });
			const org = params.get('org') || r.data.orgId || '';
			status.className = 'status ok';
			replace(status, 'Your password is set. ',
				h('a', { href: `#/signin?org=${encodeURIComponent(org)}&email=${encodeURIComponent(r.data.email)}` }, 'Sign in now'));
			status.querySelector('a').focus();
		} catch (err) {
			status.className = 'status error';
			if (err.code === 'VALIDATION_ERROR') fieldErrors(form, err.details);
			replace(status, err.code === 'INVITATION_INVALID'
				? 'This invitation is unknown, used or expired: ask your administrator for a new one.'
				: errorText(err));
		} finally {
			btn.disabled = false;
		}
	});
	return form;
}
