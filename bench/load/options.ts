/*
 * bench/load/options.ts - the load generator's command line.
 *
 * Exports: Options, Scenario, SCENARIOS, parseOptions(argv), usage().
 * Durations are written as the screener's config writes them ("300ms", "6s", "5m").
 * Defaults depend on the scenario where a single default would be wrong
 * (the greet wait: long for idle zombies, short for clients that must pass).
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../../src/util/duration.js';
import type { HostPort } from './protocol.js';

export const SCENARIOS = ['idle', 'pregreet', 'legit', 'listed', 'slowloris', 'throughput', 'mix', 'deep', 'soak'] as const;
/** What `--scenario all` runs: every scenario but the soak (30 minutes by default; asked for by name). */
export const ALL: readonly Scenario[] = SCENARIOS.filter((s) => s !== 'soak');
/** Scenarios that are also run against the floor server (floor.ts) unless --no-floor. */
export const FLOORED: readonly Scenario[] = ['idle', 'pregreet', 'throughput'];
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
  scenarios: Scenario[];
  target: HostPort | null;
  targetPid: number | null;
  direct: HostPort | null;
  /** Zombies: idle (default 19000), pregreet (5000), legit's held zombies (18000). */
  count: number | null;
  clients: number;
  durationMs: number;
  holdMs: number;
  /** pregreet.wait for pregreet and legit (default 1s). */
  greetWaitMs: number | null;
  /** pregreet.wait for idle (default: longer than the run). */
  idleWaitMs: number | null;
  action: 'enforce' | 'drop';
  rate: number;
  pending: number;
  perWorker: number;
  minWorkers: number;
  concurrency: number;
  maxConnections: number;
  /** The screener's `workers` (> 1: a private redis-server as the store; figures summed over the processes). */
  screenerWorkers: number;
  /** --screener-accept: workers_accept with --screener-workers > 1 (null: the configuration's default). */
  screenerAccept: 'shared' | 'primary' | null;
  logLevel: string;
  backend: 'sink' | 'process';
  serverNodeArgs: string[];
  traceGc: boolean;
  addrBase: [number, number];
  /** listed: share of listed clients in the mixed run, %. */
  listedShare: number;
  /** slowloris, mix: dummy.command_time_limit. */
  commandTimeMs: number;
  /** slowloris, mix: ms between two bytes of a slow zombie. */
  dribbleMs: number;
  /** throughput: bytes per message and messages each way. */
  sizeBytes: number;
  messages: number;
  sink: 'raw' | 'smtp';
  floor: boolean;
  report: boolean;
  /** legit: time a few cached clients at K-1 zombie counts below the full one (the chart). */
  steps: number;
  /** soak: how long the mix rounds go on, and the server sampling interval. */
  soakMs: number;
  sampleMs: number;
  out: string | null;
  keep: boolean;
  quiet: boolean;
}

