import { expect, test, type Page } from '@playwright/test';
import { freeLimit } from '../playwright.config';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const password = 'correct horse battery staple';

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

// An 11-character id unique to this run.
const videoId = (tag: string) => `${tag}${unique}`.padEnd(11, 'x').slice(0, 11);

test('paste a link, read the summary, share it through the cache, run out of quota', async ({ browser }) => {
  const first = await (await browser.newContext()).newPage();
  await signUp(first, `dora-${unique}@example.com`);
  await expect(first.getByTestId('history-empty')).toBeVisible();
  await first.screenshot(shot('summaries-empty-dashboard'));

  const video = videoId('a');
  await summarize(first, `https://youtu.be/${video}?si=share`);
  await expect(first).toHaveURL(new RegExp(`/v/${video}$`));
  await expect(first.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  await expect(first.getByTestId('freshness')).toHaveText('Freshly summarized');
  await expect(first.getByTestId('model')).toContainText('Built-in extractive summarizer');
  const points = first.getByTestId('key-points').locator('li');
  expect(await points.count()).toBeGreaterThan(0);
  await expect(points.first().locator('a')).toHaveAttribute('href', new RegExp(`watch\\?v=${video}&t=\\d+s`));
  await first.screenshot(shot('summaries-summary'));

  // Someone in another org asks for the same video: straight from the cache.
  const second = await (await browser.newContext()).newPage();
  await signUp(second, `eve-${unique}@example.com`);
  await summarize(second, `https://www.youtube.com/watch?v=${video}`);
  await expect(second.getByTestId('freshness')).toHaveText('Served from cache', { timeout: 10_000 });
  await second.screenshot(shot('summaries-from-cache'));

  // A video without captions: a clear error, and no quota spent.
  await second.goto('/app');
  await summarize(second, `https://youtu.be/${videoId('noCap')}`);
  await expect(second.getByTestId('failed')).toContainText('Nothing was charged', { timeout: 10_000 });
  await second.screenshot(shot('summaries-no-captions'));

  // The member pastes the transcript instead: summarized for their org only.
  await second.getByLabel('Transcript').fill(
    '1\n00:00:01,000 --> 00:00:04,000\nWelcome to the quarterly planning review.\n\n' +
      '2\n00:01:05,000 --> 00:01:09,000\nRevenue grew because the new onboarding flow converted better.\n\n' +
      '3\n00:02:30,000 --> 00:02:34,000\nNext quarter we focus on retention and support response times.\n',
  );
  await second.getByRole('button', { name: 'Summarize my transcript' }).click();
  await expect(second.getByTestId('freshness')).toContainText('only your organization sees it', { timeout: 10_000 });
  await expect(second.getByTestId('key-points')).toContainText('onboarding');
  await second.screenshot(shot('summaries-own-transcript'));

  // The first org uses up its quota; the next request is refused in words.
  for (let n = 1; n < freeLimit; n++) {
    await first.goto('/app');
    await summarize(first, `https://youtu.be/${videoId(`q${n}`)}`);
    await expect(first.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  }
  await first.goto('/app');
  await expect(first.getByTestId('quota-meter')).toContainText(`${freeLimit} / ${freeLimit}`);
  await summarize(first, `https://youtu.be/${videoId('over')}`);
  await expect(first.getByTestId('summarize-error')).toContainText(`used all ${freeLimit} summaries`);
  await expect(first.getByRole('link', { name: 'Upgrade for more summaries' })).toBeVisible();
  await first.screenshot(shot('summaries-quota-exhausted'));

  // Reopening something already in the history is free.
  await first.goto(`/app`);
  await first.getByTestId('history').getByRole('link').first().click();
  await expect(first.getByTestId('tldr')).not.toBeEmpty();
});
