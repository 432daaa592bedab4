/*
 * test/checks/deep-parser.test.ts - property tests of the command parser with
 * the deep tests on: random bytes, overlong lines, NULs and mixed line endings,
 * cut into random reads, through the real LineReader and DummyEngine (as
 * session/dummy.ts wires them).
 * Invariants: nothing throws; nothing is sent after close; every reply is one
 * or more well-formed CRLF lines; every event field is printable; each deep
 * test is logged at most once; BARE NEWLINE is logged iff a line ending in a
 * bare LF was read before the session closed; NON-SMTP and BARE NEWLINE do
 * not depend on how the input was cut into reads (pipelining does, by design).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DummyEngine, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { LineReader } from '../../src/smtp/line-reader.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { DEEP_BIT, DeepTests, type DeepOptions } from '../../src/checks/deep.js';
import { ForbiddenCommands } from '../../src/checks/non-smtp.js';
import { EV } from '../../src/log/events.js';
import { escapeClientText } from '../../src/util/escape.js';
import type { Action } from '../../src/config/types.js';

const R = makeReplies('mx.example.org');

interface Run {
  sent: string[];
  events: Array<{ name: string; fields: Record<string, unknown> }>;
  closed: boolean;
  sentAfterClose: boolean;
  closes: number;
  /** Lines the engine saw (copied), with their bare-LF flag. */
  lines: Array<{ line: string; bareLf: boolean; buffered: number }>;
  deep: DeepTests;
}

function opts(actions: [Action, Action, Action]): DeepOptions {
  return {
    pipelining: { enable: true, action: actions[0], ttl: 1000 },
    non_smtp: { enable: true, action: actions[1], ttl: 1000 },
    bare_newline: { enable: true, action: actions[2], ttl: 1000 },
    forbidden: new ForbiddenCommands(['CONNECT', 'GET', 'POST']),
    ignoreTtl: 10,
  };
}

function run(chunks: Buffer[], max: number, actions: [Action, Action, Action], todo = 7, limit = 30): Run {
  const deep = new DeepTests(opts(actions), todo);
  const reader = new LineReader(max);
  const r: Run = { sent: [], events: [], closed: false, sentAfterClose: false, closes: 0, lines: [], deep };
  const out: EngineOutput = {
    send(t) {
      if (r.closes > 0) r.sentAfterClose = true;
      r.sent.push(t);
    },
    close() {
      r.closes++;
    },
    event(name, fields) {
      r.events.push({ name, fields });
    },
    pending: () => reader.rest(),
  };
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: limit, hardErrorLimit: limit, deep }, out);
  const sink = {
    onLine(line: Buffer, bareLf: boolean, buffered: number) {
      r.lines.push({ line: line.toString('latin1'), bareLf, buffered });
      e.onLine(line, bareLf, buffered);
      if (e.closed) reader.stop();
    },
    onOverlong(n: number) {
      e.onOverlong(n);
      if (e.closed) reader.stop();
    },
  };
  for (const c of chunks) reader.feed(c, sink);
  r.closed = e.closed;
  return r;
}

/** SMTP-ish bytes: commands, header lines, HTTP, NULs, CR, LF, high bytes. */
const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('EHLO x', 'HELO y', 'MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'RSET', 'NOOP', 'QUIT', 'DATA', 'BDAT 3 LAST',
    'GET / HTTP/1.0', 'Subject: x', 'get', 'X-FOO', 'VRFY a', 'caf\xe9', '\x00', ' ', ':').map((s) => Buffer.from(s, 'latin1')) },
  { weight: 4, arbitrary: fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', '\n\n').map((s) => Buffer.from(s, 'latin1')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 300 }).map((n) => Buffer.alloc(n, 0x41)) },
);
const dataArb = fc.array(piece, { maxLength: 40 }).map((a) => Buffer.concat(a));
const actionArb = fc.constantFrom<Action>('ignore', 'enforce', 'drop');
const actionsArb = fc.tuple(actionArb, actionArb, actionArb);

