/*
 * session/conclude.ts - the single exit of the tests: the verdict.
 *
 * Exports: conclude().
 * Only here are passes written to the cache and PASS NEW logged (postscreen's
 * psc_conclude). The DNSBL score is read here, when the greet wait ends:
 * lookups still pending count as not listed. A client with an enforced
 * failure goes to the dummy engine, which rejects it at RCPT; a client that
 * passed, or failed only tests set to `ignore`, is handed over, unless an
 * enabled deep test has no valid pass for it: then it goes to the dummy
 * engine too, for the deep tests and a 450 at RCPT (deep.after_pass:
 * reconnect, postscreen's only way) or a handoff at that RCPT (handoff), and
 * session/deep.ts concludeDummy() writes those passes and logs PASS NEW when
 * that dummy session ends or is handed over.
 */
import { EV } from '../log/events.js';
import { TestIndex } from '../checks/tests.js';
import { newRecord } from '../cache/store.js';
import { applyAction } from '../checks/check.js';
import { dnsblReply } from '../smtp/replies.js';
import type { DnsblSummary } from '../checks/dnsbl.js';
import type { Session } from './state.js';
import { handoff } from '../handoff/splice.js';
import { enterDummy } from './dummy.js';
import { closeWith } from './close.js';
import { greylistApplies, greylistDecide } from '../checks/greylist.js';
import { networkOf } from '../net/cidr.js';
import { deepDue } from './deep.js';

const PREGREET = TestIndex.pregreet;
const DNSBL = TestIndex.dnsbl;
const GREYLIST = TestIndex.greylist;

/**
 * Greylisting, after the early tests passed: true when the client may go on,
 * false when it was deferred (the dummy engine gives 450 at RCPT). The state
 * of its network lives in the store under "net:<CIDR>"; the client's own
 * record gets the pass, so its next connection can be PASS OLD.
 */
function greylisted(s: Session, rec: Float64Array, dnsblScore: number, now: number): boolean {
  const g = s.config.greylist;
  if (!g.enable || (rec[GREYLIST] ?? 0) > now) return true;
  if (!greylistApplies(g.policy, dnsblScore, g.suspicious_score)) {
    rec[GREYLIST] = now + g.ttl;
    return true;
  }
  const net = networkOf(s.client, g.ipv4_prefix, g.ipv6_prefix);
  if (net === null) return true;
  const key = `net:${net}`;
  const store = s.ctx.store;
  const netRec = store.get(key) ?? newRecord();
  const d = greylistDecide(netRec[GREYLIST] ?? 0, now, { minDelayMs: g.min_delay, maxDelayMs: g.max_delay, ttlMs: g.ttl });
  netRec[GREYLIST] = d.state;
  store.set(key, netRec);
  if (d.verdict === 'pass') {
    rec[GREYLIST] = d.state;
    if (d.reason === 'retry') s.event(EV.GREYLIST, { network: net, state: 'pass', delay_ms: d.delayMs });
    return true;
  }
  s.event(EV.GREYLIST, { network: net, state: 'defer', reason: d.reason, ...(d.reason === 'early' ? { wait_ms: d.waitMs } : {}) });
  return false;
}

/** Apply the DNSBL verdict; false when the session was dropped. */
function dnsblVerdict(s: Session): DnsblSummary | null {
  const dnsbl = s.ctx.dnsbl;
  const q = s.dnsbl;
  if (dnsbl === null || q === null) return null;
  q.cancel();
  const sum = dnsbl.summary(q);
  if (!dnsbl.failed(sum)) return sum;
  const action = s.config.dnsbl.action;
  const site = dnsbl.replySite(sum);
  const txt = q.txt.get(sum.hits.find((h) => (s.config.dnsbl.reply_map[h.site] ?? h.site) === site)?.site ?? '') ?? '';
  s.event(EV.DNSBL, { score: sum.score, hits: sum.hits, action, lookup_ms: sum.lookupMs, late: sum.late });
  if (s.record !== null) s.record[DNSBL] = 0;
  switch (applyAction(action)) {
    case 'drop':
      closeWith(s, withTxt(dnsblReply(521, s.client, site), txt));
      return sum;
    case 'enforce':
      if (s.rejectReply === null) {
        s.rejectReply = withTxt(dnsblReply(550, s.client, site), txt);
        s.rejectReason = 'dnsbl';
      }
      return sum;
    case 'continue':
      s.ignoredFail = true;
      return sum;
  }
}

/** Append a listing's TXT text to a reply, printable ASCII only, bounded. */
function withTxt(reply: string, txt: string): string {
  if (txt === '') return reply;
  const clean = txt.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return `${reply.slice(0, -2)}; ${clean}\r\n`;
}

/**
 * A client that passed (or ignored) the early tests, with deep tests due:
 * the dummy engine runs them. With deep.after_pass reconnect (postscreen's
 * way) it answers RCPT with 450; with handoff, the RCPT that completes the
 * tests may hand the client over on the same connection (handoff/splice.ts
 * replayHandoff(), through session/dummy.ts).
 */
function enterDeepTests(s: Session): void {
  s.rejectReason = 'deep';
  enterDummy(s);
}

export function conclude(s: Session): void {
  if (s.closed) return;
  const ctx = s.ctx;
  const dnsbl = dnsblVerdict(s);
  if (s.closed) return;
  if (s.rejectReply !== null) {
    enterDummy(s);
    return;
  }
  if (s.ignoredFail) {
    // A test failed with `ignore`: no pass is remembered, so the test repeats next time.
    // Deep tests still due are run first (postscreen runs them whatever the early tests said).
    if (deepDue(s.personality.deep, s.record, Date.now()) !== 0) {
      enterDeepTests(s);
      return;
    }
    s.verdict = 'ignored';
    handoff(s);
    return;
  }
  if (s.personality.enabled.length === 0) {
    s.verdict = 'untested';
    handoff(s);
    return;
  }
  const now = Date.now();
  const rec = s.record ?? newRecord();
  if (s.dnsblAllowlisted && dnsbl !== null) {
    // postscreen: an allowlisted score completes every test, with the DNSBL TTL.
    for (const i of s.personality.enabled) rec[i] = now + dnsbl.ttlMs;
  } else {
    if (s.config.pregreet.enable && s.pregreet !== null && !s.pregreet.failed) rec[PREGREET] = now + s.config.pregreet.ttl;
    // A DNSBL pass is remembered only when every site answered.
    if (dnsbl !== null && dnsbl.complete) rec[DNSBL] = now + dnsbl.ttlMs;
  }
  s.record = rec;
  ctx.store.set(s.client, rec);
  if (!s.dnsblAllowlisted && !greylisted(s, rec, dnsbl?.score ?? 0, now)) {
    // Deferred: the passes so far are kept; the dummy engine answers 450 at RCPT and logs the envelope.
    s.rejectReason = 'greylist';
    enterDummy(s);
    return;
  }
  if (!s.dnsblAllowlisted && deepDue(s.personality.deep, rec, now) !== 0) {
    // The early passes are kept; PASS NEW waits for the deep tests (session/deep.ts).
    enterDeepTests(s);
    return;
  }
  if (dnsbl === null) s.event(EV.PASS_NEW);
  else s.event(EV.PASS_NEW, { dnsbl_score: dnsbl.score, ...(dnsbl.late.length > 0 ? { dnsbl_late: dnsbl.late } : {}), ...(s.dnsblAllowlisted ? { allowlisted: true } : {}) });
  s.verdict = s.dnsblAllowlisted ? 'dnsbl-allowlisted' : 'new';
  handoff(s);
}
