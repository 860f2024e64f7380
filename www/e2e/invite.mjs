// Browser scenarios of the invitation dialog on the admin screen (issue 28): it says whether
// remit mails the link to the person (POST /users/{id}/invitations answers `mail: "queued"`,
// smtp_url configured) or the ADMIN must pass it on (`mail: "off"`).
// run.mjs merges them into its scenarios: invite({ page, check, eq, team, screen, list, api }).
export default ({ page, check, team, screen, api }) => {
	// Invites `who` from the admin screen: the dialog's words about the mail, its data-mail and
	// the link shown, and what the API answered; the link's token is accepted through the API, so the dialog showed a real one.
	async function invite(p, who) {
		await screen(p, '#/admin');
		const row = p.locator(`tr[data-email="${who.email}"]`);
		const [answer] = await Promise.all([
			p.waitForResponse(r => r.url().endsWith(`/users/${who.id}/invitations`) && r.request().method() === 'POST'),
			row.locator('button:has-text("Invite")').click(),
		]);
		const note = row.locator('.invite-mail');
		await note.waitFor();
		const link = await row.locator('.invite-link').textContent();
		const token = new URL(link.replace('/#/', '/')).searchParams.get('token');
		const accepted = await api(null, 'POST', '/invitations/accept', { token, password: 'a long password 42' });
		return { text: await note.textContent(), mail: await note.getAttribute('data-mail'), status: accepted.status,
			answered: (await answer.json()).data.mail };
	}

	return {
		'invitation dialog: no smtp_url, the ADMIN is told to copy the link': async () => {
			const t = await team({});
			const p = await page(t.admin);
			// This stack has no smtp_url: the API's own answer, nothing rewritten.
			const d = await invite(p, t.a1);
			check(d.answered === 'off', 'the API answered mail "off"', d.answered);
			check(d.mail === 'off' && d.text.includes(`copy this link and send it to ${t.a1.email}`),
				'the dialog says: copy this link', d.text);
			check(!/being sent|e-mail with this link/i.test(d.text), 'and does not claim a mail was sent', d.text);
			check(d.status === 200, 'the link shown is a live invitation (accepted through the API)', d.status);
		},
		'invitation dialog: smtp_url configured, the ADMIN is told the mail is on its way': async () => {
			const t = await team({});
			const p = await page(t.admin);
			// The browser stack runs without smtp_url (no SMTP server beside it): the real answer,
			// with only `mail` rewritten to what a pool with smtp_url answers (t/88-mail.t checks
			// that the API says "queued" there and that the mail goes out).
			await p.route('**/api/v1/users/*/invitations', async route => {
				const res = await route.fetch();
				const json = await res.json();
				json.data.mail = 'queued';
				await route.fulfill({ response: res, json });
			});
			const d = await invite(p, t.a2);
			check(d.mail === 'queued' && d.text.includes(`An e-mail with this link is being sent to ${t.a2.email}`),
				'the dialog says the mail is being sent', d.text);
			check(!d.text.includes('copy this link'), 'and does not ask to copy the link', d.text);
			check(d.status === 200, 'the link shown is a live invitation (accepted through the API)', d.status);
		},
	};
};
