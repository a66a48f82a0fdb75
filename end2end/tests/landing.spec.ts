import { expect, test } from '@playwright/test';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });

test('the landing page renders with styles and every plan', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toContainText('Get the point of any YouTube video');
  const plans = page.locator('[data-plan]');
  await expect(plans).toHaveCount(3);
  await expect(plans.nth(0)).toContainText('Free');
  await expect(plans.nth(1)).toContainText('Most popular');
  // Tailwind's CSS is served and applied: the primary button is indigo.
  const button = page.getByRole('button', { name: 'Check link' });
  await expect(button).toHaveCSS('background-color', /oklch\(0\.511|rgb\(79, 70, 229\)/);
  await page.screenshot(shot('landing-desktop'));

  await page.setViewportSize({ width: 390, height: 844 });
  await expect(plans.nth(2)).toBeVisible();
  await page.screenshot(shot('landing-mobile'));
});

test('the link box hydrates and checks links as you type', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('form[data-hydrated="true"]')).toBeVisible();
  const input = page.getByLabel('YouTube link');

  await input.fill('https://youtube.com.evil.com/watch?v=dQw4w9WgXcQ');
  await expect(page.getByTestId('verdict-error')).toContainText('is not on YouTube');
  await expect(input).toHaveAttribute('aria-invalid', 'true');

  await input.fill('https://youtu.be/dQw4w9WgXcQ?si=abc');
  await expect(page.getByTestId('verdict-ok')).toContainText('dQw4w9WgXcQ');
  // Checked in the browser: no request, no navigation.
  expect(new URL(page.url()).search).toBe('');
  await page.screenshot(shot('link-checked-live'));
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the link form round-trips through the server', async ({ page }) => {
    await page.goto('/');
    await page.getByLabel('YouTube link').fill('https://www.youtube.com/shorts/dQw4w9WgXcQ');
    await page.getByRole('button', { name: 'Check link' }).click();
    await expect(page).toHaveURL(/\?link=/);
    await expect(page.getByTestId('verdict-ok')).toContainText('dQw4w9WgXcQ');
    // What was submitted stays in the box.
    await expect(page.getByLabel('YouTube link')).toHaveValue('https://www.youtube.com/shorts/dQw4w9WgXcQ');
    await page.screenshot(shot('link-checked-no-js'));

    await page.getByLabel('YouTube link').fill('https://www.youtube.com/@somechannel');
    await page.getByRole('button', { name: 'Check link' }).click();
    await expect(page.getByTestId('verdict-error')).toContainText('channel');
  });
});

test('unknown pages get a 404 page with a way back', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText("We couldn't find that page.");
  await page.screenshot(shot('not-found'));
  await page.getByRole('link', { name: 'Back to the start' }).click();
  await expect(page).toHaveURL(/\/$/);
});
