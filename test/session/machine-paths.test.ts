/*
 * The session state machine's less travelled paths, on the fake clock with
 * fake sockets (test/helpers/fake-session.ts): the per-client connection
 * limit, the fields of the accept-time events, the denylist under shadow,
 * a pass still valid that spares a lookup, what the policy service is told
 * at accept, a busy policy service, the greet wait without a pregreet test,
 * and early bytes under shadow and drop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, FakeSocket, settle, envelope, backendGreets, type Harness } from '../helpers/fake-session.js';
import { startSession } from '../../src/session/machine.js';
import type { ScreenSocket } from '../../src/session/state.js';
import type { Personality } from '../../src/session/generation.js';
import { FakeTransport } from '../helpers/fake-policy.js';
import { TestIndex } from '../../src/checks/tests.js';
import { withPasses, type SharedTier, type VerdictRecord } from '../../src/cache/store.js';

const base = { pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' } };
const T0 = 1_800_000_000_000;


/** Start a session on a socket the test made (its remote and local addresses), with a personality of the harness. */
function connectOn(h: Harness, sock: FakeSocket, client: string, personality: Personality = h.personality): void {
  startSession(h.ctx, sock as unknown as ScreenSocket, client, sock.remotePort, personality);
}

const stressOf = (h: Harness): Personality => (h.personality.gen as unknown as { personalities: { stress: Personality } }).personalities.stress;

test('limits.max_per_client: the connection past the limit gets 421 and is closed, TOO MANY CONNECTIONS counts those open; others are served', async () => {
  const h = harness({ ...base, limits: { max_per_client: 2 } });
  const a = h.connect('192.0.2.40');
  const b = h.connect('192.0.2.40');
  assert.equal(h.named('TOO MANY CONNECTIONS').length, 0, 'two are within the limit');
  const c = h.connect('192.0.2.40');
  assert.equal(c.sock.text(), '421 4.7.0 Error: too many connections\r\n');
  assert.equal(c.sock.ended, true);
  assert.equal(c.session(), undefined, 'no session for it');
  const ev = h.named('TOO MANY CONNECTIONS');
  assert.equal(ev.length, 1);
  assert.deepEqual({ ...ev[0] }, { level: 30, event: 'TOO MANY CONNECTIONS', client: '192.0.2.40', port: 40003, count: 2, msg: ev[0]?.['msg'] });
  assert.equal(h.named('CONNECT').length, 2, 'the refused one never connected as a session');
  // Another address is not limited by this one's connections.
  const other = h.connect('192.0.2.41');
  assert.equal(other.sock.text(), '220-screen.test ESMTP\r\n');
  // One of the two hangs up: its place is free again.
  a.sock.hangup();
  await settle();
  const d = h.connect('192.0.2.40');
  assert.equal(d.sock.text(), '220-screen.test ESMTP\r\n', 'accepted once one of the two closed');
  assert.equal(h.named('TOO MANY CONNECTIONS').length, 1);
  for (const s of [b.sock, d.sock, other.sock]) s.hangup();
  await settle();
});

test('limits.max_per_client: 1 refuses the second at once; the first one\'s close frees it, also after a verdict', async () => {
  const h = harness({ ...base, limits: { max_per_client: 1 } });
  const a = h.connect('192.0.2.42');
  assert.match(h.connect('192.0.2.42').sock.text(), /^421 4\.7\.0 Error: too many connections\r\n$/);
  assert.equal(h.named('TOO MANY CONNECTIONS')[0]?.['count'], 1);
  h.clock.advance(2000);
  backendGreets(h);
  assert.equal(h.named('PASS NEW').length, 1);
  a.sock.hangup();
  await settle();
  for (let i = 0; i < 3; i++) {
    const n = h.connect('192.0.2.42');
    assert.equal(n.sock.text(), '', `connection ${i + 2} after the first closed: PASS OLD, served`);
    n.sock.hangup();
    await settle();
  }
  assert.equal(h.named('TOO MANY CONNECTIONS').length, 1);
});

