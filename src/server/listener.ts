/*
 * server/listener.ts - accept connections: global limit, PROXY protocol in, EMFILE.
 *
 * Exports: startListener(), reconfigureListener(), Listener.
 * Over the global limit a client gets "421 4.3.2 All server ports are busy"
 * and costs nothing more. On listeners with proxy_protocol set, only peers in
 * trusted_proxies may connect, and their whole header must arrive within
 * limits.proxy_timeout of the accept; the address it carries is the client from then on.
 * An accept error (EMFILE, ENFILE) is logged at most once a second with a
 * count, and the accept loop goes on (libuv keeps the listening socket).
 * Each accepted connection updates the stress state and takes the personality
 * current now, or its listener's pinned one (server/stress.ts); a PROXY
 * connection keeps the one of its accept.
 */
import { createServer, type Server } from 'node:net';
import type { ListenConfig } from '../config/types.js';
import { EV } from '../log/events.js';
import { CidrMatcher, normalizeAddress } from '../net/cidr.js';
import { decodeProxyHeader } from '../net/proxy-protocol.js';
import { ScreenError } from '../util/errors.js';
import type { ScreenSocket } from '../session/state.js';
import type { Personality } from '../session/generation.js';
import { startSession } from '../session/machine.js';
import { refuse, refusedOpen, onSocketError } from '../session/close.js';
import { FD_RESERVE, fdsFull as fdsWouldOverrun } from './fdlimit.js';
import { noteOpen, personalityFor, type ServerCtx } from './stress.js';

export interface Listener {
  server: Server;
  cfg: ListenConfig;
  /** "host:port" actually bound. */
  address: string;
}

interface ListenerState {
  ctx: ServerCtx;
  cfg: ListenConfig;
  trusted: CidrMatcher<true> | null;
  name: string;
  acceptErrors: number;
  lastAcceptLog: number;
}

const kListener = Symbol('smtpscreen.listener');
const kProxy = Symbol('smtpscreen.proxy');
type LServer = Server & { [kListener]?: ListenerState };
interface ProxyState {
  ls: ListenerState;
  buf: Buffer;
  personality: Personality;
  /** Armed at accept for the whole header: a peer that trickles bytes does not extend it. */
  timer: NodeJS.Timeout;
}
type PSocket = ScreenSocket & { [kProxy]?: ProxyState | undefined };

/**
 * startListener - bind `cfg`. With bind false (a worker: the primary binds, server/primary.ts) the
 * server is made but never listens; the worker emits 'connection' on it for each socket it is handed.
 */
export function startListener(ctx: ServerCtx, cfg: ListenConfig, bind = true): Promise<Listener> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }) as LServer;
  let trusted: CidrMatcher<true> | null = null;
  if (cfg.proxy_protocol !== 'none') {
    trusted = new CidrMatcher<true>();
    for (const c of cfg.trusted_proxies) trusted.add(c, true);
  }
  const ls: ListenerState = { ctx, cfg, trusted, name: '', acceptErrors: 0, lastAcceptLog: 0 };
  server[kListener] = ls;
  server.on('connection', onConnection);
  if (!bind) {
    const host = cfg.address.host.includes(':') ? `[${cfg.address.host}]` : cfg.address.host;
    ls.name = `${host}:${cfg.address.port}`;
    return Promise.resolve({ server, cfg, address: ls.name });
  }
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(bindError(cfg, err)));
    server.listen({ host: cfg.address.host, port: cfg.address.port, backlog: ctx.gen.config.limits.backlog }, () => {
      server.removeAllListeners('error');
      server.on('error', onServerError);
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : cfg.address.port;
      const host = cfg.address.host.includes(':') ? `[${cfg.address.host}]` : cfg.address.host;
      ls.name = `${host}:${port}`;
      resolve({ server, cfg, address: ls.name });
    });
  });
}

/**
 * reconfigureListener - a reload kept this listener's address: its PROXY
 * settings and personality apply to connections accepted from now on.
 */
