/*
 * test/cache/store.test.ts - the verdict record helpers: withPasses() builds a
 * new record from a base, the text codec's edges (field width, errors that name
 * the field), allPassed() at the pass-until time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allPassed, decodeRecord, encodeRecord, newRecord, withPasses } from '../../src/cache/store.js';
import { ScreenError } from '../../src/util/errors.js';
import { TEST_COUNT, TestIndex } from '../../src/checks/tests.js';

const NOW = 1_800_000_000_000;

test('withPasses: a new record of every row, the base copied, the changes applied, the base untouched', () => {
  const base = withPasses(null, [[TestIndex.pregreet, NOW + 1], [TestIndex.dnsbl, NOW + 2]]);
  assert.equal(base.length, TEST_COUNT);
  assert.deepEqual([...(base as Float64Array)], Array.from({ length: TEST_COUNT }, (_, i) => (i === TestIndex.pregreet ? NOW + 1 : i === TestIndex.dnsbl ? NOW + 2 : 0)));
  const next = withPasses(base, [[TestIndex.dnsbl, NOW + 9], [TestIndex.greylist, -NOW]]);
  assert.notEqual(next, base);
  assert.equal(next[TestIndex.pregreet], NOW + 1, 'kept from the base');
  assert.equal(next[TestIndex.dnsbl], NOW + 9, 'changed');
  assert.equal(next[TestIndex.greylist], -NOW, 'added');
  assert.equal(base[TestIndex.dnsbl], NOW + 2, 'the base is a value: not edited');
  // A shorter base (an older writer) fills the rows it has; a longer one gives only ours.
  const short = withPasses([NOW + 3, NOW + 4], []);
  assert.deepEqual([...(short as Float64Array)], [NOW + 3, NOW + 4, ...Array(TEST_COUNT - 2).fill(0)]);
  assert.equal(withPasses(Array(TEST_COUNT + 4).fill(7), []).length, TEST_COUNT);
  assert.deepEqual([...newRecord()], Array(TEST_COUNT).fill(0));
});

test('record text: version 1, fields separated by ";", 0 for never passed, negative greylist times', () => {
  const r = withPasses(null, [[TestIndex.pregreet, NOW + 1], [TestIndex.greylist, -NOW]]);
  const text = encodeRecord(r);
  assert.equal(text, `1:${Array.from({ length: TEST_COUNT }, (_, i) => (i === TestIndex.pregreet ? NOW + 1 : i === TestIndex.greylist ? -NOW : 0)).join(';')}`);
  assert.deepEqual([...(decodeRecord(text) as Float64Array)], [...(r as Float64Array)]);
  assert.equal(encodeRecord([]), '1:');
  assert.equal(encodeRecord([0, 5]), '1:0;5');
  // A newer writer's extra fields are ignored unread, whatever they hold.
  const newer = decodeRecord(`1:${'7;'.repeat(TEST_COUNT)}x;;-`);
  assert.deepEqual([...(newer as Float64Array)], Array(TEST_COUNT).fill(7));
});

test('record text: a field is at most 15 digits; errors name the field and keep only a bounded piece of the input', () => {
  assert.equal(decodeRecord(`1:${'9'.repeat(15)}`)[0], 999_999_999_999_999);
  assert.equal(decodeRecord(`1:-${'9'.repeat(15)}`)[0], -999_999_999_999_999);
  const err = (text: string): ScreenError => {
    try {
      decodeRecord(text);
    } catch (e) {
      assert.ok(e instanceof ScreenError);
      assert.equal(e.code, 'SCR_ERR_CACHE');
      return e;
    }
    return assert.fail(`accepted ${JSON.stringify(text)}`);
  };
  assert.equal(err(`1:${'9'.repeat(16)}`).message, `bad cache record field 0 "${'9'.repeat(16).slice(0, 20)}"`);
  assert.equal(err('1:0;x5').message, 'bad cache record field 1 "x5"');
  assert.equal(err('1:0;5x').message, 'bad cache record field 1 "5x"');
  assert.equal(err('1:0;;1').message, 'bad cache record field 1 ""');
  const long = `2:${'1;'.repeat(40)}`;
  const e = err(long);
  assert.equal(e.message, `unknown cache record version in "${long.slice(0, 20)}"`);
  assert.deepEqual(e.details, { value: long.slice(0, 40) });
  const badField = `1:${'a'.repeat(50)}`;
  assert.equal(err(badField).message, `bad cache record field 0 "${'a'.repeat(20)}"`);
  assert.deepEqual(err(badField).details, { value: badField.slice(0, 40) });
});

test('allPassed: a pass counts while it is later than now; a missing row is no pass', () => {
  const r = withPasses(null, [[TestIndex.pregreet, NOW + 1]]);
  assert.equal(allPassed(r, [TestIndex.pregreet], NOW), true);
  assert.equal(allPassed(r, [TestIndex.pregreet], NOW + 1), false);
  assert.equal(allPassed([NOW + 1], [0, 5], NOW), false, 'row 5 absent from a short record');
  assert.equal(allPassed([NOW + 1, NOW + 1], [0, 1], NOW), true);
  assert.equal(allPassed(r, [], NOW), false, 'no enabled test: nothing to be an old client for');
});
