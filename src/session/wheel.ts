/*
 * session/wheel.ts - one coarse timer wheel for the sessions' deadlines.
 *
 * Exports: TimerWheel, WHEEL_RESOLUTION_MS, WHEEL_MIN_MS.
 * The screener's Clock (session/clock.ts). A Node Timeout per connection
 * costs ~170 B (the Timeout, ~120 B, and the array of its two arguments);
 * a deadline here is one entry of six fields in a slot array, and one Node
 * interval drives every entry while any is armed.
 * Resolution: deadlines of WHEEL_MIN_MS (1 s) or more go on the wheel, whose
 * slots are WHEEL_RESOLUTION_MS (100 ms) apart; such a deadline fires never
 * early and at most one slot (100 ms) late, plus whatever delays the event
 * loop. postscreen's own deadlines are whole seconds; the greet wait, the
 * command time limit and the handoff timeouts are seconds by default.
 * Shorter ones (sub-second waits in tests, a 200 ms greet wait) keep a Node
 * timer each, so they stay exact.
 * An entry lives in the slot of the first tick at or after its due time
 * (ceil(due / resolution) modulo the slot count): the tick of a slot fires
 * the entries whose time has come, and leaves the ones due in a later turn
 * of the wheel. Cancelling swaps the last entry of the slot into the hole:
 * O(1), and a cancelled deadline keeps nothing.
 */
import type { Clock, TimerHandle } from './clock.js';

export const WHEEL_RESOLUTION_MS = 100;
export const WHEEL_MIN_MS = 1000;
/** Slots in one turn (a power of two): 512 x 100 ms = 51.2 s; longer deadlines are seen once a turn until due. */
const SLOTS = 512;

class Entry {
  fn: ((a: unknown, b: unknown) => void) | null;
  a: unknown;
  b: unknown;
  due: number;
  /** Slot number, or -1 once fired or cancelled. */
  slot: number;
  idx: number;
  constructor(fn: (a: unknown, b: unknown) => void, a: unknown, b: unknown, due: number, slot: number, idx: number) {
    this.fn = fn;
    this.a = a;
    this.b = b;
    this.due = due;
    this.slot = slot;
    this.idx = idx;
  }
}

/** What drives the wheel: the time and Node's timers (a fake pair in tests). */
export interface WheelHost {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(h: unknown): void;
  setTimeout(fn: (a: unknown, b: unknown) => void, ms: number, a: unknown, b: unknown): unknown;
  clearTimeout(h: unknown): void;
}

const nodeHost: WheelHost = {
  now: Date.now,
  // Unref'd: every session with a deadline has its socket open, which keeps the process alive;
  // a deadline left behind by a bug does not hold the process at exit.
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (fn, ms, a, b) => setTimeout(fn, ms, a, b),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class TimerWheel implements Clock {
  readonly #host: WheelHost;
  readonly #slots: Entry[][] = [];
  /** Entries armed on the wheel. */
  #count = 0;
  /** The last tick processed (time / resolution, rounded down). */
  #tick = 0;
  #interval: unknown = null;
  /** Entries due in the tick being processed (reused: the wheel never runs two ticks at once). */
  readonly #due: Entry[] = [];

  constructor(host: WheelHost = nodeHost) {
    this.#host = host;
    for (let i = 0; i < SLOTS; i++) this.#slots.push([]);
    this.now = host.now;
  }

  readonly now: () => number;

  /** Entries on the wheel (not the short deadlines on Node timers). */
  get size(): number {
    return this.#count;
  }

  setTimeout<A, B = undefined>(fn: (a: A, b: B) => void, ms: number, a: A, b?: B): TimerHandle {
    if (!(ms >= WHEEL_MIN_MS)) return this.#host.setTimeout(fn as (a: unknown, b: unknown) => void, ms, a, b);
    const due = this.#host.now() + ms;
    if (this.#count === 0) {
      // Ticks before this one have nothing left to fire.
      this.#tick = Math.floor(this.#host.now() / WHEEL_RESOLUTION_MS);
      this.#interval = this.#host.setInterval(() => this.advance(), WHEEL_RESOLUTION_MS);
    }
    const slot = Math.ceil(due / WHEEL_RESOLUTION_MS) & (SLOTS - 1);
    const list = this.#slots[slot] as Entry[];
    const e = new Entry(fn as (a: unknown, b: unknown) => void, a, b, due, slot, list.length);
    list.push(e);
    this.#count++;
    return e;
  }

  clearTimeout(h: TimerHandle): void {
    if (h instanceof Entry) this.#remove(h);
    else this.#host.clearTimeout(h);
  }

  #remove(e: Entry): void {
    // Also when it has left its slot to fire in this tick: cancelled before its turn, it does not fire.
    e.fn = null;
    e.a = e.b = undefined;
    if (e.slot < 0) return;
    const list = this.#slots[e.slot] as Entry[];
    const last = list.pop() as Entry;
    if (last !== e) {
      list[e.idx] = last;
      last.idx = e.idx;
    }
    e.slot = -1;
    if (--this.#count === 0 && this.#interval !== null) {
      this.#host.clearInterval(this.#interval);
      this.#interval = null;
    }
  }

  /** Fire every entry whose time has come (the interval calls this every resolution). */
  advance(): void {
    const now = this.#host.now();
    const cur = Math.floor(now / WHEEL_RESOLUTION_MS);
    // A loop stalled for more than a turn: one pass over every slot is enough.
    const from = Math.max(this.#tick + 1, cur - SLOTS + 1);
    const due = this.#due;
    for (let t = from; t <= cur; t++) {
      const list = this.#slots[t & (SLOTS - 1)] as Entry[];
      for (let i = 0; i < list.length; ) {
        const e = list[i] as Entry;
        if (e.due <= now) {
          due.push(e);
          const last = list.pop() as Entry;
          if (last !== e) {
            list[i] = last;
            last.idx = i;
          }
          e.slot = -1;
          this.#count--;
        } else {
          i++;
        }
      }
    }
    this.#tick = cur;
    if (this.#count === 0 && this.#interval !== null) {
      this.#host.clearInterval(this.#interval);
      this.#interval = null;
    }
    if (due.length === 0) return;
    // In due order, as Node's timers would fire them.
    if (due.length > 1) due.sort(byDue);
    for (let i = 0; i < due.length; i++) {
      const e = due[i] as Entry;
      const fn = e.fn;
      const a = e.a;
      const b = e.b;
      e.fn = null;
      e.a = e.b = undefined;
      due[i] = undefined as unknown as Entry;
      if (fn === null) continue;
      try {
        fn(a, b);
      } catch (err) {
        // As an uncaught exception in a Node timer would: the rest still fire first.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    due.length = 0;
  }
}

function byDue(x: Entry, y: Entry): number {
  return x.due - y.due;
}
