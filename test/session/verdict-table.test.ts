/*
 * The verdict as a postmaster sees it: a table of clients x configuration
 * (each test's action, DNSBL answered or outstanding, greylist policy, deep
 * tests due, stress) -> what the session does, the records stored, the reply
 * and the events. The first part drives the real session (machine.ts,
 * conclude.ts, verdict.ts) on the fake clock of test/helpers/fake-session.ts;
 * the second calls the verdict functions on the edges the session cannot
 * reach cheaply. Each row says why an administrator would care. Numbers are
 * the documented defaults (README): pregreet.ttl 1 d, dnsbl.ttl_min 60 s,
 * dnsbl.ttl_max 1 h, greylist.ttl 35 d, greylist.min_delay 5 min.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type FakeSocket, type Harness, settle, envelope } from '../helpers/fake-session.js';
import { TestIndex } from '../../src/checks/tests.js';
import { withPasses, type VerdictRecord } from '../../src/cache/store.js';
import { validateConfig } from '../../src/config/validate.js';
import { makePersonalities } from '../../src/server/stress.js';
import { makeReplies } from '../../src/smtp/replies.js';
import type { CheckOutcome } from '../../src/checks/check.js';
import { DEEP_BIT } from '../../src/checks/deep.js';
import { afterDeep, afterEarly, cleared, deepDue, type EarlyFacts } from '../../src/session/verdict.js';
import { DONE, FAIL, PASS, TODO, flag, fates, earlyDone, earlyTodo, anyFail, stateToString, IGNORED, ALLOWLISTED, SHADOWED } from '../../src/session/test-state.js';
import { greylistDecide } from '../../src/checks/greylist.js';

const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const PG = TestIndex.pregreet;
const DB = TestIndex.dnsbl;
const GL = TestIndex.greylist;
const PIPE = TestIndex.pipelining;

const base = { pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' } };
const bl = (action: string, extra: Record<string, unknown> = {}) => ({ dnsbl: { sites: ['bl.test'], threshold: 1, action, ...extra } });

interface Seen {
  h: Harness;
  sock: FakeSocket;
  /** The record written for the client, or undefined: none. */
  stored: VerdictRecord | undefined;
  handedOver: boolean;
  /** HANDOFF's verdict name, as the session holds it when the wait ends. */
  verdict: string | undefined;
}

/** One client: connect, the DNS answers (listed, not listed, or none), the greet wait, an envelope. */
async function run(raw: Record<string, unknown>, dns: 'listed' | 'clean' | 'silent', opts: { client?: string; record?: VerdictRecord; h?: Harness } = {}): Promise<Seen> {
  const h = opts.h ?? harness({ ...base, ...raw });
  const client = opts.client ?? '192.0.2.10';
  if (opts.record !== undefined) h.store.set(client, opts.record);
  const before = h.writes.length;
  const before0 = h.backends.length;
  const { sock, session } = h.connect(client);
  if (dns !== 'silent') h.dns.answerAll(dns === 'listed');
  await settle();
  h.clock.advance(2000);
  await settle();
  const handedOver = h.backends.length > before0;
  const verdict = session()?.verdict;
  if (!sock.ended) envelope(sock);
  const mine = h.writes.slice(before).filter(([k]) => k === client);
  return { h, sock, stored: mine.at(-1)?.[1], handedOver, verdict };
}

const pass = (r: VerdictRecord | undefined, t: number): number => (r === undefined ? -1 : (r[t] ?? 0));

test('DNSBL listed under drop: 521 at the end of the wait, closed, never handed over, the stale pass cleared', async () => {
  // A listed client under drop reaching the backend is the one thing a blocklist is for.
  const old = withPasses(null, [[PG, T0 - 1], [DB, T0 - 1]]);
  const s = await run(bl('drop'), 'listed', { record: old });
  assert.equal(s.handedOver, false);
  assert.match(s.sock.text(), /^220-screen\.test ESMTP\r\n521 5\.7\.1 Service unavailable; client \[192\.0\.2\.10\] blocked using bl\.test\r\n$/);
  assert.equal(s.sock.ended, true);
  const ev = s.h.named('DNSBL');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]?.['action'], 'drop');
  assert.equal(ev[0]?.['score'], 1);
  assert.equal(pass(s.stored, DB), 0, 'the failed test loses its (expired) pass');
  assert.equal(pass(s.stored, PG), T0 - 1, 'the other test keeps its own');
  assert.equal(s.h.named('PASS NEW').length, 0);
});

test('DNSBL listed under enforce: dummy engine, 550 at RCPT naming the site, nothing stored, no PASS NEW', async () => {
  const s = await run(bl('enforce'), 'listed');
  assert.equal(s.handedOver, false);
  assert.match(s.sock.text(), /550 5\.7\.1 Service unavailable; client \[192\.0\.2\.10\] blocked using bl\.test\r\n$/);
  assert.equal(s.h.named('DNSBL')[0]?.['action'], 'enforce');
  assert.equal(s.stored, undefined);
  assert.equal(s.h.named('PASS NEW').length, 0);
  assert.equal(s.h.named('NOQUEUE').length, 1, 'the rejected RCPT is logged');
});

