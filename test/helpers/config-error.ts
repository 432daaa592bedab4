/*
 * test/helpers/config-error.ts - configError(fn): the ScreenError SCR_ERR_CONFIG that fn throws;
 * fails the test when fn throws anything else or nothing.
 */
import assert from 'node:assert/strict';
import { ScreenError } from '../../src/util/errors.js';

export function configError(fn: () => unknown): ScreenError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ScreenError, String(e));
    assert.equal(e.code, 'SCR_ERR_CONFIG');
    return e;
  }
  assert.fail('expected SCR_ERR_CONFIG');
}
