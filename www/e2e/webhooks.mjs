// Browser scenarios of the webhook endpoints on the admin screen (API §12, issue 28).
// run.mjs merges them into its scenarios: webhooks({ page, check, eq, team, screen, list, api }).
export default ({ page, check, eq, team, screen, list, api }) => ({
	'webhook endpoints: add one, its secret shown once, deliveries, delete': async () => {
		const t = await team({});
		const p = await page(t.admin);
		await screen(p, '#/admin');
		const url = `https://hooks.example.test/remit/${Date.now()}`;
		await p.fill('#newhook-url', url);
		await p.fill('#newhook-events', 'batch.submitted, request.paid');
		await p.fill('#newhook-description', 'ERP');
		await p.click('#add-hook');
		const secret = (await p.locator('.hook-secret').textContent({ timeout: 10000 })).trim();
		check(/^whsec_[A-Za-z0-9+/]{43}=$/.test(secret), 'the secret is shown', secret);
		const hooks = await list(t.admin.token, '/webhook-endpoints');
		eq(hooks.map(w => [w.url, w.events, w.description]), [[url, ['batch.submitted', 'request.paid'], 'ERP']],
			'the endpoint as typed, through the API');
		check(hooks.every(w => !('secret' in w)), 'the API lists no secret');
		await p.click('text=Done: show the list');
		const row = p.locator(`#hooks li[data-url="${url}"]`);
		await row.waitFor();
		check(!(await p.content()).includes(secret), 'the secret is gone from the screen once the list is shown');
		await row.locator('button:has-text("Recent deliveries")').click();
		await row.locator('.deliveries').getByText('Nothing delivered yet.').waitFor();
		check(true, 'recent deliveries: none yet');
		await p.fill('#newhook-url', 'ftp://nope.example.test/');
		await p.click('#add-hook');
		await p.locator('#newhook-url-error').getByText(/https/).waitFor();
		check(true, 'a bad URL: the API\'s detail beside the field');
		eq((await list(t.admin.token, '/webhook-endpoints')).length, 1, 'nothing stored');
		await row.locator('button:has-text("Delete")').click();
		await p.locator('#hooks').getByText('No webhook endpoints.').waitFor();
		eq((await api(t.admin.token, 'GET', `/webhook-endpoints/${hooks[0].id}`)).status, 404, 'deleted through the API');
	},
});
