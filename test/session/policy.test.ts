/*
 * The policy check in the session (session/machine.ts, conclude.ts, verdict.ts) on a
 * fake clock with a fake transport: permit ends the greet wait and hands over
 * (policy-allowlisted, passes for its ttl); reject and defer under enforce give their
 * reply at RCPT; drop gives 521 now; route is kept on the session and logged in
 * HANDOFF; without a pregreet test a silent service holds the greeting for exactly
 * the budget, then fail open hands over and tempfail defers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type FakeSocket, type Harness, settle, envelope, backendGreets } from '../helpers/fake-session.js';
import { FakeTransport } from '../helpers/fake-policy.js';
import { TestIndex } from '../../src/checks/tests.js';
import { withPasses } from '../../src/cache/store.js';



const base = { pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' }, policy: { url: 'http://127.0.0.1:9/p' } };



test('permit: the greet wait ends at the answer, PASS NEW allowlisted, handed over, passes stored for its ttl', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  const { sock } = h.connect('192.0.2.10');
  assert.equal(t.calls.length, 1);
  assert.deepEqual(t.calls[0]?.body, {
    stage: 'connect', client: '192.0.2.10', port: 40001, listener: '127.0.0.1:25', proxy: null, passed: [], denylisted: false,
  });
  h.clock.advance(50);
  t.answer({ action: 'permit', ttl: '1h' });
  await settle();
  assert.equal(h.named('POLICY')[0]?.['decision'], 'permit');
  assert.equal(h.named('PASS NEW')[0]?.['allowlisted'], true);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'policy-allowlisted');
  assert.match(sock.text(), /^220-screen\.test ESMTP\r\n220 backend\.test ESMTP\r\n$/);
  const rec = h.writes[0]?.[1];
  assert.equal(rec?.[TestIndex.pregreet], 1_800_000_000_050 + 3_600_000, 'pregreet passes for the permit\'s ttl');
  assert.equal(rec?.[TestIndex.policy], 0, 'the policy row is never stored');
});

test('reject under enforce: their text in the 550 at RCPT, POLICY logged with the action, nothing stored', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  const { sock } = h.connect('192.0.2.11');
  t.answer({ action: 'reject', reply: 'you are on our list' });
  await settle();
  assert.equal(h.named('POLICY').length, 0, 'logged at the verdict');
  h.clock.advance(2000);
  const ev = h.named('POLICY')[0];
  assert.deepEqual([ev?.['decision'], ev?.['action'], ev?.['reply']], ['reject', 'enforce', 'you are on our list']);
  envelope(sock);
  assert.match(sock.text(), /550 5\.7\.1 you are on our list\r\n$/);
  assert.equal(h.named('NOQUEUE')[0]?.['reason'], 'policy');
  assert.equal(h.writes.length, 0);
});

test('defer under enforce: 450 at RCPT', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  const { sock } = h.connect('192.0.2.12');
  t.answer({ action: 'defer', reply: '4.7.0 come back later' });
  await settle();
  h.clock.advance(2000);
  envelope(sock);
  assert.match(sock.text(), /450 4\.7\.0 come back later\r\n$/);
});

test('reject under drop: 521 with their text at the end of the wait, closed', async () => {
  const t = new FakeTransport();
  const h = harness({ ...base, policy: { url: 'http://127.0.0.1:9/p', action: 'drop' } }, null, { policy: t });
  const { sock } = h.connect('192.0.2.13');
  t.answer({ action: 'reject', reply: 'no' });
  await settle();
  h.clock.advance(2000);
  assert.match(sock.text(), /521 5\.7\.1 no\r\n$/);
  assert.equal(sock.ended || sock.destroyed, true);
});

test('route: a permit whose name is kept on the session and logged in POLICY and HANDOFF', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  const { session } = h.connect('192.0.2.14');
  t.answer({ action: 'route', route: 'strict' });
  await settle();
  assert.equal(session()?.route, 'strict');
  backendGreets(h);
  assert.equal(h.named('POLICY')[0]?.['route'], 'strict');
  assert.equal(h.named('HANDOFF')[0]?.['route'], 'strict');
});

test('dunno: no line, the other tests decide (the pregreet wait runs out, PASS NEW)', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  h.connect('192.0.2.15');
  t.answer({ action: 'dunno' });
  await settle();
  assert.equal(h.named('PASS NEW').length, 0, 'the pregreet wait goes on');
  h.clock.advance(2000);
  assert.equal(h.named('PASS NEW').length, 1);
  assert.equal(h.named('POLICY').length, 0);
});

test('no pregreet test, a silent service: the greeting waits exactly the budget; fail open hands over, tempfail defers', async () => {
  for (const fail of ['open', 'tempfail'] as const) {
    const t = new FakeTransport();
    const h = harness({ pregreet: { enable: false }, backend: { handoff: 'none' }, policy: { url: 'http://127.0.0.1:9/p', budget: '150ms', fail } }, null, { policy: t });
    const { sock } = h.connect('192.0.2.16');
    h.clock.advance(149);
    assert.equal(sock.text(), '', `${fail}: nothing before the budget`);
    assert.equal(h.backends.length, 0);
    h.clock.advance(1);
    if (fail === 'open') {
      assert.equal(h.backends.length, 1, 'handed over at the budget');
      assert.deepEqual([h.named('POLICY')[0]?.['decision'], h.named('POLICY')[0]?.['failure']], ['dunno', 'timeout']);
    } else {
      assert.match(sock.text(), /^220 /, 'the dummy engine greets');
      envelope(sock);
      assert.match(sock.text(), /450 4\.7\.1 screen\.test Policy service unavailable, try again later\r\n$/);
    }
    // The late answer changes nothing.
    t.answer({ action: 'reject' });
    await settle();
    assert.equal(h.named('POLICY').length, 1, `${fail}: one decision`);
  }
});

test('PASS OLD clients and allowlisted ones are not asked', async () => {
  const t = new FakeTransport();
  const h = harness(base, '192.0.2.20/32 permit\n', { policy: t });
  h.connect('192.0.2.20');
  assert.equal(h.named('ALLOWLISTED').length, 1);
  h.store.set('192.0.2.21', withPasses(null, [[TestIndex.pregreet, h.clock.t + 60_000]]));
  h.connect('192.0.2.21');
  assert.equal(h.named('PASS OLD').length, 1);
  assert.equal(t.calls.length, 0);
  // An expired pass: under test again, asked, and told which tests still pass (none here).
  h.store.set('192.0.2.22', withPasses(null, [[TestIndex.pregreet, h.clock.t - 1]]));
  h.connect('192.0.2.22');
  assert.equal(t.calls.length, 1);
});

test('policy.at_rcpt: each RCPT in the dummy engine is asked (HELO, MAIL FROM, RCPT TO); reject/defer replace the engine\'s reply, dunno keeps it; input after it waits for the answer', async () => {
  const t = new FakeTransport();
  const h = harness({ ...base, policy: { url: 'http://127.0.0.1:9/p', at_rcpt: true } }, null, { policy: t });
  const { sock } = h.connect('192.0.2.30');
  t.answer({ action: 'defer' }); // at accept: a 450 at RCPT, so the dummy engine
  await settle();
  h.clock.advance(2000);
  sock.feed('EHLO bot.test\r\nMAIL FROM:<a@bot.test>\r\nRCPT TO:<x@screen.test>\r\nRCPT TO:<y@screen.test>\r\n');
  assert.equal(t.calls.length, 1, 'the first RCPT is asked');
  assert.deepEqual(t.calls[0]?.body, { stage: 'rcpt', client: '192.0.2.30', port: 40001, helo: 'bot.test', from: 'a@bot.test', to: 'x@screen.test' });
  assert.doesNotMatch(sock.text(), /RCPT|4\.7\.1|550/, 'no RCPT reply before the answer');
  t.answer({ action: 'reject', reply: 'not for x' });
  await settle();
  assert.match(sock.text(), /550 5\.7\.1 not for x\r\n$/);
  assert.equal(t.calls.length, 1, 'the second RCPT is asked next');
  assert.equal(t.calls[0]?.body['to'], 'y@screen.test');
  t.answer({ action: 'dunno' });
  await settle();
  assert.match(sock.text(), /550 5\.7\.1 not for x\r\n450 4\.7\.1 screen\.test Policy service unavailable|550 5\.7\.1 not for x\r\n450 /);
  const noq = h.named('NOQUEUE');
  assert.deepEqual(noq.map((e) => e['reason']), ['policy', 'policy'], 'the first refused by the service at RCPT, the second by the accept-time defer');
  const rcptEv = h.named('POLICY').filter((e) => e['stage'] === 'rcpt');
  assert.deepEqual(rcptEv.map((e) => [e['decision'], e['to']]), [['reject', 'x@screen.test']]);
  sock.feed('QUIT\r\n');
  await settle();
  assert.match(sock.text(), /221 /);
});

test('policy.at_rcpt off: RCPT is not asked', async () => {
  const t = new FakeTransport();
  const h = harness(base, null, { policy: t });
  const { sock } = h.connect('192.0.2.31');
  t.answer({ action: 'reject' });
  await settle();
  h.clock.advance(2000);
  envelope(sock);
  assert.equal(t.calls.length, 0);
  assert.match(sock.text(), /550 5\.7\.1 screen\.test Service unavailable; client blocked by policy\r\n$/);
});

test('the policy overrules the DNS lists both ways, whatever answers first', async () => {
  const bl = { ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } };
  // A listing first, then a permit: handed over (no DNSBL failure logged).
  {
    const t = new FakeTransport();
    const h = harness(bl, null, { policy: t });
    h.connect('192.0.2.40');
    h.dns.answerAll(true);
    await settle();
    t.answer({ action: 'permit' });
    await settle();
    assert.equal(h.backends.length, 1, 'handed over at the permit');
    assert.equal(h.named('DNSBL').length, 0);
  }
  // A permit first, the lookup still out: handed over at once.
  {
    const t = new FakeTransport();
    const h = harness(bl, null, { policy: t });
    h.connect('192.0.2.41');
    t.answer({ action: 'permit' });
    await settle();
    assert.equal(h.backends.length, 1);
  }
  // A DNSBL allowlisting first: the wait goes on until the policy answers; its reject wins.
  const wl = { ...base, dnsbl: { sites: ['wl.test*-5'], allowlist_threshold: -1 } };
  {
    const t = new FakeTransport();
    const h = harness(wl, null, { policy: t });
    const { sock } = h.connect('192.0.2.42');
    h.dns.answerAll(true);
    await settle();
    assert.equal(h.named('PASS NEW').length, 0, 'the allowlisting waits for the policy');
    assert.equal(h.backends.length, 0);
    t.answer({ action: 'reject', reply: 'policy says no' });
    await settle();
    assert.match(sock.text(), /^220 screen\.test/m, 'the dummy engine, at once');
    envelope(sock);
    assert.match(sock.text(), /550 5\.7\.1 policy says no\r\n$/);
  }
  // A DNSBL allowlisting and a dunno: allowlisted as soon as the policy answers.
  {
    const t = new FakeTransport();
    const h = harness(wl, null, { policy: t });
    h.connect('192.0.2.43');
    h.dns.answerAll(true);
    await settle();
    t.answer({ action: 'dunno' });
    await settle();
    assert.equal(h.named('PASS NEW')[0]?.['allowlisted'], true);
    assert.equal(h.backends.length, 1);
  }
});