test('DNSBL listed under ignore: handed over as "ignored", nothing remembered (the lookup repeats next time)', async () => {
  const s = await run(bl('ignore'), 'listed');
  assert.equal(s.handedOver, true);
  assert.equal(s.h.named('DNSBL')[0]?.['action'], 'ignore');
  assert.equal(s.verdict, 'ignored');
  assert.equal(s.stored, undefined, 'no pass of any test is written for an ignored failure');
  assert.equal(s.h.named('PASS NEW').length, 0);
});

test('DNSBL answered, not listed: PASS NEW with the score, the DNSBL pass kept for the answer TTL (600 s)', async () => {
  const s = await run(bl('enforce'), 'clean');
  assert.equal(s.handedOver, true);
  assert.deepEqual(s.h.named('PASS NEW').map((e) => e['dnsbl_score']), [0]);
  assert.equal(s.verdict, 'new');
  assert.equal(pass(s.stored, DB), T0 + 2000 + 600_000);
  assert.equal(pass(s.stored, PG), T0 + 2000 + DAY);
});

test('DNSBL still outstanding at the end of the wait: handed over, but no DNSBL pass cached (asked again next time)', async () => {
  const s = await run(bl('enforce'), 'silent');
  assert.equal(s.handedOver, true);
  const pn = s.h.named('PASS NEW');
  assert.equal(pn.length, 1);
  assert.deepEqual(pn[0]?.['dnsbl_late'], ['bl.test']);
  assert.equal(pass(s.stored, DB), 0, 'a pass with lookups outstanding would let a listed client in for the TTL');
  assert.equal(pass(s.stored, PG), T0 + 2000 + DAY);
});

test('DNSBL allowlist threshold: every test passes at once with the DNSBL TTL, PASS NEW says allowlisted', async () => {
  const h = harness({ ...base, dnsbl: { sites: ['bl.test', 'wl.test*-2'], threshold: 1, allowlist_threshold: -1 } });
  const { sock } = h.connect('192.0.2.10');
  for (const q of h.dns.pending.splice(0)) {
    q.resolve(q.name.endsWith('wl.test') ? { status: 'ok', records: ['127.0.0.2'], ttl: 300 } : { status: 'nxdomain', ttl: 300 });
  }
  await settle();
  assert.equal(h.backends.length, 1, 'no need to wait out the greet delay');
  const pn = h.named('PASS NEW');
  assert.equal(pn[0]?.['allowlisted'], true);
  assert.equal(pn[0]?.['dnsbl_score'], -2);
  const rec = h.writes.at(-1)?.[1];
  assert.equal(pass(rec, PG), T0 + 300_000, 'the pregreet test too, with the DNSBL TTL (postscreen)');
  assert.equal(pass(rec, DB), T0 + 300_000);
  assert.equal(sock.ended, false);
});

test('greylisting off (the default): no GREYLIST, handed over at the first attempt, no greylist pass written', async () => {
  const s = await run({}, 'silent');
  assert.equal(s.handedOver, true);
  assert.equal(s.h.named('GREYLIST').length, 0);
  assert.equal(pass(s.stored, GL), 0);
  assert.deepEqual(Object.keys(s.h.named('PASS NEW')[0] ?? {}).filter((k) => k.startsWith('dnsbl')), [], 'no DNSBL: no score in PASS NEW');
});

test('greylisting, policy all: the first attempt is deferred (450 at RCPT), the early passes kept; a retry too soon waits', async () => {
  const h = harness({ ...base, greylist: { enable: true } });
  const s = await run({}, 'silent', { h });
  assert.equal(s.handedOver, false, 'greylisting on must defer an unknown network');
  assert.match(s.sock.text(), /450 4\.\d\.\d .*\r\n$/);
  const g = h.named('GREYLIST');
  assert.deepEqual([g[0]?.['network'], g[0]?.['state'], g[0]?.['reason'], g[0]?.['wait_ms']], ['192.0.2.0/24', 'defer', 'new', undefined]);
  assert.deepEqual([g[0]?.['action'], g[0]?.['would']], [undefined, undefined], 'an enforced deferral is no shadow line');
  assert.equal(pass(s.stored, PG), T0 + 2000 + DAY);
  assert.equal(pass(s.stored, GL), 0);
  s.sock.hangup();
  await settle();
  // A neighbour of the same /24 retries one minute later: too early (min_delay 5 min).
  h.clock.advance(58_000);
  const r = await run({}, 'silent', { h, client: '192.0.2.99' });
  assert.equal(r.handedOver, false);
  const g2 = h.named('GREYLIST')[1];
  assert.deepEqual([g2?.['state'], g2?.['reason'], g2?.['wait_ms']], ['defer', 'early', 300_000 - 60_000]);
  r.sock.hangup();
  await settle();
  h.clock.advance(300_000);
  const ok = await run({}, 'silent', { h, client: '192.0.2.10' });
  assert.equal(ok.handedOver, true);
  const g3 = h.named('GREYLIST')[2];
  assert.deepEqual([g3?.['state'], g3?.['delay_ms'], g3?.['action']], ['pass', 362_000, undefined]);
  assert.equal(pass(ok.stored, GL), h.clock.now() + 35 * DAY);
  // A neighbour with no record of its own: the network passed already, handed over without a GREYLIST line.
  const n = await run({}, 'silent', { h, client: '192.0.2.200' });
  assert.equal(n.handedOver, true);
  assert.equal(h.named('GREYLIST').length, 3);
  assert.equal(pass(n.stored, GL), h.clock.now() - 2000 + 35 * DAY, 'the network\'s pass, as stored for the network');
});

