/*
 * The session state machine on a fake clock with fake sockets: every path
 * ends in one outcome, at most one verdict write for the client, one
 * DISCONNECT, and no timer left armed. The greet wait ends as soon as no
 * early test is left to wait for (postscreen's "terminate the greet delay").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type FakeSocket, type Harness, settle, envelope, backendGreets } from '../helpers/fake-session.js';
import { TestIndex } from '../../src/checks/tests.js';
import { withPasses } from '../../src/cache/store.js';
// The 4 KiB of early bytes kept is the README's number, written out (not the module's EARLY_KEEP).





function ends(h: Harness, client: string): { disconnects: number } {
  const mine = h.events.filter((e) => e['client'] === client);
  return { disconnects: mine.filter((e) => e['event'] === 'DISCONNECT').length };
}

const base = { pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' } };

test('a client that waits its turn: PASS NEW at the end of the greet wait, handoff, one store write', async () => {
  const h = harness(base);
  const { sock } = h.connect('192.0.2.10');
  assert.equal(sock.text(), '220-screen.test ESMTP\r\n');
  h.clock.advance(1999);
  assert.equal(h.named('PASS NEW').length, 0, 'still waiting');
  h.clock.advance(1);
  assert.equal(h.named('PASS NEW').length, 1);
  backendGreets(h);
  assert.equal(h.named('HANDOFF').length, 1);
  assert.match(sock.text(), /^220-screen\.test ESMTP\r\n220 backend\.test ESMTP\r\n$/);
  assert.deepEqual(h.writes.map(([k]) => k), ['192.0.2.10']);
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.10').disconnects, 1);
  assert.equal(h.clock.timers.length, 0, 'no timer left');
});

test('a pregreeter under enforce without DNSBL gets its dummy session at once, not at the end of the wait', async () => {
  const h = harness(base);
  const { sock } = h.connect('192.0.2.11');
  h.clock.advance(5);
  sock.feed('EHLO early.test\r\n');
  // No waiting: the engine answers the early EHLO now (no 220 completion for a pregreeter).
  assert.equal(h.named('PREGREET').length, 1);
  assert.match(sock.text(), /^220-screen\.test ESMTP\r\n250/);
  sock.feed('MAIL FROM:<a@early.test>\r\nRCPT TO:<b@screen.test>\r\n');
  assert.match(sock.text(), /550 5\.5\.1 Protocol error\r\n$/);
  assert.equal(h.named('NOQUEUE').length, 1);
  assert.equal(h.clock.now() - 1_800_000_000_000, 5, 'the fake clock did not have to move');
  sock.feed('QUIT\r\n');
  await settle();
  assert.equal(ends(h, '192.0.2.11').disconnects, 1);
  assert.equal(h.writes.length, 0, 'a failed client earns nothing');
  assert.equal(h.clock.timers.length, 0);
});

test('a pregreeter with a DNSBL lookup outstanding waits for the answer, then the dummy session', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.12');
  sock.feed('EHLO early.test\r\n');
  assert.equal(h.named('PREGREET').length, 1);
  assert.doesNotMatch(sock.text(), /250/, 'still waiting for DNSBL');
  h.dns.answerAll(false);
  await settle();
  assert.match(sock.text(), /250/, 'the DNSBL answer ended the wait');
  assert.equal(h.named('DNSBL').length, 0, 'not listed');
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.12').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});

test('a listed client under enforce: DNSBL at the end of the wait, 550 at RCPT, DNSBL pass never stored', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.13');
  h.dns.answerAll(true);
  await settle();
  assert.equal(h.named('DNSBL').length, 0, 'the pregreet test is still to do: the wait goes on');
  h.clock.advance(2000);
  assert.equal(h.named('DNSBL').length, 1);
  envelope(sock);
  assert.match(sock.text(), /550 5\.7\.1 Service unavailable; client \[192\.0\.2\.13\] blocked using bl\.test\r\n$/);
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.13').disconnects, 1);
  assert.equal(h.writes.length, 0);
});

test('pregreet drop: 521 at once, HANGUP is not logged, one DISCONNECT', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'drop' } });
  const { sock } = h.connect('192.0.2.14');
  sock.feed('HELO x\r\n');
  assert.match(sock.text(), /521 5\.5\.1 Protocol error\r\n$/);
  assert.equal(sock.ended, true);
  sock.hangup();
  await settle();
  assert.equal(h.named('HANGUP').length, 0);
  assert.equal(ends(h, '192.0.2.14').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});

test('pregreet ignore: handed over at once, the early bytes follow the backend greeting, the old pass cleared', async () => {
  // Greylisting (suspicious only) is enabled: a pregreet pass alone is no PASS OLD.
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' }, greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
  h.store.set('192.0.2.15', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  h.writes.length = 0;
  const { sock } = h.connect('192.0.2.15');
  sock.feed('EHLO early.test\r\n');
  backendGreets(h);
  const b = h.backends[0] as FakeSocket;
  assert.match(b.text(), /EHLO early\.test\r\n$/, 'the early EHLO went to the backend');
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored');
  assert.deepEqual(h.writes.map(([k, r]) => [k, r[TestIndex.pregreet]]), [['192.0.2.15', 0]], 'only the old pregreet pass cleared; nothing new remembered');
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.15').disconnects, 1);
});

test('pregreet ignore, more than 4 KiB in one early read: PREGREET LIMIT and 421, no backend (its stream would have a gap)', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' } });
  const { sock } = h.connect('192.0.2.17');
  sock.feed(Buffer.alloc(4096 + 1000, 0x41));
  await settle();
  assert.equal(h.named('PREGREET').length, 1);
  const lim = h.named('PREGREET LIMIT');
  assert.equal(lim.length, 1);
  assert.deepEqual([lim[0]?.['bytes'], lim[0]?.['kept'], lim[0]?.['discarded'], lim[0]?.['outcome']], [5096, 4096, 1000, '421']);
  assert.match(sock.text(), /^220-screen\.test ESMTP\r\n421 4\.7\.0 screen\.test Error: too much data before the greeting\r\n$/);
  assert.equal(h.backends.length, 0, 'never handed over');
  assert.equal(ends(h, '192.0.2.17').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});

test('pregreet ignore, exactly 4 KiB early: no limit, all of it follows the backend greeting', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' } });
  const { sock } = h.connect('192.0.2.18');
  const early = Buffer.alloc(4096, 0x42);
  early.write('EHLO a\r\n', 0);
  sock.feed(early);
  backendGreets(h);
  assert.equal(h.named('PREGREET LIMIT').length, 0);
  const b = h.backends[0] as FakeSocket;
  assert.ok(b.text().endsWith(early.toString('latin1')), 'the 4,096 early bytes reached the backend whole');
  sock.hangup();
  await settle();
});

test('pregreet enforce, more than 4 KiB early: PREGREET LIMIT once, the dummy engine goes on with what was kept (here: an overlong line)', async () => {
  const h = harness(base);
  const { sock } = h.connect('192.0.2.19');
  const early = Buffer.alloc(4096 + 5000, 0x43);
  early.write('EHLO flood.test\r\n', 0);
  sock.feed(early);
  assert.equal(h.named('PREGREET LIMIT')[0]?.['outcome'], 'dummy');
  assert.match(sock.text(), /^220-screen\.test ESMTP\r\n250-/, 'the kept EHLO is answered');
  // The rest of the kept 4 KiB is one overlong line: the engine deals with it as with any client.
  assert.equal(h.named('COMMAND LENGTH LIMIT').length, 1);
  assert.match(sock.text(), /\r\n421 screen\.test Service unavailable - try again later\r\n$/);
  assert.equal(h.named('PREGREET LIMIT').length, 1);
  await settle();
  assert.equal(ends(h, '192.0.2.19').disconnects, 1);
});

test('PASS OLD: handed over at once, nothing written', async () => {
  const h = harness(base);
  h.store.set('192.0.2.16', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  h.writes.length = 0;
  const { sock } = h.connect('192.0.2.16');
  assert.equal(h.named('PASS OLD').length, 1);
  assert.equal(sock.text(), '', 'no teaser for an old client');
  backendGreets(h);
  assert.equal(sock.text(), '220 backend.test ESMTP\r\n');
  assert.equal(h.writes.length, 0);
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.16').disconnects, 1);
});

test('greylisting: the first attempt gets 450 at RCPT, the retry in the window passes (PASS NEW)', async () => {
  const h = harness({ ...base, greylist: { enable: true, min_delay: '1m', max_delay: '1h' } });
  const a = h.connect('192.0.2.17');
  h.clock.advance(2000);
  envelope(a.sock);
  assert.match(a.sock.text(), /450 4\.\d\.\d /);
  assert.equal(h.named('GREYLIST')[0]?.['state'], 'defer');
  a.sock.hangup();
  await settle();
  h.clock.advance(120_000);
  h.connect('192.0.2.17');
  h.clock.advance(2000);
  assert.equal(h.named('GREYLIST')[1]?.['state'], 'pass');
  assert.equal(h.named('PASS NEW').length, 1);
});

test('hang-up during the greet wait: HANGUP in pregreet, one DISCONNECT, no store write, no timer', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1 } });
  const { sock } = h.connect('192.0.2.18');
  sock.hangup();
  await settle();
  h.dns.answerAll(true);
  await settle();
  h.clock.advance(10_000);
  assert.equal(h.named('HANGUP')[0]?.['phase'], 'pregreet');
  assert.equal(ends(h, '192.0.2.18').disconnects, 1);
  assert.equal(h.named('DNSBL').length, 0, 'a late answer after close does nothing');
  assert.equal(h.writes.length, 0);
  assert.equal(h.clock.timers.length, 0);
  assert.equal(sock.writesAfterEnd, 0);
});

test('a silent client in the dummy engine: COMMAND TIME LIMIT after the limit, then closed', async () => {
  const h = harness({ ...base, dummy: { command_time_limit: '10s' }, pregreet: { wait: '2s', action: 'enforce' } });
  const { sock } = h.connect('192.0.2.19');
  sock.feed('X');
  h.clock.advance(9_999);
  assert.equal(h.named('COMMAND TIME LIMIT').length, 0);
  h.clock.advance(1);
  assert.equal(h.named('COMMAND TIME LIMIT').length, 1);
  await settle();
  assert.equal(ends(h, '192.0.2.19').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});

test('backend that never connects: 421 after connect_timeout, BACKEND FAIL, one DISCONNECT', async () => {
  const h = harness({ ...base, backend: { handoff: 'none', connect_timeout: '3s' } });
  const { sock } = h.connect('192.0.2.20');
  h.clock.advance(2000);
  assert.equal(h.backends.length, 1);
  h.clock.advance(3000);
  assert.equal(h.named('BACKEND FAIL')[0]?.['stage'], 'connect');
  assert.match(sock.text(), /421 4\.3\.2 Service currently unavailable\r\n$/);
  await settle();
  assert.equal(ends(h, '192.0.2.20').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});

const ACL = '192.0.2.60 permit\n192.0.2.61 reject\n';

test('allowlisted: ALLOWLISTED and the handoff at once, no teaser, nothing stored', async () => {
  const h = harness(base, ACL);
  const { sock } = h.connect('192.0.2.60');
  assert.equal(h.named('ALLOWLISTED').length, 1);
  backendGreets(h);
  assert.equal(sock.text(), '220 backend.test ESMTP\r\n');
  assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'allowlisted');
  assert.equal(h.writes.length, 0);
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.60').disconnects, 1);
});

for (const action of ['drop', 'enforce', 'ignore'] as const) {
  test(`denylisted under ${action}: one outcome, one DISCONNECT`, async () => {
    const h = harness({ ...base, access: { action } }, ACL);
    const { sock } = h.connect('192.0.2.61');
    assert.equal(h.named('DENYLISTED')[0]?.['action'], action);
    if (action === 'drop') assert.match(sock.text(), /^521 5\.3\.2 /);
    else {
      h.clock.advance(2000);
      if (action === 'enforce') {
        envelope(sock);
        assert.match(sock.text(), /550 5\.3\.2 Service currently unavailable\r\n$/);
      } else {
        backendGreets(h);
        assert.equal(h.named('HANDOFF')[0]?.['verdict'], 'ignored', 'the other tests decide; nothing remembered');
      }
    }
    sock.hangup();
    await settle();
    assert.equal(ends(h, '192.0.2.61').disconnects, 1);
    assert.equal(h.writes.length, 0);
    assert.equal(h.clock.timers.length, 0);
  });
}

test('a DNSBL answer after the greet wait is late: counted as not listed, no DNSBL pass stored, PASS NEW names it', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce' } });
  const { sock } = h.connect('192.0.2.62');
  h.clock.advance(2000);
  assert.deepEqual(h.named('PASS NEW')[0]?.['dnsbl_late'], ['bl.test']);
  h.dns.answerAll(true);
  await settle();
  assert.equal(h.named('DNSBL').length, 0, 'the late listing changes nothing');
  assert.equal(h.writes[0]?.[1][TestIndex.dnsbl], 0);
  backendGreets(h);
  sock.hangup();
  await settle();
  assert.equal(ends(h, '192.0.2.62').disconnects, 1);
});

test('deep tests: 450 at RCPT, the passes written when the dummy session ends (PASS NEW), the retry is PASS OLD', async () => {
  const h = harness({ ...base, deep: { pipelining: { enable: true } } });
  const a = h.connect('192.0.2.63');
  h.clock.advance(2000);
  assert.equal(h.named('PASS NEW').length, 0);
  envelope(a.sock);
  assert.match(a.sock.text(), /450 4\.3\.2 /);
  a.sock.feed('QUIT\r\n');
  await settle();
  assert.deepEqual(h.named('PASS NEW')[0]?.['deep'], ['pipelining']);
  assert.equal(ends(h, '192.0.2.63').disconnects, 1);
  h.connect('192.0.2.63');
  assert.equal(h.named('PASS OLD').length, 1);
});

test('same-connection handoff with no learned EHLO: HANDOFF FALLBACK at start, the 450, the session goes on, the retry is PASS OLD', async () => {
  const h = harness({ ...base, backend: { handoff: 'xclient' }, deep: { pipelining: { enable: true }, after_pass: 'handoff' } });
  const { sock } = h.connect('192.0.2.64');
  h.clock.advance(2000);
  envelope(sock);
  const f = h.named('HANDOFF FALLBACK')[0];
  assert.deepEqual([f?.['reason'], f?.['stage']], ['backend EHLO not learned', 'start']);
  assert.match(sock.text(), /450 4\.3\.2 /);
  assert.equal(h.backends.length, 0, 'no backend connection was opened');
  sock.feed('QUIT\r\n');
  await settle();
  assert.equal(ends(h, '192.0.2.64').disconnects, 1);
  h.connect('192.0.2.64');
  assert.equal(h.named('PASS OLD').length, 1);
});

for (const phase of ['dummy', 'handoff'] as const) {
  test(`hang-up in ${phase}: HANGUP with its phase, one DISCONNECT, no timer left`, async () => {
    const h = harness(base);
    const { sock } = h.connect('192.0.2.65');
    if (phase === 'dummy') sock.feed('EHLO early.test\r\n');
    else h.clock.advance(2000);
    sock.hangup();
    await settle();
    assert.equal(h.named('HANGUP')[0]?.['phase'], phase);
    assert.equal(ends(h, '192.0.2.65').disconnects, 1);
    assert.equal(h.clock.timers.length, 0);
    for (const b of h.backends) assert.equal(b.destroyed, true, 'the backend connection is closed too');
  });
}

test('the handshake times out: 421 after handshake_timeout, BACKEND FAIL at greeting', async () => {
  const h = harness({ ...base, backend: { handoff: 'xclient', handshake_timeout: '4s' } });
  const { sock } = h.connect('192.0.2.66');
  h.clock.advance(2000);
  h.backends[0]?.emit('connect');
  h.clock.advance(4000);
  assert.equal(h.named('BACKEND FAIL')[0]?.['stage'], 'greeting');
  assert.match(sock.text(), /421 4\.3\.2 /);
  await settle();
  assert.equal(ends(h, '192.0.2.66').disconnects, 1);
  assert.equal(h.clock.timers.length, 0);
});
