/*
 * handoff/splice.ts - hand a screened client to the backend smtpd.
 *
 * Exports: handoff().
 * connect (connect_timeout) → PROXY v1/v2 header, or XCLIENT after the
 * backend's greeting (handshake_timeout covers the whole dialogue) → the
 * backend's "220 " reply completes the greeting the client already saw →
 * splice both sockets with pipe() (backpressure) and half-close.
 * A backend that cannot be reached or fails the handshake gives the client a
 * 421 and BACKEND FAIL is logged: the sender retries, nothing is lost.
 */
import { connect } from 'node:net';
import { EV } from '../log/events.js';
import { encodeProxyV1, encodeProxyV2 } from '../net/proxy-protocol.js';
import { buildXclient, SmtpReplyReader } from '../net/xclient.js';
import { ScreenError } from '../util/errors.js';
import { kSession, type ScreenSocket, type Session } from '../session/state.js';
import { closeWith, endSocket, onSocketError } from '../session/close.js';

type Stage = 'connect' | 'greeting' | 'xclient' | 'done';

/** Handshake state of one session; dropped once the splice starts. */
interface Handshake {
  stage: Stage;
  reader: SmtpReplyReader;
  xclient: string[];
  started: number;
}
const handshakes = new WeakMap<Session, Handshake>();

export function handoff(s: Session): void {
  if (s.closed) return;
  // A session under TLS (dummy engine STARTTLS) is never spliced to the backend: its bytes are ciphertext.
  if (s.tls) {
    closeWith(s, null);
    return;
  }
  const ctx = s.ctx;
  const b = ctx.config.backend;
  s.phase = 'handoff';
  s.clearTimer();
  const cs = s.socket;
  cs.removeAllListeners('data');
  cs.pause();
  const target = ctx.backend;
  const bs = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true }) as ScreenSocket;
  bs[kSession] = s;
  s.backendSock = bs;
  ctx.backends++;
  bs.once('close', onBackendGone);
  bs.on('error', onBackendError);
  bs.on('close', onBackendClose);
  bs.on('connect', onBackendConnect);
  bs.on('data', onBackendData);
  handshakes.set(s, { stage: 'connect', reader: new SmtpReplyReader(), xclient: [], started: Date.now() });
  s.timer = setTimeout(onHandoffTimeout, b.connect_timeout, s);
}

function onBackendConnect(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.closed) return;
  const hs = handshakes.get(s);
  if (hs === undefined) return;
  const b = s.ctx.config.backend;
  s.clearTimer();
  s.timer = setTimeout(onHandoffTimeout, b.handshake_timeout, s);
  hs.stage = 'greeting';
  const src = { addr: s.client, port: s.port };
  const dst = { addr: s.local, port: s.localPort };
  switch (b.handoff) {
    case 'proxy-v1':
      this.write(encodeProxyV1(src, dst));
      break;
    case 'proxy-v2':
      this.write(encodeProxyV2(src, dst));
      break;
    case 'xclient':
      hs.xclient = buildXclient({ addr: s.client, port: s.port });
      break;
    case 'none':
      break;
  }
}

function onBackendData(this: ScreenSocket, chunk: Buffer): void {
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
    if (hs.stage === 'greeting') {
      if (r.code !== 220 || hs.xclient.length === 0) {
        // The backend's own greeting (or its refusal) is what the client gets.
        spliceNow(s, hs, r.raw, r.code);
        return;
      }
      hs.stage = 'xclient';
      this.write(hs.xclient.shift() as string);
    } else if (hs.stage === 'xclient') {
      if (r.code !== 220) {
        backendFail(s, 'xclient', `${r.code} ${r.lines[r.lines.length - 1] ?? ''}`.trim());
        return;
      }
      const next = hs.xclient.shift();
      if (next !== undefined) this.write(next);
      else {
        // The reply to XCLIENT is the greeting of the session as the real client.
        spliceNow(s, hs, r.raw, r.code);
        return;
      }
    }
  }
}

function spliceNow(s: Session, hs: Handshake, greeting: Buffer, code: number): void {
  const cs = s.socket;
  const bs = s.backendSock as ScreenSocket;
  s.clearTimer();
  hs.stage = 'done';
  handshakes.delete(s);
  bs.removeListener('data', onBackendData);
  const rest = hs.reader.rest();
  cs.write(greeting);
  if (rest.length > 0) cs.write(rest);
  s.phase = 'splice';
  const ctx = s.ctx;
  s.event(EV.HANDOFF, {
    backend: `${ctx.backend.host}:${ctx.backend.port}`,
    mode: ctx.config.backend.handoff,
    verdict: s.verdict,
    code,
    handshake_ms: Date.now() - hs.started,
  });
  bs.pipe(cs);
  cs.pipe(bs);
  cs.resume();
}

function onHandoffTimeout(s: Session): void {
  s.timer = null;
  if (s.closed) return;
  const hs = handshakes.get(s);
  backendFail(s, hs?.stage ?? 'connect', 'timeout');
}

function backendFail(s: Session, stage: Stage, reason: string): void {
  const ctx = s.ctx;
  handshakes.delete(s);
  s.event(EV.BACKEND_FAIL, { backend: `${ctx.backend.host}:${ctx.backend.port}`, stage, reason });
  const bs = s.backendSock;
  s.backendSock = null;
  if (bs !== null) {
    bs.removeAllListeners('data');
    bs.destroy();
  }
  closeWith(s, ctx.replies.serviceUnavailable);
}

function onBackendError(this: ScreenSocket, err: NodeJS.ErrnoException): void {
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

function onBackendClose(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.backendSock !== this) return;
  const hs = handshakes.get(s);
  if (hs !== undefined && hs.stage !== 'done') {
    backendFail(s, hs.stage, 'closed by backend');
    return;
  }
  // Spliced: the backend is gone; let what it wrote reach the client, then close.
  if (s.phase === 'splice') endSocket(s.socket, null);
}
