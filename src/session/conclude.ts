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
import type { Session } from './state.js';
import { handoff } from './handoff.js';
import { enterDummy } from './dummy.js';
import { closeWith } from './close.js';
import { afterEarly } from './verdict.js';
import type { CheckOutcome } from '../checks/check.js';
import { ALLOWLISTED, IGNORED, SHADOWED } from './test-state.js';

export function conclude(s: Session): void {
  if (s.closed) return;
  const ctx = s.ctx;
  // What every early check says now; a check still waiting for answers has them counted as not listed.
  const checks: Array<{ test: number; outcome: CheckOutcome }> = [];
  const runs = s.runs;
  if (runs !== null) {
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i];
      const c = s.gen.checks[i];
      if (run == null || c === undefined) continue;
      run.cancel();
      checks.push({ test: c.test, outcome: c.outcome(run) });
    }
    // The verdict reads the outcomes once: a session held in the dummy engine keeps no lookup state.
    s.runs = null;
  }
  const now = ctx.clock.now();
  const store = ctx.store;
  const g = s.config.greylist;
  const v = afterEarly({
    client: s.client, now, personality: s.personality, replies: s.gen.replies,
    state: s.tests, record: s.record,
    enforced: s.rejectReply === null ? null : { reply: s.rejectReply, reason: s.rejectReason },
    ignored: (s.tests & IGNORED) !== 0,
    shadowed: (s.tests & SHADOWED) !== 0,
    checks,
    greylist: (network) => store.observe(network, now, { minDelayMs: g.min_delay, maxDelayMs: g.max_delay, ttlMs: g.ttl }),
  });
  for (const f of v.failedChecks) {
    s.event(f.outcome.event, f.would === undefined ? { ...f.outcome.fields, action: f.action } : { ...f.outcome.fields, action: f.action, would: f.would });
  }
  if (v.shadowed === true) s.tests |= SHADOWED;
  s.remember(v.record);
  if (v.greylist !== null) {
    const { network, decision: d } = v.greylist;
    if (d.verdict === 'defer' && v.greylist.shadow === true) {
      s.event(EV.GREYLIST, { network, state: 'defer', reason: d.reason, ...(d.reason === 'early' ? { wait_ms: d.waitMs } : {}), action: 'shadow', would: 'defer' });
    } else if (d.verdict === 'defer') s.event(EV.GREYLIST, { network, state: 'defer', reason: d.reason, ...(d.reason === 'early' ? { wait_ms: d.waitMs } : {}) });
    else if (d.reason === 'retry') s.event(EV.GREYLIST, { network, state: 'pass', delay_ms: d.delayMs });
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
