/*
 * `smtpscreen stats` on the log of a real screener: the three clients of the
 * syslog test (clean, pregreet, hangup: test/helpers/log-clients.ts) and the
 * clean one again (PASS OLD), against the built-in sink; the JSON lines the
 * screener wrote give the counts that traffic makes, and so do the same
 * lines rendered in postscreen format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatPostscreen } from '../../src/log/postscreen-format.js';
import { runLogClients } from '../helpers/log-clients.js';
import { connectClient } from '../helpers/smtp-client.js';
import { portOf, startScreener } from '../helpers/screener.js';
import { statsJson } from './run.js';

const ADDRS = ['127.0.7.1', '127.0.7.2', '127.0.7.3'];

test('a real screener\'s log: connections, PASS NEW/OLD, pregreet reject, hangup, handoffs', { timeout: 60_000 }, async () => {
  const s = await startScreener({ hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '1s', action: 'enforce' },
    backend: { address: 'sink:0', handoff: 'xclient' } });
  try {
    await runLogClients(portOf(s), ADDRS, 1000);
    const again = await connectClient('127.0.0.1', portOf(s), ADDRS[0]);
    await again.readUntil(/^220 .*\r\n/m, 10_000);
    again.write('QUIT\r\n');
    await again.readUntil(/^221 /m, 10_000);
    again.destroy();
    await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === ADDRS[2], 10_000);
    await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === ADDRS[0], 10_000);
  } finally {
    await s.stop();
  }
  const mine = s.events.filter((e) => typeof e['client'] !== 'string' || ADDRS.includes(e['client']));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-real-'));
  const json = path.join(dir, 'screener.ndjson');
  const text = path.join(dir, 'screener.log');
  writeFileSync(json, mine.map((e) => JSON.stringify(e)).join('\n') + '\n');
  writeFileSync(text, mine.map((e) => `${new Date(e['time'] as number).toISOString()} mx postfix/postscreen[1]: ${formatPostscreen(e)}`).join('\n') + '\n');
  for (const file of [json, text]) {
    const r = await statsJson([file]);
    const what = path.basename(file);
    assert.equal(r.input.malformed, 0, what);
    assert.equal(r.connections.total, 4, `${what}: four connections`);
    assert.deepEqual([r.verdicts.pass_new, r.verdicts.pass_old, r.verdicts.rejected], [1, 1, 1], what);
    assert.equal(r.hangups['pregreet'], 1, what);
    assert.equal(r.rejects.lines, 1, what);
    assert.deepEqual(r.rejects.top_clients, { [ADDRS[1] as string]: 1 }, what);
    assert.equal(r.verdicts.handoffs, 2, `${what}: the clean client twice`);
    assert.equal(r.greeting_delay_ms.count, 2, what);
    assert.ok((r.greeting_delay_ms.max ?? 0) >= 900 && (r.greeting_delay_ms.max ?? 0) < 30_000, `${what}: the PASS NEW waited the greet wait`);
  }
  const j = await statsJson([json]);
  assert.deepEqual(j.tests['pregreet'], { enforce: 1 });
  assert.deepEqual(j.rejects.reasons, { 'pregreet (550)': 1 });
});
