/*
 * checks/deep.ts - the bookkeeping of the after-220 ("deep") tests in one
 * dummy session: which are due, which failed, which passed.
 *
 * Exports: DEEP_TESTS, DeepTestId, DEEP_BIT, DeepTestOptions, DeepOptions, DeepTests.
 * The tests themselves are checks/pipelining.ts, non-smtp.ts and
 * bare-newline.ts; the dummy engine (smtp/dummy-engine.ts) asks them per
 * command and records the outcome here; the session writes the passes to
 * the cache when the dummy session ends (session/deep.ts). The rules are
 * postscreen_smtpd.c's TODO / PASS / FAIL / SKIP bits:
 * - A test runs when it is due (enabled, and no unexpired pass at connect),
 *   and only until it fails once: then it is skipped for the rest of the
 *   session, so one offence is logged once.
 * - fail() with `drop` or `enforce`: failed, any pass of this session is
 *   withdrawn. With `ignore` (and `shadow`, which also marks it shadowed): logged, and the test counts as passed, but only
 *   for `ignoreTtl`, the shortest TTL of all tests (postscreen's psc_min_ttl:
 *   "temporarily allowlist until something else expires"). Recording no pass
 *   at all would defer the client at RCPT on every connection, for ever.
 * - rcpt(): the client reached RCPT TO: every due test that has not failed
 *   passes ("to pass ... the client has to properly speak SMTP all the way to
 *   the RCPT TO command"). A later offence still fails the test.
 * Pure: no sockets, no clock; the times are added by the session.
 */
import type { Action } from '../config/types.js';
import type { Would } from './check.js';
import type { ForbiddenCommands } from './non-smtp.js';

export const DEEP_TESTS = ['pipelining', 'non_smtp', 'bare_newline'] as const;
export type DeepTestId = (typeof DEEP_TESTS)[number];

/** One bit per deep test, in DEEP_TESTS order. */
export const DEEP_BIT: { readonly [K in DeepTestId]: number } = Object.freeze({ pipelining: 1, non_smtp: 2, bare_newline: 4 });

export interface DeepTestOptions {
  readonly enable: boolean;
  readonly action: Action;
  /** How long a pass is remembered, ms. */
  readonly ttl: number;
  /** action shadow: what the configured action would have done (the event's `would`). */
  readonly would?: Would;
}

/** The deep tests' configuration, compiled once (session/deep.ts deepOptions()). */
export interface DeepOptions {
  readonly pipelining: DeepTestOptions;
  readonly non_smtp: DeepTestOptions;
  readonly bare_newline: DeepTestOptions;
  readonly forbidden: ForbiddenCommands;
  /** TTL of the pass a test gets when it fails with `ignore` (postscreen's psc_min_ttl), ms. */
  readonly ignoreTtl: number;
}

export class DeepTests {
  readonly opts: DeepOptions;
  /** Bits of the tests run in this session. */
  readonly todo: number;
  /** Failed with drop or enforce. */
  failed = 0;
  /** Passed (at RCPT, or failed with ignore). */
  passed = 0;
  /** Of `passed`: the ones that failed with ignore or shadow (short TTL). */
  ignored = 0;
  /** Of `ignored`: the ones that failed with shadow (no PASS NEW for the session). */
  shadowed = 0;
  /** Failed once: not tested again in this session. */
  #skip = 0;

  constructor(opts: DeepOptions, todo: number) {
    this.opts = opts;
    this.todo = todo & 7;
  }

  /** Is the test to be run on this command? */
  due(id: DeepTestId): boolean {
    const bit = DEEP_BIT[id];
    return (this.todo & bit) !== 0 && (this.#skip & bit) === 0;
  }

  /** A due test failed: record it and return the action that applies. */
  fail(id: DeepTestId): Action {
    const bit = DEEP_BIT[id];
    const action = this.opts[id].action;
    this.#skip |= bit;
    if (action === 'ignore' || action === 'shadow') {
      // Shadow as ignore: the client goes on, and the short pass keeps it from the dummy engine's 450 on every connection.
      this.passed |= bit;
      this.ignored |= bit;
      if (action === 'shadow') this.shadowed |= bit;
    } else {
      this.passed &= ~bit;
      this.ignored &= ~bit;
      this.failed |= bit;
    }
    return action;
  }

  /** The client reached RCPT TO: due tests that have not failed pass. */
  rcpt(): void {
    this.passed |= this.todo & ~this.failed;
  }

  /** No test failed and every due test passed: the client may come back as PASS OLD. */
  get complete(): boolean {
    return this.failed === 0 && (this.passed & this.todo) === this.todo;
  }

  /** Pass-until time of a passed test, given the time the session concludes; 0 when it did not pass. */
  passUntil(id: DeepTestId, now: number): number {
    const bit = DEEP_BIT[id];
    if ((this.passed & bit) === 0) return 0;
    return now + ((this.ignored & bit) !== 0 ? this.opts.ignoreTtl : this.opts[id].ttl);
  }
}