export function reconfigureListener(l: Listener, cfg: ListenConfig): void {
  const ls = (l.server as LServer)[kListener];
  if (ls === undefined) return;
  let trusted: CidrMatcher<true> | null = null;
  if (cfg.proxy_protocol !== 'none') {
    trusted = new CidrMatcher<true>();
    for (const c of cfg.trusted_proxies) trusted.add(c, true);
  }
  ls.cfg = cfg;
  ls.trusted = trusted;
  l.cfg = cfg;
}

/**
 * A failed bind, named by address. EACCES (a port below 1024 without root or
 * CAP_NET_BIND_SERVICE) says the two fixes; after the privilege drop
 * (server/privileges.ts) a reload is in that case.
 */
function bindError(cfg: ListenConfig, err: NodeJS.ErrnoException): Error {
  const h = cfg.address.host.includes(':') ? `[${cfg.address.host}]` : cfg.address.host;
  const addr = `${h}:${cfg.address.port}`;
  if (err.code === 'EACCES') {
    return new ScreenError('SCR_ERR_BIND', `listen[]: cannot bind ${addr} (EACCES: permission denied): ports below 1024 need root ` +
      `or CAP_NET_BIND_SERVICE. Either start smtpscreen as root with "user:" set (it binds, then drops to that user), or give ` +
      `it the capability (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE, as in contrib/smtpscreen.service). A reload after ` +
      `the drop to "user" cannot bind a new port below 1024: restart instead`, { key: 'listen', value: addr, code: 'EACCES' });
  }
  if (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL') {
    const why = err.code === 'EADDRINUSE' ? 'another process listens there (stop it, or choose another port)' : 'no interface of this machine has that address';
    return new ScreenError('SCR_ERR_BIND', `listen[]: cannot bind ${addr} (${err.code}): ${why}`, { key: 'listen', value: addr, code: err.code });
  }
  return err;
}

function onServerError(this: LServer, err: NodeJS.ErrnoException): void {
  const ls = this[kListener];
  if (ls !== undefined) acceptError(ls, err.code ?? 'unknown', err.message);
}

/** Log an accept problem at most once a second per listener, with the count since the last line. */
function acceptError(ls: ListenerState, code: string, message: string): void {
  ls.acceptErrors++;
  const now = Date.now();
  if (now - ls.lastAcceptLog >= 1000) {
    ls.ctx.emitter.emit(EV.ACCEPT_ERROR, { code, message, listener: ls.name, count: ls.acceptErrors });
    ls.lastAcceptLog = now;
    ls.acceptErrors = 0;
  }
}

function onConnection(this: LServer, socket: PSocket): void {
  const ls = this[kListener] as ListenerState;
  const ctx = ls.ctx;
  socket.on('error', onSocketError);
  if (ctx.draining) {
    socket.destroy();
    return;
  }
  const peer = peerAddress(socket);
  const peerPort = socket.remotePort ?? 0;
  if (peer === null) {
    // Reset before we accepted it (a port scanner): its address cannot be read. A hangup, never a session.
    unreadablePeer(ctx, socket);
    return;
  }
  const open = ctx.sessions.size + ctx.pendingProxy;
  const fdsFull = fdsWouldOverrun(ctx.fdLimit, open, ctx.dummyOnly, ctx.backends, refusedOpen());
  // workers_accept: shared: this worker's own count (exact) plus the others' as last reported is the host's.
  const counted = ctx.sharedAccept === true ? open + ctx.others : open;
  if (counted >= ctx.gen.config.limits.max_connections || fdsFull) {
    ctx.emitter.emit(EV.ALL_PORTS_BUSY, { client: peer, port: peerPort, count: counted, limit: fdsFull ? 'fds' : 'connections' });
    if (fdsFull) acceptError(ls, 'EMFILE', `file descriptor limit ${ctx.fdLimit} nearly reached (a backend descriptor kept for every client that may pass, ${FD_RESERVE} in reserve)`);
    refuse(socket, ctx.gen.replies.allPortsBusy);
    return;
  }
  // The new connection counts: the one that reaches the watermark is served under stress.
  noteOpen(ctx, open + 1);
  const personality = personalityFor(ctx, ls.cfg.personality);
  if (ls.trusted === null) {
    startSession(ctx, socket, peer, peerPort, personality);
    return;
  }
  if (ls.trusted.match(peer) === undefined) {
    proxyFail(ctx, socket, peer, peerPort, 'untrusted', ls.name);
    return;
  }
  ctx.pendingProxy++;
  socket[kProxy] = { ls, buf: Buffer.alloc(0), personality, timer: setTimeout(onProxyTimeout, ctx.gen.config.limits.proxy_timeout, socket) };
  socket.on('data', onProxyData);
  socket.once('close', onProxyClose);
}

