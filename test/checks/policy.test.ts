/*
 * test/checks/policy.test.ts - the policy check (checks/policy.ts) over its
 * real HTTP transport (net/policy-http.ts, undici) against a real node:http
 * server on loopback (test/helpers/policy-server.ts): the outcome of each
 * reply, the budget (late and silent servers), failures (garbage, 500s,
 * closed connections) under fail open and tempfail, the breaker on a fake
 * clock, the cache by ttl, a Unix socket, and 10,000 clients at once against
 * the in-flight cap. The 10,000 go through the check directly, not through
 * sockets: 10,000 client sockets plus the screener's own would pass the
 * process's descriptor limit (20,000, both ends in one process).
 * Timing bounds are 10x the budget.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Policy, type PolicyOptions, type PolicyRun } from '../../src/checks/policy.js';
import { HttpPolicyTransport } from '../../src/net/policy-http.js';
import { parsePolicyUrl } from '../../src/config/policy-url.js';
import { startPolicyServer, type PolicyServer } from '../helpers/policy-server.js';

const BUDGET = 100;
/** Where the budget is not what is tested: room for a loaded machine. */
const ROOMY = 2000;
const opened: Policy[] = [];
const servers: PolicyServer[] = [];
after(async () => {
  for (const p of opened) await p.close();
  for (const s of servers) await s.stop();
});

interface Made { policy: Policy; events: Array<Record<string, unknown>>; clock: { t: number } }

function make(url: string, o: Partial<PolicyOptions> = {}, fakeClock = false, connections = 4): Made {
  const events: Array<Record<string, unknown>> = [];
  const clock = { t: 1_800_000_000_000 };
  const target = parsePolicyUrl(url);
  assert.equal(typeof target, 'object');
  const policy = new Policy({
    budgetMs: BUDGET, maxInFlight: 100, fail: 'open', slowWarningMs: 1000, ttlMaxMs: 86_400_000, cacheMax: 1000,
    breaker: { failures: 5, windowMs: 10_000, openMs: 30_000 }, hostname: 'mx.test', ...o,
  }, new HttpPolicyTransport(target as Exclude<typeof target, string>, connections),
  (event, fields, level) => events.push({ event, level, ...fields }), fakeClock ? () => clock.t : Date.now);
  opened.push(policy);
  return { policy, events, clock };
}

async function server(): Promise<PolicyServer> {
  const s = await startPolicyServer();
  servers.push(s);
  return s;
}

/** Start one client's call; resolves with its run (null: not asked) and the ms until `done`. */
function ask(p: Policy, client: string, port = 1234): Promise<{ run: PolicyRun | null; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let started: PolicyRun | null = null;
    let calls = 0;
    started = p.start(client, null, (_o, run) => {
      calls++;
      assert.equal(calls, 1, 'done runs once');
      assert.equal(run, started);
      resolve({ run, ms: performance.now() - t0 });
    }, { client, port, local: '127.0.0.1', localPort: 25, proxy: '10.0.0.9', passed: ['pregreet'], denylisted: false });
    if (started === null) resolve({ run: null, ms: performance.now() - t0 });
  });
}

test('answers right: each action\'s outcome; the request carries the client\'s facts', async () => {
  const s = await server();
  const answers: Record<string, Record<string, unknown>> = {
    '192.0.2.1': { action: 'permit', ttl: '1h' },
    '192.0.2.2': { action: 'reject', reply: 'listed here' },
    '192.0.2.3': { action: 'defer' },
    '192.0.2.4': { action: 'dunno' },
    '192.0.2.5': { action: 'route', route: 'strict' },
  };
  s.answer = (req) => answers[String(req['client'])] ?? { action: 'dunno' };
  const { policy } = make(s.url, { budgetMs: ROOMY });
  const o = async (c: string) => {
    const { run } = await ask(policy, c);
    assert.ok(run !== null);
    return policy.outcome(run);
  };
  const permit = await o('192.0.2.1');
  assert.deepEqual([permit.failed, permit.allowlisted, permit.ttlMs, permit.note?.fields['decision']], [false, true, 3_600_000, 'permit']);
  const reject = await o('192.0.2.2');
  assert.deepEqual([reject.failed, reject.allowlisted, reject.reply(550), reject.reply(521)],
    [true, false, '550 5.7.1 listed here\r\n', '521 5.7.1 listed here\r\n']);
  assert.equal(reject.fields['decision'], 'reject');
  const defer = await o('192.0.2.3');
  assert.equal(defer.failed, true);
  assert.match(defer.reply(550), /^450 4\.7\.1 /);
  assert.match(defer.reply(521), /^421 4\.7\.1 /);
  const dunno = await o('192.0.2.4');
  assert.deepEqual([dunno.failed, dunno.allowlisted, dunno.note], [false, false, null]);
  const route = await o('192.0.2.5');
  assert.deepEqual([route.failed, route.allowlisted, route.route, route.note?.fields['route']], [false, true, 'strict', 'strict']);
  assert.deepEqual(s.requests[0], {
    stage: 'connect', client: '192.0.2.1', port: 1234, listener: '127.0.0.1:25', proxy: '10.0.0.9', passed: ['pregreet'], denylisted: false,
  });
  assert.equal(policy.stats.answers, 5);
});

