/*
 * server/screener.ts - wires the rooms together: init order, listeners, drain.
 *
 * Exports: startScreener(), Screener, ScreenerOptions.
 * Init order: the verdict store (memory, or memory in front of Redis: cache/tiered.ts) → the generation (server/generation.ts: access
 * list, replies, DNSBL, the backend and its EHLO, the personalities) → the
 * stress watermarks (server/stress.ts) → the snapshot (claimed: cache/owner.ts)
 * → listeners → the privilege drop → the cache admin socket (admin.socket) → STARTED → the SPF
 * allowlist (access.spf, server/spf-refresh.ts: kept across reloads); close()
 * removes the socket and, after the last save, the snapshot's owner mark.
 * close() stops accepting, ends sessions still being screened with a 421,
 * lets spliced sessions finish for up to drain_timeout, then cuts the rest.
 * reload() builds the next generation (keeping the parts of sections that did
 * not change), binds added listeners, then commits: ctx.gen swapped for new
 * connections, removed listeners closed, timers re-armed; a failure before
 * the commit leaves everything as it was (server/reload.ts: the plan, RELOAD).
 * opts.afterBind runs once the listeners are bound (the privilege drop).
 * The admin listener (server/admin.ts, when admin.listen names an address) is
 * bound with the listeners and closed last, after the drain.
 */
import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { EV } from '../log/events.js';
import { Emitter } from '../log/emit.js';
import { MemoryStore } from '../cache/memory.js';
import { TieredStore } from '../cache/tiered.js';
import type { VerdictStore } from '../cache/store.js';
import type { Ctx } from '../session/state.js';
import { closeWith } from '../session/close.js';
import { loadSnapshot, saveSnapshot, type SnapshotResult } from '../cache/snapshot.js';
import { reconfigureListener, startListener, type Listener } from './listener.js';
import { RESTART_KEYS, Retiring, changedKeys, listenKey, planListeners, reloadFailed, type ReloadResult } from './reload.js';
import { FD_RESERVE, connectionCeiling, readFdLimit } from './fdlimit.js';
import type { Sink } from './sink.js';
import { makeGeneration, stopNamed, type MadeGeneration } from './generation.js';
import { SpfRefresher } from './spf-refresh.js';
import { readAdminToken, startAdmin, type Admin } from './admin.js';
import { logOutput } from '../log/logger.js';
import { startAdminSocket, type AdminSocket } from './admin-socket.js';
import { claimSnapshot, releaseSnapshot } from '../cache/owner.js';
export type { ReloadResult } from './reload.js';
import { TimerWheel } from '../session/wheel.js';
import { StressState, noteOpen, stressLimit, watermarks, type ServerCtx } from './stress.js';

export interface ScreenerOptions {
  logger: Logger;
  /** A store to use instead of a new memory store (tests, shared tiers). */
  store?: VerdictStore;
  /**
   * Called once the listeners are bound, before STARTED (the privilege drop,
   * server/privileges.ts); its fields go into STARTED. A throw stops the start-up.
   */
  afterBind?: () => Record<string, unknown>;
  /**
   * This process is worker `worker` of a primary (server/primary.ts, workers > 1): the primary binds
   * the listeners (workers_accept: primary: and hands each connection over; shared: this process
   * listens on the socket cluster shares), serves the admin listener and the admin socket,
   * and logs STARTED and STOPPED; the memory tier is not snapshotted (Redis holds the state).
   */
  worker?: number;
}

export interface Screener {
  readonly ctx: Ctx;
  /** "host:port" of every listener, as bound. */
  readonly addresses: string[];
  readonly sink: Sink | null;
  /** The admin listener, or null when admin.listen is empty. */
  readonly admin: Admin | null;
  /**
   * Reload: `read` gives the new configuration (it may throw: RELOAD ok false).
   * Swaps the generation for new connections, binds and closes listeners, logs RELOAD.
   * Never throws: a failure keeps the running generation and is logged at error.
   */
  reload(read: () => Config): Promise<ReloadResult>;
  /**
   * Stop accepting, drain, close. Resolves to the number of sessions cut at the deadline.
   * Called again while draining with drainMs 0: the sessions still open are cut now.
   */
  close(drainMs?: number, signal?: string): Promise<number>;
}

