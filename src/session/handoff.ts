/*
 * session/handoff.ts - hand a screened client to the backend smtpd.
 *
 * Exports: handoff(), replayHandoff().
 * connect (connect_timeout) → PROXY v1/v2 header, or XCLIENT after the
 * backend's greeting (handshake_timeout covers the whole dialogue) → the
 * backend's "220 " reply completes the greeting the client already saw →
 * splice both sockets (session/splice.ts: backpressure, half-close).
 * After a PROXY header the backend's 220 is held until it answers a NOOP
 * with 250: a backend that reads no header answers the header's lines first
 * (Postfix: 500, and for v2 a 221 and a close).
 * A backend that cannot be reached, fails the handshake or ends its side
 * during it gives the client a 421 and BACKEND FAIL is logged: the sender
 * retries, nothing is lost. One that speaks another handoff protocol (the
 * header answered as commands, XCLIENT refused, or no greeting from a backend
 * the probe found waiting for a PROXY header) is `reason: handoff mode`.
 *
 * replayHandoff() is the same-connection handoff (deep.after_pass: handoff):
 * the client is in the dummy engine, waiting for the reply to the RCPT that
 * completed its deep tests. Same connect and PROXY/XCLIENT steps (XCLIENT
 * also carries HELO and PROTO when the backend offers them), then the
 * client's own lines are replayed: its HELO/EHLO line (the backend's EHLO
 * reply must still offer what the dummy engine offered this client), its
 * MAIL line, its RCPT line.
 * The backend's reply to RCPT (or its refusal of MAIL) answers the client's
 * RCPT, then the splice starts, with any input the client had already sent
 * after the RCPT. Every failure before that reply is a fallback, not a 421:
 * HANDOFF FALLBACK (and BACKEND FAIL when the backend failed), the dummy
 * engine gives its 450 and the session goes on as with reconnect; the
 * passes are remembered either way, so the retry is PASS OLD.
 */
import { EV } from '../log/events.js';
import { encodeProxyV1, encodeProxyV2 } from '../net/proxy-protocol.js';
import { buildXclient } from '../net/xclient.js';
import { SmtpReplyReader } from '../net/smtp-reply.js';
import { ScreenError } from '../util/errors.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { closeWith, endSocket, onSocketError } from './close.js';
import type { Envelope } from '../smtp/dummy-engine.js';
import { concludeDummy } from './deep.js';
import { missingKeywords, parseEhloKeywords } from '../smtp/ehlo-keywords.js';
import type { Backend } from '../handoff/backend.js';
import { replayVerdict, routeFor } from './route.js';
import { guardSocket, guardTimer } from './guard.js';
import { splice } from './splice.js';

type Stage = 'connect' | 'greeting' | 'proxy' | 'xclient' | 'helo' | 'mail' | 'rcpt' | 'done';

/** Handshake state of one session; dropped once the splice starts. */
interface Handshake {
  stage: Stage;
  reader: SmtpReplyReader;
  xclient: string[];
  started: number;
  /** Same-connection handoff: the client's lines to replay; null for a plain handoff. */
  replay: Envelope | null;
  /** The replayed HELO line is an EHLO (its reply lists the backend's keywords). */
  ehlo: boolean;
  /** The keywords the dummy engine's EHLO offered this client (a replay only). */
  offered: readonly string[];
  /** A replay that falls back hands the session back here (session/dummy.ts resumeDummy()). */
  onFallback: (s: Session) => void;
  /** The backend chosen for this client (handoff/backend.ts chooseBackend()). */
  backend: Backend;
  /** The routes: rule that chose it, or -1 (none matched, or no routes). */
  rule: number;
  /** PROXY modes: the backend's 220, held until its reply to our NOOP shows it read the header. */
  greeting: Buffer | null;
}
const handshakes = new WeakMap<Session, Handshake>();

const CRLF = Buffer.from('\r\n');

export function handoff(s: Session): void {
  if (s.closed) return;
  // A session under TLS (dummy engine STARTTLS) is never spliced to the backend: its bytes are ciphertext.
  if (s.tls) {
    closeWith(s, null);
    return;
  }
  s.socket.removeAllListeners('data');
  const c = routeFor(s, s.verdict);
  if (c.backend === null) {
    // routes_fallback: tempfail, the rule's backend is down: the sender retries later.
    closeWith(s, s.gen.replies.serviceUnavailable);
    return;
  }
  openBackend(s, c.backend, null, [], noFallback, c.rule);
}


