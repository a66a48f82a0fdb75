import { expect, test, type Page } from '@playwright/test';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const alice = `alice-${unique}@example.com`;
const bob = `bob-${unique}@example.com`;
const password = 'correct horse battery staple';

// Forms also work without JavaScript; a step that needs the hydrated page
// (an answer shown in place) waits for it.
async function hydrated(page: Page) {
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(1);
}

async function signUp(page: Page, email: string, path = '/sign-up') {
  await page.goto(path);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

test('two people share an org through an invitation, and nothing else', async ({ browser }) => {
  // Alice signs up and lands in her personal org.
  const aliceContext = await browser.newContext();
  const a = await aliceContext.newPage();
  await signUp(a, alice);
  await expect(a.getByTestId('org-name')).toHaveText(/workspace/);
  const alicePersonal = new URL(a.url()).pathname;
  expect(alicePersonal).toMatch(/^\/o\//);
  await a.screenshot(shot('accounts-personal-org'));

  // She creates a team org and invites Bob.
  await a.goto('/orgs/new');
  await a.getByLabel('Organization name').fill(`Acme ${unique}`);
  await a.getByRole('button', { name: 'Create organization' }).click();
  await expect(a.getByRole('heading', { name: 'Members & settings' })).toBeVisible();
  await hydrated(a);
  await a.getByLabel('Email address').fill(bob);
  await a.getByRole('button', { name: 'Invite' }).click();
  const link = await a.getByTestId('invite-link').inputValue();
  expect(link).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/invite\//);
  await expect(a.getByTestId('invitations')).toContainText(bob);
  await a.screenshot(shot('accounts-invited'));

  // Bob follows the link, signs up with the invited address, accepts.
  const bobContext = await browser.newContext();
  const b = await bobContext.newPage();
  await b.goto(link);
  await expect(b.getByRole('heading', { name: /Join Acme/ })).toBeVisible();
  await b.getByRole('link', { name: 'Create an account' }).click();
  await expect(b.getByLabel('Email')).toHaveValue(bob);
  await b.getByLabel('Password').fill(password);
  await b.getByRole('button', { name: 'Create account' }).click();
  await expect(b.getByRole('button', { name: 'Accept invitation' })).toBeVisible();
  await b.screenshot(shot('accounts-accept'));
  await b.getByRole('button', { name: 'Accept invitation' }).click();
  await expect(b.getByTestId('org-name')).toHaveText(`Acme ${unique}`);

  // Both see the same members.
  await b.getByRole('link', { name: 'Members & settings' }).click();
  await expect(b.getByTestId('members')).toContainText(alice);
  await expect(b.getByTestId('members')).toContainText(bob);
  await a.reload();
  await expect(a.getByTestId('members')).toContainText(bob);
  await a.screenshot(shot('accounts-members'));

  // Bob's switcher lists both of his orgs.
  await b.getByTestId('org-switcher').locator('summary').click();
  await expect(b.getByTestId('org-switcher')).toContainText(`Acme ${unique}`);
  await b.screenshot(shot('accounts-switcher'));

  // Alice's personal org is not Bob's business: a 404, not a glimpse.
  const response = await b.goto(alicePersonal);
  expect(response?.status()).toBe(404);
  await expect(b.getByRole('heading', { name: 'Not found' })).toBeVisible();
  await b.screenshot(shot('accounts-cross-tenant-404'));

  await aliceContext.close();
  await bobContext.close();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('sign-up shows errors next to the fields and then works', async ({ page }) => {
    await page.goto('/sign-up');
    await page.getByLabel('Email').fill(`carol-${unique}@example.com`);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.locator('#field-password-error')).toContainText('at least 10 characters');
    await page.screenshot(shot('accounts-no-js-error'));

    await page.getByLabel('Email').fill(`carol-${unique}@example.com`);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByTestId('org-name')).toHaveText(/workspace/);

    await page.goto('/account');
    await page.locator('#main').getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.goto('/account');
    await expect(page).toHaveURL(/\/sign-in\?next=/);
  });
});