export async function startScreener(config: Config, opts: ScreenerOptions): Promise<Screener> {
  const log = opts.logger;
  const counters: Record<string, number> = {};
  const emitter = new Emitter(log, counters);
  // With an admin listener, its metrics module (loaded only then: server/admin.ts) is loaded before the
  // generation starts the backend probe, so that startAdmin() attaches the metrics before any probe result.
  if (config.admin.listen.length > 0) await import('./metrics.js');
  // The generation first: a start-up that fails there leaves no Redis connection behind.
  let made = await makeGeneration(config, emitter);
  const memory = new MemoryStore(config.cache.max_entries);
  // cache.store: redis: memory first, Redis second (cache/tiered.ts); it connects in the background.
  // ioredis is loaded only then: a memory store does not pay its start-up memory (bench:held: ~10 MB RSS).
  const store: VerdictStore = opts.store ?? (config.cache.store === 'redis' ? await sharedStore(config, memory, emitter) : memory);
  // The snapshot is this process's memory: loading it writes nothing to a shared tier.
  const snapStore: VerdictStore = store instanceof TieredStore ? store.memory : store;
  const { gen, resolver, sink } = made;
  const fdLimit = readFdLimit();
  const stressMarks = watermarks(stressLimit(config.limits.max_connections, fdLimit), config.stress.enter_at, config.stress.leave_at);
  const ctx: ServerCtx = {
    gen,
    // One timer wheel for the sessions' deadlines of a second or more (session/wheel.ts).
    clock: new TimerWheel(),
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
    others: 0,
  };
  const worker = opts.worker;
  const single = worker === undefined;
  // A worker of workers_accept: primary gets its sockets from the primary; one of shared listens (through cluster).
  const shared = !single && config.workers_accept === 'shared';
  const bind = single || shared;
  const backend = gen.backend;
  const snapFile = single ? config.cache.snapshot : null;
  if (snapFile !== null) {
    const r = await loadSnapshot(snapStore, snapFile, Date.now(), { removeTemps: true });
    logSnapshot(ctx, 'load', snapFile, r);
    claimSnapshot(snapFile);
  }
  let adminSocket: AdminSocket | null = null;
  // Keyed by the configured address (server/reload.ts listenKey()); a reload adds and removes entries.
  const listeners = new Map<string, Listener>();
  let bindFields: Record<string, unknown> = {};
  let admin: Admin | null = null;
  try {
    for (const l of config.listen) listeners.set(listenKey(l), await startListener(ctx, l, bind));
    if (config.admin.listen.length > 0 && single) {
      readAdminToken(config); // an unreadable admin.token_file fails the start, naming the key
      admin = await startAdmin({
        ctx, listen: config.admin.listen,
        listening: () => [...listeners.values()].map((l) => l.address),
        resolver: () => made.resolver,
        backendDown: () => made.health.down,
        logDropped: () => logOutput(log)?.dropped ?? null,
      });
    }
    if (opts.afterBind !== undefined) bindFields = opts.afterBind();
    // After the switch to `user`: the socket is that user's (and root's) to connect to, and removable by it at stop.
    if (config.admin.socket !== null && single) adminSocket = await startAdminSocket(config.admin.socket, store, emitter);
  } catch (err) {
    void admin?.close();
    for (const l of listeners.values()) l.server.close();
    if (opts.store === undefined) await store.shared?.close();
    await adminSocket?.close();
    if (snapFile !== null) releaseSnapshot(snapFile);
    made.ehlo?.stop();
    made.health.stop();
    stopNamed(made, null);
    await resolver?.close();
    await sink?.close();
    await gen.policy?.close();
    throw err;
  }
  const addresses = [...listeners.values()].map((l) => l.address);
  const started: Record<string, unknown> = {
    listen: addresses,
    backend: backend.name,
    handoff: backend.mode,
    pid: process.pid,
    fd_limit: ctx.fdLimit,
    stress: ctx.stressState.marks,
    ...(admin !== null ? { admin: admin.addresses } : {}),
    ...bindFields,
  };
  const warnings: string[] = [];
  if (ctx.fdLimit !== null && config.limits.max_connections > connectionCeiling(ctx.fdLimit)) {
    warnings.push(`limits.max_connections ${config.limits.max_connections} is above the ${connectionCeiling(ctx.fdLimit)} clients ` +
      `the file descriptor limit ${ctx.fdLimit} allows (two descriptors each, client and backend, ${FD_RESERVE} reserved): the descriptor limit applies first`);
  }
  if (admin !== null && config.admin.allow_remote && config.admin.token === null && config.admin.token_file === null) {
    warnings.push('admin.allow_remote is true without admin.token or admin.token_file: any host that reaches admin.listen reads /metrics');
  }
  if (!single) {
    // A worker: the primary logs STARTED; this one takes connections from it (or accepts: shared) from now on.
    const { attachWorker } = await import('./worker.js');
    attachWorker(ctx, listeners, store, { resolver: () => made.resolver, backendDown: () => made.health.down, logDropped: () => logOutput(log)?.dropped ?? null },
      config.admin.listen.length > 0, shared);
  } else if (warnings.length > 0) {
    started['warning'] = warnings.join('; ');
    emitter.emit(EV.STARTED, started, 'warn');
  } else emitter.emit(EV.STARTED, started);

  // DNSBL site health: the probe interval is the server's (checks/ own no timers). Rearmed by a reload.
  let healthTimer: NodeJS.Timeout | null = null;
  const armHealth = (): void => {
    if (healthTimer !== null) clearInterval(healthTimer);
    const dnsbl = ctx.gen.dnsbl;
    healthTimer = dnsbl === null ? null : setInterval(() => dnsbl.healthTick(), ctx.gen.config.dnsbl.health.interval).unref();
  };
  gen.dnsbl?.healthTick();
  armHealth();
  let snapTimer: NodeJS.Timeout | null = null;
  let saving = false;
  const armSnapshot = (): void => {
    if (snapTimer !== null) clearInterval(snapTimer);
    snapTimer = null;
    const file = ctx.gen.config.cache.snapshot;
    if (file === null || !single) return;
    snapTimer = setInterval(() => {
      if (saving) return;
      saving = true;
      void saveSnapshot(snapStore, file).then((r) => {
        saving = false;
        logSnapshot(ctx, 'save', file, r);
      });
    }, ctx.gen.config.cache.snapshot_interval);
    snapTimer.unref();
  };
  armSnapshot();
  // access.spf (server/spf-refresh.ts): runtime state, kept across reloads; its first walk is not awaited.
  const spf = new SpfRefresher(ctx);
  spf.apply(config);
  // What reloads dropped (a resolver, a sink) is closed once no session of its generation is left.
  const retiring = new Retiring(ctx);

  let generation = 1;
  let reloading: Promise<ReloadResult> | null = null;
  let again: Promise<ReloadResult> | null = null;
  const reloadOnce = async (next: Config): Promise<ReloadResult> => {
    if (closing !== null) return reloadFailed(ctx, generation, 'the screener is stopping', undefined);
    const prev = { config: ctx.gen.config, made };
    let nextMade: MadeGeneration;
    try {
      nextMade = await makeGeneration(next, emitter, prev);
    } catch (err) {
      return reloadFailed(ctx, generation, err instanceof Error ? err.message : String(err), err);
    }
    const plan = planListeners([...listeners.keys()], next.listen);
    const bound: Array<[string, Listener]> = [];
    try {
      for (const l of plan.add) bound.push([listenKey(l), await startListener(ctx, l, bind)]);
    } catch (err) {
      for (const [, l] of bound) l.server.close();
      await retiring.closeNow(nextMade, made);
      return reloadFailed(ctx, generation, err instanceof Error ? err.message : String(err), err);
    }
    if (closing !== null) {
      for (const [, l] of bound) l.server.close();
      await retiring.closeNow(nextMade, made);
      return reloadFailed(ctx, generation, 'the screener is stopping', undefined);
    }
    // Commit: from here on nothing fails. New connections get the new generation.
    const old = ctx.gen;
    const oldMade = made;
    ctx.gen = nextMade.gen;
    made = nextMade;
    generation++;
    for (const { key, cfg } of plan.keep) {
      const l = listeners.get(key);
      if (l !== undefined) reconfigureListener(l, cfg);
    }
    const removed: string[] = [];
    for (const key of plan.remove) {
      const l = listeners.get(key);
      if (l === undefined) continue;
      listeners.delete(key);
      removed.push(l.address);
      l.server.close(); // stops accepting; its sessions finish
    }
    for (const [key, l] of bound) listeners.set(key, l);
    const marks = watermarks(stressLimit(next.limits.max_connections, ctx.fdLimit), next.stress.enter_at, next.stress.leave_at);
    if (JSON.stringify(marks) !== JSON.stringify(ctx.stressState.marks)) {
      const st = new StressState(marks);
      st.active = ctx.stressState.active;
      ctx.stressState = st;
      noteOpen(ctx, ctx.sessions.size + ctx.pendingProxy);
    }
    if (oldMade.ehlo !== null && oldMade.ehlo !== made.ehlo) oldMade.ehlo.stop();
    if (oldMade.health !== made.health) oldMade.health.stop();
    stopNamed(oldMade, made);
    retiring.retire(old, oldMade, made);
    // XXX a session of the old generation that asks at RCPT after this gets a failure (policy.fail decides).
    if (old.policy !== null && old.policy !== ctx.gen.policy) void old.policy.close();
    if (old.dnsbl !== ctx.gen.dnsbl || old.config.dnsbl.health.interval !== next.dnsbl.health.interval) {
      if (old.dnsbl !== ctx.gen.dnsbl) ctx.gen.dnsbl?.healthTick();
      armHealth();
    }
    spf.apply(next);
    if (old.config.cache.snapshot !== next.cache.snapshot || old.config.cache.snapshot_interval !== next.cache.snapshot_interval) armSnapshot();
    const changed = changedKeys(old.config, next);
    const rec: ReloadResult = {
      ok: true,
      generation,
      changed,
      added: bound.map(([, l]) => l.address),
      removed,
      access_entries: ctx.gen.access?.size ?? 0,
      dnsbl: ctx.gen.dnsbl === null ? 'none' : ctx.gen.dnsbl === old.dnsbl ? 'kept' : 'new',
      backend: ctx.gen.backend.name,
    };
    const restart = changed.filter((k) => RESTART_KEYS.includes(k));
    if (restart.length > 0) {
      rec.restart_needed = restart;
      emitter.emit(EV.RELOAD, rec, 'warn');
    } else emitter.emit(EV.RELOAD, rec);
    // A shared-accept worker's listeners are the host's: the primary's STARTED and /readyz name them.
    if (shared && (bound.length > 0 || removed.length > 0)) process.send?.({ t: 'listen', a: [...listeners.values()].map((l) => l.address) });
    return rec;
  };
  // One reload at a time; a reload asked for meanwhile runs once after it, with the file as it is then.
  const reload = (read: () => Config): Promise<ReloadResult> => {
    if (reloading === null) {
      reloading = runReload(read).finally(() => (reloading = null));
      return reloading;
    }
    again ??= reloading.then(() => {
      again = null;
      return reload(read);
    });
    return again;
  };
  const runReload = async (read: () => Config): Promise<ReloadResult> => {
    let next: Config;
    try {
      next = read();
    } catch (err) {
      return reloadFailed(ctx, generation, err instanceof Error ? err.message : String(err), err);
    }
    return reloadOnce(next);
  };

  let closing: Promise<number> | null = null;
  let cutNow: (() => void) | null = null;
  const close = (drainMs = ctx.gen.config.drain_timeout, signal = 'close'): Promise<number> => {
    if (closing !== null && drainMs === 0) cutNow?.();
    closing ??= drain(ctx, [...listeners.values()], drainMs, signal, (cut) => (cutNow = cut)).then(async (forced) => {
      if (snapTimer !== null) clearInterval(snapTimer);
      if (healthTimer !== null) clearInterval(healthTimer);
      await spf.stop();
      made.ehlo?.stop();
      made.health.stop();
      stopNamed(made, null);
      await retiring.closeAll();
      await made.resolver?.close();
      await made.sink?.close();
      await ctx.gen.policy?.close();
      await adminSocket?.close();
      const file = single ? ctx.gen.config.cache.snapshot : null;
      if (file !== null) logSnapshot(ctx, 'save', file, await saveSnapshot(snapStore, file));
      if (snapFile !== null) releaseSnapshot(snapFile);
      if (opts.store === undefined) await store.shared?.close();
      await admin?.close();
      if (single) emitter.emit(EV.STOPPED, { forced });
      else process.send?.({ t: 'stopped', forced });
      return forced;
    });
    return closing;
  };
  return {
    ctx,
    get addresses() {
      return [...listeners.values()].map((l) => l.address);
    },
    get sink() {
      return made.sink;
    },
    admin,
    reload,
    close,
  };
}

/** `onCut` receives the function that ends the wait at once, cutting what is still open. */
async function drain(ctx: Ctx, listeners: Listener[], drainMs: number, signal: string, onCut: (cut: () => void) => void): Promise<number> {
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
  return forced;
}

function logSnapshot(ctx: Ctx, op: 'load' | 'save', file: string, r: SnapshotResult): void {
  if (r.ok) ctx.emitter.emit(EV.CACHE, { op, file, entries: r.entries, skipped: r.skipped, expired: r.expired, removed_temps: r.removedTemps });
  else ctx.emitter.emit(EV.CACHE, { op: 'error', during: op, file, error: r.error, set_aside: r.setAside }, 'error');
}

/** The two-tier store of cache.store: redis (its connection starts in the background). */
async function sharedStore(config: Config, memory: MemoryStore, emitter: Emitter): Promise<TieredStore> {
  const { RedisTier } = await import('../cache/redis.js');
  return new TieredStore(memory, new RedisTier({ config: config.cache.redis, emitter, firstSeenKeepMs: config.greylist.max_delay }));
}
