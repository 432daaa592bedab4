/*
 * bench/load/zombie.ts - the zombie load generator (issue 2): `npm run bench:load -- [options]`.
 *
 * Exports: nothing; a program with three roles, chosen by --role:
 *   (none)  the parent: starts the screener (or targets --target), forks the
 *           workers, runs the scenarios, prints a summary and writes the JSON.
 *   worker  holds zombie sockets / times clients (bench/load/worker.ts).
 *   sink    the built-in sink alone in a process (direct timings, --backend process).
 * Each process has its own 20,000-fd limit, hence the workers: each holds at
 * most --per-worker (9,000) sockets. Every scenario is bounded by --duration
 * and by its counts; children exit by themselves at --exit-by, and the parent
 * kills only the children it started, by PID, if it is interrupted.
 * See `--help` for the options and bench/load/scenarios.ts for the figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, usage, type Options } from './options.js';
import { machineInfo, type Percentiles } from './proc.js';
import { runScenario, type ScenarioResult } from './scenarios.js';
import { killAll } from './server.js';
import { log, setQuiet } from './fleet.js';
import { runWorker } from './worker.js';
import { startSink } from '../../src/handoff/sink.js';

const self = fileURLToPath(import.meta.url);

function argValue(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

async function runSinkRole(exitBy: number): Promise<void> {
  const sink = await startSink('127.0.0.1', 0);
  const stop = (): void => {
    void sink.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  setTimeout(stop, Math.max(0, exitBy - Date.now())).unref();
  process.send?.({ type: 'sink', port: sink.port });
}

function fmtP(p: Percentiles): string {
  return `p50 ${p.p50} p90 ${p.p90} p99 ${p.p99} max ${p.max} (n=${p.n})`;
}

function summary(r: ScenarioResult): string {
  const f = r.figures;
  const n = (k: string): string => {
    const v = f[k];
    return v === null || v === undefined ? 'n/a' : typeof v === 'number' ? v.toLocaleString('en-US') : JSON.stringify(v);
  };
  const p = (k: string): string => fmtP(f[k] as Percentiles);
  const lines = [`== ${r.scenario} ${JSON.stringify(r.settings)}`];
  switch (r.scenario) {
    case 'idle':
      lines.push(
        `  held: ${n('server_sockets_held')} by the server (fds), ${n('zombies_held_client')} seen held by clients, of ${n('zombies_requested')}; refused ${n('refused')}, failed ${n('failed')}`,
        `  ramp: ${n('ramp_s')} s (${n('ramp_conn_per_s')} conn/s), server CPU ${n('server_cpu_us_per_accept')} µs per accept`,
        `  RSS: ${n('before_rss_kb')} kB before, ${n('ramp_rss_kb')} kB after the ramp (${n('rss_ramp_per_conn_bytes')} B/conn), ${n('held_rss_kb')} kB at the end of the hold -> ${n('rss_per_conn_bytes')} B per connection (anon ${n('rss_anon_per_conn_bytes')} B)`,
        `  heap used: ${n('heap_before_mb')} MB before, ${n('heap_held_mb')} MB held -> ${n('heap_per_conn_bytes')} B per connection`,
        `  server CPU while holding: ${n('server_cpu_pct_holding')} % of a core; fds ${n('before_fds')} -> ${n('held_fds')}`,
      );
      break;
    case 'pregreet':
      lines.push(
        `  screened ${n('screened')} of ${n('zombies_requested')} in ${n('span_s')} s: ${n('screened_per_s')} /s; refused ${n('refused')}, failed ${n('failed')}, passed ${n('passed')}`,
        `  server CPU ${n('server_cpu_ms_per_conn')} ms per connection (avg ${n('server_cpu_pct_avg')} %, peak ${n('server_cpu_pct_peak')} % of a core)`,
        `  connect -> verdict ms: ${p('verdict_latency_ms')}`,
      );
      break;
    case 'legit':
      lines.push(
        `  zombies held: ${n('server_sockets_held')} (server fds), RSS ${n('held_rss_kb')} kB`,
        `  new clients    ms: ${p('new_ms')}`,
        `  cached clients ms: ${p('cached_ms')}`,
        `  direct (sink)  ms: ${p('direct_ms')}`,
        `  added (screened - direct, same client) ms: ${p('added_ms')}`,
        `  cached pX - direct pX ms: ${n('added_by_percentile_ms')}`,
        `  server CPU while timing: ${n('server_cpu_pct_timing')} %`,
      );
      break;
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  let opts: Options & { help: boolean };
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`zombie: ${(e as Error).message}\n\n${usage()}`);
    return 1;
  }
  if (opts.help) {
    process.stdout.write(usage());
    return 0;
  }
  setQuiet(opts.quiet);
  // The whole run is bounded: each scenario by --duration, plus start/stop margins.
  const bound = opts.scenarios.length * (opts.durationMs + 60_000);
  const guard = setTimeout(() => {
    process.stderr.write(`zombie: run exceeded its bound of ${bound} ms; killing the children it started\n`);
    killAll();
    process.exit(3);
  }, bound);
  guard.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
  const results: ScenarioResult[] = [];
  const started = new Date().toISOString();
  for (const name of opts.scenarios) {
    log(`scenario ${name}`);
    const r = await runScenario(name, { opts, self });
    results.push(r);
    process.stdout.write(`${summary(r)}\n`);
  }
  const name = opts.scenarios.length === 1 ? opts.scenarios[0] : 'all';
  const out = opts.out ?? `bench/results/load-${name}.json`;
  const { help: _help, ...options } = opts;
  const doc = {
    tool: 'smtpscreen bench/load/zombie',
    started,
    finished: new Date().toISOString(),
    machine: machineInfo(),
    options,
    scenarios: Object.fromEntries(results.map((r) => [r.scenario, r])),
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`result: ${out}\n`);
  return 0;
}

const role = argValue('role');
const exitBy = Number(argValue('exit-by') ?? Date.now() + 3_600_000);
if (role === 'worker') runWorker(exitBy);
else if (role === 'sink') void runSinkRole(exitBy);
else {
  main().then(
    (code) => {
      killAll();
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`zombie: ${(err as Error).stack ?? String(err)}\n`);
      killAll();
      process.exit(2);
    },
  );
}
