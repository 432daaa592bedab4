/*
 * The session with a shared tier (cache.store: redis) on a fake clock, the tier a fake whose
 * answers the test gives (or never gives): the lookup starts at accept beside the greet wait;
 * a shared pass makes PASS OLD (tier shared) before the wait ends; a late answer is ignored; a
 * pregreet this session saw clears the shared pass; greylisting waits for the tier's decision at
 * most its deadline, input paused, then decides from memory; a tier that is down is not asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness, settle, envelope } from '../helpers/fake-session.js';
import { TestIndex } from '../../src/checks/tests.js';
import { withPasses, type SharedTier, type VerdictRecord } from '../../src/cache/store.js';
import type { GreylistDecision, GreylistOptions } from '../../src/checks/greylist.js';


class FakeTier implements SharedTier {
  up = true;
  timeoutMs = 100;
  counts = { lookups: 3, hits: 2, misses: 1 };
  lookups: Array<{ client: string; answer: (rec: VerdictRecord | null) => void }> = [];
  observes: Array<{ network: string; opts: GreylistOptions; answer: (d: GreylistDecision | null) => void }> = [];
  kept: string[] = [];
  lookup<T>(client: string, owner: T, done: (owner: T, rec: VerdictRecord | null) => void): void {
    this.lookups.push({ client, answer: (rec) => done(owner, rec) });
  }
  keep(client: string): void {
    this.kept.push(client);
  }
  observeShared<T>(network: string, _now: number, opts: GreylistOptions, owner: T, done: (owner: T, d: GreylistDecision | null) => void): void {
    this.observes.push({ network, opts, answer: (d) => done(owner, d) });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function withTier(raw: Record<string, unknown>): { h: Harness; tier: FakeTier } {
  const h = harness({ backend: { handoff: 'none' }, ...raw });
  const tier = new FakeTier();
  Object.defineProperty(h.store, 'shared', { value: tier });
  return { h, tier };
}

const full = (h: Harness): VerdictRecord => withPasses(null, [[TestIndex.pregreet, h.clock.now() + 3_600_000]]);

test('a pass found in the shared tier: PASS OLD (tier shared) as soon as it answers, within the greet wait; kept in memory', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '2s' } });
  const t0 = h.clock.now();
  const { sock } = h.connect('192.0.2.20');
  assert.equal(sock.text(), '220-screen.test ESMTP\r\n', 'the teaser: the client is not known here');
  assert.deepEqual(tier.lookups.map((l) => l.client), ['192.0.2.20'], 'asked at accept');
  h.clock.advance(30);
  tier.lookups[0]?.answer(full(h));
  const old = h.named('PASS OLD');
  assert.equal(old.length, 1);
  assert.equal(old[0]?.['tier'], 'shared');
  assert.equal(h.backends.length, 1, 'handed over now, not after 2 s');
  assert.deepEqual(tier.kept, ['192.0.2.20']);
  assert.equal(h.writes.length, 0, 'nothing written back');
  assert.equal(h.clock.timers.filter((t) => t.at === t0 + 2000).length, 0, 'the greet-wait timer is gone');
  sock.hangup();
  await settle();
});

test('no record, or one with passes missing: the wait goes on; the record is the base of the new verdict', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '2s' }, greylist: { enable: false } });
  const { sock } = h.connect('192.0.2.21');
  const dnsbl = withPasses(null, [[TestIndex.dnsbl, h.clock.now() + 999_000]]); // a DNSBL pass only: not enough (pregreet)
  tier.lookups[0]?.answer(dnsbl);
  assert.equal(h.named('PASS OLD').length, 0);
  h.clock.advance(2000);
  assert.equal(h.named('PASS NEW').length, 1);
  const [key, rec] = h.writes[0] ?? [];
  assert.equal(key, '192.0.2.21');
  assert.equal(rec?.[TestIndex.dnsbl], h.clock.now() - 2000 + 999_000, 'the shared DNSBL pass is kept in the new record');
  assert.ok((rec?.[TestIndex.pregreet] ?? 0) > h.clock.now());
  sock.hangup();
  await settle();
});

test('an answer after the wait ended is ignored: no second verdict, nothing kept', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '500ms' } });
  const { sock } = h.connect('192.0.2.22');
  h.clock.advance(500);
  assert.equal(h.named('PASS NEW').length, 1);
  tier.lookups[0]?.answer(full(h));
  assert.equal(h.named('PASS OLD').length, 0);
  assert.deepEqual(tier.kept, []);
  assert.equal(h.backends.length, 1);
  sock.hangup();
  await settle();
});

test('a pregreet seen here clears the shared pregreet pass (written to both tiers), no PASS OLD', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '2s', action: 'enforce' } });
  const { sock } = h.connect('192.0.2.23');
  h.clock.advance(5);
  sock.feed('EHLO early.test\r\n');
  assert.equal(h.named('PREGREET').length, 1);
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, h.clock.now() + 3_600_000], [TestIndex.dnsbl, h.clock.now() + 60_000]]));
  await settle();
  assert.equal(h.named('PASS OLD').length, 0);
  const w = h.writes.find(([k]) => k === '192.0.2.23');
  assert.ok(w !== undefined, 'the cleared record is written');
  assert.equal(w[1][TestIndex.pregreet], 0);
  assert.equal(w[1][TestIndex.dnsbl], h.clock.now() + 60_000, 'other passes stay');
  sock.hangup();
  await settle();
});

test('greylisting: the tier decides; the session waits for it with input paused, then acts on its decision', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1d' } });
  const { sock } = h.connect('192.0.2.24');
  tier.lookups[0]?.answer(null);
  h.clock.advance(300);
  assert.equal(tier.observes.length, 1);
  assert.equal(tier.observes[0]?.network, '192.0.2.0/24');
  assert.deepEqual(tier.observes[0]?.opts, { minDelayMs: 60_000, maxDelayMs: 3_600_000, ttlMs: 86_400_000 });
  assert.equal(h.named('GREYLIST').length, 0, 'no decision yet');
  assert.ok(sock.paused, 'no input read meanwhile');
  h.clock.advance(50);
  tier.observes[0]?.answer({ verdict: 'pass', state: h.clock.now() + 86_400_000, reason: 'retry', delayMs: 120_000 });
  const g = h.named('GREYLIST');
  assert.deepEqual([g[0]?.['state'], g[0]?.['delay_ms']], ['pass', 120_000]);
  assert.equal(h.named('PASS NEW').length, 1);
  assert.equal(h.backends.length, 1);
  assert.equal(h.store.get('net:192.0.2.0/24'), undefined, 'memory was not asked');
  sock.hangup();
  await settle();
});

test('greylisting: no decision within the deadline (or a failed one): decided from memory, once; a late answer is ignored', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1d' } });
  const a = h.connect('192.0.2.25');
  h.clock.advance(300);
  h.clock.advance(99);
  assert.equal(h.named('GREYLIST').length, 0);
  h.clock.advance(1);
  const g = h.named('GREYLIST');
  assert.deepEqual([g[0]?.['state'], g[0]?.['reason']], ['defer', 'new'], 'this screener\'s own first sight');
  assert.equal(h.store.get('net:192.0.2.0/24')?.[TestIndex.greylist], -(h.clock.now() - 100));
  tier.observes[0]?.answer({ verdict: 'pass', state: h.clock.now() + 1, reason: 'retry', delayMs: 1 });
  assert.equal(h.named('GREYLIST').length, 1, 'the late answer changes nothing');
  // A failed decision (null): memory decides at once, here "early".
  const b = h.connect('192.0.2.26');
  h.clock.advance(300);
  tier.observes[1]?.answer(null);
  assert.deepEqual(h.named('GREYLIST').map((e) => e['reason']), ['new', 'early']);
  a.sock.hangup();
  b.sock.hangup();
  await settle();
  assert.equal(h.clock.timers.length, 0);
});

test('a tier that is down is not asked: no lookup, greylisting decided at once from memory', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1d' } });
  tier.up = false;
  const { sock } = h.connect('192.0.2.27');
  assert.equal(tier.lookups.length, 0);
  h.clock.advance(300);
  assert.equal(tier.observes.length, 0);
  assert.equal(h.named('GREYLIST').length, 1, 'decided in the same tick as the wait ended');
  sock.hangup();
  await settle();
});

test('no pregreet and no other check: the session waits for the answer (at most the deadline), not a microtask', async () => {
  const { h, tier } = withTier({ pregreet: { enable: false } });
  const a = h.connect('192.0.2.28');
  await settle();
  assert.equal(h.backends.length, 0, 'still waiting for the shared tier');
  tier.lookups[0]?.answer(null);
  await settle();
  assert.equal(h.backends.length, 1);
  const b = h.connect('192.0.2.29');
  h.clock.advance(99);
  assert.equal(h.backends.length, 1);
  h.clock.advance(1);
  assert.equal(h.backends.length, 2, 'the deadline ended the wait');
  tier.lookups[1]?.answer(full(h));
  assert.equal(h.named('PASS OLD').length, 0, 'too late');
  a.sock.hangup();
  b.sock.hangup();
  await settle();
});

test('greylisting on the shared tier: the store lookup answering while the decision is out changes nothing (the wait is over)', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1d' } });
  const { sock } = h.connect('192.0.2.30');
  h.clock.advance(300);
  assert.equal(tier.observes.length, 1, 'the wait ended without the store\'s answer: greylisting asked');
  // The record of a client that passed everything, greylisting included: too late to make it PASS OLD now.
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, h.clock.now() + 3_600_000], [TestIndex.greylist, h.clock.now() + 3_600_000]]));
  assert.deepEqual([h.named('PASS OLD').length, tier.kept.length, tier.observes.length, h.backends.length], [0, 0, 1, 0]);
  tier.observes[0]?.answer({ verdict: 'defer', state: -h.clock.now(), reason: 'new' });
  assert.deepEqual(h.named('GREYLIST').map((e) => [e['state'], e['reason']]), [['defer', 'new']]);
  sock.hangup();
  await settle();
});

test('greylisting on the shared tier: a decision after the deadline, or after the client hung up, is dropped quietly', async () => {
  const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1d' } });
  // Decided from memory at the deadline (defer: the dummy engine); the tier's answer comes later.
  const a = h.connect('192.0.2.31');
  h.clock.advance(400);
  assert.deepEqual(h.named('GREYLIST').map((e) => e['reason']), ['new']);
  tier.observes[0]?.answer({ verdict: 'pass', state: h.clock.now() + 1, reason: 'retry', delayMs: 1 });
  assert.equal(h.named('INTERNAL ERROR').length, 0, 'no error, no 421');
  envelope(a.sock);
  assert.match(a.sock.text(), /450 4\.\d\.\d .*\r\n$/, 'the dummy engine goes on: the greylisting 450 at RCPT');
  // Hung up while the decision was out: nothing is decided, logged or stored for it.
  const b = h.connect('192.0.2.32');
  h.clock.advance(300);
  assert.equal(tier.observes.length, 2);
  b.sock.hangup();
  await settle();
  const writes = h.writes.length;
  tier.observes[1]?.answer({ verdict: 'defer', state: -h.clock.now(), reason: 'new' });
  assert.deepEqual([h.named('GREYLIST').length, h.writes.length, b.sock.writesAfterEnd], [1, writes, 0]);
  a.sock.hangup();
  await settle();
});

test('greylisting on the shared tier: a decision whose handling throws is INTERNAL ERROR naming where (the answer, the deadline), 421', async () => {
  for (const where of ['shared greylist decision', 'shared greylist deadline']) {
    const { h, tier } = withTier({ pregreet: { wait: '300ms' }, greylist: { enable: true } });
    const { sock } = h.connect('192.0.2.33');
    h.clock.advance(300);
    h.store.observe = (): never => {
      throw new Error('store broken');
    };
    // A failed tier answer (null) is decided from memory at once; no answer, at the deadline.
    if (where === 'shared greylist decision') tier.observes[0]?.answer(null);
    else h.clock.advance(100);
    assert.deepEqual(h.named('INTERNAL ERROR').map((e) => [e['where'], e['error']]), [[where, 'store broken']], where);
    assert.match(sock.text(), /421 4\.3\.2 Service currently unavailable\r\n$/, where);
    await settle();
  }
});
