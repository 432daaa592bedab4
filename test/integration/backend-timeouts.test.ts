/*
 * Integration: backends that accept but never greet, or greet and then stall
 * the XCLIENT dialogue. The handshake timeout turns both into a 421 for the
 * client and BACKEND FAIL, within the configured time. A backend that ends
 * its side mid-handshake gives the same 421 at once, not after the timeout.
 * The backend probe (server/backend-health.ts) connects too, at start: each test
 * waits for its first answer and counts the backend connections after it; the
 * session's BACKEND FAIL is the one without `probe: true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startScreener, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

async function backend(onConn: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[]; closed: () => number }> {
  const sockets: Socket[] = [];
  let closed = 0;
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.on('close', () => closed++);
    s.resume(); // read (and drop) what the screener sends, so its FIN is seen
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port, sockets, closed: () => closed };
}

/** The probe's first answer (it connects at start): BACKEND OK, or BACKEND FAIL with probe: true. */
async function probed(s: ScreenerProc): Promise<void> {
  await s.waitForEvent((e) => e['event'] === 'BACKEND OK' || (e['event'] === 'BACKEND FAIL' && e['probe'] === true), 15_000);
}

const sessionFail = (e: Record<string, unknown>): boolean => e['event'] === 'BACKEND FAIL' && e['probe'] !== true;

const cases: Array<{ label: string; onConn: (s: Socket) => void; stage: string }> = [
  { label: 'silent backend: no greeting', onConn: () => undefined, stage: 'greeting' },
  { label: 'backend greets, then never answers XCLIENT', onConn: (s) => s.write('220 stalled.test ESMTP\r\n'), stage: 'xclient' },
  { label: 'backend greets with garbage', onConn: (s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'), stage: 'greeting' },
];

for (const c of cases) {
  test(`handshake timeout: ${c.label} → 421 and BACKEND FAIL at ${c.stage}`, async () => {
    const b = await backend(c.onConn);
    const s = await startScreener({
      hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '200ms' },
      backend: { address: `127.0.0.1:${b.port}`, handoff: 'xclient', connect_timeout: '1s', handshake_timeout: '700ms' },
    });
    try {
      await probed(s);
      const conns = b.sockets.length;
      const client = await connectClient('127.0.0.1', Number(s.listen[0]?.split(':').pop()), '127.0.9.1');
      const t0 = Date.now();
      await client.closed;
      const took = Date.now() - t0;
      assert.match(client.received(), /^220-screen\.test ESMTP\r\n421 4\.3\.2 Service currently unavailable\r\n$/);
      const f = await s.waitForEvent(sessionFail);
      assert.equal(f['stage'], c.stage);
      if (c.label.startsWith('backend greets with garbage')) assert.match(String(f['reason']), /^malformed reply/);
      else {
        assert.equal(f['reason'], 'timeout');
        assert.ok(took >= 700 && took < 7000, `closed after ${took} ms (wait 200 ms + handshake 700 ms)`);
      }
      assert.equal(b.sockets.length - conns, 1, 'one backend connection for the client');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(b.closed(), b.sockets.length, 'the screener closed its backend connections (the probe\'s and the client\'s)');
    } finally {
      await s.stop();
      b.server.close();
      for (const x of b.sockets) x.destroy();
    }
  });
}

/*
 * A backend that reads the handshake and then ends its side (FIN) must not
 * leave the client waiting for handshake_timeout: its end is a BACKEND FAIL
 * (reason `closed`) and the client's 421 at once.
 */
const closers: Array<{ label: string; handoff: 'xclient' | 'proxy-v1'; stage: string; onConn: (s: Socket) => void }> = [
  {
    label: 'greets, reads XCLIENT, then ends',
    handoff: 'xclient',
    stage: 'xclient',
    onConn: (s) => {
      s.write('220 closer.test ESMTP\r\n');
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n')) s.end();
      });
    },
  },
  {
    label: 'reads the PROXY header, then ends without a greeting',
    handoff: 'proxy-v1',
    stage: 'greeting',
    onConn: (s) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n')) s.end();
      });
    },
  },
];

for (const c of closers) {
  test(`backend that ${c.label} → 421 at once, BACKEND FAIL closed at ${c.stage}`, async (t) => {
    const b = await backend(c.onConn);
    const s = await startScreener({
      hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '200ms' },
      backend: { address: `127.0.0.1:${b.port}`, handoff: c.handoff, connect_timeout: '1s', handshake_timeout: '10s' },
    });
    try {
      await probed(s);
      const client = await connectClient('127.0.0.1', Number(s.listen[0]?.split(':').pop()), '127.0.9.2');
      await client.readUntil(/^220-screen\.test ESMTP\r\n/, 5000);
      const t0 = Date.now();
      await client.closed;
      const took = Date.now() - t0;
      assert.match(client.received(), /^220-screen\.test ESMTP\r\n421 4\.3\.2 Service currently unavailable\r\n$/);
      // After the 200 ms greet wait the backend's end arrives within a loopback round trip; 1 s is generous.
      assert.ok(took < 1000, `client closed after ${took} ms (handshake_timeout 10 s)`);
      t.diagnostic(`421 and close ${took} ms after the teaser (greet wait 200 ms, handshake_timeout 10 s)`);
      const f = await s.waitForEvent(sessionFail);
      assert.equal(f['stage'], c.stage);
      assert.equal(f['reason'], 'closed');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(b.closed(), b.sockets.length, 'the screener closed its backend connections (the probe\'s and the client\'s)');
    } finally {
      await s.stop();
      b.server.close();
      for (const x of b.sockets) x.destroy();
    }
  });
}
