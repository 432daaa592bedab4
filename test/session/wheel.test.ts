/*
 * session/wheel.ts on a fake clock: a deadline of a second or more fires
 * never early and at most one slot late, in due order; a cancelled one never
 * fires (also when cancelled by an earlier deadline of the same tick); long
 * deadlines survive turns of the wheel; a stalled loop fires everything due
 * at once; the interval runs only while an entry is armed; short deadlines
 * go to the host's own timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerWheel, WHEEL_MIN_MS, WHEEL_RESOLUTION_MS, type WheelHost } from '../../src/session/wheel.js';

/** A fake host: time moves only through advance(), which runs the interval at each resolution step. */
function fakeHost(start = 1_000_000): WheelHost & { t: number; intervals: number; short: Array<{ ms: number; cleared: boolean }>; advance(ms: number, step?: number): void; wheel?: TimerWheel } {
  let tick: (() => void) | null = null;
  const h = {
    t: start,
    intervals: 0,
    short: [] as Array<{ ms: number; cleared: boolean }>,
    now: () => h.t,
    setInterval: (fn: () => void) => {
      assert.equal(tick, null, 'one interval at a time');
      tick = fn;
      h.intervals++;
      return 'interval';
    },
    clearInterval: (x: unknown) => {
      assert.equal(x, 'interval');
      tick = null;
    },
    setTimeout: (_fn: unknown, ms: number) => {
      const r = { ms, cleared: false };
      h.short.push(r);
      return r;
    },
    clearTimeout: (x: unknown) => {
      (x as { cleared: boolean }).cleared = true;
    },
    /** Move time forward ms, running the interval every `step` ms (a late loop: a larger step). */
    advance(ms: number, step = WHEEL_RESOLUTION_MS) {
      for (let done = 0; done < ms; ) {
        const d = Math.min(step, ms - done);
        h.t += d;
        done += d;
        (tick as (() => void) | null)?.();
      }
    },
  };
  return h;
}

test('a deadline fires after its time, never before, and at most one slot late', () => {
  for (const ms of [1000, 1001, 1049, 1099, 2500, 7777, 60_000, 300_000]) {
    for (const offset of [0, 1, 37, 99]) {
      const host = fakeHost(1_000_000 + offset);
      const w = new TimerWheel(host);
      const start = host.t;
      let firedAt = -1;
      w.setTimeout((a: string) => {
        assert.equal(a, 'arg');
        firedAt = host.t;
      }, ms, 'arg');
      host.advance(ms + 3 * WHEEL_RESOLUTION_MS, 10);
      assert.ok(firedAt >= start + ms, `${ms} ms (offset ${offset}) fired ${firedAt - start} ms after arming: early`);
      assert.ok(firedAt <= start + ms + WHEEL_RESOLUTION_MS, `${ms} ms (offset ${offset}) fired ${firedAt - start} ms after arming: more than a slot late`);
      assert.equal(w.size, 0);
    }
  }
});

test('deadlines fire once each, in due order, with both arguments', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const fired: string[] = [];
  const fn = (a: string, b: number): void => {
    fired.push(`${a}${b}`);
  };
  w.setTimeout(fn, 1250, 'c', 3);
  w.setTimeout(fn, 1210, 'b', 2);
  w.setTimeout(fn, 1200, 'a', 1);
  w.setTimeout(fn, 5000, 'd', 4);
  // One late run of the loop: all three of the first are due at once.
  host.advance(1400, 1400);
  assert.deepEqual(fired, ['a1', 'b2', 'c3']);
  host.advance(10_000);
  assert.deepEqual(fired, ['a1', 'b2', 'c3', 'd4']);
});

test('a cancelled deadline never fires, also when an earlier one of the same tick cancels it', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const fired: string[] = [];
  const x = w.setTimeout((a: string) => fired.push(a), 2000, 'x');
  w.setTimeout((a: string) => fired.push(a), 2000, 'y');
  w.clearTimeout(x);
  w.clearTimeout(x); // twice: harmless
  let late: unknown = null;
  w.setTimeout(() => {
    fired.push('first');
    w.clearTimeout(late);
  }, 3000, null);
  late = w.setTimeout((a: string) => fired.push(a), 3050, 'late');
  host.advance(3200, 3200);
  assert.deepEqual(fired, ['y', 'first']);
  assert.equal(w.size, 0);
  // A handle that already fired: clearing it changes nothing.
  const z = w.setTimeout((a: string) => fired.push(a), 1000, 'z');
  const keep = w.setTimeout((a: string) => fired.push(a), 1000, 'keep');
  host.advance(1100);
  w.clearTimeout(z);
  assert.deepEqual(fired, ['y', 'first', 'z', 'keep']);
  void keep;
});

test('cancelling from the middle of a slot keeps the others (swap with the last)', () => {
  const host = fakeHost(2_000_000);
  const w = new TimerWheel(host);
  const fired: number[] = [];
  const hs = [];
  for (let i = 0; i < 10; i++) hs.push(w.setTimeout((n: number) => fired.push(n), 1500, i));
  for (const i of [0, 4, 9, 5]) w.clearTimeout(hs[i]);
  assert.equal(w.size, 6);
  host.advance(1700);
  assert.deepEqual(fired.sort((a, b) => a - b), [1, 2, 3, 6, 7, 8]);
});

test('a deadline longer than a turn of the wheel waits its turns', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  let fired = 0;
  w.setTimeout(() => fired++, 120_000, null);
  host.advance(119_800);
  assert.equal(fired, 0);
  host.advance(400);
  assert.equal(fired, 1);
});

test('a loop stalled for longer than a turn fires every due deadline and keeps the rest', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const fired: number[] = [];
  for (const ms of [1000, 30_000, 70_000, 200_000]) w.setTimeout((n: number) => fired.push(n), ms, ms);
  host.advance(100_000, 100_000);
  assert.deepEqual(fired, [1000, 30_000, 70_000]);
  host.advance(100_100);
  assert.deepEqual(fired, [1000, 30_000, 70_000, 200_000]);
});

test('the interval runs only while a deadline is armed', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const a = w.setTimeout(() => undefined, 5000, null);
  w.setTimeout(() => undefined, 5000, null);
  assert.equal(host.intervals, 1);
  w.clearTimeout(a);
  host.advance(6000);
  assert.equal(w.size, 0);
  // Stopped: a new deadline starts it again, and it fires on time.
  let fired = 0;
  w.setTimeout(() => fired++, 1000, null);
  assert.equal(host.intervals, 2);
  host.advance(1100);
  assert.equal(fired, 1);
});

test('a deadline armed by a firing one is kept (the interval goes on)', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const fired: string[] = [];
  w.setTimeout(() => {
    fired.push('one');
    w.setTimeout(() => fired.push('two'), 2000, null);
  }, 1000, null);
  host.advance(1100);
  assert.deepEqual(fired, ['one']);
  host.advance(2100);
  assert.deepEqual(fired, ['one', 'two']);
});

test('deadlines under a second go to the host timers, and are cleared there', () => {
  const host = fakeHost();
  const w = new TimerWheel(host);
  const h = w.setTimeout(() => undefined, WHEEL_MIN_MS - 1, null);
  assert.deepEqual(host.short, [{ ms: WHEEL_MIN_MS - 1, cleared: false }]);
  assert.equal(w.size, 0);
  assert.equal(host.intervals, 0);
  w.clearTimeout(h);
  assert.equal(host.short[0]?.cleared, true);
});
