/*
 * Shadow mode in the verdict function (session/verdict.ts) and the deep
 * tests' bookkeeping: the same client facts under enforce and under shadow.
 * Enforce rejects, drops or defers; shadow hands over (verdict `shadow`),
 * reports what enforce would have done (`would`), keeps the passes the client
 * earned, and clears, never writes, the failed test's pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { makePersonalities } from '../../src/server/stress.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { Dnsbl, DnsblQuery } from '../../src/checks/dnsbl.js';
import { withPasses, type VerdictRecord } from '../../src/cache/store.js';
import { TestIndex } from '../../src/checks/tests.js';
import { DONE, PASS, TODO, flag } from '../../src/session/test-state.js';
import { afterDeep, afterEarly, atAccept, type EarlyFacts } from '../../src/session/verdict.js';
import { DeepTests } from '../../src/checks/deep.js';
import { deepOptions } from '../../src/session/deep.js';
import type { GreylistDecision } from '../../src/checks/greylist.js';

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
/** A DNSBL outcome with `score` from one site of weight `score`. */
function listed(raw: Record<string, unknown>, score: number) {
  const p = personality(raw);
  const d = p.config.dnsbl;
  const check = new Dnsbl(d.sites, {
    threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
    slowWarningMs: d.slow_warning, txt: false, replyMap: d.reply_map,
    health: { enable: false, intervalMs: 1000, listed: '127.0.0.2', unlisted: '127.0.0.1', errorLimit: 5, sites: {} },
  }, noLookup, () => null, () => undefined);
  const q = new DnsblQuery('192.0.2.10', NOW - 5);
  q.score = score;
  q.hits = score > 0 ? [{ site: 'bl.test', weight: score, records: ['127.0.0.2'] }] : [];
  q.pending = 0;
  q.ttlSec = 3600;
  q.lastAnswer = NOW;
  return { p, checks: [{ test: DB, outcome: check.outcome(q) }] };
}

function facts(over: Partial<EarlyFacts> & Pick<EarlyFacts, 'personality'>): EarlyFacts {
  return {
    client: '192.0.2.10', now: NOW, replies: makeReplies('screen.test', 'ESMTP'),
    state: flag(PG, TODO | PASS | DONE) | flag(DB, TODO | DONE), record: null, enforced: null, ignored: false, checks: [],
    greylist: () => { throw new Error('greylist not expected'); }, ...over,
  };
}

const stored = (r: VerdictRecord | null, t: number): number => (r === null ? -1 : r[t] ?? 0);
const dnsbl = (action: string, mode = 'enforce', extra: Record<string, unknown> = {}) =>
  ({ mode, dnsbl: { sites: ['bl.test*3'], threshold: 3, action }, ...extra });

test('shadow: a DNSBL-listed client, enforce vs shadow vs per-test shadow', () => {
  const old = withPasses(null, [[DB, NOW + 1000], [PG, NOW - 1]]);
  const rows = [
    { label: 'enforce', raw: dnsbl('enforce'), next: 'enforce', name: '', action: 'enforce', would: undefined },
    { label: 'drop', raw: dnsbl('drop'), next: 'drop', name: '', action: 'drop', would: undefined },
    { label: 'mode shadow, enforce', raw: dnsbl('enforce', 'shadow'), next: 'handoff', name: 'shadow', action: 'shadow', would: 'reject' },
    { label: 'mode shadow, drop', raw: dnsbl('drop', 'shadow'), next: 'handoff', name: 'shadow', action: 'shadow', would: 'drop' },
    { label: 'action shadow', raw: dnsbl('shadow'), next: 'handoff', name: 'shadow', action: 'shadow', would: 'reject' },
    { label: 'mode shadow, ignore stays ignore', raw: dnsbl('ignore', 'shadow'), next: 'handoff', name: 'ignored', action: 'ignore', would: undefined },
  ];
  for (const r of rows) {
    const { p, checks } = listed(r.raw, 3);
    const v = afterEarly(facts({ personality: p, checks, record: old }));
    assert.equal(v.next, r.next, r.label);
    assert.equal(v.name, r.name, r.label);
    assert.equal(v.failedChecks.length, 1, r.label);
    assert.equal(v.failedChecks[0]?.action, r.action, r.label);
    assert.equal(v.failedChecks[0]?.would, r.would, r.label);
    assert.equal(stored(v.record, DB), 0, `${r.label}: the DNSBL pass is cleared`);
    if (r.name === 'shadow') {
      assert.equal(v.shadowed, true, r.label);
      assert.equal(v.passNew, false, `${r.label}: no PASS NEW`);
      assert.equal(stored(v.record, PG), NOW + p.config.pregreet.ttl, `${r.label}: the pregreet pass it earned is written`);
    } else assert.equal(v.shadowed, undefined, r.label);
  }
});

