/*
 * Integration: deep.after_pass: handoff, the same-connection
 * handoff, with the real screener process in front of the private Postfix.
 * Postfix here logs an INFO line at every RCPT from s@example.test (with the
 * client address, proto and helo as it sees them), refuses
 * refused@example.test with 550 5.1.1, and on its XCLIENT port hides DSN
 * from the EHLO reply to 127.0.61.9 only.
 * - swaks passes the deep tests and delivers on its first connection: the
 *   dummy engine's EHLO is what Postfix offered (minus what it never offers),
 *   Postfix sees the real address and HELO, and the message is sent.
 * - A RCPT that Postfix refuses gets Postfix's own 550; the next RCPT, DATA
 *   and QUIT go to Postfix on the same connection; input the client sent
 *   early (after its RCPT) reaches Postfix in order.
 * - A MAIL that Postfix refuses (SIZE over its limit) answers the RCPT.
 * - The same through a PROXY v2 backend.
 * - Fallbacks to reconnect, each logged with its reason (HANDOFF FALLBACK):
 *   a backend that does not offer XCLIENT (Postfix's plain port), a backend
 *   that cannot be reached (EHLO not learned: the built-in EHLO list is
 *   offered), a backend that refuses or never answers the replayed session
 *   (a fake one: failures Postfix cannot be made to show on cue), a session
 *   under STARTTLS, and a backend whose EHLO reply to this client lacks a
 *   keyword the dummy engine offered (DSN). Each gets 450, is remembered,
 *   and its retry is PASS OLD.
 * - A client that hangs up while the backend is asked: HANGUP, no crash.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { type ScreenerProc, portOf, byClient, greeted, withScreener } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient, lastLine, reply, type RawClient } from '../helpers/smtp-client.js';
import { freePorts } from '../helpers/ports.js';

let pf: PostfixInstance;
let tlsDir: string;
let cert: string;
let key: string;

before(async () => {
  pf = await startPostfix({
    main: {
      smtpd_recipient_restrictions:
        'check_recipient_access inline:{{refused@example.test = 550 5.1.1 Recipient refused here}}, ' +
        'check_sender_access inline:{{s@example.test = INFO replayed}}',
      smtpd_discard_ehlo_keyword_address_maps: 'inline:{127.0.61.9=dsn}',
    },
  });
  tlsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-after-pass-'));
  cert = path.join(tlsDir, 'cert.pem');
  key = path.join(tlsDir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=screen.test', '-days', '1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
});
after(async () => {
  await pf?.stop();
  if (tlsDir !== undefined) fs.rmSync(tlsDir, { recursive: true, force: true });
});

const ALL_ON = {
  pipelining: { enable: true, action: 'enforce' },
  non_smtp: { enable: true, action: 'drop' },
  bare_newline: { enable: true, action: 'enforce' },
  after_pass: 'handoff',
};

function cfg(backend: Record<string, unknown> = {}, deep: Record<string, unknown> = ALL_ON, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s', ...backend },
    pregreet: { wait: '1s', action: 'enforce' },
    deep,
    drain_timeout: '5s',
    ...extra,
  };
}

const cmd = reply;
const last = lastLine;

/** The client's retry after a fallback: PASS OLD and Postfix's own greeting. */
async function retryIsPassOld(s: ScreenerProc, addr: string): Promise<void> {
  const again = await connectClient('127.0.0.1', portOf(s), addr);
  await again.readUntil(/^220 .*Postfix/m, 5000);
  again.write('QUIT\r\n');
  await again.closed;
  await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === addr);
}

