// Administration: users (create, roles, deactivation, invitations), approval rules and API
// tokens. API: GET /users, POST /users, PATCH /users/{id}, POST /users/{id}/invitations,
// POST /users/{id}/tokens, GET /approval-rules, PUT /approval-rules, GET /me/tokens,
// POST /me/tokens, DELETE /tokens/{id}, GET/POST /webhook-endpoints, DELETE
// /webhook-endpoints/{id}, GET /webhook-endpoints/{id}/deliveries.
import { auth, get, all } from '../api.js';
import { h, replace, act, field, statusBox, when, CURRENCIES, flash, rerender, doneText, badge } from '../ui.js';

const ROLES = ['ADMIN', 'CREATOR', 'APPROVER', 'TREASURER', 'VIEWER'];

export async function render() {
	const [users, rules, tokens, accounts, hooks] = await Promise.all([
		all('/users'), get('/approval-rules').then(r => r.data.rules), get('/me/tokens').then(r => r.data).catch(() => []),
		get('/debtor-accounts').then(r => r.data.accounts).catch(() => []),
		all('/webhook-endpoints').catch(() => null),
	]);
	return h('div', null,
		h('h1', null, 'Administration'),
		h('p', null, 'Organisation ID: ', h('strong', { class: 'mono', id: 'org-id' }, auth.user.orgId)),
		h('h2', null, 'People'), userTable(users), newUserForm(),
		h('h2', null, 'Approval rules'), rulesForm(rules),
		h('h2', null, 'Debtor accounts'), debtorAccounts(accounts),
		h('h2', null, 'My API tokens'), tokenList(tokens),
		hooks ? [h('h2', null, 'Webhook endpoints'), hookList(hooks), newHookForm()] : '');
}