/**
 * deep.after_pass handoff, called by the dummy engine (through session/dummy.ts)
 * at the RCPT that completed the deep tests. False: not possible (HANDOFF
 * FALLBACK logged when a handoff was due), the engine refuses the RCPT as
 * usual. True: the backend dialogue started; it answers the RCPT.
 */
export function replayHandoff(s: Session, env: Envelope, offered: readonly string[] | null, onFallback: (s: Session) => void): boolean {
  if (s.closed || s.config.deep.after_pass !== 'handoff' || s.rejectReason !== 'deep') return false;
  const c = routeFor(s, replayVerdict(s));
  const backend = c.backend;
  const learned = backend?.ehlo?.current ?? null;
  let reason: string | null = null;
  if (backend === null) reason = 'routed backend down';
  else if (s.tls) reason = 'tls: the session is under STARTTLS';
  else if (s.ctx.draining) reason = 'stopping';
  else if (learned === null || offered === null) reason = 'backend EHLO not learned';
  else if (backend.mode === 'xclient' && learned.xclient === null) reason = 'backend does not offer XCLIENT';
  if (reason !== null || backend === null) {
    s.event(EV.HANDOFF_FALLBACK, { reason, stage: 'start' });
    return false;
  }
  s.reader?.stop();
  s.socket.pause();
  openBackend(s, backend, env, offered ?? [], onFallback, c.rule);
  return true;
}


function noFallback(): void {}

function openBackend(s: Session, target: Backend, replay: Envelope | null, offered: readonly string[], onFallback: (s: Session) => void, rule: number): void {
  const ctx = s.ctx;
  s.phase = 'handoff';
  s.clearTimer();
  const cs = s.socket;
  cs.pause();
  const bs = ctx.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true }) as ScreenSocket;
  bs[kSession] = s;
  s.backendSock = bs;
  ctx.backends++;
  bs.once('close', onBackendGone);
  bs.on('error', onBackendError);
  bs.on('close', onBackendClose);
  bs.on('end', onBackendEnd);
  bs.on('connect', onBackendConnect);
  bs.on('data', onBackendData);
  handshakes.set(s, { stage: 'connect', reader: new SmtpReplyReader(), xclient: [], started: s.ctx.clock.now(), replay, ehlo: false, offered, onFallback, backend: target, rule, greeting: null });
  s.timer = s.ctx.clock.setTimeout(onHandoffTimeout, target.connectTimeoutMs, s);
}

function _onBackendConnect(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.closed) return;
  const hs = handshakes.get(s);
  if (hs === undefined) return;
  const b = hs.backend;
  s.clearTimer();
  s.timer = s.ctx.clock.setTimeout(onHandoffTimeout, b.handshakeTimeoutMs, s);
  hs.stage = 'greeting';
  const src = { addr: s.client, port: s.port };
  const dst = { addr: s.socket.localAddress ?? '', port: s.socket.localPort ?? 0 };
  switch (b.mode) {
    case 'proxy-v1':
      this.write(encodeProxyV1(src, dst));
      break;
    case 'proxy-v2':
      this.write(encodeProxyV2(src, dst));
      break;
    case 'xclient':
      hs.xclient = buildXclient(hs.replay === null ? { addr: s.client, port: s.port } : xclientOf(s, b, hs.replay));
      break;
    case 'none':
      break;
  }
}