test('greylisting, policy suspicious: a clean client is not greylisted (its pass written); a scored one is', async () => {
  const cfg = { greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 }, ...bl('enforce', { sites: ['bl.test*1'], threshold: 2 }) };
  const clean = await run(cfg, 'clean');
  assert.equal(clean.handedOver, true, 'suspicious must not greylist every client');
  assert.equal(clean.h.named('GREYLIST').length, 0);
  assert.equal(pass(clean.stored, GL), T0 + 2000 + 35 * DAY);
  const scored = await run(cfg, 'listed');
  assert.equal(scored.handedOver, false, 'score 1, below the DNSBL threshold 2, at the suspicious score 1');
  assert.equal(scored.h.named('GREYLIST')[0]?.['state'], 'defer');
  assert.equal(scored.h.named('DNSBL').length, 0, 'not a DNSBL failure');
 assert.equal(pass(scored.stored, DB), T0 + 2000 + 600_000, 'the DNSBL pass is kept: it answered, below threshold');
});

test('greylisting: a network with an unexpired greylist pass in the client record is not asked again', async () => {
  const h = harness({ ...base, greylist: { enable: true } });
  const s = await run({}, 'silent', { h, record: withPasses(null, [[GL, T0 + 2001]]) });
  assert.equal(s.handedOver, true);
  assert.equal(h.named('GREYLIST').length, 0);
  const t = await run({}, 'silent', { h: harness({ ...base, greylist: { enable: true } }), record: withPasses(null, [[GL, T0 + 2000]]) });
  assert.equal(t.handedOver, false, 'a pass that ends now is expired');
});

test('a pregreeter under ignore with a deep test due: the dummy engine first, no pass remembered', async () => {
  const h = harness({ ...base, pregreet: { wait: '2s', action: 'ignore' }, deep: { pipelining: { enable: true } } });
  const { sock } = h.connect('192.0.2.10');
  sock.feed('EHLO early.test\r\n');
  h.clock.advance(2000);
  await settle();
  assert.equal(h.backends.length, 0, 'deep tests still due run first');
  assert.equal(h.named('PREGREET')[0]?.['action'], 'ignore');
  assert.equal(h.writes.length, 0);
});

test('deep test due for a clean client: 450 at RCPT, no PASS NEW until the dummy session ends, then the pipelining pass', async () => {
  const h = harness({ ...base, deep: { pipelining: { enable: true } } });
  const s = await run({}, 'silent', { h });
  assert.equal(s.handedOver, false);
  assert.match(s.sock.text(), /450 4\.\d\.\d /);
  assert.equal(h.named('PASS NEW').length, 0);
  s.sock.feed('QUIT\r\n');
  await settle();
  const pn = h.named('PASS NEW');
  assert.deepEqual(pn.map((e) => e['deep']), [['pipelining']]);
  const rec = h.writes.at(-1)?.[1];
  assert.ok(pass(rec, PIPE) > h.clock.now(), 'the pipelining pass is written');
  assert.equal(pass(rec, PG), T0 + 2000 + DAY);
});

test('pregreet enforce then DNSBL drop: the drop wins (521, closed), both failures logged', async () => {
  const h = harness({ ...base, ...bl('drop') });
  const { sock } = h.connect('192.0.2.10');
  sock.feed('EHLO early.test\r\n');
  h.dns.answerAll(true);
  await settle();
  assert.match(sock.text(), /521 5\.7\.1 Service unavailable; client \[192\.0\.2\.10\] blocked using bl\.test\r\n$/);
  assert.equal(h.backends.length, 0);
  assert.equal(h.named('PREGREET').length, 1);
  assert.equal(h.named('DNSBL')[0]?.['action'], 'drop');
});

test('pregreet enforce then DNSBL enforce: the RCPT reply is the first failure\'s (pregreet)', async () => {
  const h = harness({ ...base, ...bl('enforce') });
  const { sock } = h.connect('192.0.2.10');
  sock.feed('EHLO early.test\r\n');
  h.dns.answerAll(true);
  await settle();
  sock.feed('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@screen.test>\r\n');
  assert.match(sock.text(), /550 5\.5\.1 Protocol error\r\n$/);
  assert.equal(h.named('DNSBL')[0]?.['action'], 'enforce');
});

