import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../src/util/duration.js';
import { ScreenError } from '../../src/util/errors.js';

const GOOD: Array<{ input: string | number; ms: number }> = [
  { input: '300ms', ms: 300 },
  { input: '6s', ms: 6000 },
  { input: '5m', ms: 300_000 },
  { input: '1h', ms: 3_600_000 },
  { input: '1d', ms: 86_400_000 },
  { input: '1w', ms: 604_800_000 },
  { input: '6', ms: 6000 },          // bare number = seconds (Postfix)
  { input: 6, ms: 6000 },
  { input: 0, ms: 0 },
  { input: '0s', ms: 0 },
  { input: '1.5s', ms: 1500 },
  { input: ' 2s ', ms: 2000 },
  { input: 0.25, ms: 250 },
];

for (const { input, ms } of GOOD) {
  test(`parseDuration(${JSON.stringify(input)}) = ${ms}`, () => {
    assert.equal(parseDuration(input), ms);
  });
}

const BAD: Array<string | number> = ['6x', '', 's', '-1s', -1, '1.5ms', '6 s', '1e3', 'abc', NaN, Infinity, '0x10', '1s2'];

for (const input of BAD) {
  test(`parseDuration(${String(JSON.stringify(input) ?? input)}) throws SCR_ERR_DURATION`, () => {
    assert.throws(() => parseDuration(input), (e: unknown) => {
      assert.ok(e instanceof ScreenError);
      assert.equal(e.code, 'SCR_ERR_DURATION');
      assert.deepEqual(e.details, { value: input });
      return true;
    });
  });
}

const FORMAT: Array<{ ms: number; text: string }> = [
  { ms: 0, text: '0s' },
  { ms: 300, text: '300ms' },
  { ms: 1500, text: '1500ms' },
  { ms: 6000, text: '6s' },
  { ms: 90_000, text: '90s' },
  { ms: 300_000, text: '5m' },
  { ms: 3_600_000, text: '1h' },
  { ms: 86_400_000, text: '1d' },
  { ms: 172_800_000, text: '2d' },
  { ms: 604_800_000, text: '1w' },
];

for (const { ms, text } of FORMAT) {
  test(`formatDuration(${ms}) = ${text}`, () => {
    assert.equal(formatDuration(ms), text);
  });
}

test('formatDuration round-trips through parseDuration', () => {
  for (const ms of [1, 999, 1000, 59_999, 60_000, 123_456_789, 7 * 86_400_000 * 3]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
});
