/*
 * test/helpers/fake-session.ts - drive the session state machine by hand:
 * a fake clock, fake sockets, a fake DNS lookup and a log sink, around the
 * real session code (src/session/).
 *
 * Exports: FakeClock, FakeSocket, FakeLookup, harness(), Harness.
 * Nothing here touches the network or real timers: a test feeds client
 * bytes (client.feed), hang-ups (client.hangup), DNS answers
 * (dns.answer) and timer expiries (clock.advance) in any order it likes, and
 * reads what the session wrote (client.written), logged (h.events) and
 * stored (h.writes).
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Socket } from 'node:net';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/types.js';
import { MemoryStore } from '../../src/cache/memory.js';
import type { VerdictRecord } from '../../src/cache/store.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { parseAccessList } from '../../src/checks/access.js';
import { Dnsbl } from '../../src/checks/dnsbl.js';
import { Policy } from '../../src/checks/policy.js';
import type { EarlyCheck } from '../../src/checks/check.js';
import type { PolicyTransport } from '../../src/net/policy-http.js';
import type { DnsLookup, LookupResult, LookupType } from '../../src/dns/types.js';
import { TestIndex } from '../../src/checks/tests.js';
import type { Clock, TimerHandle } from '../../src/session/clock.js';
import type { Ctx, ScreenSocket, Session } from '../../src/session/state.js';
import type { Generation, Personality } from '../../src/session/generation.js';
import { makePersonalities } from '../../src/server/stress.js';
import { makeBackend, makeRouting } from '../../src/handoff/backend.js';
import { startSession } from '../../src/session/machine.js';
import { Emitter } from '../../src/log/emit.js';

interface Timer { id: number; at: number; fn: (a: unknown, b: unknown) => void; a: unknown; b: unknown }

export class FakeClock implements Clock {
  t = 1_800_000_000_000;
  #next = 1;
  timers: Timer[] = [];
  now = (): number => this.t;
  setTimeout = <A, B = undefined>(fn: (a: A, b: B) => void, ms: number, a: A, b?: B): TimerHandle => {
    const id = this.#next++;
    this.timers.push({ id, at: this.t + Math.max(1, ms), fn: fn as Timer['fn'], a, b });
    return id;
  };
  clearTimeout = (h: TimerHandle): void => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  /** Run every timer due within the next ms, in time order; time moves to each. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((x, y) => x.at - y.at || x.id - y.id)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn(due.a, due.b);
    }
    this.t = end;
  }
}

/** The parts of a net.Socket the session uses, in memory. */
export class FakeSocket extends EventEmitter {
  written: string[] = [];
  ended = false;
  destroyed = false;
  writable = true;
  paused = true;
  bytesRead = 0;
  bytesWritten = 0;
  localAddress = '127.0.0.1';
  localPort = 25;
  remoteAddress: string;
  remotePort: number;
  /** Writes after the session closed this socket: must stay 0. */
  writesAfterEnd = 0;
  #buffered: Buffer[] = [];

  constructor(remote = '192.0.2.1', port = 40000) {
    super();
    this.remoteAddress = remote;
    this.remotePort = port;
  }
  write(data: string | Buffer, cb?: () => void): boolean {
    if (this.ended || this.destroyed) this.writesAfterEnd++;
    const text = typeof data === 'string' ? data : data.toString('latin1');
    this.written.push(text);
    this.bytesWritten += text.length;
    if (cb !== undefined) queueMicrotask(cb);
    return true;
  }
  end(data?: string | Buffer): this {
    if (data !== undefined) this.write(data);
    this.ended = true;
    this.writable = false;
    // The peer reads our FIN and closes its side.
    queueMicrotask(() => this.destroy());
    return this;
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    queueMicrotask(() => this.emit('close', false));
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    const b = this.#buffered;
    this.#buffered = [];
    for (const c of b) this.emit('data', c);
    return this;
  }
  read(): null {
    return null;
  }
  unshift(chunk: Buffer): void {
    this.#buffered.unshift(chunk);
  }
  setNoDelay(): this {
    return this;
  }
  pipe<T extends NodeJS.WritableStream>(dest: T): T {
    this.on('data', (c: Buffer) => dest.write(c));
    return dest;
  }
  /** The client sends bytes (kept while paused, as the kernel would). */
  feed(text: string | Buffer): void {
    if (this.destroyed) return;
    const chunk = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    this.bytesRead += chunk.length;
    if (this.paused) this.#buffered.push(chunk);
    else this.emit('data', chunk);
  }
  /** The client hangs up (FIN, then close). */
  hangup(): void {
    if (this.destroyed) return;
    this.emit('end');
    this.destroy();
  }
  /** Everything written to it, as one string. */
  text(): string {
    return this.written.join('');
  }
}

