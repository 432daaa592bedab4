/*
 * test/fuzz/harness.ts - what every fuzz target shares: its shape, the run
 * loop over fast-check, byte mutations for near-valid input, the documented
 * error check and the linear-time check.
 *
 * Exports: FuzzTarget, LinearShape, RunStats, LinearResult, runTarget(t, cases, seed),
 *   retime(t, x), linearCheck(shape, scale), mutated(valid, dict), chunked(buf, cuts),
 *   only(code, fn), isScreenError(e, code).
 * A target's check() throws (an AssertionError or the parser's own unexpected
 * error) when a property fails; the parser's documented error (a ScreenError
 * with its code) is caught inside the check, never by the harness, so any
 * other exception counts as a failure. Used by test/fuzz/fuzz.test.ts (a few
 * thousand cases each, in `npm test`) and scripts/fuzz.ts (`npm run fuzz`,
 * 1,000,000 each).
 */
import fc from 'fast-check';
import { ScreenError, type ErrorCode } from '../../src/util/errors.js';

export interface LinearShape {
  /** A worst-case shape: a long header without terminator, many tiny chunks, ... */
  shape: string;
  /** Input size of the small run; the large run is 10 times as big. */
  n: number;
  /** Builds the input of size n (not timed) and returns the work to time. */
  make(n: number): () => void;
}

export interface FuzzTarget<T> {
  name: string;
  /** The functions it drives, for the report. */
  what: string;
  arb: fc.Arbitrary<T>;
  check(x: T): void;
  /** A short description of an input, for the slowest case. */
  show(x: T): string;
  linear: LinearShape[];
}

export interface RunStats {
  name: string;
  cases: number;
  failures: number;
  /** The (shrunk) failing input and the error, when a property failed. */
  counterexample: string | null;
  error: string | null;
  slowestMs: number;
  slowestInput: string;
  /** The slowest input run again (min of 5): GC pauses and scheduling do not repeat, real cost does. */
  slowestRetimedMs: number;
  wallMs: number;
  seed: number;
}

export function isScreenError(e: unknown, code: ErrorCode): e is ScreenError {
  return e instanceof ScreenError && e.code === code;
}

/** only - run fn; its documented ScreenError (code) becomes the returned error, anything else propagates. */
export function only<R>(code: ErrorCode, fn: () => R): { ok: true; value: R } | { ok: false; error: ScreenError } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (isScreenError(e, code)) return { ok: false, error: e };
    throw e;
  }
}

/** retime - min of 5 runs of one input, ms. */
export function retime<T>(t: FuzzTarget<T>, x: T): number {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const a = performance.now();
    try {
      t.check(x);
    } catch {
      // The run loop has already reported it.
    }
    best = Math.min(best, performance.now() - a);
  }
  return best;
}

/** runTarget - `cases` generated inputs through t.check, timing each; stops at the first failure (shrunk). */
export function runTarget<T>(t: FuzzTarget<T>, cases: number, seed: number, progress?: (done: number) => void): RunStats {
  let slowest = -1;
  let slowInput: T | undefined;
  let done = 0;
  const prop = fc.property(t.arb, (x) => {
    const a = performance.now();
    try {
      t.check(x);
    } finally {
      const d = performance.now() - a;
      if (d > slowest) {
        slowest = d;
        slowInput = x;
      }
      if (progress !== undefined && ++done % 100_000 === 0) progress(done);
    }
  });
  const t0 = performance.now();
  const r = fc.check(prop, { numRuns: cases, seed });
  const wallMs = performance.now() - t0;
  const failed = r.failed;
  return {
    name: t.name,
    cases: r.numRuns,
    failures: failed ? 1 : 0,
    counterexample: failed && r.counterexample !== null ? t.show(r.counterexample[0]) : null,
    error: failed ? String((r.errorInstance as Error | undefined)?.stack ?? r.errorInstance).slice(0, 2000) : null,
    slowestMs: Math.max(0, slowest),
    slowestInput: slowInput === undefined ? '' : t.show(slowInput),
    slowestRetimedMs: slowInput === undefined ? 0 : retime(t, slowInput),
    wallMs,
    seed,
  };
}

