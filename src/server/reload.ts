/*
 * server/reload.ts - what a reload changes: the keys, the listeners, and what
 * only a restart can apply.
 *
 * Exports: changedKeys(), RESTART_KEYS, listenKey(), planListeners(), ListenPlan.
 * Pure functions over two validated configurations; server/screener.ts
 * applies the result (bind, close, swap the generation) and logs RELOAD.
 * A listener is known by its address as configured ("127.0.0.1:0" stays the
 * one bound at start, whatever port it got): a listener whose address stays
 * is kept, its PROXY and personality settings updated in place; one whose
 * address is new is bound; one whose address is gone stops accepting, and
 * the sessions it accepted finish.
 */
import type { Config, ListenConfig } from '../config/types.js';
import { STRESS_KEYS, TOP_KEYS } from '../config/schema.js';
import { getPath } from '../config/raw.js';

/**
 * Keys a running screener cannot apply: the verdict store keeps its size (it
 * is state, kept across a reload), the logger is made once, and the
 * privileges were dropped at start (no way back to root).
 */
export const RESTART_KEYS: readonly string[] = ['cache.max_entries', 'log.format', 'log.level', 'user', 'group', 'allow_root'];

/** The dotted keys whose value differs (stress overrides as "stress.<key>"), in schema order. */
export function changedKeys(a: Config, b: Config): string[] {
  const out: string[] = [];
  const differ = (x: unknown, y: unknown): boolean => JSON.stringify(x) !== JSON.stringify(y);
  for (const spec of TOP_KEYS) {
    if (differ(getPath(a, spec.key), getPath(b, spec.key))) out.push(spec.key);
  }
  for (const spec of STRESS_KEYS) {
    if (differ(a.stress.overrides[spec.key], b.stress.overrides[spec.key])) out.push(`stress.${spec.key}`);
  }
  return out;
}

/** "host:port" of a listener's configured address ("[::1]:25" for IPv6). */
export function listenKey(l: ListenConfig): string {
  const h = l.address.host.includes(':') ? `[${l.address.host}]` : l.address.host;
  return `${h}:${l.address.port}`;
}

export interface ListenPlan {
  /** Configured listeners to bind now. */
  readonly add: ListenConfig[];
  /** Keys of running listeners to close. */
  readonly remove: string[];
  /** Running listeners kept, with their new settings. */
  readonly keep: Array<{ key: string; cfg: ListenConfig }>;
}

/** planListeners - what to bind, close and keep for the new `listen` list, given the keys running now. */
export function planListeners(running: readonly string[], listen: readonly ListenConfig[]): ListenPlan {
  const wanted = new Map(listen.map((l) => [listenKey(l), l]));
  const add: ListenConfig[] = [];
  const keep: Array<{ key: string; cfg: ListenConfig }> = [];
  for (const [key, cfg] of wanted) {
    if (running.includes(key)) keep.push({ key, cfg });
    else add.push(cfg);
  }
  const remove = running.filter((k) => !wanted.has(k));
  return { add, remove, keep };
}
