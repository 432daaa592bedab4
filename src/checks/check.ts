/*
 * checks/check.ts - what every test returns, and the one switch over actions.
 *
 * Exports: Result, Outcome, applyAction(), Would, actionIn(), wouldOf(), shadowFields(),
 *          EarlyCheck, CheckRun, CheckOutcome, ClientFacts.
 * A check decides pass or fail; what a failure does is the same switch for
 * every test (postscreen's DROP / ENFORCE / IGNORE, and our SHADOW), written once here.
 * Shadow (mode: shadow, or a test's action: shadow): the failure is logged with
 * `action: shadow` and `would` (what the configured action would have done:
 * reject, drop; greylisting's defer) and the client goes on as if it had passed.
 *
 * EarlyCheck is the one shape of a check that runs beside the greet wait
 * (DNSBL today; a shared-store lookup or an HTTP policy next: one file
 * each, plus a config key and a row in the generation's list). The session
 * starts every configured check at accept with the client; a check calls
 * its owner back once when its answer is complete, never synchronously; the
 * greet wait bounds it (without a pregreet test, the longest `deadlineMs`);
 * outcome() is what the verdict function (session/verdict.ts) reads, the
 * same for every check.
 */
import type { Action, Mode } from '../config/types.js';
import type { EventName } from '../log/events.js';
import type { ConnectFacts } from './policy-reply.js';

export interface Result {
  /** true: the client passed this test; false: it failed. */
  pass: boolean;
  /** Fields for the log event of this test. */
  fields: Record<string, unknown>;
}

/** What the session does after a failed test. */
export type Outcome =
  | 'drop'      // reply 521 and close now
  | 'enforce'   // remember the failure: the dummy engine rejects at RCPT
  | 'continue'  // ignore: log only, no pass recorded, the test repeats next time
  | 'shadow';   // log what would have happened (`would`), go on as if passed; no pass recorded

export function applyAction(action: Action): Outcome {
  switch (action) {
    case 'drop': return 'drop';
    case 'enforce': return 'enforce';
    case 'ignore': return 'continue';
    case 'shadow': return 'shadow';
    default: {
      const never: never = action;
      throw new Error(`unknown action ${String(never)}`);
    }
  }
}

/** What a shadowed failure would have done to the client. */
export type Would = 'reject' | 'drop' | 'defer';

/** The action that applies under `mode`: mode shadow makes every drop and enforce a shadow; ignore stays ignore. */
export function actionIn(action: Action, mode: Mode): Action {
  return mode === 'shadow' && (action === 'drop' || action === 'enforce') ? 'shadow' : action;
}

/** What the configured action would have done: drop -> drop; enforce and a per-test shadow -> reject (550 at RCPT). */
export function wouldOf(configured: Action): Would {
  return configured === 'drop' ? 'drop' : 'reject';
}

/** The `action` (and, when shadowed, `would`) fields of a failure's event under `mode`. */
export function shadowFields(configured: Action, mode: Mode): { action: Action; would?: Would } {
  const action = actionIn(configured, mode);
  return action === 'shadow' ? { action, would: wouldOf(configured) } : { action };
}

/** One check's work for one client. */
export interface CheckRun {
  /** After this the owner is not called back. */
  cancel(): void;
}

/** What a check says about a client, read when the greet wait ends (complete or not). */
export interface CheckOutcome {
  /** Every answer is in (a pass is remembered only then). */
  readonly complete: boolean;
  /** The client failed: the personality's action for this test applies (session/verdict.ts). */
  readonly failed: boolean;
  /** The reply for a failure: 521 (drop) or 550 (enforce, at RCPT). */
  reply(code: 521 | 550): string;
  /** The client is vouched for: every enabled test passes at once, for `ttlMs`. */
  readonly allowlisted: boolean;
  /** How long a pass is remembered, ms. */
  readonly ttlMs: number;
  /** How suspicious the client looks (greylisting's `suspicious` policy); 0 when nothing says so. */
  readonly score: number;
  /** The failure's log event and its fields. */
  readonly event: EventName;
  readonly fields: Readonly<Record<string, unknown>>;
  /** Fields the check adds to PASS NEW. */
  readonly passFields: Readonly<Record<string, unknown>>;
  /** An event to log whatever the verdict, when the check did not fail (the policy's decision), or absent. */
  readonly note?: { readonly event: EventName; readonly fields: Readonly<Record<string, unknown>> } | null;
  /** A backend route the check asks for (the policy's `route`), or absent: kept on the session for the router. */
  readonly route?: string | null;
}

/** What a check may know of the client at accept beyond its address (the policy check sends it on). */
export type { ConnectFacts as ClientFacts } from './policy-reply.js';

export interface EarlyCheck<R extends CheckRun = CheckRun> {
  /** Its row in the test table (checks/tests.ts). */
  readonly test: number;
  /** Without a pregreet test, the longest the session waits for it, ms. */
  readonly deadlineMs: number;
  /** The check wants `facts` at start (built only then: the DNSBL test does not). */
  readonly wantsFacts?: boolean;
  /** Start for one client; null when there is nothing to ask (the check has no say). `done` runs once, later. */
  start<T>(client: string, owner: T, done: (owner: T, run: R) => void, facts?: ConnectFacts): R | null;
  /** What the run says now (pending answers count as not listed). */
  outcome(run: R): CheckOutcome;
}
