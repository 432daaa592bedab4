/*
 * server/primary-admin.ts - the admin listener and the admin socket of a primary (workers > 1).
 *
 * Exports: startPrimaryAdmin(), PrimaryAdmin, PrimaryAdminOptions.
 * /metrics asks every ready worker for its metrics (prom-client JSON, over
 * the cluster channel) and sums them with prom-client's AggregatorRegistry;
 * the primary adds its own: smtpscreen_workers{state}, the restarts, and the
 * connections it handed to each worker and not yet reported closed (with
 * workers_accept shared: the open count each worker last reported)
 * (smtpscreen_worker_connections{worker}: the only series with a worker
 * label, since the balance between workers is what it shows). A worker that
 * does not answer within ASK_MS is left out of the sum (and counted in
 * smtpscreen_workers{state="silent"}).
 * /healthz: the primary's loop answers and every worker is up; /readyz: every
 * worker answers its own /readyz with ok (server/admin.ts readyz()), and the
 * primary is not draining. Peer and token checks are server/admin.ts's.
 * The cache admin socket works on a store of the primary's own (memory in
 * front of the shared Redis tier: the workers' shared state); a change
 * (delete, pass, import) goes to every worker too, for its memory tier.
 */
import http from 'node:http';
import type net from 'node:net';
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Logger } from 'pino';
import type { Config, HostPort } from '../config/types.js';
import type { Emitter } from '../log/emit.js';
import { MemoryStore } from '../cache/memory.js';
import { TieredStore } from '../cache/tiered.js';
import { peerAllowed, readAdminToken, tokenMatches } from './admin.js';
import { startAdminSocket, type AdminSocket } from './admin-socket.js';
import type { Slot, ToPrimary, ToWorker } from './cluster-ipc.js';

/** How long a worker may take to answer /metrics or /readyz. */
const ASK_MS = 2000;

export interface PrimaryAdminOptions {
  config: () => Config;
  slots: readonly Slot[];
  emitter: Emitter;
  counters: Record<string, number>;
  log: Logger;
  total: () => number;
  stopping: () => boolean;
  listening: () => string[];
}

export interface PrimaryAdmin {
  readonly addresses: string[];
  /** A worker's answer to a question of ours. */
  onReply(m: ToPrimary): void;
  close(): Promise<void>;
}

function fmt(h: HostPort): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

