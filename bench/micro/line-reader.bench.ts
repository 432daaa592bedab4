/*
 * bench/micro/line-reader.bench.ts - LineReader and DummyEngine throughput.
 *
 * Exports: default (bench) - adds the tasks.
 * Traffic is a typical dummy-engine dialogue (EHLO, MAIL, 2x RCPT, NOOP,
 * RSET, QUIT), repeated to 64 KB. Each op feeds the whole corpus, so
 * lines/s = ops/s x LINES (the count is in the task name):
 * - 16 KB chunks: most lines are views of the chunk, a few cross a boundary
 *   and go through the internal buffer;
 * - 1-line chunks: what a well-behaved client sends, one read per command.
 * The engine task runs CMDS commands per op through one engine (count
 * limit out of reach, output discarded): cost per command = mean / CMDS.
 * The "deep tests" task is the same with pipelining, non-SMTP and bare
 * newline due: the per-command price of the deep tests.
 */
import type { Bench } from 'tinybench';
import { LineReader, type LineSink } from '../../src/smtp/line-reader.js';
import { DummyEngine, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { DeepTests } from '../../src/checks/deep.js';
import { deepOptions } from '../../src/session/deep.js';
import { validateConfig } from '../../src/config/validate.js';

const DIALOGUE = [
  'EHLO mail.sender.example.com',
  'MAIL FROM:<newsletter-bounces@sender.example.com> SIZE=48213 BODY=8BITMIME',
  'RCPT TO:<alice@example.org>',
  'RCPT TO:<bob@example.org> NOTIFY=FAILURE',
  'NOOP',
  'RSET',
  'QUIT',
];

function corpus(bytes: number): { data: Buffer; lines: Buffer[] } {
  const lines: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const l = Buffer.from(`${DIALOGUE[i % DIALOGUE.length] as string}\r\n`);
    lines.push(l);
    size += l.length;
  }
  return { data: Buffer.concat(lines), lines };
}

function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

/** Counts lines so the work cannot be optimised away. */
const sink: LineSink & { n: number; bytes: number } = {
  n: 0,
  bytes: 0,
  onLine(line) {
    this.n++;
    this.bytes += line.length;
  },
  onOverlong() {
    throw new Error('unexpected overlong line');
  },
};

export default function (bench: Bench): void {
  const { data, lines } = corpus(64 * 1024);
  const LINES = lines.length;
  const big = chunks(data, 16 * 1024);
  const reader = new LineReader(2048);

  bench.add(`line-reader: 16 KB chunks (${LINES} lines/op)`, () => {
    for (const c of big) reader.feed(c, sink);
  });
  bench.add(`line-reader: 1-line chunks (${LINES} lines/op)`, () => {
    for (const l of lines) reader.feed(l, sink);
  });

  const CMDS = 700;
  const replies = makeReplies('mx.example.org');
  const cmdLines = DIALOGUE.filter((l) => !l.startsWith('QUIT')).map((l) => Buffer.from(l));
  const out: EngineOutput & { sent: number } = {
    sent: 0,
    send(text) {
      this.sent += text.length;
    },
    close() {},
    event() {},
  };
  const opts = { replies, rejectReply: null, rejectReason: 'test', commandCountLimit: Number.MAX_SAFE_INTEGER };
  let engine = new DummyEngine(opts, out);
  bench.add(`dummy-engine: commands (${CMDS} cmds/op)`, () => {
    for (let i = 0; i < CMDS; i++) engine.onLine(cmdLines[i % cmdLines.length] as Buffer, false);
  });
  bench.add(`reader+engine: 1-line chunks (${CMDS} cmds/op, new engine per op)`, () => {
    engine = new DummyEngine(opts, out);
    const r = new LineReader(2048);
    const s: LineSink = { onLine: (l, b) => engine.onLine(l, b), onOverlong: (n) => engine.onOverlong(n) };
    for (let i = 0; i < CMDS; i++) {
      const l = lines[i % 6] as Buffer; // skip the QUIT at index 6
      r.feed(l, s);
    }
  });
  const deep = deepOptions(validateConfig({
    deep: { pipelining: { enable: true }, non_smtp: { enable: true }, bare_newline: { enable: true } },
  }));
  if (deep === null) throw new Error('deep tests not enabled');
  bench.add(`reader+engine, deep tests due: 1-line chunks (${CMDS} cmds/op, new engine per op)`, () => {
    const r = new LineReader(2048);
    const out2: EngineOutput = { send: out.send.bind(out), close() {}, event() {}, pending: () => r.rest() };
    engine = new DummyEngine({ ...opts, deep: new DeepTests(deep, 7) }, out2);
    const s: LineSink = { onLine: (l, b, n) => engine.onLine(l, b, n), onOverlong: (n) => engine.onOverlong(n) };
    for (let i = 0; i < CMDS; i++) {
      const l = lines[i % 6] as Buffer;
      r.feed(l, s);
    }
  });
}
