/*
 * session/state.ts - the Session record (one per accepted connection) and the
 * shared screener context.
 *
 * Exports: Session, Ctx, Phase, PendingDecision.
 * The Session is the sole owner of the client socket, the backend socket and
 * the session timer. Handlers elsewhere are module-level functions that find
 * their Session through the socket's `kSession` slot, so no closure is made
 * per connection.
 */
import type { Socket, TcpNetConnectOpts } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { VerdictStore, VerdictRecord } from '../cache/store.js';
import type { DummyEngine } from '../smtp/dummy-engine.js';
import type { LineReader } from '../smtp/line-reader.js';
import type { PregreetProbe } from '../checks/pregreet.js';
import type { CheckOutcome, CheckRun } from '../checks/check.js';
import type { DeepTests } from '../checks/deep.js';
import type { SpfAllowlist } from '../checks/spf-allowlist.js';
import type { Generation, Personality } from './generation.js';
import type { Clock, TimerHandle } from './clock.js';
import type { EventName } from '../log/events.js';
import type { Emitter } from '../log/emit.js';

export type Phase = 'proxy' | 'pregreet' | 'dummy' | 'handoff' | 'splice' | 'closed';

export const kSession = Symbol('smtpscreen.session');

export interface ScreenSocket extends Socket {
  [kSession]?: Session;
}

/**
 * The runtime state shared by all sessions of one screener: it survives a
 * reload. What the configuration yields is the generation (session/generation.ts).
 */
export interface Ctx {
  /** The generation new connections get; a reload swaps it. */
  gen: Generation;
  /** Time and timers of every session (session/clock.ts: realClock, or a fake one in tests). */
  clock: Clock;
  /** Opens a backend connection (node:net connect; a fake in tests). */
  connect: (opts: TcpNetConnectOpts) => Socket;
  log: Logger;
  store: VerdictStore;
  sessions: Set<Session>;
  perClient: Map<string, number>;
  draining: boolean;
  /** Connections still reading their PROXY header (they count against the global limit). */
  pendingProxy: number;
  /** STARTTLS handshakes in progress (bounded by tls.max_handshakes). */
  tlsHandshakes: number;
  /** Backend sockets open (each costs a file descriptor). */
  backends: number;
  /** Sessions that will not be handed over (dummy engine): no backend descriptor is kept for them (server/fdlimit.ts). */
  dummyOnly: number;
  /** Soft RLIMIT_NOFILE, or null when unknown (see server/fdlimit.ts). */
  fdLimit: number | null;
  /** Counters for `stats` and the demo. */
  counters: Record<string, number>;
  /** Counts and logs events at their table level (log/emit.ts); its counts object is `counters`. */
  emitter: Emitter;
  /** Called after a session is accounted for (the drain watches it). */
  onSessionEnd?: () => void;
  /** A client's count in ctx.perClient changed (a shared-accept worker reports it: server/worker.ts). */
  onClientCount?: (client: string, count: number) => void;
  /**
   * workers_accept: shared: the clients at or over limits.max_per_client on the whole host, with their host
   * count, as the primary last said (server/host-counts.ts); absent in one process.
   */
  hostClients?: Map<string, number>;
  /** The open connection count changed (the server's stress state watches it). */
  noteOpen: (count: number) => void;
  /** access.spf: permits consulted after the access list (server/spf-refresh.ts keeps it across reloads), or null/absent. */
  spf?: SpfAllowlist | null;
}

/** The early checks' outcomes, kept while the shared tier decides greylisting for `network` (session/conclude.ts). */
export interface PendingDecision {
  readonly network: string;
  readonly now: number;
  readonly checks: ReadonlyArray<{ readonly test: number; readonly outcome: CheckOutcome }>;
}

