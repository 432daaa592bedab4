/*
 * test/smtp/line-reader.test.ts - LineReader: table of framings, then properties
 * against a naive byte-at-a-time reference over random chunkings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, type LineSink } from '../../src/smtp/line-reader.js';

type Ev = { line: string; bareLf: boolean } | { overlong: number };

/** A sink that records events (lines copied: the Buffer is only valid during the call). */
function recorder(reader?: LineReader, stopAfter = Infinity): LineSink & { events: Ev[] } {
  const events: Ev[] = [];
  return {
    events,
    onLine(line, bareLf) {
      events.push({ line: line.toString('latin1'), bareLf });
      if (events.length >= stopAfter) reader?.stop();
    },
    onOverlong(length) {
      events.push({ overlong: length });
      if (events.length >= stopAfter) reader?.stop();
    },
  };
}

/** Reference: one byte at a time, the rules of the contract spelled out plainly. */
function reference(data: Buffer, max: number): { events: Ev[]; ends: number[]; pending: Buffer } {
  const events: Ev[] = [];
  const ends: number[] = [];
  let cur: number[] = [];
  let discarding = false;
  for (let i = 0; i < data.length; i++) {
    const b = data[i] as number;
    if (discarding) {
      if (b === 0x0a) discarding = false;
      continue;
    }
    cur.push(b);
    if (cur.length > max) {
      events.push({ overlong: max + 1 });
      ends.push(i + 1);
      discarding = b !== 0x0a;
      cur = [];
    } else if (b === 0x0a) {
      cur.pop();
      const crlf = cur.length > 0 && cur[cur.length - 1] === 0x0d;
      if (crlf) cur.pop();
      events.push({ line: Buffer.from(cur).toString('latin1'), bareLf: !crlf });
      ends.push(i + 1);
      cur = [];
    }
  }
  return { events, ends, pending: Buffer.from(cur) };
}

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

const cases: Array<{ name: string; max: number; chunks: string[]; want: Ev[]; pending?: string }> = [
  { name: 'CRLF line', max: 100, chunks: ['EHLO x\r\n'], want: [{ line: 'EHLO x', bareLf: false }] },
  { name: 'bare LF line', max: 100, chunks: ['EHLO x\n'], want: [{ line: 'EHLO x', bareLf: true }] },
  { name: 'CR inside a line is data', max: 100, chunks: ['a\rb\r\r\n'], want: [{ line: 'a\rb\r', bareLf: false }] },
  { name: 'empty lines', max: 100, chunks: ['\r\n\n'], want: [{ line: '', bareLf: false }, { line: '', bareLf: true }] },
  { name: 'CR and LF in different chunks', max: 100, chunks: ['NOOP\r', '\nQUIT\r\n'], want: [{ line: 'NOOP', bareLf: false }, { line: 'QUIT', bareLf: false }] },
  { name: 'partial line stays pending', max: 100, chunks: ['NOOP\r\nMAIL FR'], want: [{ line: 'NOOP', bareLf: false }], pending: 'MAIL FR' },
  { name: 'exactly max with CRLF is fine', max: 6, chunks: ['abcd\r\n'], want: [{ line: 'abcd', bareLf: false }] },
  { name: 'exactly max with bare LF is fine', max: 6, chunks: ['abcde\n'], want: [{ line: 'abcde', bareLf: true }] },
  { name: 'one over max with CRLF is overlong, no discard', max: 6, chunks: ['abcde\r\nok\n'], want: [{ overlong: 7 }, { line: 'ok', bareLf: true }] },
  { name: 'overlong: once, discard to LF, resume', max: 6, chunks: ['abcdefghij', 'klm\r\nNOOP\r\n'], want: [{ overlong: 7 }, { line: 'NOOP', bareLf: false }] },
  { name: 'two overlong lines in a row', max: 4, chunks: ['abcdefghij\nklmnop\r\n'], want: [{ overlong: 5 }, { overlong: 5 }] },
  { name: 'overlong then short line', max: 8, chunks: ['0123456789', 'abc\r\nQUIT\r\n'], want: [{ overlong: 9 }, { line: 'QUIT', bareLf: false }] },
  { name: 'NUL bytes are data', max: 100, chunks: ['a\0b\r\n'], want: [{ line: 'a\0b', bareLf: false }] },
];

for (const c of cases) {
  test(`line-reader: ${c.name}`, () => {
    const reader = new LineReader(c.max);
    const sink = recorder();
    for (const ch of c.chunks) reader.feed(Buffer.from(ch, 'latin1'), sink);
    const ref = reference(Buffer.from(c.chunks.join(''), 'latin1'), c.max);
    assert.deepEqual(sink.events, ref.events, 'reference agrees');
    assert.deepEqual(sink.events, c.want);
    assert.equal(reader.takePending().toString('latin1'), c.pending ?? '');
  });
}

