/*
 * server/stress.ts - the stress state (watermarks with hysteresis) and the two
 * personalities, normal and stress, that new connections are served with.
 *
 * Exports: watermarks(), stressLimit(), StressState, Transition, Watermarks,
 *          ServerCtx, stressValues(), stressConfig(),
 *          makePersonalities(), personalityFor(), noteOpen().
 * As postscreen (postscreen.c: hiwat 0.9, lowat 0.7 of postscreen_pre_queue_limit),
 * the screener enters STRESS when the open connections reach `stress.enter_at`
 * of the connection limit and leaves it only when they fall to `stress.leave_at`
 * or below: the gap keeps a server hovering at the threshold from flapping. Each
 * transition is one STRESS event. Both personalities are whole Configs built
 * once at start; a connection takes the one current at accept (or its
 * listener's pinned one, as Postfix's `-o stress=yes` in master.cf) and keeps it
 * to the end, so a session never sees its timeouts change under it.
 */
import type { Config, ListenPersonality } from '../config/types.js';
import type { DeepOptions } from '../checks/deep.js';
import { deepEnabled, deepOptions } from '../session/deep.js';
import { STRESS_KEYS } from '../config/schema.js';
import { setPath } from '../config/raw.js';
import { STRESS_DEFAULTS } from '../config/validate.js';
import { EV } from '../log/events.js';
import type { Ctx } from '../session/state.js';
import type { Personality, PersonalityConfig } from '../session/generation.js';
import { connectionCeiling } from './fdlimit.js';

export interface Watermarks {
  /** Open connections at which stress begins (inclusive). */
  readonly enter: number;
  /** Open connections at or below which stress ends; always below `enter`. */
  readonly leave: number;
  /** The connection limit the shares are taken of. */
  readonly limit: number;
}

/** watermarks - the percentages of `limit` as connection counts; enter >= 1, leave < enter. */
export function watermarks(limit: number, enterPct: number, leavePct: number): Watermarks {
  const enter = Math.max(1, Math.ceil((limit * enterPct) / 100));
  const leave = Math.max(0, Math.min(enter - 1, Math.floor((limit * leavePct) / 100)));
  return { enter, leave, limit };
}

/**
 * stressLimit - the limit the watermarks are shares of: limits.max_connections,
 * or what the file descriptor limit allows when that is lower (the listener
 * refuses clients there first, see server/fdlimit.ts).
 */
export function stressLimit(maxConnections: number, fdLimit: number | null): number {
  if (fdLimit === null) return maxConnections;
  return Math.max(1, Math.min(maxConnections, connectionCeiling(fdLimit)));
}

export type Transition = 'enter' | 'leave' | null;

/** The stress state machine. Pure: the caller tells it the open count and logs what it returns. */
export class StressState {
  readonly marks: Watermarks;
  active = false;

  constructor(marks: Watermarks) {
    this.marks = marks;
  }

  /** update - the open connection count changed; returns the transition it caused, or null. */
  update(count: number): Transition {
    if (!this.active) {
      if (count < this.marks.enter) return null;
      this.active = true;
      return 'enter';
    }
    if (count > this.marks.leave) return null;
    this.active = false;
    return 'leave';
  }
}

/** The server's context: the sessions' runtime state plus the stress state, which only the server reads. */
export interface ServerCtx extends Ctx {
  /** Whether new connections on `auto` listeners get the stress personality (noteOpen()). */
  stressState: StressState;
  /**
   * Connections open in the other workers of this host, as the primary last said (server/worker.ts);
   * always 0 in a single process. noteOpen() adds it, so the stress state follows the host.
   */
  others: number;
  /** workers_accept: shared: the listener refuses at limits.max_connections counting `others` too (no primary refuses for it). */
  sharedAccept?: boolean;
  /** Called whenever the open count may have changed (noteOpen()): a shared-accept worker reports its counts (server/worker.ts). */
  onCount?: () => void;
}

function valueAt(config: Config, key: string): unknown {
  let o: unknown = config;
  for (const p of key.split('.')) o = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[p] : undefined;
  return o;
}

/**
 * stressValues - the stress value of every key that has one, in schema order:
 * the file's `stress:` override; else the schema's stress default, but never
 * above the normal value (smaller is stricter for every numeric key with a
 * stress default, so `pregreet.wait: 1s` does not make stress slower); else
 * ("normal" rows) the normal value.
 */
export function stressValues(config: Config): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const spec of STRESS_KEYS) {
    const normal = valueAt(config, spec.key);
    if (Object.hasOwn(config.stress.overrides, spec.key)) {
      out.set(spec.key, config.stress.overrides[spec.key]);
      continue;
    }
    const def = STRESS_DEFAULTS.get(spec.key);
    out.set(spec.key, def !== undefined && typeof normal === 'number' ? Math.min(def, normal) : normal);
  }
  return out;
}

/** stressConfig - a copy of `config` with every stress value in place. */
export function stressConfig(config: Config): Config {
  const c = structuredClone(config);
  for (const [key, v] of stressValues(config)) setPath(c as unknown as Record<string, unknown>, key, v);
  return c;
}

/**
 * makePersonalities - the normal and the stress personality. `early` are the
 * enabled tests that no stress value switches (pregreet, DNSBL, greylist);
 * the deep tests are compiled per personality, since stress may skip them.
 */
export function makePersonalities(config: Config, early: readonly number[]): { normal: PersonalityConfig; stress: PersonalityConfig } {
  const make = (name: 'normal' | 'stress', c: Config): PersonalityConfig => ({
    name, stress: name === 'stress', config: c, enabled: [...early, ...deepEnabled(c)], deep: deepOptions(c),
  });
  return { normal: make('normal', config), stress: make('stress', stressConfig(config)) };
}

/** personalityFor - what a connection accepted now on a listener with `pinned` is served with. */
export function personalityFor(ctx: ServerCtx, pinned: ListenPersonality): Personality {
  const p = ctx.gen.personalities;
  switch (pinned) {
    case 'auto':
      return ctx.stressState.active ? p.stress : p.normal;
    case 'normal':
      return p.normal;
    case 'stress':
      return p.stress;
    default: {
      const never: never = pinned;
      throw new Error(`unknown listener personality ${String(never)}`);
    }
  }
}

/**
 * noteOpen - the open connection count is now `count` (at accept: including the
 * new one; at a close: without it). Logs STRESS on a transition: enter at warn
 * (as Postfix's master warns when a service reaches its process limit), leave at info.
 */
export function noteOpen(ctx: ServerCtx, count: number): void {
  const st = ctx.stressState;
  ctx.onCount?.();
  count += ctx.others;
  const t = st.update(count);
  if (t === null) return;
  const rec = { state: t, count, limit: st.marks.limit, threshold: t === 'enter' ? st.marks.enter : st.marks.leave };
  ctx.emitter.emit(EV.STRESS, rec, t === 'enter' ? 'warn' : undefined);
}
