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

/**
 * A lookup on a manual clock: each answer arrives after the clock jumps by the name's delay
 * (default 0); a name in `never` is never answered. Records what it was asked.
 */
class ClockLookup implements DnsLookup {
  now = 100_000;
  asked: Array<[string, LookupType, boolean]> = [];
  constructor(public table: Map<string, LookupResult>, public delays = new Map<string, number>(), public never = new Set<string>()) {}
  lookup(name: string, type: LookupType, fresh = false): Promise<LookupResult> {
    this.asked.push([name, type, fresh]);
    const r = this.table.get(`${type} ${name}`) ?? { status: 'nxdomain', ttl: 300 };
    if (this.never.has(name)) return new Promise(() => undefined);
    return new Promise((res) => setImmediate(() => { this.now += this.delays.get(name) ?? 0; res(r); }));
  }
}

type Events = Array<[string, Record<string, unknown>]>;
function clocked(sites: string[], opts: Partial<DnsblOptions>, l: ClockLookup, events: Events): Dnsbl {
  return new Dnsbl(sites, { ...OPTS, ...opts }, l, reverseName, (e, x) => events.push([e, x]), () => l.now);
}
/** Lets every ClockLookup answer due now arrive (and the TXT lookups they start): turns of the event loop, no timer. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

test('slow warning: only a lookup slower than slow_warning, with its time; again a minute later, not before; errors can be slow, overload is not', async () => {
  const l = new ClockLookup(new Map([['A 1.0.0.127.slow.test', ok(['127.0.0.2'])], ['A 3.0.0.127.slow.test', TIMEOUT], ['A 4.0.0.127.slow.test', QUEUED]]));
  const events: Events = [];
  const d = clocked(['slow.test*3'], { slowWarningMs: 1000, health: { ...OPTS.health, errorLimit: 99 } }, l, events);
  const slow = (): unknown[] => events.filter(([e, x]) => e === 'DNSBL WARNING' && x['reason'] === 'slow').map(([, x]) => x);
  l.delays.set('1.0.0.127.slow.test', 1000);
  await run(d, '127.0.0.1');
  assert.deepEqual(slow(), [], 'exactly slow_warning is not slow');
  l.delays.set('1.0.0.127.slow.test', 1001);
  await run(d, '127.0.0.1');
  assert.deepEqual(slow(), [{ site: 'slow.test', reason: 'slow', lookup_ms: 1001 }]);
  const first = l.now;
  l.now = first + 60_000 - 1001 - 1; // the next slow answer arrives 1 ms short of a minute after the first line
  await run(d, '127.0.0.1');
  assert.equal(slow().length, 1, 'once a minute at most');
  l.now = first + 60_000 - 1001; // exactly a minute after
  await run(d, '127.0.0.1');
  assert.deepEqual(slow()[1], { site: 'slow.test', reason: 'slow', lookup_ms: 1001 });
  l.now += 60_000;
  l.delays.set('4.0.0.127.slow.test', 5000);
  await run(d, '127.0.0.4');
  assert.equal(slow().length, 2, 'a lookup that expired in our own queue says nothing about the site');
  l.delays.set('3.0.0.127.slow.test', 5000);
  await run(d, '127.0.0.3');
  assert.deepEqual(slow()[2], { site: 'slow.test', reason: 'slow', lookup_ms: 5000 }, 'a slow timeout is slow too');
});

test('summary: lookup_ms to the last answer (or to now while none came), TTL from every answer clamped, ttl_max without answers', async () => {
  const l = new ClockLookup(new Map([['A 5.0.0.127.a.test', ok(['127.0.0.2'], 900)], ['A 5.0.0.127.b.test', { status: 'nxdomain', ttl: 120 }]]),
    new Map([['5.0.0.127.a.test', 30], ['5.0.0.127.b.test', 70]]));
  const d = clocked(['a.test*1', 'b.test*1'], {}, l, []);
  const start = l.now;
  const q = (await run(d, '127.0.0.5'))!;
  l.now += 500; // the summary is read later: the time is still that of the last answer
  const s = d.summary(q);
  assert.deepEqual([s.lookupMs, s.ttlMs, s.complete, s.late, s.score], [100, 120_000, true, [], 1]);
  assert.equal(q.started, start);
  // A TTL above ttl_max is cut to it.
  const big = new ClockLookup(new Map([['A 5.0.0.127.a.test', ok(['127.0.0.2'], 7200)]]));
  const e = clocked(['a.test*1'], {}, big, []);
  assert.equal(e.summary((await run(e, '127.0.0.5'))!).ttlMs, 3_600_000);
  // No answer yet: lookup_ms runs with the clock, TTL is ttl_max, both sites late.
  const none = new ClockLookup(new Map(), new Map(), new Set(['5.0.0.127.a.test', '5.0.0.127.b.test']));
  const f = clocked(['a.test*1', 'b.test*1'], {}, none, []);
  const p = f.start('127.0.0.5', null, () => undefined)!;
  none.now += 250;
  assert.deepEqual(f.summary(p), { score: 0, hits: [], complete: false, late: ['a.test', 'b.test'], ttlMs: 3_600_000, lookupMs: 250 });
  // ... exactly ttl_max, also one not in whole seconds (the pass is stored until now + ttlMs).
  const odd = clocked(['a.test*1'], { ttlMinMs: 0, ttlMaxMs: 1001 }, none, []);
  assert.equal(odd.summary(odd.start('127.0.0.5', null, () => undefined)!).ttlMs, 1001);
});

test('outcome: a failing client\'s DNSBL fields (score, hits, lookup_ms, late) and pass fields, reply_map names in the log unless reveal_sites', async () => {
  const t = new Map([['A 6.0.0.127.bl.test', ok(['127.0.0.2'], 600)]]);
  const mk = (revealSites: boolean): { d: Dnsbl; l: ClockLookup } => {
    const l = new ClockLookup(t, new Map([['6.0.0.127.bl.test', 40]]), new Set(['6.0.0.127.slow.test']));
    return { l, d: clocked(['bl.test*3', 'slow.test*1'], { replyMap: { 'bl.test': 'bl-public', 'slow.test': 'slow-public' }, revealSites, timeoutMs: 1500 }, l, []) };
  };
  const { d, l } = mk(false);
  const q = d.start('127.0.0.6', null, () => undefined)!;
  await settle();
  l.now += 1000;
  const o = d.outcome(q);
  assert.deepEqual([o.complete, o.failed, o.allowlisted, o.ttlMs, o.score, o.event], [false, true, false, 600_000, 3, 'DNSBL']);
  assert.deepEqual(o.fields, { score: 3, hits: [{ site: 'bl-public', weight: 3, records: ['127.0.0.2'] }], lookup_ms: 40, late: ['slow-public'] });
  assert.deepEqual(o.passFields, { dnsbl_score: 3, dnsbl_late: ['slow-public'] });
  assert.equal(o.reply(550), '550 5.7.1 Service unavailable; client [127.0.0.6] blocked using bl-public\r\n');
  assert.deepEqual(d.summary(q).hits, [{ site: 'bl.test', weight: 3, records: ['127.0.0.2'] }], 'the summary keeps the real domain');
  assert.equal(d.deadlineMs, 1500);
  assert.equal(d.logName('bl.test'), 'bl-public');
  assert.equal(d.logName('other.test'), 'other.test');
  const r = mk(true);
  const rq = r.d.start('127.0.0.6', null, () => undefined)!;
  await settle();
  const ro = r.d.outcome(rq);
  assert.deepEqual(ro.fields, { score: 3, hits: [{ site: 'bl.test', weight: 3, records: ['127.0.0.2'] }], lookup_ms: 40, late: ['slow.test'] });
  assert.deepEqual(ro.passFields, { dnsbl_score: 3, dnsbl_late: ['slow.test'] });
  assert.equal(ro.reply(521), '521 5.7.1 Service unavailable; client [127.0.0.6] blocked using bl-public\r\n', 'replies keep reply_map');
  assert.equal(r.d.logName('bl.test'), 'bl.test');
  // A pass with every answer in: no DNSBL fields, only the score on PASS NEW.
  const p = new ClockLookup(new Map([['A 6.0.0.127.bl.test', ok(['127.0.0.2'])]]));
  const pd = clocked(['bl.test*2'], {}, p, []);
  const po = pd.outcome((await run(pd, '127.0.0.6'))!);
  assert.deepEqual([po.failed, po.fields, po.passFields, pd.deadlineMs], [false, {}, { dnsbl_score: 2 }, 0]);
});

test('thresholds: the score at dnsbl.threshold fails, one below passes; the allowlist needs every answer and a score at or below its threshold', async () => {
  const t = new Map([['A 7.0.0.127.bl.test', ok(['127.0.0.2'])], ['A 7.0.0.127.wl.test', ok(['127.0.0.2'])]]);
  const score = async (sites: string[], opts: Partial<DnsblOptions>): Promise<[boolean, boolean]> => {
    const d = clocked(sites, opts, new ClockLookup(t), []);
    const s = d.summary((await run(d, '127.0.0.7'))!);
    return [d.failed(s), d.allowlisted(s)];
  };
  assert.deepEqual(await score(['bl.test*3'], {}), [true, false]);
  assert.deepEqual(await score(['bl.test*2'], {}), [false, false]);
  assert.deepEqual(await score(['wl.test*-2'], { allowlistThreshold: -2 }), [false, true], 'at the allowlist threshold');
  assert.deepEqual(await score(['wl.test*-1'], { allowlistThreshold: -2 }), [false, false], 'above it');
  assert.deepEqual(await score(['bl.test*0'], { allowlistThreshold: -1 }), [false, false]);
  // An allowlist site that has not answered yet: not allowlisted (fail-open is for blocklists only).
  const l = new ClockLookup(t, new Map(), new Set(['7.0.0.127.bl.test']));
  const d = clocked(['wl.test*-5', 'bl.test*1'], {}, l, []);
  const q = d.start('127.0.0.7', null, () => undefined)!;
  await settle();
  const s = d.summary(q);
  assert.deepEqual([s.score, s.complete, d.allowlisted(s)], [-5, false, false]);
});

test('replySite: the listing site with the highest weight; with none, the first site; with no site, "dnsbl"', async () => {
  const t = new Map([['A 8.0.0.127.a.test', ok(['127.0.0.2'])], ['A 8.0.0.127.b.test', ok(['127.0.0.2'])], ['A 8.0.0.127.c.test', ok(['127.0.0.2'])], ['A 8.0.0.127.w.test', ok(['127.0.0.2'])]]);
  const reply = async (sites: string[]): Promise<string> => {
    const d = clocked(sites, { replyMap: { 'z.test': 'z-public' } }, new ClockLookup(t), []);
    return d.replySite(d.summary((await run(d, '127.0.0.8'))!));
  };
  assert.equal(await reply(['a.test*2', 'b.test*5', 'c.test*3']), 'b.test');
  assert.equal(await reply(['a.test*2', 'b.test*2']), 'a.test', 'a tie: the first');
  assert.equal(await reply(['z.test*3', 'w.test*-9']), 'z-public', 'no listing site: the first site, through reply_map');
  assert.equal(await reply(['z.test*3', 'w.test*-9', 'a.test*0']), 'z-public', 'hits of weight 0 or less do not name the reply');
  const none = new Dnsbl([], OPTS, new ClockLookup(t), reverseName, () => undefined);
  assert.equal(none.enabled, false);
  assert.equal(none.replySite({ score: 0, hits: [], complete: true, late: [], ttlMs: 0, lookupMs: 0 }), 'dnsbl');
});

test('dnsbl.txt: the text of the reply site\'s domain, cut to 200 characters; one TXT lookup per domain; none after an empty or failed TXT answer', async () => {
  const long = 'x'.repeat(150) + 'y'.repeat(150);
  const t = new Map<string, LookupResult>([
    ['A 9.0.0.127.lo.test', ok(['127.0.0.2'])], ['TXT 9.0.0.127.lo.test', ok(['low site'])],
    ['A 9.0.0.127.hi.test', ok(['127.0.0.3'])], ['TXT 9.0.0.127.hi.test', ok([long, 'second string'])],
  ]);
  const l = new ClockLookup(t);
  const d = clocked(['lo.test*1', 'hi.test=127.0.0.3*4', 'hi.test*2'], { txt: true, replyMap: { 'hi.test': 'hi-public' } }, l, []);
  const q = (await run(d, '127.0.0.9'))!;
  await settle();
  assert.equal(d.outcome(q).reply(550), `550 5.7.1 Service unavailable; client [127.0.0.9] blocked using hi-public; ${'x'.repeat(150)}${'y'.repeat(50)}\r\n`);
  assert.deepEqual(l.asked.filter(([, type]) => type === 'TXT').map(([n]) => n).sort(), ['9.0.0.127.hi.test', '9.0.0.127.lo.test'], 'two sites of hi.test listed: one TXT lookup');
  for (const txt of [ok([]), { status: 'nxdomain', ttl: 60 } as LookupResult, TIMEOUT]) {
    const e = clocked(['hi.test*4'], { txt: true }, new ClockLookup(new Map([['A 9.0.0.127.hi.test', ok(['127.0.0.3'])], ['TXT 9.0.0.127.hi.test', txt]])), []);
    const r = (await run(e, '127.0.0.9'))!;
    await settle();
    assert.equal(e.outcome(r).reply(550), '550 5.7.1 Service unavailable; client [127.0.0.9] blocked using hi.test\r\n', JSON.stringify(txt));
  }
});

test('health probes: the suspension reason names the test entry and the answer; per-site test entries; a bad test entry probes nothing', async () => {
  const t = new Map<string, LookupResult>();
  const l = new ClockLookup(t);
  const events: Events = [];
  const d = clocked(['bl.test*3', 'own.test*1'], { health: { ...OPTS.health, sites: { 'own.test': { listed: '127.0.0.9', unlisted: '127.0.0.8' } } } }, l, events);
  const reasons = (): unknown[] => events.filter(([e]) => e === 'DNSBL SITE').map(([, x]) => [x['site'], x['state'], x['reason']]);
  t.set('A 2.0.0.127.bl.test', ok(['127.255.255.254']));
  t.set('A 9.0.0.127.own.test', ok(['127.0.0.2']));
  t.set('A 8.0.0.127.own.test', { status: 'nodata', ttl: 60 });
  await d.probeAll();
  assert.deepEqual(l.asked.map(([n, , fresh]) => [n, fresh]).sort(), [['1.0.0.127.bl.test', true], ['2.0.0.127.bl.test', true], ['8.0.0.127.own.test', true], ['9.0.0.127.own.test', true]]);
  assert.deepEqual(reasons(), [['bl.test', 'suspended', 'test entry 127.0.0.2 not listed (127.255.255.254)']], 'a reserved answer is no listing; nodata is not listed');
  t.set('A 2.0.0.127.bl.test', { status: 'error', error: 'servfail' });
  await d.probeAll();
  assert.equal(reasons().length, 1, 'already suspended: no second line');
  t.set('A 2.0.0.127.bl.test', ok(['127.0.0.2']));
  await d.probeAll();
  t.set('A 8.0.0.127.own.test', ok(['127.0.0.4', '127.0.0.5']));
  await d.probeAll();
  assert.deepEqual(reasons().slice(1), [['bl.test', 'resumed', 'probe passed'], ['own.test', 'suspended', 'test entry 127.0.0.8 listed (127.0.0.4,127.0.0.5)']]);
  const e: Events = [];
  const f = clocked(['bl.test*3'], {}, l, e);
  t.set('A 2.0.0.127.bl.test', { status: 'error', error: 'servfail' });
  await f.probeAll();
  assert.deepEqual(e.map(([, x]) => x['reason']), ['test entry 127.0.0.2 not listed (servfail)']);
  t.set('A 2.0.0.127.bl.test', { status: 'nxdomain', ttl: 60 });
  const g = clocked(['bl.test*3'], {}, l, e);
  await g.probeAll();
  assert.equal(e[1]?.[1]['reason'], 'test entry 127.0.0.2 not listed (nxdomain)');
  const before = l.asked.length;
  const bad = clocked(['bl.test*3'], { health: { ...OPTS.health, listed: 'not an address' } }, l, e);
  await bad.probeAll();
  assert.equal(l.asked.length, before, 'nothing asked');
  assert.equal(bad.domains[0]?.suspended, false);
});

test('health probes: a probe still waiting is not started again; healthTick probes only with health on', async () => {
  const l = new ClockLookup(new Map([['A 2.0.0.127.bl.test', ok(['127.0.0.2'])]]));
  const d = clocked(['bl.test*3'], { health: { ...OPTS.health, enable: true } }, l, []);
  await Promise.all([d.probeAll(), d.probeAll()]);
  assert.equal(l.asked.length, 2, 'one probe: the listed and the unlisted entry');
  await d.probeAll();
  assert.equal(l.asked.length, 4, 'the next probe after the first ended');
  d.healthTick();
  await settle();
  assert.equal(l.asked.length, 6);
  const events: Events = [];
  const off = clocked(['bl.test*3'], {}, l, events);
  off.healthTick();
  await settle();
  assert.equal(l.asked.length, 6, 'health off');
  assert.deepEqual(events, [], 'nothing held back: no overload line');
});

test('the metrics observer sees each answer: listed, clean, error, overload, with the site and the time', async () => {
  const t = new Map<string, LookupResult>([
    ['A 1.0.0.127.bl.test', ok(['127.0.0.2'])], ['A 2.0.0.127.bl.test', ok(['127.0.0.7'])], ['A 3.0.0.127.bl.test', { status: 'nxdomain', ttl: 60 }],
    ['A 4.0.0.127.bl.test', ok(['127.0.0.2', '127.255.255.254'])], ['A 5.0.0.127.bl.test', TIMEOUT], ['A 6.0.0.127.bl.test', QUEUED],
  ]);
  const l = new ClockLookup(t, new Map([['1.0.0.127.bl.test', 12]]));
  const d = clocked(['bl.test=127.0.0.[2..3]*3'], { health: { ...OPTS.health, errorLimit: 99 } }, l, []);
  const seen: Array<[string, string, number]> = [];
  d.observed = { observer: { wants: () => false, event: () => undefined, dnsblLookup: (site, outcome, ms) => { seen.push([site, outcome, ms]); } } };
  for (let i = 1; i <= 6; i++) await run(d, `127.0.0.${i}`);
  assert.deepEqual(seen, [['bl.test', 'listed', 12], ['bl.test', 'clean', 0], ['bl.test', 'clean', 0], ['bl.test', 'error', 0], ['bl.test', 'error', 0], ['bl.test', 'overload', 0]]);
});

test('error answers: the warning again after a minute; the suspension names the answer; an answer without one resets the count', async () => {
  const t = new Map<string, LookupResult>([['A 1.0.0.127.bl.test', ok(['127.255.255.254'])], ['A 2.0.0.127.bl.test', ok(['127.0.0.2'])]]);
  const l = new ClockLookup(t);
  const events: Events = [];
  const d = clocked(['bl.test*3'], { health: { ...OPTS.health, errorLimit: 2 } }, l, events);
  const warn = (): number => events.filter(([e]) => e === 'DNSBL WARNING').length;
  await run(d, '127.0.0.1');
  await run(d, '127.0.0.2');
  l.now += 60_000 - 1;
  await run(d, '127.0.0.1');
  assert.deepEqual([warn(), d.domains[0]?.suspended], [1, false], 'the listing in between reset the count');
  l.now += 1;
  await run(d, '127.0.0.1');
  assert.equal(warn(), 2, 'a minute after the first');
  assert.deepEqual(events.filter(([e]) => e === 'DNSBL SITE').map(([, x]) => x['reason']), ['2 errors in a row, last: error answer 127.255.255.254']);
});

test('start: an address with no reverse name asks nothing; a cancelled query never calls back', async () => {
  const l = new ClockLookup(new Map());
  const d = clocked(['bl.test*3'], {}, l, []);
  assert.equal(d.start('not-an-address', null, () => undefined), null);
  assert.equal(l.asked.length, 0);
  let called = 0;
  const q = d.start('127.0.0.1', null, () => { called++; })!;
  q.cancel();
  await settle();
  assert.deepEqual([called, q.pending, q.cancelled], [0, 0, true]);
  const r = d.start('127.0.0.1', 'me', (owner, done) => { assert.equal(owner, 'me'); assert.equal(done, r); called++; })!;
  assert.equal(called, 0, 'never synchronously');
  await settle();
  assert.equal(called, 1);
});

test('overload lines: held back for a second after the last one, the count of what was held back', async () => {
  const t = new Map<string, LookupResult>([['A 1.0.0.127.bl.test', QUEUED]]);
  const l = new ClockLookup(t);
  const events: Events = [];
  const d = clocked(['bl.test*3'], {}, l, events);
  await run(d, '127.0.0.1');
  l.now += 999;
  await run(d, '127.0.0.1');
  await run(d, '127.0.0.1');
  l.now += 1;
  await run(d, '127.0.0.1');
  assert.deepEqual(events.map(([, x]) => [x['count'], x['total']]), [[1, 1], [3, 4]]);
});

test('sites sharing a domain: one record holds them all (the first listing site counts too); a site of weight 0 gets no TXT lookup', async () => {
  const t = new Map<string, LookupResult>([['A 2.0.0.127.bl.test', ok(['127.0.0.2'])], ['A 2.0.0.127.zero.test', ok(['127.0.0.2'])]]);
  const l = new ClockLookup(t);
  const d = clocked(['bl.test=127.0.0.2*3', 'bl.test=127.0.0.9*1', 'zero.test*0'], { txt: true }, l, []);
  assert.equal(d.enabled, true);
  assert.deepEqual(d.domains.map((x) => [x.domain, x.sites.length]), [['bl.test', 2], ['zero.test', 1]]);
  const q = (await run(d, '127.0.0.2'))!;
  await settle();
  assert.equal(d.summary(q).score, 3);
  assert.deepEqual(l.asked.filter(([, type]) => type === 'TXT').map(([n]) => n), ['2.0.0.127.bl.test'], 'no TXT for the weight-0 site');
});

test('the reply of a client no site listed names the first site (no TXT to add)', async () => {
  const d = clocked(['bl.test*3'], { txt: true }, new ClockLookup(new Map()), []);
  const q = (await run(d, '127.0.0.3'))!;
  assert.equal(d.outcome(q).reply(550), '550 5.7.1 Service unavailable; client [127.0.0.3] blocked using bl.test\r\n');
});

test('health probes: a bad unlisted test entry probes nothing either; a listed entry with a reserved answer among real ones is listed', async () => {
  const t = new Map<string, LookupResult>([['A 2.0.0.127.bl.test', ok(['127.255.255.254', '127.0.0.2'])]]);
  const l = new ClockLookup(t);
  const events: Events = [];
  const bad = clocked(['bl.test*3'], { health: { ...OPTS.health, unlisted: '1.2.3' } }, l, events);
  await bad.probeAll();
  assert.equal(l.asked.length, 0);
  const d = clocked(['bl.test*3'], {}, l, events);
  await d.probeAll();
  assert.equal(l.asked.length, 2);
  assert.deepEqual(events, [], 'listed: the site is healthy');
});
