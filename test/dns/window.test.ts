/*
 * test/dns/window.test.ts - the per-server window of UDP tries on the wire (dns/window.ts): unit
 * rules on bare Server records (grow only while the queue would not drain in time at the measured
 * rate, at most doubling per tick, up to the ceiling; no rate from a stalled tick; decay with an
 * empty queue; a timeout puts it back to the floor and freezes it), then the Resolver against the
 * fake DNS responder: a 200 ms server gets more than the floor on the wire, a fast one never does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Windows } from '../../src/dns/window.js';
import type { Query, Server } from '../../src/dns/query.js';
import { Resolver } from '../../src/dns/resolver.js';
import { QTYPE, type LookupResult } from '../../src/dns/types.js';
import { reply, startFakeDns, type FakeHandler } from './fake-server.js';

function server(): Server {
  return { host: '127.0.0.1', port: 53, family: 4, outstanding: 0, window: 1, floor: 1, tickWindow: 1, delivered: 0, rate: 0,
    frozenUntil: -Infinity, wait: [], head: 0 };
}

/** n queries waiting in s's FIFO (only their count matters here). */
function waiting(s: Server, n: number): void {
  s.wait.length = 0;
  s.head = 0;
  for (let i = 0; i < n; i++) s.wait.push({} as Query);
}

test('window: no growth before a rate is measured, nor while the queue drains within the target', () => {
  const s = server();
  const w = new Windows([s], 4, 64, 1000, 100);
  assert.deepEqual([s.window, s.floor], [4, 4]);
  waiting(s, 500);
  w.start(0);
  for (let i = 0; i < 4; i++) w.reply(s, 10);
  assert.equal(s.window, 4, 'no rate yet');
  w.tick(100); // 4 replies in 100 ms: 0.04/ms, 40 per target second; 500 waiting
  assert.equal(s.rate, 0.04);
  waiting(s, 30);
  w.reply(s, 110);
  assert.equal(s.window, 4, '30 waiting drain in time at 40/s');
});

test('window: grows one per reply while the queue would not drain, at most doubling per tick, up to the ceiling', () => {
  const s = server();
  const w = new Windows([s], 4, 10, 1000, 100);
  waiting(s, 500);
  w.start(0);
  w.reply(s, 50);
  w.tick(100);
  for (let i = 0; i < 10; i++) w.reply(s, 150);
  assert.equal(s.window, 8, 'doubled within the tick, no more');
  w.tick(200);
  for (let i = 0; i < 10; i++) w.reply(s, 250);
  assert.equal(s.window, 10, 'the ceiling');
});

test('window: replies in waves (a 200 ms server: one 100 ms tick full, the next empty) still grow it', () => {
  const s = server();
  const w = new Windows([s], 4, 64, 1000, 100);
  waiting(s, 500);
  w.start(0);
  for (let i = 0; i < 4; i++) w.reply(s, 50);
  w.tick(100);
  w.tick(200); // the gap between two waves
  assert.ok(s.rate > 0, `rate after an empty tick: ${s.rate}`);
  for (let i = 0; i < 4; i++) w.reply(s, 250);
  assert.equal(s.window, 8);
});

test('window: a stalled tick gives no rate; an empty queue gives slots back down to the floor; a timeout resets and freezes', () => {
  const s = server();
  const w = new Windows([s], 4, 64, 1000, 100);
  waiting(s, 500);
  w.start(0);
  w.reply(s, 50);
  w.tick(350); // 3.5 periods: our event loop stalled
  assert.equal(s.rate, 0);
  w.reply(s, 360);
  assert.equal(s.window, 4);
  w.reply(s, 400);
  w.tick(450);
  for (let i = 0; i < 4; i++) w.reply(s, 460);
  assert.equal(s.window, 8);
  waiting(s, 0);
  for (let i = 0; i < 2; i++) w.reply(s, 470);
  assert.equal(s.window, 6);
  for (let i = 0; i < 5; i++) w.reply(s, 480);
  assert.equal(s.window, 4, 'never below the floor');
  waiting(s, 500);
  w.tick(550);
  w.reply(s, 560);
  assert.equal(s.window, 5);
  w.timeout(s, 600);
  assert.equal(s.window, 4, 'back to the floor');
  w.tick(650);
  w.reply(s, 660);
  assert.equal(s.window, 4, 'frozen');
  w.tick(10_600); // after 10 s idle: a stalled tick, no rate
  w.reply(s, 10_610);
  w.tick(10_700);
  w.reply(s, 10_710);
  assert.equal(s.window, 5, 'grows again 10 s later');
});

/** Answers every A query with 127.0.0.2 after `ms`; counts the most queries held at once. */
function holding(ms: number): { h: FakeHandler; peak: () => number } {
  let held = 0;
  let peak = 0;
  const h: FakeHandler = (m) => {
    held++;
    peak = Math.max(peak, held);
    setTimeout(() => held--, ms);
    return [{ buf: reply(m, { answers: [{ name: m.questions[0]?.name ?? '', type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: ms }];
  };
  return { h, peak: () => peak };
}

async function burst(h: FakeHandler, n: number): Promise<LookupResult[]> {
  const srv = await startFakeDns(h, { tcp: false });
  const r = new Resolver({ servers: [{ host: srv.host, port: srv.port }], timeoutMs: 1000, tries: 3, deadlineMs: 10_000 });
  try {
    return await Promise.all(Array.from({ length: n }, (_, i) => r.lookup(`${i}.win.dnsbl.test`, 'A')));
  } finally {
    await r.close();
    await srv.close();
  }
}

test('resolver defaults: a burst to a server answering in 200 ms gets more than 128 on the wire; to a fast one, never', async () => {
  const slow = holding(200);
  const res = await burst(slow.h, 1500);
  assert.equal(res.filter((x) => x.status === 'ok').length, 1500);
  // At 128 the burst needs 12 round trips; the window grows once a tick has measured the rate.
  assert.ok(slow.peak() > 128, `peak on the wire ${slow.peak()}`);
  assert.ok(slow.peak() <= 1024, `never past the ceiling: ${slow.peak()}`);
  const fast = holding(0);
  const res2 = await burst(fast.h, 1500);
  assert.equal(res2.filter((x) => x.status === 'ok').length, 1500);
  assert.ok(fast.peak() <= 128, `a server that answers at once keeps the floor: ${fast.peak()}`);
});
