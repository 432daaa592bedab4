/*
 * bench/micro/log.bench.ts - Emitter.emit() (log/emit.ts) with info on, writing JSON to a null
 * stream, and with info off (counted only); beside it the hand-written way it replaces
 * (count, then log.info({ event, ...fields })), on and off.
 */
import type { Bench } from 'tinybench';
import { pino } from 'pino';
import { Emitter } from '../../src/log/emit.js';
import { EV } from '../../src/log/events.js';

const nullStream = { write(_s: string): void {} };
const logger = (level: string): pino.Logger => pino({ level, base: null, timestamp: pino.stdTimeFunctions.epochTime }, nullStream);

export default function (bench: Bench): void {
  const on = new Emitter(logger('info'));
  const off = new Emitter(logger('warn'));
  let i = 0;
  bench.add('emit DISCONNECT, info on (null stream)', () => {
    on.emit(EV.DISCONNECT, { client: '192.0.2.1', port: 40000 + (i++ & 1023), duration_ms: 12, bytes_in: 30, bytes_out: 120, phase: 'dummy' });
  });
  bench.add('emit DISCONNECT, info off', () => {
    off.emit(EV.DISCONNECT, { client: '192.0.2.1', port: 40000 + (i++ & 1023), duration_ms: 12, bytes_in: 30, bytes_out: 120, phase: 'dummy' });
  });
  const byHand = (log: pino.Logger, c: Record<string, number>, fields: Record<string, unknown>): void => {
    c[EV.DISCONNECT] = (c[EV.DISCONNECT] ?? 0) + 1;
    if (log.isLevelEnabled('info')) log.info({ event: EV.DISCONNECT, ...fields });
  };
  const logOn = logger('info');
  const logOff = logger('warn');
  const c: Record<string, number> = {};
  bench.add('by hand (count, info({event, ...fields})), info on', () => {
    byHand(logOn, c, { client: '192.0.2.1', port: 40000 + (i++ & 1023), duration_ms: 12, bytes_in: 30, bytes_out: 120, phase: 'dummy' });
  });
  bench.add('by hand, info off', () => {
    byHand(logOff, c, { client: '192.0.2.1', port: 40000 + (i++ & 1023), duration_ms: 12, bytes_in: 30, bytes_out: 120, phase: 'dummy' });
  });
}
