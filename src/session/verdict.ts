/*
 * session/verdict.ts - the one verdict function: the test-state table and the
 * facts of one client in, what happens to it and the record to store out.
 *
 * Exports: atAccept(), AcceptFacts, AcceptVerdict, afterEarly(), EarlyFacts, deepDue(),
 *          EarlyVerdict, afterDeep(), DeepFacts, DeepVerdict, Enforced, cleared().
 * Pure (no socket, no log, no store write): the session calls it and acts on
 * what it returns (session/machine.ts, conclude.ts, deep.ts), and `explain`
 * calls the same functions on the same inputs, so its answer cannot drift
 * from the screener's. The one side effect a verdict needs, greylisting's
 * atomic first-seen/retry decision, comes in as a function: the session
 * passes the store's observe(), explain a read-only look at its snapshot.
 *
 * The rules are postscreen's: a test that failed loses its pass (drop,
 * enforce and ignore alike); any failure under drop or enforce earns no
 * pass at all, and the first enforced failure's reply is what the dummy
 * engine gives at RCPT; a failure under ignore is handed over but nothing
 * is remembered, so the tests repeat next time; a DNSBL score at or below
 * the allowlist threshold completes every test with the DNSBL TTL. A policy
 * permit does the same with its ttl and overrules the DNS lists (a listing
 * does not fail the client); a policy reject or defer is a failure that a
 * DNSBL allowlisting does not overrule.
 * Shadow (mode: shadow, or a test's action: shadow; checks/check.ts): a
 * failure is logged with what it would have done and the verdict goes on as
 * if the test had passed (later tests still apply: an enforced greylisting
 * defers it; a shadowed one is not asked, as enforce would not have got
 * there, so the would-have counts are enforce's), but the failed test's
 * pass is cleared and not written, so it runs, and is logged, again on the
 * next connection, as an enforced failure would be: the would-have counts
 * track the real ones connection for connection. The passes of the tests the
 * client did pass are written (they did pass); no PASS NEW, and the handoff's
 * verdict is `shadow`.
 */
import type { Action, Config } from '../config/types.js';
import { allPassed, withPasses, type VerdictRecord } from '../cache/store.js';
import { actionIn, wouldOf, type CheckOutcome, type Would } from '../checks/check.js';
import { greylistApplies, type GreylistDecision } from '../checks/greylist.js';
import { DEEP_BIT, DEEP_TESTS, type DeepOptions, type DeepTests } from '../checks/deep.js';
import type { Replies } from '../smtp/replies.js';
import { networkOf } from '../net/cidr.js';
import { TESTS, TestIndex } from '../checks/tests.js';
import { DONE, PASS, TODO, fates } from './test-state.js';
import type { PersonalityConfig as Personality } from './generation.js';

const PREGREET = TestIndex.pregreet;
const DNSBL = TestIndex.dnsbl;
const GREYLIST = TestIndex.greylist;
const POLICY = TestIndex.policy;

/** The first enforced failure: the 550 the dummy engine gives at RCPT, and why. */
export interface Enforced {
  readonly reply: string;
  readonly reason: string;
}

// ---- at accept: access list and verdict cache ------------------------------

export interface AcceptFacts {
  readonly now: number;
  readonly personality: Personality;
  /** The access list's matching entry's action, or null. */
  readonly access: 'permit' | 'reject' | 'dunno' | null;
  /** The client's stored record, or null. */
  readonly record: VerdictRecord | null;
}

export type AcceptVerdict =
  | { readonly next: 'allowlisted' }
  /** Denylisted: what access.action says (drop: 521 now; enforce: 550 at RCPT; ignore: the tests go on; shadow: logged with `would`, the tests go on). */
  | { readonly next: 'denylisted'; readonly action: Action; readonly would?: Would }
  | { readonly next: 'pass-old' }
  | { readonly next: 'test' };

