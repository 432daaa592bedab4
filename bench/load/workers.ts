/*
 * bench/load/workers.ts - what `workers: N` buys on this host: rates with 1 process and with N
 * workers in each accept mode, and the primary's CPU.
 *
 *   npm run bench:workers -- [--rounds 1,2p,2s,1,2p,2s] [--seconds 8] [--procs 4] [--conc 150]
 *                            [--per-client 50] [--out FILE]
 *
 * Each round names a setup: 1 (one process), Np (N workers, workers_accept: primary: the
 * primary accepts and hands each socket over) or Ns (N workers, workers_accept: shared: every
 * worker accepts from the one listening socket). The rounds are alternated so that the other
 * load of a shared machine falls on every setup alike. A screener is started for each (cache.store
 * redis on a private redis-server in every case, so they differ only in the workers;
 * limits.max_per_client --per-client, 50 as by default, so that the shared mode pays for its
 * per-client reports), and two loads run one after the other, each for --seconds after a 1 s warm-up:
 *   pregreet  zombies from 127.60.0.0/16 that talk before the greeting (pregreet.action drop,
 *             pregreet.wait 100ms): rejections per second;
 *   legit     allowlisted clients from 127.50.0.0/16 handed at once to a sink in a process of its
 *             own: each reads the sink's "220 ", sends QUIT and waits for the close: sessions per second.
 * The load comes from --procs generator processes (this file, --role gen), each keeping --conc
 * connections in flight from many /24s (so that the primary spreads them over the workers).
 * CPU of the primary and of the workers is read from /proc over the measured window (% of one
 * core). Prints one JSON line per round and load, then the medians per setup, and the scaling
 * factors: each setup's rate over one process's, and shared over primary for the same N (a JSON
 * line, then a small table); the 1-minute load average is printed with every line.
 * Loopback only; bounded by --seconds per load and the counts above.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startScreener, startSinkProcess, sleep } from './server.js';
import { childPids, machineInfo, median, round, sampleProc, type ProcSample } from './proc.js';
import { startRedis } from '../../test/helpers/redis.js';

const self = fileURLToPath(import.meta.url);
const { values } = parseArgs({
  options: {
    role: { type: 'string' }, rounds: { type: 'string' }, seconds: { type: 'string' }, procs: { type: 'string' }, conc: { type: 'string' },
    kind: { type: 'string' }, port: { type: 'string' }, index: { type: 'string' }, out: { type: 'string' }, 'per-client': { type: 'string' },
  },
});

type Kind = 'pregreet' | 'legit';

/** A generator: --conc loops, each one connection at a time; reports its completions every 250 ms. */
async function gen(): Promise<void> {
  const kind = values.kind as Kind;
  const port = Number(values.port);
  const conc = Number(values.conc ?? 150);
  const idx = Number(values.index ?? 0);
  const endAt = Date.now() + Number(values.seconds ?? 8) * 1000 + 1500;
  let done = 0;
  let failed = 0;
  let stop = false;
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { stop?: boolean }) => {
    if (m.stop === true) stop = true;
  });
  const timer = setInterval(() => process.send?.({ done, failed }), 250);
  const second = kind === 'legit' ? 50 : 60;
  const one = (i: number, n: number): Promise<void> => new Promise((resolve) => {
    // A /24 per loop and a host per attempt: many networks (spread over the workers), ports never exhausted.
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.${second}.${idx * 60 + (i % 60)}.${1 + (n % 250)}` });
    let text = '';
    let ok = false;
    s.on('connect', () => {
      if (kind === 'pregreet') s.write('EHLO zombie.bench.invalid\r\n');
    });
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (kind === 'legit' && !ok && /^220 /m.test(text)) {
        ok = true;
        s.end('QUIT\r\n');
      }
      if (kind === 'pregreet' && !ok && /^521 /m.test(text)) ok = true;
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (ok) done++;
      else failed++;
      resolve();
    });
    s.setTimeout(10_000, () => s.destroy());
  });
  await Promise.all(Array.from({ length: conc }, async (_, i) => {
    for (let n = 0; !stop && Date.now() < endAt; n++) await one(i, n);
  }));
  clearInterval(timer);
  process.send?.({ done, failed, end: true });
  setTimeout(() => process.exit(0), 200);
}

/** A setup of --rounds: 1, Np or Ns. */
interface Setup {
  label: string;
  workers: number;
  accept: 'shared' | 'primary' | null;
}

function parseSetup(t: string): Setup {
  const m = /^(\d+)([ps]?)$/.exec(t.trim());
  const w = m === null ? NaN : Number(m[1]);
  if (m === null || !Number.isSafeInteger(w) || w < 1 || w > 8 || (w === 1) !== (m[2] === '')) {
    throw new Error(`--rounds: "${t}": want 1 (one process), Np (N workers, workers_accept: primary) or Ns (shared), N 2..8`);
  }
  return { label: `${w}${m[2] ?? ''}`, workers: w, accept: m[2] === 'p' ? 'primary' : m[2] === 's' ? 'shared' : null };
}

interface Round {
  setup: string;
  workers: number;
  kind: Kind;
  per_s: number;
  failed: number;
  primary_cpu_pct: number | null;
  workers_cpu_pct: number;
  /** Each worker's share of the workers' CPU (%): how evenly the kernel (shared) or the hash (primary) spreads them. */
  workers_cpu_split: number[] | null;
  primary_share_pct: number | null;
  load1: number;
}

async function measure(kind: Kind, port: number, pid: number, setup: Setup, seconds: number, procs: number, conc: number): Promise<Round> {
  const workers = setup.workers;
  const kids: ChildProcess[] = [];
  const counts = new Array<{ done: number; failed: number }>(procs).fill({ done: 0, failed: 0 });
  for (let i = 0; i < procs; i++) {
    const k = fork(self, ['--role', 'gen', '--kind', kind, '--port', String(port), '--conc', String(conc), '--index', String(i), '--seconds', String(seconds)],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    k.on('message', (m: { done: number; failed: number }) => (counts[i] = m));
    kids.push(k);
  }
  await sleep(1000);
  const sum = (): { done: number; failed: number } => counts.reduce((a, c) => ({ done: a.done + c.done, failed: a.failed + c.failed }), { done: 0, failed: 0 });
  const wpids = workers > 1 ? childPids(pid) : [];
  const cpu = (): { p: ProcSample | null; w: Array<ProcSample | null> } => ({ p: sampleProc(pid), w: wpids.map(sampleProc) });
  const c0 = sum();
  const s0 = cpu();
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const c1 = sum();
  const s1 = cpu();
  const wall = Date.now() - t0;
  for (const k of kids) k.send({ stop: true });
  await Promise.all(kids.map((k) => new Promise<void>((r) => (k.exitCode !== null ? r() : k.once('exit', () => r())))));
  const pct = (a: ProcSample | null | undefined, b: ProcSample | null | undefined): number => (a && b ? (100 * (b.cpuMs - a.cpuMs)) / wall : 0);
  const primary = pct(s0.p, s1.p);
  const w = workers > 1 ? s0.w.reduce((acc, a, i) => acc + pct(a, s1.w[i]), 0) : primary;
  return {
    setup: setup.label, workers, kind, per_s: Math.round(((c1.done - c0.done) * 1000) / wall), failed: c1.failed - c0.failed,
    primary_cpu_pct: workers > 1 ? round(primary) : null, workers_cpu_pct: round(w),
    workers_cpu_split: workers > 1 ? s0.w.map((a, i) => round((100 * pct(a, s1.w[i])) / Math.max(1e-9, w))) : null,
    primary_share_pct: workers > 1 ? round((100 * primary) / Math.max(1e-9, primary + w)) : null, load1: round(loadavg()[0] ?? 0, 2),
  };
}

async function main(): Promise<void> {
  const rounds = (values.rounds ?? '1,2p,2s,1,2p,2s').split(',').map(parseSetup);
  const seconds = Number(values.seconds ?? 8);
  const procs = Number(values.procs ?? 4);
  const conc = Number(values.conc ?? 150);
  const perClient = Number(values['per-client'] ?? 50);
  if (!(seconds > 0 && seconds <= 60) || !(procs >= 1 && procs <= 8) || !(conc >= 1 && conc <= 2000) || !(Number.isSafeInteger(perClient) && perClient >= 0)) {
    throw new Error('--seconds 1..60; --procs 1..8; --conc 1..2000; --per-client a whole number >= 0');
  }
  const redis = await startRedis();
  const sink = await startSinkProcess(join(dirname(self), 'zombie.js'), Date.now() + rounds.length * (2 * seconds + 30) * 1000 + 60_000);
  const list = join(mkdtempSync(join(tmpdir(), 'smtpscreen-workers-')), 'access');
  writeFileSync(list, '127.50.0.0/16 permit\n');
  const results: Round[] = [];
  try {
    for (const [i, setup] of rounds.entries()) {
      const t = await startScreener({
        greetWaitMs: 100, action: 'drop', maxConnections: 20_000, commandTimeMs: 10_000, logLevel: 'warn', backend: sink.listen,
        nodeArgs: [], traceGc: false, keepFiles: false, workers: setup.workers, ...(setup.accept !== null ? { workersAccept: setup.accept } : {}),
        extra: { access: { list }, cache: { store: 'redis', redis: { url: redis.url, prefix: `wb${i}:`, timeout: '50ms' } },
          limits: { max_per_client: perClient } },
      });
      try {
        await sleep(500);
        for (const kind of ['pregreet', 'legit'] as const) {
          const r = await measure(kind, t.listen.port, t.pid as number, setup, seconds, procs, conc);
          results.push(r);
          console.log(JSON.stringify(r));
        }
      } finally {
        await t.stop();
      }
    }
  } finally {
    await sink.stop();
    await redis.stop();
  }
  // Per setup: the median rate and the primary's median share; scaling: over one process, and shared over primary for one N.
  const labels = [...new Set(rounds.map((r) => r.label))];
  const summary: Record<string, Record<string, unknown>> = {};
  const table: string[] = [];
  for (const kind of ['pregreet', 'legit'] as const) {
    const med = (label: string): number => median(results.filter((r) => r.kind === kind && r.setup === label).map((r) => r.per_s));
    const one = labels.includes('1') ? med('1') : 0;
    const per: Record<string, unknown> = {};
    for (const label of labels) {
      const v = med(label);
      const share = median(results.filter((r) => r.kind === kind && r.setup === label && r.primary_share_pct !== null).map((r) => r.primary_share_pct as number));
      const w = /^(\d+)/.exec(label)?.[1] ?? '1';
      const other = label.endsWith('s') ? `${w}p` : null;
      const vsPrimary = other !== null && labels.includes(other) && med(other) > 0 ? round(v / med(other), 2) : null;
      const scaling = label !== '1' && one > 0 ? round(v / one, 2) : null;
      per[label] = { per_s: v, scaling_vs_1: scaling, ...(vsPrimary !== null ? { shared_vs_primary: vsPrimary } : {}),
        ...(label !== '1' ? { primary_share_pct_median: share } : {}) };
      const vs1 = label === '1' ? 'x1   ' : scaling === null ? '-    ' : `x${scaling.toFixed(2)}`;
      table.push(`${kind.padEnd(9)} ${label.padEnd(4)} ${String(v).padStart(7)}/s  ${vs1} vs 1 process` +
        `${vsPrimary !== null ? `  x${vsPrimary.toFixed(2)} vs ${other ?? ''}` : ''}${label !== '1' ? `  primary ${share}% of the CPU` : ''}`);
    }
    summary[kind] = per;
  }
  const settings = { rounds: rounds.map((r) => r.label), seconds, procs, conc, per_client: perClient };
  console.log(JSON.stringify({ summary, settings }));
  console.log(`scaling (medians; 1: one process, Np: N workers, workers_accept primary, Ns: shared):\n${table.join('\n')}`);
  if (values.out !== undefined) {
    writeFileSync(values.out, `${JSON.stringify({ bench: 'workers', at: new Date().toISOString(), machine: machineInfo(), settings, results, summary }, null, 2)}\n`);
  }
}

if (values.role === 'gen') await gen();
else await main();