/** A DNS lookup whose answers the test gives (or never gives). */
export class FakeLookup implements DnsLookup {
  pending: Array<{ name: string; type: LookupType; resolve: (r: LookupResult) => void }> = [];
  lookup(name: string, type: LookupType): Promise<LookupResult> {
    return new Promise((resolve) => this.pending.push({ name, type, resolve }));
  }
  /** Answer every pending A lookup: listed (127.0.0.2) or not. */
  answerAll(listed: boolean): void {
    const p = this.pending;
    this.pending = [];
    for (const q of p) q.resolve(listed && q.type === 'A' ? { status: 'ok', records: ['127.0.0.2'], ttl: 600 } : { status: 'nxdomain', ttl: 600 });
  }
}

export interface Harness {
  ctx: Ctx;
  clock: FakeClock;
  store: MemoryStore;
  dns: FakeLookup;
  events: Array<Record<string, unknown>>;
  /** Every store write: [key, record]. */
  writes: Array<[string, VerdictRecord]>;
  /** Backend sockets the session opened. */
  backends: FakeSocket[];
  /** Where each of them was opened: "host:port" (the routed backend). */
  targets: string[];
  personality: Personality;
  config: Config;
  /** Start a session for a client on a new fake socket. */
  connect(client?: string): { sock: FakeSocket; session: () => Session | undefined };
  named(name: string): Array<Record<string, unknown>>;
}

