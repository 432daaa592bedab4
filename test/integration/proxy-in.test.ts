/*
 * Integration: limits.proxy_timeout is the time allowed for the whole PROXY
 * header, counted from accept. A trusted peer that trickles its header one
 * byte at a time is closed (PROXY FAIL, reason timeout) once that time is up,
 * however often it sends; a header that did arrive in time stops the timer,
 * so the session that follows is not cut by it. No backend is involved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portOf, withScreener } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

const HEADER = 'PROXY TCP4 127.0.9.9 127.0.0.1 1234 25\r\n';

function cfg(proxyTimeout: string, wait: string): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: [{ address: '127.0.0.1:0', proxy_protocol: 'v1', trusted_proxies: ['127.0.0.0/8'] }],
    // Nothing listens there: no handoff is reached in the first test, and the second only needs the session to live.
    backend: { address: '127.0.0.1:9', handoff: 'xclient', connect_timeout: '1s' },
    pregreet: { wait },
    limits: { proxy_timeout: proxyTimeout },
  };
}

test('PROXY header trickled one byte every proxy_timeout/3: closed with PROXY FAIL timeout after proxy_timeout', async () => {
  await withScreener(cfg('600ms', '1s'), async (s) => {
    const c = await connectClient('127.0.0.1', portOf(s), '127.0.0.1');
    const t0 = Date.now();
    let i = 0;
    // 40 bytes at 200 ms each would take 8 s: far longer than the 600 ms allowed.
    const trickle = setInterval(() => {
      if (i < HEADER.length) c.write(HEADER[i++] as string);
    }, 200);
    try {
      c.write(HEADER[i++] as string);
      await c.closed;
    } finally {
      clearInterval(trickle);
    }
    const took = Date.now() - t0;
    assert.ok(took >= 550 && took < 3000, `closed after ${took} ms (proxy_timeout 600 ms)`);
    assert.ok(i < HEADER.length, `the whole header (${i} bytes) was sent before the close`);
    assert.equal(c.received(), '');
    const f = await s.waitForEvent((e) => e['event'] === 'PROXY FAIL');
    assert.deepEqual([f['peer'], f['reason']], ['127.0.0.1', 'timeout']);
    assert.equal(s.eventsNamed('CONNECT').length, 0);
  });
});

test('PROXY header complete in time: the session outlives proxy_timeout', async () => {
  await withScreener(cfg('300ms', '1s'), async (s) => {
    const c = await connectClient('127.0.0.1', portOf(s), '127.0.0.1');
    c.write(HEADER);
    await c.readUntil(/^220-screen\.test ESMTP\r\n/, 5000);
    const conn = await s.waitForEvent((e) => e['event'] === 'CONNECT');
    assert.equal(conn['client'], '127.0.9.9');
    // The greet wait (1 s) is longer than proxy_timeout (300 ms): the session is still in it.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(c.peerEnded(), false, 'the session was cut during its greet wait');
    assert.equal(s.eventsNamed('PROXY FAIL').length, 0);
    c.destroy();
  });
});
