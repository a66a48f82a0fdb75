import { expect, test, type Browser, type Page } from '@playwright/test';
import { fakeOpenAIURL, modelAppURL } from '../playwright.config';

// Against the server that summarizes with an OpenAI-compatible model which
// answers in markdown only (end2end/fake-openai.mjs ignores response_format).
test.use({ baseURL: modelAppURL });

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const password = 'correct horse battery staple';
const videoId = (tag: string) => `${tag}${unique}`.padEnd(11, 'x').slice(0, 11);
const watch = (id: string) => `https://www.youtube.com/watch?v=${id}`;

async function newPage(browser: Browser, options: Parameters<Browser['newContext']>[0] = {}) {
  const context = await browser.newContext({
    baseURL: modelAppURL,
    permissions: ['clipboard-read', 'clipboard-write'],
    ...options,
  });
  return context.newPage();
}

async function signUp(page: Page, email: string): Promise<string> {
  await page.goto('/sign-up');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('org-name')).toBeVisible();
  const slug = new URL(page.url()).pathname.match(/^\/o\/([^/]+)/)?.[1];
  expect(slug).toBeTruthy();
  return slug!;
}

async function summarize(page: Page, link: string) {
  await page.getByLabel('YouTube link').fill(link);
  await page.getByRole('button', { name: 'Summarize' }).click();
}

const clipboard = (page: Page) => page.evaluate(() => navigator.clipboard.readText());

