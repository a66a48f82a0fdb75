import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { mailboxFile } from '../playwright.config';

// Account lifecycle journeys (issue 12). Links arrive by mail through the
// local SMTP stand-in (fake-smtp.mjs); the spec reads its mailbox.
const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const password = 'correct horse battery staple';
const newPassword = 'purple elephant umbrella';

async function hydrated(page: Page) {
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(1);
}

async function signUp(page: Page, email: string) {
  await page.goto('/sign-up');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('org-name')).toHaveText(/workspace/);
}

/** The newest link to `path` mailed to `to` (waits for it to arrive). */
async function linkFor(to: string, path: string): Promise<string> {
  let found: string | undefined;
  await expect
    .poll(
      () => {
        const lines = readFileSync(mailboxFile, 'utf8').split('\n').filter(Boolean);
        const bodies = lines
          .map((line) => JSON.parse(line) as { to: string; body: string })
          .filter((m) => m.to === to)
          .map((m) => m.body.match(new RegExp(`https?://\\S+${path}\\?token=[A-Za-z0-9_-]+`))?.[0])
          .filter(Boolean);
        found = bodies.at(-1);
        return found;
      },
      { message: `a ${path} link mailed to ${to}`, timeout: 10_000 },
    )
    .toBeTruthy();
  return found!;
}

test('a new account verifies its email with the mailed link', async ({ page }) => {
  const email = `verify-${unique}@example.com`;
  await signUp(page, email);
  await page.goto('/account');
  await expect(page.getByTestId('email-status')).toHaveText('Not verified');
  await expect(page.getByRole('button', { name: 'Send the link again' })).toBeVisible();
  await page.screenshot(shot('lifecycle-unverified'));

  const link = await linkFor(email, '/verify-email');
  await page.goto(link);
  await hydrated(page);
  await page.getByRole('button', { name: 'Confirm my email' }).click();
  await expect(page.getByTestId('email-verified')).toContainText('Your email is confirmed');
  await page.screenshot(shot('lifecycle-verified'));

  // The link works once.
  await page.goto(link);
  await hydrated(page);
  await page.getByRole('button', { name: 'Confirm my email' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'already been used' })).toBeVisible();

  await page.goto('/account');
  await expect(page.getByTestId('email-status')).toHaveText('Verified');
});

test('forgot password: link, new password, signed in, old sessions ended', async ({ browser }) => {
  const email = `forgot-${unique}@example.com`;
  const oldContext = await browser.newContext();
  const old = await oldContext.newPage();
  await signUp(old, email);

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto('/sign-in');
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await expect(page.getByRole('heading', { name: 'Forgot your password?' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Email me a reset link' }).click();
  await expect(page.getByTestId('reset-sent')).toContainText('Check your inbox');
  await page.screenshot(shot('lifecycle-reset-sent'));

  const link = await linkFor(email, '/reset-password');
  await page.goto(link);
  await hydrated(page);
  // The sign-up rule applies, in words next to the field.
  await page.getByLabel('New password').fill('short');
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(page.getByText('Use at least 10 characters')).toBeVisible();
  await page.getByLabel('New password').fill(newPassword);
  await page.screenshot(shot('lifecycle-reset-form'));
  await page.getByRole('button', { name: 'Set new password' }).click();

  await expect(page).toHaveURL(/\/account\?password=reset/);
  await expect(page.getByText('Your new password is set.')).toBeVisible();
  await expect(page.getByText(`Signed in as ${email}`)).toBeVisible();
  await page.screenshot(shot('lifecycle-reset-done'));

  // The session from before the reset is gone.
  await old.goto('/account');
  await expect(old).toHaveURL(/\/sign-in\?next=/);

  // The old password no longer works; the new one does.
  const fresh = await (await browser.newContext()).newPage();
  await fresh.goto('/sign-in');
  await hydrated(fresh);
  await fresh.getByLabel('Email').fill(email);
  await fresh.getByLabel('Password').fill(password);
  await fresh.getByRole('button', { name: 'Sign in' }).click();
  await expect(fresh.getByText("That email and password don't match an account.")).toBeVisible();
  await fresh.getByLabel('Password').fill(newPassword);
  await fresh.getByRole('button', { name: 'Sign in' }).click();
  await expect(fresh.getByTestId('org-name')).toHaveText(/workspace/);
});

test('delete my account', async ({ page }) => {
  const email = `delete-${unique}@example.com`;
  await signUp(page, email);
  await page.goto('/account');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Delete account' })).toBeVisible();
  await page.getByLabel('Password to confirm').fill('not my password');
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.getByText("That isn't your current password.")).toBeVisible();
  await page.getByLabel('Password to confirm').fill(password);
  await page.locator('#delete').screenshot({ path: 'screenshots/lifecycle-delete-form.png' });
  await page.getByRole('button', { name: 'Delete my account' }).click();

  await expect(page).toHaveURL(/\/sign-in\?account=deleted/);
  await expect(page.getByText('Your account was deleted.')).toBeVisible();
  await page.screenshot(shot('lifecycle-deleted'));
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText("That email and password don't match an account.")).toBeVisible();
});
