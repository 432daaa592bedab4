/*
 * test/fuzz/targets-smtp.ts - fuzz targets for what reads an SMTP client:
 * the line reader and the dummy engine's command parsing.
 *
 * Exports: lineReaderTarget, dummyEngineTarget, REPLY (a well-formed SMTP reply), smtpLine.
 * line-reader: bytes rich in CR/LF (SMTP-like lines, random bytes, overlong
 *   lines) cut in random chunks, a random line limit, sometimes a stop() at
 *   the k-th line. Oracle: a model of the documented rules applied to the
 *   concatenated input (a line is at most maxLength bytes with its LF; CR
 *   before LF is part of the terminator; an overlong line reports maxLength + 1
 *   and is dropped through its LF). Lines, bare-LF flags, overlong events and
 *   the pending bytes must equal the model's, whatever the chunking; buffered
 *   and rest() must describe the rest of the chunk; after stop(), takePending()
 *   is exactly the input after the stopped line.
 * dummy-engine: random lines (commands, near-commands, random bytes) through a
 *   real LineReader in random chunks, with random limits, enforce, STARTTLS,
 *   deep tests (all actions), an EHLO learned from random backend keywords,
 *   and the same-connection handoff (random takes and refusals). Properties:
 *   never throws; every reply is well-formed (NNN-...CRLF lines then NNN SP,
 *   one code, printable); nothing is sent after close, nor while a RCPT is
 *   held; event strings are printable; one reply per command (the 421 of
 *   the hard error limit may follow the reply that reached it).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, type LineSink } from '../../src/smtp/line-reader.js';
import { DummyEngine, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { DEEP_BIT, DEEP_TESTS, DeepTests, type DeepOptions } from '../../src/checks/deep.js';
import { deepOptions } from '../../src/session/deep.js';
import { validateConfig } from '../../src/config/validate.js';
import { buildDummyEhlo } from '../../src/smtp/ehlo-keywords.js';
import { chunked, showBytes, type FuzzTarget } from './harness.js';

/** One reply: lines "NNN-text" then "NNN text", one code, printable text, CRLF each. */
export const REPLY = /^(?:([2-5]\d\d)-[\x20-\x7e]*\r\n)*([2-5]\d\d) [\x20-\x7e]*\r\n$/;

export function assertReply(s: string): void {
  assert.match(s, REPLY, `malformed reply ${JSON.stringify(s)}`);
  const codes = new Set(s.split('\r\n').filter((l) => l !== '').map((l) => l.slice(0, 3)));
  assert.equal(codes.size, 1, `one code per reply: ${JSON.stringify(s)}`);
}

const VERBS = ['EHLO', 'HELO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'BDAT', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'ETRN', 'AUTH', 'STARTTLS', 'XCLIENT', 'XFORWARD', 'CONNECT', 'GET / HTTP/1.0', 'USER', 'mail from:', 'rcpt to:', 'ehlo', 'helo'];
const ARGS = ['', ' ', 'x', '<a@b>', '<>', ' <"q\\"x"@b>', '<a@b> SIZE=10', ':', '<', '>', '@', 'a'.repeat(300), '\t', '\0', '\x7f', '\xff', ' client.example', 'LOGIN'];

/** An SMTP-ish command line: verb, separator, arguments, in random case now and then. */
export const smtpLine: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...VERBS), fc.constantFrom('', ' ', '  '), fc.array(fc.constantFrom(...ARGS), { maxLength: 3 }), fc.boolean())
    .map(([v, sep, a, lower]) => { const s = `${v}${sep}${a.join('')}`; return lower ? s.toLowerCase() : s; }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('latin1')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

const TERMINATORS = ['\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n', ''];

/** Bytes made of lines with assorted terminators, plus random bytes and long runs. */
const lineBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.tuple(smtpLine, fc.constantFrom(...TERMINATORS)), { maxLength: 12 }).map((ls) => Buffer.from(ls.map(([l, t]) => l + t).join(''), 'latin1')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(0x0d, 0x0a, 0x41, 0x20), { maxLength: 300 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(3000), fc.constantFrom('A', '\r', ' ')).map(([n, c]) => Buffer.from(`${c.repeat(n)}\r\nNOOP\r\n`, 'latin1')) },
);

