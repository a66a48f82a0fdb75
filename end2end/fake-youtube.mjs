// A stand-in for YouTube, for end-to-end tests: it answers the innertube
// flow with the real captured responses in tests/fixtures/youtube, for
// any video id. Ids starting with "noCap" have no captions.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const port = Number(process.env.FAKE_YOUTUBE_PORT ?? 3103);
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'fixtures', 'youtube');
const fixture = (name) => readFileSync(join(fixtures, name), 'utf8');

const server = createServer((req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  const send = (status, type, body) => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  if (url.pathname === '/watch') return send(200, 'text/html; charset=utf-8', fixture('youtube.html'));
  if (url.pathname === '/youtubei/v1/player' && req.method === 'POST') {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const videoId = JSON.parse(body || '{}').videoId ?? '';
      const name = videoId.startsWith('noCap') ? 'youtube_transcripts_disabled.innertube.json' : 'youtube.innertube.json';
      send(200, 'application/json', fixture(name));
    });
    return;
  }
  if (url.pathname === '/api/timedtext') return send(200, 'text/xml; charset=utf-8', fixture('transcript.xml'));
  if (url.pathname === '/oembed') {
    return send(200, 'application/json', JSON.stringify({ title: 'A video', author_name: 'A channel', thumbnail_url: 'https://i.ytimg.com/vi/x/hqdefault.jpg' }));
  }
  if (url.pathname === '/healthz') return send(200, 'text/plain', 'ok');
  send(404, 'text/plain', 'not found');
}).listen(port, '127.0.0.1', () => console.log(`fake YouTube at http://127.0.0.1:${port}`));


// Node closes idle keep-alive sockets after 5 s; a test's next request

// can race that close and die with ECONNRESET. Keep them open instead.

server.keepAliveTimeout = 120_000;

server.headersTimeout = 121_000;