function split(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

test('deep parser property: random input never throws, replies and events stay well-formed, each test logs at most once', () => {
  fc.assert(
    fc.property(dataArb, fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 64, max: 256 }), actionsArb, fc.integer({ min: 1, max: 30 }),
      (data, cuts, max, actions, limit) => {
        const r = run(split(data, cuts), max, actions, 7, limit);
        assert.equal(r.sentAfterClose, false);
        assert.ok(r.closes <= 1);
        assert.equal(r.closed, r.closes === 1);
        for (const s of r.sent) assert.match(s, /^(\d{3}[ -][\x20-\x7e]*\r\n)+$/);
        for (const ev of r.events) {
          for (const v of Object.values(ev.fields)) if (typeof v === 'string') assert.match(v, /^[\x20-\x7e]*$/);
        }
        for (const name of [EV.COMMAND_PIPELINING, EV.NON_SMTP_COMMAND, EV.BARE_NEWLINE]) {
          assert.ok(r.events.filter((e) => e.name === name).length <= 1, `${name} at most once`);
        }
        // BARE NEWLINE iff a bare-LF line reached the engine (the engine sees lines until it closes).
        const bare = r.lines.some((l) => l.bareLf);
        assert.equal(r.events.some((e) => e.name === EV.BARE_NEWLINE), bare);
        // COMMAND PIPELINING only when some line had input after it in its read.
        if (r.events.some((e) => e.name === EV.COMMAND_PIPELINING)) assert.ok(r.lines.some((l) => l.buffered > 0));
        // A drop closes the session with the test's 521.
        const drop = r.events.find((e) => e.fields['action'] === 'drop');
        if (drop !== undefined) assert.match(r.sent.at(-1) ?? '', /^521 /);
        // A failed test never counts as passed, unless ignored.
        assert.equal(r.deep.passed & r.deep.failed, 0);
      }),
    { numRuns: 3000 },
  );
});

test('deep parser property: with pipelining off, the verdicts do not depend on how the input was cut into reads', () => {
  fc.assert(
    fc.property(dataArb, fc.array(fc.nat(), { maxLength: 12 }), actionsArb, (data, cuts, actions) => {
      const todo = DEEP_BIT.non_smtp | DEEP_BIT.bare_newline;
      const whole = run([data], 128, actions, todo);
      const bytes = run(split(data, cuts), 128, actions, todo);
      assert.deepEqual(bytes.sent, whole.sent);
      assert.deepEqual(bytes.events, whole.events);
      assert.deepEqual([bytes.deep.passed, bytes.deep.failed], [whole.deep.passed, whole.deep.failed]);
    }),
    { numRuns: 2000 },
  );
});

test('deep parser property: one read per line never pipelines; the same lines in one read do, after the first', () => {
  const lineArb = fc.array(fc.constantFrom('EHLO x', 'NOOP', 'MAIL FROM:<a@b>', 'RSET', 'VRFY x'), { minLength: 2, maxLength: 6 });
  fc.assert(
    fc.property(lineArb, (lines) => {
      const apart = run(lines.map((l) => Buffer.from(`${l}\r\n`)), 512, ['enforce', 'enforce', 'enforce']);
      assert.equal(apart.events.filter((e) => e.name === EV.COMMAND_PIPELINING).length, 0);
      const together = run([Buffer.from(lines.map((l) => `${l}\r\n`).join(''))], 512, ['enforce', 'enforce', 'enforce']);
      const p = together.events.filter((e) => e.name === EV.COMMAND_PIPELINING);
      assert.equal(p.length, 1);
      assert.equal(p[0]?.fields['after'], lines[0]?.split(' ')[0]);
      assert.equal(p[0]?.fields['sample'], escapeClientText(Buffer.from(lines.slice(1).map((l) => `${l}\r\n`).join(''))));
    }),
    { numRuns: 300 },
  );
});
