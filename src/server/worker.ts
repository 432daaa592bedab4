/*
 * server/worker.ts - a worker's side of the primary (workers > 1, server/primary.ts).
 *
 * Exports: attachWorker().
 * Called once by the screener of a worker (server/screener.ts, opts.worker)
 * when it is ready to serve: tells the primary `ready`.
 * workers_accept: primary - then takes the
 * sockets the primary hands over (`conn`) and emits them on the listener they
 * were accepted on, as if this process had accepted them; the listener code
 * (limits, PROXY protocol, the session) is the single-process one. The
 * primary's count of the host's connections (for stress) comes with each
 * socket; the closes are reported back in batches (CLOSE_REPORT_MS), one
 * message for many sockets.
 * workers_accept: shared - its listeners accept themselves (cluster shares the
 * primary's listening socket). Whenever its open count or a client's count
 * changes, it reports both within STATE_MS (`open`: one message for all the
 * changes of that window); the primary's answer (`host`) sets ctx.others (the
 * other workers' connections: the listener refuses on the sum at
 * limits.max_connections, the stress state follows the host) and
 * ctx.hostClients (clients full host-wide: refused at accept).
 * Metrics, /readyz and cache admin changes are answered when the primary asks.
 * Nothing here runs in a single process (workers: 1).
 */
import type { Socket } from 'node:net';
import type { VerdictStore } from '../cache/store.js';
import { applyAdmin, parseAdminRequest } from '../cache/admin.js';
import { EV } from '../log/events.js';
import type { Listener } from './listener.js';
import type { ServerCtx } from './stress.js';
import { Metrics, type MetricsSources } from './metrics.js';
import { readyz } from './admin.js';
import { CLOSE_REPORT_MS, STATE_MS, type ToPrimary, type ToWorker } from './cluster-ipc.js';
import { noteOpen } from './stress.js';

let closed = 0;
let reportTimer: NodeJS.Timeout | null = null;

function send(m: ToPrimary): void {
  // The channel is gone when the primary died: this worker is then ending anyway (the 'disconnect' below).
  if (process.connected) process.send?.(m);
}

function report(): void {
  reportTimer = null;
  if (closed === 0) return;
  send({ t: 'closed', n: closed });
  closed = 0;
}

/** A handed socket closed: counted, reported with the others of the next CLOSE_REPORT_MS. */
function onHandedClose(): void {
  closed++;
  reportTimer ??= setTimeout(report, CLOSE_REPORT_MS);
}

/** workers_accept: shared - what changed since the last `open` report. */
let sctx: ServerCtx | null = null;
let lastOpen = -1;
const changedClients = new Map<string, number>();
let openTimer: NodeJS.Timeout | null = null;

function reportOpen(): void {
  openTimer = null;
  if (sctx === null) return;
  const n = sctx.sessions.size + sctx.pendingProxy;
  if (n === lastOpen && changedClients.size === 0) return;
  lastOpen = n;
  if (changedClients.size === 0) send({ t: 'open', n });
  else {
    send({ t: 'open', n, c: [...changedClients] });
    changedClients.clear();
  }
}

function onCount(): void {
  openTimer ??= setTimeout(reportOpen, STATE_MS);
}

function onClientCount(client: string, count: number): void {
  changedClients.set(client, count);
  openTimer ??= setTimeout(reportOpen, STATE_MS);
}

/**
 * attachWorker - serve the primary's connections on `listeners` (keyed by the
 * configured "host:port"). `sources`: for /readyz and, withMetrics (the
 * primary serves an admin listener), for the metrics this worker keeps.
 */
export function attachWorker(ctx: ServerCtx, listeners: ReadonlyMap<string, Listener>, store: VerdictStore,
  sources: Omit<MetricsSources, 'ctx'>, withMetrics: boolean, shared = false): void {
  let m: Metrics | null = null;
  if (withMetrics) {
    m = new Metrics({ ...sources, ctx });
    m.attach();
  }
  if (shared) {
    sctx = ctx;
    ctx.sharedAccept = true;
    ctx.onCount = onCount;
    ctx.onClientCount = onClientCount;
    ctx.hostClients = new Map();
    // Connections may have come before the primary listened to us: their counts go out now.
    for (const [client, count] of ctx.perClient) changedClients.set(client, count);
    onCount();
  }
  process.on('message', (msg: ToWorker, handle?: Socket) => {
    switch (msg.t) {
      case 'host':
        ctx.others = msg.o;
        if (msg.full !== undefined) ctx.hostClients = new Map(msg.full);
        // The others' count moved: the stress state follows the host even when this worker is idle.
        noteOpen(ctx, ctx.sessions.size + ctx.pendingProxy);
        return;
      case 'conn': {
        if (handle === undefined) return;
        ctx.others = msg.o;
        const l = listeners.get(msg.l);
        if (l === undefined) {
          // Removed by a reload that reached this worker first: the primary binds no more of it either.
          handle.destroy();
          return;
        }
        // The socket was made by the primary's server: give it what this process's own listener gives its sockets
        // (server/listener.ts), or a client's FIN would end it before the backend's answer to its QUIT (no 221).
        handle.allowHalfOpen = true;
        handle.setNoDelay(true);
        handle.once('close', onHandedClose);
        l.server.emit('connection', handle);
        return;
      }
      case 'metrics':
        if (m === null) send({ t: 'metrics', id: msg.id, data: [] });
        else void m.registry.getMetricsAsJSON().then((data) => send({ t: 'metrics', id: msg.id, data }));
        return;
      case 'ready?':
        send({ t: 'ready?', id: msg.id, data: readyz(ctx, [...listeners.values()].map((l) => l.address), sources.backendDown()) });
        return;
      case 'admin': {
        const req = parseAdminRequest(msg.line);
        if ('error' in req || req.op === 'list' || req.op === 'export') return;
        const { change } = applyAdmin(store, req, Date.now());
        if (change !== null) ctx.emitter.emit(EV.CACHE_ADMIN, { ...change, by: 'primary' });
        return;
      }
      default:
        return;
    }
  });
  // The primary is gone (killed): nobody hands over connections any more; the sessions open finish, then exit.
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  send(shared ? { t: 'ready', listen: [...listeners.values()].map((l) => l.address) } : { t: 'ready' });
}
