// Helpers for the browser tests: Debian's chromium through playwright-core (nothing is
// downloaded), the API from Node for setting up and for checking effects, organisations
// from `remit bootstrap`, and signing in through the UI.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const URL = process.env.REMIT_URL;
const BIN = process.env.REMIT_BIN;
const CONF = process.env.REMIT_CONFIG;
export const SHOTS = process.env.REMIT_SCREENSHOTS;
if (!URL || !BIN || !CONF) throw new Error('set REMIT_URL, REMIT_BIN and REMIT_CONFIG');
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

// One browser per run. playwright-core gives it a fresh user-data-dir of its own (a new
// temporary profile, removed when the browser closes; it refuses --user-data-dir here).
export async function launch() {
	return chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run'],
	});
}

// ---- the API, from Node ---------------------------------------------------------------

export async function api(token, method, path, body, { key, ifMatch } = {}) {
	const headers = {};
	if (token) headers.Authorization = `Bearer ${token}`;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (method === 'POST') headers['Idempotency-Key'] = key || 'e2e-' + randomUUID();
	if (ifMatch) headers['If-Match'] = `"${ifMatch}"`;
	const res = await fetch(URL + '/api/v1' + path, { method, headers,
		body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

export async function ok(token, method, path, body, expect) {
	const r = await api(token, method, path, body);
	if (expect ? r.status !== expect : r.status >= 300)
		throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
	return r.json && r.json.data;
}

// Every item of a list (all pages).
export async function list(token, path) {
	const out = [];
	let cursor = null;
	do {
		const sep = path.includes('?') ? '&' : '?';
		const r = await api(token, 'GET', `${path}${sep}limit=200${cursor ? '&cursor=' + cursor : ''}`);
		if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
		out.push(...r.json.data);
		cursor = r.json.nextCursor;
	} while (cursor);
	return out;
}

let seq = 0;
export const tag = () => `${process.pid}-${++seq}-${randomUUID().slice(0, 6)}`;

// A new organisation: {orgId, userId, token, invitation?, email}.
export function newOrg(name = 'Org ' + tag()) {
	const email = `admin-${tag()}@example.test`;
	const out = execFileSync(BIN, ['--config', CONF, 'bootstrap', '--org', name, '--email', email, '--name', 'Ada Admin'],
		{ encoding: 'utf8' });
	return { ...JSON.parse(out.trim().split('\n').pop()), email };
}

// A user with roles and an API token (set up through the API, for tests about other things).
export async function newUser(admin, roles, name) {
	const email = `${(name || 'user').toLowerCase().replace(/\W+/g, '-')}-${tag()}@example.test`;
	const u = await ok(admin.token, 'POST', '/users', { email, name: name || email, roles });
	const t = await ok(admin.token, 'POST', `/users/${u.id}/tokens`, {});
	return { ...u, token: t.token, orgId: admin.orgId };
}

// ---- the UI ---------------------------------------------------------------------------

export async function newPage(browser, opts = {}) {
	const context = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 900 } });
	const page = await context.newPage();
	page.errors = [];
	page.on('pageerror', e => page.errors.push(String(e)));
	page.on('console', m => { if (m.type() === 'error') page.errors.push(m.text()); });
	return page;
}

// Signs in through the UI: with a password when the user has one, else with their API token.
export async function signIn(page, user) {
	await page.goto(URL + '/#/signin');
	if (user.password) {
		await page.fill('#signin-orgId', String(user.orgId));
		await page.fill('#signin-email', user.email);
		await page.fill('#signin-password', user.password);
		await page.click('#signin button[type=submit]');
	} else {
		await page.click('summary');
		await page.fill('#tokensignin-token', user.token);
		await page.click('#tokensignin button[type=submit]');
	}
	await page.waitForSelector('#signout');
}

export async function shot(page, name) {
	if (SHOTS) await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}

// Waits for the route's screen to be drawn (its h1 present, nothing loading).
// A fresh load each time (the query only defeats nothing but the same-document shortcut).
let loads = 0;
export async function screen(page, hash) {
	if (hash !== undefined) await page.goto(`${URL}/?load=${++loads}${hash}`);
	await page.waitForSelector('main:not([aria-busy]) h1');
}