test('limits.max_per_client: 0 is unlimited (no connection refused)', async () => {
  const h = harness({ ...base, limits: { max_per_client: 0 } });
  for (let i = 0; i < 60; i++) assert.equal(h.connect('192.0.2.43').sock.text(), '220-screen.test ESMTP\r\n');
  assert.equal(h.named('TOO MANY CONNECTIONS').length, 0);
  assert.equal(h.ctx.sessions.size, 60);
});

test('limits.max_per_client with workers_accept shared: the host count the primary sent refuses at the limit, counts below it do not, max 0 ignores it', async () => {
  const h = harness({ ...base, limits: { max_per_client: 3 } });
  const told: Array<[string, number]> = [];
  h.ctx.onClientCount = (client, count) => { told.push([client, count]); };
  // What the primary last said: this client has 3 open on the host (other workers), that one 2.
  h.ctx.hostClients = new Map([['192.0.2.45', 3], ['192.0.2.46', 2]]);
  const full = h.connect('192.0.2.45');
  assert.equal(full.sock.text(), '421 4.7.0 Error: too many connections\r\n', 'at the limit host-wide, none here: refused');
  const ev = h.named('TOO MANY CONNECTIONS');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]?.['count'], 3, 'the count logged is the host\'s');
  assert.deepEqual(told, [], 'a refused connection is not reported as counted');
  const room = h.connect('192.0.2.46');
  assert.equal(room.sock.text(), '220-screen.test ESMTP\r\n', '2 of 3 host-wide: served');
  assert.deepEqual(told, [['192.0.2.46', 1]], 'this worker reports its own count of the client');
  const unknown = h.connect('192.0.2.47');
  assert.equal(unknown.sock.text(), '220-screen.test ESMTP\r\n', 'a client the primary did not name: served');
  // Without a per-client limit the host counts are not read.
  const h0 = harness({ ...base, limits: { max_per_client: 0 } });
  h0.ctx.hostClients = new Map([['192.0.2.45', 99]]);
  assert.equal(h0.connect('192.0.2.45').sock.text(), '220-screen.test ESMTP\r\n', 'max_per_client 0: unlimited');
  for (const c of [room, unknown]) c.sock.hangup();
  await settle();
});

test('limits.max_per_client under the stress personality: TOO MANY CONNECTIONS says stress', () => {
  const h = harness({ ...base, limits: { max_per_client: 1 } });
  const stress = stressOf(h);
  connectOn(h, new FakeSocket('192.0.2.44', 41000), '192.0.2.44', stress);
  const refused = new FakeSocket('192.0.2.44', 41001);
  connectOn(h, refused, '192.0.2.44', stress);
  assert.equal(refused.text(), '421 4.7.0 Error: too many connections\r\n');
  const ev = h.named('TOO MANY CONNECTIONS')[0];
  assert.deepEqual([ev?.['client'], ev?.['port'], ev?.['stress'], ev?.['count']], ['192.0.2.44', 41001, true, 1]);
});

test('CONNECT names the listener address and port; ALLOWLISTED and DENYLISTED name the access-list entry that matched', () => {
  const h = harness(base, '192.0.2.48/29 permit\n192.0.2.56/29 reject\n');
  const sock = new FakeSocket('192.0.2.49', 41002);
  sock.localAddress = '127.0.0.7';
  sock.localPort = 2525;
  connectOn(h, sock, '192.0.2.49');
  const c = h.named('CONNECT')[0];
  assert.deepEqual([c?.['local'], c?.['local_port']], ['127.0.0.7', 2525]);
  assert.equal(h.named('ALLOWLISTED')[0]?.['entry'], '192.0.2.48/29');
  h.connect('192.0.2.57');
  const d = h.named('DENYLISTED')[0];
  assert.deepEqual([d?.['entry'], d?.['action'], 'would' in (d ?? {})], ['192.0.2.56/29', 'enforce', false]);
});

test('the denylist under mode shadow: DENYLISTED with would, handed over as "shadow", no PASS NEW, the pregreet it passed remembered', async () => {
  const h = harness({ ...base, mode: 'shadow' }, '192.0.2.61 reject\n');
  const { sock } = h.connect('192.0.2.61');
  const d = h.named('DENYLISTED')[0];
  assert.deepEqual([d?.['entry'], d?.['action'], d?.['would']], ['192.0.2.61', 'shadow', 'reject']);
  h.clock.advance(2000);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'shadow');
  assert.equal(h.named('PASS NEW').length, 0);
  assert.deepEqual(h.writes.map(([k, r]) => [k, r[TestIndex.pregreet]]), [['192.0.2.61', T0 + 2000 + 86_400_000]], 'the test it passed, for its day');
  assert.match(sock.text(), /220 backend\.test ESMTP\r\n$/);
  sock.hangup();
  await settle();
});