test('line-reader: a line inside one chunk is a view of it (no copy)', () => {
  const reader = new LineReader(100);
  // Buffer.alloc is never from the shared pool: a copy cannot share the chunk's ArrayBuffer by chance.
  const chunk = Buffer.alloc(12);
  chunk.write('NOOP\r\nQUIT\r\n', 'latin1');
  const seen: Buffer[] = [];
  reader.feed(chunk, { onLine: (l) => seen.push(l), onOverlong: () => assert.fail('not overlong') });
  assert.equal(seen.length, 2);
  for (const l of seen) assert.equal(l.buffer, chunk.buffer);
});

test('line-reader: stop() in a callback keeps the rest as pending, later feeds add to it', () => {
  const reader = new LineReader(100);
  const sink = recorder(reader, 1);
  reader.feed(Buffer.from('EHLO a\r\nMAIL FROM:<x>\r\nRC'), sink);
  assert.deepEqual(sink.events, [{ line: 'EHLO a', bareLf: false }]);
  assert.equal(reader.pendingLength, 'MAIL FROM:<x>\r\nRC'.length);
  reader.feed(Buffer.from('PT TO:<y>\r\n'), sink);
  assert.equal(sink.events.length, 1, 'nothing delivered after stop');
  assert.equal(reader.takePending().toString(), 'MAIL FROM:<x>\r\nRCPT TO:<y>\r\n');
  assert.equal(reader.pendingLength, 0);
  assert.equal(reader.takePending().length, 0);
});

test('line-reader: takePending returns the partial line plus rest, and reset() starts over', () => {
  const reader = new LineReader(100);
  const sink = recorder();
  reader.feed(Buffer.from('HELO'), sink);
  reader.stop();
  reader.feed(Buffer.from(' x\r\n'), sink);
  assert.equal(reader.takePending().toString(), 'HELO x\r\n');
  reader.feed(Buffer.from('abc'), sink);
  reader.reset();
  assert.equal(reader.pendingLength, 0);
  reader.feed(Buffer.from('NOOP\n'), sink);
  assert.deepEqual(sink.events, [{ line: 'NOOP', bareLf: true }]);
});

test('line-reader: constructor rejects a bad bound', () => {
  assert.throws(() => new LineReader(0), RangeError);
  assert.throws(() => new LineReader(1.5), RangeError);
});

