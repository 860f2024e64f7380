// The shell: the views by route (nav.js reads and writes the route), the navigation bar, and
// signing in again when a session ends.
import { auth, call, get } from './api.js';
import { parseRoute, go } from './nav.js';
import { h, replace, field, errorText, announce, takeFlash, loadMembers } from './ui.js';

const views = {
	batches: () => import('./views/batches.js'),
	batch: () => import('./views/batch.js'),
	request: () => import('./views/request.js'),
	requests: () => import('./views/requests.js'),
	approvals: () => import('./views/approvals.js'),
	treasury: () => import('./views/treasury.js'),
	files: () => import('./views/files.js'),
	ledger: () => import('./views/ledger.js'),
	audit: () => import('./views/audit.js'),
	admin: () => import('./views/admin.js'),
	signin: () => import('./views/signin.js'),
	accept: () => import('./views/signin.js'),
};

const NAV = [
	['batches', 'Batches', null],
	['requests', 'Requests', null],
	['approvals', 'Approvals', 'APPROVER'],
	['treasury', 'Treasury', 'TREASURER'],
	['files', 'Payment files', null],
	['ledger', 'Ledger', null],
	['audit', 'Audit log', null],
	['admin', 'Admin', 'ADMIN'],
];

function renderNav(current) {
	const nav = document.getElementById('nav');
	if (!auth.token) return replace(nav);
	const u = auth.user;
	replace(nav,
		h('ul', null, NAV.filter(([, , role]) => !role || auth.has(role)).map(([p, label]) =>
			h('li', null, h('a', { href: '#/' + p, 'aria-current': p === current ? 'page' : null }, label)))),
		h('div', { class: 'who' },
			h('span', null, `${u.name || u.email} · ${u.roles.join(', ')}`),
			h('button', { type: 'button', class: 'link', id: 'signout', onclick: signOut }, 'Sign out')));
}

async function signOut() {
	try { await call('DELETE', '/sessions/current'); } catch { /* an API token, or gone already */ }
	auth.set(null);
	go('signin');
}

let membersLoaded = false;
async function render() {
	const { parts, params } = parseRoute();
	let name = parts[0] || 'batches';
	if (name === 'batches' && parts[1]) name = 'batch';
	if (name === 'requests' && parts[1]) name = 'request';
	if (!auth.token && name !== 'accept' && name !== 'signin') {
		sessionStorage.setItem('remit.after', location.hash);   // back here once signed in
		name = 'signin';
	}
	if (!views[name]) name = 'batches';
	const nav = name === 'batch' ? 'batches' : name === 'request' ? 'requests' : name;
	renderNav(nav);
	const main = document.getElementById('main');
	main.setAttribute('aria-busy', 'true');
	try {
		// Names for every screen, once per page load (a failure leaves "user 7").
		if (auth.token && !membersLoaded) membersLoaded = await loadMembers().then(() => true, () => false);
		const mod = await views[name]();
		const screen = await mod.render({ parts, params, name });
		const note = takeFlash();
		replace(main, note ? h('div', { class: 'status ok flash', role: 'status' }, note) : '', screen);
		const title = main.querySelector('h1');
		document.title = (title ? title.textContent + ' · ' : '') + 'remit';
		if (title) { title.tabIndex = -1; title.focus({ preventScroll: true }); }
	} catch (err) {
		replace(main, h('h1', null, 'Something went wrong'), h('p', { class: 'status error' }, errorText(err)));
	} finally {
		main.removeAttribute('aria-busy');
	}
}

// Signing in again over the current screen: what was typed stays where it was, and the
// interrupted intent resumes with its key once the same person is signed in.
let pendingReauth = null;
function reauthenticate() {
	if (pendingReauth) return pendingReauth;
	pendingReauth = new Promise(resolve => {
		const dlg = document.getElementById('reauth');
		const form = h('form', { id: 'reauth-form', method: 'dialog' },
			h('h2', { id: 'reauth-title' }, 'Your session has ended'),
			h('p', null, 'Sign in again to continue. Nothing you typed is lost.'),
			field('reauth-form', 'password', 'Password', { type: 'password', autocomplete: 'current-password', required: true }),
			h('p', { class: 'status', role: 'status', id: 'reauth-status' }),
			h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')));
		form.addEventListener('submit', async ev => {
			ev.preventDefault();
			const old = auth.user;
			try {
				const r = await call('POST', '/sessions', { noAuth: true, body: {
					orgId: auth.orgId, email: old.email, password: form.elements.password.value } });
				auth.set({ token: r.data.token, expiresAt: r.data.expiresAt, user: r.data.user, orgId: auth.orgId });
				dlg.close();
				pendingReauth = null;
				resolve();
			} catch (err) {
				replace(form.querySelector('#reauth-status'), errorText(err));
			}
		});
		replace(dlg, form);
		dlg.addEventListener('cancel', ev => ev.preventDefault());
		dlg.showModal();
		form.elements.password.focus();
	});
	return pendingReauth;
}

auth.onExpired(() => {
	// With no password session (an API token) there is nothing to sign in again to.
	if (!auth.user || !auth.user.email || auth.kind === 'token') {
		auth.set(null);
		go('signin');
		return new Promise(() => {});
	}
	return reauthenticate();
});

export async function refreshMe() {
	const r = await get('/me');
	auth.set({ ...JSON.parse(sessionStorage.getItem('remit.session')), user: r.data });
	return r.data;
}

window.addEventListener('hashchange', render);
// The skip link must not touch the fragment, which holds the route.
document.querySelector('.skip').addEventListener('click', ev => {
	ev.preventDefault();
	document.getElementById('main').focus();
});
document.addEventListener('remit:signedin', () => { membersLoaded = false; announce('Signed in'); });
// Roles may have changed since sign-in (or the session ended): ask once per page load.
if (auth.token) refreshMe().catch(() => {}).finally(render);
else render();
