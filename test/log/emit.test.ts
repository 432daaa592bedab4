/*
 * Unit tests of log/emit.ts: every emit counts; a line is written at the row's
 * level (or the call's) only when that level is on, with `event` first; when
 * it is off nothing is built (fields are not read, no child logger is made).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { pino, type Logger } from 'pino';
import { Emitter } from '../../src/log/emit.js';
import { EV, EVENTS, type EventLevel, type EventName } from '../../src/log/events.js';
import { createLogger } from '../../src/log/logger.js';

const LEVEL_VALUE: Record<EventLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

function capture(level: string): { log: Logger; lines: () => Array<Record<string, unknown>>; raw: string[] } {
  const raw: string[] = [];
  const log = pino({ level, base: null, timestamp: false }, { write: (s: string) => raw.push(s) });
  // Every line carries msg (its postscreen text, tested below); the other fields are compared without it.
  const lines = (): Array<Record<string, unknown>> => raw.map((l) => {
    const { msg, ...rest } = JSON.parse(l) as Record<string, unknown>;
    assert.equal(typeof msg, 'string', `msg in ${l}`);
    return rest;
  });
  return { log, raw, lines };
}

test('emit logs at the level of the event\'s row, with event and the fields', () => {
  const { log, lines } = capture('debug');
  const em = new Emitter(log);
  em.emit(EV.CONNECT, { client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 2525 });
  em.emit(EV.PROXY_FAIL, { peer: '192.0.2.9', port: 1, reason: 'timeout', listener: '127.0.0.1:2525' });
  em.emit(EV.ACCEPT_ERROR, { code: 'EMFILE', message: 'x', listener: 'l', count: 3 });
  em.emit(EV.START_FAILED, { code: 'EADDRINUSE', message: 'in use' });
  em.emit(EV.SOCKET_ERROR, { code: 'ECONNRESET', phase: 'dummy' });
  em.emit(EV.PASS_OLD);
  assert.deepEqual(lines(), [
    { level: 30, event: 'CONNECT', client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 2525 },
    { level: 40, event: 'PROXY FAIL', peer: '192.0.2.9', port: 1, reason: 'timeout', listener: '127.0.0.1:2525' },
    { level: 50, event: 'ACCEPT ERROR', code: 'EMFILE', message: 'x', listener: 'l', count: 3 },
    { level: 60, event: 'START FAILED', code: 'EADDRINUSE', message: 'in use' },
    { level: 20, event: 'SOCKET ERROR', code: 'ECONNRESET', phase: 'dummy' },
    { level: 30, event: 'PASS OLD' },
  ]);
});

test('emit: `event` comes first in the JSON line, as the hand-written records had it', () => {
  const { log, raw } = capture('info');
  new Emitter(log).emit(EV.HANGUP, { after_ms: 12, phase: 'pregreet' });
  assert.equal(raw[0], '{"level":30,"event":"HANGUP","after_ms":12,"phase":"pregreet","msg":"HANGUP after 0.012 from [unknown]:unknown in tests before SMTP handshake"}\n');
});

test('emit: msg is the postscreen text of the event, so a JSON line reads as one line (pino-pretty)', () => {
  const { log, raw } = capture('info');
  const em = new Emitter(log);
  em.emit(EV.CONNECT, { client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 25 });
  em.emit(EV.PREGREET, { client: '192.0.2.1', port: 5678, bytes: 11, after_ms: 210, sample: 'EHLO foo\\r\\n' });
  em.emit('NO SUCH EVENT' as EventName, { a: 1 });
  assert.deepEqual(raw.map((l) => (JSON.parse(l) as Record<string, unknown>)['msg']), [
    'CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:25',
    'PREGREET 11 after 0.21 from [192.0.2.1]:5678: EHLO foo\\r\\n',
    'NO SUCH EVENT a=1',
  ]);
});

test('emit: a level named by the call overrides the row\'s, in both directions', () => {
  const { log, lines } = capture('info');
  const em = new Emitter(log);
  em.emit(EV.STRESS, { state: 'enter' }, 'warn');
  em.emit(EV.DNSBL_SITE, { state: 'resumed' }, 'info');
  em.emit(EV.DNSBL_SITE, { state: 'suspended' });
  assert.deepEqual(lines().map((l) => [l['event'], l['state'], l['level']]), [
    ['STRESS', 'enter', 40], ['DNSBL SITE', 'resumed', 30], ['DNSBL SITE', 'suspended', 40],
  ]);
});

test('emit counts every event whatever the level, into the counts object it was given', () => {
  const { log, raw } = capture('warn');
  const counters: Record<string, number> = {};
  const em = new Emitter(log, counters);
  for (let i = 0; i < 3; i++) em.emit(EV.CONNECT, { client: 'c' });
  em.emit(EV.PROXY_FAIL, { reason: 'untrusted' });
  assert.equal(raw.length, 1, 'only the warn line is written');
  assert.deepEqual(counters, { CONNECT: 3, 'PROXY FAIL': 1 });
  assert.equal(em.counts, counters, 'counts is the object the screener shares as ctx.counters');
});

test('emit with the level off builds nothing: fields are not read and no child logger is made', () => {
  const { log, raw } = capture('warn');
  let children = 0;
  const child = log.child.bind(log);
  log.child = ((...a: Parameters<Logger['child']>) => { children++; return child(...a); }) as Logger['child'];
  const em = new Emitter(log);
  const fields = { get client(): string { throw new Error('read a field of a line that is off'); } };
  for (let i = 0; i < 1000; i++) em.emit(EV.DISCONNECT, fields);
  assert.equal(children, 0);
  assert.equal(raw.length, 0);
  assert.equal(em.counts['DISCONNECT'], 1000);
  // On: one child per event, made at its first line and kept.
  em.emit(EV.DISCONNECT, { phase: 'dummy' }, 'warn');
  em.emit(EV.DISCONNECT, { phase: 'dummy' }, 'warn');
  assert.equal(children, 1);
  assert.equal(raw.length, 2);
});

test('emit follows the root logger\'s level when it changes after the first line', () => {
  const { log, lines } = capture('info');
  const em = new Emitter(log);
  em.emit(EV.CONNECT, { n: 1 });
  log.level = 'warn';
  em.emit(EV.CONNECT, { n: 2 });
  log.level = 'debug';
  em.emit(EV.CONNECT, { n: 3 }, 'debug'); // its child was made while the root was at info

  assert.deepEqual(lines().map((l) => l['n']), [1, 3]);
});

test('emit: a name outside the table (a cast string) is counted and logged at warn', () => {
  const { log, lines } = capture('info');
  const em = new Emitter(log);
  em.emit('NO SUCH EVENT' as EventName, { a: 1 });
  assert.deepEqual(lines(), [{ level: 40, event: 'NO SUCH EVENT', a: 1 }]);
  assert.equal(em.counts['NO SUCH EVENT'], 1);
});

test('emit through the postscreen format renders the postscreen line', () => {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const em = new Emitter(createLogger({ format: 'postscreen', level: 'info', destination: out }));
  em.emit(EV.STRESS, { state: 'enter', count: 9, limit: 10, threshold: 9 }, 'warn');
  assert.match(chunks.join(''), /\]: warning: entering STRESS mode with 9 connections\n$/);
});

test('property: counts equal the emits per name; lines are the emits at or above the logger level, in order', () => {
  const names = EVENTS.map((e) => e.name as EventName);
  const levels = Object.keys(LEVEL_VALUE) as EventLevel[];
  fc.assert(fc.property(
    fc.constantFrom(...levels),
    fc.array(fc.record({ name: fc.constantFrom(...names), level: fc.option(fc.constantFrom(...levels), { nil: undefined }) }), { maxLength: 60 }),
    (rootLevel, calls) => {
      const { log, lines } = capture(rootLevel);
      const em = new Emitter(log);
      calls.forEach((c, i) => em.emit(c.name, { i }, c.level));
      const want: Record<string, number> = {};
      for (const c of calls) want[c.name] = (want[c.name] ?? 0) + 1;
      assert.deepEqual({ ...em.counts }, want);
      const rowLevel = (n: string): EventLevel => EVENTS.find((e) => e.name === n)?.level ?? 'warn';
      const shown = calls.map((c, i) => ({ ...c, i, lv: c.level ?? rowLevel(c.name) }))
        .filter((c) => LEVEL_VALUE[c.lv] >= LEVEL_VALUE[rootLevel]);
      assert.deepEqual(lines(), shown.map((c) => ({ level: LEVEL_VALUE[c.lv], event: c.name, i: c.i })));
    },
  ), { numRuns: 200 });
});
