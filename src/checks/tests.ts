/*
 * checks/tests.ts - the test table: one row per test, as postscreen's PSC_TINDX_*.
 *
 * Exports: TESTS, TestId, TestIndex, TEST_COUNT.
 * The verdict cache stores one pass-until time per row, in this order; a new
 * test is a new file in checks/ plus one row here (append only: the cache
 * record codec reads rows by position, and missing trailing rows read as 0,
 * "never passed", so old records stay valid).
 */
export const TESTS = ['pregreet', 'dnsbl', 'pipelining', 'non_smtp', 'bare_newline', 'greylist', 'policy'] as const;
export type TestId = (typeof TESTS)[number];
export const TEST_COUNT = TESTS.length;

export const TestIndex: { readonly [K in TestId]: number } = Object.freeze(
  Object.fromEntries(TESTS.map((t, i) => [t, i])) as { [K in TestId]: number },
);