function _onBackendData(this: ScreenSocket, chunk: Buffer): void {
  const s = this[kSession];
  if (s === undefined || s.closed) return;
  const hs = handshakes.get(s);
  if (hs === undefined || hs.stage === 'done') return;
  let replies;
  try {
    replies = hs.reader.feed(chunk);
  } catch (err) {
    const reason = err instanceof ScreenError ? err.message : String(err);
    backendFail(s, hs.stage, `malformed reply: ${reason}`);
    return;
  }
  for (const r of replies) {
    const replay = hs.replay;
    switch (hs.stage) {
      case 'greeting':
        if (r.code !== 220 && (replay !== null || hs.backend.mode === 'xclient')) {
          // With XCLIENT the greeting is the screener's, not the client's: a refusal is the backend failing.
          backendFail(s, 'greeting', replyText(r.code, r.lines));
          return;
        }
        if (r.code === 220 && (hs.backend.mode === 'proxy-v1' || hs.backend.mode === 'proxy-v2')) {
          // Did the backend read the header? One that did answers our NOOP with 250; one that
          // reads it as SMTP commands has answered those first (500, or 221 and a close).
          hs.greeting = r.raw;
          hs.stage = 'proxy';
          this.write('NOOP\r\n');
          break;
        }
        if (r.code !== 220 || (hs.xclient.length === 0 && replay === null)) {
          // The backend's own greeting (or its refusal) is what the client gets.
          spliceNow(s, hs, r.raw, r.code);
          return;
        }
        if (hs.xclient.length > 0) {
          hs.stage = 'xclient';
          this.write(hs.xclient.shift() as string);
        } else replayNext(hs, this);
        break;
      case 'proxy':
        if (r.code !== 250) {
          backendFail(s, 'proxy', 'handoff mode', `the backend answered the PROXY header as SMTP commands (${replyText(r.code, r.lines)}): it expects none; set backend.handoff to xclient or none, or enable the PROXY protocol on it (Postfix: smtpd_upstream_proxy_protocol = haproxy)`);
          return;
        }
        if (replay === null) {
          // The backend's greeting completes the client's; the NOOP's 250 stays here.
          spliceNow(s, hs, hs.greeting ?? Buffer.alloc(0), 220);
          return;
        }
        replayNext(hs, this);
        break;
      case 'xclient': {
        if (r.code !== 220) {
          backendFail(s, 'xclient', 'handoff mode', `the backend refused XCLIENT (${replyText(r.code, r.lines)}); Postfix: add the screener to smtpd_authorized_xclient_hosts`);
          return;
        }
        const next = hs.xclient.shift();
        if (next !== undefined) this.write(next);
        else if (replay !== null) replayNext(hs, this);
        else {
          // The reply to XCLIENT is the greeting of the session as the real client.
          spliceNow(s, hs, r.raw, r.code);
          return;
        }
        break;
      }
      case 'helo':
        if (r.code !== 250) {
          backendFail(s, 'helo', replyText(r.code, r.lines));
          return;
        }
        if (hs.ehlo && !ehloStillOffers(s, hs.offered, r)) return;
        replayNext(hs, this);
        break;
      case 'mail':
        // A refused MAIL answers the client's RCPT: its sender is what the backend refuses.
        if (r.code < 200 || r.code > 299) {
          spliceNow(s, hs, r.raw, r.code, 'MAIL');
          return;
        }
        replayNext(hs, this);
        break;
      case 'rcpt':
        spliceNow(s, hs, r.raw, r.code, 'RCPT');
        return;
      default:
        return;
    }
  }
}

/** Send the next replayed line: HELO/EHLO (if the client sent one), MAIL, RCPT. */
function replayNext(hs: Handshake, bs: ScreenSocket): void {
  const env = hs.replay as Envelope;
  let line: Buffer;
  if ((hs.stage === 'greeting' || hs.stage === 'proxy' || hs.stage === 'xclient') && env.heloLine !== null) {
    hs.stage = 'helo';
    line = env.heloLine;
    hs.ehlo = line.length >= 4 && (line.readUInt32BE(0) & 0xdfdfdfdf) === 0x45484c4f; // "EHLO", any case
  } else if (hs.stage === 'greeting' || hs.stage === 'proxy' || hs.stage === 'xclient' || hs.stage === 'helo') {
    hs.stage = 'mail';
    line = env.mailLine;
  } else {
    hs.stage = 'rcpt';
    line = env.rcptLine;
  }
  bs.write(Buffer.concat([line, CRLF]));
}

/**
 * The backend's EHLO reply on this session must still offer every keyword
 * the dummy engine offered this client. It is checked, not learned: a backend
 * may offer different clients different keywords (Postfix's
 * smtpd_discard_ehlo_keyword_address_maps); handoff/ehlo.ts learns what it
 * offers the screener. False: it does not, the handoff falls back.
 */
