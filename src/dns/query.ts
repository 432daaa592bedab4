/*
 * dns/query.ts - the records the resolver's parts share (dns/resolver.ts, dns/udp-pool.ts,
 * dns/tcp-fallback.ts, dns/resolver-options.ts). Types only: no code runs here.
 *
 * Exports:
 *   Query      one lookup in flight: its encoding, the current try (socket + ID, or TCP), its
 *              server, tries and deadlines; shared by every asker of the same name and type
 *   Server     one configured server (normalised address) and its UDP slots: tries on the wire
 *              and the FIFO of queries waiting for a slot
 *   Counters   the counters behind Resolver.stats(); each part bumps its own
 *   Sock, TcpTry  the transports bound to Query
 *
 * Invariants the parts rely on: q.sock is non-null exactly while q.id is in q.sock.ids (a UDP try
 * on the wire) and then counts in servers[q.server].outstanding; q.tcp is non-null while a TCP
 * repeat is open; q.queued is the index of the server whose wait FIFO holds q, or -1 (a FIFO may
 * hold stale entries: q.queued or q.done tells them apart); q.done never goes back to false.
 */
import type { LookupError, LookupResult } from './types.js';
import type { UdpSock } from './udp.js';
import type { TcpExchange } from './tcp.js';

export type Sock = UdpSock<Query>;
export type TcpTry = TcpExchange<Query>;

export interface Server {
  host: string;
  port: number;
  family: 4 | 6;
  /** UDP tries on the wire to this server. */
  outstanding: number;
  /** UDP tries allowed on the wire now, floor..maxOutstanding; the rest is dns/window.ts's. */
  window: number;
  floor: number;
  /** The window at the last sweep tick (it at most doubles between ticks). */
  tickWindow: number;
  /** UDP replies since the last tick; replies per ms, smoothed over ticks (0: none measured yet). */
  delivered: number;
  rate: number;
  /** Until when the window may not grow (a try timed out). */
  frozenUntil: number;
  /** Queries waiting for a slot (FIFO from `head`; stale entries are skipped). */
  wait: Query[];
  head: number;
}

export interface Query {
  readonly key: string;
  readonly name: string;
  readonly qtype: number;
  readonly deadline: number;
  readonly promise: Promise<LookupResult>;
  resolve: (r: LookupResult) => void;
  /** The query as sent last (ID of the current try); the first try sends the lookup's encoding. */
  pkt: Buffer;
  /** No try sent yet: pkt may be written in place. */
  fresh: boolean;
  id: number;
  sock: Sock | null;
  tcp: TcpTry | null;
  server: number;
  /** Index of the server whose wait queue holds q, or -1. */
  queued: number;
  triesLeft: number;
  tryDeadline: number;
  /** Waited in a server's FIFO at some point: a try cut by the deadline is then our delay, not the server's. */
  waited: boolean;
  /** Why the last try failed; 'queued' until a try fails at a server. */
  lastError: LookupError;
  done: boolean;
}

export interface Counters {
  /** Queries sent (UDP datagrams and TCP queries). */
  sent: number;
  /** Replies accepted (UDP and TCP). */
  received: number;
  /** Dropped: wrong source address/port, unknown ID, or wrong question. */
  spoofed: number;
  /** Dropped: not DNS, or not a response; TCP replies that do not decode. */
  malformed: number;
  /** Dropped: ID of a try we had already given up on. */
  late: number;
  /** Tries (UDP or TCP) that ran out of time (a try cut by the deadline after waiting is not one). */
  timeouts: number;
  /** Lookups that ended 'queued': their deadline came while they waited for a slot. */
  queued: number;
  /** TCP repeats after TC. */
  tcp: number;
  cacheHits: number;
  coalesced: number;
}
