/*
 * DNSBL site health with the documented defaults (README): health on, a probe
 * every 5 min (dnsbl.health.interval 300 s) and a site suspended after 5
 * errors in a row (dnsbl.health.error_limit), never after one. The schedule
 * is driven through the screener's own interval timer on node:test's fake
 * clock (mock.timers): the test never calls the probe, it counts the probe
 * queries the fake DNS server on loopback receives.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { startScreener } from '../../src/server/screener.js';
import { Dnsbl } from '../../src/checks/dnsbl.js';
import type { DnsLookup, LookupResult } from '../../src/dns/types.js';
import { reverseName } from '../../src/dns/reverse.js';
import { QTYPE, RCODE } from '../../src/dns/types.js';
import { reply, startFakeDns } from '../dns/fake-server.js';

const until = async (what: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setImmediate(r));
  }
};

test('default config: the screener probes each DNSBL site at start and again every 300 s, on its interval timer', async () => {
  const dns = await startFakeDns((m) => {
    const q = m.questions[0];
    if (q?.name === '2.0.0.127.bl.test') return [{ buf: reply(m, { answers: [{ name: q.name, type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }) }];
    return [{ buf: reply(m, { rcode: RCODE.NXDOMAIN }) }];
  });
  const config = parseConfigText([
    'listen: ["127.0.0.1:0"]',
    'backend: { address: "sink:0" }',
    'dnsbl: { sites: ["bl.test*3"] }',
    `resolver: { servers: ["127.0.0.1:${dns.port}"], timeout: 2s }`,
  ].join('\n'), 'test.yaml');
  assert.deepEqual([config.dnsbl.health.enable, config.dnsbl.health.interval], [true, 300_000], 'the documented defaults');
  const probes = (): number => dns.queries.filter((q) => q.name === '2.0.0.127.bl.test').length;
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const s = await startScreener(config, { logger: pino({ level: 'silent' }) });
    try {
      await until(() => probes() === 1);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(dns.queries.some((q) => q.name === '1.0.0.127.bl.test'), 'the unlisted test entry is probed too');
      mock.timers.tick(299_999);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(probes(), 1, 'not before the interval');
      mock.timers.tick(1);
      await until(() => probes() === 2);
      // Let the probe's answers come back (a probe still waiting is not started twice).
      await new Promise((r) => setTimeout(r, 100));
      mock.timers.tick(300_000);
      await until(() => probes() === 3);
    } finally {
      await s.close(100);
    }
    mock.timers.tick(600_000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(probes(), 3, 'no probe after close()');
  } finally {
    mock.timers.reset();
    await dns.close();
  }
});

/** A lookup answering every A query with `r`, counting the queries per name. */
function lookupOf(r: () => LookupResult): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  return { asked, lookup: (name: string) => { asked.push(name); return Promise.resolve(r()); } };
}

function dnsblOf(lookup: DnsLookup, events: Array<[string, Record<string, unknown>]>): Dnsbl {
  const d = validateConfig({ hostname: 'screen.test', dnsbl: { sites: ['bl.test'] } }).dnsbl;
  assert.equal(d.health.error_limit, 5, 'the documented default');
  return new Dnsbl(d.sites, {
    threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
    slowWarningMs: d.slow_warning, txt: false, replyMap: d.reply_map,
    health: { enable: d.health.enable, intervalMs: d.health.interval, listed: d.health.listed, unlisted: d.health.unlisted, errorLimit: d.health.error_limit, sites: d.health.sites },
  }, lookup, reverseName, (e, f) => events.push([e, f]), () => 1_000);
}

async function ask(d: Dnsbl, client: string): Promise<boolean> {
  const q = d.start(client, null, () => undefined);
  if (q === null) return false;
  await until(() => q.pending === 0);
  return true;
}

test('one DNS error does not suspend a site; the 5th in a row does, and then it is not asked', async () => {
  const events: Array<[string, Record<string, unknown>]> = [];
  const f = lookupOf(() => ({ status: 'error', error: 'servfail' }) as LookupResult);
  const d = dnsblOf(f, events);
  for (let i = 1; i <= 4; i++) {
    assert.equal(await ask(d, `192.0.2.${i}`), true);
    assert.deepEqual(events.filter(([e]) => e === 'DNSBL SITE'), [], `not suspended after ${i} errors`);
  }
  assert.equal(await ask(d, '192.0.2.5'), true);
  const site = events.filter(([e]) => e === 'DNSBL SITE');
  assert.equal(site.length, 1);
  assert.equal(site[0]?.[1]['state'], 'suspended');
  assert.match(String(site[0]?.[1]['reason']), /^5 errors in a row, last: servfail$/);
  const before = f.asked.length;
  assert.equal(await ask(d, '192.0.2.6'), false, 'a suspended site is not asked: nothing to wait for');
  assert.equal(f.asked.length, before);
});

test('an answer between errors resets the count: 4 errors, an answer, 4 errors: still not suspended', async () => {
  const events: Array<[string, Record<string, unknown>]> = [];
  let n = 0;
  const f = lookupOf(() => (++n === 5 ? { status: 'nxdomain', ttl: 60 } : { status: 'error', error: 'timeout' }) as LookupResult);
  const d = dnsblOf(f, events);
  for (let i = 1; i <= 9; i++) await ask(d, `192.0.2.${i}`);
  assert.deepEqual(events.filter(([e]) => e === 'DNSBL SITE'), []);
  await ask(d, '192.0.2.10');
  assert.equal(events.filter(([e]) => e === 'DNSBL SITE').length, 1, 'the 5th error after the answer');
});