// The accounts payment files are paid from, one per currency (PUT replaces the whole set:
// a save sends the others unchanged with this one added or replaced, a removal without it).
function debtorAccounts(accounts) {
	const status = statusBox();
	const put = (list, control, label) => act({ method: 'PUT', path: '/debtor-accounts', body: { accounts: list }, key: false,
		retrySafe: true, control, status, form, label, done: r => { flash(doneText(label, r)); rerender(); } });
	const plain = a => ({ currency: a.currency, name: a.name, iban: a.iban, bic: a.bic });
	const table = accounts.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'debtor-accounts' },
		h('caption', { class: 'visually-hidden' }, 'Debtor accounts'),
		h('thead', null, h('tr', null, h('th', null, 'Currency'), h('th', null, 'Name'), h('th', null, 'IBAN'), h('th', null, 'BIC'), h('th', null, ''))),
		h('tbody', null, accounts.map(a => {
			const rm = h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove the ${a.currency} account`,
				onclick: () => put(accounts.filter(x => x !== a).map(plain), rm, `${a.currency} account removed`) }, 'Remove');
			return h('tr', { 'data-currency': a.currency }, h('td', null, a.currency), h('td', null, a.name),
				h('td', { class: 'mono' }, a.iban), h('td', { class: 'mono' }, a.bic || '—'), h('td', null, rm));
		})))) : h('p', { class: 'muted' }, 'No debtor account: payment files need one per currency.');
	const form = h('form', { id: 'debtor', novalidate: true },
		field('debtor', 'currency', 'Currency', { tag: 'select', options: CURRENCIES.map(c => h('option', { value: c, selected: c === 'EUR' }, c)) }),
		field('debtor', 'name', 'Account holder name', { maxlength: 70, autocomplete: 'off' }),
		field('debtor', 'iban', 'IBAN', { autocomplete: 'off' }),
		field('debtor', 'bic', 'BIC (optional)', { autocomplete: 'off' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'save-debtor' }, 'Save account')), status);
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const e = form.elements;
		const mine = { currency: e.currency.value, name: e.name.value.trim(), iban: e.iban.value.trim(), bic: e.bic.value.trim() || null };
		put([...accounts.filter(a => a.currency !== mine.currency).map(plain), mine], form.querySelector('#save-debtor'),
			`${mine.currency} debtor account saved`);
	});
	return h('div', null, table, form);
}

function roleBoxes(prefix, have) {
	return h('fieldset', { class: 'roles' }, h('legend', null, 'Roles'), ROLES.map(r => h('label', null,
		h('input', { type: 'checkbox', name: 'roles', value: r, checked: have.includes(r), id: `${prefix}-${r}` }), ' ', r, ' ')));
}
const checkedRoles = form => [...form.querySelectorAll('input[name=roles]:checked')].map(i => i.value);

function userTable(users) {
	return h('div', { class: 'table-wrap' }, h('table', { id: 'users' },
		h('caption', { class: 'visually-hidden' }, 'People of this organisation'),
		h('thead', null, h('tr', null, h('th', null, 'Person'), h('th', null, 'Roles'), h('th', null, 'Access'))),
		h('tbody', null, users.map(userRow))));
}

function userRow(u) {
	const id = `user-${u.id}`;
	const status = statusBox();
	const secret = h('div', { class: 'secret-slot' });
	const form = h('form', { id, novalidate: true }, roleBoxes(id, u.roles),
		h('span', { id: `${id}-roles-error`, class: 'field-error' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Save roles')));
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		act({ method: 'PATCH', path: `/users/${u.id}`, body: { roles: checkedRoles(form) }, key: false, retrySafe: true,
			control: form.querySelector('button'), status, form, label: `Roles of ${u.email} saved` });
	});
	const toggle = h('button', { type: 'button', class: u.active === false ? 'secondary' : 'danger',
		onclick: () => act({ method: 'PATCH', path: `/users/${u.id}`, body: { active: u.active === false }, key: false,
			retrySafe: true, control: toggle, status, label: u.active === false ? 'Reactivated' : 'Deactivated',
			done: r => { flash(doneText(`${u.email}: ${u.active === false ? 'reactivated' : 'deactivated'}`, r)); rerender(); } }) },
		u.active === false ? 'Reactivate' : 'Deactivate');
	const invite = h('button', { type: 'button', class: 'secondary', 'aria-label': `Invite ${u.email}`,
		onclick: () => act({ method: 'POST', path: `/users/${u.id}/invitations`, body: {}, key: false, control: invite, status,
			label: 'Invitation created',
			done: r => {
				const link = `${location.origin}/#/accept?token=${encodeURIComponent(r.data.token)}&org=${encodeURIComponent(auth.user.orgId)}`;
				replace(secret, inviteMail(u, r.data.mail), h('p', { class: 'secret' }, h('span', { class: 'mono invite-link' }, link), h('br'), 'Valid until ', when(r.data.expiresAt)));
			} }) }, 'Invite / reset password');
	const token = h('button', { type: 'button', class: 'secondary', 'aria-label': `New API token for ${u.email}`,
		onclick: () => act({ method: 'POST', path: `/users/${u.id}/tokens`, body: {}, key: false, control: token, status,
			label: 'API token created (shown once)',
			done: r => replace(secret, h('p', { class: 'secret mono' }, r.data.token)) }) }, 'New API token');
	return h('tr', { 'data-email': u.email },
		h('td', null, h('strong', null, u.name), h('div', { class: 'mono' }, u.email), h('div', { class: 'muted' }, `id ${u.id} · `, h('a', { href: `#/audit?objectId=${u.id}` }, 'history')),
			u.active === false ? h('span', { class: 'badge CANCELLED' }, 'inactive') : ''),
		h('td', null, form),
		h('td', null, h('div', { class: 'actions' }, invite, token, toggle), status, secret));
}

