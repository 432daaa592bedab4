/*
 * Integration: the real screener process (dist/src/cli.js run) in front of a
 * private Postfix instance, with swaks and raw sockets as clients from
 * distinct 127.x addresses. Postfix's own mail log is the evidence that it saw
 * the real client address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startScreener, portOf, byClient, withScreener } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient } from '../helpers/smtp-client.js';
import { freePort } from '../helpers/ports.js';
import { encodeProxyV2 } from '../../src/net/proxy-protocol.js';

let pf: PostfixInstance;
const tmp = mkdtempSync(join(tmpdir(), 'scr-int-'));

before(async () => {
  pf = await startPostfix();
});
after(async () => {
  await pf?.stop();
});

/** A config for one test: ephemeral listener, Postfix XCLIENT backend, short greet wait. */
function cfg(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
    pregreet: { wait: '1s', action: 'enforce' },
    limits: { max_per_client: 0 },
    drain_timeout: '10s',
    ...over,
  };
}

describe('screener in front of Postfix', () => {
  test('pass path: PASS NEW after the teaser, then PASS OLD straight to Postfix; Postfix sees the real address (XCLIENT)', async () => {
    await withScreener(cfg(), async (s) => {
      const addr = '127.0.0.77';
      const first = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'u1@example.test', from: 's@example.test', timeoutS: 20 });
      assert.equal(first.code, 0, first.transcript);
      // The client saw our teaser, then Postfix's own 220 line completed the greeting.
      assert.match(first.transcript, /<-\s+220-screen\.test ESMTP/);
      assert.match(first.transcript, /<-\s+220 .*Postfix/);
      await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.equal(h['verdict'], 'new');
      assert.equal(h['mode'], 'xclient');
      await pf.waitForLog(/client=unknown\[127\.0\.0\.77\]/);

      const second = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'u2@example.test', from: 's@example.test', timeoutS: 20 });
      assert.equal(second.code, 0, second.transcript);
      assert.doesNotMatch(second.transcript, /220-screen\.test/, 'a cached client gets no teaser');
      assert.match(second.transcript, /<-\s+220 .*Postfix/);
      await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === addr);
      const d = await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr && (e['bytes_in'] as number) > 0);
      assert.ok((d['bytes_out'] as number) > 0 && typeof d['duration_ms'] === 'number');
    });
  });

  for (const mode of ['proxy-v1', 'proxy-v2'] as const) {
    test(`handoff with ${mode}: Postfix's PROXY service logs the real client`, async () => {
      const addr = mode === 'proxy-v1' ? '127.0.0.78' : '127.0.0.79';
      await withScreener(cfg({ backend: { address: `127.0.0.1:${pf.proxyPort}`, handoff: mode } }), async (s) => {
        const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'p@example.test', from: 's@example.test', timeoutS: 20 });
        assert.equal(r.code, 0, r.transcript);
        await pf.waitForLog(new RegExp(`client=unknown\\[${addr.replace(/\./g, '\\.')}\\]`));
        const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
        assert.equal(h['mode'], mode);
      });
    });
  }

  test('IPv6: a listener on [::1] next to an IPv4 one; Postfix learns the IPv6 client through XCLIENT', async () => {
    await withScreener(cfg({ listen: ['127.0.0.1:0', '[::1]:0'] }), async (s) => {
      assert.equal(s.listen.length, 2);
      assert.match(s.listen[1] ?? '', /^\[::1\]:\d+$/);
      const c = await connectClient('::1', portOf(s, 1), '::1');
      await c.readUntil(/^220 .*Postfix/m, 8000);
      c.write('EHLO v6.test\r\n');
      await c.readUntil(/^250 /m, 5000);
      c.write('MAIL FROM:<v6@example.test>\r\n');
      await c.readUntil(/^250 /m, 5000);
      c.write('QUIT\r\n');
      await c.closed;
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '::1');
      assert.equal(h['verdict'], 'new');
      await pf.waitForLog(/connect from unknown\[::1\]/);
    });
  });

  test('pregreet enforce: no banner, as postscreen: the early EHLO is answered; 550 at RCPT, the envelope is logged, Postfix never sees it', async () => {
    await withScreener(cfg(), async (s) => {
      const addr = '127.0.1.10';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      c.write('EHLO early.bird\r\n');
      // After the greet wait the dummy engine answers the EHLO sent early; the greeting is never completed.
      const ehlo = await c.readUntil(/^250 [^\r\n]*\r\n/m, 5000);
      assert.match(ehlo, /^220-screen\.test ESMTP\r\n250-screen\.test\r\n/);
      assert.doesNotMatch(c.received(), /^220 /m);
      c.write('MAIL FROM:<spam@bot.test>\r\n');
      await c.readUntil(/^250 2\.1\.0/m, 5000);
      c.write('RCPT TO:<victim@example.test>\r\n');
      assert.match(await c.readUntil(/^5\d\d .*\r\n/m, 5000), /^550 5\.5\.1 Protocol error\r\n/m);
      c.write('DATA\r\n');
      assert.match(await c.readUntil(/^\d{3} .*\r\n/m, 5000), /^5\d\d /m, 'DATA is never accepted');
      c.end();
      const p = await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === addr);
      assert.equal(p['action'], 'enforce');
      assert.equal(p['bytes'], 'EHLO early.bird\r\n'.length);
      assert.equal(p['sample'], 'EHLO early.bird\\r\\n');
      assert.ok(typeof p['after_ms'] === 'number' && (p['after_ms'] as number) < 1000);
      const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
      assert.deepEqual([n['helo'], n['from'], n['to'], n['reason']], ['early.bird', 'spam@bot.test', 'victim@example.test', 'pregreet']);
      assert.equal(byClient(s, 'PASS NEW', addr).length, 0);
      assert.equal(byClient(s, 'HANDOFF', addr).length, 0);
      assert.doesNotMatch(pf.maillog(), /127\.0\.1\.10/);
    });
  });

  test('pregreet drop: 521 and close at once', async () => {
    await withScreener(cfg({ pregreet: { wait: '3s', action: 'drop' } }), async (s) => {
      const addr = '127.0.1.11';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      const t0 = Date.now();
      c.write('HELO now\r\n');
      await c.closed;
      assert.ok(Date.now() - t0 < 2500, 'dropped before the greet wait ends');
      assert.match(c.received(), /^220-screen\.test ESMTP\r\n521 5\.5\.1 Protocol error\r\n$/);
      const p = await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === addr);
      assert.equal(p['action'], 'drop');
    });
  });

  test('pregreet ignore: the early EHLO is not lost: Postfix answers it after its greeting, and the message goes through', async () => {
    await withScreener(cfg({ pregreet: { wait: '1s', action: 'ignore' } }), async (s) => {
      const addr = '127.0.1.12';
      const since = pf.mark();
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.readUntil(/^220-screen\.test ESMTP\r\n/m, 5000);
      c.write('EHLO early.test\r\n'); // before the greeting is complete
      // Nothing more is sent: the backend's greeting, then its answer to the early EHLO.
      await c.readUntil(/^220 .*Postfix.*\r\n/m, 5000);
      assert.match(await c.readUntil(/^250 [^\r\n]*\r\n/m, 5000), /^250-/m, 'Postfix answered the EHLO sent early');
      c.write('MAIL FROM:<s@example.test>\r\n');
      await c.readUntil(/^250 2\.1\.0/m, 5000);
      c.write('RCPT TO:<early@example.test>\r\n');
      await c.readUntil(/^250 2\.1\.5/m, 5000);
      c.write('DATA\r\n');
      await c.readUntil(/^354 /m, 5000);
      c.write('Subject: early\r\n\r\nbody\r\n.\r\nQUIT\r\n');
      await c.readUntil(/^221 /m, 5000);
      const p = await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === addr);
      assert.equal(p['action'], 'ignore');
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.equal(h['verdict'], 'ignored');
      await pf.waitForLog(/to=<early@example\.test>, relay=none.*status=sent/, 10_000, since);
    });
  });

  test('pregreet ignore, a 96 KiB flood before the greeting: PREGREET LIMIT and 421, never handed to Postfix', async () => {
    await withScreener(cfg({ pregreet: { wait: '1s', action: 'ignore' } }), async (s) => {
      const addr = '127.0.1.13';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.readUntil(/^220-screen\.test ESMTP\r\n/m, 5000);
      c.write(Buffer.alloc(96 * 1024, 0x41));
      assert.match(await c.readUntil(/^421 .*\r\n/m, 5000), /^421 4\.7\.0 screen\.test Error: too much data before the greeting\r\n/m);
      const lim = await s.waitForEvent((e) => e['event'] === 'PREGREET LIMIT' && e['client'] === addr);
      assert.equal(lim['kept'], 4096);
      assert.equal(lim['outcome'], '421');
      assert.ok((lim['discarded'] as number) > 0 && (lim['bytes'] as number) <= 96 * 1024);
      await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
      assert.equal(byClient(s, 'HANDOFF', addr).length + byClient(s, 'BACKEND FAIL', addr).length, 0, 'no handoff was tried');
      c.destroy();
    });
  });

  test('hang-up during the greet wait is HANGUP, not a failure', async () => {
    await withScreener(cfg({ pregreet: { wait: '3s' } }), async (s) => {
      const addr = '127.0.1.12';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.readUntil(/^220-/m, 3000);
      c.end();
      const h = await s.waitForEvent((e) => e['event'] === 'HANGUP' && e['client'] === addr);
      assert.equal(h['phase'], 'pregreet');
      assert.equal(byClient(s, 'PREGREET', addr).length, 0);
    });
  });

  describe('access list', () => {
    const list = join(tmp, 'access.cidr');
    writeFileSync(list, [
      '# test list',
      '127.0.2.0/24    reject',
      '127.0.3.7       permit   # allowlisted',
      '127.0.3.0/24    reject   # shadowed for .7 by the line above',
      '',
    ].join('\n'));

    test('denylisted, enforce: greeting completes, RCPT gets 550 5.3.2, NOQUEUE logs the envelope', async () => {
      await withScreener(cfg({ access: { list, action: 'enforce' } }), async (s) => {
        const addr = '127.0.2.5';
        const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'x@example.test', from: 'y@bad.test', helo: 'bad.test', timeoutS: 15 });
        assert.notEqual(r.code, 0);
        assert.match(r.transcript, /<\*\*\s+550 5\.3\.2 Service currently unavailable/);
        const d = await s.waitForEvent((e) => e['event'] === 'DENYLISTED' && e['client'] === addr);
        assert.deepEqual([d['entry'], d['action']], ['127.0.2.0/24', 'enforce']);
        const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
        assert.deepEqual([n['helo'], n['from'], n['to'], n['reason']], ['bad.test', 'y@bad.test', 'x@example.test', 'denylist']);
        assert.doesNotMatch(pf.maillog(), /127\.0\.2\.5/);
      });
    });

    test('denylisted, drop: 521 right after the connect, no teaser wait', async () => {
      await withScreener(cfg({ access: { list, action: 'drop' }, pregreet: { wait: '5s' } }), async (s) => {
        const addr = '127.0.2.6';
        const c = await connectClient('127.0.0.1', portOf(s), addr);
        await c.closed;
        assert.match(c.received(), /^521 5\.3\.2 Service currently unavailable\r\n$/);
        await s.waitForEvent((e) => e['event'] === 'DENYLISTED' && e['client'] === addr && e['action'] === 'drop');
      });
    });

    test('allowlisted: first match wins, handed over at once with Postfix\'s greeting, no teaser', async () => {
      await withScreener(cfg({ access: { list, action: 'drop' }, pregreet: { wait: '5s' } }), async (s) => {
        const addr = '127.0.3.7';
        const t0 = Date.now();
        const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'a@example.test', from: 'b@example.test', timeoutS: 15 });
        assert.equal(r.code, 0, r.transcript);
        assert.ok(Date.now() - t0 < 4500, 'no 5s greet wait');
        assert.doesNotMatch(r.transcript, /220-screen\.test/);
        const a = await s.waitForEvent((e) => e['event'] === 'ALLOWLISTED' && e['client'] === addr);
        assert.equal(a['entry'], '127.0.3.7');
        const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
        assert.equal(h['verdict'], 'allowlisted');
        await pf.waitForLog(/client=unknown\[127\.0\.3\.7\]/);
      });
    });
  });

  test('backend down: the client gets a well-formed 421, BACKEND FAIL is logged', async () => {
    const dead = await freePort();
    await withScreener(cfg({ backend: { address: `127.0.0.1:${dead}`, handoff: 'xclient', connect_timeout: '2s' } }), async (s) => {
      const addr = '127.0.4.1';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.closed;
      assert.match(c.received(), /^220-screen\.test ESMTP\r\n421 4\.3\.2 Service currently unavailable\r\n$/);
      const f = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['client'] === addr);
      assert.equal(f['stage'], 'connect');
      assert.equal(f['reason'], 'ECONNREFUSED');
    });
  });

  test('backend refuses XCLIENT (plain smtpd without authorization): 421 and BACKEND FAIL handoff mode at stage xclient', async () => {
    await withScreener(cfg({ backend: { address: `127.0.0.1:${pf.plainPort}`, handoff: 'xclient' } }), async (s) => {
      const addr = '127.0.4.2';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.closed;
      assert.match(c.received(), /\r\n421 4\.3\.2 Service currently unavailable\r\n$/);
      const f = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['client'] === addr);
      assert.equal(f['stage'], 'xclient');
      // A refused XCLIENT is the wrong handoff mode; the backend's reply is in the detail.
      assert.equal(f['reason'], 'handoff mode');
      assert.match(String(f['detail']), /refused XCLIENT \(5\d\d /);
    });
  });

  test('per-client limit: the connection over the limit gets 421 4.7.0, others from other addresses do not', async () => {
    await withScreener(cfg({ limits: { max_per_client: 2 }, pregreet: { wait: '10s' } }), async (s) => {
      const addr = '127.0.5.1';
      const a = await connectClient('127.0.0.1', portOf(s), addr);
      const b = await connectClient('127.0.0.1', portOf(s), addr);
      await a.readUntil(/^220-/m, 3000);
      await b.readUntil(/^220-/m, 3000);
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.closed;
      assert.equal(c.received(), '421 4.7.0 Error: too many connections\r\n');
      const other = await connectClient('127.0.0.1', portOf(s), '127.0.5.2');
      await other.readUntil(/^220-/m, 3000);
      const t = await s.waitForEvent((e) => e['event'] === 'TOO MANY CONNECTIONS' && e['client'] === addr);
      assert.equal(t['count'], 2);
      a.end();
      await s.waitForEvent((e) => e['event'] === 'HANGUP' && e['client'] === addr);
      // A slot is free again.
      const d = await connectClient('127.0.0.1', portOf(s), addr);
      await d.readUntil(/^220-/m, 3000);
      for (const x of [b, d, other]) x.end();
    });
  });

  test('global limit: over limits.max_connections every new client gets 421 4.3.2 All server ports are busy', async () => {
    await withScreener(cfg({ limits: { max_connections: 3, max_per_client: 0 }, pregreet: { wait: '10s' } }), async (s) => {
      const held = [];
      for (let i = 0; i < 3; i++) {
        const c = await connectClient('127.0.0.1', portOf(s), `127.0.6.${i + 1}`);
        await c.readUntil(/^220-/m, 3000);
        held.push(c);
      }
      const over = await connectClient('127.0.0.1', portOf(s), '127.0.6.9');
      await over.closed;
      assert.equal(over.received(), '421 4.3.2 All server ports are busy\r\n');
      const b = await s.waitForEvent((e) => e['event'] === 'ALL PORTS BUSY');
      assert.deepEqual([b['client'], b['count'], b['limit']], ['127.0.6.9', 3, 'connections']);
      for (const c of held) c.end();
    });
  });

  test('PROXY protocol in: a trusted v2 header sets the client; a malformed header is logged and closed', async () => {
    const config = cfg({
      listen: [{ address: '127.0.0.1:0', proxy_protocol: 'any', trusted_proxies: ['127.0.0.0/8'] }],
      pregreet: { wait: '1s' },
    });
    await withScreener(config, async (s) => {
      const lb = await connectClient('127.0.0.1', portOf(s), '127.0.0.1');
      lb.write(encodeProxyV2({ addr: '127.0.7.77', port: 40001 }, { addr: '127.0.0.1', port: 25 }));
      await lb.readUntil(/^220 .*Postfix/m, 8000);
      lb.write('QUIT\r\n');
      await lb.closed;
      const conn = await s.waitForEvent((e) => e['event'] === 'CONNECT' && e['client'] === '127.0.7.77');
      assert.equal(conn['port'], 40001);
      await pf.waitForLog(/127\.0\.7\.77/);

      const bad = await connectClient('127.0.0.1', portOf(s), '127.0.0.1');
      bad.write('PROXY TCP4 999.1.1.1 127.0.0.1 1 25\r\n');
      await bad.closed;
      assert.equal(bad.received(), '');
      const f = await s.waitForEvent((e) => e['event'] === 'PROXY FAIL');
      assert.match(String(f['reason']), /^malformed/);
    });
  });

  test('PROXY protocol in: a peer outside trusted_proxies is closed', async () => {
    const config = cfg({ listen: [{ address: '127.0.0.1:0', proxy_protocol: 'v1', trusted_proxies: ['127.0.0.1/32'] }] });
    await withScreener(config, async (s) => {
      const c = await connectClient('127.0.0.1', portOf(s), '127.0.8.8');
      c.write('PROXY TCP4 127.0.9.9 127.0.0.1 1234 25\r\n');
      await c.closed;
      const f = await s.waitForEvent((e) => e['event'] === 'PROXY FAIL');
      assert.deepEqual([f['peer'], f['reason']], ['127.0.8.8', 'untrusted']);
      assert.equal(s.eventsNamed('CONNECT').length, 0);
    });
  });

  test('overlong command line in the dummy engine: COMMAND LENGTH LIMIT, 421 and close', async () => {
    await withScreener(cfg({ dummy: { line_length_limit: 1024 } }), async (s) => {
      const addr = '127.0.1.20';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      c.write('X'); // pregreet: goes to the dummy engine, as the start of its first line
      await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === addr);
      c.write('EHLO ' + 'a'.repeat(3000) + '\r\n');
      await c.closed;
      assert.match(c.received(), /\r\n421 screen\.test Service unavailable - try again later\r\n$/);
      const l = await s.waitForEvent((e) => e['event'] === 'COMMAND LENGTH LIMIT' && e['client'] === addr);
      assert.ok(typeof l['length'] === 'number');
    });
  });

  test('SIGTERM: no new connections, a proxied session finishes its message, then exit 0', async () => {
    const s = await startScreener(cfg());
    const addr = '127.0.0.80';
    const c = await connectClient('127.0.0.1', portOf(s), addr);
    await c.readUntil(/^220 .*Postfix/m, 8000);
    c.write('EHLO drain.test\r\n');
    await c.readUntil(/^250 /m, 5000);
    const exited = s.stop('SIGTERM');
    await s.waitForEvent((e) => e['event'] === 'STOPPING');
    // The listener is closed: a new client is refused by the kernel.
    await assert.rejects(connectClient('127.0.0.1', portOf(s), '127.0.0.81'));
    // The spliced session still works end to end.
    for (const [cmd, re] of [['MAIL FROM:<d@example.test>', /^250 /m], ['RCPT TO:<drain@example.test>', /^250 /m], ['DATA', /^354 /m],
      ['Subject: drain\r\n\r\nbody\r\n.', /^250 2\.0\.0 Ok: queued/m], ['QUIT', /^221 /m]] as const) {
      const before = c.received().length;
      c.write(cmd + '\r\n');
      await c.readUntil(re, 5000, before);
    }
    assert.equal(await exited, 0);
    const st = s.eventsNamed('STOPPED')[0];
    assert.equal(st?.['forced'], 0);
    await pf.waitForLog(/to=<drain@example\.test>/);
  });

  test('SIGTERM: a session still open at drain_timeout is cut, exit 0', async () => {
    const s = await startScreener(cfg({ drain_timeout: '1s' }));
    const c = await connectClient('127.0.0.1', portOf(s), '127.0.0.82');
    await c.readUntil(/^220 .*Postfix/m, 8000);
    const t0 = Date.now();
    assert.equal(await s.stop('SIGTERM'), 0);
    assert.ok(Date.now() - t0 < 5000);
    await c.closed;
    assert.equal(s.eventsNamed('STOPPED')[0]?.['forced'], 1);
  });
});