test('the denylist under each action: drop closes with 521, enforce rejects at RCPT, ignore hands over', async () => {
  const acl = '192.0.2.0/24 reject\n';
  const d = harness({ ...base, access: { action: 'drop' } }, acl);
  const a = d.connect('192.0.2.10');
  assert.match(a.sock.text(), /^521 /);
  assert.equal(d.named('DENYLISTED')[0]?.['action'], 'drop');
  const e = harness({ ...base, access: { action: 'enforce' } }, acl);
  const b = e.connect('192.0.2.10');
  e.clock.advance(2000);
  envelope(b.sock);
  assert.match(b.sock.text(), /550 5\.3\.2 Service currently unavailable\r\n$/);
  assert.equal(e.backends.length, 0);
  const i = harness({ ...base, access: { action: 'ignore' } }, acl);
  const c = i.connect('192.0.2.10');
  i.clock.advance(2000);
  assert.equal(i.backends.length, 1);
  assert.equal(c.session()?.verdict, 'ignored');
  assert.equal(i.writes.length, 0);
});

// ---- the verdict functions directly ----------------------------------------------

function personality(raw: Record<string, unknown>, stress = false) {
  const cfg = validateConfig({ hostname: 'screen.test', ...raw });
  const early = [PG];
  if (cfg.dnsbl.sites.length > 0) early.push(DB);
  if (cfg.greylist.enable) early.push(GL);
  const p = makePersonalities(cfg, early);
  return stress ? p.stress : p.normal;
}

function outcome(o: Partial<CheckOutcome>): CheckOutcome {
  return {
    complete: true, failed: false, allowlisted: false, ttlMs: 60_000, score: 0,
    reply: (code) => `${code} 5.7.1 listed\r\n`, event: 'DNSBL', fields: {}, passFields: {}, ...o,
  } as CheckOutcome;
}

function facts(over: Partial<EarlyFacts> & Pick<EarlyFacts, 'personality'>): EarlyFacts {
  return {
    client: '192.0.2.10', now: T0, replies: makeReplies('screen.test', 'ESMTP'),
    state: flag(PG, TODO | PASS | DONE), record: null, enforced: null, ignored: false, checks: [],
    greylist: () => { throw new Error('greylist not expected'); }, ...over,
  };
}

test('afterEarly: each DNSBL action, and the reply code it uses', () => {
  const rows = [
    { action: 'drop', next: 'drop', reply: '521 5.7.1 listed\r\n' },
    { action: 'enforce', next: 'enforce', reply: '550 5.7.1 listed\r\n' },
    { action: 'ignore', next: 'handoff', reply: null },
  ] as const;
  for (const r of rows) {
    const p = personality(bl(r.action));
    const v = afterEarly(facts({ personality: p, checks: [{ test: DB, outcome: outcome({ failed: true, score: 1 }) }] }));
    assert.equal(v.next, r.next, r.action);
    assert.equal(v.reply, r.reply, r.action);
    assert.equal(v.reason, r.action === 'ignore' ? '' : 'dnsbl', r.action);
    assert.deepEqual(v.failedChecks.map((f) => f.action), [r.action]);
    assert.equal(v.record, null, `${r.action}: a failure stores nothing new`);
    assert.equal(v.passNew, false);
    if (r.action === 'ignore') assert.equal(v.name, 'ignored');
  }
});

test('afterEarly: an ignored failure clears the failed test\'s pass and keeps the others', () => {
  const p = personality(bl('ignore'));
  const v = afterEarly(facts({ personality: p, record: withPasses(null, [[PG, T0 + 5], [DB, T0 - 5]]), checks: [{ test: DB, outcome: outcome({ failed: true }) }] }));
  assert.equal(v.next, 'handoff');
  assert.equal(v.record?.[DB], 0);
  assert.equal(v.record?.[PG], T0 + 5);
});

test('afterEarly: no test enabled -> "untested", nothing stored, no PASS NEW; after a shadowed denylisting -> "shadow"', () => {
  const p = { ...personality({ pregreet: { enable: false } }), enabled: [] };
  const v = afterEarly(facts({ personality: p, state: 0 }));
  assert.deepEqual([v.next, v.name, v.record, v.passNew, v.shadowed], ['handoff', 'untested', null, false, undefined]);
  // A denylisted client under shadow with no test to run: handed over, but as what enforce would have refused.
  const s = afterEarly(facts({ personality: p, state: 0, shadowed: true }));
  assert.deepEqual([s.next, s.name, s.record, s.passNew, s.shadowed], ['handoff', 'shadow', null, false, true]);
});

