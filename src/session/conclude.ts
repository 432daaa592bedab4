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
 * With a shared tier (cache.store: redis), greylisting is decided by it, atomically across
 * screeners: the session waits for that one answer (at most cache.redis.timeout, input paused),
 * then acts; without an answer in time it decides from this process's memory.
 */
import { EV } from '../log/events.js';
import type { PendingDecision, Session } from './state.js';
import { handoff } from './handoff.js';
import { enterDummy } from './dummy.js';
import { closeWith } from './close.js';
import { afterEarly, type EarlyFacts, type EarlyVerdict } from './verdict.js';
import type { GreylistDecision, GreylistOptions } from '../checks/greylist.js';
import type { SharedTier } from '../cache/store.js';
import { guardTimer } from './guard.js';
import type { CheckOutcome } from '../checks/check.js';
import { ALLOWLISTED, IGNORED, SHADOWED } from './test-state.js';
import { TestIndex } from '../checks/tests.js';

export function conclude(s: Session): void {
  if (s.closed) return;
  // A shared-tier lookup still out is not waited for any longer (session/machine.ts).
  s.sharedPending = false;
  const ctx = s.ctx;
  // What every early check says now; a check still waiting for answers has them counted as not listed.
  const checks: Array<{ test: number; outcome: CheckOutcome }> = [];
  const runs = s.runs;
  if (runs !== null) {
    // runs has a slot per check of the session's generation (session/machine.ts); null: not started (its pass was valid).
    for (const [i, c] of s.gen.checks.entries()) {
      const run = runs[i];
      if (run == null) continue;
      run.cancel();
      checks.push({ test: c.test, outcome: c.outcome(run) });
    }
    // The verdict reads the outcomes once: a session held in the dummy engine keeps no lookup state.
    s.runs = null;
  }
  const now = ctx.clock.now();
  const store = ctx.store;
  const shared = store.shared;
  // Greylisting on a shared tier is decided there, atomically for every screener, and so later:
  // the verdict is asked once to learn whether it needs a decision, then again with it.
  const ask = { shared: null as { network: string; tier: SharedTier } | null };
  const v = afterEarly(facts(s, now, checks, (network) => {
    if (shared === undefined || !shared.up) return store.observe(network, now, greylistOptions(s));
    ask.shared = { network, tier: shared };
    return ASKED;
  }));
  const to = ask.shared;
  if (to !== null) {
    // No input is read meanwhile; the dummy engine or the handoff resumes the socket.
    s.socket.pause();
    s.deciding = { network: to.network, now, checks };
    to.tier.observeShared(to.network, now, greylistOptions(s), s, onSharedDecision);
    s.timer = ctx.clock.setTimeout(onDecisionDeadline, to.tier.timeoutMs, s);
    return;
  }
  act(s, v, checks);
}

/** A placeholder decision while the shared tier is asked (the verdict it yields is not used). */
const ASKED: GreylistDecision = { verdict: 'defer', state: 0, reason: 'new' };

function greylistOptions(s: Session): GreylistOptions {
  const g = s.config.greylist;
  return { minDelayMs: g.min_delay, maxDelayMs: g.max_delay, ttlMs: g.ttl };
}

function facts(s: Session, now: number, checks: PendingDecision['checks'], greylist: (network: string) => GreylistDecision): EarlyFacts {
  return {
    client: s.client, now, personality: s.personality, replies: s.gen.replies,
    state: s.tests, record: s.record,
    enforced: s.rejectReply === null ? null : { reply: s.rejectReply, reason: s.rejectReason },
    ignored: (s.tests & IGNORED) !== 0,
    shadowed: (s.tests & SHADOWED) !== 0,
    checks,
    greylist,
  };
}

/** The shared tier's greylist decision; null (failed, or a reply it could not read): this screener decides. */
function _onSharedDecision(s: Session, d: GreylistDecision | null): void {
  const p = s.deciding;
  if (p === null || s.closed) return;
  s.deciding = null;
  s.clearTimer();
  decideWith(s, p, d ?? s.ctx.store.observe(p.network, p.now, greylistOptions(s)));
}

/** No decision within cache.redis.timeout: this screener decides, from its memory. */
function _onDecisionDeadline(s: Session): void {
  s.timer = null;
  const p = s.deciding;
  if (p === null || s.closed) return;
  s.deciding = null;
  decideWith(s, p, s.ctx.store.observe(p.network, p.now, greylistOptions(s)));
}

function decideWith(s: Session, p: PendingDecision, d: GreylistDecision): void {
  act(s, afterEarly(facts(s, p.now, p.checks, () => d)), p.checks);
}

/** What the verdict says, done: events, the record, then the one way out. */
function act(s: Session, v: EarlyVerdict, checks: PendingDecision['checks']): void {
  // `would` is set only under shadow; undefined is no field (the JSON line, the counters and the metrics alike).
  for (const f of v.failedChecks) s.event(f.outcome.event, { ...f.outcome.fields, action: f.action, would: f.would });
  if (v.shadowed === true) s.tests |= SHADOWED;
  let score = 0;
  let scored = false;
  for (const c of checks) {
    score += c.outcome.score;
    if (c.test === TestIndex.dnsbl) scored = true;
    const n = c.outcome.note;
    if (n != null) s.event(n.event, n.fields);
    s.route = c.outcome.route ?? s.route; // a check that asks for a route (the policy's) sets it
  }
  if (scored) s.score = score; // for routes' score_min / score_max (handoff/route.ts)
  s.remember(v.record);
  if (v.greylist !== null) {
    const { network, decision: d } = v.greylist;
    if (d.verdict === 'defer') {
      // wait_ms: only an early retry has it (undefined is no field in the line).
      const fields = { network, state: 'defer', reason: d.reason, wait_ms: (d as { waitMs?: number }).waitMs };
      // Shadowed: handed over all the same; the line says what enforce would have done.
      s.event(EV.GREYLIST, v.greylist.shadow === true ? { ...fields, action: 'shadow', would: 'defer' } : fields);
    } else if (d.reason === 'retry') s.event(EV.GREYLIST, { network, state: 'pass', delay_ms: d.delayMs });
  }
  switch (v.next) {
    case 'drop':
      closeWith(s, v.reply);
      return;
    case 'enforce':
      s.rejectReply = v.reply;
      s.rejectReason = v.reason;
      enterDummy(s);
      return;
    case 'greylist':
    case 'deep':
      // Deferred (greylist), or deep tests to pass first: the dummy engine, 450 at RCPT,
      // or with deep.after_pass handoff a handoff at that RCPT (session/handoff.ts replayHandoff()).
      s.rejectReason = v.reason;
      enterDummy(s);
      return;
    case 'handoff':
      if (v.allowlisted) s.tests |= ALLOWLISTED;
      if (v.passNew) {
        if (checks.length === 0) s.event(EV.PASS_NEW);
        else {
          let fields: Record<string, unknown> = {};
          for (const c of checks) fields = { ...fields, ...c.outcome.passFields };
          s.event(EV.PASS_NEW, v.allowlisted ? { ...fields, allowlisted: true } : fields);
        }
      }
      s.verdict = v.name;
      handoff(s);
      return;
  }
}

const onSharedDecision = guardTimer('shared greylist decision', _onSharedDecision);
const onDecisionDeadline = guardTimer('shared greylist deadline', _onDecisionDeadline);
