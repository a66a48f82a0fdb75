import { expect, test, type APIRequestContext, type Locator, type Page } from '@playwright/test';

const shot = (name: string) => ({ path: `screenshots/${name}.png`, fullPage: true });
const phone = { width: 390, height: 844 };
const unique = Date.now().toString(36);
const owner = `kim-${unique}@example.com`;
const member = `lee-${unique}@example.com`;
const password = 'correct horse battery staple';

async function hydrated(page: Page) {
  await expect(page.locator('html[data-hydrated="true"]')).toHaveCount(1);
}

async function signUp(page: Page, email: string) {
  await page.goto('/sign-up');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('org-name')).toBeVisible();
}

// Desktop, then the same page on a phone, where nothing may scroll
// sideways. With a section, a close-up of it too (full pages get scaled
// down when looked at).
async function shootBoth(page: Page, name: string, section?: Locator) {
  const desktop = page.viewportSize();
  await page.screenshot(shot(`${name}-desktop`));
  if (section) await section.screenshot({ path: `screenshots/${name}-desktop-section.png` });
  await page.setViewportSize(phone);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(phone.width);
  await page.screenshot(shot(`${name}-mobile`));
  if (section) await section.screenshot({ path: `screenshots/${name}-mobile-section.png` });
  if (desktop) await page.setViewportSize(desktop);
}

const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

async function me(request: APIRequestContext, secret: string) {
  return request.get('/api/v1/me', { headers: bearer(secret) });
}

