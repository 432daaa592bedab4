/*
 * test/fuzz/fuzz.test.ts - the short fuzz run inside `npm test`: every target
 * of test/fuzz/targets.ts for a few thousand cases (FUZZ_TEST_CASES, default
 * 2000), then its worst-case shapes at n and 10 n (at most 20 times as long).
 * The long run (1,000,000 cases each) is `npm run fuzz` (scripts/fuzz.ts).
 * The seed comes from the clock and is printed with any failure, so a failure
 * can be replayed: FUZZ_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS } from './targets.js';
import { linearCheck, runTarget } from './harness.js';

const CASES = Number(process.env['FUZZ_TEST_CASES'] ?? 2000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);

for (const t of TARGETS) {
  test(`fuzz ${t.name}: ${CASES} cases hold every property (${t.what})`, () => {
    const st = runTarget(t, CASES, SEED);
    assert.equal(st.failures, 0, `seed ${SEED}: ${st.counterexample}\n${st.error}`);
    assert.equal(st.cases, CASES);
  });

  test(`fuzz ${t.name}: worst-case shapes take time linear in their size`, () => {
    for (const s of t.linear) {
      // A loaded machine can stretch one measurement: the best of three attempts counts
      // (a quadratic shape gives about 100 every time).
      let r = linearCheck(s, 0.5);
      for (let i = 1; i < 3 && r.ratio >= 20; i++) {
        const again = linearCheck(s, 0.5);
        if (again.ratio < r.ratio) r = again;
      }
      assert.ok(r.ratio < 20, `${s.shape}: n ${r.n} ${r.smallMs.toFixed(3)} ms, 10 n ${r.largeMs.toFixed(3)} ms: x${r.ratio.toFixed(1)}`);
    }
  });
}
