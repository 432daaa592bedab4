/*
 * Screener.reload() and the policy check, in-process against a real policy service on loopback:
 * the check (its reply cache, breaker and connections) is kept when the policy section did not
 * change, replaced when it did (new connections ask the new URL), and the replaced one is closed;
 * close() closes the current one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startScreener } from '../../src/server/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { startPolicyServer } from '../helpers/policy-server.js';

test('reload keeps the policy check when its section is unchanged, replaces (and closes) it when the URL changes', async () => {
  const a = await startPolicyServer();
  const b = await startPolicyServer();
  a.answer = () => ({ action: 'permit', ttl: '1h' });
  b.answer = () => ({ action: 'permit' });
  const cfg = (url: string, wait: string) => parseConfigText([
    'hostname: screen.test', 'listen: ["127.0.0.1:0"]', 'backend: { address: "sink:0" }', 'limits: { max_per_client: 0 }',
    `pregreet: { wait: ${wait} }`, `policy: { url: "${url}", budget: 1s }`,
  ].join('\n'), 'test.yaml');
  const s = await startScreener(cfg(a.url, '3s'), { logger: pino({ level: 'silent' }) });
  try {
    const port = Number(s.addresses[0]?.split(':').pop());
    const greet = async (addr: string): Promise<void> => {
      const c = await connectClient('127.0.0.1', port, addr);
      await c.readUntil(/^220 sink\.invalid /m, 5000);
      c.destroy();
    };
    await greet('127.0.15.1');
    assert.equal(a.requests.length, 1);
    const first = s.ctx.gen.policy;
    assert.ok(first !== null);
    let r = await s.reload(() => cfg(a.url, '4s'));
    assert.equal(r.ok, true);
    assert.equal(s.ctx.gen.policy, first, 'kept: the policy section did not change');
    // The permit's ttl: its passes answer the same client (PASS OLD), not the service.
    await greet('127.0.15.1');
    assert.equal(a.requests.length, 1);
    r = await s.reload(() => cfg(b.url, '4s'));
    assert.deepEqual([r.ok, r.changed], [true, ['policy.url']]);
    assert.notEqual(s.ctx.gen.policy, first);
    await greet('127.0.15.2');
    assert.deepEqual([a.requests.length, b.requests.length], [1, 1], 'new connections ask the new service');
    // The replaced check was closed: asking it fails at once, it does not reach its service.
    const run = await new Promise<unknown>((resolve) => {
      const x = first.start('127.0.15.3', null, (_o, run) => resolve(run));
      if (x === null) resolve(null);
    });
    assert.equal((run as { failure: string | null }).failure, 'error');
    assert.equal(a.requests.length, 1);
  } finally {
    await s.close(100);
    await a.stop();
    await b.stop();
  }
});