describe('deep.after_pass: handoff in front of Postfix', () => {
  test('swaks passes the deep tests and delivers on the same connection; Postfix sees the real address and HELO', async () => {
    await withScreener(cfg(), async (s) => {
      const learned = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      assert.equal(learned['state'], 'learned');
      const offered = learned['offered'] as string[];
      assert.ok(offered.includes('SIZE') && offered.includes('DSN') && offered.includes('8BITMIME'), String(offered));
      for (const never of ['PIPELINING', 'XCLIENT', 'STARTTLS', 'VRFY', 'ETRN']) assert.ok(!offered.includes(never), never);
      assert.ok((learned['xclient'] as string[]).includes('HELO'), 'Postfix offers XCLIENT HELO to the screener');

      const addr = '127.0.61.1';
      const since = pf.mark();
      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'after1@example.test', from: 's@example.test', helo: 'sender.test', timeoutS: 15 });
      assert.equal(r.code, 0, r.transcript);
      assert.match(r.transcript, /<-\s+220-screen\.test ESMTP/);
      assert.match(r.transcript, /<-\s+220 screen\.test ESMTP/, 'the dummy engine completed the greeting');
      assert.match(r.transcript, /<-\s+250-screen\.test/, 'the EHLO reply is the dummy engine\'s');
      assert.match(r.transcript, /<-\s+250-SIZE/, 'it offers what Postfix offers');
      assert.doesNotMatch(r.transcript, /PIPELINING|XCLIENT/);
      assert.match(r.transcript, /<-\s+250 2\.1\.5 Ok/, 'the RCPT reply is Postfix\'s');
      assert.match(r.transcript, /<-\s+250 2\.0\.0 Ok: queued as/);

      const pass = await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      assert.deepEqual(pass['deep'], ['pipelining', 'non_smtp', 'bare_newline']);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.deepEqual([h['verdict'], h['after'], h['relayed'], h['code'], h['mode']], ['new', 'RCPT', 'RCPT', 250, 'xclient']);
      assert.equal(byClient(s, 'NOQUEUE', addr).length, 0, 'no recipient was refused');
      assert.ok(s.events.indexOf(pass) < s.events.indexOf(h), 'PASS NEW before HANDOFF');

      await pf.waitForLog(/info: RCPT from unknown\[127\.0\.61\.1\]: replayed; from=<s@example\.test> to=<after1@example\.test> proto=ESMTP helo=<sender\.test>/, 10_000, since);
      await pf.waitForLog(/to=<after1@example\.test>, relay=none.*status=sent/, 10_000, since);

      // Remembered: the next connection goes straight to Postfix.
      await retryIsPassOld(s, addr);
    });
  });

  test('a RCPT that Postfix refuses gets Postfix\'s reply; the session goes on with Postfix, input sent early included', async () => {
    await withScreener(cfg(), async (s) => {
      await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      const addr = '127.0.61.2';
      const since = pf.mark();
      const c = await greeted(s, addr);
      assert.match(await cmd(c, 'EHLO raw.test\r\n'), /^250-screen\.test\r\n/);
      assert.match(last(await cmd(c, 'MAIL FROM:<s@example.test>\r\n')), /^250 2\.1\.0/);
      const refused = last(await cmd(c, 'RCPT TO:<refused@example.test>\r\n'));
      assert.match(refused, /^550 5\.1\.1 <refused@example\.test>: Recipient address rejected: Recipient refused here$/);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.deepEqual([h['code'], h['relayed']], [550, 'RCPT']);
      assert.equal(byClient(s, 'NOQUEUE', addr).length, 0);
      // Now Postfix answers, including several commands sent at once.
      c.write('RCPT TO:<ok@example.test>\r\nDATA\r\n');
      await c.readUntil(/^250 2\.1\.5 Ok\r\n/m, 5000);
      await c.readUntil(/^354 /m, 5000);
      assert.match(last(await cmd(c, 'Subject: after-pass\r\n\r\nbody\r\n.\r\n')), /^250 2\.0\.0 Ok: queued as/);
      assert.match(last(await cmd(c, 'QUIT\r\n')), /^221 /);
      await c.closed;
      await pf.waitForLog(/NOQUEUE: reject: RCPT from unknown\[127\.0\.61\.2\]: 550 5\.1\.1 <refused@example\.test>.*helo=<raw\.test>/, 10_000, since);
      await pf.waitForLog(/to=<ok@example\.test>, relay=none.*status=sent/, 10_000, since);
      const d = await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
      assert.equal(d['phase'], 'splice');
    });
  });

  test('a MAIL that Postfix refuses (SIZE over its limit) answers the RCPT; after RSET the client starts over with Postfix', async () => {
    await withScreener(cfg(), async (s) => {
      await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      const addr = '127.0.61.8';
      const c = await greeted(s, addr);
      assert.match(await cmd(c, 'EHLO big.test\r\n'), /^250-SIZE 10240000\r\n/m);
      assert.match(last(await cmd(c, 'MAIL FROM:<s@example.test> SIZE=99999999\r\n')), /^250 2\.1\.0/, 'the dummy engine accepts any MAIL');
      assert.match(last(await cmd(c, 'RCPT TO:<big@example.test>\r\n')), /^552 5\.3\.4 Message size exceeds fixed limit$/);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.deepEqual([h['code'], h['relayed']], [552, 'MAIL']);
      assert.match(last(await cmd(c, 'RCPT TO:<big@example.test>\r\n')), /^503 5\.5\.1 Error: need MAIL command$/, 'Postfix has no transaction');
      assert.match(last(await cmd(c, 'RSET\r\n')), /^250 /);
      assert.match(last(await cmd(c, 'MAIL FROM:<s@example.test> SIZE=100\r\n')), /^250 2\.1\.0/);
      assert.match(last(await cmd(c, 'RCPT TO:<big@example.test>\r\n')), /^250 2\.1\.5/);
      assert.match(last(await cmd(c, 'QUIT\r\n')), /^221 /);
      await c.closed;
    });
  });

  test('input pipelined after the RCPT (pipelining test set to ignore) reaches Postfix after the replayed RCPT', async () => {
    const deep = { pipelining: { enable: true, action: 'ignore' }, after_pass: 'handoff' };
    await withScreener(cfg({}, deep), async (s) => {
      await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      const addr = '127.0.61.3';
      const c = await greeted(s, addr);
      assert.match(await cmd(c, 'EHLO early.test\r\n'), /^250-screen\.test/);
      c.write('MAIL FROM:<s@example.test>\r\nRCPT TO:<early@example.test>\r\nDATA\r\n');
      await c.readUntil(/^250 2\.1\.0 Ok\r\n/m, 5000);
      await c.readUntil(/^250 2\.1\.5 Ok\r\n/m, 5000);
      await c.readUntil(/^354 /m, 5000);
      const p = await s.waitForEvent((e) => e['event'] === 'COMMAND PIPELINING' && e['client'] === addr);
      assert.equal(p['action'], 'ignore');
      assert.match(last(await cmd(c, 'Subject: early\r\n\r\n.\r\n')), /^250 2\.0\.0 Ok: queued as/);
      c.write('QUIT\r\n');
      await c.closed;
      await pf.waitForLog(/to=<early@example\.test>, relay=none.*status=sent/);
    });
  });

  test('through a PROXY v2 backend: the replayed EHLO gives Postfix the HELO, the header the address', async () => {
    await withScreener(cfg({ address: `127.0.0.1:${pf.proxyPort}`, handoff: 'proxy-v2' }), async (s) => {
      const learned = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      assert.equal(learned['state'], 'learned');
      const addr = '127.0.61.4';
      const since = pf.mark();
      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'proxy@example.test', from: 's@example.test', helo: 'proxied.test', timeoutS: 15 });
      assert.equal(r.code, 0, r.transcript);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.deepEqual([h['mode'], h['relayed']], ['proxy-v2', 'RCPT']);
      await pf.waitForLog(/info: RCPT from unknown\[127\.0\.61\.4\]: replayed; .*helo=<proxied\.test>/, 10_000, since);
      await pf.waitForLog(/to=<proxy@example\.test>, relay=none.*status=sent/, 10_000, since);
    });
  });
});