test('the denylist under drop: 521 with postscreen\'s denylist text; under enforce NOQUEUE says denylist', async () => {
  const h = harness({ ...base, access: { action: 'drop' } }, '192.0.2.61 reject\n');
  assert.equal(h.connect('192.0.2.61').sock.text(), '521 5.3.2 Service currently unavailable\r\n');
  const e = harness({ ...base, access: { action: 'enforce' } }, '192.0.2.61 reject\n');
  const { sock } = e.connect('192.0.2.61');
  e.clock.advance(2000);
  envelope(sock);
  assert.equal(e.named('NOQUEUE')[0]?.['reason'], 'denylist');
});

test('PASS OLD from memory: handed over with verdict "old"', async () => {
  const h = harness(base);
  h.store.set('192.0.2.16', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  const { sock } = h.connect('192.0.2.16');
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'old');
  sock.hangup();
  await settle();
});

test('a DNSBL pass still valid spares the lookup; one that expires this very millisecond does not', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const now = h.clock.now();
  h.store.set('192.0.2.70', withPasses(null, [[TestIndex.dnsbl, now + 1]]));
  h.store.set('192.0.2.71', withPasses(null, [[TestIndex.dnsbl, now]]));
  h.connect('192.0.2.70');
  assert.equal(h.dns.pending.length, 0, 'valid for one more millisecond: not asked');
  h.connect('192.0.2.71');
  assert.deepEqual(h.dns.pending.map((q) => q.name), ['71.2.0.192.bl.test'], 'expired now: asked again');
  h.clock.advance(2000);
  const pn = h.named('PASS NEW');
  assert.equal(pn.length, 2);
});

test('a pregreet under mode shadow: PREGREET with action shadow and would reject, handed over as "shadow" with the early bytes, the old pregreet pass cleared', async () => {
  const h = harness({ ...base, mode: 'shadow', greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
  h.store.set('192.0.2.80', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  h.writes.length = 0;
  const { sock } = h.connect('192.0.2.80');
  sock.feed('EHLO early.test\r\n');
  const ev = h.named('PREGREET')[0];
  assert.deepEqual([ev?.['action'], ev?.['would'], ev?.['bytes']], ['shadow', 'reject', 17]);
  assert.deepEqual(h.writes.map(([k, r]) => [k, r[TestIndex.pregreet]])[0], ['192.0.2.80', 0], 'the old pass cleared at once');
  assert.equal(h.store.get('192.0.2.80')?.[TestIndex.pregreet], 0);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'shadow');
  assert.equal(h.named('PASS NEW').length, 0);
  assert.match((h.backends[0] as FakeSocket).text(), /EHLO early\.test\r\n$/, 'the early EHLO went to the backend');
  sock.hangup();
  await settle();
});

test('a pregreet under enforce: PREGREET says action enforce (no would); NOQUEUE at RCPT says pregreet', async () => {
  const h = harness(base);
  const { sock } = h.connect('192.0.2.81');
  sock.feed('EHLO early.test\r\n');
  const ev = h.named('PREGREET')[0];
  assert.deepEqual([ev?.['action'], 'would' in (ev ?? {})], ['enforce', false]);
  sock.feed('MAIL FROM:<a@early.test>\r\nRCPT TO:<b@screen.test>\r\n');
  assert.equal(h.named('NOQUEUE')[0]?.['reason'], 'pregreet');
});

test('denylisted under enforce, then a pregreet under enforce: the RCPT reply and reason stay the denylist\'s (the first failure)', async () => {
  const h = harness({ ...base, access: { action: 'enforce' } }, '192.0.2.82 reject\n');
  const { sock } = h.connect('192.0.2.82');
  sock.feed('EHLO early.test\r\n');
  assert.equal(h.named('PREGREET').length, 1);
  sock.feed('MAIL FROM:<a@early.test>\r\nRCPT TO:<b@screen.test>\r\n');
  assert.match(sock.text(), /550 5\.3\.2 Service currently unavailable\r\n$/);
  assert.equal(h.named('NOQUEUE')[0]?.['reason'], 'denylist');
});

test('pregreet drop: the client\'s old pregreet pass is cleared in the store before the 521', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'drop' }, greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
  h.store.set('192.0.2.83', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000], [TestIndex.greylist, h.clock.now() - 1]]));
  h.writes.length = 0;
  const { sock } = h.connect('192.0.2.83');
  sock.feed('HELO x\r\n');
  assert.match(sock.text(), /521 /);
  assert.deepEqual(h.writes.map(([k, r]) => [k, r[TestIndex.pregreet]]), [['192.0.2.83', 0]]);
  await settle();
});

