/*
 * server/reload.ts - what a reload changes: the keys, the listeners, and what
 * only a restart can apply; the RELOAD record; closing what a reload dropped.
 *
 * Exports: changedKeys(), RESTART_KEYS, listenKey(), planListeners(), ListenPlan,
 *   ReloadResult, reloadFailed(), Retiring.
 * Pure functions over two validated configurations, and Retiring (a timer
 * that closes dropped resolvers and sinks); server/screener.ts applies the
 * plan (bind, close, swap the generation) and logs RELOAD.
 * A listener is known by its address as configured ("127.0.0.1:0" stays the
 * one bound at start, whatever port it got): a listener whose address stays
 * is kept, its PROXY and personality settings updated in place; one whose
 * address is new is bound; one whose address is gone stops accepting, and
 * the sessions it accepted finish.
 */
import type { Config, ListenConfig } from '../config/types.js';
import { STRESS_KEYS, TOP_KEYS } from '../config/schema.js';
import { getPath } from '../config/raw.js';
import { EV } from '../log/events.js';
import type { Ctx } from '../session/state.js';
import type { Generation } from '../session/generation.js';
import type { Resolver } from '../dns/resolver.js';
import { ScreenError } from '../util/errors.js';
import { stopNamed, type MadeGeneration } from './generation.js';
import type { Sink } from './sink.js';

/**
 * Keys a running screener cannot apply: the verdict store keeps its size (it
 * is state, kept across a reload; so is its Redis connection), the logger is made once, and the
 * privileges were dropped at start (no way back to root).
 */
export const RESTART_KEYS: readonly string[] = ['cache.max_entries', 'cache.store', 'cache.redis.url', 'cache.redis.prefix',
  'cache.redis.timeout', 'cache.redis.connect_timeout', 'cache.redis.pending_writes', 'log.format', 'log.level', 'user', 'group', 'allow_root',
  'log.reveal_sites', 'admin.listen', 'admin.socket', 'workers', 'workers_accept'];

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

/** The RELOAD record (log/events.ts). */
// A type, not an interface: the emitter takes it as a record of fields.
export type ReloadResult = {
  ok: boolean;
  /** The generation serving new connections now (1 at start). */
  generation: number;
  changed?: string[];
  added?: string[];
  removed?: string[];
  access_entries?: number;
  dnsbl?: 'kept' | 'new' | 'none';
  backend?: string;
  restart_needed?: string[];
  error?: string;
  code?: string;
};

export function reloadFailed(ctx: Ctx, generation: number, message: string, err: unknown): ReloadResult {
  const code = err instanceof ScreenError ? err.code : (err as NodeJS.ErrnoException | undefined)?.code;
  let why = message;
  const euid = process.geteuid?.();
  if (/\(EACCES\)/.test(message) && euid !== undefined && euid !== 0) {
    // After the switch to `user` (server/privileges.ts) the files are read again as that user.
    why += ` (smtpscreen runs as uid ${euid} since its start: the configuration file, the access list and the certificates must be readable by it)`;
  }
  const rec: ReloadResult = { ok: false, generation, error: `${why}; still serving with the configuration loaded before` };
  if (code !== undefined) rec.code = code;
  ctx.emitter.emit(EV.RELOAD, rec, 'error');
  return rec;
}

/** Seconds between looks at the retired generations. */
const RETIRE_CHECK_MS = 1000;

/**
 * The parts a reload dropped (a resolver, the built-in sink) stay open while
 * a session of their generation is open, and at least as long as a lookup it
 * started may run (dnsbl.timeout) or a PROXY header may take: then they are
 * closed. Nothing in flight is cut.
 */
export class Retiring {
  readonly #ctx: Ctx;
  readonly #items: Array<{ gen: Generation; closeAfter: number; resolver: Resolver | null; sink: Sink | null }> = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(ctx: Ctx) {
    this.#ctx = ctx;
  }

  retire(gen: Generation, old: MadeGeneration, now: MadeGeneration): void {
    const resolver = old.resolver !== null && old.resolver !== now.resolver ? old.resolver : null;
    const sink = old.sink !== null && old.sink !== now.sink ? old.sink : null;
    if (resolver === null && sink === null) return;
    const wait = Math.max(gen.config.dnsbl.timeout, gen.config.limits.proxy_timeout) + RETIRE_CHECK_MS;
    this.#items.push({ gen, closeAfter: Date.now() + wait, resolver, sink });
    this.#timer ??= setInterval(() => this.#sweep(), RETIRE_CHECK_MS).unref();
  }

  /** A reload that failed after making `next`: close what it made and `cur` does not use. */
  async closeNow(next: MadeGeneration, cur: MadeGeneration): Promise<void> {
    if (next.ehlo !== null && next.ehlo !== cur.ehlo) next.ehlo.stop();
    if (next.health !== cur.health) next.health.stop();
    stopNamed(next, cur);
    if (next.resolver !== null && next.resolver !== cur.resolver) await next.resolver.close();
    if (next.sink !== null && next.sink !== cur.sink) await next.sink.close();
  }

  #sweep(): void {
    const now = Date.now();
    const inUse = new Set<Generation>();
    for (const s of this.#ctx.sessions) inUse.add(s.gen);
    for (let i = this.#items.length - 1; i >= 0; i--) {
      const it = this.#items[i];
      if (it === undefined || it.closeAfter > now || inUse.has(it.gen)) continue;
      this.#items.splice(i, 1);
      void it.resolver?.close();
      void it.sink?.close();
    }
    if (this.#items.length === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** At stop, after the drain: close everything still retiring. */
  async closeAll(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    const items = this.#items.splice(0);
    for (const it of items) {
      await it.resolver?.close();
      await it.sink?.close();
    }
  }
}
