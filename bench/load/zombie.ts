/*
 * bench/load/zombie.ts - the zombie load generator: `npm run bench:load -- [options]`.
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
import { FLOORED, parseOptions, usage, type Options } from './options.js';
import { machineInfo, type Percentiles } from './proc.js';
import type { ScenarioResult } from './scenarios.js';
import { runWithFloor } from './run.js';
import { runFloorRole } from './floor.js';
import { writeReport } from './report.js';
import { killAll } from './server.js';
import { log, setQuiet } from './fleet.js';
import { runWorker } from './worker.js';
import { startSink } from '../../src/server/sink.js';

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
    case 'listed':
      lines.push(
        `  listed: ${n('listed_rejected')} rejected of ${n('clients_per_run')} (${n('listed_passed')} passed, ${n('listed_failed')} failed): ${n('rejected_per_s')} rejections/s (${n('rejected_per_s_overall')}/s from the first connect); ${n('listed_server_cpu_ms_per_conn')} ms server CPU each`,
        `  listed connect -> verdict ms: ${p('listed_verdict_ms')}`,
        `  mixed (${n('mixed_listed_share_pct')} % listed): ${n('mixed_rejected')} rejected, ${n('mixed_passed')} passed (${n('mixed_listed_passed')} listed passed, ${n('mixed_unlisted_rejected')} unlisted rejected): ${n('mixed_screened_per_s')} new clients screened/s (${n('mixed_screened_per_s_overall')}/s from the first connect)`,
        `  mixed unlisted connect -> RCPT accepted ms: ${p('mixed_unlisted_verdict_ms')}`,
      );
      break;
    case 'slowloris':
      lines.push(
        `  dribbling: ${n('zombies_dribbling')} of ${n('zombies_requested')}, server fds ${n('held_fds')}; RSS ${n('before_rss_kb')} -> ${n('held_rss_kb')} kB: ${n('rss_per_conn_bytes')} B per connection`,
        `  cut by 421: ${n('cut')} (${n('cut_ratio')}); greeting -> cut ms: ${p('cut_ms')}; over the limit: ${n('cut_over_limit_ms')}`,
        `  after the cut: fds ${n('after_fds')}, RSS ${n('after_rss_kb')} kB`,
      );
      break;
    case 'throughput':
      lines.push(
        `  ${r.settings['path']} MB/s: ${p('screened_mb_s')}`,
        `  direct MB/s: ${p('direct_mb_s')}`,
        `  ratio (p50): ${n('ratio')}; server CPU ${n('server_cpu_ms_per_mb')} ms per MB`,
      );
      break;
    case 'mix':
      lines.push(`  ${n('accepted')} of ${n('connections')} connections in ${n('span_s')} s: ${n('conn_per_s')}/s; server CPU avg ${n('server_cpu_pct_avg')} % peak ${n('server_cpu_pct_peak')} %, peak RSS ${n('server_peak_rss_kb')} kB`);
      for (const k of ['idle', 'pregreet', 'listed', 'slowloris', 'legit']) {
        lines.push(`  ${k}: ${n(`${k}_ok`)} ok of ${n(`${k}_started`)}, wrong ${n(`${k}_wrong`)}, errors ${n(`${k}_errors`)}${f[`${k}_ms`] !== undefined ? `; ms ${p(`${k}_ms`)}` : ''}`);
      }
      break;
    case 'soak':
      lines.push(
        `  ${n('rounds')} rounds, ${n('connections')} connections in ${n('soak_s')} s; wrong verdicts ${n('wrong')}, errors ${n('errors')}; ${n('samples')} samples every ${n('sample_every_s')} s`,
        `  fds ${n('fds_start')} -> ${n('fds_end')} (max ${n('fds_max')}; settled after a round: ${n('settled_fds_first_round')} -> ${n('settled_fds_last_round')})`,
        `  RSS kB ${n('rss_kb_start')} -> ${n('rss_kb_end')} (max ${n('rss_kb_max')}; settled: ${n('settled_rss_kb_first_round')} -> ${n('settled_rss_kb_last_round')})`,
        `  heap MB ${n('heap_mb_start')} -> ${n('heap_mb_end')}; after full GCs ${n('heap_full_gc_mb_first')} -> ${n('heap_full_gc_mb_last')}`,
        `  plateau ${n('plateau')}, growth over the last quarter ${n('growth_last_quarter')}`,
      );
      break;
    case 'deep':
      lines.push(
        `  reconnect: ${n('reconnect_deferred')} of ${n('clients_per_run')} deferred (450), ${n('reconnect_delivered')} delivered on the retry (${n('reconnect_first_failed')} first attempts and ${n('reconnect_retry_failed')} retries failed otherwise); ${n('reconnect_connections_per_delivery')} connections and ${n('reconnect_cpu_ms_per_delivery')} ms server CPU per delivery; ${n('reconnect_delivered_per_s')} deliveries/s`,
        `  reconnect first attempt connect -> 450 ms: ${p('reconnect_first_ms')}; its share of the run's server CPU ${n('reconnect_first_cpu_share')}`,
        `  reconnect retry connect -> RCPT accepted ms: ${p('reconnect_ms')}`,
        `  handoff: ${n('handoff_delivered')} of ${n('clients_per_run')} delivered on the first connection (${n('handoff_failed')} not); ${n('handoff_connections_per_delivery')} connections and ${n('handoff_cpu_ms_per_delivery')} ms server CPU per delivery; ${n('handoff_delivered_per_s')} deliveries/s`,
        `  handoff connect -> RCPT accepted ms: ${p('handoff_ms')}`,
        `  server RSS kB: reconnect ${n('reconnect_before_rss_kb')} -> ${n('reconnect_after_rss_kb')}, handoff ${n('handoff_before_rss_kb')} -> ${n('handoff_after_rss_kb')}`,
      );
      break;
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  if (r.floor !== undefined) {
    lines.push(summary(r.floor).split('\n').filter((l) => !l.startsWith('  note:')).map((l) => `  floor| ${l}`).join('\n'));
    lines.push(`  screener / floor: ${JSON.stringify(r.ratios)}`);
  }
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
  const bound = opts.scenarios.reduce((a, s) => a + (s === 'soak' ? opts.soakMs + 120_000
    : (opts.floor && opts.target === null && FLOORED.includes(s) ? 2 : 1) * (opts.durationMs + 60_000)), 0);
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
    const r = await runWithFloor(name, { opts, self });
    results.push(r);
    process.stdout.write(`${summary(r)}\n`);
  }
  const name = opts.scenarios.length === 1 ? opts.scenarios[0] : 'all';
  const out = opts.out ?? (name === 'soak' ? 'bench/results/soak.json' : `bench/results/load-${name}.json`);
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
  if (opts.report) process.stdout.write(`report: ${writeReport(dirname(out))}\n`);
  return 0;
}

const role = argValue('role');
const exitBy = Number(argValue('exit-by') ?? Date.now() + 3_600_000);
if (role === 'worker') runWorker(exitBy);
else if (role === 'floor' || role === 'raw') runFloorRole(process.argv, exitBy);
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
