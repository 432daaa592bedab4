/*
 * log/emit.ts - one way to log an event: count it, then log it at its level.
 *
 * Exports: Emitter, Fields, EmitObserver, LookupOutcome.
 *   new Emitter(logger, counts?)  counts: the object the counts go into (the
 *                                 screener shares it as ctx.counters)
 *   emit(name, fields?, level?)   count `name`; log `{event: name, ...fields}` at
 *                                 `level`, or the level of its row in log/events.ts
 *   enabled(name, level?)         would it be logged: check before building a record
 *   counts                        the counts by event name, read-only (stats, a
 *                                 metrics endpoint); every emit counts here
 *   would                         of those, the shadowed ones (fields.would set:
 *                                 mode shadow), by event name and would-have
 *                                 outcome: would.DNSBL.reject
 *   observer                      null, or who sees every event with its fields
 *                                 and subject (the admin listener's metrics,
 *                                 server/metrics.ts); also the DNSBL lookups
 * While an observer is set, enabled() is also true for the events it wants,
 * so that callers build the record it reads even when the level is off; with
 * none the observer costs one null check per event.
 * Hot path: the count is one property increment; when the level is off
 * nothing else happens (an idle zombie's DISCONNECT must not build a record
 * when info is off). When it is on, `fields` is logged as it is, not copied:
 * each event has a pino child logger (made at its first line) whose binding
 * writes `"event":"NAME"` ahead of the fields, as a spread record did, and
 * `msg` is the event's postscreen text (log/postscreen-format.ts), so a JSON
 * line reads as one line in pino-pretty and the text formats need not render it again.
 */
import type { Logger } from 'pino';
import { eventSpec, type EventLevel, type EventName } from './events.js';
import { formatEvent } from './postscreen-format.js';

export type Fields = Readonly<Record<string, unknown>>;

/** How one DNSBL lookup of a site ended (checks/dnsbl.ts), for metrics. */
export type LookupOutcome = 'listed' | 'clean' | 'error' | 'overload';

/** Sees every event (with the session that emitted it, when one did) and every DNSBL lookup. */
export interface EmitObserver {
  /** Does it read the fields of `name`? Callers then build the record even when the level is off. */
  wants(name: EventName): boolean;
  event(name: EventName, fields: Fields, subject: object | undefined): void;
  dnsblLookup(site: string, outcome: LookupOutcome, ms: number): void;
}

interface Slot {
  readonly level: EventLevel;
  /** `event` bound; null until the event's first line. */
  log: Logger | null;
}

const NO_FIELDS: Fields = Object.freeze({});

export class Emitter {
  readonly #log: Logger;
  readonly #counts: Record<string, number>;
  readonly #slots = new Map<string, Slot>();
  /** Who sees every event besides the log (server/metrics.ts), or null. */
  observer: EmitObserver | null = null;
  readonly #would: Record<string, Record<string, number>> = {};

  constructor(log: Logger, counts: Record<string, number> = {}) {
    this.#log = log;
    this.#counts = counts;
  }

  /** Counts by event name since start; the object stays the same (the screener's ctx.counters). */
  get counts(): Readonly<Record<string, number>> {
    return this.#counts;
  }

  /** Shadowed events (with `would`) by event name and would-have outcome: what enforce would have done, counted apart. */
  get would(): Readonly<Record<string, Readonly<Record<string, number>>>> {
    return this.#would;
  }

  /** Count one `name` and log it at `level` (default: its row's) with `fields`; `subject`: the session, for the observer. */
  emit(name: EventName, fields?: Fields, level?: EventLevel, subject?: object): void {
    const c = this.#counts;
    c[name] = (c[name] ?? 0) + 1;
    const would = fields?.['would'];
    if (typeof would === 'string') {
      const w = (this.#would[name] ??= {});
      w[would] = (w[would] ?? 0) + 1;
    }
    if (this.observer !== null) this.observer.event(name, fields ?? NO_FIELDS, subject);
    let slot = this.#slots.get(name);
    if (slot === undefined) slot = this.#slot(name);
    const lv = level ?? slot.level;
    if (!this.#log.isLevelEnabled(lv)) return;
    slot.log ??= this.#log.child({ event: name }); // a pino child follows its parent's level
    const f = fields ?? NO_FIELDS;
    slot.log[lv](f, formatEvent(name, f));
  }

  /** Would `name` be logged (at `level`, default its row's), or observed? Callers check before they build a record. */
  enabled(name: EventName, level?: EventLevel): boolean {
    if (this.observer !== null && this.observer.wants(name)) return true;
    let slot = this.#slots.get(name);
    if (slot === undefined) slot = this.#slot(name);
    return this.#log.isLevelEnabled(level ?? slot.level);
  }

  /** An event's slot, made on its first emit; a name outside the table (a cast string) logs at warn. */
  #slot(name: string): Slot {
    const slot: Slot = { level: eventSpec(name)?.level ?? 'warn', log: null };
    this.#slots.set(name, slot);
    return slot;
  }
}
