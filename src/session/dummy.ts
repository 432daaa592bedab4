/*
 * session/dummy.ts - wires a session to the dummy SMTP engine (src/smtp/dummy-engine.ts).
 *
 * Exports: enterDummy().
 * The engine is pure; this file owns what it cannot: the socket, the line
 * reader and the command time limit (one timer, re-armed after each command:
 * the total time to receive one command, as postscreen_command_time_limit).
 */
import { DummyEngine, type EngineOutput } from '../smtp/dummy-engine.js';
import { LineReader, type LineSink } from '../smtp/line-reader.js';
import type { EventName } from '../log/events.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { closeWith } from './close.js';

/** Engine output and line sink of one dummy session (only enforced clients get one). */
class DummyPort implements EngineOutput, LineSink {
  readonly s: Session;
  constructor(s: Session) {
    this.s = s;
  }
  send(text: string): void {
    const sock = this.s.socket;
    if (!this.s.closed && sock.writable) sock.write(text);
  }
  close(): void {
    closeWith(this.s, null);
  }
  event(name: EventName, fields: Record<string, unknown>): void {
    this.s.event(name, fields);
  }
  onLine(line: Buffer, bareLf: boolean): void {
    const s = this.s;
    if (s.closed || s.engine === null) return;
    s.engine.onLine(line, bareLf);
    if (s.closed) s.reader?.stop();
    else armCommandTimer(s);
  }
  onOverlong(length: number): void {
    const s = this.s;
    if (s.closed || s.engine === null) return;
    s.engine.onOverlong(length);
    if (s.closed) s.reader?.stop();
  }
}

export function enterDummy(s: Session): void {
  const ctx = s.ctx;
  s.phase = 'dummy';
  s.socket.write(ctx.replies.greeting);
  const port = new DummyPort(s);
  s.reader = new LineReader(ctx.config.dummy.line_length_limit);
  s.engine = new DummyEngine(
    {
      replies: ctx.replies,
      rejectReply: s.rejectReply,
      rejectReason: s.rejectReason,
      commandCountLimit: ctx.config.dummy.command_count_limit,
    },
    port,
  );
  dummySinks.set(s, port);
  s.socket.on('data', onDummyData);
  s.socket.resume();
  armCommandTimer(s);
}

const dummySinks = new WeakMap<Session, DummyPort>();

function onDummyData(this: ScreenSocket, chunk: Buffer): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.reader === null) return;
  const sink = dummySinks.get(s);
  if (sink !== undefined) s.reader.feed(chunk, sink);
}

function armCommandTimer(s: Session): void {
  s.clearTimer();
  s.timer = setTimeout(onCommandTimeout, s.ctx.config.dummy.command_time_limit, s);
}

function onCommandTimeout(s: Session): void {
  s.timer = null;
  if (s.closed || s.engine === null) return;
  s.engine.onTimeout();
  if (!s.closed) closeWith(s, null);
}
