/*
 * checks/check.ts - what every test returns, and the one switch over actions.
 *
 * Exports: Result, Outcome, applyAction().
 * A check decides pass or fail; what a failure does is the same three-way
 * switch for every test (postscreen's DROP / ENFORCE / IGNORE), written once here.
 */
import type { Action } from '../config/types.js';

export interface Result {
  /** true: the client passed this test; false: it failed. */
  pass: boolean;
  /** Fields for the log event of this test. */
  fields: Record<string, unknown>;
}

/** What the session does after a failed test. */
export type Outcome =
  | 'drop'      // reply 521 and close now
  | 'enforce'   // remember the failure: the dummy engine rejects at RCPT
  | 'continue'; // ignore: log only, no pass recorded, the test repeats next time

export function applyAction(action: Action): Outcome {
  switch (action) {
    case 'drop': return 'drop';
    case 'enforce': return 'enforce';
    case 'ignore': return 'continue';
    default: {
      const never: never = action;
      throw new Error(`unknown action ${String(never)}`);
    }
  }
}