export class Session {
  readonly ctx: Ctx;
  /**
   * The personality this connection was accepted under, chosen at accept and
   * kept to the end, with its generation: its enabled tests and deep tests,
   * and its configuration. Per-connection values (pregreet.wait, dummy.*, the
   * actions) are read from s.config, never from the generation's, so that the
   * stress values apply.
   */
  readonly personality: Personality;
  /** The accepted (raw) socket: 'close' accounting and DISCONNECT byte counts. */
  readonly socket: ScreenSocket;
  /** Where the session reads and writes: the raw socket, or the TLSSocket after STARTTLS (session/dummy.ts). */
  io: ScreenSocket;
  /** Under TLS (after STARTTLS): never handed to the backend. */
  tls = false;
  client: string;
  port: number;
  readonly started: number;
  phase: Phase;
  closed = false;
  /** Counted in ctx.perClient under `client`. */
  counted = false;
  timer: TimerHandle | null = null;
  /** The test-state table (session/test-state.ts): TODO / PASS / FAIL / DONE per test, and the session bits below. */
  tests = 0;
  /** The client's stored record as read at accept, or the last one this session stored (remember()). A value: never edited. */
  record: VerdictRecord | null = null;
  /** The first enforced failure's 550 (the dummy engine's reply at RCPT), or null. */
  rejectReply: string | null = null;
  /** Why the dummy engine refuses RCPT: the enforced failure, or greylist / deep (450). */
  rejectReason = '';
  pregreet: PregreetProbe | null = null;
  /** The early checks' runs of this connection (indexed as gen.checks), started at accept; null when none runs. */
  runs: Array<CheckRun | null> | null = null;
  reader: LineReader | null = null;
  engine: DummyEngine | null = null;
  /** Deep tests run in this dummy session; concludeDummy() (session/deep.ts) sets it back to null. */
  deep: DeepTests | null = null;
  backendSock: ScreenSocket | null = null;
  /** Counted in ctx.dummyOnly. */
  dummyOnly = false;
  /** The backend route a check asked for (the policy's `route` reply), or null: kept for the router, logged in POLICY and HANDOFF. */
  route: string | null = null;
  /** Verdict name for HANDOFF: allowlisted, old, new, ignored. */
  verdict = '';
  /** The DNSBL score the early tests gave (summed as the verdict sums it), or null: no DNSBL answer this session (handoff/route.ts). */
  score: number | null = null;
  /** The shared tier's lookup (cache.store: redis) started at accept has not answered; conclude() stops waiting for it. */
  sharedPending = false;
  /** Between the early verdict and its greylist decision from the shared tier (session/conclude.ts); null otherwise. */
  deciding: PendingDecision | null = null;

  constructor(ctx: Ctx, socket: ScreenSocket, client: string, port: number, personality: Personality) {
    this.ctx = ctx;
    this.personality = personality;
    this.socket = socket;
    this.io = socket;
    this.client = client;
    this.port = port;
    this.started = ctx.clock.now();
    this.phase = 'proxy';
    socket[kSession] = this;
  }

  /** This connection's configuration (its personality's). */
  get config(): Config {
    return this.personality.config;
  }

  /** Served by the stress personality: every event of the session carries `stress: true`. */
  get stress(): boolean {
    return this.personality.stress;
  }

  /** The generation this connection was accepted under. */
  get gen(): Generation {
    return this.personality.gen;
  }

  /** Count and log one event with the session's identity fields (log/emit.ts: at its row's level). */
  event(event: EventName, fields?: Record<string, unknown>): void {
    const em = this.ctx.emitter;
    // Measured by the load bench: building the record when the level is off costs ~100 B per idle connection.
    if (!em.enabled(event)) {
      em.emit(event);
      return;
    }
    // Normal lines stay as small as before; only the stress personality adds a field.
    // The session goes along for an observer (metrics: time since connect, phase, personality).
    if (this.stress) em.emit(event, { client: this.client, port: this.port, stress: true, ...fields }, undefined, this);
    else if (fields === undefined) em.emit(event, { client: this.client, port: this.port }, undefined, this);
    else em.emit(event, { client: this.client, port: this.port, ...fields }, undefined, this);
  }

  /**
   * The one writer of the client's verdict record: keep it as the session's
   * and store it. `rec` is a new value (session/verdict.ts); null: nothing to store.
   */
  remember(rec: VerdictRecord | null): void {
    if (rec === null) return;
    this.record = rec;
    this.ctx.store.set(this.client, rec);
  }

  clearTimer(): void {
    if (this.timer !== null) {
      this.ctx.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