/** Random SMTP-ish bytes: heavy on CR, LF, NUL and short words. */
const byteArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0x0a, 0x0d, 0x00) },
  { weight: 6, arbitrary: fc.constantFrom(0x41, 0x42, 0x20, 0x3a) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const dataArb = fc.array(byteArb, { maxLength: 300 }).map((a) => Buffer.from(a));

test('line-reader property: any chunking = whole feed = reference; pending <= max; never throws', () => {
  fc.assert(
    fc.property(dataArb, fc.integer({ min: 1, max: 40 }), fc.array(fc.nat(), { maxLength: 20 }), (data, max, cuts) => {
      const ref = reference(data, max);

      const whole = new LineReader(max);
      const ws = recorder();
      whole.feed(data, ws);
      assert.deepEqual(ws.events, ref.events);
      assert.deepEqual(whole.takePending(), ref.pending);

      const chunked = new LineReader(max);
      const cs = recorder();
      for (const ch of split(data, cuts)) {
        chunked.feed(ch, cs);
        assert.ok(chunked.pendingLength <= max, `pending ${chunked.pendingLength} > ${max}`);
      }
      assert.deepEqual(cs.events, ref.events);
      assert.deepEqual(chunked.takePending(), ref.pending);
    }),
    { numRuns: 2000 },
  );
});

test('line-reader property: one byte at a time agrees with the reference', () => {
  fc.assert(
    fc.property(dataArb, fc.integer({ min: 1, max: 20 }), (data, max) => {
      const r = new LineReader(max);
      const s = recorder();
      for (let i = 0; i < data.length; i++) r.feed(data.subarray(i, i + 1), s);
      assert.deepEqual(s.events, reference(data, max).events);
    }),
    { numRuns: 500 },
  );
});

test('line-reader property: stop() after the k-th event leaves exactly the unread tail pending', () => {
  fc.assert(
    fc.property(dataArb, fc.integer({ min: 1, max: 30 }), fc.array(fc.nat(), { maxLength: 10 }), fc.nat({ max: 10 }), (data, max, cuts, k0) => {
      const ref = reference(data, max);
      fc.pre(ref.events.length > 0);
      const k = (k0 % ref.events.length) + 1;
      const r = new LineReader(max);
      const s = recorder(r, k);
      for (const ch of split(data, cuts)) r.feed(ch, s);
      assert.deepEqual(s.events, ref.events.slice(0, k));
      assert.deepEqual(r.takePending(), data.subarray(ref.ends[k - 1]));
    }),
    { numRuns: 1000 },
  );
});

test('line-reader: buffered counts the bytes after the line in its chunk; rest() shows them during the call only', () => {
  const reader = new LineReader(100);
  const seen: Array<[string, number, string]> = [];
  const sink: LineSink = {
    onLine: (l, _b, n) => seen.push([l.toString('latin1'), n, reader.rest().toString('latin1')]),
    onOverlong: () => assert.fail('not overlong'),
  };
  reader.feed(Buffer.from('EHLO x\r\nMAIL FR'), sink);
  reader.feed(Buffer.from('OM:<a>\r\n'), sink);
  reader.feed(Buffer.from('RCPT TO:<b>\nQUIT\r\n'), sink);
  assert.deepEqual(seen, [
    ['EHLO x', 7, 'MAIL FR'],
    ['MAIL FROM:<a>', 0, ''],
    ['RCPT TO:<b>', 6, 'QUIT\r\n'],
    ['QUIT', 0, ''],
  ]);
  assert.equal(reader.rest().length, 0, 'empty outside a callback');
  reader.feed(Buffer.from('NOOP\r\nMAIL'), sink);
  assert.deepEqual(seen.at(-1), ['NOOP', 4, 'MAIL']);
  assert.equal(reader.rest().length, 0, 'empty after the feed, though the last line had bytes after it');
});

test('line-reader property: buffered = chunk length - end of the line in it, for every chunking', () => {
  fc.assert(
    fc.property(dataArb, fc.integer({ min: 1, max: 40 }), fc.array(fc.nat(), { maxLength: 20 }), (data, max, cuts) => {
      const r = new LineReader(max);
      for (const ch of split(data, cuts)) {
        // Where each delivered line of this chunk ends, by the reference over the chunk alone is not
        // possible (lines span chunks); check the invariant instead: rest() is a suffix of the chunk
        // of length `buffered`, and what follows it in the chunk is never before the line's LF.
        r.feed(ch, {
          onLine(_l, _b, n) {
            const rest = r.rest();
            assert.equal(rest.length, n);
            assert.ok(n < ch.length, 'the LF itself is in this chunk');
            assert.deepEqual(rest, ch.subarray(ch.length - n));
            assert.equal(ch[ch.length - n - 1], 0x0a, 'the byte before the rest is the LF');
          },
          onOverlong() { /* discarded */ },
        });
      }
    }),
    { numRuns: 1000 },
  );
});

test('line-reader: long lines split across many chunks come out whole (the partial-line buffer grows to the bound)', () => {
  const max = 4096;
  const reader = new LineReader(max);
  const sink = recorder();
  const lines = [300, 1000, 700, 4094, 10, 2500].map((n, k) => Buffer.alloc(n, 0x61 + k).toString('latin1'));
  // Each line in 97-byte pieces, so every line but the shortest is assembled from several chunks.
  const data = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
  for (let at = 0; at < data.length; at += 97) reader.feed(data.subarray(at, at + 97), sink);
  assert.deepEqual(sink.events.map((e) => ('line' in e ? e.line.length : -1)), lines.map((l) => l.length));
  assert.deepEqual(sink.events, lines.map((line) => ({ line, bareLf: false })));
  // A partial line of 4000 bytes waits whole, then a 4096-byte line (CRLF included) still fits.
  reader.feed(Buffer.alloc(4000, 0x7a), sink);
  assert.equal(reader.pendingLength, 4000);
  reader.feed(Buffer.from(`${'y'.repeat(94)}\r\n`), sink);
  assert.deepEqual(sink.events.at(-1), { line: 'z'.repeat(4000) + 'y'.repeat(94), bareLf: false });
});

test('line-reader: the constructor error names the bad bound', () => {
  for (const bad of [0, -1, 2.5, Number.NaN]) {
    assert.throws(() => new LineReader(bad), { name: 'RangeError', message: `LineReader: maxLength must be a positive integer, got ${String(bad)}` });
  }
  assert.equal(new LineReader(1).maxLength, 1);
});

test('line-reader: a partial line longer than the first buffer arrives whole in one chunk; stopped reports stop() and reset()', () => {
  const reader = new LineReader(1000);
  const sink = recorder();
  reader.feed(Buffer.alloc(600, 0x71), sink);
  reader.feed(Buffer.from('\r\n'), sink);
  assert.deepEqual(sink.events, [{ line: 'q'.repeat(600), bareLf: false }]);
  assert.equal(reader.stopped, false);
  reader.stop();
  assert.equal(reader.stopped, true);
  reader.reset();
  assert.equal(reader.stopped, false);
});