test('shadow: a client that is not listed is not touched by the mode', () => {
  for (const mode of ['enforce', 'shadow']) {
    const { p, checks } = listed(dnsbl('enforce', mode), 0);
    const v = afterEarly(facts({ personality: p, checks }));
    assert.deepEqual([v.next, v.name, v.passNew, v.failedChecks.length, v.shadowed], ['handoff', 'new', true, 0, undefined], mode);
    assert.equal(stored(v.record, DB), NOW + 3_600_000, mode);
  }
});

test('shadow: a per-test shadow goes on as if passed; greylisting (enforced) still applies, and the DNSBL failure is still logged', () => {
  const raw = dnsbl('shadow', 'enforce', { greylist: { enable: true } });
  const { p, checks } = listed(raw, 3);
  const seen: string[] = [];
  const defer: GreylistDecision = { verdict: 'defer', reason: 'new', state: -NOW, waitMs: 300_000 } as GreylistDecision;
  const v = afterEarly(facts({ personality: p, checks, greylist: (n) => { seen.push(n); return defer; } }));
  assert.deepEqual(seen, ['192.0.2.0/24']);
  assert.equal(v.next, 'greylist');
  assert.deepEqual(v.failedChecks.map((f) => [f.action, f.would]), [['shadow', 'reject']]);
  assert.equal(v.greylist?.shadow, undefined, 'greylisting is enforced');
  assert.equal(stored(v.record, GL), 0);
});

test('shadow: under mode shadow a listed client is not greylisted (enforce would have refused it first): the would-have counts stay enforce\'s', () => {
  const { p, checks } = listed(dnsbl('enforce', 'shadow', { greylist: { enable: true, policy: 'suspicious' } }), 3);
  const v = afterEarly(facts({ personality: p, checks, greylist: () => { throw new Error('greylisting asked'); } }));
  assert.deepEqual([v.next, v.name, v.greylist], ['handoff', 'shadow', null]);
  assert.deepEqual(v.failedChecks.map((f) => [f.action, f.would]), [['shadow', 'reject']]);
});

test('shadow: greylisting shadowed (greylist.action shadow, or mode shadow) hands over, its first try recorded by observe(), no greylist pass', () => {
  for (const raw of [{ greylist: { enable: true, action: 'shadow' } }, { mode: 'shadow', greylist: { enable: true } }]) {
    const p = personality(raw);
    const defer = { verdict: 'defer', reason: 'new', state: -NOW, waitMs: 300_000 } as GreylistDecision;
    const v = afterEarly(facts({ personality: p, state: flag(PG, TODO | PASS | DONE), greylist: () => defer }));
    assert.deepEqual([v.next, v.name, v.passNew, v.shadowed, v.greylist?.shadow], ['handoff', 'shadow', false, true, true], JSON.stringify(raw));
    assert.equal(stored(v.record, GL), 0);
    assert.equal(stored(v.record, PG), NOW + p.config.pregreet.ttl);
    const enforced = afterEarly(facts({ personality: personality({ greylist: { enable: true } }), state: flag(PG, TODO | PASS | DONE), greylist: () => defer }));
    assert.equal(enforced.next, 'greylist', 'the same decision under enforce defers');
  }
});

