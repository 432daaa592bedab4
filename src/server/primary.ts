/*
 * server/primary.ts - the primary of `workers: N` (N > 1): binds, accepts or shares, restarts.
 *
 * Exports: runPrimary(), PrimaryOptions.
 * node:cluster forks the workers (each runs the screener with opts.worker,
 * server/screener.ts and server/worker.ts). Two ways to accept (workers_accept):
 * shared - cluster's SCHED_NONE: each worker listens, cluster binds the socket
 * in the primary (bound, never listened to here, so this loop accepts nothing)
 * and sends its descriptor to every worker, which accepts on its own copy; the
 * kernel gives each connection to whichever worker accepts first. A restarted
 * worker gets the same descriptor while another worker holds it. The primary
 * sees no connection: the workers report their counts and the primary sums
 * them (server/host-counts.ts; the limits hold up to the staleness of those
 * reports). The workers are forked before the privilege drop (cluster binds
 * when they ask, as root for a port below 1024); each drops as a single
 * process does, and the primary once all are ready.
 * primary - the primary binds every listener
 * itself with pauseOnConnect and hands each accepted socket to one worker
 * over the cluster's IPC channel: so the primary knows every connection of the host
 * (limits.max_connections and the stress count hold for the host) and can
 * choose the worker by the client's network (cluster-ipc.ts networkSlot(): a
 * client and its /24 or /64 always reach one worker, so limits.max_per_client
 * and greylisting by network stay exact without asking anyone). PROXY
 * listeners are the exception: the primary sees only the proxy's address, so
 * their connections go round-robin and limits.max_per_client holds per worker
 * there. A worker that is not ready (restarting) gives its networks to the
 * next ready worker; the others keep theirs.
 * The primary never reads a client byte: it refuses at the host-wide
 * connection limit (421, ALL PORTS BUSY) and otherwise passes the socket on.
 * Signals: SIGTERM/SIGINT stop accepting and go to every worker (each drains
 * as a single process does; a second one cuts); the primary logs STOPPED and
 * exits 0 once all have exited. SIGHUP: the primary reads the configuration
 * first; a bad one is RELOAD ok false and nobody reloads; a good one rebinds
 * the primary's listeners as a reload would and goes to every worker, which
 * logs its own RELOAD. SIGUSR1 goes to every worker (and reopens the
 * primary's own log, cli.ts). A worker that dies is logged (WORKER EXITED)
 * and forked again, at once after a run of RESTART_QUIET_MS or more, else
 * after a delay that doubles from RESTART_MIN_MS to RESTART_MAX_MS.
 * The admin listener and the admin socket live here (server/primary-admin.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config, ListenConfig } from '../config/types.js';
import { EV } from '../log/events.js';
import { Emitter } from '../log/emit.js';
import { normalizeAddress } from '../net/cidr.js';
import { refuse } from '../session/close.js';
import type { Ctx } from '../session/state.js';
import { ScreenError } from '../util/errors.js';
import { makeReplies } from '../smtp/replies.js';
import { listenKey, planListeners, reloadFailed } from './reload.js';
import { STATE_MS, WORKER_ENV, networkSlot, workerCount, type Slot, type ToPrimary, type ToWorker } from './cluster-ipc.js';
import { HostCounts } from './host-counts.js';
import { startPrimaryAdmin, type PrimaryAdmin } from './primary-admin.js';

/** A worker that ran this long before it died is forked again at once. */
const RESTART_QUIET_MS = 10_000;
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 60_000;
/** After the drain deadline, how long a worker may take to exit before it is killed. */
const EXIT_GRACE_MS = 10_000;

export interface PrimaryOptions {
  logger: Logger;
  /** The configuration as it is now (SIGHUP); throws a ScreenError when it is bad. */
  read: () => Config;
  /**
   * Called once the listeners are bound (the privilege drop); its fields go into STARTED. workers_accept primary: before
   * any worker is forked; shared: once every worker is ready (cluster bound the listeners for them).
   */
  afterBind: () => Record<string, unknown>;
}

interface PListener {
  server: Server;
  cfg: ListenConfig;
  key: string;
  address: string;
  /** Round-robin position (PROXY listeners). */
  rr: number;
}