test('an owner creates an API key, a program uses it, the owner revokes it', async ({ browser, request }) => {
  // A long journey (two accounts, eight screenshots): on a busy 2-core
  // machine it outgrew the default 30 s once while waiting normally.
  test.setTimeout(90_000);
  const context = await browser.newContext();
  const page = await context.newPage();
  await signUp(page, owner);
  await page.goto('/orgs/new');
  await page.getByLabel('Organization name').fill(`Keys ${unique}`);
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('heading', { name: 'Members & settings' })).toBeVisible();
  const slug = new URL(page.url()).pathname.split('/')[2];
  expect(slug).toBeTruthy();

  // No keys yet: the section says so and points at the reference.
  const section = page.locator('#api-keys');
  await expect(section.getByRole('heading', { name: 'API keys' })).toBeVisible();
  await expect(section.getByTestId('api-keys-empty')).toBeVisible();
  await expect(section.getByRole('link', { name: 'API reference' })).toHaveAttribute('href', '/api/docs');
  await hydrated(page);
  await shootBoth(page, 'api-keys-empty', section);

  // A key for a bot, with the member role: its secret is shown once.
  await section.getByLabel('Key name').fill('Slack bot');
  await expect(section.getByLabel('Role')).toHaveValue('member');
  await section.getByRole('button', { name: 'Create key' }).click();
  const secretField = section.getByTestId('api-key-secret');
  await expect(secretField).toHaveValue(/^tldw_[A-Za-z0-9_-]{20,}$/);
  const secret = await secretField.inputValue();
  await expect(section.getByTestId('api-key-secret-box')).toContainText('Copy it now');
  await expect(section.getByRole('button', { name: 'Copy key' })).toBeVisible();
  // The name is emptied, so a second press doesn't make a twin.
  await expect(section.getByLabel('Key name')).toHaveValue('');
  // The new key is listed under the secret, not yet used.
  const row = section.locator('[data-api-key="Slack bot"]');
  await expect(row).toContainText('never');
  await shootBoth(page, 'api-keys-created', section);

  // A program calls the API with it: it acts as a member of this org only.
  const whoami = await me(request, secret);
  expect(whoami.status()).toBe(200);
  const body = await whoami.json();
  expect(body.credential).toBe('api_key');
  expect(body.orgs).toEqual([expect.objectContaining({ slug, role: 'member', personal: false })]);

  // A body of the wrong shape is refused before anything is summarized.
  const malformed = await request.post(`/api/v1/orgs/${slug}/summaries`, {
    headers: bearer(secret),
    data: { url: 5 },
  });
  expect(malformed.status()).toBe(422);
  const refusal = await malformed.json();
  expect(refusal.error.code).toBe('invalid');
  expect(typeof refusal.error.message).toBe('string');

  // A real request, against the fake YouTube the server is pointed at.
  const video = `k${unique}`.padEnd(11, 'x').slice(0, 11);
  const asked = await request.post(`/api/v1/orgs/${slug}/summaries`, {
    headers: bearer(secret),
    data: { url: `https://youtu.be/${video}` },
  });
  expect([200, 202]).toContain(asked.status());

  // After a reload the secret is gone for good; the list keeps what identifies it.
  await page.reload();
  await hydrated(page);
  await expect(section.getByTestId('api-key-secret')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText(secret);
  await expect(row).toContainText('Slack bot');
  await expect(row).toContainText(secret.slice(0, 12));
  await expect(row).toContainText('Member');
  await expect(row).toContainText(owner);
  await expect(row).toContainText(/last used \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
  await shootBoth(page, 'api-keys-list', section);

  // Revoking asks first; then the key stops working at once.
  await row.locator('summary', { hasText: 'Revoke' }).click();
  const confirm = row.getByRole('button', { name: 'Yes, revoke this key' });
  await expect(confirm).toBeVisible();
  await expect(row).toContainText("This can't be undone");
  await shootBoth(page, 'api-keys-revoke-confirm', section);
  await confirm.click();
  await expect(section.locator('[data-api-key="Slack bot"]')).toHaveCount(0);
  await expect(section.getByTestId('api-keys-empty')).toBeVisible();
  const revoked = await me(request, secret);
  expect(revoked.status()).toBe(401);
  expect((await revoked.json()).error.code).toBe('unauthorized');

  // A plain member of the org never sees the section.
  await page.getByLabel('Email address').fill(member);
  await page.getByRole('button', { name: 'Invite' }).click();
  const link = await page.getByTestId('invite-link').inputValue();
  const memberContext = await browser.newContext();
  const m = await memberContext.newPage();
  await m.goto(link);
  await m.getByRole('link', { name: 'Create an account' }).click();
  await m.getByLabel('Password').fill(password);
  await m.getByRole('button', { name: 'Create account' }).click();
  await m.getByRole('button', { name: 'Accept invitation' }).click();
  await expect(m.getByTestId('org-name')).toHaveText(`Keys ${unique}`);
  await m.goto(`/o/${slug}/settings`);
  await expect(m.getByTestId('members')).toContainText(member);
  await hydrated(m);
  await expect(m.getByRole('heading', { name: 'API keys' })).toHaveCount(0);
  await expect(m.locator('#api-keys')).toHaveCount(0);

  await memberContext.close();
  await context.close();
});

test('the API reference renders every route from this origin only', async ({ page }, testInfo) => {
  const origin = new URL(testInfo.project.use.baseURL!).origin;
  const elsewhere: string[] = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.protocol !== 'data:' && url.origin !== origin) elsewhere.push(req.url());
  });

  await page.goto('/');
  await page.getByRole('contentinfo').getByRole('link', { name: 'API', exact: true }).click();
  await expect(page).toHaveURL(/\/api\/docs$/);
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await hydrated(page);

  const operation = (method: string, path: string) =>
    page
      .locator('article h3')
      .filter({ has: page.getByText(method, { exact: true }) })
      .filter({ has: page.getByText(path, { exact: true }) });
  await expect(operation('POST', '/api/v1/orgs/{slug}/summaries')).toHaveCount(1);
  await expect(operation('GET', '/api/v1/me')).toHaveCount(1);
  await expect(page.getByRole('link', { name: '/api/v1/openapi.json' })).toHaveAttribute('href', '/api/v1/openapi.json');

  // Every operation in the machine-readable document is on the page.
  const document = await (await page.request.get('/api/v1/openapi.json')).json();
  const operations = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
    Object.keys(methods)
      .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
  expect(operations.length).toBeGreaterThan(5);
  const shown = await page
    .locator('article h3')
    .evaluateAll((headings) =>
      headings.map((h) => Array.from(h.querySelectorAll('span'), (s) => (s.textContent ?? '').trim()).join(' ')),
    );
  expect(shown.slice().sort()).toEqual(operations.slice().sort());

  // Landmarks and headings a screen reader relies on.
  await expect(page.getByRole('main')).toHaveCount(1);
  await expect(page.getByRole('heading', { level: 1 })).toHaveCount(1);
  await page.screenshot({ path: 'screenshots/api-docs-top-desktop.png' });
  await shootBoth(page, 'api-docs', operation('POST', '/api/v1/orgs/{slug}/summaries').locator('xpath=..'));
  await page.setViewportSize(phone);
  await page.evaluate(() => window.scrollTo(0, 0));
  await expect(page.getByRole('navigation', { name: 'API sections' }).getByRole('link', { name: 'summaries' })).toBeInViewport();
  await page.screenshot({ path: 'screenshots/api-docs-top-mobile.png' });
  // Prose written with Markdown backticks shows them as code, not as backticks.
  await expect(page.locator('main')).not.toContainText('`');
  expect(elsewhere).toEqual([]);
});