test('shadow: a pregreet or denylist failure shadowed before the verdict (facts.shadowed)', () => {
  const p = personality({ mode: 'shadow' });
  const pregreeted = afterEarly(facts({ personality: p, state: flag(PG, TODO | DONE), shadowed: true, record: withPasses(null, [[PG, NOW + 5]]) }));
  assert.deepEqual([pregreeted.next, pregreeted.name, pregreeted.passNew], ['handoff', 'shadow', false]);
  assert.equal(stored(pregreeted.record, PG), 0, 'the old pregreet pass is cleared, none written');
  const denylisted = afterEarly(facts({ personality: p, state: flag(PG, TODO | PASS | DONE), shadowed: true }));
  assert.deepEqual([denylisted.next, denylisted.name], ['handoff', 'shadow']);
  assert.equal(stored(denylisted.record, PG), NOW + p.config.pregreet.ttl, 'the denylist has no pass; the pregreet pass it earned is written');
  const untested = afterEarly(facts({ personality: personality({ mode: 'shadow', pregreet: { enable: false } }), state: 0, shadowed: true }));
  assert.deepEqual([untested.next, untested.name], ['handoff', 'shadow']);
});

test('shadow: atAccept for a reject entry', () => {
  const acc = (raw: Record<string, unknown>) => atAccept({ now: NOW, personality: personality(raw), access: 'reject', record: null });
  assert.deepEqual(acc({ access: { action: 'drop' } }), { next: 'denylisted', action: 'drop' });
  assert.deepEqual(acc({ mode: 'shadow', access: { action: 'drop' } }), { next: 'denylisted', action: 'shadow', would: 'drop' });
  assert.deepEqual(acc({ mode: 'shadow', access: { action: 'enforce' } }), { next: 'denylisted', action: 'shadow', would: 'reject' });
  assert.deepEqual(acc({ access: { action: 'shadow' } }), { next: 'denylisted', action: 'shadow', would: 'reject' });
  assert.deepEqual(acc({ mode: 'shadow', access: { action: 'ignore' } }), { next: 'denylisted', action: 'ignore' });
});

test('shadow: deep tests; a shadowed failure passes for the shortest TTL (as ignore), is no PASS NEW, and says what it would have done', () => {
  const raw = { mode: 'shadow', deep: { pipelining: { enable: true, action: 'drop' }, non_smtp: { enable: true } } };
  const p = personality(raw);
  const opts = deepOptions(p.config);
  assert.ok(opts !== null);
  assert.deepEqual([opts.pipelining.action, opts.pipelining.would, opts.non_smtp.action, opts.non_smtp.would], ['shadow', 'drop', 'shadow', 'drop']);
  const enforceOpts = deepOptions(personality({ deep: { pipelining: { enable: true, action: 'drop' } } }).config);
  assert.deepEqual([enforceOpts?.pipelining.action, enforceOpts?.pipelining.would], ['drop', undefined]);

  const deep = new DeepTests(opts, 1 | 2);
  assert.equal(deep.fail('pipelining'), 'shadow');
  deep.rcpt();
  assert.equal(deep.complete, true, 'complete: the client is handed over as if it had passed');
  assert.equal(deep.shadowed, 1);
  const withDeep = { ...p, enabled: [PG, TestIndex.pipelining, TestIndex.non_smtp] };
  const rec = withPasses(null, [[PG, NOW + 1000]]);
  const v = afterDeep({ now: NOW, personality: withDeep, record: rec, deep, enforced: false });
  assert.equal(v.passNew, null, 'no PASS NEW after a shadowed failure');
  assert.equal(stored(v.record, TestIndex.pipelining), NOW + opts.ignoreTtl);
  assert.equal(stored(v.record, TestIndex.non_smtp), NOW + opts.non_smtp.ttl);

  const clean = new DeepTests(opts, 1 | 2);
  clean.rcpt();
  assert.deepEqual(afterDeep({ now: NOW, personality: withDeep, record: rec, deep: clean, enforced: false }).passNew, ['pipelining', 'non_smtp']);
});