export function atAccept(f: AcceptFacts): AcceptVerdict {
  if (f.access === 'permit') return { next: 'allowlisted' };
  if (f.access === 'reject') {
    const cfg = f.personality.config;
    const action = actionIn(cfg.access.action, cfg.mode);
    return action === 'shadow' ? { next: 'denylisted', action, would: wouldOf(cfg.access.action) } : { next: 'denylisted', action: cfg.access.action };
  }
  if (f.record !== null && allPassed(f.record, f.personality.enabled, f.now)) return { next: 'pass-old' };
  return { next: 'test' };
}

// ---- at the end of the greet wait ------------------------------------------

export interface EarlyFacts {
  readonly client: string;
  readonly now: number;
  readonly personality: Personality;
  readonly replies: Replies;
  /** The test-state table (session/test-state.ts). */
  readonly state: number;
  readonly record: VerdictRecord | null;
  /** A failure before now (denylist, pregreet) under enforce. */
  readonly enforced: Enforced | null;
  /** A failure before now under ignore. */
  readonly ignored: boolean;
  /** A failure before now (denylist, pregreet) under shadow. */
  readonly shadowed?: boolean;
  /** What each early check (checks/check.ts EarlyCheck) that ran for this client says, by its test row. */
  readonly checks: ReadonlyArray<{ readonly test: number; readonly outcome: CheckOutcome }>;
  /** Greylisting: decide for `network` now (the store's atomic observe, or a look at a snapshot). */
  readonly greylist: (network: string) => GreylistDecision;
}

export interface EarlyVerdict {
  /**
   * drop: the reply, then close. enforce: the dummy engine, `reply` at RCPT.
   * greylist / deep: the dummy engine, 450 at RCPT (greylisted, or deep tests to pass first).
   * handoff: to the backend now, with `name` (HANDOFF's verdict).
   */
  readonly next: 'drop' | 'enforce' | 'greylist' | 'deep' | 'handoff';
  readonly reply: string | null;
  readonly reason: string;
  readonly name: 'new' | 'ignored' | 'untested' | 'dnsbl-allowlisted' | 'policy-allowlisted' | 'shadow' | '';
  /** The record to store under the client's address, or null: nothing to store. */
  readonly record: VerdictRecord | null;
  /** The checks that failed, with the action that applied: log each one's event. */
  readonly failedChecks: ReadonlyArray<{ readonly outcome: CheckOutcome; readonly action: Action; readonly would?: Would }>;
  /** A check vouched for the client (DNSBL allowlist threshold): every test passed. */
  readonly allowlisted: boolean;
  /** Greylisting decided: log it (`shadow`: a deferral under shadow, handed over). */
  readonly greylist: { readonly network: string; readonly decision: GreylistDecision; readonly shadow?: true } | null;
  /** Log PASS NEW (the client is handed over as a new client). */
  readonly passNew: boolean;
  /** Some failure was shadowed: the client goes on as if it had passed (present only then). */
  readonly shadowed?: true;
}

const NO_FAILED: EarlyVerdict['failedChecks'] = [];

function verdict(next: EarlyVerdict['next'], v: Partial<EarlyVerdict>): EarlyVerdict {
  return {
    next, reply: null, reason: '', name: '', record: null, failedChecks: NO_FAILED, allowlisted: false, greylist: null, passNew: false, ...v,
  };
}

/** A stored record with the passes of the failed tests cleared, or null when there is nothing to clear. */
export function cleared(rec: VerdictRecord | null, tests: readonly number[]): VerdictRecord | null {
  if (rec === null) return null;
  const changes = tests.filter((t) => (rec[t] ?? 0) !== 0).map((t) => [t, 0] as const);
  return changes.length === 0 ? null : withPasses(rec, changes);
}

/**
 * The action of a failed early check under this configuration (a new early check adds its row).
 * Only early checks (checks/check.ts EarlyCheck) come here: the pregreet test is read from the state table.
 */
