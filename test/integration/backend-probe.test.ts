/*
 * Integration: the backend probe as the postmaster sees it in the log. A backend address where
 * nothing listens is BACKEND FAIL at warn at start (probe: true, the address, ECONNREFUSED,
 * when it is asked again), not only an info line per client; the screener still starts and
 * its clients get 421. A backend that answers is BACKEND OK at start. (The minute schedule and
 * the one-line recovery are test/server/backend-health.test.ts's, on mock timers.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../helpers/ports.js';
import { portOf, startScreener } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

function cfg(address: string): Record<string, unknown> {
  return { hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '100ms' }, backend: { address, handoff: 'xclient' } };
}

test('a backend nobody runs: BACKEND FAIL at warn at start with the address and the reason; clients get 421', async () => {
  const port = await freePort();
  const s = await startScreener(cfg(`127.0.0.1:${port}`));
  try {
    const f = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['probe'] === true, 15_000);
    assert.equal(f['level'], 40, 'warn');
    assert.equal(f['backend'], `127.0.0.1:${port}`);
    assert.equal(f['stage'], 'connect');
    assert.equal(f['reason'], 'ECONNREFUSED');
    assert.equal(f['retry_ms'], 60_000);
    const c = await connectClient('127.0.0.1', portOf(s), '127.0.72.1');
    await c.closed;
    assert.match(c.received(), /^220-screen\.test ESMTP\r\n421 4\.3\.2 Service currently unavailable\r\n$/);
    const sf = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['client'] === '127.0.72.1');
    assert.equal(sf['level'], 30, 'per client: info (the warn line is the probe\'s, once per outage)');
    assert.equal(s.events.filter((e) => e['event'] === 'BACKEND FAIL' && e['probe'] === true).length, 1, 'the outage logged once');
  } finally {
    await s.stop();
  }
});

test('a backend that answers: BACKEND OK at start', async () => {
  const s = await startScreener(cfg('sink:0'));
  try {
    const ok = await s.waitForEvent((e) => e['event'] === 'BACKEND OK' || (e['event'] === 'BACKEND FAIL' && e['probe'] === true), 15_000);
    assert.equal(ok['event'], 'BACKEND OK', JSON.stringify(ok));
    assert.equal(ok['mode'], 'xclient');
    assert.equal(ok['down_ms'], undefined, 'no outage before');
  } finally {
    await s.stop();
  }
});