function ehloStillOffers(s: Session, offered: readonly string[], r: { code: number; lines: string[]; raw: Buffer }): boolean {
  let missing: string[];
  try {
    missing = missingKeywords(offered, parseEhloKeywords(r));
  } catch (err) {
    backendFail(s, 'helo', err instanceof ScreenError ? err.message : String(err));
    return false;
  }
  if (missing.length === 0) return true;
  fallback(s, 'helo', `backend no longer offers ${missing.join(' ')}`);
  return false;
}

/** XCLIENT attributes of a replayed session: HELO and PROTO too, when the backend offers them. */
function xclientOf(s: Session, b: Backend, env: Envelope): { addr: string; port: number; helo?: string; proto?: 'SMTP' | 'ESMTP' } {
  const attrs = b.ehlo?.current?.xclient;
  const offers = (name: string): boolean => attrs === undefined || attrs === null || attrs.size === 0 || attrs.has(name);
  const out: { addr: string; port: number; helo?: string; proto?: 'SMTP' | 'ESMTP' } = { addr: s.client, port: s.port };
  // XXX A HELO name that is not UTF-8 reaches XCLIENT with U+FFFD in place of its bad bytes; the replayed EHLO line keeps them.
  if (env.heloName !== null && offers('HELO')) out.helo = env.heloName.toString('utf8');
  if (s.engine !== null && offers('PROTO')) out.proto = s.engine.protocol;
  return out;
}

function replyText(code: number, lines: readonly string[]): string {
  return `${code} ${lines[lines.length - 1] ?? ''}`.trim();
}

/**
 * The backend's reply that the client gets (its greeting, or after a replay
 * its answer to the client's RCPT) is written; then the splice. `relayed`:
 * which replayed command that reply answered.
 */
function spliceNow(s: Session, hs: Handshake, reply: Buffer, code: number, relayed?: 'MAIL' | 'RCPT'): void {
  const cs = s.socket;
  const bs = s.backendSock as ScreenSocket;
  s.clearTimer();
  hs.stage = 'done';
  handshakes.delete(s);
  bs.removeListener('data', onBackendData);
  cs.removeAllListeners('data');
  const rest = hs.reader.rest();
  cs.write(reply);
  if (rest.length > 0) cs.write(rest);
  s.phase = 'splice';
  const ctx = s.ctx;
  if (hs.replay !== null) {
    // The deep tests are over: their passes are written (PASS NEW) before the HANDOFF.
    // An early test failed with `ignore` (nothing remembered for it): as handoff() after conclude().
    // A failure shadowed before (SHADOWED) or in the deep tests: `shadow`.
    s.verdict = replayVerdict(s);
    s.engine?.handedOver();
    concludeDummy(s);
    // Input the client sent after its RCPT (it did not wait for the reply) goes to the backend, in order.
    const pending = s.reader?.takePending();
    s.reader = null;
    if (pending !== undefined && pending.length > 0) bs.write(pending);
  } else {
    // pregreet.action ignore: what the client said before the greeting is its first command.
    const early = s.pregreet?.takeKept() ?? null;
    s.pregreet = null;
    if (early !== null) bs.write(early);
  }
  s.event(EV.HANDOFF, {
    backend: hs.backend.name,
    mode: hs.backend.mode,
    verdict: s.verdict,
    code,
    handshake_ms: s.ctx.clock.now() - hs.started,
    ...(relayed !== undefined ? { after: 'RCPT', relayed } : {}),
    ...(s.route !== null ? { route: s.route } : {}),
    // With routing configured: which backend by name, and the rule that chose it.
    ...(s.gen.routing.byName.size > 1 ? { backend_name: hs.backend.label, ...(hs.rule >= 0 ? { rule: hs.rule } : {}) } : {}),
  });
  splice(cs, bs);
}

function _onHandoffTimeout(s: Session): void {
  s.timer = null;
  if (s.closed) return;
  const hs = handshakes.get(s);
  backendFail(s, hs?.stage ?? 'connect', 'timeout');
}

/**
 * The handoff failed: BACKEND FAIL, 421 (or the fallback of a replay). `reason` is named
 * `handoff mode` (with `detail`) when the backend speaks another handoff protocol: seen here
 * (a PROXY header answered as commands, XCLIENT refused), or, for a backend that sends no
 * greeting, found by the backend probe (server/backend-health.ts), which is asked to look now.
 */