test('more than 4 KiB early under mode shadow: PREGREET LIMIT with outcome 421, closed, never handed over (as ignore)', async () => {
  const h = harness({ ...base, mode: 'shadow' });
  const { sock } = h.connect('192.0.2.84');
  sock.feed(Buffer.alloc(4096 + 10, 0x41));
  const lim = h.named('PREGREET LIMIT')[0];
  assert.deepEqual([lim?.['action'], lim?.['outcome'], lim?.['discarded']], ['shadow', '421', 10]);
  assert.match(sock.text(), /421 4\.7\.0 screen\.test Error: too much data before the greeting\r\n$/);
  await settle();
  assert.equal(h.backends.length, 0);
});

test('more than 4 KiB early in two reads, DNSBL outstanding: PREGREET LIMIT is logged once, the session waits on', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.85');
  sock.feed(Buffer.alloc(4096 + 10, 0x41));
  sock.feed(Buffer.alloc(500, 0x41));
  assert.equal(h.named('PREGREET LIMIT').length, 1);
  assert.equal(h.named('PREGREET').length, 1, 'the first early read is the pregreet; later ones are only counted');
  assert.equal(sock.ended, false);
  h.dns.answerAll(false);
  await settle();
  assert.equal(h.named('PREGREET LIMIT').length, 1);
});

test('after the greet wait the client\'s bytes are not early: a client handed over may send any amount (no PREGREET, no limit)', async () => {
  const h = harness(base);
  const { sock } = h.connect('192.0.2.86');
  h.clock.advance(2000);
  backendGreets(h);
  sock.feed(Buffer.alloc(6000, 0x44));
  await settle();
  assert.equal(h.named('PREGREET').length, 0);
  assert.equal(h.named('PREGREET LIMIT').length, 0);
  assert.equal(sock.ended, false);
  assert.equal((h.backends[0] as FakeSocket).text().length, 6000, 'all of it reached the backend');
  assert.equal(h.writes[0]?.[1][TestIndex.pregreet], T0 + 2000 + 86_400_000, 'the pass stands');
  sock.hangup();
  await settle();
});

test('a pregreeter under ignore handed over when the DNSBL answers may send any amount afterwards (no PREGREET LIMIT, not closed)', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' }, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.87');
  sock.feed('EHLO early.test\r\n');
  assert.equal(h.backends.length, 0, 'waiting for the DNSBL');
  h.dns.answerAll(false);
  await settle();
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored');
  sock.feed(Buffer.alloc(6000, 0x44));
  await settle();
  assert.equal(h.named('PREGREET LIMIT').length, 0);
  assert.equal(sock.ended, false);
  assert.ok((h.backends[0] as FakeSocket).text().endsWith('D'.repeat(6000)));
  sock.hangup();
  await settle();
});

test('a pregreeter under ignore still waiting for the DNSBL when the wait ends: no pregreet pass written', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' }, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.88');
  sock.feed('EHLO early.test\r\n');
  h.clock.advance(2000);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored');
  for (const [, r] of h.writes) assert.equal(r[TestIndex.pregreet], 0, 'a pregreeter earns no pregreet pass');
  sock.hangup();
  await settle();
});

