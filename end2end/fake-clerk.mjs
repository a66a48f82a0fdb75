// A stand-in for Clerk, for end-to-end tests (see ../shared/reference/clerk.md):
// - Frontend API: a JWKS, and RS256 session tokens shaped like Clerk's v2
//   tokens, minted on request (GET /token?sub=&org=&slug=&role=&email=; an
//   email makes the user known to the Backend API). Keys are made at start-up.
// - Backend API: GET /v1/users/{id} behind `Authorization: Bearer <secret key>`,
//   answering Clerk's User object (or Clerk's error envelope).
// - Webhooks: GET /send-webhook?type=&user=&org=&role= signs an event as Svix
//   does (svix-id, svix-timestamp, svix-signature) and posts it to the app,
//   answering with the app's status and body.
import { createServer } from 'node:http';
import { createHmac, generateKeyPairSync, randomUUID, sign } from 'node:crypto';

const port = Number(process.env.FAKE_CLERK_PORT ?? 3102);
const issuer = `http://127.0.0.1:${port}`;
const azp = process.env.FAKE_CLERK_AZP ?? 'http://127.0.0.1:3101';
const kid = 'ins_e2e_test_key';
const secretKey = process.env.FAKE_CLERK_SECRET_KEY ?? 'sk_test_e2e_clerk';
const webhookURL = process.env.FAKE_CLERK_WEBHOOK_URL ?? 'http://127.0.0.1:3101/webhooks/clerk';
const webhookSecret = process.env.FAKE_CLERK_WEBHOOK_SECRET ?? 'whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=';
// Backend API users by id, learned from /token?email=.
const users = new Map();
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

const b64url = (value) => Buffer.from(value).toString('base64url');

function mint({ sub, org, slug, role }) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid, cat: 'cl_B7d4PD111AAA', oiat: now };
  const claims = { iss: issuer, azp, sub, sid: `sess_${randomUUID()}`, iat: now, nbf: now - 5, exp: now + 60, v: 2 };
  if (org) claims.o = { id: org, slg: slug ?? org, rol: role ?? 'member' };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
}

function user(id, email) {
  const now = Date.now();
  return {
    id, object: 'user', username: null, first_name: null, last_name: null,
    image_url: 'https://img.clerk.com/e2e', has_image: false,
    primary_email_address_id: `idn_${id}`, primary_phone_number_id: null, primary_web3_wallet_id: null,
    email_addresses: [{
      id: `idn_${id}`, object: 'email_address', email_address: email, reserved: false,
      verification: { status: 'verified', strategy: 'email_code', attempts: 1, expire_at: now + 600_000 },
      linked_to: [],
    }],
    phone_numbers: [], web3_wallets: [], external_accounts: [],
    public_metadata: {}, private_metadata: {}, unsafe_metadata: {}, external_id: null,
    banned: false, locked: false, created_at: now, updated_at: now, last_sign_in_at: now,
  };
}

function clerkError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message, long_message: message, meta: {} }] }));
}

// Svix: HMAC-SHA256 over "{id}.{timestamp}.{body}", keyed with the secret's
// base64 part, sent as "v1,<base64>".
async function sendWebhook({ type, user: userId, org, role }) {
  const id = `msg_${randomUUID().replaceAll('-', '')}`;
  const timestamp = Math.floor(Date.now() / 1000);
  let data;
  if (type === 'user.deleted') {
    data = { id: userId, object: 'user', deleted: true };
  } else {
    data = {
      id: `orgmem_${randomUUID()}`, object: 'organization_membership', role: role ?? 'org:member',
      permissions: [], public_metadata: {}, private_metadata: {}, created_at: Date.now(), updated_at: Date.now(),
      organization: { id: org, object: 'organization', name: org, slug: org, created_at: Date.now(), updated_at: Date.now() },
      public_user_data: { user_id: userId, identifier: `${userId}@example.com`, first_name: null, last_name: null, image_url: '', has_image: false },
    };
  }
  const body = JSON.stringify({ data, object: 'event', type, timestamp: Date.now(), instance_id: 'ins_e2e' });
  const key = Buffer.from(webhookSecret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  const response = await fetch(webhookURL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'svix-id': id, 'svix-timestamp': `${timestamp}`, 'svix-signature': `v1,${signature}` },
    body,
  });
  return { status: response.status, body: await response.text() };
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  const userPath = url.pathname.match(/^\/v1\/users\/([A-Za-z0-9_]+)$/);
  if (userPath) {
    if (req.headers.authorization !== `Bearer ${secretKey}`) {
      clerkError(res, 401, 'authentication_invalid', 'Unauthorized request');
    } else if (!users.has(userPath[1])) {
      clerkError(res, 404, 'resource_not_found', 'Resource not found');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(users.get(userPath[1])));
    }
  } else if (url.pathname === '/send-webhook') {
    const answer = await sendWebhook(Object.fromEntries(url.searchParams));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  } else if (url.pathname === '/.well-known/jwks.json') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  } else if (url.pathname === '/token') {
    const q = Object.fromEntries(url.searchParams);
    if (q.email) users.set(q.sub, user(q.sub, q.email));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(mint(q));
  } else if (url.pathname === '/healthz') {
    res.writeHead(200);
    res.end('ok');
  } else {
    res.writeHead(404);
    res.end();
  }
}).listen(port, '127.0.0.1', () => console.log(`fake Clerk at ${issuer}`));


// Node closes idle keep-alive sockets after 5 s; a test's next request

// can race that close and die with ECONNRESET. Keep them open instead.

server.keepAliveTimeout = 120_000;

server.headersTimeout = 121_000;