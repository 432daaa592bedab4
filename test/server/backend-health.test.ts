/*
 * server/backend-health.ts: diagnose() reads a probe as "handoff mode" only on the evidence
 * (table), and BackendHealth probes at start, every minute while down and on a suspected
 * failure while up, logging the first answer, each outage once and its recovery once. The
 * probe is a fake (its outcomes scripted); time is node:test's mock timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendHealth, PROBE_RETRY_MS, diagnose, type ProbeOutcome } from '../../src/server/backend-health.js';
import { ScreenError } from '../../src/util/errors.js';
import type { HandoffMode } from '../../src/config/types.js';

const OK = (kw: string[] = ['XCLIENT']): ProbeOutcome => ({ ok: true, keywords: new Map(kw.map((k) => [k, ''])) });
const FAIL = (stage: string, reason: string): ProbeOutcome => ({ ok: false, stage, reason });

const table: Array<{ label: string; mode: HandoffMode; first: ProbeOutcome; retry?: ProbeOutcome; want: string | null; stage?: string }> = [
  { label: 'xclient offered', mode: 'xclient', first: OK(), want: null },
  { label: 'xclient not offered', mode: 'xclient', first: OK(['PIPELINING']), want: 'handoff mode', stage: 'ehlo' },
  { label: 'proxy: EHLO answered 500', mode: 'proxy-v2', first: FAIL('ehlo', '500 5.5.2 Error: bad syntax'), want: 'handoff mode', stage: 'ehlo' },
  { label: 'proxy: closed after the greeting', mode: 'proxy-v1', first: FAIL('ehlo', 'closed'), want: 'handoff mode', stage: 'ehlo' },
  { label: 'proxy: refused', mode: 'proxy-v1', first: FAIL('connect', 'ECONNREFUSED'), want: 'ECONNREFUSED', stage: 'connect' },
  { label: 'proxy: no greeting', mode: 'proxy-v2', first: FAIL('greeting', 'timeout'), want: 'timeout', stage: 'greeting' },
  { label: 'xclient: no greeting, greets after a PROXY header', mode: 'xclient', first: FAIL('greeting', 'timeout'), retry: OK([]), want: 'handoff mode', stage: 'greeting' },
  { label: 'xclient: no greeting, none after a PROXY header either', mode: 'xclient', first: FAIL('greeting', 'timeout'), retry: FAIL('greeting', 'timeout'), want: 'timeout', stage: 'greeting' },
  { label: 'xclient: refused', mode: 'xclient', first: FAIL('connect', 'ECONNREFUSED'), want: 'ECONNREFUSED', stage: 'connect' },
  { label: 'none: no greeting, greets after a PROXY header', mode: 'none', first: FAIL('greeting', 'closed'), retry: OK([]), want: 'handoff mode', stage: 'greeting' },
];
for (const c of table) {
  test(`diagnose: ${c.label} -> ${c.want ?? 'ok'}`, () => {
    const v = diagnose(c.mode, c.first, c.retry);
    if (c.want === null) { assert.deepEqual(v, { ok: true }); return; }
    assert.equal(v.ok, false);
    if (!v.ok) {
      assert.equal(v.reason, c.want);
      assert.equal(v.stage, c.stage);
      if (c.want === 'handoff mode') assert.match(v.detail ?? '', /set |smtpd_authorized_xclient_hosts/, 'the detail names the fix');
    }
  });
}

/** A BackendHealth on a scripted probe; `outcomes` are taken in order (the last one repeats). */
function harness(mode: HandoffMode, outcomes: Array<'ok' | 'refused' | 'no-greeting'>, now: () => number) {
  const log: string[] = [];
  const modes: string[] = [];
  let i = 0;
  const h = new BackendHealth({
    host: '127.0.0.1', port: 10025, mode, hostname: 'screen.test', timeoutMs: 1000, now,
    probe: async (o) => {
      modes.push(o.mode);
      const next = outcomes[Math.min(i++, outcomes.length - 1)];
      if (next === 'ok') return new Map([['XCLIENT', '']]);
      if (next === 'refused') throw new ScreenError('SCR_ERR_BACKEND', 'refused', { stage: 'connect', reason: 'ECONNREFUSED' });
      throw new ScreenError('SCR_ERR_BACKEND', 'no greeting', { stage: 'greeting', reason: 'timeout' });
    },
    onDown: (v) => log.push(`down ${v.stage} ${v.reason}`),
    onUp: (ms) => log.push(ms === null ? 'up' : `recovered ${ms}`),
  });
  return { h, log, modes };
}

const settle = async (): Promise<void> => { for (let k = 0; k < 10; k++) await Promise.resolve(); };

test('BackendHealth: the first answer is logged; an outage once, probed every minute, the recovery once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let clock = 0;
  const { h, log } = harness('xclient', ['ok', 'refused', 'refused', 'refused', 'ok'], () => clock);
  await h.start();
  assert.deepEqual(log, ['up']);
  clock += 10_000;
  h.suspect(); // a handoff failed while up: probe now
  await settle();
  assert.deepEqual(log, ['up', 'down connect ECONNREFUSED']);
  h.suspect(); // down already: the schedule asks again
  await settle();
  for (let k = 0; k < 2; k++) {
    clock += PROBE_RETRY_MS;
    t.mock.timers.tick(PROBE_RETRY_MS);
    await settle();
  }
  assert.deepEqual(log, ['up', 'down connect ECONNREFUSED'], 'still down: nothing more logged');
  clock += PROBE_RETRY_MS;
  t.mock.timers.tick(PROBE_RETRY_MS);
  await settle();
  assert.deepEqual(log, ['up', 'down connect ECONNREFUSED', `recovered ${3 * PROBE_RETRY_MS}`]);
  t.mock.timers.tick(10 * PROBE_RETRY_MS);
  await settle();
  assert.equal(log.length, 3, 'up: no schedule');
  h.stop();
});

test('BackendHealth: suspect() while up probes at most once per 5 s', async () => {
  let clock = 0;
  const { h, modes } = harness('proxy-v2', ['ok'], () => clock);
  await h.start();
  h.suspect();
  await settle();
  assert.equal(modes.length, 1, 'within 5 s of the last probe: none');
  clock += 5_000;
  h.suspect();
  h.suspect();
  await settle();
  assert.equal(modes.length, 2);
  h.stop();
});

test('BackendHealth: xclient without a greeting asks again with a PROXY header; handoffMode follows the verdict', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { h, log, modes } = harness('xclient', ['no-greeting', 'ok'], () => 0);
  await h.start();
  assert.deepEqual(modes, ['xclient', 'proxy-v1']);
  assert.deepEqual(log, ['down greeting handoff mode']);
  assert.equal(h.handoffMode, true);
  h.stop();
  t.mock.timers.tick(PROBE_RETRY_MS);
  await settle();
  assert.deepEqual(modes, ['xclient', 'proxy-v1'], 'stopped: no more probes');
});
