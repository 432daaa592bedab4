/*
 * test/config/duration-bounds.test.ts - every duration key is bounded: Node arms a timer of more
 * than 2^31-1 ms with 1 ms instead, so a timer delay above that must be refused at load (25d for
 * pregreet.wait, cache.snapshot_interval, in the file and under stress:), each bound itself is
 * accepted and one millisecond past it refused, and a walk over SCHEMA checks that no duration
 * key lacks a maximum. Ages (TTLs, delays between attempts) are compared with the clock, never
 * given to a timer: their rows say so (`age`) and they are bounded too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA, type KeySpec } from '../../src/config/schema.js';
import { setPath } from '../../src/config/raw.js';
import { validateConfig } from '../../src/config/validate.js';
import { parseConfigText } from '../../src/config/load.js';
import { configReferenceMarkdown } from '../../src/config/reference.js';
import { formatDuration } from '../../src/util/duration.js';
import { configError } from '../helpers/config-error.js';
import { MIN_MAX_PAIRS } from '../../src/config/refusals.js';

/** setTimeout's limit: a longer delay is taken as 1 ms. */
const TIMER_LIMIT_MS = 2 ** 31 - 1;
const DURATIONS: readonly KeySpec[] = SCHEMA.filter((s) => s.type === 'duration');

/** raw config with `key` (dotted) set to `value`. */
/** `key` set to `value`; the partner of a min/max pair (config/refusals.ts) set to its widest bound, so only `key`'s own bounds are tested. */
function rawWith(key: string, value: unknown): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  // A field of a list element ("backends[].connect_timeout"): one element with it.
  if (key.startsWith('backends[].')) return { backends: [{ name: 'b', address: '127.0.0.1:1', [key.slice(11)]: value }] };
  setPath(raw, key, value);
  for (const p of MIN_MAX_PAIRS) {
    if (p.min === key) setPath(raw, p.max, `${SCHEMA.find((s) => s.key === p.max)?.max ?? 0}ms`);
    if (p.max === key) setPath(raw, p.min, `${SCHEMA.find((s) => s.key === p.min)?.min ?? 0}ms`);
  }
  return raw;
}

test('25d is refused for pregreet.wait and cache.snapshot_interval, naming the key, the value and the maximum', () => {
  for (const key of ['pregreet.wait', 'cache.snapshot_interval']) {
    const max = SCHEMA.find((s) => s.key === key)?.max;
    assert.ok(max !== undefined && max <= TIMER_LIMIT_MS, `${key} has a maximum`);
    const e = configError(() => validateConfig(rawWith(key, '25d')));
    assert.equal(e.details['key'], key);
    assert.equal(e.details['value'], '25d');
    assert.equal(e.message, `${key}: "25d" is above the maximum ${formatDuration(max)}`);
  }
});

test('25d is refused at load from a file and as a stress value', () => {
  const file = configError(() => parseConfigText('cache:\n  snapshot_interval: 25d\n', 'smtpscreen.yaml'));
  assert.equal(file.details['key'], 'cache.snapshot_interval');
  assert.match(file.message, /^smtpscreen\.yaml: cache\.snapshot_interval: "25d" is above the maximum /);
  const stress = configError(() => validateConfig({ stress: { pregreet: { wait: '25d' } } }));
  assert.equal(stress.details['key'], 'stress.pregreet.wait');
  assert.equal(stress.details['value'], '25d');
});

test('every duration key has a maximum; a timer delay at most 2^31-1 ms, an age at most 365d', () => {
  assert.ok(DURATIONS.length >= 20, `${DURATIONS.length} duration keys`);
  for (const s of DURATIONS) {
    assert.ok(s.max !== undefined, `${s.key} has no maximum`);
    assert.ok(s.min !== undefined && s.min >= 0 && s.min <= s.max, `${s.key}: minimum ${String(s.min)}`);
    assert.ok(s.max <= (s.age === true ? 365 * 86_400_000 : TIMER_LIMIT_MS), `${s.key}: maximum ${formatDuration(s.max)}`);
    const def = typeof s.default === 'number' ? s.default : NaN;
    assert.ok(def >= s.min && def <= s.max, `${s.key}: default ${formatDuration(def)} within its bounds`);
  }
  // The rows that drive timers: none may be an age.
  for (const key of ['limits.proxy_timeout', 'pregreet.wait', 'dnsbl.timeout', 'dnsbl.health.interval', 'resolver.timeout',
    'dummy.command_time_limit', 'cache.snapshot_interval', 'backend.connect_timeout', 'backend.handshake_timeout',
    'backend.ehlo_refresh', 'drain_timeout']) {
    const s = DURATIONS.find((d) => d.key === key);
    assert.ok(s !== undefined && s.age !== true, `${key} is a timer delay`);
  }
});

test('periodic jobs run at most once a second', () => {
  for (const key of ['cache.snapshot_interval', 'dnsbl.health.interval', 'backend.ehlo_refresh']) {
    const s = DURATIONS.find((d) => d.key === key);
    assert.ok(s?.min !== undefined && s.min >= 1000, `${key}: minimum ${String(s?.min)}`);
    const e = configError(() => validateConfig(rawWith(key, '999ms')));
    assert.equal(e.details['key'], key);
    assert.match(e.message, /is below the minimum 1s$/);
  }
});

test('each bound is accepted; one millisecond past it is refused', () => {
  for (const s of DURATIONS) {
    const { min, max } = s;
    assert.ok(min !== undefined && max !== undefined, s.key);
    for (const ok of [min, max]) {
      const c = validateConfig(rawWith(s.key, formatDuration(ok))) as unknown as Record<string, unknown>;
      let v: unknown = c;
      for (const p of s.key.replace('[]', '.0').split('.')) v = (v as Record<string, unknown>)[p];
      assert.equal(v, ok, `${s.key} = ${formatDuration(ok)}`);
    }
    const at = s.key.replace('[]', '[0]');
    assert.equal(configError(() => validateConfig(rawWith(s.key, `${max + 1}ms`))).details['key'], at);
    if (min > 0) assert.equal(configError(() => validateConfig(rawWith(s.key, `${min - 1}ms`))).details['key'], at);
  }
});

test('the configuration reference states each duration key\'s bounds', () => {
  const md = configReferenceMarkdown().split('\n');
  for (const s of DURATIONS) {
    const row = md.find((l) => l.startsWith(`| \`${s.key}\` |`)) ?? '';
    assert.ok(row.includes(`| ${formatDuration(s.min ?? 0)}..${formatDuration(s.max ?? 0)} |`), `${s.key}: ${row}`);
  }
});
