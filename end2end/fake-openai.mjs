// A stand-in for an OpenAI-compatible model server that answers in
// markdown only, like many local model servers and older models: it
// ignores `response_format` and writes
//
//   **TL;DR:** …
//
//   ## Key points
//
//   - [0:05] …
//   - (1:02) …
//   - 2:10 – …
//
// built from the transcript lines (`[123s] text`) in the user message, so
// every timestamp is one that occurs in the video. It streams the answer as
// chat.completion.chunk server-sent events (with a usage chunk when
// `stream_options.include_usage` is set), or answers one JSON completion
// when `stream` is false.
//
// Test controls: `POST /control {"fail": n, "status": 500}` makes the next n
// completions fail with that status; `GET /calls` counts completions asked
// for; `/healthz` is for Playwright.
import { createServer } from 'node:http';

const port = Number(process.env.FAKE_OPENAI_PORT ?? 3105);
const apiKey = process.env.FAKE_OPENAI_API_KEY ?? 'sk-e2e';
// Milliseconds between streamed deltas: slow enough to see the text arrive.
const delay = Number(process.env.FAKE_OPENAI_DELAY_MS ?? 40);

let calls = 0;
let failures = { left: 0, status: 500 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// The `[123s] text` lines of the prompt (transcript lines, or notes).
function timedLines(prompt) {
  const lines = [];
  for (const line of prompt.split('\n')) {
    const match = /^\s*\[(\d+)s\]\s+(.+?)\s*$/.exec(line);
    if (match && match[2]) lines.push({ at: Number(match[1]), text: match[2] });
  }
  return lines;
}

const sentence = (text) => {
  const t = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
};

// Three timestamp styles, in turn.
const bullet = [
  (at, text) => `- [${clock(at)}] ${text}`,
  (at, text) => `- (${clock(at)}) ${text}`,
  (at, text) => `- ${clock(at)} – ${text}`,
];

export function markdownAnswer(prompt) {
  const title = /^Title: (.*)$/m.exec(prompt)?.[1] ?? 'this video';
  const lines = timedLines(prompt).slice(0, 8);
  if (lines.length === 0) {
    return `**TL;DR:** ${title} has no transcript lines I could read.\n`;
  }
  const gist = lines.map((l) => l.text.replace(/[.!?]+$/, '')).slice(0, 2).join(', then ');
  const points = lines.map((l, i) => bullet[i % bullet.length](l.at, sentence(l.text)));
  return [
    `Here is a summary of "${title}".`,
    '',
    `**TL;DR:** ${sentence(gist)}`,
    '',
    '## Key points',
    '',
    ...points,
    '',
  ].join('\n');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function completions(req, res) {
  if (req.headers.authorization !== `Bearer ${apiKey}`) {
    return sendJson(res, 401, {
      error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
  }
  let request;
  try {
    request = JSON.parse(await readBody(req));
  } catch {
    return sendJson(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null } });
  }
  calls += 1;
  if (failures.left > 0) {
    failures.left -= 1;
    return sendJson(res, failures.status, {
      error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
    });
  }
  // `response_format` is ignored on purpose: the answer is markdown.
  const prompt = (request.messages ?? [])
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text ?? '').join('')))
    .join('\n');
  const answer = markdownAnswer(prompt);
  const id = `chatcmpl-e2e${calls}`;
  const created = Math.floor(Date.now() / 1000);
  const model = request.model ?? 'gpt-4o-mini';
  const usage = {
    prompt_tokens: Math.ceil(prompt.length / 4),
    completion_tokens: Math.ceil(answer.length / 4),
    total_tokens: Math.ceil(prompt.length / 4) + Math.ceil(answer.length / 4),
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };

  if (!request.stream) {
    return sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer, refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage,
    });
  }

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const chunk = (choices, extra = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_e2e', choices, usage: null, ...extra })}\n\n`;
  res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]));
  // A few words per delta, as models stream.
  const pieces = answer.match(/\S*\s*/g).filter(Boolean);
  for (let i = 0; i < pieces.length; i += 3) {
    if (res.destroyed) return;
    res.write(chunk([{ index: 0, delta: { content: pieces.slice(i, i + 3).join('') }, finish_reason: null, logprobs: null }]));
    await sleep(delay);
  }
  res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }]));
  if (request.stream_options?.include_usage) res.write(chunk([], { usage }));
  res.end('data: [DONE]\n\n');
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  try {
    if (url.pathname === '/healthz') return sendJson(res, 200, { ok: true });
    if (url.pathname === '/calls') return sendJson(res, 200, { calls });
    if (url.pathname === '/control' && req.method === 'POST') {
      const control = JSON.parse((await readBody(req)) || '{}');
      failures = { left: Number(control.fail ?? 0), status: Number(control.status ?? 500) };
      return sendJson(res, 200, { ok: true, ...failures });
    }
    if (url.pathname === '/v1/chat/completions' && req.method === 'POST') return await completions(req, res);
    sendJson(res, 404, { error: { message: `Unknown request URL: ${req.method} ${url.pathname}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } });
  } catch (error) {
    if (!res.headersSent) sendJson(res, 500, { error: { message: String(error), type: 'server_error', param: null, code: null } });
    else res.end();
  }
}).listen(port, '127.0.0.1', () => console.log(`fake OpenAI (markdown only) at http://127.0.0.1:${port}/v1`));


// Node closes idle keep-alive sockets after 5 s; a test's next request

// can race that close and die with ECONNRESET. Keep them open instead.

server.keepAliveTimeout = 120_000;

server.headersTimeout = 121_000;