export interface LinearResult {
  shape: string;
  n: number;
  smallMs: number;
  largeMs: number;
  /** largeMs / smallMs for 10 times the input: about 10 when linear, 100 when quadratic. */
  ratio: number;
}

/** calibrate - how many calls of fn take at least ~10 ms together. */
function calibrate(fn: () => void): number {
  let reps = 1;
  for (;;) {
    const a = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const d = performance.now() - a;
    if (d >= 10 || reps >= 1 << 16) return reps;
    reps = Math.min(1 << 16, Math.max(reps * 2, Math.ceil((reps * 12) / Math.max(d, 0.01))));
  }
}

/** batch - ms per call over `reps` calls. */
function batch(fn: () => void, reps: number): number {
  const a = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - a) / reps;
}

/**
 * linearCheck - time the shape at n and 10 n, ms per call: batches of at least ~10 ms, small
 * and large interleaved (both see the same load on a shared machine), the min of 7 each.
 */
export function linearCheck(s: LinearShape, scale = 1): LinearResult {
  const n = Math.max(1, Math.round(s.n * scale));
  const small = s.make(n);
  const large = s.make(n * 10);
  const rs = calibrate(small);
  const rl = calibrate(large);
  let smallMs = Infinity;
  let largeMs = Infinity;
  for (let i = 0; i < 7; i++) {
    smallMs = Math.min(smallMs, batch(small, rs));
    largeMs = Math.min(largeMs, batch(large, rl));
  }
  return { shape: s.shape, n, smallMs, largeMs, ratio: largeMs / Math.max(smallMs, 1e-6) };
}

/** One edit of a valid input. */
interface Edit {
  kind: number;
  at: number;
  len: number;
  byte: number;
  tok: number;
}

const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.nat(7), at: fc.nat(), len: fc.integer({ min: 1, max: 24 }), byte: fc.nat(255), tok: fc.nat(),
});

function applyEdits(base: Buffer, edits: readonly Edit[], dict: readonly Buffer[]): Buffer {
  let b = base;
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    const tok = dict.length === 0 ? Buffer.from([e.byte]) : (dict[e.tok % dict.length] as Buffer);
    switch (e.kind) {
      case 0: { // overwrite one byte
        if (at < b.length) {
          b = Buffer.from(b);
          b[at] = e.byte;
        }
        break;
      }
      case 1: // insert a byte
        b = Buffer.concat([b.subarray(0, at), Buffer.from([e.byte]), b.subarray(at)]);
        break;
      case 2: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
        break;
      case 3: // repeat a range
        b = Buffer.concat([b.subarray(0, at + e.len), b.subarray(at, at + e.len), b.subarray(at + e.len)]);
        break;
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: // insert a token
        b = Buffer.concat([b.subarray(0, at), tok, b.subarray(at)]);
        break;
      case 6: // overwrite with a token
        b = Buffer.concat([b.subarray(0, at), tok, b.subarray(at + tok.length)]);
        break;
      default: { // flip one bit
        if (at < b.length) {
          b = Buffer.from(b);
          b[at] = (b[at] as number) ^ (1 << (e.byte & 7));
        }
      }
    }
  }
  return b;
}

/** mutated - valid inputs with 1..5 edits (bytes, ranges, tokens of the format from dict). */
export function mutated(valid: fc.Arbitrary<Buffer>, dict: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.tuple(valid, fc.array(editArb, { minLength: 1, maxLength: 5 })).map(([b, edits]) => applyEdits(b, edits, dict));
}

/** chunked - buf cut at the given offsets (taken modulo its length, sorted): the pieces, in order, covering it. */
export function chunked(buf: Buffer, cuts: readonly number[]): Buffer[] {
  if (buf.length === 0) return [buf];
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Bytes as a short printable string for reports. */
export function showBytes(b: Buffer, max = 120): string {
  const s = JSON.stringify(b.subarray(0, max).toString('latin1'));
  return b.length > max ? `${s}... (${b.length} bytes)` : `${s} (${b.length} bytes)`;
}
