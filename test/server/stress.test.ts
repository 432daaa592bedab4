/*
 * Unit tests of server/stress.ts: watermarks, the hysteresis state machine
 * (tables of open counts in, transitions out; a property test that it never
 * flaps), the stress personality's values, and the STRESS events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  StressState, makePersonalities, noteOpen, personalityFor, stressConfig, stressLimit, stressValues, watermarks,
  type Transition,
} from '../../src/server/stress.js';
import { STRESS_KEYS } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import type { ServerCtx } from '../../src/server/stress.js';
import { pino } from 'pino';
import { Emitter } from '../../src/log/emit.js';

const WATERMARKS: Array<{ limit: number; enterPct: number; leavePct: number; enter: number; leave: number }> = [
  { limit: 10, enterPct: 80, leavePct: 60, /* want */ enter: 8, leave: 6 },
  { limit: 19000, enterPct: 90, leavePct: 70, /* want */ enter: 17100, leave: 13300 },
  { limit: 100, enterPct: 90, leavePct: 70, /* want */ enter: 90, leave: 70 },
  { limit: 1, enterPct: 90, leavePct: 70, /* want */ enter: 1, leave: 0 },
  { limit: 2, enterPct: 90, leavePct: 70, /* want */ enter: 2, leave: 1 },
  { limit: 3, enterPct: 50, leavePct: 49, /* want */ enter: 2, leave: 1 },
  { limit: 10, enterPct: 100, leavePct: 99, /* want */ enter: 10, leave: 9 },
  { limit: 10, enterPct: 1, leavePct: 0, /* want */ enter: 1, leave: 0 },
  { limit: 7, enterPct: 87.5, leavePct: 12.5, /* want */ enter: 7, leave: 0 },
];

for (const w of WATERMARKS) {
  test(`watermarks: ${w.enterPct}% / ${w.leavePct}% of ${w.limit} -> enter at ${w.enter}, leave at ${w.leave}`, () => {
    assert.deepEqual(watermarks(w.limit, w.enterPct, w.leavePct), { enter: w.enter, leave: w.leave, limit: w.limit });
  });
}

test('watermarks property: 1 <= enter, 0 <= leave < enter, enter <= limit for every valid pair of shares', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 99 }),
    (limit, enterPct, leaveRaw) => {
      const leavePct = Math.min(leaveRaw, enterPct - 1);
      if (leavePct < 0) return;
      const m = watermarks(limit, enterPct, leavePct);
      assert.ok(m.enter >= 1 && m.enter <= limit, JSON.stringify(m));
      assert.ok(m.leave >= 0 && m.leave < m.enter, JSON.stringify(m));
    },
  ));
});

const LIMITS: Array<{ max: number; fd: number | null; want: number }> = [
  { max: 19000, fd: null, /* want */ want: 19000 },
  { max: 19000, fd: 1024, /* want: fd limit minus the 64 reserved, two descriptors per client (client, backend) */ want: 480 },
  { max: 10, fd: 20000, /* want */ want: 10 },
  { max: 10, fd: 50, /* want: never 0 */ want: 1 },
];

for (const l of LIMITS) {
  test(`stressLimit(${l.max}, fd ${String(l.fd)}) = ${l.want}`, () => {
    assert.equal(stressLimit(l.max, l.fd), l.want);
  });
}

// Counts in -> transitions out, with enter at 8 and leave at 6 (10 connections, 80% / 60%).
const SEQUENCES: Array<{ label: string; counts: number[]; want: Transition[] }> = [
  { label: 'rising to the enter mark enters once, at the mark',
    counts: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], want: [null, null, null, null, null, null, null, 'enter', null, null] },
  { label: 'hovering at the enter mark does not flap',
    counts: [8, 7, 8, 7, 8, 7, 8], want: ['enter', null, null, null, null, null, null] },
  { label: 'between the marks nothing happens, either way',
    counts: [7, 8, 7, 7, 8, 7], want: [null, 'enter', null, null, null, null] },
  { label: 'leaves only at the leave mark, and enters again only at the enter mark',
    counts: [8, 7, 6, 7, 6, 7, 8], want: ['enter', null, 'leave', null, null, null, 'enter'] },
  { label: 'hovering at the leave mark does not flap',
    counts: [9, 6, 7, 6, 7, 6], want: ['enter', 'leave', null, null, null, null] },
  { label: 'a jump over both marks is one transition each way',
    counts: [0, 10, 0, 10, 0], want: [null, 'enter', 'leave', 'enter', 'leave'] },
  { label: 'repeated counts above the mark: one enter',
    counts: [9, 9, 9, 9], want: ['enter', null, null, null] },
  { label: 'falling from above the limit (counted at accept) leaves once',
    counts: [11, 10, 5, 4, 0], want: ['enter', null, 'leave', null, null] },
];

for (const c of SEQUENCES) {
  test(`StressState: ${c.label}`, () => {
    const st = new StressState(watermarks(10, 80, 60));
    assert.deepEqual(c.counts.map((n) => st.update(n)), c.want);
  });
}

test('StressState property: transitions alternate, enter only at >= enter, leave only at <= leave, active tracks them', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 200 }), (counts) => {
    const st = new StressState(watermarks(10, 80, 60));
    let last: Transition = 'leave';
    for (const n of counts) {
      const t = st.update(n);
      if (t === null) continue;
      assert.notEqual(t, last, 'two transitions of the same kind in a row');
      if (t === 'enter') assert.ok(n >= 8 && st.active);
      else assert.ok(n <= 6 && !st.active);
      last = t;
    }
  }));
});

