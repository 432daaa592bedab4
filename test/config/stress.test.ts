/*
 * Configuration of the stress personality: the watermarks, the
 * `stress:` overrides (validated as their normal keys, errors naming
 * `stress.x.y`), listen[].personality, printing and round trips, the docs column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEMA, STRESS_KEYS } from '../../src/config/schema.js';
import { configToRaw, defaultConfig } from '../../src/config/raw.js';
import { STRESS_DEFAULTS, validateConfig } from '../../src/config/validate.js';
import { applyOverrides, formatConfig, parseConfigText } from '../../src/config/load.js';
import { configReferenceMarkdown } from '../../src/config/reference.js';
import { configError } from '../helpers/config-error.js';

test('defaults: 90% / 70% (postscreen\'s high and low water marks), no overrides, listeners auto', () => {
  const c = defaultConfig();
  assert.deepEqual(c.stress, { enter_at: 90, leave_at: 70, overrides: {} });
  assert.deepEqual(validateConfig({}).stress, { enter_at: 90, leave_at: 70, overrides: {} });
  assert.equal(validateConfig({ listen: ['127.0.0.1:25'] }).listen[0]?.personality, 'auto');
});

const PERCENT: Array<{ raw: unknown; want: number }> = [
  { raw: '80%', want: 80 },
  { raw: ' 80 % ', want: 80 },
  { raw: 80, want: 80 },
  { raw: '87.5%', want: 87.5 },
  { raw: '100%', want: 100 },
];

for (const p of PERCENT) {
  test(`stress.enter_at accepts ${JSON.stringify(p.raw)} as ${p.want}%`, () => {
    assert.equal(validateConfig({ stress: { enter_at: p.raw, leave_at: '10%' } }).stress.enter_at, p.want);
  });
}

test('stress overrides: validated as their normal keys, stored by key; the normal values stay', () => {
  const c = validateConfig({
    pregreet: { wait: '4s' },
    stress: { enter_at: '80%', leave_at: '60%', pregreet: { wait: '1s', action: 'drop' }, dummy: { hard_error_limit: 2, command_time_limit: 15 } },
  });
  assert.deepEqual(c.stress, {
    enter_at: 80, leave_at: 60,
    overrides: { 'pregreet.wait': 1000, 'pregreet.action': 'drop', 'dummy.hard_error_limit': 2, 'dummy.command_time_limit': 15_000 },
  });
  assert.equal(c.pregreet.wait, 4000);
  assert.equal(c.pregreet.action, 'enforce');
  assert.equal(c.dummy.hard_error_limit, 20);
});

test('a stress section left empty ("pregreet:" with its children commented out) is fine', () => {
  assert.deepEqual(validateConfig({ stress: { pregreet: null } }).stress.overrides, {});
  assert.deepEqual(validateConfig({ stress: null }).stress, { enter_at: 90, leave_at: 70, overrides: {} });
});

// Each bad stress setting -> SCR_ERR_CONFIG naming the key under stress.
const BAD: Array<{ label: string; raw: unknown; key: string; says?: RegExp }> = [
  { label: 'bad duration under stress', raw: { stress: { pregreet: { wait: '6x' } } }, key: 'stress.pregreet.wait', says: /bad duration "6x"/ },
  { label: 'stress value below the key\'s minimum', raw: { stress: { dummy: { hard_error_limit: 0 } } }, key: 'stress.dummy.hard_error_limit', says: /below the minimum 1/ },
  { label: 'stress value of the wrong type', raw: { stress: { dummy: { command_count_limit: 'many' } } }, key: 'stress.dummy.command_count_limit' },
  { label: 'stress action not an action', raw: { stress: { pregreet: { action: 'reject' } } }, key: 'stress.pregreet.action', says: /want one of ignore, enforce, drop/ },
  { label: 'a key that has no stress value', raw: { stress: { pregreet: { ttl: '1d' } } }, key: 'stress.pregreet.ttl', says: /pregreet\.ttl has no stress value; keys with one: .*pregreet\.wait/ },
  { label: 'a top-level key that has no stress value', raw: { stress: { hostname: 'x' } }, key: 'stress.hostname', says: /hostname has no stress value/ },
  { label: 'a section without stress values', raw: { stress: { greylist: { enable: true } } }, key: 'stress.greylist', says: /greylist has no stress value/ },
  { label: 'a typo under stress suggests the stress key', raw: { stress: { pregreet: { wiat: '1s' } } }, key: 'stress.pregreet.wiat', says: /did you mean "stress\.pregreet\.wait"/ },
  { label: 'an unknown section under stress', raw: { stress: { pregret: { wait: '1s' } } }, key: 'stress.pregret' },
  { label: 'a stress section that is not a mapping', raw: { stress: { pregreet: 5 } }, key: 'stress.pregreet', says: /want a mapping/ },
  { label: 'stress itself not a mapping', raw: { stress: 'on' }, key: 'stress', says: /want a mapping/ },
  { label: 'enter_at above 100%', raw: { stress: { enter_at: '120%' } }, key: 'stress.enter_at', says: /above the maximum 100%/ },
  { label: 'enter_at 0', raw: { stress: { enter_at: 0, leave_at: 0 } }, key: 'stress.enter_at', says: /below the minimum 1%/ },
  { label: 'enter_at not a percentage', raw: { stress: { enter_at: 'most' } }, key: 'stress.enter_at', says: /want a percentage/ },
  { label: 'enter_at as a fraction string', raw: { stress: { enter_at: '0.8' } }, key: 'stress.enter_at', says: /want a percentage/ },
  { label: 'leave_at equal to the default enter_at', raw: { stress: { leave_at: '90%' } }, key: 'stress.leave_at', says: /must be below stress\.enter_at \(90%\)/ },
  { label: 'leave_at above enter_at', raw: { stress: { enter_at: '50%', leave_at: '60%' } }, key: 'stress.leave_at', says: /60% must be below stress\.enter_at \(50%\)/ },
  { label: 'listener personality unknown', raw: { listen: [{ address: '127.0.0.1:25', personality: 'hostile' }] }, key: 'listen[0].personality', says: /want one of auto, normal, stress/ },
];

for (const c of BAD) {
  test(`validateConfig rejects: ${c.label} -> ${c.key}`, () => {
    const e = configError(() => validateConfig(c.raw, 'stress.yaml'));
    assert.equal(e.details['key'], c.key);
    assert.ok(e.message.startsWith(`stress.yaml: ${c.key}: `), e.message);
    if (c.says !== undefined) assert.match(e.message, c.says);
  });
}

test('a listener can be pinned to either personality', () => {
  const c = validateConfig({ listen: ['127.0.0.1:25', { address: '127.0.0.1:26', personality: 'stress' }, { address: '127.0.0.1:27', personality: 'normal' }] });
  assert.deepEqual(c.listen.map((l) => l.personality), ['auto', 'stress', 'normal']);
});

test('configToRaw and formatConfig write the watermarks as percentages and the overrides under stress:', () => {
  const c = validateConfig({
    listen: [{ address: '127.0.0.1:26', personality: 'stress' }],
    stress: { enter_at: 80, leave_at: '60%', pregreet: { wait: '1500ms' }, dnsbl: { action: 'drop' } },
  });
  const raw = configToRaw(c);
  assert.deepEqual(raw['stress'], { enter_at: '80%', leave_at: '60%', pregreet: { wait: '1500ms' }, dnsbl: { action: 'drop' } });
  assert.deepEqual(validateConfig(raw), c);
  const text = formatConfig(c);
  assert.match(text, /^stress:\n {2}enter_at: 80%\n {2}leave_at: 60%\n {2}pregreet:\n {4}wait: 1500ms\n/m);
  assert.match(text, /personality: stress/);
  assert.deepEqual(parseConfigText(text, 'printed'), c);
});

test('a command-line flag keeps the file\'s stress values (applyOverrides goes through configToRaw)', () => {
  const c = applyOverrides(validateConfig({ stress: { pregreet: { wait: '1s' } } }), { greetWait: '3s' });
  assert.equal(c.pregreet.wait, 3000);
  assert.deepEqual(c.stress.overrides, { 'pregreet.wait': 1000 });
});

test('schema: every key with a stress value has a valid default; numeric stress defaults are stricter than the normal defaults', () => {
  assert.deepEqual(STRESS_KEYS.map((s) => s.key), [
    'access.action', 'pregreet.wait', 'pregreet.action', 'dnsbl.action',
    'dummy.command_time_limit', 'dummy.command_count_limit', 'dummy.hard_error_limit',
    'deep.pipelining.enable', 'deep.pipelining.action', 'deep.non_smtp.enable', 'deep.non_smtp.action',
    'deep.bare_newline.enable', 'deep.bare_newline.action',
  ]);
  assert.deepEqual(Object.fromEntries(STRESS_DEFAULTS), {
    'pregreet.wait': 2000, 'dummy.command_time_limit': 10_000, 'dummy.hard_error_limit': 1,
  });
  for (const spec of STRESS_KEYS) {
    const def = STRESS_DEFAULTS.get(spec.key);
    if (def === undefined) {
      assert.equal(spec.stress, 'normal', spec.key);
      continue;
    }
    assert.ok(spec.type === 'duration' || spec.type === 'int', `${spec.key}: "smaller is stricter" needs a number`);
    assert.ok(def < (spec.default as number), `${spec.key}: stress default ${def} below the normal default`);
  }
  for (const s of SCHEMA) if (s.key.startsWith('stress.')) assert.equal(s.stress, undefined, `${s.key} cannot be stress-dependent itself`);
});

test('README column "stress": the stress defaults, "as normal", or "-"', () => {
  const md = configReferenceMarkdown();
  const row = (key: string): string => md.split('\n').find((l) => l.startsWith(`| \`${key}\` |`)) ?? '';
  assert.match(row('pregreet.wait'), /\| ms \| `2s` \|/);
  assert.match(row('dummy.command_time_limit'), /\| ms \| `10s` \|/);
  assert.match(row('dummy.hard_error_limit'), /\| errors \| `1` \|/);
  assert.match(row('pregreet.action'), /\| {2}\| as normal \|/);
  assert.match(row('pregreet.ttl'), /\| ms \| - \|/);
  assert.match(row('stress.enter_at'), /\| percent \| `90%` \|/);
});
