/*
 * test/bench/soak-smoke.test.ts - the soak mode of the load generator
 * (bench/load/soak.ts, `--scenario soak`) for 20 s with a sample every 2 s:
 * it takes samples of the server's fds, RSS and heap, runs several mix rounds
 * with every verdict right, gives the descriptors back after each round,
 * writes soak.json, soak.svg and the report's soak section, and ends by
 * itself. No performance thresholds: the 30-minute run is bench/results/soak.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ZOMBIE = join(here, '..', '..', 'bench', 'load', 'zombie.js');

type Json = Record<string, unknown>;

test('soak mode: 20 s of mix rounds, sampled every 2 s, ends by itself and writes its results', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'soak-smoke-'));
  try {
    const out = join(dir, 'soak.json');
    const args = [
      '--scenario', 'soak', '--soak-for', '20s', '--sample-every', '2s', '--count', '40', '--rate', '20',
      '--command-time', '2s', '--dribble', '300ms', '--greet-wait', '300ms', '--quiet', '--out', out,
    ];
    const t0 = Date.now();
    const r = await new Promise<{ code: number | null; killed: boolean; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [ZOMBIE, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let killed = false;
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      const t = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, 60_000);
      child.on('exit', (code) => {
        clearTimeout(t);
        resolve({ code, killed, stderr });
      });
    });
    const ms = Date.now() - t0;
    assert.equal(r.killed, false, `still running after 60 s:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    // No round starts unless half its time budget (here 2 s opening + 2 s command time + 0.3 s wait + 10 s margin) fits before the end.
    assert.ok(ms >= 20_000 - 14_300 / 2, `ended after ${ms} ms: the soak runs for its duration, less at most half a round's budget`);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as Json;
    const sc = (doc['scenarios'] as Json)['soak'] as Json;
    const f = sc['figures'] as Json;
    const samples = (sc['series'] as Json)['samples'] as Array<Record<string, number | null>>;
    const rounds = (sc['series'] as Json)['rounds'] as Array<Record<string, number | boolean>>;
    assert.ok(samples.length >= 7, `${samples.length} samples in 20 s at one every 2 s`);
    for (const s of samples) {
      assert.ok((s['fds'] as number) > 3, `fds ${s['fds']}`);
      assert.ok((s['rss_kb'] as number) > 1000, `rss ${s['rss_kb']}`);
    }
    assert.ok(samples.some((s) => typeof s['heap_mb'] === 'number'), 'the heap is read from the --trace-gc lines');
    const t = samples.map((s) => s['t_s'] as number);
    // Non-decreasing: t_s is rounded to 0.1 s, and on a loaded machine a late sample may land in the same tenth as the next.
    for (let i = 1; i < t.length; i++) assert.ok((t[i] as number) >= (t[i - 1] as number), 'samples in time order');
    assert.ok(rounds.length >= 2, `${rounds.length} rounds`);
    for (const rd of rounds) {
      assert.equal(rd['connections'], 40, `round ${rd['round']}`);
      assert.equal(rd['wrong'], 0, `round ${rd['round']}: a bot passed or a legit client was refused`);
      assert.equal(rd['errors'], 0, `round ${rd['round']}`);
      assert.equal(rd['settled'], true, `round ${rd['round']}: the server gave its descriptors back`);
    }
    assert.equal(f['connections'], 40 * rounds.length);
    assert.equal(f['samples'], samples.length);
    assert.ok(existsSync(join(dir, 'soak.svg')), 'soak.svg');
    assert.equal(readFileSync(join(dir, 'soak.svg'), 'utf8').match(/<polyline/g)?.length, 6, 'fds and RSS (samples, after each round), two heap lines');
    assert.match(readFileSync(join(dir, 'report.md'), 'utf8'), /## soak[\s\S]*soak\.svg/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