test('afterEarly: the policy service beside the DNS lists (its permit overrules a listing; its dunno does not)', () => {
  const PO = TestIndex.policy;
  const p = personality({ ...bl('enforce'), policy: { url: 'http://127.0.0.1:9/p' } });
  const listed = { test: DB, outcome: outcome({ failed: true, score: 1 }) };
  const dnsblVouch = { test: DB, outcome: outcome({ allowlisted: true, score: -5, ttlMs: 300_000 }) };
  const policy = (o: Partial<CheckOutcome>) => ({ test: PO, outcome: outcome({ event: 'POLICY', complete: false, ttlMs: 0, reply: (code) => `${code} 5.7.1 policy\r\n`, ...o }) });
  const rows = [
    // A dunno is no vouching: the listing still enforces (a listed client handed over as "policy-allowlisted" would be the bug).
    { label: 'listed, policy dunno', checks: [listed, policy({})], next: 'enforce', name: '', reply: '550 5.7.1 listed\r\n', failed: ['DNSBL'], rec: null },
    { label: 'listed, policy permit (1 h)', checks: [listed, policy({ allowlisted: true, ttlMs: 3_600_000 })], next: 'handoff', name: 'policy-allowlisted', reply: null, failed: [], rec: T0 + 3_600_000 },
    // Both vouch: the policy's word and its ttl, not the DNSBL's 300 s, whichever check comes first.
    { label: 'DNSBL allowlist and policy permit (1 h)', checks: [dnsblVouch, policy({ allowlisted: true, ttlMs: 3_600_000 })], next: 'handoff', name: 'policy-allowlisted', reply: null, failed: [], rec: T0 + 3_600_000 },
    { label: 'DNSBL allowlist, policy dunno', checks: [dnsblVouch, policy({})], next: 'handoff', name: 'dnsbl-allowlisted', reply: null, failed: [], rec: T0 + 300_000 },
    // A permit with ttl 0: handed over, nothing remembered (asked again next time).
    { label: 'policy permit, ttl 0', checks: [policy({ allowlisted: true, ttlMs: 0 })], next: 'handoff', name: 'policy-allowlisted', reply: null, failed: [], rec: undefined },
    { label: 'DNSBL allowlist, policy reject', checks: [dnsblVouch, policy({ failed: true })], next: 'enforce', name: '', reply: '550 5.7.1 policy\r\n', failed: ['POLICY'], rec: null },
  ] as const;
  for (const r of rows) {
    const v = afterEarly(facts({ personality: p, checks: r.checks }));
    assert.deepEqual([v.next, v.name, v.reply], [r.next, r.name, r.reply], r.label);
    assert.deepEqual(v.failedChecks.map((f) => f.outcome.event), r.failed, r.label);
    assert.equal(v.allowlisted, r.next === 'handoff', r.label);
    if (r.rec === undefined) assert.equal(v.record, null, `${r.label}: nothing stored`);
    else if (r.rec !== null) assert.deepEqual([v.record?.[PG], v.record?.[DB]], [r.rec, r.rec], `${r.label}: every test passes for the vouching ttl`);
  }
});

test('afterEarly: each check\'s failure takes its own action (dnsbl.action, policy.action); a row with no action is a loud error', () => {
  const PO = TestIndex.policy;
  const p = personality({ ...bl('enforce'), policy: { url: 'http://127.0.0.1:9/p', action: 'drop' } });
  const dnsbl = afterEarly(facts({ personality: p, checks: [{ test: DB, outcome: outcome({ failed: true }) }] }));
  assert.equal(dnsbl.next, 'enforce', 'a listing under dnsbl.action enforce is not dropped by policy.action');
  const policy = afterEarly(facts({ personality: p, checks: [{ test: PO, outcome: outcome({ failed: true, event: 'POLICY' }) }] }));
  assert.deepEqual([policy.next, policy.reason], ['drop', 'policy'], 'a policy reject under policy.action drop');
  // An early check in a row with no action (a new check whose action was not wired in): never a silent pass.
  assert.throws(() => afterEarly(facts({ personality: p, checks: [{ test: GL, outcome: outcome({ failed: true }) }] })), new RegExp(`^Error: no action for test row ${GL}$`));
});

test('afterEarly: pregreet disabled writes no pregreet pass; a pregreet not yet passed writes none', () => {
  const p = personality({ pregreet: { enable: false }, ...bl('enforce') });
  const v = afterEarly(facts({ personality: p, state: flag(DB, TODO | DONE), checks: [{ test: DB, outcome: outcome({}) }] }));
  assert.equal(v.record?.[PG] ?? 0, 0);
  assert.equal(v.record?.[DB], T0 + 60_000);
  const q = personality({});
  assert.equal(afterEarly(facts({ personality: q, state: flag(PG, PASS | DONE) })).record?.[PG] ?? 0, 0, 'PASS without TODO: not this session\'s test');
  assert.equal(afterEarly(facts({ personality: q, state: flag(PG, TODO | DONE) })).record?.[PG] ?? 0, 0, 'DONE without PASS');
  assert.equal(v.passNew, true);
  assert.equal(v.name, 'new');
});

