/*
 * policy.* keys: defaults, the URL forms, and the budget refused at config time when it does
 * not fit in the greet wait (normal or stress value).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { configError } from '../helpers/config-error.js';

test('policy: off by default; the defaults the README states', () => {
  const p = validateConfig({}).policy;
  assert.deepEqual(p, {
    url: null, budget: 200, max_in_flight: 100, connections: 16, fail: 'open', action: 'enforce', at_rcpt: false,
    slow_warning: 100, ttl_max: 86_400_000, cache_max: 100_000, breaker: { failures: 5, window: 10_000, open_for: 30_000 },
  });
});

test('policy.url: http and unix forms accepted; others named with the key', () => {
  assert.equal(validateConfig({ policy: { url: 'http://127.0.0.1:9000/check' } }).policy.url, 'http://127.0.0.1:9000/check');
  assert.equal(validateConfig({ policy: { url: 'unix:/run/p.sock:/check' } }).policy.url, 'unix:/run/p.sock:/check');
  for (const bad of ['https://x/', 'unix:p.sock', 'nonsense']) {
    const e = configError(() => validateConfig({ policy: { url: bad } }));
    assert.equal(e.details['key'], 'policy.url', bad);
  }
});

test('policy.budget: refused at or above pregreet.wait, and at or above its stress value', () => {
  const e = configError(() => validateConfig({ pregreet: { wait: '1s' }, policy: { url: 'http://127.0.0.1:1/', budget: '1s' } }));
  assert.equal(e.details['key'], 'policy.budget');
  assert.match(e.message, /not below pregreet\.wait/);
  // The stress greet wait is 2s by default: a 3s budget fits the normal 6s wait but not the stress one.
  const s = configError(() => validateConfig({ policy: { url: 'http://127.0.0.1:1/', budget: '3s' } }));
  assert.match(s.message, /stress\.pregreet\.wait/);
  assert.equal(validateConfig({ policy: { url: 'http://127.0.0.1:1/', budget: '1500ms' } }).policy.budget, 1500);
  // No policy service: the budget is not checked; no pregreet test: no greet wait to fit in.
  assert.equal(validateConfig({ policy: { budget: '10s' } }).policy.budget, 10_000);
  assert.equal(validateConfig({ pregreet: { enable: false }, policy: { url: 'http://127.0.0.1:1/', budget: '10s' } }).policy.budget, 10_000);
});