export function usage(): string {
  return `usage: npm run bench:load -- [options]   (node dist/bench/load/zombie.js)

  --scenario NAME      idle|pregreet|legit|listed|slowloris|throughput|mix|deep|soak|all, or a
                       comma-separated list (default idle; all = every one but soak)
  --count N            zombies: idle 19000, pregreet 5000, legit (held meanwhile) 18000,
                       listed 5000 (and as many in the mixed run), slowloris 5000, mix 10000,
                       deep 2000 (new clients per mode), soak 2000 (per round, at most 14224)
  --clients M          legit: well-behaved clients timed (default 200)
  --duration D         upper bound for each scenario, e.g. 120s (default 180s)
  --hold D             idle: how long the zombies are held once connected (default 30s:
                       V8 gives back the heap grown during the ramp ~15 s after it)
  --greet-wait D       screener pregreet.wait for pregreet and legit (default 1s)
  --idle-wait D        screener pregreet.wait for idle (default: duration + 60s, at least 300s)
  --action enforce|drop  screener pregreet.action for the pregreet scenario (default enforce)
  --rate N             pregreet, listed, mix, soak: connects per second, all workers (default
                       1000, soak 100; 0 = no pace, only the pending cap)
  --soak-for D         soak: mix rounds for D, then stop (default 30m, at most 6h)
  --sample-every D     soak: the server's fds, RSS and heap every D (default 10s, at least 500ms)
  --listed-share P     listed: % of listed clients in the mixed run (default 50)
  --command-time D     slowloris, mix: screener dummy.command_time_limit (default 10s)
  --dribble D          slowloris, mix: one byte every D per slow zombie (default 2s)
  --size BYTES         throughput: message size, e.g. 50M, 1G (default 100M)
  --messages N         throughput: messages each way, alternating (default 5)
  --sink raw|smtp      throughput backend: raw discard (counts bytes, default) or the
                       built-in SMTP sink (parses every line) in its own process
  --no-floor           skip the floor runs (idle, pregreet, throughput also run against a
                       minimal Node server: bench/load/floor.ts)
  --no-report          do not rewrite bench/results/report.md and its charts
  --pending K          connects not yet greeted by the server, all workers (default 500)
  --per-worker N       sockets per worker process (default 9000; fd limit 20000 each)
  --workers N          at least N zombie worker processes (default 1)
  --steps K            legit: also time 50 cached clients with 0, 1/K .. (K-1)/K of the
                       zombies held, for the latency chart (default 4; 1 = off)
  --concurrency C      legit: cached/direct clients timed at a time (default 1)
  --max-connections N  screener limits.max_connections (default 19500)
  --screener-workers W the screener runs W workers (a primary and W processes; a private
                       redis-server is their store); server figures are summed over all of
                       them (default 1: one process, as before)
  --screener-accept shared|primary  workers_accept with --screener-workers > 1 (default:
                       the configuration's, shared)
  --log-level L        screener log.level (default warn)
  --backend sink|process  screener backend: the built-in sink in the screener's
                       process (default) or the sink in its own process (as a real smtpd)
  --server-node-args="A B"  extra node flags for the screener (e.g. --server-node-args=--cpu-prof;
                       write it with "=": the value starts with a dash)
  --no-gc-trace        do not run the screener with --trace-gc (which gives the heap
                       used after each GC, hence heap per connection)
  --target HOST:PORT   load this SMTP server instead of starting the screener
  --target-pid PID     its PID, to read RSS, CPU and fds from /proc
  --direct HOST:PORT   legit with --target: the backend to time directly
  --addr-base A.B      zombies come from 127.A.B.1 upward (default 10.0); legit clients
                       from 127.(A+100).0.1 upward
  --out FILE           JSON result (default bench/results/load-<scenario>.json; soak:
                       bench/results/soak.json)
  --keep               keep the screener's temp dir (config, log, profiles)
  --quiet              no progress on stderr
`;
}

function hostPort(flag: string, v: string): HostPort {
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${flag}: want HOST:PORT, got "${v}"`);
  return { host: v.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function int(flag: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${flag}: want an integer >= ${min}, got "${v}"`);
  return n;
}

function ms(flag: string, v: string | undefined, dflt: number | null): number | null {
  if (v === undefined) return dflt;
  try {
    return parseDuration(v);
  } catch {
    throw new Error(`${flag}: want a duration such as 300ms, 10s, 2m; got "${v}"`);
  }
}

function bytes(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)([KMG]?)$/i.exec(v);
  if (m === null) throw new Error(`${flag}: want a size such as 65536, 50M or 1G; got "${v}"`);
  const unit = { '': 1, K: 1024, M: 1048576, G: 1073741824 }[(m[2] as string).toUpperCase() as '' | 'K' | 'M' | 'G'];
  const n = Number(m[1]) * unit;
  if (n < 1000) throw new Error(`${flag}: at least 1000 bytes, got "${v}"`);
  return n;
}

