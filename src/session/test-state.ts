/*
 * session/test-state.ts - one session's test-state table, as postscreen's
 * per-test TODO / PASS / FAIL / DONE flags.
 *
 * Exports: FAIL, PASS, TODO, DONE, IGNORED, ALLOWLISTED, SHADOWED, flag(), fates(), EARLY_TESTS, earlyTodo(),
 *          earlyDone(), anyFail(), stateToString().
 * One small integer per session: 4 bits per row of the test table
 * (checks/tests.ts), FAIL = 1, PASS = 2, TODO = 4, DONE = 8, shifted by
 * 4 x the test's index. Seven tests take 28 bits: a V8 small integer, so the
 * table costs an idle connection nothing beyond the one field.
 *   TODO  the test runs in this session (raised at accept or when the dummy
 *         engine starts; never cleared once raised, as in postscreen);
 *   DONE  it has its result; PASS / FAIL say which (a failure under
 *         `ignore` is DONE without FAIL and without PASS: nothing is
 *         remembered, the test repeats next time).
 * The masks name the questions the code asks: are the early tests all done?
 * did any test fail? stateToString() prints the bits by name for logs,
 * `explain` and tests ("PREGREET_TODO|PREGREET_DONE|DNSBL_TODO").
 */
import { TESTS, TEST_COUNT, TestIndex } from '../checks/tests.js';

export const FAIL = 1;
export const PASS = 2;
export const TODO = 4;
export const DONE = 8;

/** Session bits above the test rows (seven rows: 28 bits): a failure was ignored (hand over, remember nothing). */
export const IGNORED = 1 << 28;
/** A check vouched for the client (DNSBL allowlist threshold, policy permit): every test passes. */
export const ALLOWLISTED = 1 << 29;
/** A failure was shadowed (mode: shadow): go on as if passed; the handoff's verdict is `shadow`. */
export const SHADOWED = 1 << 30;

/** The bit of `fate` (FAIL, PASS, TODO, DONE) for test row `test`. */
export function flag(test: number, fate: number): number {
  return fate << (test * 4);
}

/** The fate bits (FAIL | PASS | TODO | DONE) of test row `test` in `state`. */
export function fates(state: number, test: number): number {
  return (state >>> (test * 4)) & 15;
}

/** The early tests: they run during the greet wait, before any SMTP. */
export const EARLY_TESTS: readonly number[] = [TestIndex.pregreet, TestIndex.dnsbl, TestIndex.policy];

function every(fate: number, tests: readonly number[]): number {
  let m = 0;
  for (const t of tests) m |= flag(t, fate);
  return m;
}

const EARLY_TODO = every(TODO, EARLY_TESTS);
const ALL_FAIL = every(FAIL, Array.from({ length: TEST_COUNT }, (_, i) => i));

/** The TODO bits of the early tests in `state`. */
export function earlyTodo(state: number): number {
  return state & EARLY_TODO;
}

/** True when every early test that is to do is done: the greet wait has nothing left to wait for. */
export function earlyDone(state: number): boolean {
  const todo = state & EARLY_TODO;
  // DONE is TODO's bit shifted left once, test by test (postscreen's PSC_STATE_FLAGS_TODO_TO_DONE).
  return (state & (todo << 1)) === todo << 1;
}

/** True when some test failed (drop or enforce) in this session. */
export function anyFail(state: number): boolean {
  return (state & ALL_FAIL) !== 0;
}

const FATE_NAMES: ReadonlyArray<[number, string]> = [[TODO, 'TODO'], [PASS, 'PASS'], [FAIL, 'FAIL'], [DONE, 'DONE']];

/** The bits by name, in test-table order: "PREGREET_TODO|PREGREET_DONE|DNSBL_TODO"; "" when none. */
export function stateToString(state: number): string {
  const out: string[] = [];
  for (let t = 0; t < TEST_COUNT; t++) {
    const f = fates(state, t);
    if (f === 0) continue;
    const name = (TESTS[t] as string).toUpperCase();
    for (const [bit, fate] of FATE_NAMES) if ((f & bit) !== 0) out.push(`${name}_${fate}`);
  }
  if ((state & IGNORED) !== 0) out.push('IGNORED');
  if ((state & ALLOWLISTED) !== 0) out.push('ALLOWLISTED');
  if ((state & SHADOWED) !== 0) out.push('SHADOWED');
  return out.join('|');
}
