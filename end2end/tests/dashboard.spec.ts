import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { freeLimit } from '../playwright.config';

// The org dashboard (issue 11): stat cards, the usage charts, usage per
// member and the shell's quota meter; empty and with data, on a desktop
// and a phone; and an axe-core check with no serious or critical findings.

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const password = 'correct horse battery staple';
const videoId = (tag: string) => `${tag}${unique}`.padEnd(11, 'x').slice(0, 11);

async function signUp(page: Page, email: string) {
  await page.goto('/sign-up');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('org-name')).toBeVisible();
}

async function summarize(page: Page, link: string) {
  await page.getByLabel('YouTube link').fill(link);
  await page.getByRole('button', { name: 'Summarize' }).click();
}

async function noSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

test('the dashboard shows cards, charts and per-member usage, empty and with data', async ({ page }) => {
  await signUp(page, `dash-${unique}@example.com`);
  const dashboard = page.url();

  // Empty: zeros everywhere, the charts still there with their text.
  await expect(page.getByTestId('shell-quota-used')).toHaveText(`0 of ${freeLimit} summaries used`);
  await expect(page.getByTestId('card-remaining-value')).toHaveText(String(freeLimit));
  await expect(page.getByTestId('card-hit-rate-value')).toHaveText('—');
  await expect(page.getByTestId('daily-chart').locator('svg title').first()).toHaveText('Summaries per day, last 30 days');
  await expect(page.getByTestId('limit-line')).toHaveCount(1);
  await page.screenshot(shot('dashboard-empty'));
  await noSeriousViolations(page);

  // One summary: the meter, the cards, today's bar and the member's line move.
  await summarize(page, `https://youtu.be/${videoId('dash')}`);
  await expect(page.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  await expect(page.getByTestId('shell-quota-used')).toHaveText(`1 of ${freeLimit} summaries used`);
  await page.goto(dashboard);
  await expect(page.getByTestId('card-remaining-value')).toHaveText(String(freeLimit - 1));
  await expect(page.getByTestId('card-hit-rate-value')).toHaveText('0%');
  await expect(page.getByTestId('member-usage-table')).toContainText('(you)');
  const today = page.getByTestId('daily-chart').locator('g').last();
  await expect(today.locator('title')).toContainText('1 fresh, 0 from the cache');

  // Hover details once hydrated.
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(1);
  await today.hover();
  await expect(page.getByTestId('chart-details')).toContainText('1 fresh');
  await page.screenshot(shot('dashboard-with-data'));
  await noSeriousViolations(page);

  // A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await expect(page.getByTestId('stat-cards')).toBeVisible();
  await page.screenshot(shot('dashboard-phone'));

  // Without JavaScript: the same numbers, rendered by the server.
  const noJs = await page.context().browser()!.newContext({ javaScriptEnabled: false });
  await noJs.addCookies(await page.context().cookies());
  const plain = await noJs.newPage();
  await plain.goto(dashboard);
  await expect(plain.getByTestId('shell-quota-used')).toHaveText(`1 of ${freeLimit} summaries used`);
  await expect(plain.getByTestId('card-remaining-value')).toHaveText(String(freeLimit - 1));
  await expect(plain.getByTestId('member-usage-table')).toContainText('(you)');
  await expect(plain.getByTestId('daily-chart').locator('g').last().locator('title')).toContainText('1 fresh');
  await plain.screenshot(shot('dashboard-no-js'));
  await noJs.close();
});