// What the invitation's answer says of its e-mail (`mail`): "queued" when remit mails the
// link itself (smtp_url configured), else the ADMIN passes it on (an older server says nothing).
function inviteMail(u, mail) {
	return mail === 'queued'
		? h('p', { class: 'invite-mail', 'data-mail': 'queued' }, `An e-mail with this link is being sent to ${u.email}. `,
			'If it does not arrive, send them the link yourself (shown once):')
		: h('p', { class: 'invite-mail', 'data-mail': 'off' }, 'No e-mail is sent (e-mail is not set up): ',
			`copy this link and send it to ${u.email} (shown once):`);
}

function newUserForm() {
	const status = statusBox();
	const form = h('form', { id: 'newuser', class: 'card', novalidate: true },
		h('h3', null, 'Add a person'),
		h('div', { class: 'row' },
			field('newuser', 'email', 'Email', { type: 'email', required: true, autocomplete: 'off' }),
			field('newuser', 'name', 'Name', { required: true, autocomplete: 'off' })),
		roleBoxes('newuser', []), h('span', { id: 'newuser-roles-error', class: 'field-error' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'add-user' }, 'Add person')),
		status);
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const f = form.elements;
		act({ method: 'POST', path: '/users', form, status, control: form.querySelector('#add-user'),
			body: { email: f.email.value.trim(), name: f.name.value.trim(), roles: checkedRoles(form) },
			label: 'Person added: invite them from the list',
			done: r => { flash(doneText(`${r.data.email} added: use “Invite” to let them set a password`, r)); rerender(); } });
	});
	return form;
}

function rulesForm(rules) {
	const status = statusBox();
	const body = h('tbody');
	let n = 0;
	const addRow = rule => {
		const i = n++;
		const tr = h('tr', null,
			h('td', null, h('label', { class: 'visually-hidden', for: `rule-${i}-currency` }, 'Currency'),
				h('select', { id: `rule-${i}-currency`, name: 'currency' }, CURRENCIES.map(c => h('option', { selected: c === rule.currency }, c)))),
			h('td', null, h('label', { class: 'visually-hidden', for: `rule-${i}-min` }, 'From amount'),
				h('input', { id: `rule-${i}-min`, name: 'minAmount', value: rule.minAmount, inputmode: 'decimal', size: 12 })),
			h('td', null, h('label', { class: 'visually-hidden', for: `rule-${i}-approvals` }, 'Approvals'),
				h('input', { id: `rule-${i}-approvals`, name: 'approvals', type: 'number', min: 1, max: 10, value: rule.approvals })),
			h('td', null, h('button', { type: 'button', class: 'secondary', onclick: () => tr.remove() }, 'Remove')));
		body.append(tr);
	};
	rules.forEach(addRow);
	const form = h('form', { id: 'rules', class: 'card', novalidate: true },
		h('p', null, 'A request needs the most approvals of the rules it matches (same currency, amount at least the minimum), else 1.'),
		h('div', { class: 'table-wrap' }, h('table', null,
			h('thead', null, h('tr', null, h('th', null, 'Currency'), h('th', null, 'From amount'), h('th', null, 'Approvals'), h('th', null, h('span', { class: 'visually-hidden' }, 'Remove')))),
			body)),
		h('div', { class: 'actions' },
			h('button', { type: 'button', class: 'secondary', onclick: () => addRow({ currency: 'EUR', minAmount: '0', approvals: 2 }) }, 'Add rule'),
			h('button', { type: 'submit', id: 'save-rules' }, 'Save rules')),
		status);
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const rows = [...body.querySelectorAll('tr')].map(tr => ({
			currency: tr.querySelector('[name=currency]').value,
			minAmount: tr.querySelector('[name=minAmount]').value.trim(),
			approvals: Number.parseInt(tr.querySelector('[name=approvals]').value, 10),
		}));
		act({ method: 'PUT', path: '/approval-rules', body: { rules: rows }, key: false, retrySafe: true,
			control: form.querySelector('#save-rules'), status, form, label: 'Approval rules saved' });
	});
	return form;
}

