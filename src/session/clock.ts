/*
 * session/clock.ts - the time source of the sessions: now() and one-shot
 * timers, injectable.
 *
 * Exports: Clock, TimerHandle, realClock.
 * Sessions read the time and arm their timers only through ctx.clock: the
 * screener passes realClock (Date.now and Node's timers, with the argument
 * passed through so that no closure is made per connection), and the
 * session tests a fake clock they advance by hand, so every path of the
 * state machine can be driven without waiting.
 */
export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  /** Call fn(a, b) once after ms milliseconds. */
  setTimeout<A, B = undefined>(fn: (a: A, b: B) => void, ms: number, a: A, b?: B): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

export const realClock: Clock = {
  now: Date.now,
  setTimeout: (fn, ms, a, b) => setTimeout(fn, ms, a, b),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
