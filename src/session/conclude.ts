/*
 * session/conclude.ts - the single exit of the tests: the verdict.
 *
 * Exports: conclude().
 * Only here are passes written to the cache and PASS NEW logged (postscreen's
 * psc_conclude). A client with an enforced failure goes to the dummy engine,
 * which rejects it at RCPT; a client that passed, or failed only tests set to
 * `ignore`, is handed over to the backend.
 */
import { EV } from '../log/events.js';
import { TestIndex } from './flags.js';
import { newRecord } from '../cache/store.js';
import type { Session } from './state.js';
import { handoff } from '../handoff/splice.js';
import { enterDummy } from './dummy.js';

const PREGREET = TestIndex.pregreet;

export function conclude(s: Session): void {
  if (s.closed) return;
  const ctx = s.ctx;
  if (s.rejectReply !== null) {
    enterDummy(s);
    return;
  }
  if (s.ignoredFail) {
    // A test failed with `ignore`: hand over, but no pass is remembered, so the test repeats next time.
    s.verdict = 'ignored';
    handoff(s);
    return;
  }
  if (ctx.enabled.length === 0) {
    s.verdict = 'untested';
    handoff(s);
    return;
  }
  const now = Date.now();
  const rec = s.record ?? newRecord();
  if (ctx.config.pregreet.enable && s.pregreet !== null && !s.pregreet.failed) {
    rec[PREGREET] = now + ctx.config.pregreet.ttl;
  }
  s.record = rec;
  ctx.store.set(s.client, rec);
  s.event(EV.PASS_NEW);
  s.verdict = 'new';
  handoff(s);
}
