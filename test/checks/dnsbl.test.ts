import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSite } from '../../src/config/dnsbl-site.js';
import { filterMatches, isReservedErrorAnswer } from '../../src/checks/dnsbl-site.js';
import { Dnsbl, dnsblReply, type DnsblOptions, type DnsblQuery } from '../../src/checks/dnsbl.js';
import type { DnsLookup, LookupResult, LookupType } from '../../src/dns/types.js';
import { reverseName } from '../../src/dns/reverse.js';

test('site syntax: domain, filter, weight as in postscreen_dnsbl_sites', () => {
  const rows: Array<{ spec: string; domain: string; weight: number; yes: string[]; no: string[] }> = [
    { spec: 'zen.spamhaus.org=127.0.0.[2..11]*3', domain: 'zen.spamhaus.org', weight: 3, yes: ['127.0.0.2', '127.0.0.11'], no: ['127.0.0.1', '127.0.0.12', '127.0.1.2'] },
    { spec: 'b.barracudacentral.org*2', domain: 'b.barracudacentral.org', weight: 2, yes: ['127.0.0.2', '10.1.2.3'], no: ['127.255.255.254'] },
    { spec: 'list.dnswl.org=127.0.[0..255].[1..3]*-2', domain: 'list.dnswl.org', weight: -2, yes: ['127.0.15.1', '127.0.255.3'], no: ['127.0.15.0', '127.0.15.4', '127.1.0.1'] },
    { spec: 'bl.example=127.0.0.[2;4;10]', domain: 'bl.example', weight: 1, yes: ['127.0.0.4', '127.0.0.10'], no: ['127.0.0.3', '127.0.0.5'] },
    { spec: 'Bl.Example.=127.0.0.[2;5..6]*+4', domain: 'bl.example', weight: 4, yes: ['127.0.0.2', '127.0.0.6'], no: ['127.0.0.4'] },
  ];
  for (const r of rows) {
    const s = parseSite(r.spec);
    assert.deepEqual([s.domain, s.weight], [r.domain, r.weight], r.spec);
    for (const a of r.yes) assert.equal(filterMatches(s, a), true, `${r.spec} matches ${a}`);
    for (const a of r.no) assert.equal(filterMatches(s, a), false, `${r.spec} does not match ${a}`);
  }
});

test('site syntax errors name the site (SCR_ERR_DNSBL_SITE)', () => {
  for (const bad of ['', 'nodots', 'bl.test*x', 'bl.test=127.0.0', 'bl.test=127.0.0.[2..', 'bl.test=127.0.0.[5..2]', 'bl.test=127.0.0.256',
    'bl.test=127.0.0.[1;x]', 'bad domain.test', 'bl.test*1*2', 'bl.test=[[1]].0.0.1']) {
    assert.throws(() => parseSite(bad), (e: unknown) => (e as { code?: string; details?: { value?: string } }).code === 'SCR_ERR_DNSBL_SITE' &&
      (e as { details: { value: string } }).details.value === bad.trim(), `rejects ${JSON.stringify(bad)}`);
  }
});

test('filters agree with a naive set over random octet lists and ranges; reserved answers never match', () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    fc.integer({ min: 0, max: 255 }),
    (ranges, probe) => {
      const items = ranges.map(([a, b]) => (a === b ? `${a}` : `${Math.min(a, b)}..${Math.max(a, b)}`));
      const site = parseSite(`x.test=127.0.1.[${items.join(';')}]`);
      const want = ranges.some(([a, b]) => probe >= Math.min(a, b) && probe <= Math.max(a, b));
      return filterMatches(site, `127.0.1.${probe}`) === want && filterMatches(site, `127.0.2.${probe}`) === false;
    },
  ));
  assert.equal(filterMatches(parseSite('any.test'), '127.255.255.254'), false);
  assert.equal(isReservedErrorAnswer('127.255.255.252'), true);
});

/** A DnsLookup that answers from a table, asynchronously, and records what it was asked. */
class FakeLookup implements DnsLookup {
  asked: Array<[string, LookupType, boolean]> = [];
  constructor(public table: Map<string, LookupResult>, public delays = new Map<string, number>()) {}
  lookup(name: string, type: LookupType, fresh = false): Promise<LookupResult> {
    this.asked.push([name, type, fresh]);
    const r = this.table.get(`${type} ${name}`) ?? { status: 'nxdomain', ttl: 300 };
    return new Promise((res) => setTimeout(() => res(r), this.delays.get(name) ?? 0));
  }
}

const OPTS: DnsblOptions = {
  threshold: 3, allowlistThreshold: -1, ttlMinMs: 60_000, ttlMaxMs: 3_600_000, slowWarningMs: 1000, txt: false, replyMap: {},
  health: { enable: false, intervalMs: 1000, listed: '127.0.0.2', unlisted: '127.0.0.1', errorLimit: 2, sites: {} },
};

