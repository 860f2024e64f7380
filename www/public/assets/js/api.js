// The API client: bearer session, JSON envelope, and exactly-once mutations.
//
// Every user intent (a form submit, a button press) gets one Idempotency-Key when it starts
// (newIntent) and keeps it for each retry of that intent, so however often the browser
// resends, the server applies it once. Retried: network errors (the response may have been
// lost after the server committed), 5xx, and 409 IDEMPOTENCY_KEY_IN_PROGRESS, honouring
// Retry-After. A 401 asks the user to sign in again (a dialog over the page, so nothing
// typed is lost) and then resumes the same intent with the same key.

const API = '/api/v1';
const MAX_ATTEMPTS = 8;

let session = JSON.parse(sessionStorage.getItem('remit.session') || 'null');
let reauth = null;            // set by the app: () => Promise that resolves once signed in

export const auth = {
	get token() { return session && session.token; },
	get user() { return session && session.user; },
	get orgId() { return session && session.orgId; },
	get kind() { return session && session.kind; },
	set(s) {
		session = s;
		if (s) sessionStorage.setItem('remit.session', JSON.stringify(s));
		else sessionStorage.removeItem('remit.session');
	},
	has(role) { return !!(session && session.user && session.user.roles.includes(role)); },
	onExpired(fn) { reauth = fn; },
};

export class ApiError extends Error {
	constructor(status, body, headers) {
		const e = (body && body.error) || {};
		super(e.message || `HTTP ${status}`);
		this.status = status;
		this.code = e.code || 'HTTP_' + status;
		this.details = e.details || {};
		this.headers = headers;
	}
}

export function newIntent() {
	return { key: 'ui-' + crypto.randomUUID(), attempts: 0 };
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function retryDelay(res, attempt) {
	const ra = res && Number(res.headers.get('Retry-After'));
	if (ra > 0) return Math.min(ra, 10) * 1000;
	return Math.min(250 * 2 ** attempt, 4000);
}

// `raw` ({type, data}) sends a body that is not JSON (a CSV file's exact bytes) as it is.
async function once(method, path, { body, raw, key, ifMatch, noAuth } = {}) {
	const headers = {};
	if (!noAuth && auth.token) headers.Authorization = 'Bearer ' + auth.token;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (raw) headers['Content-Type'] = raw.type;
	if (key) headers['Idempotency-Key'] = key;
	if (ifMatch !== undefined && ifMatch !== null) headers['If-Match'] = `"${ifMatch}"`;
	const res = await fetch(API + path, {
		method, headers, body: raw ? raw.data : body === undefined ? undefined : JSON.stringify(body),
		credentials: 'omit', cache: 'no-store',
	});
	const text = await res.text();
	let json = null;
	try { json = text ? JSON.parse(text) : null; } catch { json = null; }
	return { res, json };
}

function retryable(res, json) {
	if (res.status >= 500) return true;
	return res.status === 409 && json && json.error && json.error.code === 'IDEMPOTENCY_KEY_IN_PROGRESS';
}

// Sends one request, retrying what may be retried; `onRetry(attempt, why)` shows the
// "retrying" state. Resolves to {data, json, status, etag, replayed}; rejects with ApiError.
export async function call(method, path, opts = {}) {
	const { onRetry } = opts;
	const intent = opts.intent;
	let retried = false;
	for (let attempt = 0; ; attempt++) {
		let res = null, json = null, why;
		try {
			({ res, json } = await once(method, path, { ...opts, key: intent && intent.key }));
		} catch (err) {
			why = 'network error';
		}
		if (res && res.status === 401 && !opts.noAuth && reauth) {
			await reauth();            // the same intent, and key, continue once signed in
			attempt--;
			continue;
		}
		if (res && !retryable(res, json)) {
			if (!res.ok) {
				const err = new ApiError(res.status, json, res.headers);
				err.retried = retried;
				throw err;
			}
			return {
				retried,
				status: res.status, json, data: json && json.data,
				etag: res.headers.get('ETag'),
				replayed: res.headers.get('Idempotent-Replayed') === 'true',
			};
		}
		// Sent again only when that cannot apply it twice: a read, a POST under its key, or
		// what the caller marks safe (a PATCH or DELETE under If-Match, whose lost success
		// comes back as 412 or 404 and is checked by the caller: err.retried).
		const safe = method === 'GET' || intent || opts.retrySafe;
		if (!safe || attempt + 1 >= MAX_ATTEMPTS) {
			const err = res ? new ApiError(res.status, json, res.headers)
				: new ApiError(0, { error: { code: 'NETWORK', message: 'the server cannot be reached; try again' } });
			throw err;
		}
		retried = true;
		why = why || (res.status === 409 ? 'the server is still working on it' : `server error ${res.status}`);
		if (onRetry) onRetry(attempt + 1, why);
		await sleep(retryDelay(res, attempt));
	}
}

export const get = (path, opts) => call('GET', path, opts);

// Every page of a list (up to `max` items).
export async function all(path, max = 1000) {
	const out = [];
	let cursor = null;
	do {
		const sep = path.includes('?') ? '&' : '?';
		const r = await get(path + sep + 'limit=200' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
		out.push(...r.data);
		cursor = r.json.nextCursor;
	} while (cursor && out.length < max);
	return out;
}

// A CSV export as a Blob (API §10: Accept: text/csv, every matching row, no paging).
export async function download(path) {
	for (;;) {
		const res = await fetch(API + path, { headers: { Authorization: 'Bearer ' + auth.token, Accept: 'text/csv' },
			credentials: 'omit', cache: 'no-store' }).catch(() => null);
		if (!res) throw new ApiError(0, { error: { code: 'NETWORK', message: 'the server cannot be reached; try again' } });
		if (res.status === 401 && reauth) { await reauth(); continue; }
		if (!res.ok) {
			let json = null;
			try { json = await res.json(); } catch { json = null; }
			throw new ApiError(res.status, json, res.headers);
		}
		return res.blob();
	}
}
