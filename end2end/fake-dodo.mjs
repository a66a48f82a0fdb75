// A stand-in for Dodo Payments, for end-to-end tests: the API calls tldw makes
// (customers, checkouts, subscriptions, change-plan, customer portal sessions), a hosted
// checkout page, a customer portal, and webhooks signed the Standard Webhooks
// way, like Dodo's (see ../shared/reference/dodo-payments.md). State lives in
// memory. Tests steer deliveries (duplicates, reordering, delays, bad
// signatures) and drive renewals and status changes through /_control/*.
import { createServer } from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const port = Number(process.env.FAKE_DODO_PORT ?? 3104);
const origin = `http://127.0.0.1:${port}`;
const apiKey = process.env.FAKE_DODO_API_KEY ?? 'dodo_test_key';
const webhookUrl = process.env.FAKE_DODO_WEBHOOK_URL;
const webhookSecret = process.env.FAKE_DODO_WEBHOOK_SECRET ?? 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const prices = Object.fromEntries(
  (process.env.FAKE_DODO_PRICES ?? '')
    .split(',')
    .filter((pair) => pair.includes('='))
    .map((pair) => pair.split('=').map((s) => s.trim()))
    .map(([id, minor]) => [id, Number(minor)]),
);
const priceOf = (productId) => prices[productId] ?? 1000;
const DAY_MS = 86_400_000;
const RETRY_DELAYS_MS = [200, 400, 800, 1600, 3200];
const STATUS_EVENTS = ['active', 'on_hold', 'cancelled', 'failed', 'expired', 'paused'];
const PRORATION_MODES = ['prorated_immediately', 'full_immediately', 'difference_immediately', 'do_not_bill'];

// Standard Webhooks: v1,base64(HMAC-SHA256(base64-decoded secret, "id.timestamp.body")).
export function sign(secret, id, timestamp, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}