function run(d: Dnsbl, client: string): Promise<DnsblQuery | null> {
  return new Promise((resolve) => {
    const q = d.start(client, null, (_o, done) => resolve(done));
    if (q === null) resolve(null);
  });
}

const ok = (records: string[], ttl = 300): LookupResult => ({ status: 'ok', records, ttl });

test('score: weights of the listing sites add up; a shared domain is asked once; TTL is the clamped minimum', async () => {
  const t = new Map<string, LookupResult>([
    ['A 5.30.0.127.bl.test', ok(['127.0.0.4'], 30)],
    ['A 5.30.0.127.bl2.test', ok(['127.0.0.2'], 900)],
  ]);
  const f = new FakeLookup(t);
  const events: unknown[] = [];
  const d = new Dnsbl(['bl.test=127.0.0.[2..3]*3', 'bl.test=127.0.0.4*2', 'bl2.test*2', 'wl.test*-5'], OPTS, f, reverseName, (e, x) => events.push([e, x]));
  const q = await run(d, '127.0.30.5');
  assert.ok(q !== null);
  const s = d.summary(q);
  assert.equal(s.score, 4, 'bl.test=...4 (2) + bl2.test (2); the [2..3] filter misses');
  assert.deepEqual(s.hits.map((h) => [h.site, h.weight]).sort(), [['bl.test', 2], ['bl2.test', 2]]);
  assert.equal(f.asked.filter(([n]) => n.endsWith('.bl.test')).length, 1, 'two sites of one domain share one lookup');
  assert.equal(s.ttlMs, 60_000, 'min TTL 30s clamped up to ttl_min');
  assert.equal(d.failed(s), true);
  assert.equal(d.replySite(s), 'bl.test');
  assert.deepEqual(events, []);
});

test('allowlist: a negative score at or below the threshold; reply_map renames the site in replies', async () => {
  const t = new Map<string, LookupResult>([['A 9.40.0.127.wl.test', ok(['127.0.10.2'])], ['A 9.40.0.127.bl.test', ok(['127.0.0.2'])]]);
  const d = new Dnsbl(['wl.test=127.0.[0..255].[2..3]*-5', 'bl.test*1'], { ...OPTS, replyMap: { 'bl.test': 'public.example' } }, new FakeLookup(t), reverseName, () => undefined);
  const s = d.summary((await run(d, '127.0.40.9'))!);
  assert.equal(s.score, -4);
  assert.equal(d.allowlisted(s), true);
  assert.equal(d.failed(s), false);
  assert.equal(d.replySite(s), 'public.example');
  const off = new Dnsbl(['wl.test=127.0.[0..255].[2..3]*-5'], { ...OPTS, allowlistThreshold: 0 }, new FakeLookup(t), reverseName, () => undefined);
  assert.equal(off.allowlisted(off.summary((await run(off, '127.0.40.9'))!)), false, 'allowlist_threshold 0 disables it, as in postscreen');
});

test('reserved error answers are not listings: warning once, errors count toward suspension, suspended sites are not asked', async () => {
  const t = new Map<string, LookupResult>([['A 1.32.0.127.bl.test', ok(['127.255.255.254'])]]);
  const f = new FakeLookup(t);
  const events: Array<[string, Record<string, unknown>]> = [];
  const d = new Dnsbl(['bl.test*3'], OPTS, f, reverseName, (e, x) => events.push([e, x]));
  const s1 = d.summary((await run(d, '127.0.32.1'))!);
  assert.equal(s1.score, 0);
  assert.deepEqual(events[0], ['DNSBL WARNING', { site: 'bl.test', reason: 'error-answer', value: '127.255.255.254' }]);
  await run(d, '127.0.32.1');
  assert.equal(events.filter(([e]) => e === 'DNSBL WARNING').length, 1, 'rate-limited');
  const susp = events.find(([e]) => e === 'DNSBL SITE');
  assert.equal(susp?.[1]['state'], 'suspended');
  const before = f.asked.length;
  assert.equal(d.start('127.0.0.9', null, () => undefined), null, 'nothing to ask while every site is suspended');
  assert.equal(f.asked.length, before);
});