/** A session world for `raw` (a configuration as YAML would give it), with an access list given as its text. */
export function harness(raw: Record<string, unknown> = {}, accessList: string | null = null, opts: { policy?: PolicyTransport; down?: readonly string[] } = {}): Harness {
  const config = validateConfig({ hostname: 'screen.test', ...raw });
  const clock = new FakeClock();
  const events: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info', base: null, timestamp: false }, new Writable({
    write(c, _e, cb) {
      events.push(JSON.parse(String(c)) as Record<string, unknown>);
      cb();
    },
  }));
  const store = new MemoryStore(1000);
  const writes: Array<[string, VerdictRecord]> = [];
  const set = store.set.bind(store);
  store.set = (k: string, r: VerdictRecord): void => {
    writes.push([k, r]);
    set(k, r);
  };
  const dns = new FakeLookup();
  const enabled: number[] = [];
  if (config.pregreet.enable) enabled.push(TestIndex.pregreet);
  let dnsbl: Dnsbl | null = null;
  if (config.dnsbl.sites.length > 0) {
    const d = config.dnsbl;
    dnsbl = new Dnsbl(d.sites, {
      threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
      slowWarningMs: d.slow_warning, timeoutMs: d.timeout, txt: false, replyMap: d.reply_map,
      health: { enable: false, intervalMs: 60_000, listed: '127.0.0.2', unlisted: '127.0.0.1', errorLimit: d.health.error_limit, sites: {} },
    }, dns, (a, zone) => `${a.split('.').reverse().join('.')}.${zone}`, () => undefined, clock.now);
    enabled.push(TestIndex.dnsbl);
  }
  if (config.greylist.enable) enabled.push(TestIndex.greylist);
  // policy.url set and a transport given: the policy check on the fake clock, its events into the same log.
  let policy: Policy | null = null;
  const counters: Record<string, number> = {};
  const emitter = new Emitter(log, counters);
  if (config.policy.url !== null && opts.policy !== undefined) {
    const p = config.policy;
    policy = new Policy({
      budgetMs: p.budget, maxInFlight: p.max_in_flight, fail: p.fail, slowWarningMs: p.slow_warning, ttlMaxMs: p.ttl_max, cacheMax: p.cache_max,
      breaker: { failures: p.breaker.failures, windowMs: p.breaker.window, openMs: p.breaker.open_for }, hostname: config.hostname,
    }, opts.policy, (e, f, l) => emitter.emit(e, f, l), clock.now);
  }
  const checks: EarlyCheck[] = [];
  if (dnsbl !== null) checks.push(dnsbl);
  if (policy !== null) checks.push(policy as unknown as EarlyCheck);
  const pc = makePersonalities(config, enabled);
  const b = config.backend;
  const gen = {
    config, replies: makeReplies(config.hostname, config.banner), access: accessList === null ? null : parseAccessList(accessList, 'test-access'), dnsbl, policy, checks, tls: null,
    backend: makeBackend('127.0.0.1', 2525, b.handoff, b.connect_timeout, b.handshake_timeout, null),
  } as unknown as Generation & { personalities: Generation['personalities'] };
  // The named backends (backends:) and routes:, without probes (a test marks one down through opts.down).
  (gen as { routing: Generation['routing'] }).routing = makeRouting(gen.backend, config.backends.map((nb) => makeBackend(nb.address.host, nb.address.port, nb.handoff, nb.connect_timeout, nb.handshake_timeout, null,
    (opts.down ?? []).includes(nb.name) ? { handoffMode: false, suspect: () => {}, down: { stage: 'connect', reason: 'ECONNREFUSED' } } : null, nb.name)), config.routes, config.routes_fallback);
  gen.personalities = { normal: { ...pc.normal, gen }, stress: { ...pc.stress, gen } };
  const targets: string[] = [];
  const backends: FakeSocket[] = [];
  const ctx: Ctx = {
    gen, clock, log, store, sessions: new Set(), perClient: new Map(), draining: false, pendingProxy: 0, backends: 0, tlsHandshakes: 0, dummyOnly: 0,
    fdLimit: null, counters, emitter, noteOpen: () => undefined,
    connect: (o: { host?: string | undefined; port?: number | undefined }) => {
      const s = new FakeSocket('127.0.0.1', 2525);
      s.paused = false;
      backends.push(s);
      targets.push(`${o.host ?? ''}:${o.port ?? ''}`);
      return s as unknown as Socket;
    },
  };
  let port = 40000;
  return {
    ctx, clock, store, dns, events, writes, backends, targets, config, personality: gen.personalities.normal,
    connect(client = '192.0.2.1') {
      const sock = new FakeSocket(client, ++port);
      startSession(ctx, sock as unknown as ScreenSocket, client, port, gen.personalities.normal);
      const session = (): Session | undefined => [...ctx.sessions].find((x) => (x.socket as unknown) === sock);
      return { sock, session };
    },
    named: (name) => events.filter((e) => e['event'] === name),
  };
}

/** Let queued microtasks and immediates run (DNS answers, closes). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/** The client's side of a dummy SMTP session up to RCPT. */
export function envelope(sock: FakeSocket): void {
  sock.feed('EHLO bot.test\r\n');
  sock.feed('MAIL FROM:<a@bot.test>\r\n');
  sock.feed('RCPT TO:<b@screen.test>\r\n');
}

/** The backend accepts and greets (mode none: its greeting completes the client's). */
export function backendGreets(h: Harness): void {
  const b = h.backends.at(-1);
  if (b === undefined) throw new Error('no backend connection was opened');
  b.emit('connect');
  b.feed('220 backend.test ESMTP\r\n');
}
