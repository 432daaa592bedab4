/*
 * bench/micro/metrics.bench.ts - what the admin listener's metrics add to one
 * pregreet zombie: its four events (CONNECT, PREGREET, NOQUEUE, DISCONNECT)
 * emitted as Session.event() does, log level warn (none of them logged), with
 * no observer and with server/metrics.ts's Metrics observing. And one scrape
 * (registry text) with 10,000 sessions open, the gauges walking them.
 */
import type { Bench } from 'tinybench';
import { pino } from 'pino';
import { Emitter } from '../../src/log/emit.js';
import { EV, type EventName } from '../../src/log/events.js';
import { Metrics } from '../../src/server/metrics.js';
import type { ServerCtx } from '../../src/server/stress.js';

const nullStream = { write(_s: string): void {} };

interface Subject { client: string; port: number; started: number }

/** Session.event()'s shape: the record only when someone wants it. */
function event(em: Emitter, s: Subject, name: EventName, fields?: Record<string, unknown>): void {
  if (!em.enabled(name)) {
    em.emit(name);
    return;
  }
  em.emit(name, { client: s.client, port: s.port, ...fields }, undefined, s);
}

function zombie(em: Emitter, i: number): void {
  const s: Subject = { client: '192.0.2.1', port: 40000 + (i & 1023), started: Date.now() - 1000 };
  event(em, s, EV.CONNECT, { local: '127.0.0.1', local_port: 25 });
  event(em, s, EV.PREGREET, { bytes: 20, after_ms: 3, sample: 'EHLO zombie\\r\\n', action: 'enforce' });
  event(em, s, EV.NOQUEUE, { reply: '550 5.5.1 Protocol error', helo: 'zombie', from: 'a@b', to: 'c@d', proto: 'ESMTP', reason: 'pregreet' });
  event(em, s, EV.DISCONNECT, { duration_ms: 1200, bytes_in: 60, bytes_out: 200, phase: 'dummy' });
}

function fakeCtx(em: Emitter, sessions: number): ServerCtx {
  const personality = { name: 'normal', stress: false };
  const set = new Set<unknown>();
  for (let i = 0; i < sessions; i++) set.add({ phase: i % 3 === 0 ? 'dummy' : 'pregreet', personality });
  return {
    emitter: em, clock: { now: Date.now }, sessions: set, pendingProxy: 0, backends: 0, dummyOnly: 0, fdLimit: 20000,
    store: { size: 1234 }, stressState: { active: false },
    gen: { dnsbl: null, backend: { name: '127.0.0.1:10025' } },
  } as unknown as ServerCtx;
}

export default function (bench: Bench): void {
  const plain = new Emitter(pino({ level: 'warn' }, nullStream));
  const observed = new Emitter(pino({ level: 'warn' }, nullStream));
  const m = new Metrics({ ctx: fakeCtx(observed, 0), resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false });
  m.attach();
  let i = 0;
  bench.add('pregreet zombie, 4 events, no observer (metrics off)', () => zombie(plain, i++));
  bench.add('pregreet zombie, 4 events, Metrics observing (metrics on)', () => zombie(observed, i++));
  const scraped = new Emitter(pino({ level: 'warn' }, nullStream));
  const big = new Metrics({ ctx: fakeCtx(scraped, 10_000), resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false });
  bench.add('one scrape, 10,000 sessions open', async () => {
    await big.text();
  });
}