interface Event {
  k: 'line' | 'over';
  text: string;
  bareLf: boolean;
}

/** The documented rules on the whole input: events and the bytes left pending (null when discarding). */
function model(data: Buffer, max: number): { events: Event[]; pending: Buffer | null } {
  const events: Event[] = [];
  let i = 0;
  const n = data.length;
  while (i < n) {
    const lf = data.indexOf(0x0a, i);
    if (lf >= 0 && lf - i + 1 <= max) {
      const crlf = lf > i && data[lf - 1] === 0x0d;
      events.push({ k: 'line', text: data.toString('latin1', i, crlf ? lf - 1 : lf), bareLf: !crlf });
      i = lf + 1;
    } else if (lf < 0 && n - i <= max) {
      return { events, pending: data.subarray(i) };
    } else {
      events.push({ k: 'over', text: String(max + 1), bareLf: false });
      const over = i + max;
      if (data[over] === 0x0a) {
        i = over + 1;
      } else {
        const nl = data.indexOf(0x0a, over);
        if (nl < 0) return { events, pending: null };
        i = nl + 1;
      }
    }
  }
  return { events, pending: Buffer.alloc(0) };
}

interface LineCase {
  data: Buffer;
  max: number;
  cuts: number[];
  stopAt: number | null;
}

export const lineReaderTarget: FuzzTarget<LineCase> = {
  name: 'line-reader',
  what: 'smtp/line-reader.ts LineReader (feed in random chunks, stop, takePending, rest)',
  arb: fc.record({
    data: lineBytes,
    max: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 600 }), fc.constant(2048)),
    cuts: fc.array(fc.nat(), { maxLength: 40 }),
    stopAt: fc.option(fc.nat(12), { freq: 3 }),
  }),
  check({ data, max, cuts, stopAt }) {
    const r = new LineReader(max);
    const got: Event[] = [];
    let cur: Buffer = Buffer.alloc(0);
    let curEnd = 0;
    let consumed = 0;
    let stoppedAfter = -1;
    const sink: LineSink = {
      onLine(line, bareLf, buffered) {
        got.push({ k: 'line', text: line.toString('latin1'), bareLf });
        assert.ok(line.length < max, 'a line plus its LF fits the limit');
        assert.equal(buffered, r.rest().length, 'buffered is what rest() shows');
        assert.deepEqual(r.rest(), cur.subarray(cur.length - buffered), 'rest() is the end of the chunk');
        if (stopAt !== null && got.filter((e) => e.k === 'line').length === stopAt + 1) {
          r.stop();
          stoppedAfter = curEnd - buffered;
        }
      },
      onOverlong(length) {
        got.push({ k: 'over', text: String(length), bareLf: false });
      },
    };
    for (const piece of chunked(data, cuts)) {
      cur = piece;
      curEnd = consumed + piece.length;
      r.feed(piece, sink);
      consumed = curEnd;
    }
    const m = model(data, max);
    if (stoppedAfter >= 0) {
      const lines = m.events.filter((e) => e.k === 'line');
      const n = got.filter((e) => e.k === 'line').length;
      assert.equal(n, (stopAt as number) + 1);
      assert.deepEqual(got, m.events.slice(0, m.events.indexOf(lines[n - 1] as Event) + 1), 'events up to the stop');
      assert.ok(r.stopped);
      assert.deepEqual(r.takePending(), data.subarray(stoppedAfter), 'pending after stop() is the input after the stopped line');
      return;
    }
    assert.deepEqual(got, m.events, 'lines as the rules give them on the whole input');
    if (m.pending !== null) {
      assert.equal(r.pendingLength, m.pending.length);
      assert.deepEqual(r.takePending(), m.pending);
    } else {
      assert.equal(r.pendingLength, 0, 'nothing kept of a line being discarded');
    }
    assert.ok(r.pendingLength === 0);
  },
  show: (x) => `max ${x.max} cuts ${x.cuts.length} stopAt ${x.stopAt}: ${showBytes(x.data)}`,
  linear: [
    {
      shape: 'one long line without LF, in 1-byte chunks (limit = input size)',
      n: 20_000,
      make: (n) => {
        const bytes = Buffer.alloc(n, 0x41);
        const pieces = Array.from({ length: n }, (_, i) => bytes.subarray(i, i + 1));
        const sink: LineSink = { onLine() {}, onOverlong() {} };
        return () => {
          const r = new LineReader(n + 2);
          for (const p of pieces) r.feed(p, sink);
        };
      },
    },
    {
      shape: 'many short lines in 1-byte chunks',
      n: 20_000,
      make: (n) => {
        const bytes = Buffer.from('NOOP\r\n'.repeat(Math.ceil(n / 6)).slice(0, n), 'latin1');
        const pieces = Array.from({ length: n }, (_, i) => bytes.subarray(i, i + 1));
        const sink: LineSink = { onLine() {}, onOverlong() {} };
        return () => {
          const r = new LineReader(512);
          for (const p of pieces) r.feed(p, sink);
        };
      },
    },
    {
      shape: 'overlong lines being discarded, in one chunk',
      n: 200_000,
      make: (n) => {
        const bytes = Buffer.from(`${'A'.repeat(999)}\n`.repeat(Math.ceil(n / 1000)), 'latin1');
        const sink: LineSink = { onLine() {}, onOverlong() {} };
        return () => new LineReader(100).feed(bytes, sink);
      },
    },
  ],
};