describe('deep.after_pass: handoff falls back to reconnect, saying why', () => {
  /** A full dummy dialogue up to the RCPT; returns its reply. */
  async function upToRcpt(c: RawClient, helo: string, to: string): Promise<{ ehlo: string; rcpt: string }> {
    const ehlo = await cmd(c, `EHLO ${helo}\r\n`);
    assert.match(last(await cmd(c, 'MAIL FROM:<s@example.test>\r\n')), /^250 2\.1\.0/);
    return { ehlo, rcpt: last(await cmd(c, `RCPT TO:<${to}>\r\n`)) };
  }

  async function fellBack(s: ScreenerProc, addr: string, reason: RegExp): Promise<void> {
    const f = await s.waitForEvent((e) => e['event'] === 'HANDOFF FALLBACK' && e['client'] === addr);
    assert.match(String(f['reason']), reason);
    const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
    assert.deepEqual([n['reason'], n['reply']], ['deep', '450 4.3.2 Service currently unavailable']);
    await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
    assert.equal(byClient(s, 'HANDOFF', addr).length, 0);
  }

  test('a backend that does not offer XCLIENT (Postfix\'s plain port)', async () => {
    await withScreener(cfg({ address: `127.0.0.1:${pf.plainPort}` }), async (s) => {
      const learned = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      assert.equal(learned['xclient'], null);
      assert.equal(learned['level'], 40, 'logged at warn');
      assert.match(String(learned['warning']), /does not offer XCLIENT/);
      const addr = '127.0.61.5';
      const c = await greeted(s, addr);
      const { rcpt } = await upToRcpt(c, 'plain.test', 'x@example.test');
      assert.match(rcpt, /^450 4\.3\.2 /);
      assert.match(last(await cmd(c, 'QUIT\r\n')), /^221 /);
      await fellBack(s, addr, /^backend does not offer XCLIENT$/);
    });
  });

  test('a backend that cannot be reached: the EHLO is not learned, the built-in list is offered', async () => {
    const [dead] = await freePorts(1, '127.0.0.1');
    await withScreener(cfg({ address: `127.0.0.1:${dead}`, connect_timeout: '500ms', handshake_timeout: '500ms' }), async (s) => {
      const failed = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      assert.equal(failed['state'], 'failed');
      assert.match(String(failed['reason']), /connect/);
      const addr = '127.0.61.6';
      const c = await greeted(s, addr);
      const { ehlo, rcpt } = await upToRcpt(c, 'nobackend.test', 'x@example.test');
      assert.equal(ehlo, '250-screen.test\r\n250-SIZE\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n');
      assert.match(rcpt, /^450 4\.3\.2 /);
      c.write('QUIT\r\n');
      await c.closed;
      await fellBack(s, addr, /^backend EHLO not learned$/);
    });
  });

  /**
   * A fake backend (the failures Postfix cannot be made to show on cue): its
   * first connection (the screener's EHLO probe) is answered properly; every
   * later one gets `later` (a 421 greeting, or silence).
   */
  async function withFakeBackend(later: 'refuse' | 'silent', fn: (port: number) => Promise<void>): Promise<void> {
    let sessions = 0;
    const socks = new Set<net.Socket>();
    const fake = net.createServer((sock) => {
      socks.add(sock);
      sock.on('close', () => socks.delete(sock));
      sock.on('error', () => undefined);
      if (sessions++ > 0) {
        if (later === 'refuse') sock.end('421 4.3.2 fake.test Busy\r\n');
        sock.resume(); // read to EOF, so that the socket closes and fake.close() can finish
        return;
      }
      sock.write('220 fake.test ESMTP\r\n');
      sock.on('data', (d: Buffer) => {
        if (/^EHLO /i.test(d.toString('latin1'))) sock.write('250-fake.test\r\n250-XCLIENT ADDR PORT HELO PROTO\r\n250 8BITMIME\r\n');
        else sock.end('221 2.0.0 Bye\r\n');
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      await fn((fake.address() as net.AddressInfo).port);
    } finally {
      for (const sock of socks) sock.destroy();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  }

  test('a backend that refuses the replayed session (421 greeting): BACKEND FAIL, then the 450', async () => {
    await withFakeBackend('refuse', async (port) => {
      await withScreener(cfg({ address: `127.0.0.1:${port}` }), async (s) => {
        const learned = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
        assert.deepEqual(learned['offered'], ['8BITMIME']);
        const addr = '127.0.61.10';
        const c = await greeted(s, addr);
        const { ehlo, rcpt } = await upToRcpt(c, 'busy.test', 'x@example.test');
        assert.equal(ehlo, '250-screen.test\r\n250 8BITMIME\r\n', 'the dummy engine offers what the backend offers');
        assert.match(rcpt, /^450 4\.3\.2 /);
        assert.match(last(await cmd(c, 'QUIT\r\n')), /^221 /);
        const bf = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['client'] === addr);
        assert.deepEqual([bf['stage'], bf['reason']], ['greeting', '421 4.3.2 fake.test Busy']);
        await fellBack(s, addr, /^backend: 421 4\.3\.2 fake\.test Busy$/);
      });
    });
  });

  test('a backend that never answers the replayed session: the 450 after backend.handshake_timeout; the session goes on', async () => {
    await withFakeBackend('silent', async (port) => {
      await withScreener(cfg({ address: `127.0.0.1:${port}`, handshake_timeout: '1s' }), async (s) => {
        await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
        const addr = '127.0.61.11';
        const c = await greeted(s, addr);
        const { rcpt } = await upToRcpt(c, 'slow.test', 'x@example.test');
        assert.match(rcpt, /^450 4\.3\.2 /);
        // The dummy session is alive again: its commands are answered.
        assert.match(last(await cmd(c, 'NOOP\r\n')), /^250 /);
        assert.match(last(await cmd(c, 'QUIT\r\n')), /^221 /);
        await fellBack(s, addr, /^backend: timeout$/);
      });
    });
  });

  test('a client that hangs up while the backend is asked: HANGUP in handoff, not a failure; the screener goes on', async () => {
    await withFakeBackend('silent', async (port) => {
      await withScreener(cfg({ address: `127.0.0.1:${port}`, handshake_timeout: '5s' }), async (s) => {
        await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
        const addr = '127.0.61.12';
        const c = await greeted(s, addr);
        assert.match(await cmd(c, 'EHLO gone.test\r\n'), /^250-screen\.test/);
        assert.match(last(await cmd(c, 'MAIL FROM:<s@example.test>\r\n')), /^250 /);
        c.write('RCPT TO:<x@example.test>\r\n');
        await new Promise((r) => setTimeout(r, 300));
        c.destroy();
        const h = await s.waitForEvent((e) => e['event'] === 'HANGUP' && e['client'] === addr);
        assert.equal(h['phase'], 'handoff');
        await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
        const d = await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
        assert.equal(d['phase'], 'handoff');
        assert.equal(byClient(s, 'HANDOFF FALLBACK', addr).length, 0);
        // Still serving: the next client is greeted.
        const next = await greeted(s, '127.0.61.13');
        next.destroy();
      });
    });
  });

  test('a session under STARTTLS', async () => {
    await withScreener(cfg({}, ALL_ON, { tls: { cert, key } }), async (s) => {
      await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      const addr = '127.0.61.7';
      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'tls@example.test', from: 's@example.test', helo: 'tls.test', timeoutS: 15, extra: ['--tls'] });
      assert.notEqual(r.code, 0, 'deferred');
      assert.match(r.transcript, /450 4\.3\.2 Service currently unavailable/);
      await fellBack(s, addr, /^tls/);
    });
  });

  test('a backend whose EHLO reply to this client lacks a keyword the dummy engine offered (DSN hidden from 127.0.61.9)', async () => {
    await withScreener(cfg(), async (s) => {
      const learned = await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
      assert.ok((learned['offered'] as string[]).includes('DSN'));
      const addr = '127.0.61.9';
      const c = await greeted(s, addr);
      const { ehlo, rcpt } = await upToRcpt(c, 'nodsn.test', 'x@example.test');
      assert.match(ehlo, /250-DSN/, 'the dummy engine offered DSN, as Postfix did to the screener');
      assert.match(rcpt, /^450 4\.3\.2 /);
      c.write('QUIT\r\n');
      await c.closed;
      await fellBack(s, addr, /^backend no longer offers DSN$/);
      await retryIsPassOld(s, addr);
    });
  });
});
