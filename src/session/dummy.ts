/*
 * session/dummy.ts - wires a session to the dummy SMTP engine (src/smtp/dummy-engine.ts).
 *
 * Exports: enterDummy().
 * The engine is pure; this file owns what it cannot: the socket, the line
 * reader and the command time limit (one timer, re-armed after each command:
 * the total time to receive one command, as postscreen_command_time_limit).
 * It also gives the engine the deep tests due for this client (session/deep.ts);
 * their verdict is written when the session ends (close.ts calls concludeDummy).
 */
import { DummyEngine, type EngineOutput } from '../smtp/dummy-engine.js';
import { LineReader, type LineSink } from '../smtp/line-reader.js';
import type { EventName } from '../log/events.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { closeWith } from './close.js';
import { DeepTests } from '../checks/deep.js';
import { deepDue } from './deep.js';

const NOTHING = Buffer.alloc(0);

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
  pending(): Buffer {
    return this.s.reader?.rest() ?? NOTHING;
  }
  onLine(line: Buffer, bareLf: boolean, buffered: number): void {
    const s = this.s;
    if (s.closed || s.engine === null) return;
    s.engine.onLine(line, bareLf, buffered);
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
  s.reader = new LineReader(s.config.dummy.line_length_limit);
  const todo = ctx.deep === null ? 0 : deepDue(ctx, s.record, Date.now());
  s.deep = ctx.deep !== null && todo !== 0 ? new DeepTests(ctx.deep, todo) : null;
  s.engine = new DummyEngine(
    {
      replies: ctx.replies,
      rejectReply: s.rejectReply,
      rejectReason: s.rejectReason,
      commandCountLimit: s.config.dummy.command_count_limit,
      hardErrorLimit: s.config.dummy.hard_error_limit,
      deep: s.deep,
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
  s.timer = setTimeout(onCommandTimeout, s.config.dummy.command_time_limit, s);
}

function onCommandTimeout(s: Session): void {
  s.timer = null;
  if (s.closed || s.engine === null) return;
  s.engine.onTimeout();
  if (!s.closed) closeWith(s, null);
}
