/*
 * `smtpscreen run` from start to stop as a service manager sees it, the CLI
 * spawned as a child process on 127.0.0.1 port 0 with a cache snapshot file:
 * temp files that crashed snapshot saves left are deleted at start; a second
 * SIGTERM or SIGINT during the drain cuts the sessions but the snapshot is
 * still written and the exit is clean; SIGHUP with an unchanged file reloads
 * (RELOAD, nothing changed) and serving goes on; a
 * SIGTERM during start-up stops the screener once started, cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { stringify as toYaml } from 'yaml';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScreener, portOf, repoRoot, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';

function cfg(snapshot: string): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    backend: { address: 'sink:0' },
    pregreet: { wait: '200ms' },
    cache: { snapshot },
    drain_timeout: '30s',
    allow_root: true, // the tests run as root
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
    // The running screener's owner mark (cache/owner.ts) is there until it stops.
    assert.deepEqual(readdirSync(dir).sort(), ['verdicts', '.verdicts.owner', ...others].sort());
  } finally {
    assert.equal(await s.stop(), 0);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['verdicts', ...others].sort(), 'the owner mark is removed at stop');
});

/** A client from `addr` that passes the greet wait and is spliced to the sink; it stays open. */
async function spliced(s: ScreenerProc, addr: string): Promise<RawClient> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^220 sink\.invalid /m, 5000);
  await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
  return c;
}

/** Resolves with the exit code, or rejects after `ms` (the timer also keeps this process up: the helper unrefs the child). */
async function exitWithin(s: ScreenerProc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      s.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms; stderr: ${s.stderr()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

for (const second of ['SIGTERM', 'SIGINT'] as const) {
  test(`run: ${second} during the drain cuts the sessions now; the snapshot is still written, STOPPED, exit 0`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'scr-life-'));
    const snap = join(dir, 'verdicts');
    const s = await startScreener(cfg(snap));
    try {
      await spliced(s, '127.0.4.1');
      await spliced(s, '127.0.4.2');
      process.kill(s.pid, 'SIGTERM');
      const stopping = await s.waitForEvent((e) => e['event'] === 'STOPPING');
      assert.deepEqual([stopping['open'], stopping['drain_ms']], [2, 30_000]);
      const t0 = Date.now();
      process.kill(s.pid, second);
      // The drain would last 30 s; the cut, the snapshot save and the exit take about 70 ms here.
      const code = await exitWithin(s, 5000);
      const took = Date.now() - t0;
      assert.equal(code, 0, `exit code (signal ${String(s.proc.signalCode)}); stderr: ${s.stderr()}`);
      assert.ok(took < 1000, `exited ${took} ms after the second signal`);
      t.diagnostic(`exit ${took} ms after the second signal (drain_timeout 30 s)`);
      const sig = s.eventsNamed('SIGNAL');
      assert.deepEqual(sig.map((e) => [e['signal'], e['action']]), [[second, 'cut']]);
      const saved = s.eventsNamed('CACHE').filter((e) => e['op'] === 'save');
      assert.deepEqual(saved.map((e) => e['entries']), [2]);
      assert.deepEqual(s.eventsNamed('STOPPED').map((e) => e['forced']), [2]);
      assert.ok(existsSync(snap), 'snapshot written');
      assert.match(readFileSync(snap, 'utf8'), /^smtpscreen-cache 1\n/);
    } finally {
      await s.stop('SIGKILL');
    }
    // The next start loads both passes.
    const again = await startScreener(cfg(snap));
    try {
      const load = await again.waitForEvent((e) => e['event'] === 'CACHE' && e['op'] === 'load');
      assert.equal(load['entries'], 2);
    } finally {
      const code = await again.stop();
      assert.equal(code, 0, `exit code (signal ${String(again.proc.signalCode)}); events ${JSON.stringify(again.events.slice(-5))}; stderr: ${again.stderr()}`);
    }
  });
}

test('run: SIGHUP with an unchanged file reloads (RELOAD ok, nothing changed, same listener) and the screener goes on serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-life-'));
  const snap = join(dir, 'verdicts');
  const s = await startScreener(cfg(snap));
  try {
    process.kill(s.pid, 'SIGHUP');
    const r = await s.waitForEvent((e) => e['event'] === 'RELOAD');
    assert.deepEqual([r['ok'], r['generation'], r['changed'], r['added'], r['removed'], r['level']], [true, 2, [], [], [], 30]);
    assert.equal(s.eventsNamed('SIGNAL').length, 0);
    const c = await spliced(s, '127.0.4.3');
    assert.equal(s.proc.exitCode, null, 'still running');
    c.write('QUIT\r\n');
    await c.closed;
  } finally {
    const code = await s.stop();
    assert.equal(code, 0, `exit code (signal ${String(s.proc.signalCode)})`);
  }
  assert.deepEqual(s.eventsNamed('STOPPED').map((e) => e['forced']), [0]);
  assert.equal(existsSync(snap), true);
});

test('run: SIGTERM during start-up (learning a silent backend\'s EHLO) stops the screener once started, exit 0', async () => {
  const held: Socket[] = [];
  let probed: () => void = () => undefined;
  const probe = new Promise<void>((r) => (probed = r));
  const backend = createServer((sock) => {
    held.push(sock); // accepts the EHLO probe and never greets: start-up waits for handshake_timeout
    sock.on('error', () => undefined);
    probed();
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const dir = mkdtempSync(join(tmpdir(), 'scr-life-'));
  const conf = join(dir, 'smtpscreen.yaml');
  writeFileSync(conf, toYaml({
    ...cfg(join(dir, 'verdicts')),
    backend: { address: `127.0.0.1:${(backend.address() as { port: number }).port}`, handoff: 'xclient', connect_timeout: '1s', handshake_timeout: '1s' },
    deep: { pipelining: { enable: true }, after_pass: 'handoff' },
  }));
  const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli.js'), 'run', '--config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<[number | null, string | null]>((r) => child.on('close', (code, sig) => r([code, sig])));
  const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    await probe;
    assert.ok(child.pid !== undefined && child.kill('SIGTERM'));
    const [code, sig] = await exited;
    assert.deepEqual([code, sig], [0, null], out);
    const names = out.trim().split('\n').map((l) => (JSON.parse(l) as { event?: string }).event);
    assert.deepEqual(names.filter((n) => n === 'STARTED' || n === 'STOPPING' || n === 'STOPPED'), ['STARTED', 'STOPPING', 'STOPPED']);
  } finally {
    clearTimeout(kill);
    child.kill('SIGKILL');
    backend.close();
    for (const s of held) s.destroy();
  }
});
