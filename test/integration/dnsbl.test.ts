/*
 * Integration: the DNSBL test of the real screener process end to end, against
 * a real rbldnsd serving fixtures/dnsbl/ (test/helpers/rbldnsd.ts) and the
 * private Postfix as backend. Clients come from distinct 127.x addresses that
 * the fixture zones list (see the comments in fixtures/dnsbl/*.zone):
 *   127.0.30.0/25   bl.test (127.0.0.2, weight 3) + bl2.test (weight 2) = 5
 *   127.0.31.0/24   bl.test only, answer 127.0.0.4            = 3
 *   127.0.32.1      bl.test answers 127.255.255.254 (reserved error answer)
 *   127.0.33.0/24   bl2.test only                             = 2
 *   127.0.40.0/24   wl.test 127.0.10.2 (weight -5)            = -5
 *   ::1             bl6.test (weight 1)
 *   127.0.34-36.x   listed nowhere
 * Postfix's mail log is the evidence of what reached the backend.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { fixtureZone, fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { type ScreenerEvent, type ScreenerProc, portOf, withScreener } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { runSwaks } from '../helpers/swaks.js';
import dgram from 'node:dgram';

let pf: PostfixInstance;
let dns: Rbldnsd;

before(async () => {
  [pf, dns] = await Promise.all([startPostfix(), startRbldnsd(fixtureZones())]);
});
after(async () => {
  await Promise.all([pf?.stop(), dns?.stop()]);
});

const SITES = ['bl.test=127.0.0.[2..11]*3', 'bl2.test*2', 'bl6.test', 'wl.test=127.0.[0..255].[2..3]*-5'];

type Obj = Record<string, unknown>;

/** The test configuration: ephemeral listener, Postfix XCLIENT backend, 1 s greet wait, DNSBL against `server`. */
function cfg(over: { dnsbl?: Obj; resolver?: Obj; [k: string]: unknown } = {}, server = dns.address): Obj {
  const { dnsbl, resolver, ...rest } = over;
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
    pregreet: { wait: '1s', action: 'enforce' },
    limits: { max_per_client: 0 },
    drain_timeout: '2s',
    dnsbl: {
      sites: SITES,
      threshold: 3,
      allowlist_threshold: -1,
      action: 'enforce',
      timeout: '2s',
      ttl_min: '60s',
      ttl_max: '1h',
      txt: false,
      reply_map: {},
      health: { enable: true, interval: '1s', error_limit: 3 },
      ...(dnsbl ?? {}),
    },
    resolver: { servers: [server], timeout: '300ms', ...(resolver ?? {}) },
    ...rest,
  };
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** "[ADDR]" as Postfix logs a client, as a RegExp. */
const inLog = (addr: string) => new RegExp(`unknown\\[${esc(addr)}\\]`);
const byClient = (s: ScreenerProc, name: string, client: string): ScreenerEvent[] =>
  s.eventsNamed(name).filter((e) => e['client'] === client);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait for the server to close `c`; fail (and tear it down) after ms instead of waiting for the backend's own timeout. */
