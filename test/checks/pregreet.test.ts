/*
 * test/checks/pregreet.test.ts - PregreetProbe: counting, the escaped sample, and the early
 * bytes kept for the backend under `ignore` (bounded, in order, taken once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EARLY_KEEP, PregreetProbe, pregreetResult } from '../../src/checks/pregreet.js';

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
  assert.equal(p.discarded, 0, 'nothing kept, nothing discarded: a probe that keeps nothing only counts');
  const big = new PregreetProbe();
  big.record(Buffer.alloc(1000, 0x41), 0);
  assert.equal(big.sample().length, 100, 'the README\'s 100-byte sample, not the module\'s own constant');
});

test('PregreetProbe(keep): early bytes kept in order up to the bound, the rest counted as discarded; takeKept empties it', () => {
  const p = new PregreetProbe(10);
  p.record(Buffer.from('EHLO'), 0);
  p.record(Buffer.from(' a\r\n'), 1);
  assert.equal(p.discarded, 0);
  p.record(Buffer.from('MAIL'), 2);
  assert.equal(p.discarded, 2, 'the 2 bytes past the bound are not kept');
  assert.equal(p.takeKept()?.toString(), 'EHLO a\r\nMA');
  assert.equal(p.takeKept(), null, 'taken once');
});

test('PregreetProbe(keep) property: whatever the chunks, the kept bytes are the first min(keep, total) bytes; the rest of a read is counted as discarded', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 30 }), fc.integer({ min: 1, max: 2000 }), (chunks, keep) => {
      const p = new PregreetProbe(keep);
      let fed = 0;
      for (const c of chunks) {
        p.record(Buffer.from(c), 0);
        fed += c.length;
      }
      const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
      assert.equal(p.discarded, Math.max(0, fed - keep));
      const kept = p.takeKept() ?? Buffer.alloc(0);
      assert.equal(kept.length, Math.min(keep, fed));
      assert.deepEqual(kept, all.subarray(0, kept.length));
    }),
  );
});

test('PregreetProbe(EARLY_KEEP): a 64 KiB read keeps a 4,096-byte copy, not the read (the memory bound)', () => {
  assert.equal(EARLY_KEEP, 4096, 'the README promises 4 KiB');
  const p = new PregreetProbe(EARLY_KEEP);
  const read = Buffer.alloc(65536, 0x41);
  p.record(read, 0);
  assert.equal(p.discarded, 65536 - 4096);
  const kept = p.takeKept() as Buffer;
  assert.equal(kept.length, 4096);
  assert.ok(kept.buffer !== read.buffer && kept.buffer.byteLength < 65536, 'the kept bytes do not hold the 64 KiB read alive');
  read[0] = 0x5a;
  assert.equal(kept[0], 0x41, 'a copy');
});

test('pregreetResult of a client that said nothing: a pass with no fields; an empty probe samples ""', () => {
  const p = new PregreetProbe(EARLY_KEEP);
  assert.deepEqual(pregreetResult(p, 0), { pass: true, fields: {} });
  assert.equal(p.sample(), '');
  assert.equal(p.takeKept(), null);
});
