/*
 * test/checks/pregreet.test.ts - PregreetProbe: counting, the escaped sample, and the early
 * bytes kept for the backend under `ignore` (bounded, in order, taken once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EARLY_KEEP, PregreetProbe, SAMPLE_BYTES, pregreetResult } from '../../src/checks/pregreet.js';

test('PregreetProbe: the first chunk decides and is sampled (escaped, bounded); later chunks are counted', () => {
  const p = new PregreetProbe();
  assert.equal(p.failed, false);
  assert.equal(p.record(Buffer.from('EHLO a\r\n'), 1010), true);
  assert.equal(p.record(Buffer.from('x'.repeat(500)), 1020), false);
  assert.equal(p.failed, true);
  assert.equal(p.bytes, 508);
  const r = pregreetResult(p, 1000);
  assert.deepEqual(r, { pass: false, fields: { bytes: 508, after_ms: 10, sample: 'EHLO a\\r\\n' } });
  assert.equal(p.takeKept(), null, 'nothing is kept by default');
  assert.equal(p.full, false);
  const big = new PregreetProbe();
  big.record(Buffer.alloc(1000, 0x41), 0);
  assert.equal(big.sample().length, SAMPLE_BYTES);
});

test('PregreetProbe(keep): early bytes kept in order up to the bound, then full; takeKept empties it', () => {
  const p = new PregreetProbe(10);
  p.record(Buffer.from('EHLO'), 0);
  assert.equal(p.full, false);
  p.record(Buffer.from(' a\r\n'), 1);
  assert.equal(p.full, false);
  p.record(Buffer.from('MAIL'), 2);
  assert.equal(p.full, true, '12 >= 10: the session stops reading');
  assert.equal(p.takeKept()?.toString(), 'EHLO a\r\nMAIL');
  assert.equal(p.takeKept(), null, 'taken once');
  assert.equal(new PregreetProbe(EARLY_KEEP).full, false);
});

test('PregreetProbe(keep) property: whatever the chunks, the kept bytes are a prefix of the input of at least min(keep, total) bytes', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 30 }), fc.integer({ min: 1, max: 2000 }), (chunks, keep) => {
      const p = new PregreetProbe(keep);
      const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
      for (const c of chunks) {
        if (p.full) break; // the session stops reading: later chunks wait in the kernel
        p.record(Buffer.from(c), 0);
      }
      const kept = p.takeKept() ?? Buffer.alloc(0);
      assert.ok(kept.length >= Math.min(keep, all.length));
      assert.ok(kept.length < keep + 300);
      assert.deepEqual(kept, all.subarray(0, kept.length));
    }),
  );
});
