/*
 * test/bench/zombie-smoke.test.ts - the zombie load generator (bench/load/zombie.ts)
 * at a tiny size: each scenario runs, stops by itself within a bound, and
 * writes a JSON result whose figures are numbers. No performance thresholds:
 * the counts checked are correctness (20 zombies held, 20 bots screened,
 * 20 listed clients rejected, 20 slowloris cut, the mix sorted right, 20
 * deferred then delivered under reconnect and 20 delivered at once under
 * the same-connection handoff), and
 * the floor runs (idle, pregreet, throughput) write numbers too.
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

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  stderr: string;
  killed: boolean;
}

/** Run the generator; SIGKILL it (by its PID) if it outlives boundMs. */
function runZombie(args: string[], boundMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [ZOMBIE, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const t = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, boundMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, ms: Date.now() - t0, stderr, killed });
    });
  });
}

type Json = Record<string, unknown>;

function at(obj: unknown, path: string): unknown {
  let o = obj;
  for (const p of path.split('.')) o = typeof o === 'object' && o !== null ? (o as Json)[p] : undefined;
  return o;
}

const TINY = [
  '--count', '20', '--clients', '5', '--hold', '1s', '--duration', '20s', '--greet-wait', '300ms', '--quiet',
  '--steps', '2', '--command-time', '2s', '--dribble', '300ms', '--size', '2M', '--messages', '2', '--rate', '500',
];

const CASES: ReadonlyArray<{
  scenario: string;
  /** Figures that must be finite numbers. */
  numbers: readonly string[];
  /** Figures with an exact value (counts, not performance). */
  exact: Readonly<Record<string, number>>;
  /** Also run against the floor server: its figures must be numbers too. */
  floor?: readonly string[];
}> = [
  {
    scenario: 'idle',
    numbers: [
      'zombies_held_client', 'server_sockets_held', 'server_established', 'ramp_s', 'ramp_conn_per_s',
      'before_rss_kb', 'held_rss_kb', 'rss_per_conn_bytes', 'rss_ramp_per_conn_bytes', 'server_cpu_pct_holding',
      'server_cpu_us_per_accept', 'before_fds', 'held_fds', 'generator_cpu_ms',
    ],
    exact: { zombies_requested: 20, zombies_held_client: 20, server_sockets_held: 20, refused: 0, failed: 0 },
    floor: ['ramp_conn_per_s', 'rss_per_conn_bytes', 'server_sockets_held'],
  },
  {
    scenario: 'pregreet',
    numbers: [
      'screened', 'screened_per_s', 'span_s', 'server_cpu_ms', 'server_cpu_ms_per_conn', 'server_cpu_pct_avg',
      'verdict_latency_ms.p50', 'verdict_latency_ms.p99', 'verdict_latency_ms.max', 'before_rss_kb',
    ],
    exact: { zombies_requested: 20, screened: 20, passed: 0, failed: 0 },
    floor: ['screened_per_s', 'server_cpu_ms_per_conn'],
  },
  {
    scenario: 'legit',
    numbers: [
      'zombies_held_client', 'server_sockets_held', 'rss_per_conn_bytes', 'new_ms.p50', 'new_ms.p99',
      'cached_ms.p50', 'cached_ms.p90', 'cached_ms.p99', 'cached_ms.max', 'direct_ms.p99',
      'added_ms.p50', 'added_ms.p90', 'added_ms.p99', 'added_ms.max', 'added_by_percentile_ms.p99', 'server_cpu_pct_timing',
    ],
    exact: { zombies_requested: 20, zombies_held_client: 20, 'new_ms.n': 5, 'cached_ms.n': 5, 'direct_ms.n': 5, 'added_ms.n': 5 },
  },
  {
    scenario: 'listed',
    numbers: ['rejected_per_s', 'mixed_screened_per_s', 'listed_verdict_ms.p99', 'mixed_unlisted_verdict_ms.p99', 'listed_server_cpu_ms_per_conn'],
    exact: { clients_per_run: 20, listed_rejected: 20, listed_passed: 0, mixed_rejected: 10, mixed_passed: 10, mixed_failed: 0 },
  },
  {
    scenario: 'slowloris',
    numbers: ['rss_per_conn_bytes', 'cut_ms.p50', 'cut_ms.max', 'held_fds', 'after_fds'],
    exact: { zombies_requested: 20, zombies_dribbling: 20, server_sockets_held: 20, cut: 20, failed: 0 },
  },
  {
    scenario: 'throughput',
    numbers: ['screened_mb_s.p50', 'direct_mb_s.p50', 'ratio', 'server_cpu_ms'],
    exact: { 'screened_mb_s.n': 2, 'direct_mb_s.n': 2 },
    floor: ['screened_mb_s.p50', 'direct_mb_s.p50'],
  },
  {
    scenario: 'mix',
    numbers: ['conn_per_s', 'server_cpu_pct_avg', 'pregreet_ms.p99', 'listed_ms.p99', 'slowloris_ms.p99', 'legit_ms.p99'],
    exact: {
      connections: 20, idle_ok: 4, pregreet_ok: 6, listed_ok: 4, slowloris_ok: 2, legit_ok: 4,
      idle_wrong: 0, pregreet_wrong: 0, listed_wrong: 0, legit_wrong: 0,
    },
  },
  {
    scenario: 'deep',
    numbers: [
      'reconnect_cpu_ms_per_delivery', 'handoff_cpu_ms_per_delivery', 'reconnect_ms.p99', 'handoff_ms.p99', 'handoff_delivered_per_s',
      'reconnect_first_ms.p99', 'reconnect_first_cpu_share', 'reconnect_after_rss_kb', 'handoff_after_rss_kb',
    ],
    // Correctness, not speed: under reconnect every first attempt is deferred and every retry delivered; under handoff every first attempt delivered.
    exact: {
      clients_per_run: 20, reconnect_deferred: 20, reconnect_first_delivered: 0, reconnect_first_failed: 0, 'reconnect_first_ms.n': 20,
      reconnect_delivered: 20, reconnect_retry_failed: 0, 'reconnect_ms.n': 20,
      reconnect_connections_per_delivery: 2, handoff_delivered: 20, handoff_failed: 0, handoff_connections_per_delivery: 1, 'handoff_ms.n': 20,
    },
  },
];