function tokenList(tokens) {
	if (!tokens.length) return h('p', { class: 'muted' }, 'You have no API tokens.');
	return h('ul', null, tokens.map(t => {
		const status = statusBox();
		const btn = h('button', { type: 'button', class: 'link', onclick: () => act({ method: 'DELETE', path: `/tokens/${t.id}`,
			key: false, retrySafe: true, control: btn, status, label: 'Token revoked', done: () => { flash('Token revoked'); rerender(); } }) }, 'Revoke');
		return h('li', null, `${t.name || 'token'} (created `, when(t.createdAt), ') ', btn, status);
	}));
}

// Webhook endpoints (API §12): the secret is shown once, when the endpoint is made.
function hookList(hooks) {
	if (!hooks.length) return h('p', { class: 'muted', id: 'hooks' }, 'No webhook endpoints.');
	return h('ul', { id: 'hooks' }, hooks.map(w => {
		const status = statusBox();
		const log = h('div', { class: 'deliveries' });
		const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete the endpoint ${w.url}`,
			onclick: () => act({ method: 'DELETE', path: `/webhook-endpoints/${w.id}`, key: false, retrySafe: true,
				control: del, status, label: 'Endpoint deleted', done: () => { flash('Webhook endpoint deleted'); rerender(); } }) }, 'Delete');
		const show = h('button', { type: 'button', class: 'secondary', 'aria-label': `Recent deliveries to ${w.url}`,
			onclick: async () => replace(log, deliveryTable((await get(`/webhook-endpoints/${w.id}/deliveries?limit=20`)).data)) },
			'Recent deliveries');
		return h('li', { 'data-url': w.url },
			h('span', { class: 'mono' }, w.url), ' ', w.active ? '' : badge('CANCELLED', 'inactive'),
			h('div', { class: 'muted' }, `${w.events.join(', ')}${w.description ? ' · ' + w.description : ''} · created `, when(w.createdAt)),
			h('div', { class: 'actions' }, show, del), status, log);
	}));
}

function deliveryTable(rows) {
	if (!rows.length) return h('p', { class: 'muted' }, 'Nothing delivered yet.');
	return h('div', { class: 'table-wrap' }, h('table', null,
		h('thead', null, h('tr', null, ['Event', 'Attempt', 'Status', 'Error', 'At', 'ms'].map(t => h('th', null, t)))),
		h('tbody', null, rows.map(d => h('tr', null, h('td', { class: 'mono' }, d.eventId), h('td', null, String(d.attempt)),
			h('td', null, d.status === null ? '—' : String(d.status)), h('td', null, d.error || ''), h('td', null, when(d.at)),
			h('td', null, String(d.durationMs)))))));
}

function newHookForm() {
	const status = statusBox();
	const secret = h('div', { class: 'secret-slot' });
	const form = h('form', { id: 'newhook', class: 'card', novalidate: true },
		h('h3', null, 'Add a webhook endpoint'),
		field('newhook', 'url', 'URL (https://)', { type: 'url', required: true, autocomplete: 'off' }),
		field('newhook', 'events', 'Events (audit actions, comma-separated; * for all)', { required: true, value: '*', autocomplete: 'off' }),
		field('newhook', 'description', 'Description', { autocomplete: 'off' }),
		h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'add-hook' }, 'Add endpoint')),
		status, secret);
	form.addEventListener('submit', ev => {
		ev.preventDefault();
		const f = form.elements;
		act({ method: 'POST', path: '/webhook-endpoints', form, status, control: form.querySelector('#add-hook'), key: false,
			body: { url: f.url.value.trim(), events: f.events.value.split(',').map(e => e.trim()).filter(Boolean),
				description: f.description.value.trim() },
			label: 'Endpoint added: copy its signing secret now (shown once)',
			done: r => replace(secret, h('p', { class: 'secret' }, 'Signing secret: ', h('span', { class: 'mono hook-secret' }, r.data.secret),
				h('br'), h('button', { type: 'button', class: 'link', onclick: rerender }, 'Done: show the list'))) });
	});
	return form;
}
