// A minimal SMTP server (RFC 5321 happy path) for end-to-end tests: the
// main server mails account links through it, and the specs read them from
// a JSON-lines mailbox file (one {to, subject, body} per message), as a
// person would read their inbox. Bodies are decoded from quoted-printable.
import { createServer } from 'node:net';
import { appendFileSync, writeFileSync } from 'node:fs';

const port = Number(process.env.FAKE_SMTP_PORT ?? 3108);
const mailbox = process.env.FAKE_SMTP_MAILBOX ?? '/tmp/tldw-e2e-mailbox.jsonl';
writeFileSync(mailbox, '');

function decodeQuotedPrintable(text) {
  const joined = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined.slice(i + 1, i + 3);
    if (joined[i] === '=' && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i]));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function store(data) {
  const [head, ...rest] = data.split('\n\n');
  const header = (name) =>
    head.split('\n').find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? '';
  const raw = rest.join('\n\n');
  const body = /quoted-printable/i.test(header('content-transfer-encoding')) ? decodeQuotedPrintable(raw) : raw;
  appendFileSync(mailbox, JSON.stringify({ to: header('to'), subject: header('subject'), body }) + '\n');
}

createServer((socket) => {
  socket.setEncoding('utf8');
  socket.write('220 fake.smtp ESMTP ready\r\n');
  let buffer = '';
  let data = null;
  socket.on('data', (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (data !== null) {
        if (line === '.') {
          store(data);
          data = null;
          socket.write('250 2.0.0 queued\r\n');
        } else {
          data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
        }
        continue;
      }
      const verb = line.split(' ')[0].toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') socket.write('250-fake.smtp\r\n250 8BITMIME\r\n');
      else if (verb === 'DATA') {
        data = '';
        socket.write('354 end with <CRLF>.<CRLF>\r\n');
      } else if (verb === 'QUIT') {
        socket.end('221 bye\r\n');
      } else socket.write('250 ok\r\n');
    }
  });
  socket.on('error', () => {});
}).listen(port, '127.0.0.1');
