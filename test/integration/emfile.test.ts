/*
 * Integration: the screener under a low file descriptor limit (ulimit -n in a
 * shell that then execs it). Before the process limit is reached new clients
 * get a 421 and ACCEPT ERROR EMFILE is logged; no client is reset, and once
 * descriptors are free again the accept loop serves new clients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';

test('EMFILE: near the descriptor limit clients get 421 and ACCEPT ERROR is logged; the accept loop goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-emfile-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'listen: ["127.0.0.1:0"]\nbackend: { address: "sink:0" }\npregreet: { wait: 30s }\nlimits: { max_per_client: 0 }\ndrain_timeout: 1s\n');
  const cli = join(repoRoot(), 'dist', 'src', 'cli.js');
  const child = spawn('bash', ['-c', `ulimit -n 120 && exec "${process.execPath}" "${cli}" run --config "${file}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (name: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const e = events.find((x) => x['event'] === name);
      if (e !== undefined) return e;
      if (Date.now() > deadline) throw new Error(`no ${name} event; got ${JSON.stringify(events.slice(-5))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  try {
    const started = await waitFor('STARTED');
    assert.equal(started['fd_limit'], 120);
    const port = Number(String((started['listen'] as string[])[0]).split(':').pop());
    const clients: RawClient[] = [];
    for (let i = 0; i < 100; i++) clients.push(await connectClient('127.0.0.1', port, `127.0.20.${i + 1}`));
    await new Promise((r) => setTimeout(r, 500));
    const teased = clients.filter((c) => c.received().startsWith('220-')).length;
    const busy = clients.filter((c) => c.received() === '421 4.3.2 All server ports are busy\r\n').length;
    assert.equal(teased + busy, 100, 'every client got a teaser or a 421; none was reset or left without a reply');
    assert.ok(busy > 0 && teased > 0, `teased ${teased}, busy ${busy}`);
    const acc = await waitFor('ACCEPT ERROR');
    assert.equal(acc['code'], 'EMFILE');
    const b = events.find((e) => e['event'] === 'ALL PORTS BUSY');
    assert.equal(b?.['limit'], 'fds');
    for (const c of clients) c.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const again = await connectClient('127.0.0.1', port, '127.0.21.1');
    await again.readUntil(/^220-/m, 3000);
    again.destroy();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
