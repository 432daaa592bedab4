/*
 * session/verdict.ts: the one verdict function, as a table. Each row is one
 * client's facts at the end of the greet wait; the columns are what the
 * session does next, the reason, HANDOFF's verdict name and what is stored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { makePersonalities } from '../../src/server/stress.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { Dnsbl, DnsblQuery, type DnsblSummary } from '../../src/checks/dnsbl.js';
import { greylistDecide, type GreylistDecision } from '../../src/checks/greylist.js';
import { withPasses, type VerdictRecord } from '../../src/cache/store.js';
import { TestIndex } from '../../src/checks/tests.js';
import { DONE, FAIL, PASS, TODO, flag, stateToString, earlyDone } from '../../src/session/test-state.js';
import { afterEarly, atAccept, type EarlyFacts } from '../../src/session/verdict.js';

const NOW = 1_800_000_000_000;
const PG = TestIndex.pregreet;
const DB = TestIndex.dnsbl;
const GL = TestIndex.greylist;

function personality(raw: Record<string, unknown>) {
  const cfg = validateConfig({ hostname: 'screen.test', ...raw });
  const early = [PG];
  if (cfg.dnsbl.sites.length > 0) early.push(DB);
  if (cfg.greylist.enable) early.push(GL);
  return makePersonalities(cfg, early).normal;
}

const noLookup = { lookup: () => new Promise<never>(() => undefined) };
function dnsblOf(raw: Record<string, unknown>, score: number, hits: DnsblSummary['hits'], complete = true) {
  const p = personality(raw);
  const d = p.config.dnsbl;
  const test = new Dnsbl(d.sites, {
    threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
    slowWarningMs: d.slow_warning, txt: false, replyMap: d.reply_map,
    health: { enable: false, intervalMs: 1000, listed: '127.0.0.2', unlisted: '127.0.0.1', errorLimit: 5, sites: {} },
  }, noLookup, () => null, () => undefined);
  const q = new DnsblQuery('192.0.2.10', NOW - 5);
  q.score = score;
  q.hits = hits;
  q.pending = complete ? 0 : 1;
  if (!complete) q.lateDomains.add('x.test');
  q.ttlSec = 3600;
  q.lastAnswer = NOW;
  return { p, dnsbl: [{ test: DB, outcome: test.outcome(q) }] };
}

function facts(over: Partial<EarlyFacts> & Pick<EarlyFacts, 'personality'>): EarlyFacts {
  return {
    client: '192.0.2.10', now: NOW, replies: makeReplies('screen.test', 'ESMTP'),
    state: flag(PG, TODO | PASS | DONE), record: null, enforced: null, ignored: false, checks: [],
    greylist: () => { throw new Error('greylist not expected'); }, ...over,
  };
}

const sites = { dnsbl: { sites: ['low.test*1', 'high.test*3'], threshold: 3, allowlist_threshold: -1, action: 'enforce' } };

test('afterEarly: a table of clients', () => {
  const plain = personality({});
  const rows: Array<{ label: string; f: EarlyFacts; next: string; reason?: string; name?: string; stored: Record<number, number> | null }> = [
    { label: 'waited its turn, pregreet only', f: facts({ personality: plain }), next: 'handoff', name: 'new', stored: { [PG]: NOW + plain.config.pregreet.ttl } },
    { label: 'pregreeted under enforce', f: facts({ personality: plain, state: flag(PG, TODO | FAIL | DONE), enforced: { reply: '550 x\r\n', reason: 'pregreet' } }), next: 'enforce', reason: 'pregreet', stored: null },
    { label: 'pregreeted under ignore, old pass cleared', f: facts({ personality: plain, state: flag(PG, TODO | DONE), ignored: true, record: withPasses(null, [[PG, NOW + 5]]) }), next: 'handoff', name: 'ignored', stored: { [PG]: 0 } },
  ];
  {
    const { p, dnsbl } = dnsblOf(sites, 4, [{ site: 'low.test', weight: 1, records: ['127.0.0.2'] }, { site: 'high.test', weight: 3, records: ['127.0.0.2'] }]);
    rows.push({ label: 'listed by two weighted sites: enforce names the highest-weighted', f: facts({ personality: p, checks: dnsbl, state: flag(PG, TODO | PASS | DONE) | flag(DB, TODO | DONE) }), next: 'enforce', reason: 'dnsbl', stored: null });
  }
  {
    const { p, dnsbl } = dnsblOf(sites, 1, [{ site: 'low.test', weight: 1, records: ['127.0.0.2'] }]);
    rows.push({ label: 'below the threshold: passes, DNSBL pass stored', f: facts({ personality: p, checks: dnsbl, state: flag(PG, TODO | PASS | DONE) | flag(DB, TODO | DONE) }), next: 'handoff', name: 'new', stored: { [PG]: NOW + p.config.pregreet.ttl, [DB]: NOW + 3_600_000 } });
  }
  {
    const { p, dnsbl } = dnsblOf(sites, 1, [], false);
    rows.push({ label: 'a site did not answer: no DNSBL pass stored', f: facts({ personality: p, checks: dnsbl, state: flag(PG, TODO | PASS | DONE) | flag(DB, TODO) }), next: 'handoff', name: 'new', stored: { [PG]: NOW + p.config.pregreet.ttl, [DB]: 0 } });
  }
  {
    const { p, dnsbl } = dnsblOf(sites, -1, [{ site: 'wl.test', weight: -1, records: ['127.0.0.2'] }]);
    rows.push({ label: 'allowlist threshold: every enabled test passes', f: facts({ personality: p, checks: dnsbl, state: flag(PG, TODO) | flag(DB, TODO | DONE) }), next: 'handoff', name: 'dnsbl-allowlisted', stored: { [PG]: NOW + 3_600_000, [DB]: NOW + 3_600_000 } });
  }
  {
    const p = personality({ greylist: { enable: true } });
    const seen: string[] = [];
    const observe = (net: string): GreylistDecision => {
      seen.push(net);
      return greylistDecide(0, NOW, { minDelayMs: 1, maxDelayMs: 2, ttlMs: 3 });
    };
    rows.push({ label: 'greylisting: a new network is deferred; the early passes are kept', f: facts({ personality: p, greylist: observe }), next: 'greylist', reason: 'greylist', stored: { [PG]: NOW + p.config.pregreet.ttl, [GL]: 0 } });
  }
  {
    const p = personality({ greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
    rows.push({ label: 'greylisting suspicious only: a clean client is not greylisted', f: facts({ personality: p }), next: 'handoff', name: 'new', stored: { [PG]: NOW + p.config.pregreet.ttl, [GL]: NOW + p.config.greylist.ttl } });
  }
  {
    const p = personality({ deep: { pipelining: { enable: true } } });
    rows.push({ label: 'a deep test due: the dummy engine first, no PASS NEW yet', f: facts({ personality: p }), next: 'deep', reason: 'deep', stored: { [PG]: NOW + p.config.pregreet.ttl } });
  }
  for (const r of rows) {
    const v = afterEarly(r.f);
    assert.equal(v.next, r.next, r.label);
    if (r.reason !== undefined) assert.equal(v.reason, r.reason, r.label);
    if (r.name !== undefined) assert.equal(v.name, r.name, r.label);
    if (r.stored === null) assert.equal(v.record, null, `${r.label}: nothing stored`);
    else {
      const rec = v.record as VerdictRecord;
      assert.notEqual(rec, null, `${r.label}: a record is stored`);
      for (const [i, want] of Object.entries(r.stored)) assert.equal(rec[Number(i)], want, `${r.label}: row ${i}`);
    }
  }
});

test('afterEarly: the 550 names the highest-weighted listing site, through reply_map', () => {
  const { p, dnsbl } = dnsblOf({ dnsbl: { ...sites.dnsbl, reply_map: { 'high.test': 'public.example' } } }, 4,
    [{ site: 'low.test', weight: 1, records: ['127.0.0.2'] }, { site: 'high.test', weight: 3, records: ['127.0.0.2'] }]);
  const v = afterEarly(facts({ personality: p, checks: dnsbl }));
  assert.match(v.reply ?? '', /^550 5\.7\.1 .* blocked using public\.example\r\n$/);
  assert.equal(v.failedChecks[0]?.action, 'enforce');
  assert.equal(v.failedChecks[0]?.outcome.fields['score'], 4);
});

test('afterEarly never edits the record it was given', () => {
  const p = personality({ greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 } });
  const rec = withPasses(null, [[PG, NOW - 1], [DB, NOW + 9]]);
  const before = Array.from({ length: rec.length }, (_, i) => rec[i]);
  const v = afterEarly(facts({ personality: p, record: rec }));
  assert.notEqual(v.record, rec);
  assert.deepEqual(Array.from({ length: rec.length }, (_, i) => rec[i]), before);
});

test('atAccept: allowlist, denylist with its action, PASS OLD only with every enabled test passed', () => {
  const p = personality({ access: { action: 'drop' } });
  assert.deepEqual(atAccept({ now: NOW, personality: p, access: 'permit', record: null }), { next: 'allowlisted' });
  assert.deepEqual(atAccept({ now: NOW, personality: p, access: 'reject', record: null }), { next: 'denylisted', action: 'drop' });
  const passed = withPasses(null, [[PG, NOW + 1]]);
  assert.deepEqual(atAccept({ now: NOW, personality: p, access: 'dunno', record: passed }), { next: 'pass-old' });
  assert.deepEqual(atAccept({ now: NOW + 1, personality: p, access: null, record: passed }), { next: 'test' }, 'expired at pass-until');
  assert.deepEqual(atAccept({ now: NOW, personality: p, access: 'reject', record: passed }), { next: 'denylisted', action: 'drop' }, 'the deny list wins over a cached pass');
});

test('test-state: early tests done, printable by name', () => {
  const s0 = flag(PG, TODO) | flag(DB, TODO);
  assert.equal(earlyDone(s0), false);
  assert.equal(earlyDone(s0 | flag(PG, FAIL | DONE)), false, 'DNSBL still outstanding');
  assert.equal(earlyDone(s0 | flag(PG, FAIL | DONE) | flag(DB, DONE)), true);
  assert.equal(earlyDone(flag(PG, TODO) | flag(PG, DONE)), true, 'no DNSBL lookup: the pregreet alone');
  assert.equal(stateToString(s0 | flag(PG, FAIL | DONE)), 'PREGREET_TODO|PREGREET_FAIL|PREGREET_DONE|DNSBL_TODO');
});
