// Navigation on the URL's fragment (#/batches?status=DRAFT: filters live in the URL, and nginx
// serves only `/`). A module of its own so that the views, which main.js loads, never import
// main.js back: imports only go one way (script/check-layers).

export function parseRoute() {
	const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
	const parts = path.split('/').filter(Boolean);
	return { parts, params: new URLSearchParams(query) };
}

export function go(path, params) {
	const q = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString() : '';
	location.hash = '#/' + path.replace(/^\//, '') + (q ? '?' + q : '');
}

// Replaces the query of the current route (filters) without a new history entry per keypress.
export function setParams(params) {
	const { parts } = parseRoute();
	const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
	history.replaceState(null, '', '#/' + parts.join('/') + (q ? '?' + q : ''));
}