test('afterEarly: greylisting decides on the network of the client, /24 and /64 by default; an unparsable client is not greylisted', () => {
  const p = personality({ greylist: { enable: true } });
  const seen: string[] = [];
  const observe = (n: string) => {
    seen.push(n);
    return greylistDecide(0, T0, { minDelayMs: 1, maxDelayMs: 2, ttlMs: 3 });
  };
  afterEarly(facts({ personality: p, client: '2001:db8:1:2:3:4:5:6', greylist: observe }));
  afterEarly(facts({ personality: p, client: '198.51.100.77', greylist: observe }));
  assert.deepEqual(seen, ['2001:db8:1:2::/64', '198.51.100.0/24']);
  const v = afterEarly(facts({ personality: p, client: 'unix:socket', greylist: observe }));
  assert.equal(v.next, 'handoff');
  assert.equal(v.greylist, null);
  const passed = afterEarly(facts({ personality: p, greylist: () => ({ verdict: 'pass', state: T0 + 77, reason: 'retry', delayMs: 9 }) }));
  assert.equal(passed.next, 'handoff');
  assert.equal(passed.record?.[GL], T0 + 77);
  assert.deepEqual(passed.greylist, { network: '192.0.2.0/24', decision: { verdict: 'pass', state: T0 + 77, reason: 'retry', delayMs: 9 } });
});

test('afterEarly under the stress personality reads the stress configuration (dnsbl.action, deep tests)', () => {
  const raw = { ...bl('enforce'), deep: { pipelining: { enable: true } }, stress: { dnsbl: { action: 'drop' }, deep: { pipelining: { enable: false } } } };
  const normal = personality(raw);
  const p = personality(raw, true);
  assert.equal(p.stress, true);
  const listed = [{ test: DB, outcome: outcome({ failed: true }) }];
  assert.equal(afterEarly(facts({ personality: normal, checks: listed })).next, 'enforce');
  assert.equal(afterEarly(facts({ personality: p, checks: listed })).next, 'drop', 'under stress a listed client is dropped at once');
  assert.equal(afterEarly(facts({ personality: normal })).next, 'deep');
  assert.equal(afterEarly(facts({ personality: p })).next, 'handoff', 'no deep test under stress: handed over at once');
});

test('cleared(): only passes that are set change; nothing to clear is null', () => {
  assert.equal(cleared(null, [PG]), null);
  const r = withPasses(null, [[PG, 5]]);
  assert.equal(cleared(r, [DB]), null);
  const c = cleared(r, [PG, DB]);
  assert.equal(c?.[PG], 0);
  assert.equal(r[PG], 5, 'the stored record is a value: not edited');
});

test('deepDue(): the bits of enabled deep tests without an unexpired pass', () => {
  const p = personality({ deep: { pipelining: { enable: true }, bare_newline: { enable: true } } });
  const d = p.deep;
  assert.notEqual(d, null);
  assert.equal(deepDue(null, null, T0), 0);
  assert.equal(deepDue(d, null, T0), DEEP_BIT.pipelining | DEEP_BIT.bare_newline);
  assert.equal(deepDue(d, withPasses(null, [[PIPE, T0 + 1]]), T0), DEEP_BIT.bare_newline);
  assert.equal(deepDue(d, withPasses(null, [[PIPE, T0]]), T0), DEEP_BIT.pipelining | DEEP_BIT.bare_newline, 'a pass ending now is expired');
});

test('afterDeep(): a failure clears that pass only; an enforced session or no pass earns nothing; PASS NEW when complete', () => {
  const p = personality({ deep: { pipelining: { enable: true } } });
  const deep = (failed: number, passed: number, complete: boolean) => ({ failed, passed, complete, passUntil: (t: string, now: number) => (t === 'pipelining' && passed !== 0 ? now + 10 : 0) }) as never;
  const rec = withPasses(null, [[PG, T0 + 9], [PIPE, T0 - 1]]);
  const f = afterDeep({ now: T0, personality: p, record: rec, deep: deep(DEEP_BIT.pipelining, 0, true), enforced: false });
  assert.deepEqual([f.record?.[PIPE], f.record?.[PG], f.passNew], [0, T0 + 9, null]);
  assert.deepEqual(afterDeep({ now: T0, personality: p, record: rec, deep: deep(0, DEEP_BIT.pipelining, true), enforced: true }), { record: null, passNew: null });
  assert.deepEqual(afterDeep({ now: T0, personality: p, record: rec, deep: deep(0, 0, true), enforced: false }), { record: null, passNew: null });
  const ok = afterDeep({ now: T0, personality: p, record: rec, deep: deep(0, DEEP_BIT.pipelining, true), enforced: false });
  assert.equal(ok.record?.[PIPE], T0 + 10);
  assert.deepEqual(ok.passNew, ['pipelining']);
  const partial = afterDeep({ now: T0, personality: p, record: rec, deep: deep(0, DEEP_BIT.pipelining, false), enforced: false });
  assert.equal(partial.record?.[PIPE], T0 + 10);
  assert.equal(partial.passNew, null, 'not complete: no PASS NEW yet');
  const stale = afterDeep({ now: T0 + 10, personality: p, record: rec, deep: deep(0, DEEP_BIT.pipelining, true), enforced: false });
  assert.equal(stale.passNew, null, 'the pregreet pass expired: not every enabled test passed');
});

