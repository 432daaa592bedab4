/*
 * test/helpers/fake-policy.ts - a policy transport whose answers the test gives, for the session
 * tests that ask the policy service (test/session/policy.test.ts, machine-paths.test.ts).
 *
 * Exports: FakeTransport.
 * Every call is kept with its JSON body; `answer(json)` resolves the oldest with a 200 and that
 * body. Calls never time out by themselves: the session's own budget does.
 */
import assert from 'node:assert/strict';
import type { PolicyAnswer, PolicyTransport } from '../../src/net/policy-http.js';

export class FakeTransport implements PolicyTransport {
  calls: Array<{ body: Record<string, unknown>; resolve: (a: PolicyAnswer) => void }> = [];
  post(body: string): Promise<PolicyAnswer> {
    return new Promise((resolve) => this.calls.push({ body: JSON.parse(body) as Record<string, unknown>, resolve }));
  }
  answer(json: Record<string, unknown>): void {
    const c = this.calls.shift();
    assert.ok(c !== undefined, 'a call was made');
    c.resolve({ status: 200, body: JSON.stringify(json) });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
