/*
 * `smtpscreen run` from start to stop as a service manager sees it, the CLI
 * spawned as a child process on 127.0.0.1 port 0 with a cache snapshot file:
 * temp files that crashed snapshot saves left are deleted at start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScreener } from '../helpers/screener.js';

function cfg(snapshot: string): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    backend: { address: 'sink:0' },
    pregreet: { wait: '200ms' },
    cache: { snapshot },
    drain_timeout: '5s',
  };
}

test('run: temp files of crashed snapshot saves are deleted at start, other files are not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-life-'));
  const snap = join(dir, 'verdicts');
  writeFileSync(snap, 'smtpscreen-cache 1\n');
  const leftovers = ['.verdicts.tmp-31337', '.verdicts.tmp-2'];
  const others = ['.verdicts.tmp-x', '.other.tmp-31337', 'verdicts.old'];
  for (const n of [...leftovers, ...others]) writeFileSync(join(dir, n), 'partial\n');
  const s = await startScreener(cfg(snap));
  try {
    const load = await s.waitForEvent((e) => e['event'] === 'CACHE' && e['op'] === 'load');
    assert.equal(load['removed_temps'], 2);
    assert.deepEqual(readdirSync(dir).sort(), ['verdicts', ...others].sort());
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