test('a handler that throws: INTERNAL ERROR names it (greet wait, pregreet data, check answer, conclude), 421, closed', async () => {
  const boom = (): never => {
    throw new Error('store down');
  };
  // The greet wait's end: the verdict's store write throws.
  const a = harness(base);
  const sa = a.connect('192.0.2.90').sock;
  a.store.set = boom;
  a.clock.advance(2000);
  assert.deepEqual(a.named('INTERNAL ERROR').map((e) => [e['where'], e['error']]), [['greet wait', 'store down']]);
  assert.match(sa.text(), /421 4\.3\.2 Service currently unavailable\r\n$/);
  // Early data: clearing an old pregreet pass throws.
  const b = harness({ ...base, greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
  b.store.set('192.0.2.91', withPasses(null, [[TestIndex.pregreet, b.clock.now() + 60_000]]));
  const sb = b.connect('192.0.2.91').sock;
  b.store.set = boom;
  sb.feed('EHLO x\r\n');
  assert.equal(b.named('INTERNAL ERROR')[0]?.['where'], 'pregreet data');
  // A DNSBL answer that ends the wait: the verdict's store write throws.
  const c = harness({ ...base, pregreet: { enable: false }, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  c.connect('192.0.2.92');
  c.store.set = boom;
  c.dns.answerAll(false);
  await settle();
  assert.equal(c.named('INTERNAL ERROR')[0]?.['where'], 'check answer');
  // Nothing to wait for (no pregreet test, no check): the verdict at once, in its own task.
  const d = harness({ ...base, pregreet: { enable: false }, greylist: { enable: true } });
  d.store.set = boom;
  d.connect('192.0.2.93');
  await settle();
  assert.equal(d.named('INTERNAL ERROR')[0]?.['where'], 'conclude');
  await settle();
});

const withPolicy = (raw: Record<string, unknown>, acl: string | null = null): { h: Harness; t: FakeTransport } => {
  const t = new FakeTransport();
  return { h: harness({ ...base, policy: { url: 'http://127.0.0.1:9/p' }, ...raw }, acl, { policy: t }), t };
};

test('the policy is told at accept: the PROXY peer when the client came through one (not for the client\'s own ::ffff: form), the tests with an unexpired pass, denylisted', () => {
  const { h, t } = withPolicy({ dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } }, '192.0.2.100 reject\n');
  const now = h.clock.now();
  // Through a proxy at 127.0.0.9; the pregreet pass valid one more millisecond, the DNSBL one expired this millisecond.
  h.store.set('192.0.2.101', withPasses(null, [[TestIndex.pregreet, now + 1], [TestIndex.dnsbl, now]]));
  connectOn(h, new FakeSocket('127.0.0.9', 42001), '192.0.2.101');
  // The client's own address in its IPv4-mapped form: no proxy.
  connectOn(h, new FakeSocket('::ffff:192.0.2.102', 42002), '192.0.2.102');
  // Denylisted under enforce: the tests still run, and the service is told.
  connectOn(h, new FakeSocket('192.0.2.100', 42003), '192.0.2.100');
  // A proxy at an IPv6 address with ::ffff: inside it (only a leading ::ffff: is the client's own mapped form).
  connectOn(h, new FakeSocket('1::ffff:1.2.3.4', 42006), '11.2.3.4');
  // A socket that no longer knows its peer (reset at once): no proxy.
  const gone = new FakeSocket('192.0.2.109', 42007);
  (gone as unknown as { remoteAddress: undefined }).remoteAddress = undefined;
  connectOn(h, gone, '192.0.2.109');
  assert.deepEqual(t.calls.map((c) => c.body), [
    { stage: 'connect', client: '192.0.2.101', port: 42001, listener: '127.0.0.1:25', proxy: '127.0.0.9', passed: ['pregreet'], denylisted: false },
    { stage: 'connect', client: '192.0.2.102', port: 42002, listener: '127.0.0.1:25', proxy: null, passed: [], denylisted: false },
    { stage: 'connect', client: '192.0.2.100', port: 42003, listener: '127.0.0.1:25', proxy: null, passed: [], denylisted: true },
    { stage: 'connect', client: '11.2.3.4', port: 42006, listener: '127.0.0.1:25', proxy: '1::ffff:1.2.3.4', passed: [], denylisted: false },
    { stage: 'connect', client: '192.0.2.109', port: 42007, listener: '127.0.0.1:25', proxy: null, passed: [], denylisted: false },
  ]);
  assert.equal(h.named('INTERNAL ERROR').length, 0);
});

test('the policy is told the listener as the socket has it, and an empty one when the socket no longer knows it', () => {
  const { h, t } = withPolicy({});
  const a = new FakeSocket('192.0.2.103', 42004);
  a.localAddress = '127.0.0.5';
  a.localPort = 587;
  connectOn(h, a, '192.0.2.103');
  const b = new FakeSocket('192.0.2.104', 42005);
  (b as unknown as { localAddress: undefined; localPort: undefined }).localAddress = undefined;
  (b as unknown as { localAddress: undefined; localPort: undefined }).localPort = undefined;
  connectOn(h, b, '192.0.2.104');
  assert.deepEqual(t.calls.map((c) => [c.body['listener'], c.body['proxy']]), [['127.0.0.5:587', null], [':0', null]]);
});

test('a busy policy service (max_in_flight reached) is not asked, and the client is not held for its budget', async () => {
  const { h, t } = withPolicy({ pregreet: { enable: false }, policy: { url: 'http://127.0.0.1:9/p', max_in_flight: 1, budget: '150ms' } });
  h.connect('192.0.2.105');
  assert.equal(t.calls.length, 1);
  h.connect('192.0.2.106');
  assert.equal(t.calls.length, 1, 'the second is not asked');
  await settle();
  assert.equal(h.backends.length, 1, 'the second is handed over at once, the clock never moved');
  assert.equal(h.named('PASS NEW').length, 0, 'nothing was tested: not a PASS NEW');
});

test('without a pregreet test the greeting waits for the slowest check, at most its deadline (DNSBL 300 ms beside a policy budget of 150 ms)', async () => {
  const { h } = withPolicy({ pregreet: { enable: false }, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce', timeout: '300ms' }, policy: { url: 'http://127.0.0.1:9/p', budget: '150ms' } });
  const { sock } = h.connect('192.0.2.107');
  h.clock.advance(299);
  assert.equal(h.backends.length, 0, 'still waiting for the DNSBL');
  assert.equal(sock.text(), '');
  h.clock.advance(1);
  assert.equal(h.backends.length, 1, 'the DNSBL deadline ended the wait');
});

test('a policy permit ends the wait before any pregreet: the client\'s bytes after it go to the backend, they are no pregreet', async () => {
  const { h, t } = withPolicy({});
  const { sock } = h.connect('192.0.2.108');
  t.answer({ action: 'permit' });
  await settle();
  backendGreets(h);
  sock.feed('EHLO late.test\r\n');
  await settle();
  assert.equal(h.named('PREGREET').length, 0);
  assert.match((h.backends[0] as FakeSocket).text(), /EHLO late\.test\r\n$/);
  sock.hangup();
  await settle();
});

test('a reload that lifts max_per_client to 0: the connections accepted then do not count, nor reset the count of those accepted before', () => {
  const h = harness({ ...base, limits: { max_per_client: 2 } });
  const limited = h.personality;
  const unlimited = { ...limited, config: { ...limited.config, limits: { ...limited.config.limits, max_per_client: 0 } } } as Personality;
  connectOn(h, new FakeSocket('192.0.2.45', 43001), '192.0.2.45', limited);
  connectOn(h, new FakeSocket('192.0.2.45', 43002), '192.0.2.45', limited);
  connectOn(h, new FakeSocket('192.0.2.45', 43003), '192.0.2.45', unlimited);
  const third = new FakeSocket('192.0.2.45', 43004);
  connectOn(h, third, '192.0.2.45', limited);
  assert.equal(third.text(), '421 4.7.0 Error: too many connections\r\n', 'two were open under the limit of 2');
  assert.equal(h.named('TOO MANY CONNECTIONS')[0]?.['count'], 2);
});

test('a DNSBL allowlisting does not cut short the wait of a client with an ignored pregreet: handed over as "ignored", not allowlisted', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' }, dnsbl: { sites: ['wl.test*-5'], allowlist_threshold: -1 } });
  const { sock } = h.connect('192.0.2.110');
  sock.feed('EHLO early.test\r\n');
  h.dns.answerAll(true);
  await settle();
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored');
  assert.equal(h.named('PASS NEW').length, 0);
  sock.hangup();
  await settle();
});

test('a DNSBL allowlisting ends the wait at once when the policy service was too busy to be asked', async () => {
  const { h, t } = withPolicy({ dnsbl: { sites: ['wl.test*-5'], allowlist_threshold: -1 }, policy: { url: 'http://127.0.0.1:9/p', max_in_flight: 1 } });
  h.connect('192.0.2.111');
  h.connect('192.0.2.112');
  assert.equal(t.calls.length, 1, 'the second is not asked');
  h.dns.answerAll(true);
  await settle();
  const pn = h.named('PASS NEW');
  assert.deepEqual(pn.map((e) => [e['client'], e['allowlisted']]), [['192.0.2.112', true]], 'the second, at the DNS answer; the first waits for its policy answer');
  assert.equal(h.backends.length, 1);
});

test('a pregreet under mode shadow, the DNSBL still out when the wait ends: no pregreet pass remembered', async () => {
  const h = harness({ ...base, mode: 'shadow', dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.113');
  sock.feed('EHLO early.test\r\n');
  assert.equal(h.backends.length, 0, 'waiting for the DNSBL');
  h.clock.advance(2000);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'shadow');
  for (const [, r] of h.writes) assert.equal(r[TestIndex.pregreet], 0, 'the shadowed failure is not remembered as passed');
  sock.hangup();
  await settle();
});

/** A shared tier (cache.store: redis) whose answers the test gives. */
class FakeTier implements SharedTier {
  up = true;
  timeoutMs = 100;
  counts = { lookups: 0, hits: 0, misses: 0 };
  lookups: Array<{ client: string; answer: (rec: VerdictRecord | null) => void }> = [];
  kept: string[] = [];
  lookup<T>(client: string, owner: T, done: (owner: T, rec: VerdictRecord | null) => void): void {
    this.lookups.push({ client, answer: (rec) => done(owner, rec) });
  }
  keep(client: string): void {
    this.kept.push(client);
  }
  observeShared(): void {
    throw new Error('not used here');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function withTier(h: Harness): FakeTier {
  const tier = new FakeTier();
  Object.defineProperty(h.store, 'shared', { value: tier });
  return tier;
}

test('a denylisted client is not looked up in the shared tier: a pass there cannot make it PASS OLD', async () => {
  for (const action of ['enforce', 'ignore'] as const) {
    const h = harness({ ...base, access: { action } }, '192.0.2.120 reject\n');
    const tier = withTier(h);
    h.connect('192.0.2.120');
    assert.deepEqual(tier.lookups, [], action);
    h.clock.advance(2000);
    assert.equal(h.named('PASS OLD').length, 0);
  }
});

test('the shared tier answering after the client hung up: nothing kept, no PASS OLD', async () => {
  const h = harness(base);
  const tier = withTier(h);
  const { sock } = h.connect('192.0.2.121');
  sock.hangup();
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  await settle();
  assert.equal(h.named('PASS OLD').length, 0);
  assert.deepEqual(tier.kept, []);
  assert.equal(h.backends.length, 0);
});

test('a pregreet seen here, then the shared record: its pregreet pass is cleared in memory at once; a shared record without one is taken as it is', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const tier = withTier(h);
  const now = h.clock.now();
  const a = h.connect('192.0.2.122');
  a.sock.feed('EHLO early.test\r\n');
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, now + 3_600_000], [TestIndex.dnsbl, now + 60_000]]));
  const mem = h.store.get('192.0.2.122');
  assert.deepEqual([mem?.[TestIndex.pregreet], mem?.[TestIndex.dnsbl]], [0, now + 60_000], 'written now, without the pregreet pass');
  assert.deepEqual(tier.kept, [], 'the stale record is not copied as it is');
  // No pregreet pass in the shared record: nothing to clear, the record is the client's and kept.
  const b = h.connect('192.0.2.123');
  b.sock.feed('EHLO early.test\r\n');
  tier.lookups[1]?.answer(withPasses(null, [[TestIndex.dnsbl, now + 60_000]]));
  assert.deepEqual(tier.kept, ['192.0.2.123']);
  assert.equal(b.session()?.record?.[TestIndex.dnsbl], now + 60_000, 'the shared DNSBL pass is the session\'s record now');
  a.sock.hangup();
  b.sock.hangup();
  await settle();
});

test('PASS OLD from the shared tier while a check runs and another was skipped (its pass valid): the running one cancelled, verdict "old"', async () => {
  const { h, t } = withPolicy({ dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const tier = withTier(h);
  const now = h.clock.now();
  h.store.set('192.0.2.124', withPasses(null, [[TestIndex.dnsbl, now + 60_000]]));
  const { sock } = h.connect('192.0.2.124');
  assert.equal(h.dns.pending.length, 0, 'the DNSBL pass is valid: no lookup');
  assert.equal(t.calls.length, 1, 'the policy is asked');
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, now + 60_000], [TestIndex.dnsbl, now + 60_000]]));
  assert.equal(h.named('INTERNAL ERROR').length, 0);
  assert.equal(h.named('PASS OLD')[0]?.['tier'], 'shared');
  t.answer({ action: 'reject' });
  await settle();
  assert.equal(h.named('POLICY').length, 0, 'the cancelled call\'s answer is not logged');
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'old');
  sock.hangup();
  await settle();
});