/** A failed send to a worker that is exiting: nothing to do, its 'exit' follows. */
function ignoreSendError(): void {
  // empty: see the callers
}

/** runPrimary - run until stopped; resolves to the exit code. */
export async function runPrimary(first: Config, opts: PrimaryOptions): Promise<number> {
  const log = opts.logger;
  const counters: Record<string, number> = {};
  const emitter = new Emitter(log, counters);
  let config = first;
  let replies = makeReplies(config.hostname, config.banner);
  const n = workerCount(config.workers);
  const slots: Slot[] = [];
  for (let i = 0; i < n; i++) slots.push({ index: i, worker: null, pid: 0, ready: false, open: 0, startedAt: 0, delay: 0, restarts: 0, timer: null });
  let total = 0;
  let stopping = false;
  let generation = 1;
  const listeners = new Map<string, PListener>();
  // workers_accept: shared (fixed at start: a restart key): the workers accept; the primary sums their reports.
  const hc = config.workers_accept === 'shared' ? new HostCounts(n, config.limits.max_per_client) : null;
  let sharedListen: string[] = [];
  let tellTimer: NodeJS.Timeout | null = null;
  const tell = (): void => {
    tellTimer = null;
    if (hc === null || stopping) return;
    for (const s of slots) {
      if (!s.ready || s.worker === null || !s.worker.isConnected()) continue;
      const m = hc.message(s.index);
      if (m !== null) s.worker.send(m, ignoreSendError);
    }
  };
  const tellSoon = (): void => {
    tellTimer ??= setTimeout(tell, STATE_MS);
  };

  const pick = (l: PListener, peer: string): Slot | null => {
    const start = l.cfg.proxy_protocol === 'none' ? networkSlot(peer, n) : (l.rr = (l.rr + 1) % n);
    for (let k = 0; k < n; k++) {
      const s = slots[(start + k) % n] as Slot;
      if (s.ready && s.worker !== null) return s;
    }
    return null;
  };
  function onConnection(this: Server & { pl?: PListener }, socket: Socket): void {
    const l = this.pl as PListener;
    socket.on('error', () => socket.destroy());
    if (stopping) {
      socket.destroy();
      return;
    }
    const peer = socket.remoteAddress === undefined ? null : normalizeAddress(socket.remoteAddress);
    if (peer === null) {
      socket.destroy(); // reset before the accept: the worker would log a HANGUP, the primary has nothing to say
      return;
    }
    const port = socket.remotePort ?? 0;
    const slot = total >= config.limits.max_connections ? null : pick(l, peer);
    if (slot === null) {
      const why = total >= config.limits.max_connections ? 'connections' : 'workers';
      emitter.emit(EV.ALL_PORTS_BUSY, { client: peer, port, count: total, limit: why });
      refuse(socket, replies.allPortsBusy);
      return;
    }
    slot.open++;
    total++;
    const w = slot.worker as Worker;
    const msg: ToWorker = { t: 'conn', l: l.key, o: total - slot.open };
    w.send(msg, socket, (err) => {
      if (err === null) return;
      // The worker died meanwhile: its exit already zeroed its count. The client is cut, as the worker's own are.
      socket.destroy();
    });
  }

  const bindOne = (cfg: ListenConfig): Promise<PListener> => {
    const server = createServer({ pauseOnConnect: true }) as Server & { pl?: PListener };
    const key = listenKey(cfg);
    const pl: PListener = { server, cfg, key, address: key, rr: 0 };
    server.pl = pl;
    server.on('connection', onConnection);
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ScreenError('SCR_ERR_BIND', `listen[]: cannot bind ${key} (${err.code ?? err.message})`,
        { key: 'listen', value: key, code: err.code })));
      server.listen({ host: cfg.address.host, port: cfg.address.port, backlog: config.limits.backlog }, () => {
        server.removeAllListeners('error');
        server.on('error', () => undefined); // accept errors: libuv keeps the listening socket
        const a = server.address();
        const host = cfg.address.host.includes(':') ? `[${cfg.address.host}]` : cfg.address.host;
        pl.address = `${host}:${typeof a === 'object' && a !== null ? a.port : cfg.address.port}`;
        resolve(pl);
      });
    });
  };
  if (hc === null) {
    for (const l of config.listen) {
      const pl = await bindOne(l);
      listeners.set(pl.key, pl);
    }
  } else cluster.schedulingPolicy = cluster.SCHED_NONE; // before the first fork: cluster freezes it then

  const admin: PrimaryAdmin = await startPrimaryAdmin({ config: () => config, slots, emitter, counters, log, total: () => total, stopping: () => stopping,
    listening: () => (hc === null ? [...listeners.values()].map((l) => l.address) : sharedListen) });
  let bindFields: Record<string, unknown> = hc === null ? opts.afterBind() : {};

  const fork = (s: Slot): void => {
    s.timer = null;
    s.ready = false;
    s.open = 0;
    s.startedAt = Date.now();
    // The worker reads the configuration file itself (the same command line); its listeners are keyed by the configured address.
    const w = cluster.fork({ [WORKER_ENV]: String(s.index) });
    s.worker = w;
    s.pid = w.process.pid ?? 0;
    w.on('message', (m: ToPrimary) => onMessage(s, w, m));
    // XXX a send to a worker whose channel is closing (it is exiting) fails with EPIPE, emitted here when the send had
    // no callback: without a handler that would end the primary. Its exit is handled by 'exit'.
    w.on('error', ignoreSendError);
    w.on('exit', (code, signal) => onExit(s, w, code, signal));
  };

  let startedResolve: () => void = () => undefined;
  let startFailed: (why: string) => void = () => undefined;
  const started = new Promise<void>((resolve, reject) => {
    startedResolve = resolve;
    startFailed = (why) => reject(new ScreenError('SCR_ERR_WORKER', why));
  });
  let isStarted = false;
  let forced = 0;
  const exits: Array<() => void> = [];

  const onMessage = (s: Slot, w: Worker, m: ToPrimary): void => {
    if (s.worker !== w) return;
    switch (m.t) {
      case 'ready':
        s.ready = true;
        if (m.listen !== undefined) sharedListen = m.listen;
        if (hc !== null) tellSoon();
        emitter.emit(EV.WORKER_STARTED, { worker: s.index, pid: s.pid, restarts: s.restarts });
        if (!isStarted && slots.every((x) => x.ready)) {
          isStarted = true;
          startedResolve();
        }
        return;
      case 'closed':
        s.open -= m.n;
        total -= m.n;
        return;
      case 'listen':
        sharedListen = m.a;
        return;
      case 'open':
        if (hc === null) return;
        hc.report(s.index, m.n, m.c);
        s.open = m.n;
        total = hc.total;
        tellSoon();
        return;
      case 'stopped':
        forced += m.forced;
        return;
      default:
        admin.onReply(m);
    }
  };
  const onExit = (s: Slot, w: Worker, code: number | null, signal: string | null): void => {
    if (s.worker !== w) return;
    const open = s.open;
    if (hc !== null) {
      hc.drop(s.index);
      total = hc.total;
      tellSoon();
    } else total -= s.open;
    s.open = 0;
    s.ready = false;
    s.worker = null;
    const uptime = Date.now() - s.startedAt;
    if (stopping) {
      if (slots.every((x) => x.worker === null)) for (const f of exits.splice(0)) f();
      return;
    }
    if (!isStarted) {
      emitter.emit(EV.WORKER_EXITED, { worker: s.index, pid: s.pid, code, signal, uptime_ms: uptime, open, restart_in_ms: null }, 'error');
      startFailed(`worker ${s.index} (pid ${s.pid}) exited during start-up (code ${String(code)}, signal ${String(signal)}): its log lines say why`);
      return;
    }
    s.delay = uptime >= RESTART_QUIET_MS ? 0 : Math.min(RESTART_MAX_MS, Math.max(RESTART_MIN_MS, s.delay * 2));
    emitter.emit(EV.WORKER_EXITED, { worker: s.index, pid: s.pid, code, signal, uptime_ms: uptime, open, restart_in_ms: s.delay }, 'error');
    s.restarts++;
    s.timer = setTimeout(fork, s.delay, s);
  };

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const s of slots) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      s.worker?.process.kill(signal);
    }
  };
  for (const s of slots) fork(s);
  try {
    await started;
  } catch (err) {
    stopping = true;
    for (const l of listeners.values()) l.server.close();
    stopAll('SIGKILL');
    await admin.close();
    throw err;
  }
  if (hc !== null) {
    try {
      bindFields = opts.afterBind();
    } catch (err) {
      stopping = true;
      stopAll('SIGKILL');
      await admin.close();
      throw err;
    }
  }
  const warnings: string[] = [];
  emitter.emit(EV.STARTED, {
    listen: hc === null ? [...listeners.values()].map((l) => l.address) : sharedListen, accept: config.workers_accept, backend: config.backend.address.host + ':' + String(config.backend.address.port),
    handoff: config.backend.handoff, pid: process.pid, fd_limit: null, workers: slots.map((s) => ({ worker: s.index, pid: s.pid })),
    ...(admin.addresses.length > 0 ? { admin: admin.addresses } : {}), ...bindFields, ...(warnings.length > 0 ? { warning: warnings.join('; ') } : {}),
  });

  // ---- signals ----
  const reload = (): void => {
    let next: Config;
    try {
      next = opts.read();
    } catch (err) {
      reloadFailed({ emitter } as unknown as Ctx, generation, err instanceof Error ? err.message : String(err), err);
      return;
    }
    void applyReload(next);
  };
  const applyReload = async (next: Config): Promise<void> => {
    if (hc !== null) {
      // Each worker binds and closes its own listeners (cluster shares what it binds here); the limit applies at once.
      config = next;
      generation++;
      hc.setMax(next.limits.max_per_client);
      tellSoon();
      for (const s of slots) s.worker?.process.kill('SIGHUP');
      return;
    }
    const plan = planListeners([...listeners.keys()], next.listen);
    const bound: PListener[] = [];
    try {
      for (const l of plan.add) bound.push(await bindOne(l));
    } catch (err) {
      for (const l of bound) l.server.close();
      reloadFailed({ emitter } as unknown as Ctx, generation, err instanceof Error ? err.message : String(err), err);
      return;
    }
    for (const { key, cfg } of plan.keep) {
      const l = listeners.get(key);
      if (l !== undefined) l.cfg = cfg;
    }
    for (const key of plan.remove) {
      listeners.get(key)?.server.close();
      listeners.delete(key);
    }
    for (const l of bound) listeners.set(l.key, l);
    config = next;
    replies = makeReplies(config.hostname, config.banner);
    generation++;
    // Each worker reads the file again and logs its own RELOAD (ok, or why not).
    for (const s of slots) s.worker?.process.kill('SIGHUP');
  };

  const exitCode = await new Promise<number>((resolve) => {
    let signals = 0;
    const onStop = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        emitter.emit(EV.SIGNAL, { signal, action: 'cut', reason: 'second stop signal during the drain: every worker cuts its open sessions now' });
        stopAll(signal);
        return;
      }
      stopping = true;
      for (const l of listeners.values()) l.server.close();
      emitter.emit(EV.STOPPING, { signal, open: total, drain_ms: config.drain_timeout, workers: slots.filter((s) => s.worker !== null).length });
      exits.push(() => resolve(0));
      stopAll(signal);
      if (slots.every((s) => s.worker === null)) for (const f of exits.splice(0)) f();
      setTimeout(() => stopAll('SIGKILL'), config.drain_timeout + EXIT_GRACE_MS).unref();
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', () => {
      if (stopping) emitter.emit(EV.SIGNAL, { signal: 'SIGHUP', action: 'ignored', reason: 'stopping: no reload' });
      else reload();
    });
    process.on('SIGUSR1', () => {
      for (const s of slots) s.worker?.process.kill('SIGUSR1');
    });
  });
  if (tellTimer !== null) clearTimeout(tellTimer);
  await admin.close();
  emitter.emit(EV.STOPPED, { forced });
  return exitCode;
}