function backendFail(s: Session, stage: Stage, reason: string, detail?: string): void {
  const b = handshakes.get(s)?.backend ?? s.gen.routing.default;
  if (detail === undefined && stage === 'proxy' && reason === 'closed') {
    reason = 'handoff mode';
    detail = 'the backend closed after the PROXY header (it read the header as SMTP commands, QUIT among them): it expects none; set backend.handoff to xclient or none, or enable the PROXY protocol on it (Postfix: smtpd_upstream_proxy_protocol = haproxy)';
  } else if (detail === undefined && stage === 'greeting' && b.health?.handoffMode === true) {
    detail = `no greeting (${reason}): the backend probe found that it greets only after a PROXY header; set backend.handoff to proxy-v1 or proxy-v2`;
    reason = 'handoff mode';
  }
  b.health?.suspect();
  s.event(EV.BACKEND_FAIL, { backend: b.name, stage, reason, ...(detail !== undefined ? { detail } : {}) });
  if ((handshakes.get(s)?.replay ?? null) !== null) {
    fallback(s, stage, `backend: ${reason}`);
    return;
  }
  handshakes.delete(s);
  const bs = s.backendSock;
  s.backendSock = null;
  if (bs !== null) {
    bs.removeAllListeners('data');
    bs.destroy();
  }
  closeWith(s, s.gen.replies.serviceUnavailable);
}

/**
 * A replay that cannot complete: HANDOFF FALLBACK, the backend connection is
 * ended (QUIT when it can still be heard), and the dummy engine answers the
 * RCPT with its 450 and goes on (session/dummy.ts resumeDummy()).
 */
function fallback(s: Session, stage: Stage, reason: string): void {
  const hs = handshakes.get(s);
  handshakes.delete(s);
  s.clearTimer();
  s.event(EV.HANDOFF_FALLBACK, { reason, stage });
  const bs = s.backendSock;
  s.backendSock = null;
  if (bs !== null) {
    bs.removeListener('data', onBackendData);
    if (stage !== 'connect' && bs.writable) endSocket(bs, 'QUIT\r\n');
    else bs.destroy();
  }
  hs?.onFallback(s);
}

function _onBackendError(this: ScreenSocket, err: NodeJS.ErrnoException): void {
  const s = this[kSession];
  if (s === undefined || s.closed) return;
  const hs = handshakes.get(s);
  if (hs !== undefined && hs.stage !== 'done') {
    backendFail(s, hs.stage, err.code ?? err.message);
    return;
  }
  onSocketError.call(this, err);
}

/** Every backend socket's descriptor is released exactly once. */
function onBackendGone(this: ScreenSocket): void {
  const s = this[kSession];
  if (s !== undefined) s.ctx.backends--;
}

/**
 * The backend ended its side (FIN) during the handshake: it will never reply.
 * With allowHalfOpen no 'close' follows while our side is open, so without
 * this the client would wait for handshake_timeout. After the splice started,
 * session/splice.ts carries the FIN to the client.
 */
function _onBackendEnd(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.backendSock !== this) return;
  const hs = handshakes.get(s);
  if (hs !== undefined && hs.stage !== 'done') backendFail(s, hs.stage, 'closed');
}

function _onBackendClose(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.backendSock !== this) return;
  const hs = handshakes.get(s);
  if (hs !== undefined && hs.stage !== 'done') {
    backendFail(s, hs.stage, 'closed');
    return;
  }
  // Spliced: the backend is gone; let what it wrote reach the client, then close.
  if (s.phase === 'splice') endSocket(s.socket, null);
}
// The entry points Node calls, each wrapped once: a throw ends that session with 421, not the process (session/guard.ts).
const onBackendConnect = guardSocket('backend connect', _onBackendConnect);
const onBackendData = guardSocket('backend data', _onBackendData);
const onHandoffTimeout = guardTimer('handoff timer', _onHandoffTimeout);
const onBackendClose = guardSocket('backend close', _onBackendClose);
const onBackendEnd = guardSocket('backend end', _onBackendEnd);
const onBackendError = guardSocket('backend error', _onBackendError);