test('late and silent servers: the answer is abandoned at the budget (fail open: dunno, logged; tempfail: 450)', async () => {
  const s = await server();
  s.delayMs = 3000;
  for (const mode of ['late', 'never'] as const) {
    s.mode = mode;
    for (const fail of ['open', 'tempfail'] as const) {
      const { policy, events } = make(s.url, { fail });
      const { run, ms } = await ask(policy, '192.0.2.9');
      assert.ok(run !== null);
      assert.ok(ms < BUDGET * 10, `${mode}/${fail}: done after ${ms} ms, budget ${BUDGET}`);
      assert.ok(ms >= BUDGET * 0.9, `${mode}/${fail}: not before the budget (${ms} ms)`);
      assert.equal(run.failure, 'timeout');
      assert.equal(policy.stats.timeouts, 1);
      const out = policy.outcome(run);
      if (fail === 'open') {
        assert.equal(out.failed, false);
        assert.deepEqual([out.note?.fields['decision'], out.note?.fields['failure']], ['dunno', 'timeout']);
      } else {
        assert.equal(out.failed, true);
        assert.match(out.reply(550), /^450 4\.7\.1 mx\.test Policy service unavailable/);
      }
      assert.ok(events.some((e) => e['event'] === 'POLICY WARNING' && e['reason'] === 'timeout'), `${mode}/${fail}: warned`);
    }
  }
});

test('garbage, 500s and closed connections are failures, counted and logged; a later right answer still works', async () => {
  const s = await server();
  const rows = [
    { mode: 'garbage', reason: 'bad-reply' },
    { mode: '500', reason: 'status' },
    { mode: 'close', reason: 'error' },
  ] as const;
  for (const r of rows) {
    s.mode = r.mode;
    const { policy, events } = make(s.url, { budgetMs: ROOMY });
    const { run, ms } = await ask(policy, '192.0.2.10');
    assert.ok(run !== null && ms < ROOMY, r.mode);
    assert.equal(run.failure, r.reason, r.mode);
    assert.equal(policy.stats.failures, 1, r.mode);
    assert.equal(policy.outcome(run).failed, false, `${r.mode}: fail open`);
    assert.ok(events.some((e) => e['event'] === 'POLICY WARNING' && e['reason'] === r.reason), r.mode);
    s.mode = 'right';
    s.answer = () => ({ action: 'reject' });
    const again = await ask(policy, '192.0.2.10');
    assert.equal(again.run?.reply?.action, 'reject', `${r.mode}: the pool recovers`);
  }
});

test('breaker (fake clock): N failures in the window open it; no calls while open; half-open probe; an answer closes it, a failure reopens it', async () => {
  const s = await server();
  s.mode = '500';
  const { policy, events, clock } = make(s.url, { budgetMs: ROOMY, breaker: { failures: 3, windowMs: 10_000, openMs: 30_000 } }, true);
  const breaker = (): unknown[] => events.filter((e) => e['event'] === 'POLICY BREAKER').map((e) => e['state']);
  // Failures spread wider than the window do not open it.
  for (let i = 0; i < 3; i++) {
    await ask(policy, `192.0.2.${20 + i}`);
    clock.t += 6000;
  }
  assert.deepEqual(breaker(), []);
  clock.t += 20_000; // the spread ones leave the window
  for (let i = 0; i < 2; i++) await ask(policy, `192.0.2.${30 + i}`);
  assert.deepEqual(breaker(), [], 'two in the window');
  await ask(policy, '192.0.2.32');
  assert.deepEqual(breaker(), ['open'], 'the third in the window');
  assert.equal(policy.breaker, 'open');
  const asked = s.requests.length;
  const skipped = await ask(policy, '192.0.2.40');
  assert.equal(skipped.run, null, 'fail open: no say while open');
  assert.equal(s.requests.length, asked, 'not asked while open');
  assert.equal(policy.stats.skipped, 1);
  clock.t += 29_999;
  assert.equal((await ask(policy, '192.0.2.41')).run, null, 'still open just before open_for');
  clock.t += 1;
  // The probe fails: open again.
  const probe1 = await ask(policy, '192.0.2.42');
  assert.equal(probe1.run?.failure, 'status');
  assert.deepEqual(breaker(), ['open', 'half-open', 'open']);
  clock.t += 30_000;
  s.mode = 'right';
  s.answer = () => ({ action: 'dunno' });
  const probe2 = await ask(policy, '192.0.2.43');
  assert.equal(probe2.run?.reply?.action, 'dunno');
  assert.deepEqual(breaker(), ['open', 'half-open', 'open', 'half-open', 'closed']);
  assert.equal(events.find((e) => e['state'] === 'open')?.['level'], 'warn');
  assert.equal((await ask(policy, '192.0.2.44')).run?.reply?.action, 'dunno', 'calls resume');
});

