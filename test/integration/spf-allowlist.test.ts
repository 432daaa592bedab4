/*
 * Integration: access.spf in the real screener process. A fake DNS server on loopback
 * (test/dns/fake-server.ts) publishes "v=spf1 ip4:127.0.0.77/32 -all" for spf.test with a 1 s
 * TTL; the screener (built-in sink backend, 1 s greet wait) allowlists a client from 127.0.0.77
 * at once (ALLOWLISTED, no greet wait, no PASS NEW) while 127.0.0.78 is screened (PASS NEW after
 * the wait). The record then changes to 127.0.0.79: the set follows within the refresh bound
 * (ALLOWLIST SPF added 1 removed 1). A SIGHUP reload with access.spf unchanged keeps the set
 * without a new first walk; the DNS server going silent keeps the last good set (error logged).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { stringify as toYaml } from 'yaml';
import { QTYPE, type DnsMessage } from '../../src/dns/types.js';
import { reply, startFakeDns } from '../dns/fake-server.js';
import { portOf, startScreener, withAllowRoot, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

let record = 'v=spf1 ip4:127.0.0.77/32 -all';
let silent = false;
function handler(m: DnsMessage) {
  const q = m.questions[0];
  if (q === undefined || silent) return 'silent' as const;
  if (q.name !== 'spf.test') return [{ buf: reply(m, { rcode: 3 }) }];
  const answers = q.qtype === QTYPE.TXT ? [{ name: q.name, type: QTYPE.TXT, ttl: 1, data: record }] : [];
  return [{ buf: reply(m, { answers }) }];
}

/** Connect from addr, read the whole greeting, quit: the deciding event and how long the greeting took. */
async function visit(s: ScreenerProc, addr: string): Promise<{ event: string; entry: unknown; ms: number }> {
  const from = s.events.length;
  const t0 = Date.now();
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^220 /m, 5000);
  const ms = Date.now() - t0;
  c.write('QUIT\r\n');
  await c.closed;
  const e = await s.waitForEvent((x) => x['client'] === addr && ['ALLOWLISTED', 'PASS NEW', 'PASS OLD'].includes(String(x['event'])), 5000, from);
  return { event: String(e['event']), entry: e['entry'], ms };
}

test('access.spf: a published netblock is allowlisted, others screened; the set follows the record, survives a reload and a dead DNS server', { timeout: 60_000 }, async () => {
  const dns = await startFakeDns(handler);
  const config = {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], backend: { address: 'sink:0' }, limits: { max_per_client: 0 },
    pregreet: { wait: '1s' }, drain_timeout: '1s',
    access: { spf: ['spf.test'], spf_refresh_min: '1s', spf_refresh_max: '1h' },
    resolver: { servers: [`${dns.host}:${dns.port}`], timeout: '200ms', tries: 2 },
  };
  const s = await startScreener(config);
  try {
    const first = await s.waitForEvent((e) => e['event'] === 'ALLOWLIST SPF', 10_000);
    assert.deepEqual([first['domain'], first['entries'], first['added'], first['removed']], ['spf.test', 1, 1, 0]);

    const a = await visit(s, '127.0.0.77');
    assert.deepEqual([a.event, a.entry], ['ALLOWLISTED', 'spf:spf.test 127.0.0.77/32']);
    assert.ok(a.ms < 900, `allowlisted: no greet wait (${a.ms} ms)`);
    const b = await visit(s, '127.0.0.78');
    assert.equal(b.event, 'PASS NEW', 'another client is screened');
    assert.ok(b.ms >= 900, `screened: the greet wait (${b.ms} ms)`);
    assert.equal(s.events.filter((e) => e['client'] === '127.0.0.77' && e['event'] === 'PASS NEW').length, 0);

    // The record changes: within the refresh bound (TTL 1 s, spf_refresh_min 1 s) the set follows.
    const mark = s.events.length;
    record = 'v=spf1 ip4:127.0.0.79 -all';
    const ch = await s.waitForEvent((e) => e['event'] === 'ALLOWLIST SPF' && e['added'] === 1, 10_000, mark);
    assert.deepEqual([ch['entries'], ch['added'], ch['removed']], [1, 1, 1]);
    assert.deepEqual((await visit(s, '127.0.0.79')).event, 'ALLOWLISTED');
    assert.equal((await visit(s, '127.0.0.77')).event, 'PASS NEW', 'no longer published: screened');

    // A reload with access.spf unchanged: the set is kept, no first walk again.
    const before = s.eventsNamed('ALLOWLIST SPF').length;
    writeFileSync(s.configFile, withAllowRoot(toYaml({ ...config, pregreet: { wait: '900ms' } })));
    const relMark = s.events.length;
    process.kill(s.pid, 'SIGHUP');
    const rel = await s.waitForEvent((e) => e['event'] === 'RELOAD', 10_000, relMark);
    assert.equal(rel['ok'], true, JSON.stringify(rel));
    assert.deepEqual((await visit(s, '127.0.0.79')).event, 'ALLOWLISTED', 'kept across the reload');
    assert.equal(s.eventsNamed('ALLOWLIST SPF').length, before, 'nothing changed, nothing logged');

    // The DNS server goes silent: an error is logged, the last good set stays.
    silent = true;
    const err = await s.waitForEvent((e) => e['event'] === 'ALLOWLIST SPF' && e['error'] !== undefined, 10_000, relMark);
    assert.match(String(err['error']), /spf\.test TXT: timeout/);
    assert.equal(err['entries'], 1);
    assert.equal(err['level'], 40, 'logged at warn');
    assert.deepEqual((await visit(s, '127.0.0.79')).event, 'ALLOWLISTED', 'last good set kept');
  } finally {
    await s.stop();
    await dns.close();
  }
});
