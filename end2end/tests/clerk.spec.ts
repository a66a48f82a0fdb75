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
