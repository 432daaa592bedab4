/*
 * session/guard.ts: an error thrown by a session's socket or timer handler
 * closes that session with a 421, is counted and logged as INTERNAL ERROR,
 * and is not rethrown (the process goes on). Without a session it is
 * rethrown for the process-level guard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { guardSocket, guardTimer } from '../../src/session/guard.js';
import { Session, kSession, type Ctx, type ScreenSocket } from '../../src/session/state.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { realClock } from '../../src/session/clock.js';
import { Emitter } from '../../src/log/emit.js';
import type { Personality } from '../../src/session/generation.js';

async function pair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect(port, '127.0.0.1');
  const server = await accepted;
  return { server, client, close: () => { client.destroy(); server.destroy(); srv.close(); } };
}

function session(sock: Socket, lines: Record<string, unknown>[]): Session {
  const log = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c)) as Record<string, unknown>); cb(); } }));
  const counters: Record<string, number> = {};
  const ctx = { log, counters, emitter: new Emitter(log, counters), clock: realClock } as unknown as Ctx;
  const personality = { name: 'normal', stress: false, config: {}, enabled: [], deep: null, gen: { replies: makeReplies('screen.test', 'ESMTP') } } as unknown as Personality;
  return new Session(ctx, sock as ScreenSocket, '192.0.2.7', 4242, personality);
}

test('a socket handler that throws closes its session with 421 and is counted, not rethrown', async () => {
  const p = await pair();
  try {
    const lines: Record<string, unknown>[] = [];
    const s = session(p.server, lines);
    const h = guardSocket('test data', function (this: ScreenSocket, _chunk: Buffer) { throw new Error('boom'); });
    let got = '';
    p.client.on('data', (d) => { got += d.toString('latin1'); });
    const ended = new Promise<void>((r) => p.client.on('end', () => r()));
    assert.doesNotThrow(() => h.call(p.server as ScreenSocket, Buffer.from('x')));
    await ended;
    assert.equal(got, '421 4.3.2 Service currently unavailable\r\n');
    assert.equal(s.closed, true);
    assert.equal(s.ctx.counters['INTERNAL ERROR'], 1);
    const ev = lines.find((l) => l['event'] === 'INTERNAL ERROR');
    assert.equal(ev?.['where'], 'test data');
    assert.equal(ev?.['error'], 'boom');
    assert.equal(ev?.['client'], '192.0.2.7');
  } finally {
    p.close();
  }
});

test('a timer handler that throws closes its session; one that does not throw is untouched', async () => {
  const p = await pair();
  try {
    const s = session(p.server, []);
    const ok = guardTimer('ok timer', (_s: Session) => undefined);
    ok(s);
    assert.equal(s.closed, false);
    const bad = guardTimer('bad timer', (_s: Session) => { throw new TypeError('nope'); });
    bad(s);
    assert.equal(s.closed, true);
    assert.equal(s.ctx.counters['INTERNAL ERROR'], 1);
  } finally {
    p.close();
  }
});

test('without a session the error goes on to the process-level guard', () => {
  const h = guardSocket('orphan', function () { throw new Error('orphan'); });
  const sock = {} as ScreenSocket;
  assert.equal(sock[kSession], undefined);
  assert.throws(() => h.call(sock, undefined), /orphan/);
});