test('a markdown-only model: progress, timestamped key points, copy as Markdown, open on YouTube, share in the org', async ({ browser }) => {
  test.setTimeout(60_000);
  const page = await newPage(browser);
  const slug = await signUp(page, `mia-${unique}@example.com`);
  const video = videoId('m');

  await summarize(page, `https://youtu.be/${video}?si=share`);
  await expect(page).toHaveURL(new RegExp(`/o/${slug}/v/${video}$`));
  // The model streams slowly enough to watch it work.
  await expect(page.getByTestId('progress')).toBeVisible();
  await expect(page.getByTestId('partial')).not.toBeEmpty({ timeout: 10_000 });
  await page.screenshot(shot('model-progress'));

  await expect(page.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  await expect(page.getByTestId('model')).toContainText('Summarized by gpt-4o-mini');
  await expect(page.getByTestId('tldr')).toContainText('Hey, this is just a test');
  // The markdown bullets `[0:00] …`, `(0:01) …`, `0:05 – …` became
  // timestamped key points, the timestamps out of the text and into links.
  const points = page.getByTestId('key-points').locator('li');
  await expect(points).toHaveCount(3);
  const seconds = [0, 1, 5];
  for (const [i, at] of seconds.entries()) {
    const link = points.nth(i).getByRole('link');
    await expect(link).toHaveAttribute('href', `${watch(video)}&t=${at}s`);
    await expect(link).toHaveAttribute('target', '_blank');
    await expect(link).toHaveAttribute('rel', /noopener/);
    await expect(points.nth(i)).not.toContainText('[');
    await expect(points.nth(i)).not.toContainText('–');
  }
  await expect(points.nth(2)).toContainText('Just something shorter');

  // Open on YouTube: a plain link, in a new tab, without an opener.
  const open = page.getByRole('link', { name: /Open on YouTube/ });
  await expect(open).toHaveAttribute('href', watch(video));
  await expect(open).toHaveAttribute('target', '_blank');
  await expect(open).toHaveAttribute('rel', /noopener/);

  // Copy as Markdown: the clipboard holds the title, TL;DR and the points
  // with their timestamp links; the page says so in a live region.
  const copy = page.getByRole('button', { name: 'Copy as Markdown' });
  await copy.focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status').filter({ hasText: 'Copied the summary as Markdown' })).toBeAttached();
  await expect(page.getByTestId('copy-markdown')).toHaveText('✓ Copied');
  const markdown = await clipboard(page);
  // The title from YouTube (the fake serves a real captured page), linked.
  expect(markdown.split('\n')[0]).toBe(`# [Surface Go Review - It’s Awesome](${watch(video)})`);
  expect(markdown).toContain('\nDave2D · 5:16\n');
  expect(markdown).toMatch(/\n\*\*TL;DR:\*\* Hey, this is just a test/);
  expect(markdown).toContain('\n## Key points\n\n');
  expect(markdown).toContain(`- [0:00](${watch(video)}&t=0s) Hey, this is just a test.`);
  expect(markdown).toContain(`- [0:01](${watch(video)}&t=1s) `);
  expect(markdown).toContain(`- [0:05](${watch(video)}&t=5s) Just something shorter`);
  // The same text is on the page, to select by hand.
  await page.getByText('Show as Markdown').click();
  await expect(page.getByTestId('markdown')).toHaveText(markdown.trimEnd());

  // The share link is this page's address; only the org's members open it.
  const shareURL = `${modelAppURL}/o/${slug}/v/${video}`;
  const share = page.getByTestId('share');
  await expect(share).toContainText('Only members of this organization can open it');
  await expect(page.getByTestId('share-link')).toHaveText(shareURL);
  await page.getByTestId('copy-share-link').click();
  await expect(page.getByRole('status').filter({ hasText: 'Copied the link to this page' })).toBeAttached();
  expect(await clipboard(page)).toBe(shareURL);
  await page.screenshot(shot('model-summary'));

  // A narrow phone: nothing sticks out sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await expect(page.getByTestId('copy-markdown')).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot(shot('model-summary-mobile'));

  // Someone outside the org who gets the link sees "not found".
  const outsider = await newPage(browser);
  await signUp(outsider, `oli-${unique}@example.com`);
  const response = await outsider.goto(shareURL);
  expect(response?.status()).toBe(404);
  await expect(outsider.getByRole('heading', { name: 'Not found' })).toBeVisible();
  await expect(outsider.getByTestId('summary')).toHaveCount(0);

  // Without JavaScript: the links work, the Markdown is there to select,
  // and there is no copy button that would do nothing.
  const cookies = await page.context().cookies();
  const noJs = await browser.newContext({ baseURL: modelAppURL, javaScriptEnabled: false });
  await noJs.addCookies(cookies);
  const plain = await noJs.newPage();
  await plain.goto(`/o/${slug}/v/${video}`);
  await expect(plain.getByTestId('tldr')).not.toBeEmpty();
  await expect(plain.getByRole('link', { name: /Open on YouTube/ })).toHaveAttribute('href', watch(video));
  await expect(plain.getByTestId('share-link')).toHaveAttribute('href', `/o/${slug}/v/${video}`);
  await expect(plain.getByRole('button', { name: /Copy/ })).toHaveCount(0);
  await plain.getByText('Show as Markdown').click();
  await expect(plain.getByTestId('markdown')).toContainText(`- [0:05](${watch(video)}&t=5s)`);
  await plain.screenshot(shot('model-summary-no-js'));
});

test('the model fails: the words say so, nothing is charged, and Try again waits out the cool-down', async ({ browser, request }) => {
  test.setTimeout(60_000);
  const page = await newPage(browser);
  await signUp(page, `noa-${unique}@example.com`);
  await expect(page.getByTestId('quota-meter')).toContainText(/(^|\D)0 \/ \d+ summaries/);

  // The next completion answers 500 (the server makes one attempt here).
  await request.post(`${fakeOpenAIURL}/control`, { data: { fail: 1, status: 500 } });
  const video = videoId('f');
  await summarize(page, `https://youtu.be/${video}`);
  const failed = page.getByTestId('failed');
  await expect(failed).toBeVisible({ timeout: 20_000 });
  await expect(page.getByTestId('failure-message')).toContainText('The AI service failed to answer');
  await expect(page.getByTestId('failure-message')).toContainText('Nothing was charged');
  await expect(page.getByTestId('failure-message')).toContainText(/try again (in \d+ seconds?|in a second|now)/);
  // Said once, not twice.
  await expect(failed.getByText(/Nothing was charged/)).toHaveCount(1);
  const retry = page.getByTestId('retry').getByRole('button');
  await page.screenshot(shot('model-failed'));
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot(shot('model-failed-mobile'));
  await page.setViewportSize({ width: 1280, height: 720 });

  // The button counts the cool-down down, then works.
  await expect(retry).toHaveText('Try again', { timeout: 15_000 });
  await expect(retry).toBeEnabled();
  await expect(page.getByRole('status').filter({ hasText: 'You can try again now.' })).toBeAttached();
  await retry.click();
  await expect(page.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  await expect(page.getByTestId('key-points').locator('li')).toHaveCount(3);

  // Only the summary that was made is charged.
  await page.getByRole('link', { name: '← All summaries' }).click();
  await expect(page.getByTestId('quota-meter')).toContainText(/(^|\D)1 \/ \d+ summaries/);
});
