import { expect, test, type Page } from '@playwright/test';
import { clerkAppURL, fakeClerkURL, fakeDodoURL, freeLimit } from '../playwright.config';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const unique = Date.now().toString(36);
const password = 'correct horse battery staple';
const videoId = (tag: string) => `${tag}${unique}`.padEnd(11, 'y').slice(0, 11);

async function summarize(page: Page, link: string) {
  await page.getByLabel('YouTube link').fill(link);
  await page.getByRole('button', { name: 'Summarize' }).click();
}

test('a Free org runs out, upgrades through Dodo checkout, summarizes again and opens the portal', async ({ page, request, browser }) => {
  test.setTimeout(120_000);
  await request.post(`${fakeDodoURL}/_control/knobs`, { data: {} });

  await page.goto('/sign-up');
  await page.getByLabel('Email').fill(`payer-${unique}@example.com`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('org-name')).toBeVisible();
  const dashboard = page.url();

  // Use up the Free quota; the next request is refused with a way to upgrade.
  for (let n = 0; n < freeLimit; n++) {
    await page.goto(dashboard);
    await summarize(page, `https://youtu.be/${videoId(`b${n}`)}`);
    await expect(page.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });
  }
  await page.goto(dashboard);
  await summarize(page, `https://youtu.be/${videoId('bover')}`);
  await expect(page.getByTestId('summarize-error')).toContainText(`used all ${freeLimit} summaries`);
  await page.screenshot(shot('billing-quota-exhausted'));
  await page.getByRole('link', { name: 'Upgrade for more summaries' }).click();

  // The billing page: Free, the meter at its limit, no payments yet.
  await expect(page.getByTestId('current-plan')).toHaveText('Free');
  await expect(page.getByTestId('quota-meter')).toContainText(`${freeLimit} / ${freeLimit}`);
  await expect(page.getByTestId('payments-empty')).toBeVisible();
  await page.screenshot(shot('billing-free'));

  // Checkout on the local Dodo, then back to "confirming…".
  await page.getByRole('button', { name: 'Upgrade to Pro' }).click();
  await expect(page).toHaveURL(new RegExp(`^${fakeDodoURL}/session/cks_`));
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await page.screenshot(shot('billing-dodo-checkout'));
  // Webhooks arrive late and twice: the page waits, and nothing is applied twice.
  await request.post(`${fakeDodoURL}/_control/knobs`, { data: { delay_ms: 2500, duplicate: true } });
  await page.getByRole('button', { name: 'Pay now' }).click();
  await expect(page).toHaveURL(/\/billing\/return\?checkout=/);
  const subscription = new URL(page.url()).searchParams.get('subscription_id');
  expect(subscription).toMatch(/^sub_/);
  await expect(page.getByTestId('checkout-waiting')).toBeVisible();
  await page.screenshot(shot('billing-confirming'));
  await expect(page.getByTestId('checkout-confirmed')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('checkout-confirmed')).toContainText('Pro');
  await page.screenshot(shot('billing-confirmed'));

  // The same pages without JavaScript: rendered whole on the server.
  const returnURL = page.url();
  const noJs = await browser.newContext({ javaScriptEnabled: false, storageState: await page.context().storageState() });
  const plain = await noJs.newPage();
  await plain.goto(returnURL);
  await expect(plain.getByTestId('checkout-confirmed')).toContainText('Pro');
  await plain.goto(dashboard.replace(/\/?$/, '/billing'));
  await expect(plain.getByTestId('current-plan')).toHaveText('Pro');
  await expect(plain.getByRole('button', { name: 'Upgrade to Team' })).toBeVisible();
  await plain.screenshot(shot('billing-pro-no-js'));
  await noJs.close();
  await request.post(`${fakeDodoURL}/_control/knobs`, { data: {} });

  // Upgraded: a fresh period with the Pro limit, and the payment in the history.
  await page.goto(dashboard.replace(/\/?$/, '/billing'));
  await expect(page.getByTestId('current-plan')).toHaveText('Pro');
  await expect(page.getByTestId('subscription-status')).toHaveText('Active');
  await expect(page.getByTestId('payments')).toContainText('$12.00 USD');
  await expect(page.getByTestId('webhook-events')).toContainText('subscription.active');
  await page.screenshot(shot('billing-pro'));
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByRole('button', { name: 'Upgrade to Team' })).toBeVisible();
  await page.screenshot(shot('billing-pro-mobile'));
  await page.setViewportSize({ width: 1280, height: 720 });

  // Summarizes again.
  await page.goto(dashboard);
  await summarize(page, `https://youtu.be/${videoId('bafter')}`);
  await expect(page.getByTestId('tldr')).not.toBeEmpty({ timeout: 20_000 });

  // A renewal whose webhooks arrive in reverse order, each first with a bad
  // signature (refused, then retried): one more payment, nothing else lost.
  await request.post(`${fakeDodoURL}/_control/knobs`, { data: { reorder: true, fail_first: 1 } });
  expect((await request.post(`${fakeDodoURL}/_control/subscriptions/${subscription}/renew`)).ok()).toBeTruthy();
  await page.goto(dashboard.replace(/\/?$/, '/billing'));
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('payments').locator('tbody tr')).toHaveCount(2, { timeout: 1_000 });
    await expect(page.getByTestId('webhook-events')).toContainText('subscription.renewed', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await page.screenshot(shot('billing-renewed'));
  await request.post(`${fakeDodoURL}/_control/knobs`, { data: {} });

  // Manage billing opens Dodo's portal; cancelling there keeps Pro until the period ends.
  await page.goto(dashboard.replace(/\/?$/, '/billing'));
  await page.getByRole('button', { name: 'Manage billing' }).click();
  await expect(page).toHaveURL(new RegExp(`^${fakeDodoURL}/portal/cus_`));
  await page.screenshot(shot('billing-dodo-portal'));
  await page.getByRole('button', { name: 'Cancel at period end' }).click();
  await page.getByRole('link', { name: 'Return to tldw' }).click();
  await expect(page.getByTestId('billing-warning')).toContainText('ends on', { timeout: 10_000 });
  await expect(page.getByTestId('current-plan')).toHaveText('Pro');
  // No second subscription while this one is paid up: the portal resumes it.
  await expect(page.getByRole('button', { name: 'Upgrade to Team' })).toHaveCount(0);
  await expect(page.getByText('Your subscription is cancelling').first()).toBeVisible();
  await page.screenshot(shot('billing-cancelling'));
});

test.describe('with billing off', () => {
  test.use({ baseURL: clerkAppURL });

  test('plans still show and upgrading explains that billing is off', async ({ page, request, context }) => {
    await page.goto('/');
    await expect(page.getByTestId('pricing-billing-off')).toBeVisible();
    await expect(page.locator('[data-plan]')).toHaveCount(3);

    const token = await (
      await request.get(`${fakeClerkURL}/token?sub=user_bill_${unique}&org=org_bill_${unique}&slug=bill-${unique}&role=admin`)
    ).text();
    await context.addCookies([{ name: '__session', value: token, url: clerkAppURL }]);
    await page.goto('/app');
    await page.getByRole('link', { name: 'Billing', exact: true }).click();
    await expect(page.getByTestId('billing-off')).toContainText('tldw plan set');
    await expect(page.getByRole('button', { name: 'Upgrade to Pro' })).toBeDisabled();
    await page.screenshot(shot('billing-off'));
  });
});
