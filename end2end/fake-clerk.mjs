// A stand-in for Clerk's Frontend API, for end-to-end tests: it serves a JWKS
// and mints RS256 session tokens shaped like Clerk's v2 tokens
// (see ../shared/reference/clerk.md). Keys are generated at start-up.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

const port = Number(process.env.FAKE_CLERK_PORT ?? 3102);
const issuer = `http://127.0.0.1:${port}`;
const azp = process.env.FAKE_CLERK_AZP ?? 'http://127.0.0.1:3101';
const kid = 'ins_e2e_test_key';
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

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/.well-known/jwks.json') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  } else if (url.pathname === '/token') {
    const q = Object.fromEntries(url.searchParams);
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