/*
 * session/dummy.ts - wires a session to the dummy SMTP engine (src/smtp/dummy-engine.ts).
 *
 * Exports: enterDummy().
 * The engine is pure; this file owns what it cannot: the socket, the line
 * reader and the command time limit (one timer, re-armed after each command:
 * the total time to receive one command, as postscreen_command_time_limit).
 * A pregreeting client (checks/pregreet.ts kept its early bytes) gets no
 * "220 " line, as from postscreen: its early bytes are the session's first
 * input, so the command it sent too early is answered, and logged in NOQUEUE.
 * It also gives the engine the deep tests due for this client (session/deep.ts);
 * their verdict is written when the session ends (close.ts calls concludeDummy).
 * STARTTLS (s.gen.tls set): once the 220 is written, the raw socket is wrapped
 * in a server TLSSocket (s.io); input pipelined after STARTTLS is discarded,
 * the handshake gets dummy.command_time_limit, and a failed or late handshake
 * logs TLS FAIL and ends the session. The TLSSocket's 'close' and 'end' go to
 * the same handlers as the raw socket's (onClientClose accounts once).
 * deep.after_pass handoff: the EHLO reply is the one learned from the backend
 * (handoff/ehlo.ts), the engine keeps the raw envelope, and at the RCPT that
 * completes the deep tests session/handoff.ts replayHandoff() may take the
 * connection; when that falls back, resumeDummy() hands it back here.
 */
import type tls from 'node:tls';
import { lazyRequire } from '../util/lazy-require.js';
import { DummyEngine, type EngineOutput, type Envelope } from '../smtp/dummy-engine.js';
import { LineReader, type LineSink } from '../smtp/line-reader.js';
import { EV, type EventName } from '../log/events.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { closeWith, onClientClose, onClientEnd, onSocketError } from './close.js';
import { DeepTests } from '../checks/deep.js';
import { deepDue } from './verdict.js';
import { replayHandoff } from './handoff.js';
import { replayVerdict, routeFor } from './route.js';
import { guardSocket, guardTimer } from './guard.js';
import type { PolicyRun } from '../checks/policy.js';

const NOTHING = Buffer.alloc(0);