export function parseOptions(argv: string[]): Options & { help: boolean } {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      scenario: { type: 'string' }, count: { type: 'string' }, clients: { type: 'string' },
      duration: { type: 'string' }, hold: { type: 'string' }, 'greet-wait': { type: 'string' },
      'idle-wait': { type: 'string' }, action: { type: 'string' }, rate: { type: 'string' },
      pending: { type: 'string' }, 'per-worker': { type: 'string' }, workers: { type: 'string' },
      concurrency: { type: 'string' }, 'max-connections': { type: 'string' }, 'screener-workers': { type: 'string' }, 'screener-accept': { type: 'string' }, 'log-level': { type: 'string' },
      backend: { type: 'string' }, 'server-node-args': { type: 'string' }, target: { type: 'string' },
      'target-pid': { type: 'string' }, direct: { type: 'string' }, 'addr-base': { type: 'string' },
      'no-gc-trace': { type: 'boolean' }, out: { type: 'string' }, keep: { type: 'boolean' }, quiet: { type: 'boolean' },
      'listed-share': { type: 'string' }, 'command-time': { type: 'string' }, dribble: { type: 'string' },
      size: { type: 'string' }, messages: { type: 'string' }, sink: { type: 'string' },
      'soak-for': { type: 'string' }, 'sample-every': { type: 'string' },
      'no-floor': { type: 'boolean' }, 'no-report': { type: 'boolean' }, steps: { type: 'string' },
      help: { type: 'boolean', short: 'h' }, role: { type: 'string' }, 'exit-by': { type: 'string' },
    },
  });
  const sc = v.scenario ?? 'idle';
  const names = sc === 'all' ? [...ALL] : sc.split(',');
  const scenarios = names.filter((x): x is Scenario => (SCENARIOS as readonly string[]).includes(x));
  if (scenarios.length === 0 || scenarios.length !== names.length) {
    throw new Error(`--scenario: want ${SCENARIOS.join(', ')}, a comma-separated list or all; got "${sc}"`);
  }
  const sink = v.sink ?? 'raw';
  if (sink !== 'raw' && sink !== 'smtp') throw new Error(`--sink: want raw or smtp, got "${sink}"`);
  const share = int('--listed-share', v['listed-share'], 50);
  if (share > 100) throw new Error(`--listed-share: want 0..100, got "${share}"`);
  const action = v.action ?? 'enforce';
  if (action !== 'enforce' && action !== 'drop') throw new Error(`--action: want enforce or drop, got "${action}"`);
  const backend = v.backend ?? 'sink';
  if (backend !== 'sink' && backend !== 'process') throw new Error(`--backend: want sink or process, got "${backend}"`);
  const base = (v['addr-base'] ?? '10.0').split('.').map(Number);
  const [a, b] = base;
  if (base.length !== 2 || a === undefined || b === undefined || !(a >= 1 && a <= 150) || !(b >= 0 && b <= 255)) {
    throw new Error(`--addr-base: want A.B with A in 1..150 and B in 0..255, got "${v['addr-base']}"`);
  }
  const count = v.count === undefined ? null : int('--count', v.count, 0, 1);
  const soakMs = ms('--soak-for', v['soak-for'], 30 * 60_000) as number;
  if (soakMs < 1000 || soakMs > 6 * 3_600_000) throw new Error(`--soak-for: want 1s..6h, got "${v['soak-for']}"`);
  const sampleMs = ms('--sample-every', v['sample-every'], 10_000) as number;
  if (sampleMs < 500) throw new Error(`--sample-every: at least 500ms, got "${v['sample-every']}"`);
  const perWorker = int('--per-worker', v['per-worker'], 9000, 1);
  if (perWorker > 19_000) throw new Error('--per-worker: at most 19000 (each worker has a 20,000-fd limit)');
  return {
    help: v.help === true,
    scenarios,
    target: v.target === undefined ? null : hostPort('--target', v.target),
    targetPid: v['target-pid'] === undefined ? null : int('--target-pid', v['target-pid'], 0, 1),
    direct: v.direct === undefined ? null : hostPort('--direct', v.direct),
    count,
    clients: int('--clients', v.clients, 200, 1),
    durationMs: ms('--duration', v.duration, 180_000) as number,
    holdMs: ms('--hold', v.hold, 30_000) as number,
    greetWaitMs: ms('--greet-wait', v['greet-wait'], null),
    idleWaitMs: ms('--idle-wait', v['idle-wait'], null),
    action,
    rate: int('--rate', v.rate, scenarios.length === 1 && scenarios[0] === 'soak' ? 100 : 1000),
    pending: int('--pending', v.pending, 500, 1),
    perWorker,
    minWorkers: int('--workers', v.workers, 1, 1),
    concurrency: int('--concurrency', v.concurrency, 1, 1),
    maxConnections: int('--max-connections', v['max-connections'], 19_500, 1),
    screenerWorkers: int('--screener-workers', v['screener-workers'], 1, 1),
    screenerAccept: screenerAccept(v['screener-accept']),
    logLevel: v['log-level'] ?? 'warn',
    backend,
    serverNodeArgs: (v['server-node-args'] ?? '').split(/\s+/).filter((x) => x !== ''),
    traceGc: v['no-gc-trace'] !== true,
    addrBase: [a, b],
    listedShare: share,
    commandTimeMs: ms('--command-time', v['command-time'], 10_000) as number,
    dribbleMs: ms('--dribble', v.dribble, 2000) as number,
    sizeBytes: bytes('--size', v.size, 100 * 1048576),
    messages: int('--messages', v.messages, 5, 1),
    sink,
    floor: v['no-floor'] !== true,
    report: v['no-report'] !== true,
    steps: int('--steps', v.steps, 4, 1),
    soakMs,
    sampleMs,
    out: v.out ?? null,
    keep: v.keep === true,
    quiet: v.quiet === true,
  };
}

/** --screener-accept: shared or primary; absent: null (the configuration's default). */
function screenerAccept(v: string | undefined): 'shared' | 'primary' | null {
  if (v === undefined) return null;
  if (v === 'shared' || v === 'primary') return v;
  throw new Error(`--screener-accept: want shared or primary, got "${v}"`);
}
