/*
 * Integration: `smtpscreen run` (a child process) asking a real policy service
 * (node:http on loopback, in the test) over undici, with the built-in sink as
 * backend: a silent service costs a client no more than the budget (bound: 10x);
 * a reject reaches the client as a 550 with the service's text at RCPT; a permit
 * hands over at once, well before the greet wait.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startScreener, killAllScreeners, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, reply } from '../helpers/smtp-client.js';
import { startPolicyServer, type PolicyServer } from '../helpers/policy-server.js';

const servers: PolicyServer[] = [];
after(async () => {
  await killAllScreeners();
  for (const s of servers) await s.stop();
});

function portOf(s: ScreenerProc): number {
  return Number(s.listen[0]?.split(':').pop());
}

async function service(): Promise<PolicyServer> {
  const s = await startPolicyServer();
  servers.push(s);
  return s;
}

test('a silent policy service: the greeting waits the budget, not more; POLICY says timeout', async () => {
  const ps = await service();
  ps.mode = 'never';
  const s = await startScreener({
    hostname: 'screen.test', listen: ['127.0.0.1:0'], backend: { address: 'sink:0' },
    pregreet: { enable: false }, policy: { url: ps.url, budget: '200ms' },
  });
  try {
    const t0 = performance.now();
    const c = await connectClient('127.0.0.1', portOf(s));
    await c.readUntil(/^220 /m, 5000);
    const ms = performance.now() - t0;
    assert.ok(ms >= 150 && ms < 2000, `greeting after ${ms} ms with a 200 ms budget`);
    const ev = await s.waitForEvent((e) => e['event'] === 'POLICY');
    assert.deepEqual([ev['decision'], ev['failure']], ['dunno', 'timeout']);
    assert.equal(ps.requests.length, 1);
    c.destroy();
  } finally {
    await s.stop();
  }
});

test('reject: the service\'s text in a 550 at RCPT; permit: handed over before the greet wait ends', async () => {
  const ps = await service();
  ps.answer = (req) => (req['client'] === '127.0.91.1' ? { action: 'reject', reply: 'listed by our policy' } : { action: 'permit' });
  const s = await startScreener({
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 }, backend: { address: 'sink:0' },
    pregreet: { wait: '3s' }, policy: { url: ps.url, budget: '1s' },
  });
  try {
    const bad = await connectClient('127.0.0.1', portOf(s), '127.0.91.1');
    await bad.readUntil(/^220 /m, 10_000);
    await reply(bad, 'EHLO bad.test\r\n');
    await reply(bad, 'MAIL FROM:<a@bad.test>\r\n');
    assert.match(await reply(bad, 'RCPT TO:<b@screen.test>\r\n'), /^550 5\.7\.1 listed by our policy\r\n/m);
    bad.destroy();
    const t0 = performance.now();
    const good = await connectClient('127.0.0.1', portOf(s), '127.0.91.2');
    const greeting = await good.readUntil(/^220 /m, 10_000);
    const ms = performance.now() - t0;
    assert.ok(ms < 2500, `permit: greeted after ${ms} ms, the greet wait is 3 s`);
    assert.match(greeting, /^220-screen\.test/);
    const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '127.0.91.2');
    assert.equal(h['verdict'], 'policy-allowlisted');
    good.destroy();
  } finally {
    await s.stop();
  }
});