test('stressValues: the schema defaults (postscreen\'s ${stress?...} values), and "normal" keys keep the normal value', () => {
  const v = stressValues(validateConfig({}));
  assert.deepEqual(Object.fromEntries(v), {
    'access.action': 'enforce',
    'pregreet.wait': 2000,
    'pregreet.action': 'enforce',
    'dnsbl.action': 'enforce',
    'dummy.command_time_limit': 10_000,
    'dummy.command_count_limit': 20,
    'dummy.hard_error_limit': 1,
    'deep.pipelining.enable': false,
    'deep.pipelining.action': 'enforce',
    'deep.non_smtp.enable': false,
    'deep.non_smtp.action': 'drop',
    'deep.bare_newline.enable': false,
    'deep.bare_newline.action': 'ignore',
  });
  assert.deepEqual([...v.keys()], STRESS_KEYS.map((s) => s.key));
});

const VALUES: Array<{ label: string; raw: Record<string, unknown>; key: string; want: unknown }> = [
  { label: 'a normal value below the stress default is kept (stress is never slower)',
    raw: { pregreet: { wait: '1s' } }, key: 'pregreet.wait', /* want */ want: 1000 },
  { label: 'a normal value above the stress default takes the stress default',
    raw: { pregreet: { wait: '20s' } }, key: 'pregreet.wait', /* want */ want: 2000 },
  { label: 'an explicit stress value wins, even above the normal one',
    raw: { pregreet: { wait: '1s' }, stress: { pregreet: { wait: '3s' } } }, key: 'pregreet.wait', /* want */ want: 3000 },
  { label: 'an explicit action under stress',
    raw: { stress: { pregreet: { action: 'drop' } } }, key: 'pregreet.action', /* want */ want: 'drop' },
  { label: 'a "normal" key follows its normal value',
    raw: { dnsbl: { action: 'ignore' } }, key: 'dnsbl.action', /* want */ want: 'ignore' },
  { label: 'int stress default clamps the same way',
    raw: { dummy: { hard_error_limit: 3 } }, key: 'dummy.hard_error_limit', /* want */ want: 1 },
  { label: 'explicit int stress value',
    raw: { stress: { dummy: { hard_error_limit: 5 } } }, key: 'dummy.hard_error_limit', /* want */ want: 5 },
];

for (const c of VALUES) {
  test(`stressValues: ${c.label}`, () => {
    assert.equal(stressValues(validateConfig(c.raw)).get(c.key), c.want);
  });
}

test('stressConfig: a copy with the stress values; the normal config is untouched; other keys equal', () => {
  const normal = validateConfig({ pregreet: { wait: '6s' }, stress: { dummy: { command_time_limit: '5s' } } });
  const before = structuredClone(normal);
  const st = stressConfig(normal);
  assert.deepEqual(normal, before);
  assert.equal(st.pregreet.wait, 2000);
  assert.equal(st.dummy.command_time_limit, 5000);
  assert.equal(st.dummy.hard_error_limit, 1);
  assert.deepEqual(
    { ...st, pregreet: { ...st.pregreet, wait: 6000 }, dummy: { ...st.dummy, command_time_limit: 300_000, hard_error_limit: 20 } },
    normal,
  );
  st.listen[0]?.trusted_proxies.push('10.0.0.0/8');
  assert.deepEqual(normal.listen[0]?.trusted_proxies, [], 'a deep copy');
});

test('personalityFor: auto follows the state; normal and stress are pinned', () => {
  const personalities = makePersonalities(validateConfig({}), [0]);
  const ctx = { gen: { personalities }, stressState: new StressState(watermarks(10, 80, 60)) } as unknown as ServerCtx;
  assert.equal(personalities.normal.config.pregreet.wait, 6000);
  assert.equal(personalities.stress.config.pregreet.wait, 2000);
  assert.deepEqual([personalities.normal.stress, personalities.stress.stress], [false, true]);
  const names = () => (['auto', 'normal', 'stress'] as const).map((p) => personalityFor(ctx, p).name);
  assert.deepEqual(names(), ['normal', 'normal', 'stress']);
  ctx.stressState.update(8);
  assert.deepEqual(names(), ['stress', 'normal', 'stress']);
  ctx.stressState.update(6);
  assert.deepEqual(names(), ['normal', 'normal', 'stress']);
});

test('noteOpen: one STRESS event per transition (enter at warn, leave at info) with state, count, limit, threshold', () => {
  const text: string[] = [];
  const log = pino({ level: 'info', base: null, timestamp: false }, { write: (s: string) => text.push(s) });
  const counters: Record<string, number> = {};
  const ctx = { stressState: new StressState(watermarks(10, 80, 60)), others: 0, counters, emitter: new Emitter(log, counters) } as unknown as ServerCtx;
  for (const n of [1, 5, 8, 9, 8, 7, 8, 9, 10, 7, 6, 5, 7, 6, 3]) noteOpen(ctx, n);
  assert.deepEqual(text.map((l) => JSON.parse(l) as unknown), [
    { level: 40, event: 'STRESS', state: 'enter', count: 8, limit: 10, threshold: 8, msg: 'entering STRESS mode with 8 connections' },
    { level: 30, event: 'STRESS', state: 'leave', count: 6, limit: 10, threshold: 6, msg: 'leaving STRESS mode with 6 connections' },
  ]);
  assert.equal(ctx.counters['STRESS'], 2);
});
