/*
 * cache/store.ts - the verdict store contract and its versioned record codec.
 *
 * Exports: VerdictRecord, VerdictStore, SharedTier, newRecord(), withPasses(), encodeRecord(),
 *          decodeRecord(), allPassed().
 * A record is one pass-until time (epoch ms, 0 = none) per row of checks/tests.ts.
 * Greylist state is kept under "net:<CIDR>" keys in the same store, in the
 * greylist row (negative: first seen; positive: passed until).
 * Text form (snapshot file, Redis values: cache/redis-keys.ts): "1:<t0>;<t1>;..." where 1 is the
 * version; fewer fields than rows read as 0 (postscreen's psc_parse_tests does
 * the same), more fields than rows are ignored (a newer writer).
 */
import { TEST_COUNT } from '../checks/tests.js';
import { ScreenError } from '../util/errors.js';
import type { GreylistDecision, GreylistOptions } from '../checks/greylist.js';

/**
 * A stored record is a value: read-only to whoever got it from a store. A
 * new verdict is a new record (withPasses()), handed to set(); nothing edits
 * a record in place, so a shared tier can hold the same value.
 */
export interface VerdictRecord {
  readonly [test: number]: number;
  readonly length: number;
}

export interface VerdictStore {
  /** Synchronous read of the memory tier; undefined when the client is unknown. */
  get(client: string): VerdictRecord | undefined;
  /** Store `rec` under `client`; the store owns it from now on. */
  set(client: string, rec: VerdictRecord): void;
  delete(client: string): void;
  /**
   * Greylisting, atomically: read the state of `network`, decide, store the
   * new state, return the decision (two connections from one network at once
   * see one first-seen time).
   */
  observe(network: string, now: number, opts: GreylistOptions): GreylistDecision;
  readonly size: number;
  entries(): IterableIterator<[string, VerdictRecord]>;
  /** The shared tier behind this store (cache/tiered.ts over cache/redis.ts), when there is one. */
  readonly shared?: SharedTier;
}

/**
 * A tier shared by several screeners (Redis), behind the memory tier: it answers later, within
 * `timeoutMs`, or not at all. Callbacks run once, never synchronously, with an owner (no
 * closure per session); a failure or a late answer reads as null (no record, no decision).
 */
export interface SharedTier {
  /** Connected: a lookup is worth starting (otherwise decide from memory at once). */
  readonly up: boolean;
  /** The deadline of each answer, ms. */
  readonly timeoutMs: number;
  /** Counts since start by outcome (lookups, hits, misses, errors, timeouts, observes, writes, flushed, dropped): for /metrics. */
  readonly counts: Readonly<Record<string, number>>;
  /** `client`'s shared record, or null. */
  lookup<T>(client: string, owner: T, done: (owner: T, rec: VerdictRecord | null) => void): void;
  /** Keep a record lookup() gave in the memory tier only (it is the shared one already). */
  keep(client: string, rec: VerdictRecord): void;
  /** Greylisting, atomically across every screener on the tier; null: decide locally (observe()). */
  observeShared<T>(network: string, now: number, opts: GreylistOptions, owner: T, done: (owner: T, d: GreylistDecision | null) => void): void;
  close(): Promise<void>;
}

/** A fresh record, every test never passed: the caller's to fill in until it hands it to a store. */
export function newRecord(): Float64Array {
  return new Float64Array(TEST_COUNT);
}

/** A new record: `base` (or none) with `changes` applied, as [test index, pass-until] pairs. */
export function withPasses(base: VerdictRecord | null | undefined, changes: ReadonlyArray<readonly [number, number]>): VerdictRecord {
  const r = new Float64Array(TEST_COUNT);
  if (base != null) for (let i = 0; i < TEST_COUNT && i < base.length; i++) r[i] = base[i] ?? 0;
  for (const [i, v] of changes) r[i] = v;
  return r;
}

export function encodeRecord(rec: VerdictRecord): string {
  let s = '1:';
  for (let i = 0; i < rec.length; i++) {
    if (i > 0) s += ';';
    s += rec[i] === 0 ? '0' : String(rec[i]);
  }
  return s;
}

export function decodeRecord(text: string): VerdictRecord {
  if (!text.startsWith('1:')) throw new ScreenError('SCR_ERR_CACHE', `unknown cache record version in "${text.slice(0, 20)}"`, { value: text.slice(0, 40) });
  const rec = new Float64Array(TEST_COUNT);
  const fields = text.slice(2).split(';');
  for (let i = 0; i < TEST_COUNT && i < fields.length; i++) {
    const f = fields[i] as string;
    // Negative values are greylist first-seen times (checks/greylist.ts).
    if (!/^-?\d{1,15}$/.test(f)) throw new ScreenError('SCR_ERR_CACHE', `bad cache record field ${i} "${f.slice(0, 20)}"`, { value: text.slice(0, 40) });
    rec[i] = Number(f);
  }
  return rec;
}

/** True when every test in `enabled` (indexes) has a pass that has not expired at `now`. */
export function allPassed(rec: VerdictRecord, enabled: readonly number[], now: number): boolean {
  for (const i of enabled) if (!((rec[i] ?? 0) > now)) return false;
  return enabled.length > 0;
}