/** Engine output and line sink of one dummy session (only enforced clients get one). */
class DummyPort implements EngineOutput, LineSink {
  readonly s: Session;
  /** deep.after_pass handoff: the keywords this client's EHLO offered (learned from the backend), or null (the built-in list). */
  readonly offered: readonly string[] | null;
  /** The handoff was asked for once: a fallback is not retried in the session. */
  #tried = false;
  constructor(s: Session, offered: readonly string[] | null) {
    this.s = s;
    this.offered = offered;
  }
  send(text: string): void {
    const sock = this.s.io;
    if (!this.s.closed && sock.writable) sock.write(text);
  }
  startTls(reply: string): void {
    const s = this.s;
    if (s.closed || s.gen.tls === null) return;
    const raw = s.socket;
    const limit = s.config.tls.max_handshakes;
    if (s.ctx.tlsHandshakes >= limit) {
      // Each handshake in progress holds ~70 KB: a bounded number at once, the rest come back later.
      s.event(EV.TLS_FAIL, { reason: 'busy', after_ms: 0, limit });
      closeWith(s, s.gen.replies.serviceUnavailable);
      return;
    }
    // Nothing more from the plain socket: the rest of this chunk and later bytes are dropped.
    s.reader?.stop();
    raw.removeListener('data', onDummyData);
    raw.pause();
    s.clearTimer();
    const started = s.ctx.clock.now();
    s.ctx.tlsHandshakes++;
    handshaking.set(s, started);
    raw.once('close', onHandshakeSocketClose);
    s.timer = s.ctx.clock.setTimeout(onTlsTimeout, s.config.dummy.command_time_limit, s, started);
    if (raw.writable) raw.write(reply, () => upgrade(s));
  }
  close(): void {
    closeWith(this.s, null);
  }
  event(name: EventName, fields: Record<string, unknown>): void {
    this.s.event(name, fields);
  }
  pending(): Buffer {
    return this.s.reader?.rest() ?? NOTHING;
  }
  handover(env: Envelope): boolean {
    if (this.#tried) return false;
    this.#tried = true;
    return replayHandoff(this.s, env, this.offered, resumeDummy);
  }
  askRcpt(helo: string, from: string, to: string): boolean {
    const s = this.s;
    const policy = s.gen.policy;
    if (policy === null || !s.config.policy.at_rcpt) return false;
    // Nothing more is read until the answer (at most policy.budget): the rest of the input waits in the reader.
    s.reader?.stop();
    s.socket.pause();
    s.clearTimer();
    this.#asking = true;
    void policy.askRcpt(s.client, s.port, helo, from, to).then((run) => policyAnswered(s, run, helo, from, to));
    return true;
  }
  /** A policy call at RCPT is out: the reader is stopped, no command timer runs. */
  #asking = false;
  get asking(): boolean {
    return this.#asking;
  }
  answered(): void {
    this.#asking = false;
  }
  onLine(line: Buffer, bareLf: boolean, buffered: number): void {
    const s = this.s;
    if (s.closed || s.engine === null) return;
    s.engine.onLine(line, bareLf, buffered);
    if (s.closed) s.reader?.stop();
    else if (this.#asking) return; // askRcpt(): the answer re-arms the timer
    else if (s.phase !== 'dummy') return; // replayHandoff() took the connection: its own timer runs
    else if (s.engine.tlsActive && !s.tls) return; // STARTTLS: the handshake timer runs
    else armCommandTimer(s);
  }
  onOverlong(length: number): void {
    const s = this.s;
    if (s.closed || s.engine === null) return;
    s.engine.onOverlong(length);
    if (s.closed) s.reader?.stop();
  }
}

export function enterDummy(s: Session): void {
  const ctx = s.ctx;
  s.phase = 'dummy';
  // postscreen sends no banner to a pregreeting client: the engine answers what it said early instead.
  const early = s.pregreet?.takeKept() ?? null;
  s.pregreet = null; // its result is in s.tests; nothing of it is needed in the dummy session
  if (early === null) s.io.write(s.gen.replies.greeting);
  s.reader = new LineReader(s.config.dummy.line_length_limit);
  const deepOpts = s.personality.deep;
  const todo = deepDue(deepOpts, s.record, s.ctx.clock.now());
  s.deep = deepOpts !== null && todo !== 0 ? new DeepTests(deepOpts, todo) : null;
  const sameConnection = s.config.deep.after_pass === 'handoff' && s.deep !== null && s.rejectReason === 'deep';
  if (!sameConnection) markDummyOnly(s);
  const learned = sameConnection ? routeFor(s, replayVerdict(s), true).backend?.ehlo?.current ?? null : null;
  const port = new DummyPort(s, learned?.offered ?? null);
  s.engine = new DummyEngine(
    {
      replies: s.gen.replies,
      rejectReply: s.rejectReply,
      rejectReason: s.rejectReason,
      commandCountLimit: s.config.dummy.command_count_limit,
      hardErrorLimit: s.config.dummy.hard_error_limit,
      deep: s.deep,
      tls: s.gen.tls !== null,
      ehlo: learned,
      keepEnvelope: sameConnection,
    },
    port,
  );
  s.socket.on('data', onDummyData);
  s.socket.resume();
  armCommandTimer(s);
  if (early !== null) s.reader.feed(early, port);
}

/** The session's DummyPort: the engine's output (no table beside the session to find it). */
function portOf(s: Session): DummyPort | undefined {
  return (s.engine?.output as DummyPort | undefined) ?? undefined;
}

/** policy.at_rcpt: the service answered (run null: it has no say); the engine answers the RCPT and the session reads on. */
function _policyAnswered(s: Session, run: PolicyRun | null, helo: string, from: string, to: string): void {
  const port = portOf(s);
  port?.answered();
  const policy = s.gen.policy;
  if (s.closed || s.engine === null || s.reader === null || policy === null || port === undefined) return;
  let reply: string | null = null;
  if (run !== null) {
    const o = policy.outcome(run);
    if (o.failed) reply = o.reply(550);
    if (o.failed || o.note != null) {
      s.event(EV.POLICY, { ...(o.note?.fields ?? o.fields), ...(o.failed ? { action: 'enforce' } : {}), stage: 'rcpt', helo, from, to });
    }
  }
  s.engine.answerRcpt(reply);
  if (s.closed) return;
  readAgain(s, port);
}

/** The engine answered what it held: read again, the input that waited first, with a fresh command timer. */
function readAgain(s: Session, sink: DummyPort | undefined): void {
  const reader = s.reader;
  if (reader === null) return;
  const pending = reader.takePending();
  reader.reset();
  s.socket.resume();
  armCommandTimer(s);
  if (pending.length > 0 && sink !== undefined) reader.feed(pending, sink);
}

/** This session will not be handed over: the accept-time descriptor count keeps no backend descriptor for it. */
function markDummyOnly(s: Session): void {
  if (s.dummyOnly) return;
  s.dummyOnly = true;
  s.ctx.dummyOnly++;
}

function _onDummyData(this: ScreenSocket, chunk: Buffer): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.reader === null) return;
  const sink = portOf(s);
  if (sink !== undefined) s.reader.feed(chunk, sink);
}