test('test-state: bit layout, masks and names (4 bits a row: FAIL 1, PASS 2, TODO 4, DONE 8)', () => {
  // Seven test rows (28 bits, the policy row included), then the session bits.
  assert.deepEqual([FAIL, PASS, TODO, DONE, IGNORED, ALLOWLISTED, SHADOWED], [1, 2, 4, 8, 1 << 28, 1 << 29, 1 << 30]);
  assert.equal(flag(DB, DONE), 8 << (4 * DB));
  assert.equal(fates(flag(DB, PASS | DONE) | flag(PG, FAIL), DB), PASS | DONE);
  assert.equal(fates(0x8000_0000 | flag(5, 15), 5), 15, 'unsigned shift');
  assert.equal(earlyTodo(flag(PG, TODO | DONE) | flag(DB, TODO) | flag(GL, TODO)), flag(PG, TODO) | flag(DB, TODO));
  assert.equal(earlyDone(0), true, 'nothing to wait for');
  assert.equal(earlyDone(flag(DB, TODO | DONE) | flag(PG, DONE)), true);
  assert.equal(earlyDone(flag(DB, TODO) | flag(PG, TODO | DONE)), false);
  assert.equal(anyFail(flag(PIPE, FAIL)), true, 'a deep failure counts');
  assert.equal(anyFail(flag(PG, PASS | DONE | TODO) | IGNORED), false);
  assert.equal(stateToString(0), '');
  assert.equal(stateToString(flag(DB, PASS) | IGNORED | ALLOWLISTED), 'DNSBL_PASS|IGNORED|ALLOWLISTED');
  assert.equal(stateToString(SHADOWED), 'SHADOWED');
});

test('afterEarly: failures carry no name, no PASS NEW, no allowlisting; a plain pass is not "allowlisted"', () => {
  for (const action of ['drop', 'enforce'] as const) {
    const v = afterEarly(facts({ personality: personality(bl(action)), checks: [{ test: DB, outcome: outcome({ failed: true }) }] }));
    assert.deepEqual([v.name, v.allowlisted, v.passNew, v.greylist], ['', false, false, null], action);
  }
  const ok = afterEarly(facts({ personality: personality({}) }));
  assert.deepEqual([ok.next, ok.name, ok.reason, ok.allowlisted, ok.passNew, ok.reply], ['handoff', 'new', '', false, true, null]);
});

test('afterEarly: an ignored failure with a deep test due goes to the dummy engine ("deep"), with its failure to log', () => {
  const p = personality({ ...bl('ignore'), deep: { pipelining: { enable: true } } });
  const failing = [{ test: DB, outcome: outcome({ failed: true }) }];
  const v = afterEarly(facts({ personality: p, checks: failing }));
  assert.deepEqual([v.next, v.reason, v.name, v.passNew], ['deep', 'deep', '', false]);
  assert.equal(v.failedChecks.length, 1);
  // The deep pass is still valid in the stored record, nothing of it to clear: handed over.
  const w = afterEarly(facts({ personality: p, checks: failing, record: withPasses(null, [[PIPE, T0 + 1]]) }));
  assert.deepEqual([w.next, w.name], ['handoff', 'ignored']);
});

test('afterDeep(): only the failed deep test loses its pass', () => {
  const p = personality({ deep: { pipelining: { enable: true }, bare_newline: { enable: true } } });
  const BARE = TestIndex.bare_newline;
  const rec = withPasses(null, [[PIPE, T0 - 1], [BARE, T0 + 50]]);
  const f = afterDeep({ now: T0, personality: p, record: rec, deep: { failed: DEEP_BIT.pipelining, passed: 0, complete: true, passUntil: () => 0 } as never, enforced: false });
  assert.deepEqual([f.record?.[PIPE], f.record?.[BARE]], [0, T0 + 50]);
});

test('deep tests in the session: a client that failed pipelining, or an early test, earns no deep pass and no PASS NEW', async () => {
  // Pipelined commands before the greeting allows it: a pipelining failure.
  const h = harness({ ...base, deep: { pipelining: { enable: true } } });
  const s = await run({}, 'silent', { h });
  s.sock.feed('MAIL FROM:<a@b.test>\r\nRCPT TO:<c@screen.test>\r\nDATA\r\n');
  s.sock.feed('QUIT\r\n');
  await settle();
  assert.equal(h.named('PASS NEW').length, 0);
  assert.equal(pass(h.writes.at(-1)?.[1], PIPE), 0);
  // A pregreeter under enforce talks politely afterwards: still nothing earned.
  const g = harness({ ...base, deep: { pipelining: { enable: true } } });
  const c = g.connect('192.0.2.10');
  c.sock.feed('EHLO early.test\r\n');
  c.sock.feed('MAIL FROM:<a@b.test>\r\n');
  c.sock.feed('RCPT TO:<c@screen.test>\r\n');
  c.sock.feed('QUIT\r\n');
  await settle();
  assert.equal(g.named('PASS NEW').length, 0);
  assert.equal(g.writes.filter(([, r]) => (r[PIPE] ?? 0) > 0).length, 0, 'no pipelining pass for an enforced client');
});

