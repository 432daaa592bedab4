/*
 * bench/load/run.ts - runs a scenario by name, and its floor run.
 *
 * Exports: runScenario(name, env), runWithFloor(name, env).
 * Scenarios live in scenarios.ts (idle, pregreet, legit), listed.ts,
 * slowloris.ts, throughput.ts, mix.ts, deep.ts and soak.ts. For the FLOORED ones (idle,
 * pregreet, throughput) runWithFloor() runs the same scenario a second time
 * against the floor server (floor.ts: plain Node, accept/greet/hold or a
 * pipe() proxy) and attaches it with the ratios screener / floor.
 */
import { FLOORED, type Scenario } from './options.js';
import { log } from './fleet.js';
import { idle, legit, pregreet, type Env, type ScenarioResult } from './scenarios.js';
import { listed } from './listed.js';
import { slowloris } from './slowloris.js';
import { throughput } from './throughput.js';
import { mix } from './mix.js';
import { deep } from './deep.js';
import { soak } from './soak.js';
import { round } from './proc.js';

export function runScenario(name: Scenario, env: Env): Promise<ScenarioResult> {
  switch (name) {
    case 'idle':
      return idle(env);
    case 'pregreet':
      return pregreet(env);
    case 'legit':
      return legit(env);
    case 'listed':
      return listed(env);
    case 'slowloris':
      return slowloris(env);
    case 'throughput':
      return throughput(env);
    case 'mix':
      return mix(env);
    case 'deep':
      return deep(env);
    case 'soak':
      return soak(env);
  }
}

function num(r: ScenarioResult, k: string): number | null {
  const v = r.figures[k];
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object' && 'p50' in v) return (v as { p50: number }).p50;
  return null;
}

/** Which figures to compare with the floor: screener / floor (rates want >= 0.7, memory <= 1). */
const COMPARE: Readonly<Partial<Record<Scenario, readonly string[]>>> = {
  idle: ['ramp_conn_per_s', 'rss_per_conn_bytes', 'rss_ramp_per_conn_bytes', 'server_cpu_us_per_accept', 'server_sockets_held'],
  pregreet: ['screened_per_s', 'server_cpu_ms_per_conn', 'server_peak_rss_kb'],
  throughput: ['screened_mb_s', 'server_cpu_ms_per_mb'],
};

export async function runWithFloor(name: Scenario, env: Env): Promise<ScenarioResult> {
  const r = await runScenario(name, env);
  if (!env.opts.floor || env.opts.target !== null || !FLOORED.includes(name)) return r;
  log(`${name}: the same against the floor (plain Node)`);
  const f = await runScenario(name, { ...env, floor: true });
  r.floor = f;
  r.ratios = {};
  for (const k of COMPARE[name] ?? []) {
    const a = num(r, k);
    const b = num(f, k);
    r.ratios[k] = a === null || b === null || b === 0 ? null : round(a / b, 3);
  }
  return r;
}