/** The peer left before its header was complete: release the slot. */
function onProxyClose(this: PSocket): void {
  const st = proxyDone(this);
  if (st !== undefined) noteOpen(st.ls.ctx, st.ls.ctx.sessions.size + st.ls.ctx.pendingProxy);
}

/** The peer's address in canonical text (IPv4-mapped IPv6 as dotted quad), or null when it cannot be read. */
function peerAddress(socket: PSocket): string | null {
  const raw = socket.remoteAddress;
  return raw === undefined ? null : normalizeAddress(raw);
}

/** A connection whose peer left before we could read its address: HANGUP at accept, no session. */
function unreadablePeer(ctx: ServerCtx, socket: PSocket): void {
  ctx.emitter.emit(EV.HANGUP, { after_ms: 0, phase: 'accept', reason: 'peer address unreadable' });
  socket.destroy();
}

function proxyFail(ctx: ServerCtx, socket: PSocket, peer: string, port: number, reason: string, listener: string): void {
  ctx.emitter.emit(EV.PROXY_FAIL, { peer, port, reason, listener });
  socket.destroy();
  noteOpen(ctx, ctx.sessions.size + ctx.pendingProxy);
}

function proxyDone(socket: PSocket): ProxyState | undefined {
  const st = socket[kProxy];
  if (st === undefined) return undefined;
  socket[kProxy] = undefined;
  st.ls.ctx.pendingProxy--;
  socket.removeListener('data', onProxyData);
  clearTimeout(st.timer);
  return st;
}

function onProxyTimeout(socket: PSocket): void {
  const st = proxyDone(socket);
  if (st === undefined) return;
  proxyFail(st.ls.ctx, socket, peerAddress(socket) ?? 'unknown', socket.remotePort ?? 0, 'timeout', st.ls.name);
}

function onProxyData(this: PSocket, chunk: Buffer): void {
  const st = this[kProxy];
  if (st === undefined) return;
  const buf = st.buf.length === 0 ? chunk : Buffer.concat([st.buf, chunk]);
  let d;
  try {
    d = decodeProxyHeader(buf, st.ls.cfg.proxy_protocol === 'none' ? 'any' : st.ls.cfg.proxy_protocol);
  } catch (err) {
    proxyDone(this);
    const reason = err instanceof ScreenError ? `malformed: ${err.message}` : 'malformed';
    proxyFail(st.ls.ctx, this, peerAddress(this) ?? 'unknown', this.remotePort ?? 0, reason, st.ls.name);
    return;
  }
  if (d.status === 'incomplete') {
    st.buf = buf;
    return;
  }
  proxyDone(this);
  const h = d.header;
  let client = peerAddress(this);
  let port = this.remotePort ?? 0;
  if (h.command === 'PROXY' && h.srcAddr !== undefined) {
    client = normalizeAddress(h.srcAddr);
    port = h.srcPort ?? 0;
    if (client === null) {
      proxyFail(st.ls.ctx, this, peerAddress(this) ?? 'unknown', this.remotePort ?? 0, 'malformed: bad source address', st.ls.name);
      return;
    }
  }
  if (client === null) {
    unreadablePeer(st.ls.ctx, this);
    return;
  }
  const rest = buf.subarray(d.consumed);
  this.pause();
  if (rest.length > 0) this.unshift(rest);
  startSession(st.ls.ctx, this, client, port, st.personality);
}