test('deepOptions / deepEnabled: any one deep test enables them; the ignore TTL is the shortest of every test\'s (60 s: dnsbl.ttl_min)', async () => {
  const { deepOptions, deepEnabled } = await import('../../src/session/deep.js');
  const cfg = (deep: Record<string, unknown>) => validateConfig({ hostname: 'screen.test', deep });
  assert.equal(deepOptions(cfg({})), null);
  for (const t of ['pipelining', 'non_smtp', 'bare_newline']) {
    const c = cfg({ [t]: { enable: true } });
    assert.notEqual(deepOptions(c), null, t);
    assert.equal(deepOptions(c)?.ignoreTtl, 60_000, t);
    assert.deepEqual(deepOptions(c)?.[t as 'pipelining'], { ...c.deep[t as 'pipelining'] }, `${t}: as configured, no would`);
    assert.deepEqual(deepEnabled(c), [TestIndex[t as 'pipelining']], t);
  }
});

test('no test to wait for (pregreet off, no DNSBL): a client that hangs up at once is not handed over, nothing stored', async () => {
  const h = harness({ ...base, pregreet: { enable: false } });
  const { sock } = h.connect('192.0.2.10');
  sock.hangup();
  await settle();
  assert.equal(h.backends.length, 0, 'no backend connection for a client already gone');
  assert.equal(h.named('PASS NEW').length, 0);
  assert.equal(h.writes.length, 0);
  // With greylisting on, a client gone before the verdict leaves no first-seen time for its network.
  const gl = harness({ ...base, pregreet: { enable: false }, greylist: { enable: true } });
  gl.connect('192.0.2.12').sock.hangup();
  await settle();
  assert.deepEqual([gl.named('GREYLIST').length, gl.writes.length, gl.store.get('net:192.0.2.0/24')], [0, 0, undefined]);
  const k = harness({ ...base, pregreet: { enable: false } });
  k.connect('192.0.2.11');
  await settle();
  assert.equal(k.backends.length, 1, 'the same client staying is handed over at once');
  assert.equal(k.named('PASS NEW').length, 0, 'no enabled test: untested, no PASS NEW');
});

test('afterEarly: with pregreet off, an ignored DNSBL failure keeps the pregreet pass still stored', () => {
  const p = personality({ pregreet: { enable: false }, ...bl('ignore') });
  const v = afterEarly(facts({ personality: p, state: flag(DB, TODO | DONE), record: withPasses(null, [[PG, T0 + 5], [DB, T0 - 5]]), checks: [{ test: DB, outcome: outcome({ failed: true }) }] }));
  assert.deepEqual([v.next, v.record?.[PG], v.record?.[DB]], ['handoff', T0 + 5, 0]);
});

test('applyAction: the four actions, and a clear error for anything else', async () => {
  const { applyAction } = await import('../../src/checks/check.js');
  assert.deepEqual(['drop', 'enforce', 'ignore', 'shadow'].map((a) => applyAction(a as 'drop')), ['drop', 'enforce', 'continue', 'shadow']);
  assert.throws(() => applyAction('bounce' as 'drop'), /^Error: unknown action bounce$/);
});

test('shadow: mode shadow makes drop and enforce a shadow, ignore stays ignore; the event says what the configured action would have done', async () => {
  const { actionIn, wouldOf, shadowFields } = await import('../../src/checks/check.js');
  const actions = ['drop', 'enforce', 'ignore', 'shadow'] as const;
  assert.deepEqual(actions.map((a) => actionIn(a, 'enforce')), ['drop', 'enforce', 'ignore', 'shadow']);
  assert.deepEqual(actions.map((a) => actionIn(a, 'shadow')), ['shadow', 'shadow', 'ignore', 'shadow']);
  assert.deepEqual(['drop', 'enforce', 'shadow'].map((a) => wouldOf(a as 'drop')), ['drop', 'reject', 'reject']);
  assert.deepEqual(actions.map((a) => shadowFields(a, 'enforce')), [{ action: 'drop' }, { action: 'enforce' }, { action: 'ignore' }, { action: 'shadow', would: 'reject' }]);
  assert.deepEqual(actions.map((a) => shadowFields(a, 'shadow')), [{ action: 'shadow', would: 'drop' }, { action: 'shadow', would: 'reject' }, { action: 'ignore' }, { action: 'shadow', would: 'reject' }]);
});