test('health: probe failure suspends, a passing probe resumes; probes bypass the cache', async () => {
  const t = new Map<string, LookupResult>([['A 2.0.0.127.bl.test', ok(['127.0.0.2'])]]);
  const f = new FakeLookup(t);
  const events: Array<[string, Record<string, unknown>]> = [];
  const d = new Dnsbl(['bl.test*3'], OPTS, f, reverseName, (e, x) => events.push([e, x]));
  await d.probeAll();
  assert.deepEqual(events, [], 'a healthy site stays quiet');
  assert.ok(f.asked.every(([, , fresh]) => fresh));
  t.delete('A 2.0.0.127.bl.test');
  await d.probeAll();
  assert.equal(events[0]?.[1]['state'], 'suspended');
  assert.match(String(events[0]?.[1]['reason']), /127\.0\.0\.2 not listed/);
  t.set('A 1.0.0.127.bl.test', ok(['127.0.0.2']));
  t.set('A 2.0.0.127.bl.test', ok(['127.0.0.2']));
  await d.probeAll();
  assert.equal(events.length, 1, 'still suspended: the unlisted entry is listed');
  t.delete('A 1.0.0.127.bl.test');
  await d.probeAll();
  assert.deepEqual(events[1], ['DNSBL SITE', { site: 'bl.test', state: 'resumed', reason: 'probe passed' }]);
});

test('late answers: the summary before completion counts them as not listed and names them', async () => {
  const t = new Map<string, LookupResult>([['A 5.30.0.127.slow.test', ok(['127.0.0.2'])], ['A 5.30.0.127.fast.test', ok(['127.0.0.2'])]]);
  const f = new FakeLookup(t, new Map([['5.30.0.127.slow.test', 200]]));
  const d = new Dnsbl(['slow.test*3', 'fast.test*1'], OPTS, f, reverseName, () => undefined);
  let done = false;
  const q = d.start('127.0.30.5', null, () => { done = true; });
  assert.ok(q !== null);
  await new Promise((r) => setTimeout(r, 30));
  const s = d.summary(q);
  assert.deepEqual([s.score, s.complete, s.late, done], [1, false, ['slow.test'], false]);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(done, true);
});

test('slow sites are logged once a minute with their lookup time', async () => {
  const t = new Map<string, LookupResult>([['A 5.30.0.127.slow.test', ok(['127.0.0.2'])]]);
  const f = new FakeLookup(t, new Map([['5.30.0.127.slow.test', 80]]));
  const events: Array<[string, Record<string, unknown>]> = [];
  const d = new Dnsbl(['slow.test*3'], { ...OPTS, slowWarningMs: 40 }, f, reverseName, (e, x) => events.push([e, x]));
  await run(d, '127.0.30.5');
  await run(d, '127.0.30.5');
  const slow = events.filter(([e, x]) => e === 'DNSBL WARNING' && x['reason'] === 'slow');
  assert.equal(slow.length, 1);
  assert.equal(slow[0]?.[1]['site'], 'slow.test');
  assert.ok((slow[0]?.[1]['lookup_ms'] as number) >= 40);
});

test('dnsblReply: postscreen\'s text, 521 or 550, with unprintable characters of a site name made harmless', () => {
  assert.equal(dnsblReply(550, '192.0.2.1', 'zen.example'), '550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.example\r\n');
  assert.equal(dnsblReply(521, '::1', 'bad\r\nsite'), '521 5.7.1 Service unavailable; client [::1] blocked using bad??site\r\n');
});

const QUEUED: LookupResult = { status: 'error', error: 'queued' };
const TIMEOUT: LookupResult = { status: 'error', error: 'timeout' };

test('overload: lookups that expired in the resolver queue never count against the site; one warning a second with the count', async () => {
  let now = 10_000;
  const t = new Map<string, LookupResult>();
  const f = new FakeLookup(t);
  const events: Array<[string, Record<string, unknown>]> = [];
  const d = new Dnsbl(['bl.test*3'], { ...OPTS, health: { ...OPTS.health, errorLimit: 2 } }, f, reverseName, (e, x) => events.push([e, x]), () => now);
  for (let i = 1; i <= 10; i++) t.set(`A ${i}.30.0.127.bl.test`, QUEUED);
  await Promise.all(Array.from({ length: 10 }, (_, i) => run(d, `127.0.30.${i + 1}`)));
  assert.equal(d.overloaded, 10);
  assert.equal(d.domains[0]?.suspended, false, 'ten overloaded lookups with error_limit 2: not suspended');
  assert.equal(d.domains[0]?.errors, 0);
  const overload = () => events.filter(([e, x]) => e === 'DNSBL WARNING' && x['reason'] === 'overload').map(([, x]) => x);
  assert.deepEqual(overload(), [{ site: 'bl.test', reason: 'overload', count: 1, total: 1 }], 'the first at once, the rest held back');
  d.healthTick(); // health off: only the held-back count is logged
  assert.deepEqual(overload()[1], { site: 'bl.test', reason: 'overload', count: 9, total: 10 });
  assert.deepEqual(f.asked.filter(([, , fresh]) => fresh), [], 'no probe with health off');
  now += 1000;
  await run(d, '127.0.30.1');
  assert.deepEqual(overload()[2], { site: 'bl.test', reason: 'overload', count: 1, total: 11 }, 'a second later: logged at once');
  assert.equal(events.some(([e]) => e === 'DNSBL SITE'), false);
  // Overload between two real errors neither resets nor adds: the second error suspends.
  t.set('A 1.31.0.127.bl.test', TIMEOUT);
  t.set('A 2.31.0.127.bl.test', TIMEOUT);
  await run(d, '127.0.31.1');
  await run(d, '127.0.30.2');
  await run(d, '127.0.31.2');
  assert.deepEqual(events.filter(([e]) => e === 'DNSBL SITE').map(([, x]) => x['state']), ['suspended']);
});