test('a shared-tier answer whose handling throws: INTERNAL ERROR names the shared store answer, 421, closed', async () => {
  const h = harness(base);
  const tier = withTier(h);
  const { sock } = h.connect('192.0.2.125');
  sock.feed('EHLO early.test\r\n');
  h.store.set = (): never => {
    throw new Error('store down');
  };
  tier.lookups[0]?.answer(withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  assert.deepEqual(h.named('INTERNAL ERROR').map((e) => [e['where'], e['error']]), [['shared store answer', 'store down']]);
  assert.match(sock.text(), /421 4\.3\.2 Service currently unavailable\r\n$/);
  await settle();
});

test('a denylisted client under ignore still waits out the greet wait when a DNSBL allowlists it: the pregreet test runs, then "ignored"', async () => {
  const h = harness({ ...base, access: { action: 'ignore' }, dnsbl: { sites: ['wl.test*-5'], allowlist_threshold: -1 } }, '192.0.2.126 reject\n');
  const { sock } = h.connect('192.0.2.126');
  h.dns.answerAll(true);
  await settle();
  assert.equal(h.backends.length, 0, 'an ignored failure earns no allowlisting: the wait goes on');
  h.clock.advance(1999);
  assert.equal(h.backends.length, 0);
  h.clock.advance(1);
  backendGreets(h);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored');
  assert.equal(h.named('PASS NEW').length, 0);
  sock.hangup();
  await settle();
});

test('mode shadow at the verdict: DNSBL and GREYLIST logged with action shadow and would (early retries with wait_ms); handed over as "shadow"; under enforce no would', async () => {
  const h = harness({ ...base, mode: 'shadow', greylist: { enable: true, min_delay: '1m' }, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const a = h.connect('192.0.2.130');
  h.dns.answerAll(false);
  await settle();
  h.clock.advance(2000);
  backendGreets(h);
  h.clock.advance(10_000);
  h.connect('192.0.2.130');
  h.dns.answerAll(false);
  await settle();
  h.clock.advance(2000);
  h.connect('192.0.2.131');
  h.dns.answerAll(true);
  await settle();
  h.clock.advance(2000);
  const g = h.named('GREYLIST').map((e) => [e['network'], e['state'], e['reason'], e['wait_ms'], e['action'], e['would']]);
  assert.deepEqual(g, [['192.0.2.0/24', 'defer', 'new', undefined, 'shadow', 'defer'], ['192.0.2.0/24', 'defer', 'early', 48_000, 'shadow', 'defer']]);
  const d = h.named('DNSBL')[0];
  assert.deepEqual([d?.['client'], d?.['score'], d?.['action'], d?.['would']], ['192.0.2.131', 1, 'shadow', 'reject']);
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'shadow');
  assert.equal(h.named('PASS NEW').length, 0);
  const e = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  e.connect('192.0.2.132');
  e.dns.answerAll(true);
  await settle();
  e.clock.advance(2000);
  const de = e.named('DNSBL')[0];
  assert.deepEqual([de?.['action'], 'would' in (de ?? {})], ['enforce', false]);
  a.sock.hangup();
  await settle();
});