export async function startPrimaryAdmin(o: PrimaryAdminOptions): Promise<PrimaryAdmin> {
  const config = o.config();
  let nextId = 1;
  const waiting = new Map<number, (data: unknown) => void>();
  const ask = (s: Slot, q: 'metrics' | 'ready?'): Promise<unknown> => new Promise((resolve) => {
    const w = s.worker;
    if (w === null || !s.ready) {
      resolve(undefined);
      return;
    }
    const id = nextId++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve(undefined);
    }, ASK_MS);
    waiting.set(id, (data) => {
      clearTimeout(timer);
      waiting.delete(id);
      resolve(data);
    });
    const msg: ToWorker = { t: q, id };
    w.send(msg);
  });

  // The primary's own series.
  const own = new Registry();
  let silent = 0;
  new Gauge({
    name: 'smtpscreen_workers', help: 'Worker processes by state: ready (serving), down (restarting), silent (did not answer the last scrape).',
    labelNames: ['state'], registers: [own],
    collect() {
      const ready = o.slots.filter((s) => s.ready).length;
      this.set({ state: 'ready' }, ready);
      this.set({ state: 'down' }, o.slots.length - ready);
      this.set({ state: 'silent' }, silent);
    },
  });
  new Counter({
    name: 'smtpscreen_worker_restarts_total', help: 'Workers forked again after one died.', registers: [own],
    collect() {
      this.reset();
      this.inc(o.slots.reduce((a, s) => a + s.restarts, 0));
    },
  });
  new Gauge({
    name: 'smtpscreen_worker_connections', help: 'Connections open in each worker: handed by the primary and not yet reported closed (workers_accept primary), or as the worker last reported (shared).',
    labelNames: ['worker'], registers: [own],
    collect() {
      for (const s of o.slots) this.set({ worker: String(s.index) }, s.open);
    },
  });

  const metricsText = async (): Promise<string> => {
    const answers = await Promise.all(o.slots.map((s) => ask(s, 'metrics')));
    const got = answers.filter((a): a is Array<MetricObjectWithValues<MetricValue<string>>> => Array.isArray(a));
    silent = o.slots.filter((s) => s.ready).length - got.length;
    const sum: Registry = got.length > 0 ? AggregatorRegistry.aggregate(got) : new Registry();
    return (await Registry.merge([sum, own]).metrics());
  };

  const servers: http.Server[] = [];
  const addresses: string[] = [];
  const send = (res: http.ServerResponse, code: number, type: string, body: string): void => {
    res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };
  const json = (res: http.ServerResponse, code: number, obj: unknown): void => send(res, code, 'application/json', `${JSON.stringify(obj)}\n`);
  const handle = (bindHost: string) => (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const cfg = o.config();
    if (!peerAllowed(req.socket.remoteAddress, bindHost, cfg.admin.allow_remote)) {
      json(res, 403, { error: 'forbidden: only loopback peers are served (admin.allow_remote)' });
      return;
    }
    let token: string | null;
    try {
      token = readAdminToken(cfg);
    } catch (err) {
      json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (!tokenMatches(req.headers.authorization, token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="smtpscreen"');
      json(res, 401, { error: 'unauthorized: a bearer token is needed (admin.token)' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: 'method not allowed' });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metricsText().then((t) => send(res, 200, own.contentType, t), (err: unknown) => json(res, 500, { error: String(err) }));
      return;
    }
    if (path === '/healthz') {
      const workers = o.slots.map((s) => ({ worker: s.index, pid: s.pid, up: s.ready }));
      const ok = workers.every((w) => w.up);
      json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'fail', pid: process.pid, uptime_s: Math.round(process.uptime()), workers });
      return;
    }
    if (path === '/readyz') {
      void Promise.all(o.slots.map((s) => ask(s, 'ready?'))).then((answers) => {
        const workers: Array<Record<string, unknown>> = answers.map((a, i) => ({ worker: i, ...(a as Record<string, unknown> | undefined ?? { status: 'fail', reason: 'not running or no answer' }) }));
        const ok = !o.stopping() && workers.every((w) => w.status === 'ok');
        json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'fail', draining: o.stopping(), listening: o.listening(), workers });
      });
      return;
    }
    json(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
  };
  for (const hp of config.admin.listen) {
    const srv = http.createServer(handle(hp.host));
    srv.requestTimeout = 10_000;
    srv.maxConnections = 64;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err: Error) => reject(new Error(`admin.listen ${fmt(hp)}: ${err.message}`)));
      srv.listen({ host: hp.host, port: hp.port }, () => resolve());
    });
    servers.push(srv);
    const a = srv.address() as net.AddressInfo;
    addresses.push(fmt({ host: a.address, port: a.port }));
  }

  let sock: AdminSocket | null = null;
  let store: TieredStore | null = null;
  if (config.admin.socket !== null && config.cache.store === 'redis') {
    const { RedisTier } = await import('../cache/redis.js');
    store = new TieredStore(new MemoryStore(1000), new RedisTier({ config: config.cache.redis, emitter: o.emitter, firstSeenKeepMs: config.greylist.max_delay }));
    sock = await startAdminSocket(config.admin.socket, store, o.emitter, Date.now, (line) => {
      const m: ToWorker = { t: 'admin', line };
      for (const s of o.slots) if (s.ready) s.worker?.send(m);
    });
  }

  return {
    addresses,
    onReply(m) {
      if (m.t === 'metrics' || m.t === 'ready?') waiting.get(m.id)?.(m.data);
    },
    async close() {
      await sock?.close();
      await store?.shared?.close();
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
    },
  };
}