test('health: a probe that expired in the resolver queue is inconclusive (no suspend, no resume)', async () => {
  const t = new Map<string, LookupResult>([['A 2.0.0.127.bl.test', QUEUED]]);
  const f = new FakeLookup(t);
  const events: Array<[string, Record<string, unknown>]> = [];
  const d = new Dnsbl(['bl.test*3'], OPTS, f, reverseName, (e, x) => events.push([e, x]));
  await d.probeAll();
  assert.equal(d.domains[0]?.suspended, false);
  assert.equal(d.overloaded, 1);
  t.set('A 2.0.0.127.bl.test', ok(['127.0.0.4'])); // listed entry fine, but...
  t.set('A 1.0.0.127.bl.test', ok(['127.0.0.2'])); // ...the unlisted one is listed: suspended
  await d.probeAll();
  assert.equal(d.domains[0]?.suspended, true);
  t.set('A 1.0.0.127.bl.test', QUEUED);
  await d.probeAll();
  assert.equal(d.domains[0]?.suspended, true, 'a queued probe does not resume either');
  assert.deepEqual(events.filter(([e]) => e === 'DNSBL SITE').map(([, x]) => x['state']), ['suspended']);
});

test('dnsbl.txt: the listing site\'s TXT text follows the 550, printable and bounded; no TXT for a non-listing or allowlist site', async () => {
  const t = new Map<string, LookupResult>([
    ['A 7.50.0.127.bl.test', ok(['127.0.0.2'])],
    ['TXT 7.50.0.127.bl.test', ok(['Listed\u0007 see https://bl.test/q?127.0.50.7'])],
    ['A 7.50.0.127.wl.test', ok(['127.0.0.2'])],
    ['TXT 7.50.0.127.wl.test', ok(['allowlisted'])],
  ]);
  const f = new FakeLookup(t);
  const d = new Dnsbl(['bl.test*3', 'wl.test*-1'], { ...OPTS, txt: true }, f, reverseName, () => undefined);
  const q = (await run(d, '127.0.50.7'))!;
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(d.outcome(q).reply(550), '550 5.7.1 Service unavailable; client [127.0.50.7] blocked using bl.test; Listed? see https://bl.test/q?127.0.50.7\r\n');
  assert.deepEqual(f.asked.filter(([, type]) => type === 'TXT').map(([n]) => n), ['7.50.0.127.bl.test'], 'TXT only for a site that adds to the score');
  // No TXT record (or txt off): the plain reply.
  const g = new FakeLookup(new Map([['A 7.50.0.127.bl.test', ok(['127.0.0.2'])]]));
  const e = new Dnsbl(['bl.test*3'], { ...OPTS, txt: true }, g, reverseName, () => undefined);
  const r = (await run(e, '127.0.50.7'))!;
  await new Promise((res) => setTimeout(res, 10));
  assert.equal(e.outcome(r).reply(521), '521 5.7.1 Service unavailable; client [127.0.50.7] blocked using bl.test\r\n');
  const h = new FakeLookup(t);
  const off = new Dnsbl(['bl.test*3'], OPTS, h, reverseName, () => undefined);
  await run(off, '127.0.50.7');
  assert.equal(h.asked.filter(([, type]) => type === 'TXT').length, 0, 'txt off: no TXT lookup');
});

test('filterMatches: only a dotted quad; only 127.255.255.x is a reserved error answer; every octet of the filter counts', () => {
  const any = parseSite('any.test');
  for (const bad of ['127.0.2', '1.2.3.4.5', '']) assert.equal(filterMatches(any, bad), false, bad);
  for (const a of ['10.255.255.1', '127.255.0.2', '127.0.255.255']) assert.equal(filterMatches(any, a), true, `${a} is a listing`);
  const f = parseSite('bl.test=127.0.0.2');
  assert.equal(filterMatches(f, '127.0.0.2'), true);
  for (const a of ['126.0.0.2', '127.1.0.2', '127.0.1.2', '127.0.0.3']) assert.equal(filterMatches(f, a), false, a);
});