async function closedWithin(c: RawClient, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`not closed within ${ms} ms; received: ${JSON.stringify(c.received())}`));
    }, ms);
  });
  try {
    await Promise.race([c.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function hitsOf(e: ScreenerEvent): Array<{ site: string; weight: number; records: string[] }> {
  const hits = e['hits'] as Array<{ site: string; weight: number; records: string[] }>;
  assert.ok(Array.isArray(hits), `hits is an array: ${JSON.stringify(e)}`);
  return [...hits].sort((a, b) => a.site.localeCompare(b.site));
}

/** A full mail through the screener with swaks from `addr`. */
function mail(s: ScreenerProc, addr: string, to = 'rcpt@example.test') {
  return runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to, from: 'sender@example.test', helo: 'client.test', timeoutS: 20 });
}

/** Assert that `addr` was rejected at RCPT by the dummy engine, naming `site`, and never reached Postfix. */
async function assertRejectedAtRcpt(s: ScreenerProc, addr: string, site: string): Promise<ScreenerEvent> {
  const r = await mail(s, addr);
  assert.notEqual(r.code, 0, r.transcript);
  assert.match(r.transcript, new RegExp(`<\\*\\*\\s+550 5\\.7\\.1 Service unavailable; client \\[${esc(addr)}\\] blocked using ${esc(site)}\\r?\\n`), r.transcript);
  assert.doesNotMatch(r.transcript, /<-\s+220 .*Postfix/, 'never talked to Postfix');
  const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
  assert.equal(d['action'], 'enforce');
  assert.equal(typeof d['lookup_ms'], 'number');
  assert.equal(typeof d['port'], 'number');
  const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
  assert.deepEqual([n['from'], n['to'], n['reason']], ['sender@example.test', 'rcpt@example.test', 'dnsbl']);
  assert.equal(byClient(s, 'PASS NEW', addr).length, 0);
  assert.equal(byClient(s, 'HANDOFF', addr).length, 0);
  assert.doesNotMatch(pf.maillog(), inLog(addr));
  return d;
}

/** Assert that `addr` passed: PASS NEW, handed over, and its mail reached Postfix. */
async function assertPassesToPostfix(s: ScreenerProc, addr: string): Promise<ScreenerEvent> {
  const r = await mail(s, addr);
  assert.equal(r.code, 0, r.transcript);
  assert.match(r.transcript, /<-\s+220 .*Postfix/);
  const p = await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
  await pf.waitForLog(new RegExp(`client=unknown\\[${esc(addr)}\\]`));
  assert.equal(byClient(s, 'DNSBL', addr).length, 0, 'no DNSBL rejection event');
  return p;
}

describe('DNSBL end to end (rbldnsd + Postfix)', () => {
  test('listed IPv4, enforce: 550 at RCPT naming bl.test, DNSBL score 5 with both hits, Postfix never sees it', async () => {
    await withScreener(cfg(), async (s) => {
      const d = await assertRejectedAtRcpt(s, '127.0.30.5', 'bl.test');
      assert.equal(d['score'], 5);
      assert.deepEqual(hitsOf(d), [
        { site: 'bl.test', weight: 3, records: ['127.0.0.2'] },
        { site: 'bl2.test', weight: 2, records: ['127.0.0.2'] },
      ]);
    });
  });

  test('listed IPv4, drop: 521 and close', async () => {
    await withScreener(cfg({ dnsbl: { action: 'drop' } }), async (s) => {
      const addr = '127.0.30.6';
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await closedWithin(c, 10_000);
      assert.match(c.received(), /^(220-screen\.test ESMTP\r\n)?521 5\.7\.1 Service unavailable; client \[127\.0\.30\.6\] blocked using bl\.test\r\n$/);
      const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
      assert.deepEqual([d['score'], d['action']], [5, 'drop']);
      assert.equal(byClient(s, 'HANDOFF', addr).length, 0);
      assert.doesNotMatch(pf.maillog(), inLog(addr));
    });
  });

  test('site filter: 127.0.0.4 is inside 127.0.0.[2..11] (rejected, weight 3 alone)', async () => {
    await withScreener(cfg(), async (s) => {
      const d = await assertRejectedAtRcpt(s, '127.0.31.7', 'bl.test');
      assert.equal(d['score'], 3);
      assert.deepEqual(hitsOf(d), [{ site: 'bl.test', weight: 3, records: ['127.0.0.4'] }]);
    });
  });

  test('site filter miss: with "bl.test=127.0.0.2*3" the answer 127.0.0.4 is not a listing (passes)', async () => {
    const sites = ['bl.test=127.0.0.2*3', 'bl2.test*2', 'bl6.test', 'wl.test=127.0.[0..255].[2..3]*-5'];
    await withScreener(cfg({ dnsbl: { sites } }), async (s) => {
      const p = await assertPassesToPostfix(s, '127.0.31.8');
      assert.equal(p['dnsbl_score'], 0);
    });
  });

  test('weights add up: listed by bl2.test alone (2 < 3) passes; with threshold 2 it is rejected', async () => {
    await withScreener(cfg(), async (s) => {
      const p = await assertPassesToPostfix(s, '127.0.33.5');
      assert.equal(p['dnsbl_score'], 2);
    });
    await withScreener(cfg({ dnsbl: { threshold: 2 } }), async (s) => {
      const d = await assertRejectedAtRcpt(s, '127.0.33.6', 'bl2.test');
      assert.equal(d['score'], 2);
      assert.deepEqual(hitsOf(d), [{ site: 'bl2.test', weight: 2, records: ['127.0.0.2'] }]);
    });
  });

  test('allowlisted (wl.test, score -5 <= -1): PASS NEW and handoff well before the 5 s greet wait, reaches Postfix', async () => {
    await withScreener(cfg({ pregreet: { wait: '5s', action: 'enforce' } }), async (s) => {
      const addr = '127.0.40.9';
      const t0 = Date.now();
      const r = await mail(s, addr);
      const took = Date.now() - t0;
      assert.equal(r.code, 0, r.transcript);
      assert.ok(took < 4000, `the whole mail took ${took} ms: the greet wait was not cut short`);
      const p = await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      assert.equal(p['dnsbl_score'], -5);
      await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      await pf.waitForLog(/client=unknown\[127\.0\.40\.9\]/);
      assert.equal(byClient(s, 'PREGREET', addr).length, 0);
    });
  });

  test('IPv6: ::1 listed by bl6.test (weight 1) with threshold 1 on a [::1] listener is rejected', async () => {
    await withScreener(cfg({ listen: ['[::1]:0'], dnsbl: { threshold: 1 } }), async (s) => {
      const addr = '::1';
      const c = await connectClient('::1', portOf(s), '::1');
      await c.readUntil(/^220 screen\.test/m, 5000);
      c.write('EHLO v6.test\r\n');
      await c.readUntil(/^250 /m, 5000);
      c.write('MAIL FROM:<v6@example.test>\r\n');
      await c.readUntil(/^250 /m, 5000);
      c.write('RCPT TO:<rcpt@example.test>\r\n');
      assert.match(await c.readUntil(/^5\d\d .*\r\n/m, 5000), /^550 5\.7\.1 Service unavailable; client \[::1\] blocked using bl6\.test\r\n/m);
      c.write('QUIT\r\n');
      await closedWithin(c, 5000);
      const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
      assert.equal(d['score'], 1);
      assert.deepEqual(hitsOf(d), [{ site: 'bl6.test', weight: 1, records: ['127.0.0.2'] }]);
      assert.equal(byClient(s, 'HANDOFF', addr).length, 0);
    });
  });

  test('reserved error answer 127.255.255.254 is not a listing: passes, DNSBL WARNING error-answer for bl.test', async () => {
    await withScreener(cfg(), async (s) => {
      const addr = '127.0.32.1';
      const p = await assertPassesToPostfix(s, addr);
      assert.equal(p['dnsbl_score'], 0);
      const w = await s.waitForEvent((e) => e['event'] === 'DNSBL WARNING' && e['reason'] === 'error-answer');
      assert.equal(w['site'], 'bl.test');
      assert.equal(w['value'], '127.255.255.254');
    });
  });

  test('reply_map: the 550 and the log name the public name, never bl.test (log.reveal_sites: the real one in the log)', async () => {
    await withScreener(cfg({ dnsbl: { reply_map: { 'bl.test': 'public-bl.example' } } }), async (s) => {
      const addr = '127.0.30.7';
      const r = await mail(s, addr);
      assert.match(r.transcript, /<\*\*\s+550 5\.7\.1 Service unavailable; client \[127\.0\.30\.7\] blocked using public-bl\.example\r?\n/, r.transcript);
      assert.doesNotMatch(r.transcript, /\bbl\.test/, r.transcript);
      const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
      assert.equal(d['score'], 5);
      // The log names the public name too (a paid feed's key stays out of it), unless log.reveal_sites.
      assert.ok((d['hits'] as Array<{ site: string }>).some((h) => h.site === 'public-bl.example'), JSON.stringify(d['hits']));
      const leaked = s.events.filter((e) => /(^|[^-\w.])bl\.test\b/.test(JSON.stringify(e)));
      assert.deepEqual(leaked, [], 'no event names bl.test');
    });
    await withScreener(cfg({ dnsbl: { reply_map: { 'bl.test': 'public-bl.example' } }, log: { reveal_sites: true } }), async (s) => {
      const addr = '127.0.30.17';
      await mail(s, addr);
      const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
      assert.ok((d['hits'] as Array<{ site: string }>).some((h) => h.site === 'bl.test'), JSON.stringify(d['hits']));
    });
  });

  test('txt: the listing site\'s TXT record is appended to the 550', async () => {
    await withScreener(cfg({ dnsbl: { txt: true } }), async (s) => {
      const addr = '127.0.30.8';
      const r = await mail(s, addr);
      assert.match(r.transcript, /<\*\*\s+550 5\.7\.1 Service unavailable; client \[127\.0\.30\.8\] blocked using bl\.test; Listed by bl\.test.*127\.0\.30\.8/, r.transcript);
    });
  });

  test('PASS OLD: a clean client\'s second connection is handed over at once (the DNSBL pass is cached)', async () => {
    await withScreener(cfg({ pregreet: { wait: '3s', action: 'enforce' } }), async (s) => {
      const addr = '127.0.35.1';
      const first = await mail(s, addr, 'first@example.test');
      assert.equal(first.code, 0, first.transcript);
      assert.match(first.transcript, /<-\s+220-screen\.test ESMTP/);
      const p = await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      assert.equal(p['dnsbl_score'], 0);
      const t0 = Date.now();
      const second = await mail(s, addr, 'second@example.test');
      const took = Date.now() - t0;
      assert.equal(second.code, 0, second.transcript);
      assert.doesNotMatch(second.transcript, /220-screen\.test/, 'a cached client gets no teaser');
      assert.ok(took < 2500, `second mail took ${took} ms (greet wait 3 s)`);
      await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === addr);
      await pf.waitForLog(/to=<second@example\.test>/);
    });
  });

  test('dead DNS server: clients pass after the greet wait, nothing crashes', async () => {
    // A UDP port with nothing behind it (bound, read, closed).
    const dead = await new Promise<number>((resolve, reject) => {
      const u = dgram.createSocket('udp4');
      u.once('error', reject);
      u.bind(0, '127.0.0.1', () => {
        const { port } = u.address();
        u.close(() => resolve(port));
      });
    });
    await withScreener(cfg({}, `127.0.0.1:${dead}`), async (s) => {
      for (const addr of ['127.0.34.1', '127.0.30.9']) {
        // 127.0.30.9 would be listed (score 5): with no answers it passes (fail-open).
        const t0 = Date.now();
        const r = await mail(s, addr);
        const took = Date.now() - t0;
        assert.equal(r.code, 0, r.transcript);
        assert.ok(took >= 900, `handed over after the greet wait, not before (${took} ms)`);
        assert.ok(took < 4000, `not stalled beyond the greet wait (${took} ms)`);
        await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
        await pf.waitForLog(new RegExp(`client=unknown\\[${esc(addr)}\\]`));
      }
      assert.equal(s.proc.exitCode, null, 'still running');
      assert.equal(s.eventsNamed('DNSBL').length, 0);
    });
  });

  test('site health: a zone that stops listing 127.0.0.2 is suspended (fail-open) and resumed; a silent server suspends every site', async () => {
    // Its own rbldnsd: this test edits and pauses it.
    const own = await startRbldnsd(fixtureZones());
    const blZone = fixtureZone('bl.zone');
    try {
      await withScreener(cfg({}, own.address), async (s) => {
        const siteEvent = (site: string, state: string, from: number) =>
          s.waitForEvent((e) => e['event'] === 'DNSBL SITE' && e['site'] === site && e['state'] === state, 10_000, from);

        // 1. bl.test loses its test entry: suspended within a few probe intervals.
        let mark = s.events.length;
        own.writeZone('bl.test', blZone.split('\n').filter((l) => !/^127\.0\.0\.2\b/.test(l)).join('\n'));
        const susp = await siteEvent('bl.test', 'suspended', mark);
        assert.match(String(susp['reason']), /127\.0\.0\.2/);
        // Only bl.test: the others still pass their probes.
        await sleep(1500);
        assert.deepEqual(
          s.eventsNamed('DNSBL SITE').filter((e) => e['state'] === 'suspended').map((e) => e['site']),
          ['bl.test'],
        );
        // A client listed by bl.test alone (127.0.31.0/24, score 3) now passes: fail-open.
        const p = await assertPassesToPostfix(s, '127.0.31.20');
        assert.equal(p['dnsbl_score'], 0);

        // 2. Restored: resumed.
        mark = s.events.length;
        own.writeZone('bl.test', blZone);
        await siteEvent('bl.test', 'resumed', mark);

        // 3. The server goes silent: every site is suspended; clients pass after the greet wait.
        mark = s.events.length;
        own.pause();
        for (const site of ['bl.test', 'bl2.test', 'bl6.test', 'wl.test']) await siteEvent(site, 'suspended', mark);
        const t0 = Date.now();
        const r = await mail(s, '127.0.31.21');
        const took = Date.now() - t0;
        assert.equal(r.code, 0, r.transcript);
        assert.ok(took < 4000, `not stalled beyond the greet wait (${took} ms)`);
        await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.31.21');
        await pf.waitForLog(/client=unknown\[127\.0\.31\.21\]/);

        // 4. It answers again: every site resumes; a listed client is rejected again.
        mark = s.events.length;
        own.resume();
        for (const site of ['bl.test', 'bl2.test', 'bl6.test', 'wl.test']) await siteEvent(site, 'resumed', mark);
        await assertRejectedAtRcpt(s, '127.0.31.22', 'bl.test');
      });
    } finally {
      if (own.isPaused()) own.resume();
      await own.stop();
    }
  });
});
