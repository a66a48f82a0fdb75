import { expect, test } from '@playwright/test';
import { clerkAppURL, fakeClerkURL } from '../playwright.config';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });

test.use({ baseURL: clerkAppURL });

test('with Clerk configured, a Clerk session lands in its Clerk org', async ({ page, request, context }) => {
  // Signed out: the app asks for sign-in.
  await page.goto('/app');
  await expect(page).toHaveURL(/\/sign-in\?next=/);

  const suffix = Date.now().toString(36);
  const token = await (
    await request.get(`${fakeClerkURL}/token?sub=user_e2e_${suffix}&org=org_e2e_${suffix}&slug=clerk-team-${suffix}&role=admin`)
  ).text();
  await context.addCookies([{ name: '__session', value: token, url: clerkAppURL }]);

  await page.goto('/app');
  await expect(page.getByTestId('org-name')).toHaveText(`clerk-team-${suffix}`);
  await expect(page.getByText("You're an admin")).toBeVisible();
  await page.getByRole('link', { name: 'Members & settings' }).click();
  await expect(page.getByTestId('members')).toContainText('Admin');
  await page.screenshot(shot('clerk-org'));

  // A token for another site (wrong azp) is no session at all.
  await context.clearCookies();
  const foreign = await (await request.get(`${fakeClerkURL}/token?sub=user_e2e_${suffix}`)).text();
  const [header, payload, signature] = foreign.split('.');
  const tampered = JSON.parse(Buffer.from(payload, 'base64url').toString());
  tampered.azp = 'https://evil.example';
  await context.addCookies([
    { name: '__session', value: `${header}.${Buffer.from(JSON.stringify(tampered)).toString('base64url')}.${signature}`, url: clerkAppURL },
  ]);
  await page.goto('/app');
  await expect(page).toHaveURL(/\/sign-in\?next=/);
});

test('Clerk decides: the email comes from Clerk, and a removal in Clerk closes the org at once', async ({ page, request, context }) => {
  const suffix = `${Date.now().toString(36)}r`;
  const sub = `user_e2e_${suffix}`;
  const org = `org_e2e_${suffix}`;
  const slug = `clerk-crew-${suffix}`;
  const token = await (
    await request.get(`${fakeClerkURL}/token?sub=${sub}&org=${org}&slug=${slug}&role=admin&email=crew-${suffix}@example.com`)
  ).text();
  await context.addCookies([{ name: '__session', value: token, url: clerkAppURL }]);

  // The session token carries no email: the server read it from Clerk's Backend API.
  await page.goto('/account');
  await expect(page.getByRole('strong').getByText(`crew-${suffix}@example.com`)).toBeVisible();
  await page.goto(`/o/${slug}`);
  await expect(page.getByTestId('org-name')).toHaveText(slug);

  // An admin removes the member in Clerk; Clerk's webhook arrives.
  const sent = await (
    await request.get(`${fakeClerkURL}/send-webhook?type=organizationMembership.deleted&user=${sub}&org=${org}`)
  ).json();
  expect(sent.status).toBe(200);
  expect(JSON.parse(sent.body).outcome).toBe('applied');

  // The same (still unexpired) token no longer opens the org.
  const response = await page.goto(`/o/${slug}`);
  expect(response?.status()).toBe(404);
  await expect(page.getByTestId('org-name')).toHaveCount(0);
  await page.screenshot(shot('clerk-removed'));
  await page.goto('/app');
  await expect(page.getByTestId('org-name')).not.toHaveText(slug);
});