function actionOf(cfg: Config, test: number): Action {
  if (test === DNSBL) return cfg.dnsbl.action;
  if (test === POLICY) return cfg.policy.action;
  throw new Error(`no action for test row ${test}`);
}

export function afterEarly(f: EarlyFacts): EarlyVerdict {
  const cfg = f.personality.config;
  const failed: number[] = [];
  // Pregreet: done with a failure (any action) when the client talked early.
  const pg = fates(f.state, PREGREET);
  if ((pg & DONE) !== 0 && (pg & PASS) === 0) failed.push(PREGREET);

  let enforced = f.enforced;
  let ignored = f.ignored;
  let shadowed = f.shadowed === true;
  const failedChecks: Array<{ outcome: CheckOutcome; action: Action; would?: Would }> = [];
  // The policy service's permit overrules the other checks' failures (a DNSBL listing); not the pregreet test or the access list.
  const policyVouch = f.checks.find((c) => c.test === POLICY && c.outcome.allowlisted);
  for (const c of f.checks) {
    if (!c.outcome.failed) continue;
    // (A permit is no failure itself: a policy outcome is never both allowlisted and failed, checks/policy.ts.)
    if (policyVouch !== undefined) continue;
    const configured = actionOf(cfg, c.test);
    const action = actionIn(configured, cfg.mode);
    failed.push(c.test);
    failedChecks.push(action === 'shadow' ? { outcome: c.outcome, action, would: wouldOf(configured) } : { outcome: c.outcome, action });
    switch (action) {
      case 'drop':
        return verdict('drop', { reply: c.outcome.reply(521), reason: TESTS[c.test] ?? '', failedChecks, record: cleared(f.record, failed) });
      case 'enforce':
        enforced ??= { reply: c.outcome.reply(550), reason: TESTS[c.test] ?? '' };
        break;
      case 'ignore':
        ignored = true;
        break;
      case 'shadow':
        shadowed = true;
        break;
    }
  }
  const record = cleared(f.record, failed);
  if (enforced !== null) return verdict('enforce', { reply: enforced.reply, reason: enforced.reason, record, failedChecks });
  const deepTodo = (rec: VerdictRecord | null): boolean => deepDue(f.personality.deep, rec, f.now) !== 0;
  if (ignored) {
    // No pass is remembered, so the test repeats next time; deep tests still due run first
    // (postscreen runs them whatever the early tests said).
    const rec = record ?? f.record;
    if (deepTodo(rec)) return verdict('deep', { reason: 'deep', record, failedChecks });
    return verdict('handoff', { name: 'ignored', record, failedChecks });
  }
  if (f.personality.enabled.length === 0) return verdict('handoff', shadowed ? { name: 'shadow', shadowed: true } : { name: 'untested' });

  const now = f.now;
  const changes: Array<readonly [number, number]> = [];
  // A shadowed failure earns no vouching (as an enforced one would not).
  const vouch = shadowed ? undefined : (policyVouch ?? f.checks.find((c) => c.outcome.allowlisted));
  if (vouch !== undefined) {
    // postscreen: an allowlisted score completes every test, with the DNSBL TTL (a policy permit: with its ttl).
    for (const i of f.personality.enabled) changes.push([i, now + vouch.outcome.ttlMs]);
    return verdict('handoff', { name: vouch.test === TestIndex.policy ? 'policy-allowlisted' : 'dnsbl-allowlisted', record: vouch.outcome.ttlMs > 0 ? withPasses(f.record, changes) : null, allowlisted: true, passNew: true });
  }
  if (cfg.pregreet.enable && (pg & TODO) !== 0 && (pg & PASS) !== 0) changes.push([PREGREET, now + cfg.pregreet.ttl]);
  // A check's pass is remembered only when its answer is complete (DNSBL: every site answered).
  let score = 0;
  for (const c of f.checks) {
    score += c.outcome.score;
    if (c.outcome.complete && !c.outcome.failed) changes.push([c.test, now + c.outcome.ttlMs]);
  }

  // Greylisting, after the early tests passed.
  let greylist: EarlyVerdict['greylist'] = null;
  let deferred = false;
  const g = cfg.greylist;
  // Greylisting shadowed after a shadowed failure: enforce would have refused the client before greylisting,
  // so it is not asked (the would-have counts stay those of enforce; nothing changes for the client).
  const skipGreylist = shadowed && actionIn(g.action, cfg.mode) === 'shadow';
  if (g.enable && !skipGreylist && !((f.record?.[GREYLIST] ?? 0) > now)) {
    if (!greylistApplies(g.policy, score, g.suspicious_score)) changes.push([GREYLIST, now + g.ttl]);
    else {
      const network = networkOf(f.client, g.ipv4_prefix, g.ipv6_prefix);
      if (network !== null) {
        const decision = f.greylist(network);
        greylist = { network, decision };
        if (decision.verdict === 'pass') changes.push([GREYLIST, decision.state]);
        else if (actionIn(g.action, cfg.mode) === 'shadow') {
          // Shadowed: the first-seen time is stored (observe()), no greylist pass: the retry logic runs as it would.
          shadowed = true;
          greylist = { network, decision, shadow: true };
        } else deferred = true;
      }
    }
  }
  // `record` (the failed tests' passes cleared) is null unless a failure was shadowed.
  const rec = withPasses(record ?? f.record, changes);
  const sh: Partial<EarlyVerdict> = shadowed ? { failedChecks, shadowed: true } : {};
  // Deferred: the passes so far are kept; the dummy engine answers 450 at RCPT and logs the envelope.
  if (deferred) return verdict('greylist', { reason: 'greylist', record: rec, greylist, ...sh });
  // The early passes are kept; PASS NEW waits for the deep tests (afterDeep()).
  if (deepTodo(rec)) return verdict('deep', { reason: 'deep', record: rec, greylist, ...sh });
  if (shadowed) return verdict('handoff', { name: 'shadow', record: rec, greylist, ...sh });
  return verdict('handoff', { name: 'new', record: rec, greylist, passNew: true });
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

// ---- at the end of a dummy session that ran deep tests ----------------------

export interface DeepFacts {
  readonly now: number;
  readonly personality: Personality;
  readonly record: VerdictRecord | null;
  readonly deep: DeepTests;
  /** The session had an enforced failure (it earns nothing here). */
  readonly enforced: boolean;
}

export interface DeepVerdict {
  readonly record: VerdictRecord | null;
  /** The deep tests that passed, for PASS NEW; null: no PASS NEW. */
  readonly passNew: readonly string[] | null;
}

export function afterDeep(f: DeepFacts): DeepVerdict {
  const deep = f.deep;
  if (deep.failed !== 0) {
    // As the early tests: the failed test loses its pass; nothing else is written.
    const failed = DEEP_TESTS.filter((t) => (deep.failed & DEEP_BIT[t]) !== 0).map((t) => TestIndex[t]);
    return { record: cleared(f.record, failed), passNew: null };
  }
  // A client that failed an early test (enforced) earns nothing (postscreen: any FAIL clears every PASS).
  if (deep.passed === 0 || f.enforced) return { record: null, passNew: null };
  const changes: Array<readonly [number, number]> = [];
  const passed: string[] = [];
  for (const t of DEEP_TESTS) {
    const until = deep.passUntil(t, f.now);
    if (until > 0) {
      changes.push([TestIndex[t], until]);
      passed.push(t);
    }
  }
  const rec = withPasses(f.record, changes);
  // A shadowed deep failure (its short pass written, as ignore's) is no PASS NEW.
  return { record: rec, passNew: deep.complete && !(deep.shadowed > 0) && allPassed(rec, f.personality.enabled, f.now) ? passed : null };
}



