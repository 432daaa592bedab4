/*
 * dns/udp.ts - the resolver's UDP transport: sockets, query IDs, query buffers.
 *
 * Exports:
 *   UdpSock<Q>                  one unconnected dgram socket and the IDs in use on it
 *   createUdp(family, onMessage, onDown)  a socket of `family`, not bound yet
 *   bindUdp(s)                  bind to port 0 (the kernel picks a random port), ask a 4 MiB receive buffer
 *   closeUdp(s)                 close once (marks it closed first); resolves when closed
 *   newId(s)                    a random 16-bit ID unused on s (in flight or recently given up)
 *   forgetIds(s, now)           drop the given-up IDs whose quarantine has ended
 *   ID_CAP                      IDs in use per socket before another socket is preferred
 *   slabTake(), slabAdvance(n)  room for one query in the shared slab; mark n octets used
 *
 * The policy (which socket, when to rotate, matching replies to queries) is dns/udp-pool.ts's,
 * the ID's place in a try is dns/resolver.ts's; this file holds the mechanics they rely on:
 * - Port 0 and `exclusive: true`: a random ephemeral port per socket, never shared with a cluster.
 * - IDs come from a crypto pool refilled 2048 at a time (randomFillSync), and are unique among
 *   the queries in flight on that socket and those it recently gave up on, so that a late reply
 *   is told apart from a spoofed one and never matches a new query.
 * - Server hosts are IP literals (checked by dns/resolver-options.ts), so dgram is given a
 *   lookup that answers at once: no dns.lookup per socket.
 * XXX: a query buffer may not be rewritten once handed to send(): libuv keeps a reference when
 * the kernel says EAGAIN, and dgram queues sends made before the bind completes. So queries are
 * encoded one after another into a slab, and a full slab is dropped (never rewritten) for a new
 * one: one 64 KiB allocation per ~1000 queries.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomFillSync } from 'node:crypto';

export interface UdpSock<Q> {
  readonly sock: dgram.Socket;
  readonly family: 4 | 6;
  /** ID -> query in flight on this socket. */
  readonly ids: Map<number, Q>;
  /** ID given up on -> time it may be reused. Insertion order is expiry order. */
  readonly recent: Map<number, number>;
  sent: number;
  retiring: boolean;
  closed: boolean;
}

/** Per-socket ceiling on IDs in use (in flight + recently given up): keeps the ID draw fast. */
export const ID_CAP = 32768;
/** Receive buffer asked for (the kernel caps it at net.core.rmem_max): 10,000 replies in a burst. */
const RECV_BUFFER = 4 << 20;

/** Server hosts are IP literals, checked by the resolver: answer at once, no dns.lookup. */
function literalLookup(address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, net.isIPv6(address) ? 6 : 4);
}

/**
 * A socket of `family` with its handlers: onMessage for every datagram, onDown once it errs or
 * is closed by someone else (not by closeUdp). Not bound: the caller files it first, then bindUdp.
 */
export function createUdp<Q>(family: 4 | 6, onMessage: (s: UdpSock<Q>, buf: Buffer, rinfo: dgram.RemoteInfo) => void,
  onDown: (s: UdpSock<Q>) => void): UdpSock<Q> {
  const sock = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
  const s: UdpSock<Q> = { sock, family, ids: new Map(), recent: new Map(), sent: 0, retiring: false, closed: false };
  sock.on('message', (buf: Buffer, rinfo: dgram.RemoteInfo) => onMessage(s, buf, rinfo));
  sock.on('error', () => onDown(s));
  sock.on('close', () => {
    if (!s.closed) onDown(s); // closed under us: same as an error
  });
  return s;
}

/** Bind to port 0 (a random ephemeral port); a bind error is reported through onDown, maybe at once. */
export function bindUdp<Q>(s: UdpSock<Q>): void {
  s.sock.bind({ port: 0, address: s.family === 4 ? '0.0.0.0' : '::', exclusive: true });
  if (!s.closed) {
    try {
      s.sock.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // Kernel refused: keep its default.
    }
  }
}

export function closeUdp<Q>(s: UdpSock<Q>): Promise<void> {
  if (s.closed) return Promise.resolve();
  s.closed = true;
  return new Promise((resolve) => {
    try {
      s.sock.close(() => resolve());
    } catch {
      resolve(); // already closed by dgram after an error
    }
  });
}

/** Random IDs: 2048 per randomFillSync. */
const idPool = Buffer.allocUnsafe(4096);
let idPos = idPool.length;

/** A random 16-bit ID not in use on s (in flight or recently given up). */
export function newId<Q>(s: UdpSock<Q>): number {
  for (;;) {
    if (idPos >= idPool.length) {
      randomFillSync(idPool);
      idPos = 0;
    }
    const id = ((idPool[idPos] as number) << 8) | (idPool[idPos + 1] as number);
    idPos += 2;
    if (!s.ids.has(id) && !s.recent.has(id)) return id;
  }
}

export function forgetIds<Q>(s: UdpSock<Q>, now: number): void {
  for (const [id, until] of s.recent) {
    if (until > now) break;
    s.recent.delete(id);
  }
}

/** Room for one query (12 + 255 + 4) before a new slab is taken. */
const MAX_QUERY = 272;
const SLAB_SIZE = 65536;
let slab = Buffer.allocUnsafe(SLAB_SIZE);
let slabOff = 0;

/** The free end of the slab, room for one query; the caller then calls slabAdvance with what it used. */
export function slabTake(): Buffer {
  if (SLAB_SIZE - slabOff < MAX_QUERY) {
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    slabOff = 0;
  }
  return slab.subarray(slabOff, slabOff + MAX_QUERY);
}

export function slabAdvance(n: number): void {
  slabOff += n;
}