const newId = (prefix) => `${prefix}_${randomBytes(10).toString('hex')}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sessions = new Map();
const customers = new Map();
const subscriptions = new Map();
const deliveries = [];
const noKnobs = { duplicate: false, reorder: false, delay_ms: 0, fail_first: 0 };
let knobs = { ...noKnobs };

// Events: the envelope (and so the data) is frozen when the event is made;
// timestamps strictly increase, even within one millisecond.
let lastEventMs = 0;
function event(type, payloadType, object) {
  lastEventMs = Math.max(Date.now(), lastEventMs + 1);
  const timestamp = new Date(lastEventMs).toISOString();
  const envelope = { business_id: 'bus_fake', type, timestamp, data: { payload_type: payloadType, ...object } };
  return { id: newId('msg'), type, body: Buffer.from(JSON.stringify(envelope)) };
}

async function attempt(ev, n, badSignature) {
  const ts = Math.floor(Date.now() / 1000);
  const signature = badSignature ? sign(webhookSecret, ev.id, ts, 'not the body') : sign(webhookSecret, ev.id, ts, ev.body);
  const started = Date.now();
  let status = 0;
  try {
    const res = await fetch(webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': ev.id, 'webhook-timestamp': String(ts), 'webhook-signature': signature },
      body: ev.body,
      signal: AbortSignal.timeout(15_000),
    });
    status = res.status;
    await res.arrayBuffer();
  } catch (err) {
    if (!status) console.log(`webhook ${ev.type} ${ev.id}: ${err.cause?.code ?? err.name}`);
  }
  const ms = Date.now() - started;
  deliveries.push({ webhook_id: ev.id, type: ev.type, attempt: n, status, ms });
  console.log(`webhook ${ev.type} ${ev.id} attempt ${n}${badSignature ? ' (bad signature)' : ''} -> ${status} in ${ms}ms`);
  return status;
}

async function deliver(ev, k) {
  for (let n = 1; n <= RETRY_DELAYS_MS.length + 1; n++) {
    const status = await attempt(ev, n, n <= k.fail_first);
    if (status >= 200 && status < 300) return;
    if (n <= RETRY_DELAYS_MS.length) await sleep(RETRY_DELAYS_MS[n - 1]);
  }
  console.log(`webhook ${ev.type} ${ev.id}: gave up`);
}

// Delivers one action's events in order (reversed with `reorder`), each to
// completion before the next; `duplicate` sends two copies concurrently.
async function dispatch(events, k = knobs) {
  if (!webhookUrl) return console.log(`no FAKE_DODO_WEBHOOK_URL: dropped ${events.map((e) => e.type).join(', ')}`);
  if (k.delay_ms > 0) await sleep(k.delay_ms);
  for (const ev of k.reorder ? [...events].reverse() : events) {
    await Promise.all(Array.from({ length: k.duplicate ? 2 : 1 }, () => deliver(ev, k)));
  }
}
const later = (events, k) => setImmediate(() => dispatch(events, k).catch((err) => console.error(err)));
const subscriptionEvent = (type, sub) => event(type, 'Subscription', sub);

function newSubscription(session, customer) {
  const now = new Date();
  const { product_id, quantity } = session.product_cart[0];
  return {
    subscription_id: newId('sub'), status: 'active', product_id, quantity,
    customer: { ...customer }, metadata: { ...session.metadata },
    previous_billing_date: now.toISOString(), next_billing_date: new Date(+now + 30 * DAY_MS).toISOString(),
    cancel_at_next_billing_date: false, created_at: now.toISOString(), currency: 'USD',
    recurring_pre_tax_amount: priceOf(product_id) * quantity, tax_inclusive: false,
    payment_frequency_count: 1, payment_frequency_interval: 'Month',
    subscription_period_count: 1, subscription_period_interval: 'Month',
    trial_period_days: 0, on_demand: false, billing: { country: 'US' }, addons: [], meters: [],
    cancelled_at: null, expires_at: null,
  };
}

const newPayment = (sub, checkoutSessionId) => ({
  payment_id: newId('pay'), status: 'succeeded', total_amount: sub.recurring_pre_tax_amount, currency: 'USD',
  customer: { ...sub.customer }, subscription_id: sub.subscription_id, checkout_session_id: checkoutSessionId,
  metadata: { ...sub.metadata }, created_at: new Date().toISOString(), error_code: null, error_message: null,
});

function customerFor(session, form) {
  if (session.customer?.customer_id) return customers.get(session.customer.customer_id);
  const email = (session.customer?.email || form.get('email') || 'buyer@example.com').trim();
  const known = [...customers.values()].find((c) => c.email.toLowerCase() === email.toLowerCase());
  if (known) return known;
  const customer = { customer_id: newId('cus'), email, name: session.customer?.name || email.split('@')[0] };
  customers.set(customer.customer_id, customer);
  return customer;
}

function isHttpUrl(value) {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

// Appends the params without re-encoding the existing query or losing a #fragment.
function withQuery(url, params) {
  const [base, ...hash] = url.split('#');
  const sep = !base.includes('?') ? '?' : /[?&]$/.test(base) ? '' : '&';
  return `${base}${sep}${new URLSearchParams(params)}${hash.length ? `#${hash.join('#')}` : ''}`;
}

function checkoutProblem(b) {
  if (!Array.isArray(b.product_cart) || b.product_cart.length === 0) return 'product_cart must be a non-empty array';
  if (b.product_cart.some((i) => typeof i?.product_id !== 'string' || !Number.isInteger(i.quantity) || i.quantity < 1)) {
    return 'each product_cart item needs a product_id and an integer quantity >= 1';
  }
  if (typeof b.return_url !== 'string' || !isHttpUrl(b.return_url)) return 'return_url must be an http(s) URL';
  const m = b.metadata;
  if (m != null && (typeof m !== 'object' || Array.isArray(m) || Object.values(m).some((v) => typeof v !== 'string'))) {
    return 'metadata must be a map of strings';
  }
  if (b.customer != null && typeof b.customer?.customer_id !== 'string' && typeof b.customer?.email !== 'string') {
    return 'customer needs a customer_id or an email';
  }
  return null;
}

function knobsProblem(b) {
  for (const name of ['duplicate', 'reorder']) if (name in b && typeof b[name] !== 'boolean') return `${name} must be a boolean`;
  for (const name of ['delay_ms', 'fail_first']) {
    if (name in b && !(Number.isFinite(b[name]) && b[name] >= 0)) return `${name} must be a number >= 0`;
  }
  return null;
}

function formKnobs(form) {
  const k = { ...knobs };
  if (form.has('duplicate')) k.duplicate = true;
  if (form.has('reorder')) k.reorder = true;
  if (form.get('delay_ms')) k.delay_ms = Math.max(0, Number(form.get('delay_ms')) || 0);
  if (form.get('fail_first')) k.fail_first = Math.max(0, Number(form.get('fail_first')) || 0);
  return k;
}

// HTML pages.
const esc = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const money = (minor) => `$${(minor / 100).toFixed(2)}`;
const css = `
body{margin:0;background:#f4f5f7;color:#1d2230;font:16px/1.5 system-ui,sans-serif}
main{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}
.brand{margin:0;color:#5b6275;font-size:.875rem}h1{margin:.25rem 0 1.5rem;font-size:1.5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:#5b6275}dd{margin:0}
fieldset{margin:1.5rem 0;border:1px solid #d5d8e0;border-radius:8px}legend{color:#5b6275}
fieldset label{display:block;margin:.25rem 0}input[type=number],input[type=email]{padding:.3rem;font:inherit;width:8rem}
input[type=email]{width:100%}table{width:100%;border-collapse:collapse;margin-bottom:1rem}
th,td{text-align:left;padding:.5rem .25rem;border-bottom:1px solid #e3e5ea;vertical-align:top}
button{padding:.6rem 1.2rem;border:0;border-radius:8px;background:#2453d4;color:#fff;font:inherit;cursor:pointer}
button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
td button{padding:.3rem .7rem;background:#b3261e}a{color:#2453d4}`;

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${css}</style></head>
<body><main><p class="brand">Dodo Payments · test mode</p><h1>${esc(title)}</h1>${body}</main></body></html>`);
}

function checkoutPage(res, session) {
  const customer = session.customer?.customer_id ? customers.get(session.customer.customer_id) : session.customer;
  const items = session.product_cart
    .map((i) => `<dt>Product</dt><dd>${esc(i.product_id)}</dd><dt>Quantity</dt><dd>${i.quantity}</dd>
<dt>Price</dt><dd>${money(priceOf(i.product_id) * i.quantity)} / month</dd>`)
    .join('');
  const email = customer?.email
    ? `<dt>Email</dt><dd>${esc(customer.email)}</dd>`
    : '';
  const emailField = customer?.email ? '' : '<label for="email">Email</label><input id="email" name="email" type="email" required>';
  const form = session.paid
    ? '<p role="status">This checkout has already been paid.</p>'
    : `<form method="post" action="/session/${esc(session.session_id)}/pay">${emailField}
<fieldset><legend>Test webhook delivery</legend>
<label><input type="checkbox" name="duplicate"> Deliver each webhook twice</label>
<label><input type="checkbox" name="reorder"> Deliver webhooks in reverse order</label>
<label for="delay_ms">Delay before delivery (ms)</label><input id="delay_ms" name="delay_ms" type="number" min="0">
<label for="fail_first">Bad signatures before a good one</label><input id="fail_first" name="fail_first" type="number" min="0">
</fieldset><button type="submit">Pay now</button></form>`;
  page(res, 200, 'Dodo Payments — test checkout', `<dl>${items}${email}</dl>${form}`);
}

function portalPage(res, customer, returnUrl) {
  const hidden = returnUrl ? `<input type="hidden" name="return_url" value="${esc(returnUrl)}">` : '';
  const rows = [...subscriptions.values()]
    .filter((s) => s.customer.customer_id === customer.customer_id)
    .map((s) => {
      const action = s.status === 'active' && !s.cancel_at_next_billing_date
        ? `<form method="post" action="/portal/${esc(customer.customer_id)}/cancel">
<input type="hidden" name="subscription_id" value="${esc(s.subscription_id)}">${hidden}<button type="submit">Cancel at period end</button></form>`
        : '';
      return `<tr><td>${esc(s.product_id)}</td><td>${esc(s.status)}</td><td>${esc(s.next_billing_date.slice(0, 10))}</td>
<td>${s.cancel_at_next_billing_date ? 'Yes' : 'No'}</td><td>${action}</td></tr>`;
    });
  const table = rows.length
    ? `<table><caption hidden>Subscriptions</caption><thead><tr><th scope="col">Product</th><th scope="col">Status</th>
<th scope="col">Period ends</th><th scope="col">Cancels at period end</th><th scope="col"><span hidden>Actions</span></th></tr></thead>
<tbody>${rows.join('')}</tbody></table>`
    : '<p>No subscriptions.</p>';
  const back = isHttpUrl(returnUrl) ? `<p><a href="${esc(returnUrl)}">Return to tldw</a></p>` : '';
  page(res, 200, 'Customer portal', `<p>${esc(customer.email)}</p>${table}${back}`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

async function readJson(req) {
  const text = await readBody(req);
  if (!text.trim()) return {};
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function handle(req, res) {
  const url = new URL(req.url, origin);
  const path = url.pathname;
  const post = req.method === 'POST';
  const get = req.method === 'GET';
  const json = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const fail = (status, code, message) => json(status, { code, message });
  const redirect = (location) => {
    res.writeHead(303, { location });
    res.end();
  };
  let m;

  if (get && path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('ok');
  }

  // The API: bearer auth on every call.
  if (/^\/(checkouts|subscriptions|customers)(\/|$)/.test(path)) {
    if (req.headers.authorization !== `Bearer ${apiKey}`) return fail(401, 'UNAUTHORIZED', 'missing or invalid API key');
    // POST /customers: email and name are required; a new customer every
    // time (tldw makes one per org and passes it to checkouts by id).
    if (post && path === '/customers') {
      const b = await readJson(req);
      if (!b || typeof b.email !== 'string' || !b.email.includes('@') || typeof b.name !== 'string' || !b.name) {
        return fail(422, 'INVALID_REQUEST_BODY', 'email and name are required');
      }
      const customer = {
        business_id: 'bus_fake', created_at: new Date().toISOString(), customer_id: newId('cus'),
        email: b.email, name: b.name, metadata: b.metadata ?? {}, phone_number: b.phone_number ?? null,
      };
      customers.set(customer.customer_id, customer);
      return json(200, customer);
    }
    if (post && path === '/checkouts') {
      const b = await readJson(req);
      if (!b) return fail(422, 'INVALID_REQUEST_BODY', 'body must be a JSON object');
      const problem = checkoutProblem(b);
      if (problem) return fail(422, 'INVALID_REQUEST_BODY', problem);
      if (b.customer?.customer_id && !customers.has(b.customer.customer_id)) return fail(404, 'NOT_FOUND', 'customer not found');
      const session = { session_id: newId('cks'), product_cart: b.product_cart, customer: b.customer ?? null, return_url: b.return_url, metadata: b.metadata ?? {}, paid: false };
      sessions.set(session.session_id, session);
      return json(200, { session_id: session.session_id, checkout_url: `${origin}/session/${session.session_id}` });
    }
    if (get && (m = path.match(/^\/subscriptions\/([^/]+)$/))) {
      const sub = subscriptions.get(m[1]);
      return sub ? json(200, sub) : fail(404, 'NOT_FOUND', 'subscription not found');
    }
    if (post && (m = path.match(/^\/subscriptions\/([^/]+)\/change-plan$/))) {
      const sub = subscriptions.get(m[1]);
      if (!sub) return fail(404, 'NOT_FOUND', 'subscription not found');
      const b = await readJson(req);
      if (!b || typeof b.product_id !== 'string' || !Number.isInteger(b.quantity) || b.quantity < 1 || !PRORATION_MODES.includes(b.proration_billing_mode)) {
        return fail(422, 'INVALID_REQUEST_BODY', 'product_id, quantity (>= 1) and proration_billing_mode are required');
      }
      Object.assign(sub, { product_id: b.product_id, quantity: b.quantity, recurring_pre_tax_amount: priceOf(b.product_id) * b.quantity });
      later([subscriptionEvent('subscription.plan_changed', sub)]);
      res.writeHead(200);
      return res.end();
    }
    if (post && (m = path.match(/^\/customers\/([^/]+)\/customer-portal\/session$/))) {
      if (!customers.has(m[1])) return fail(404, 'NOT_FOUND', 'customer not found');
      const returnUrl = url.searchParams.get('return_url');
      const query = returnUrl ? `?return_url=${encodeURIComponent(returnUrl)}` : '';
      return json(200, { link: `${origin}/portal/${m[1]}${query}` });
    }
    return fail(404, 'NOT_FOUND', `no route for ${req.method} ${path}`);
  }

  // The hosted checkout.
  if ((m = path.match(/^\/session\/([^/]+)(\/pay)?$/))) {
    const session = sessions.get(m[1]);
    if (!session) return page(res, 404, 'Checkout not found', '<p>This checkout session does not exist.</p>');
    if (get && !m[2]) return checkoutPage(res, session);
    if (post && m[2]) {
      const form = new URLSearchParams(await readBody(req));
      if (session.paid) return page(res, 409, 'Already paid', '<p>This checkout session has already been paid.</p>');
      session.paid = true;
      const sub = newSubscription(session, customerFor(session, form));
      subscriptions.set(sub.subscription_id, sub);
      const payment = newPayment(sub, session.session_id);
      const events = [subscriptionEvent('subscription.active', sub), event('payment.succeeded', 'Payment', payment)];
      redirect(withQuery(session.return_url, { subscription_id: sub.subscription_id, status: 'active' }));
      return later(events, formKnobs(form));
    }
  }

  // The customer portal.
  if ((m = path.match(/^\/portal\/([^/]+)(\/cancel)?$/))) {
    const customer = customers.get(m[1]);
    if (!customer) return page(res, 404, 'Customer not found', '<p>This customer does not exist.</p>');
    if (get && !m[2]) return portalPage(res, customer, url.searchParams.get('return_url'));
    if (post && m[2]) {
      const form = new URLSearchParams(await readBody(req));
      const sub = subscriptions.get(form.get('subscription_id'));
      if (!sub || sub.customer.customer_id !== customer.customer_id) {
        return page(res, 404, 'Subscription not found', '<p>This subscription does not exist.</p>');
      }
      sub.cancel_at_next_billing_date = true;
      later([subscriptionEvent('subscription.cancelled', sub)]);
      const returnUrl = form.get('return_url');
      return redirect(`/portal/${customer.customer_id}${returnUrl ? `?return_url=${encodeURIComponent(returnUrl)}` : ''}`);
    }
  }

  // Test controls.
  if (path === '/_control/knobs') {
    if (get) return json(200, knobs);
    if (post) {
      const b = await readJson(req);
      const problem = b ? knobsProblem(b) : 'body must be a JSON object';
      if (problem) return fail(422, 'INVALID_REQUEST_BODY', problem);
      knobs = { ...noKnobs, ...b };
      return json(200, knobs);
    }
  }
  if (get && path === '/_control/deliveries') return json(200, deliveries);
  if (post && (m = path.match(/^\/_control\/subscriptions\/([^/]+)\/(renew|status)$/))) {
    const sub = subscriptions.get(m[1]);
    if (!sub) return fail(404, 'NOT_FOUND', 'subscription not found');
    if (m[2] === 'renew') {
      sub.previous_billing_date = sub.next_billing_date;
      sub.next_billing_date = new Date(Date.parse(sub.next_billing_date) + 30 * DAY_MS).toISOString();
      later([subscriptionEvent('subscription.renewed', sub), event('payment.succeeded', 'Payment', newPayment(sub, null))]);
      return json(200, sub);
    }
    const b = await readJson(req);
    if (!b || !STATUS_EVENTS.includes(b.status)) return fail(422, 'INVALID_REQUEST_BODY', `status must be one of ${STATUS_EVENTS.join(', ')}`);
    sub.status = b.status;
    if (b.status === 'cancelled') Object.assign(sub, { cancelled_at: new Date().toISOString(), cancel_at_next_billing_date: false });
    later([subscriptionEvent(`subscription.${b.status}`, sub)]);
    return json(200, sub);
  }
  fail(404, 'NOT_FOUND', `no route for ${req.method} ${path}`);
}

// Serve only when run directly, so a check can import sign().
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'INTERNAL_SERVER_ERROR', message: String(err) }));
    });
  }).listen(port, '127.0.0.1', () => console.log(`fake Dodo Payments at ${origin}`));
  // Node closes idle keep-alive sockets after 5 s; a test's next request
  // can race that close and die with ECONNRESET. Keep them open instead.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
}
