/*
 * session/deep.ts - the session's side of the after-220 ("deep") tests:
 * which are due for a client, and their verdict when its dummy session ends.
 *
 * Exports: deepOptions(), deepEnabled(), deepDue(), concludeDummy().
 * Flow (postscreen's, deep.after_pass = reconnect): a client that passed the
 * early tests while some enabled deep test has no unexpired pass does not go
 * to the backend. conclude() sends it to the dummy engine, which completes
 * the greeting, runs the due tests on its commands (checks/deep.ts) and
 * answers RCPT with 450 4.3.2 (NOQUEUE logs the envelope). When that
 * dummy session ends, whichever way (QUIT, a limit, a drop, a hangup, a
 * drain), concludeDummy() runs once: as postscreen's psc_conclude() at the
 * end of its SMTP engine, it writes the passes to the cache unless some test
 * failed in the session, and logs PASS NEW when the client now has a pass
 * for every enabled test, i.e. when its next connection will be PASS OLD
 * and handed over. Only this function and conclude() write verdicts.
 */
import type { Config } from '../config/types.js';
import { EV } from '../log/events.js';
import { TestIndex } from '../checks/tests.js';
import { allPassed, newRecord, type VerdictRecord } from '../cache/store.js';
import { DEEP_BIT, DEEP_TESTS, type DeepOptions } from '../checks/deep.js';
import { ForbiddenCommands } from '../checks/non-smtp.js';
import type { Session } from './state.js';

/** The deep tests' compiled options, or null when none is enabled. */
export function deepOptions(config: Config): DeepOptions | null {
  const d = config.deep;
  if (!d.pipelining.enable && !d.non_smtp.enable && !d.bare_newline.enable) return null;
  // postscreen's psc_min_ttl: the shortest TTL of every test, enabled or not.
  const ignoreTtl = Math.min(config.pregreet.ttl, config.dnsbl.ttl_min, d.pipelining.ttl, d.non_smtp.ttl, d.bare_newline.ttl);
  return {
    pipelining: d.pipelining, non_smtp: d.non_smtp, bare_newline: d.bare_newline,
    forbidden: new ForbiddenCommands(d.forbidden_commands), ignoreTtl,
  };
}

/** Test indexes (checks/tests.ts) of the enabled deep tests, for ctx.enabled. */
export function deepEnabled(config: Config): number[] {
  return DEEP_TESTS.filter((t) => config.deep[t].enable).map((t) => TestIndex[t]);
}

/** Bits (checks/deep.ts DEEP_BIT) of the enabled deep tests without an unexpired pass in `rec`. */
export function deepDue(deep: DeepOptions | null, rec: VerdictRecord | null, now: number): number {
  if (deep === null) return 0;
  let todo = 0;
  for (const t of DEEP_TESTS) {
    if (deep[t].enable && !((rec?.[TestIndex[t]] ?? 0) > now)) todo |= DEEP_BIT[t];
  }
  return todo;
}

/** The end of a dummy session that ran deep tests: cache and PASS NEW. Runs once; a no-op without deep tests. */
export function concludeDummy(s: Session): void {
  const deep = s.deep;
  if (deep === null) return;
  s.deep = null;
  const rec = s.record;
  if (deep.failed !== 0) {
    // As the early tests: the failed test loses its pass in memory; nothing is written.
    if (rec !== null) for (const t of DEEP_TESTS) if ((deep.failed & DEEP_BIT[t]) !== 0) rec[TestIndex[t]] = 0;
    return;
  }
  // A client that failed an early test (enforced) earns nothing here (postscreen: any FAIL clears every PASS).
  if (deep.passed === 0 || s.rejectReply !== null) return;
  const ctx = s.ctx;
  const now = Date.now();
  const r = rec ?? newRecord();
  const passed: string[] = [];
  for (const t of DEEP_TESTS) {
    const until = deep.passUntil(t, now);
    if (until > 0) {
      r[TestIndex[t]] = until;
      passed.push(t);
    }
  }
  s.record = r;
  ctx.store.set(s.client, r);
  if (deep.complete && allPassed(r, s.personality.enabled, now)) s.event(EV.PASS_NEW, { deep: passed });
}