for (const c of CASES) {
  test(`zombie load generator: ${c.scenario} at a tiny size stops by itself and writes numbers`, { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'zombie-smoke-'));
    try {
      const out = join(dir, `load-${c.scenario}.json`);
      const r = await runZombie(['--scenario', c.scenario, ...TINY, '--out', out], 60_000);
      assert.equal(r.killed, false, `still running after 60 s:\n${r.stderr}`);
      assert.equal(r.code, 0, `exit ${r.code} ${r.signal}:\n${r.stderr}`);
      const doc = JSON.parse(readFileSync(out, 'utf8')) as Json;
      for (const k of ['machine.cpus', 'machine.totalmem_mb']) assert.equal(typeof at(doc, k), 'number', k);
      assert.equal(typeof at(doc, 'machine.node'), 'string');
      assert.deepEqual(at(doc, 'options.scenarios'), [c.scenario]);
      const s = at(doc, `scenarios.${c.scenario}`);
      const notes = at(s, 'notes');
      assert.ok(Array.isArray(notes) && notes.length > 0, 'notes say what limited the figures');
      for (const k of c.numbers) {
        const v = at(s, `figures.${k}`);
        assert.ok(typeof v === 'number' && Number.isFinite(v), `figures.${k} = ${JSON.stringify(v)}`);
      }
      for (const [k, want] of Object.entries(c.exact)) assert.equal(at(s, `figures.${k}`), want, `figures.${k}`);
      for (const k of c.floor ?? []) {
        const v = at(s, `floor.figures.${k}`);
        assert.ok(typeof v === 'number' && Number.isFinite(v), `floor.figures.${k} = ${JSON.stringify(v)}`);
      }
      if (c.floor !== undefined) assert.equal(typeof at(s, 'ratios'), 'object', 'ratios to the floor');
      assert.ok(existsSync(join(dir, 'report.md')), 'the Markdown report is written next to the JSON');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('zombie load generator: bad options exit 1 at once', { timeout: 20_000 }, async () => {
  for (const args of [['--scenario', 'nope'], ['--count', '-3'], ['--per-worker', '50000'], ['--duration', '6x'], ['--sink', 'tcp'], ['--size', '1x'], ['--scenario', 'idle,nope']]) {
    const r = await runZombie(args, 10_000);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
  }
});
