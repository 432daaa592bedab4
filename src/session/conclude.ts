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
import { ALLOWLISTED, IGNORED } from './test-state.js';

export function conclude(s: Session): void {
  if (s.closed) return;
  const ctx = s.ctx;
  const q = s.dnsbl;
  const test = s.gen.dnsbl;
  q?.cancel();
  const summary = test !== null && q !== null ? test.summary(q) : null;
  const now = s.ctx.clock.now();
  const store = ctx.store;
  const g = s.config.greylist;
  const v = afterEarly({
    client: s.client, now, personality: s.personality, replies: s.gen.replies,
    state: s.tests, record: s.record,
    enforced: s.rejectReply === null ? null : { reply: s.rejectReply, reason: s.rejectReason },
    ignored: (s.tests & IGNORED) !== 0,
    dnsbl: test !== null && q !== null && summary !== null ? { test, summary, txt: q.txt } : null,
    greylist: (network) => store.observe(network, now, { minDelayMs: g.min_delay, maxDelayMs: g.max_delay, ttlMs: g.ttl }),
  });
  if (v.dnsblFailed !== null && summary !== null) {
    s.event(EV.DNSBL, { score: summary.score, hits: summary.hits, action: v.dnsblFailed, lookup_ms: summary.lookupMs, late: summary.late });
  }
  if (v.record !== null) {
    s.record = v.record;
    store.set(s.client, v.record);
  }
  if (v.greylist !== null) {
    const { network, decision: d } = v.greylist;
    if (d.verdict === 'defer') s.event(EV.GREYLIST, { network, state: 'defer', reason: d.reason, ...(d.reason === 'early' ? { wait_ms: d.waitMs } : {}) });
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
        if (summary === null) s.event(EV.PASS_NEW);
        else s.event(EV.PASS_NEW, { dnsbl_score: summary.score, ...(summary.late.length > 0 ? { dnsbl_late: summary.late } : {}), ...(v.allowlisted ? { allowlisted: true } : {}) });
      }
      s.verdict = v.name;
      handoff(s);
      return;
  }
}