test('breaker open under fail tempfail: every client gets the 450 without a call', async () => {
  const s = await server();
  s.mode = 'close';
  const { policy } = make(s.url, { budgetMs: ROOMY, fail: 'tempfail', breaker: { failures: 2, windowMs: 10_000, openMs: 30_000 } }, true);
  await ask(policy, '192.0.2.50');
  await ask(policy, '192.0.2.51');
  const n = s.requests.length;
  const { run } = await ask(policy, '192.0.2.52');
  assert.ok(run !== null);
  assert.equal(run.failure, 'breaker open');
  assert.match(policy.outcome(run).reply(550), /^450 /);
  assert.equal(s.requests.length, n);
});

test('cache (fake clock): a reply with a ttl holds for its client until it expires; without a ttl it is asked each time', async () => {
  const s = await server();
  s.answer = (req) => (req['client'] === '192.0.2.60' ? { action: 'reject', ttl: '10m' } : { action: 'dunno' });
  const { policy, clock } = make(s.url, { budgetMs: ROOMY }, true);
  await ask(policy, '192.0.2.60');
  const second = await ask(policy, '192.0.2.60');
  assert.equal(s.requests.length, 1, 'cached');
  assert.equal(second.run?.cached, true);
  assert.equal(policy.outcome(second.run as PolicyRun).fields['cached'], true);
  assert.equal(policy.stats.cached, 1);
  clock.t += 10 * 60_000 - 1;
  await ask(policy, '192.0.2.60');
  assert.equal(s.requests.length, 1, 'still cached 1 ms before the ttl');
  clock.t += 1;
  await ask(policy, '192.0.2.60');
  assert.equal(s.requests.length, 2, 'asked again at the ttl');
  await ask(policy, '192.0.2.61');
  await ask(policy, '192.0.2.61');
  assert.equal(s.requests.length, 4, 'no ttl: not cached');
});

test('a Unix socket: unix:/path:/http-path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'policy-'));
  const s = await startPolicyServer({ socketPath: join(dir, 'p.sock') });
  servers.push(s);
  s.answer = () => ({ action: 'permit' });
  const { policy } = make(s.url, { budgetMs: ROOMY });
  assert.equal((await ask(policy, '192.0.2.70')).run?.reply?.action, 'permit');
  assert.equal(s.requests.length, 1);
});

test('10,000 clients at once (through the check, not sockets): the in-flight cap holds at the server; the rest are dunno at once, counted', async () => {
  const s = await server();
  s.mode = 'hold';
  s.delayMs = 30;
  const cap = 50;
  // More connections than the cap: the cap, not the pool, is what bounds the server's load.
  const { policy, events } = make(s.url, { maxInFlight: cap, budgetMs: 5000 }, false, cap * 2);
  const waits: Array<Promise<{ run: PolicyRun | null; ms: number }>> = [];
  for (let i = 0; i < 10_000; i++) waits.push(ask(policy, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
  assert.equal(policy.inFlight, cap);
  const res = await Promise.all(waits);
  const asked = res.filter((r) => r.run !== null);
  assert.equal(asked.length, cap);
  assert.equal(policy.stats.busy, 10_000 - cap);
  assert.ok(s.maxConcurrent <= cap, `server saw ${s.maxConcurrent} at once, cap ${cap}`);
  assert.equal(s.requests.length, cap);
  for (const r of asked) assert.equal(r.run?.reply?.action, 'dunno', `answered: ${r.run?.failure ?? ''}`);
  assert.equal(policy.inFlight, 0);
  const busy = events.filter((e) => e['event'] === 'POLICY WARNING' && e['reason'] === 'busy');
  assert.ok(busy.length >= 1 && busy.length <= 3, `busy warnings rate-limited: ${busy.length}`);
  // Once they are answered, clients are asked again.
  s.mode = 'right';
  assert.notEqual((await ask(policy, '192.0.2.80')).run, null);
});
