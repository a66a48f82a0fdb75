import { expect, test, type Page } from '@playwright/test';
import { freeLimit, secondProcessURL } from '../playwright.config';

// Live updates across processes (issue 11): Alice watches her org's
// dashboard on the main process; Bob, another member, summarizes through a
// second process on the same database. Alice's meter and history move
// within a second, with no reload.

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const alice = `alice-live-${unique}@example.com`;
const bob = `bob-live-${unique}@example.com`;
const password = 'correct horse battery staple';
const video = `L${unique}`.padEnd(11, 'x').slice(0, 11);

async function hydrated(page: Page) {
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(1);
}

test('a summary made through another process moves the dashboard live', async ({ browser }) => {
  test.setTimeout(90_000);
  // Alice creates a team org and invites Bob.
  const a = await (await browser.newContext()).newPage();
  await a.goto('/sign-up');
  await a.getByLabel('Email').fill(alice);
  await a.getByLabel('Password').fill(password);
  await a.getByRole('button', { name: 'Create account' }).click();
  await expect(a.getByTestId('org-name')).toBeVisible();
  await a.goto('/orgs/new');
  await a.getByLabel('Organization name').fill(`Live ${unique}`);
  await a.getByRole('button', { name: 'Create organization' }).click();
  await expect(a.getByRole('heading', { name: 'Members & settings' })).toBeVisible();
  const dashboard = new URL(a.url()).pathname.replace(/\/settings$/, '');
  await hydrated(a);
  await a.getByLabel('Email address').fill(bob);
  await a.getByRole('button', { name: 'Invite' }).click();
  const link = await a.getByTestId('invite-link').inputValue();

  // Bob joins.
  const b = await (await browser.newContext()).newPage();
  await b.goto(link);
  await b.getByRole('link', { name: 'Create an account' }).click();
  await b.getByLabel('Password').fill(password);
  await b.getByRole('button', { name: 'Create account' }).click();
  await b.getByRole('button', { name: 'Accept invitation' }).click();
  await expect(b.getByTestId('org-name')).toHaveText(`Live ${unique}`);

  // Alice opens the dashboard and leaves it open; a marker on the window
  // tells a reload apart from a live update.
  const stream = a.waitForResponse((r) => new URL(r.url()).pathname === `${dashboard}/events`);
  await a.goto(dashboard);
  await hydrated(a);
  expect((await stream).status()).toBe(200);
  // It opens where the page's render began, so nothing in between is missed.
  expect(new URL((await stream).url()).searchParams.get('since')).toMatch(/^[0-9a-f]{8}-\d+$/);
  await expect(a.getByTestId('quota-meter')).toContainText(`0 / ${freeLimit}`);
  await expect(a.getByTestId('history-empty')).toBeVisible();
  await a.evaluate(() => ((window as unknown as { liveMarker: number }).liveMarker = 42));

  // Bob summarizes through the second process.
  await b.goto(`${secondProcessURL}${dashboard}`);
  await hydrated(b);
  await b.getByLabel('YouTube link').fill(`https://youtu.be/${video}`);
  const asked = Date.now();
  await b.getByRole('button', { name: 'Summarize' }).click();
  await expect(a.getByTestId('quota-meter')).toContainText(`1 / ${freeLimit}`, { timeout: 1_500 });
  const meterMoved = Date.now() - asked;
  await expect(b.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  const landed = Date.now();
  await expect(a.getByTestId('history').locator(`a[href$="/v/${video}"]`)).toBeVisible({ timeout: 1_000 });
  const historyMoved = Date.now() - landed;
  console.log(`meter moved ${meterMoved} ms after Bob asked; history ${historyMoved} ms after his summary showed`);
  expect(await a.evaluate(() => (window as unknown as { liveMarker?: number }).liveMarker)).toBe(42);
  await a.screenshot(shot('live-dashboard-updated'));
});
