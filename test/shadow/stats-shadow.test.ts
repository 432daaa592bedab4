/*
 * `smtpscreen stats` and shadow mode: the same shadowed events read from the
 * JSON log and from their postscreen text ("SHADOW (would X): ...") give the
 * same would-have counts, and none of them counts as a real refusal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EV } from '../../src/log/events.js';
import { formatEvent } from '../../src/log/postscreen-format.js';
import { get, statsJson } from '../stats/run.js';

const T = Date.UTC(2026, 10, 30, 10, 0, 0);
const EVENTS: Array<Record<string, unknown>> = [
  { event: EV.DNSBL, client: '192.0.2.1', port: 1, score: 3, action: 'shadow', would: 'reject' },
  { event: EV.DNSBL, client: '192.0.2.2', port: 1, score: 5, action: 'shadow', would: 'drop' },
  { event: EV.PREGREET, client: '192.0.2.3', port: 1, bytes: 6, after_ms: 100, sample: 'EHLO x', action: 'shadow', would: 'reject' },
  { event: EV.COMMAND_PIPELINING, client: '192.0.2.4', port: 1, after: 'MAIL', sample: 'RCPT', action: 'shadow', would: 'reject' },
];

test('stats: shadowed events count as would-have outcomes, in JSON and in postscreen text alike', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-shadow-'));
  try {
    const json = path.join(dir, 'log.ndjson');
    const text = path.join(dir, 'mail.log');
    writeFileSync(json, EVENTS.map((e, i) => JSON.stringify({ level: 30, time: T + i, ...e, msg: formatEvent(String(e['event']), e) })).join('\n') + '\n');
    writeFileSync(text, EVENTS.map((e, i) => `${new Date(T + i).toISOString()} mx1 postfix/postscreen[4242]: ${formatEvent(String(e['event']), e)}`).join('\n') + '\n');
    for (const file of [json, text]) {
      const s = await statsJson([file]);
      assert.deepEqual(get(s, '/would'), { dnsbl: { reject: 1, drop: 1 }, pregreet: { reject: 1 }, pipelining: { reject: 1 } }, file);
      assert.deepEqual([get(s, '/verdicts/rejected'), get(s, '/verdicts/dropped')], [0, 0], file);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
