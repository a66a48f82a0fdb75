import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The real server on its own port, with an embedded database in a throwaway
// folder (scripts/test passes one; standalone runs make their own).
const port = Number(process.env.E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const dataDir = process.env.TLDW_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'tldw-e2e-'));
// A second server signs people in through (a local stand-in for) Clerk.
export const clerkAppURL = 'http://127.0.0.1:3101';
export const fakeClerkURL = 'http://127.0.0.1:3102';
export const fakeYouTubeURL = 'http://127.0.0.1:3103';
// A stand-in for Dodo Payments: API, hosted checkout and customer portal.
// It signs webhooks to the main server with this (test-only) secret.
export const fakeDodoURL = 'http://127.0.0.1:3104';
// A third server summarizes with an OpenAI-compatible model that answers in
// markdown only (it ignores response_format), through a local fake.
export const modelAppURL = 'http://127.0.0.1:3106';
export const fakeOpenAIURL = 'http://127.0.0.1:3105';
// Short, so a journey can wait out a failed attempt's cool-down.
export const modelFailureCooldownSeconds = 3;
const dodoWebhookSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const dodoApiKey = 'dodo_e2e_key';
// A second process of the main app on the same database (it joins the
// embedded cluster in the same folder): live updates cross processes.
export const secondProcessURL = 'http://127.0.0.1:3107';
// The fake Clerk's Backend API key and webhook signing secret (test-only).
const clerkSecretKey = 'sk_test_e2e_clerk';
const clerkWebhookSecret = 'whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=';
// Account links (verify email, reset password) are mailed through a local
// SMTP stand-in; specs read them from its mailbox file.
export const fakeSmtpPort = 3108;
export const mailboxFile = process.env.FAKE_SMTP_MAILBOX ?? '/tmp/tldw-e2e-mailbox.jsonl';
// Small enough for a journey to run out.
export const freeLimit = 3;
const server = process.env.TLDW_SERVER_BIN ?? '../target/debug/tldw';

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  // Two cores: one browser at a time keeps timings honest.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      // Debian's Chromium: Playwright never downloads a browser here.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: 'node fake-smtp.mjs',
      port: fakeSmtpPort,
      timeout: 30_000,
      reuseExistingServer: false,
      env: { FAKE_SMTP_PORT: String(fakeSmtpPort), FAKE_SMTP_MAILBOX: mailboxFile },
    },
    {
      command: 'node fake-youtube.mjs',
      url: `${fakeYouTubeURL}/healthz`,
      timeout: 30_000,
      reuseExistingServer: false,
      env: { FAKE_YOUTUBE_PORT: '3103' },
    },
    {
      command: 'node fake-dodo.mjs',
      url: `${fakeDodoURL}/healthz`,
      timeout: 30_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      env: {
        FAKE_DODO_PORT: '3104',
        FAKE_DODO_API_KEY: dodoApiKey,
        FAKE_DODO_WEBHOOK_URL: `${baseURL}/webhooks/dodo`,
        FAKE_DODO_WEBHOOK_SECRET: dodoWebhookSecret,
        FAKE_DODO_PRICES: 'pdt_e2e_pro=1200,pdt_e2e_team=4900',
      },
    },
    {
      command: server,
      cwd: '..',
      url: `${baseURL}/readyz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        TLDW_DATA_DIR: dataDir,
        TLDW_YOUTUBE_BASE_URL: fakeYouTubeURL,
        TLDW_FREE_MONTHLY_SUMMARIES: String(freeLimit),
        // Mail links are built from PUBLIC_URL only (the server refuses
        // SMTP without it).
        PUBLIC_URL: baseURL,
        // Every journey signs people up from 127.0.0.1.
        TLDW_SIGN_UPS_PER_ADDRESS_PER_HOUR: '200',
        SMTP_URL: `smtp://127.0.0.1:${fakeSmtpPort}`,
        SMTP_FROM: 'tldw <no-reply@tldw.test>',
        DODO_PAYMENTS_API_KEY: dodoApiKey,
        DODO_PAYMENTS_BASE_URL: fakeDodoURL,
        DODO_PAYMENTS_WEBHOOK_KEY: dodoWebhookSecret,
        DODO_PAYMENTS_PRODUCT_PRO: 'pdt_e2e_pro',
        DODO_PAYMENTS_PRODUCT_TEAM: 'pdt_e2e_team',
      } as Record<string, string>,
    },
    {
      command: server,
      cwd: '..',
      url: `${secondProcessURL}/readyz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
      env: {
        ...process.env,
        PORT: '3107',
        HOST: '127.0.0.1',
        TLDW_DATA_DIR: dataDir,
        TLDW_YOUTUBE_BASE_URL: fakeYouTubeURL,
        TLDW_FREE_MONTHLY_SUMMARIES: String(freeLimit),
      } as Record<string, string>,
    },
    {
      command: 'node fake-clerk.mjs',
      url: `${fakeClerkURL}/healthz`,
      timeout: 30_000,
      reuseExistingServer: false,
      env: {
        FAKE_CLERK_PORT: '3102',
        FAKE_CLERK_AZP: clerkAppURL,
        FAKE_CLERK_SECRET_KEY: clerkSecretKey,
        FAKE_CLERK_WEBHOOK_URL: `${clerkAppURL}/webhooks/clerk`,
        FAKE_CLERK_WEBHOOK_SECRET: clerkWebhookSecret,
      },
    },
    {
      command: server,
      cwd: '..',
      url: `${clerkAppURL}/readyz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
      env: {
        ...process.env,
        PORT: '3101',
        HOST: '127.0.0.1',
        TLDW_DATA_DIR: `${dataDir}-clerk`,
        CLERK_ISSUER: fakeClerkURL,
        CLERK_AUTHORIZED_PARTIES: clerkAppURL,
        CLERK_API_URL: fakeClerkURL,
        CLERK_SECRET_KEY: clerkSecretKey,
        CLERK_WEBHOOK_SECRET: clerkWebhookSecret,
      } as Record<string, string>,
    },
    {
      command: 'node fake-openai.mjs',
      url: `${fakeOpenAIURL}/healthz`,
      timeout: 30_000,
      reuseExistingServer: false,
      // Slow enough deltas to see the text stream in.
      env: { FAKE_OPENAI_PORT: '3105', FAKE_OPENAI_API_KEY: 'sk-e2e', FAKE_OPENAI_DELAY_MS: '120' },
    },
    {
      command: server,
      cwd: '..',
      url: `${modelAppURL}/readyz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
      env: {
        ...process.env,
        PORT: '3106',
        HOST: '127.0.0.1',
        TLDW_DATA_DIR: `${dataDir}-model`,
        TLDW_YOUTUBE_BASE_URL: fakeYouTubeURL,
        OPENAI_API_KEY: 'sk-e2e',
        OPENAI_BASE_URL: `${fakeOpenAIURL}/v1`,
        // One attempt per call, so a failure shows at once.
        OPENAI_MAX_RETRIES: '0',
        TLDW_FAILURE_COOLDOWN_SECONDS: String(modelFailureCooldownSeconds),
      } as Record<string, string>,
    },
  ],
});
