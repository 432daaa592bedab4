/*
 * session/deep.ts - the session's side of the after-220 ("deep") tests:
 * which are due for a client, and their verdict when its dummy session ends.
 *
 * Exports: deepOptions(), deepEnabled(), concludeDummy().
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
import type { Action, Config, DeepTestConfig } from '../config/types.js';
import { shadowFields } from '../checks/check.js';
import { EV } from '../log/events.js';
import { TestIndex } from '../checks/tests.js';
import { DEEP_TESTS, type DeepOptions } from '../checks/deep.js';
import { afterDeep } from './verdict.js';
import { ForbiddenCommands } from '../checks/non-smtp.js';
import type { Session } from './state.js';

/** The deep tests' compiled options, or null when none is enabled. */
export function deepOptions(config: Config): DeepOptions | null {
  const d = config.deep;
  if (!d.pipelining.enable && !d.non_smtp.enable && !d.bare_newline.enable) return null;
  // postscreen's psc_min_ttl: the shortest TTL of every test, enabled or not.
  const ignoreTtl = Math.min(config.pregreet.ttl, config.dnsbl.ttl_min, d.pipelining.ttl, d.non_smtp.ttl, d.bare_newline.ttl);
  // mode: shadow (or action: shadow): the action is shadow and `would` says what the configured one does
  // (a deep test would reject or drop, never defer); otherwise the action as configured and no `would`.
  const inMode = (t: DeepTestConfig): DeepTestConfig & { would?: 'reject' | 'drop' } =>
    ({ ...t, ...(shadowFields(t.action, config.mode) as { action: Action; would?: 'reject' | 'drop' }) });
  return {
    pipelining: inMode(d.pipelining), non_smtp: inMode(d.non_smtp), bare_newline: inMode(d.bare_newline),
    forbidden: new ForbiddenCommands(d.forbidden_commands), ignoreTtl,
  };
}

/** Test indexes (checks/tests.ts) of the enabled deep tests, for a personality's enabled list. */
export function deepEnabled(config: Config): number[] {
  return DEEP_TESTS.filter((t) => config.deep[t].enable).map((t) => TestIndex[t]);
}

/** The end of a dummy session that ran deep tests: cache and PASS NEW (session/verdict.ts afterDeep()). Runs once; a no-op without deep tests. */
export function concludeDummy(s: Session): void {
  const deep = s.deep;
  if (deep === null) return;
  s.deep = null;
  const v = afterDeep({ now: s.ctx.clock.now(), personality: s.personality, record: s.record, deep, enforced: s.rejectReply !== null });
  s.remember(v.record);
  if (v.passNew !== null) s.event(EV.PASS_NEW, { deep: v.passNew });
}