/**
 * replayHandoff() fell back: the engine refuses the RCPT it was holding (450,
 * NOQUEUE) and the dummy session goes on with the input the client already sent.
 */
export function resumeDummy(s: Session): void {
  if (s.closed || s.engine === null || s.reader === null) return;
  s.phase = 'dummy';
  markDummyOnly(s); // a fallback is not retried
  s.engine.refuseHandedRcpt();
  if (s.closed) return;
  readAgain(s, portOf(s));
}

function armCommandTimer(s: Session): void {
  s.clearTimer();
  s.timer = s.ctx.clock.setTimeout(onCommandTimeout, s.config.dummy.command_time_limit, s);
}

function _onCommandTimeout(s: Session): void {
  s.timer = null;
  if (s.closed || s.engine === null) return;
  s.engine.onTimeout();
  if (!s.closed) closeWith(s, null);
}

/** Handshakes under way (counted in ctx.tlsHandshakes): session -> when STARTTLS was accepted. */
const handshaking = new WeakMap<Session, number>();

/** The handshake of `s` is over (secure, failed, timed out or the client left): release its slot once. */
function handshakeDone(s: Session): void {
  if (handshaking.delete(s)) s.ctx.tlsHandshakes--;
}

function onHandshakeSocketClose(this: ScreenSocket): void {
  const s = this[kSession];
  if (s !== undefined) handshakeDone(s);
}

/** The 220 Ready reply is written: wrap the raw socket (server side) and read the session from the TLSSocket. */
function upgrade(s: Session): void {
  const secureContext = s.gen.tls;
  if (s.closed || secureContext === null || s.socket.destroyed) return;
  s.reader?.takePending();
  s.reader?.reset();
  // Bytes the raw socket buffered after STARTTLS would be fed to the TLS layer: drop them.
  while (s.socket.read() !== null);
  // node:tls is loaded at the first STARTTLS (util/lazy-require.ts).
  const sec = new (lazyRequire('node:tls') as typeof tls).TLSSocket(s.socket, { isServer: true, secureContext }) as ScreenSocket;
  sec[kSession] = s;
  s.io = sec;
  s.tls = true;
  sec.on('secure', onTlsSecure);
  sec.on('error', onTlsError);
  sec.on('data', onDummyData);
  sec.on('end', onClientEnd);
  sec.on('close', onClientClose);
}

function _onTlsSecure(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined) return;
  handshakeDone(s);
  if (s.closed) return;
  armCommandTimer(s);
}

function tlsFail(s: Session, reason: string, started: number): void {
  handshakeDone(s);
  s.event(EV.TLS_FAIL, { reason, after_ms: s.ctx.clock.now() - started });
  const io = s.io;
  closeWith(s, null);
  io.destroy();
  if (io !== s.socket) s.socket.destroy();
}

function _onTlsError(this: ScreenSocket, err: NodeJS.ErrnoException): void {
  const s = this[kSession];
  if (s === undefined) return;
  const started = handshaking.get(s);
  if (started === undefined || s.closed) {
    onSocketError.call(this, err);
    return;
  }
  tlsFail(s, err.code ?? err.message, started);
}

function _onTlsTimeout(s: Session, started: number): void {
  s.timer = null;
  if (s.closed) return;
  tlsFail(s, 'timeout', started);
}
// The entry points Node calls, each wrapped once: a throw ends that session with 421, not the process (session/guard.ts).
const onDummyData = guardSocket('dummy data', _onDummyData);
const policyAnswered = guardTimer('policy answer', _policyAnswered);
const onCommandTimeout = guardTimer('command timer', _onCommandTimeout);
const onTlsTimeout = guardTimer('tls timer', _onTlsTimeout);
const onTlsSecure = guardSocket('tls secure', _onTlsSecure);
const onTlsError = guardSocket('tls error', _onTlsError);
