/*
 * session/state.ts - the Session record (one per accepted connection) and the
 * shared screener context.
 *
 * Exports: Session, Ctx, Phase.
 * The Session is the sole owner of the client socket, the backend socket and
 * the session timer. Handlers elsewhere are module-level functions that find
 * their Session through the socket's `kSession` slot, so no closure is made
 * per connection.
 */
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Config, HostPort } from '../config/types.js';
import type { VerdictStore, VerdictRecord } from '../cache/store.js';
import type { AccessList } from '../checks/access.js';
import type { Replies } from '../smtp/replies.js';
import type { DummyEngine } from '../smtp/dummy-engine.js';
import type { LineReader } from '../smtp/line-reader.js';
import type { PregreetProbe } from '../checks/pregreet.js';
import type { Dnsbl, DnsblQuery } from '../checks/dnsbl.js';
import type { DeepOptions, DeepTests } from '../checks/deep.js';
import type { Personalities, Personality, StressState } from '../server/stress.js';
import type { EhloLearner } from '../handoff/ehlo.js';

export type Phase = 'proxy' | 'pregreet' | 'dummy' | 'handoff' | 'splice' | 'closed';

export const kSession = Symbol('smtpscreen.session');

export interface ScreenSocket extends Socket {
  [kSession]?: Session;
}

/** Shared by all sessions of one screener: configuration, tiers, counters. */
export interface Ctx {
  config: Config;
  log: Logger;
  store: VerdictStore;
  access: AccessList | null;
  replies: Replies;
  /** The DNSBL test, or null when no sites are configured. */
  dnsbl: Dnsbl | null;
  /** Test indexes (checks/tests.ts) that are enabled: PASS OLD needs all of them. */
  enabled: readonly number[];
  /** The deep (after-220) tests, or null when none is enabled (session/deep.ts deepOptions()). */
  deep: DeepOptions | null;
  /** STARTTLS in the dummy engine: built once at start from tls.cert / tls.key, or null (not offered). */
  tls: SecureContext | null;
  /** deep.after_pass handoff: what the backend offers in EHLO, learned (handoff/ehlo.ts); null otherwise. */
  ehlo: EhloLearner | null;
  /** Backend actually used (the built-in sink's port is known only once it listens). */
  backend: HostPort;
  sessions: Set<Session>;
  perClient: Map<string, number>;
  draining: boolean;
  /** Connections still reading their PROXY header (they count against the global limit). */
  pendingProxy: number;
  /** Backend sockets open (each costs a file descriptor). */
  backends: number;
  /** Soft RLIMIT_NOFILE, or null when unknown (see server/fdlimit.ts). */
  fdLimit: number | null;
  /** Counters for `stats` and the demo. */
  counters: Record<string, number>;
  /** Called after a session is accounted for (the drain watches it). */
  onSessionEnd?: () => void;
  /** The normal and the stress personality, built once at start (server/stress.ts). */
  personalities: Personalities;
  /** Whether new connections on `auto` listeners get the stress personality (server/stress.ts noteOpen()). */
  stressState: StressState;
}

export class Session {
  readonly ctx: Ctx;
  /**
   * This connection's configuration: its personality's, chosen at accept and
   * kept to the end. Per-connection values (pregreet.wait, dummy.*, the actions)
   * are read here, not from ctx.config, so that the stress values apply.
   */
  readonly config: Config;
  /** Served by the stress personality: every event of the session carries `stress: true`. */
  readonly stress: boolean;
  /** The personality this connection was accepted under: its enabled tests and deep tests. */
  readonly personality: Personality;
  /** The accepted (raw) socket: 'close' accounting and DISCONNECT byte counts. */
  readonly socket: ScreenSocket;
  /** Where the session reads and writes: the raw socket, or the TLSSocket after STARTTLS (session/dummy.ts). */
  io: ScreenSocket;
  /** Under TLS (after STARTTLS): never handed to the backend. */
  tls = false;
  client: string;
  port: number;
  readonly local: string;
  readonly localPort: number;
  readonly started: number;
  phase: Phase;
  closed = false;
  /** Counted in ctx.perClient under `client`. */
  counted = false;
  timer: NodeJS.Timeout | null = null;
  teaserSent = false;
  /** Cache record read at connect (or a new one); written back by conclude(). */
  record: VerdictRecord | null = null;
  /** The first enforced failure: the 550 reply the dummy engine gives at RCPT. */
  rejectReply: string | null = null;
  rejectReason = '';
  /** A test failed with `ignore`: hand over, but record no pass. */
  ignoredFail = false;
  pregreet: PregreetProbe | null = null;
  /** DNSBL lookups of this connection, started at accept. */
  dnsbl: DnsblQuery | null = null;
  /** The DNSBL score reached the allowlist threshold: every test passes. */
  dnsblAllowlisted = false;
  reader: LineReader | null = null;
  engine: DummyEngine | null = null;
  /** Deep tests run in this dummy session; concludeDummy() (session/deep.ts) sets it back to null. */
  deep: DeepTests | null = null;
  backendSock: ScreenSocket | null = null;
  /** Verdict name for HANDOFF: allowlisted, old, new, ignored. */
  verdict = '';

  constructor(ctx: Ctx, socket: ScreenSocket, client: string, port: number, personality: Personality) {
    this.ctx = ctx;
    this.config = personality.config;
    this.personality = personality;
    this.stress = personality.stress;
    this.socket = socket;
    this.io = socket;
    this.client = client;
    this.port = port;
    this.local = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.started = Date.now();
    this.phase = 'proxy';
    socket[kSession] = this;
  }

  /** Log one event with the session's identity fields. */
  event(event: string, fields?: Record<string, unknown>): void {
    const c = this.ctx.counters;
    c[event] = (c[event] ?? 0) + 1;
    // Measured by the load bench: building the record when info is off costs ~100 B per idle connection.
    if (!this.ctx.log.isLevelEnabled('info')) return;
    // Normal lines stay as small as before; only the stress personality adds a field.
    if (this.stress) this.ctx.log.info({ event, client: this.client, port: this.port, stress: true, ...fields });
    else if (fields === undefined) this.ctx.log.info({ event, client: this.client, port: this.port });
    else this.ctx.log.info({ event, client: this.client, port: this.port, ...fields });
  }

  clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
