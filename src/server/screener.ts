/*
 * server/screener.ts - wires the rooms together: init order, listeners, drain.
 *
 * Exports: startScreener(), Screener, ScreenerOptions.
 * Init order: the verdict store → the generation (server/generation.ts: access
 * list, replies, DNSBL, the backend and its EHLO, the personalities) → the
 * stress watermarks (server/stress.ts) → the snapshot → listeners → STARTED.
 * close() stops accepting, ends sessions still being screened with a 421,
 * lets spliced sessions finish for up to drain_timeout, then cuts the rest.
 */
import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { EV } from '../log/events.js';
import { Emitter } from '../log/emit.js';
import { MemoryStore } from '../cache/memory.js';
import type { VerdictStore } from '../cache/store.js';
import type { Ctx } from '../session/state.js';
import { closeWith } from '../session/close.js';
import { loadSnapshot, saveSnapshot, type SnapshotResult } from '../cache/snapshot.js';
import { startListener, type Listener } from './listener.js';
import { FD_RESERVE, connectionCeiling, readFdLimit } from './fdlimit.js';
import type { Sink } from './sink.js';
import { makeGeneration } from './generation.js';
import { realClock } from '../session/clock.js';
import { StressState, noteOpen, stressLimit, watermarks, type ServerCtx } from './stress.js';

export interface ScreenerOptions {
  logger: Logger;
  /** A store to use instead of a new memory store (tests, shared tiers). */
  store?: VerdictStore;
}

export interface Screener {
  readonly ctx: Ctx;
  /** "host:port" of every listener, as bound. */
  readonly addresses: string[];
  readonly sink: Sink | null;
  /**
   * Stop accepting, drain, close. Resolves to the number of sessions cut at the deadline.
   * Called again while draining with drainMs 0: the sessions still open are cut now.
   */
  close(drainMs?: number, signal?: string): Promise<number>;
}

export async function startScreener(config: Config, opts: ScreenerOptions): Promise<Screener> {
  const log = opts.logger;
  const store = opts.store ?? new MemoryStore(config.cache.max_entries);
  const counters: Record<string, number> = {};
  const emitter = new Emitter(log, counters);
  const { gen, resolver, sink, ehlo, health } = await makeGeneration(config, emitter);
  const fdLimit = readFdLimit();
  const stressMarks = watermarks(stressLimit(config.limits.max_connections, fdLimit), config.stress.enter_at, config.stress.leave_at);
  const ctx: ServerCtx = {
    gen,
    clock: realClock,
    connect,
    log,
    store,
    sessions: new Set(),
    perClient: new Map(),
    draining: false,
    pendingProxy: 0,
    backends: 0,
    tlsHandshakes: 0,
    dummyOnly: 0,
    fdLimit,
    counters,
    emitter,
    noteOpen: (count) => noteOpen(ctx, count),
    stressState: new StressState(stressMarks),
  };
  const backend = gen.backend;
  const dnsbl = gen.dnsbl;
  const snapFile = config.cache.snapshot;
  if (snapFile !== null) {
    const r = await loadSnapshot(store, snapFile, Date.now(), { removeTemps: true });
    logSnapshot(ctx, 'load', snapFile, r);
  }
  const listeners: Listener[] = [];
  try {
    for (const l of config.listen) listeners.push(await startListener(ctx, l));
  } catch (err) {
    for (const l of listeners) l.server.close();
    ehlo?.stop();
    health.stop();
    resolver?.close();
    await sink?.close();
    throw err;
  }
  const addresses = listeners.map((l) => l.address);
  const started: Record<string, unknown> = {
    listen: addresses,
    backend: backend.name,
    handoff: backend.mode,
    pid: process.pid,
    fd_limit: ctx.fdLimit,
    stress: ctx.stressState.marks,
  };
  if (ctx.fdLimit !== null && config.limits.max_connections > connectionCeiling(ctx.fdLimit)) {
    started['warning'] = `limits.max_connections ${config.limits.max_connections} is above the ${connectionCeiling(ctx.fdLimit)} clients ` +
      `the file descriptor limit ${ctx.fdLimit} allows (two descriptors each, client and backend, ${FD_RESERVE} reserved): the descriptor limit applies first`;
    emitter.emit(EV.STARTED, started, 'warn');
  } else emitter.emit(EV.STARTED, started);

  // DNSBL site health: the probe interval is the server's (checks/ own no timers).
  dnsbl?.healthTick();
  const healthTimer = dnsbl === null ? null : setInterval(() => dnsbl.healthTick(), config.dnsbl.health.interval).unref();
  let snapTimer: NodeJS.Timeout | null = null;
  let saving = false;
  if (snapFile !== null) {
    snapTimer = setInterval(() => {
      if (saving) return;
      saving = true;
      void saveSnapshot(store, snapFile).then((r) => {
        saving = false;
        logSnapshot(ctx, 'save', snapFile, r);
      });
    }, config.cache.snapshot_interval);
    snapTimer.unref();
  }

  let closing: Promise<number> | null = null;
  let cutNow: (() => void) | null = null;
  const close = (drainMs = config.drain_timeout, signal = 'close'): Promise<number> => {
    if (closing !== null && drainMs === 0) cutNow?.();
    closing ??= drain(ctx, listeners, sink, drainMs, signal, (cut) => (cutNow = cut)).then(async (forced) => {
      if (snapTimer !== null) clearInterval(snapTimer);
      if (healthTimer !== null) clearInterval(healthTimer);
      ehlo?.stop();
      health.stop();
      await resolver?.close();
      if (snapFile !== null) logSnapshot(ctx, 'save', snapFile, await saveSnapshot(store, snapFile));
      emitter.emit(EV.STOPPED, { forced });
      return forced;
    });
    return closing;
  };
  return { ctx, addresses, sink, close };
}

/** `onCut` receives the function that ends the wait at once, cutting what is still open. */
async function drain(ctx: Ctx, listeners: Listener[], sink: Sink | null, drainMs: number, signal: string, onCut: (cut: () => void) => void): Promise<number> {
  ctx.draining = true;
  for (const l of listeners) l.server.close();
  // Sessions still being screened are told to come back later; spliced ones may finish.
  for (const s of ctx.sessions) {
    if (s.phase !== 'splice' && s.phase !== 'handoff') closeWith(s, s.gen.replies.serviceUnavailable);
  }
  ctx.emitter.emit(EV.STOPPING, { signal, open: ctx.sessions.size, drain_ms: drainMs });
  let forced = 0;
  if (ctx.sessions.size > 0) {
    await new Promise<void>((resolve) => {
      const cut = (): void => {
        clearTimeout(timer);
        forced = ctx.sessions.size;
        for (const s of ctx.sessions) {
          s.backendSock?.destroy();
          if (s.io !== s.socket) s.io.destroy();
          s.socket.destroy();
        }
        resolve();
      };
      const timer = setTimeout(cut, drainMs);
      onCut(cut);
      ctx.onSessionEnd = () => {
        if (ctx.sessions.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
  }
  await Promise.all(listeners.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
  await sink?.close();
  return forced;
}

function logSnapshot(ctx: Ctx, op: 'load' | 'save', file: string, r: SnapshotResult): void {
  if (r.ok) ctx.emitter.emit(EV.CACHE, { op, file, entries: r.entries, skipped: r.skipped, expired: r.expired, removed_temps: r.removedTemps });
  else ctx.emitter.emit(EV.CACHE, { op: 'error', during: op, file, error: r.error, set_aside: r.setAside }, 'error');
}