const R = makeReplies('mx.fuzz.example');
const ENFORCE = '550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.example\r\n';
const ACTIONS = ['ignore', 'enforce', 'drop'] as const;

const deepCache = new Map<string, DeepOptions>();
function deepOpts(actions: readonly number[]): DeepOptions {
  const key = actions.join(',');
  let o = deepCache.get(key);
  if (o === undefined) {
    const cfg: Record<string, unknown> = {};
    DEEP_TESTS.forEach((t, i) => { cfg[t] = { enable: true, action: ACTIONS[(actions[i] ?? 0) % 3] }; });
    o = deepOptions(validateConfig({ deep: cfg })) as DeepOptions;
    deepCache.set(key, o);
  }
  return o;
}

interface EngineCase {
  lines: Array<[string, string]>;
  cuts: number[];
  limit: number;
  errors: number;
  enforce: boolean;
  tls: boolean;
  deep: number[] | null;
  todo: number;
  keywords: Array<[string, string]> | null;
  takes: boolean[];
  timeoutAt: number | null;
}

export const dummyEngineTarget: FuzzTarget<EngineCase> = {
  name: 'dummy-engine',
  what: 'smtp/dummy-engine.ts DummyEngine.onLine (through LineReader), onOverlong, onTimeout, the handover; EHLO from smtp/ehlo-keywords.ts buildDummyEhlo',
  arb: fc.record({
    lines: fc.array(fc.tuple(smtpLine, fc.constantFrom(...TERMINATORS)), { maxLength: 30 }),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    limit: fc.integer({ min: 1, max: 40 }),
    errors: fc.nat(10),
    enforce: fc.boolean(),
    tls: fc.boolean(),
    deep: fc.option(fc.array(fc.nat(2), { minLength: 3, maxLength: 3 }), { freq: 2 }),
    todo: fc.integer({ min: 1, max: 7 }),
    keywords: fc.option(fc.array(fc.tuple(fc.oneof(fc.constantFrom('SIZE', 'PIPELINING', '8BITMIME', 'XCLIENT', 'AUTH', 'DSN', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'x-y'), fc.string({ maxLength: 10 })), fc.oneof(fc.constant(''), fc.string({ maxLength: 20 }), fc.constant('x'.repeat(600)))), { maxLength: 8 })),
    takes: fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
    timeoutAt: fc.option(fc.nat(30)),
  }),
  check(c) {
    const reader = new LineReader(512);
    let closes = 0;
    let held = false;
    let offers = 0;
    let replies = 0;
    let lastReply = '';
    const ehlo = c.keywords === null ? null : buildDummyEhlo('mx.fuzz.example', new Map(c.keywords));
    const out: EngineOutput = {
      send(text) {
        assert.equal(closes, 0, 'nothing after close');
        assert.equal(held, false, 'nothing while a RCPT is held');
        assertReply(text);
        replies++;
        lastReply = text;
      },
      close() { closes++; },
      event(_name, fields) {
        for (const v of Object.values(fields)) if (typeof v === 'string') assert.match(v, /^[\x20-\x7e]*$/, 'event text is escaped');
      },
      startTls(reply) { assertReply(reply); replies++; },
      pending: () => reader.rest(),
      handover(env) {
        assert.equal(held, false, 'one offer at a time');
        assert.match(env.rcptLine.toString('latin1'), /^ *rcpt/i);
        held = c.takes[offers++ % c.takes.length] ?? false;
        return held;
      },
    };
    const deep = c.deep === null ? null : new DeepTests(deepOpts(c.deep), c.todo & DEEP_TESTS.reduce((m, t) => m | DEEP_BIT[t], 0));
    const e = new DummyEngine({
      replies: R, rejectReply: c.enforce ? ENFORCE : null, rejectReason: 'fuzz', commandCountLimit: c.limit,
      hardErrorLimit: c.errors, deep, tls: c.tls, ehlo: ehlo === null ? null : { plain: ehlo.plain, tls: ehlo.tls }, keepEnvelope: deep !== null,
    }, out);
    let commands = 0;
    const sink: LineSink = {
      onLine(line, bareLf, buffered) {
        commands++;
        const once = (fn: () => void): void => {
          const before = replies;
          fn();
          // The reply that reaches the hard error limit is followed by the 421 at once.
          assert.ok(replies - before <= 1 || (replies - before === 2 && e.closed && lastReply.startsWith('421 ')), 'one reply per command');
        };
        once(() => e.onLine(line, bareLf, buffered));
        if (held && commands % 3 === 0) {
          held = false;
          once(() => e.refuseHandedRcpt());
        }
        if (commands === c.timeoutAt && !held) e.onTimeout();
        if (e.closed) reader.stop();
      },
      onOverlong(n) {
        if (!held) e.onOverlong(n);
        if (e.closed) reader.stop();
      },
    };
    const data = Buffer.from(c.lines.map(([l, t]) => l + t).join(''), 'latin1');
    for (const piece of chunked(data, c.cuts)) reader.feed(piece, sink);
    assert.ok(closes <= 1, 'closes once at most');
    assert.equal(e.closed, closes === 1, 'closed exactly when it said close');
    if (!held) assert.ok(e.commands <= c.limit + 1, 'the command count limit holds');
  },
  show: (c) => JSON.stringify({ ...c, lines: c.lines.map(([l, t]) => l + t) }).slice(0, 400),
  linear: [
    {
      shape: 'n NOOP commands through the reader (the command count limit set past n)',
      n: 20_000,
      make: (n) => {
        const bytes = Buffer.from('NOOP\r\n'.repeat(n), 'latin1');
        return () => {
          const r = new LineReader(512);
          const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'fuzz', commandCountLimit: n + 1 }, { send() {}, close() {}, event() {} });
          r.feed(bytes, { onLine: (l, b, k) => e.onLine(l, b, k), onOverlong: (x) => e.onOverlong(x) });
        };
      },
    },
  ],
};
