/*
 * bench/load/held.ts - memory per held connection, by phase.
 *
 *   npm run bench:held -- --phase greet|dummy|spliced|flood [--count N] [--bytes B] [--pending P] [--hold S] [--workers W [--accept shared|primary]] [--out FILE] [--cli PATH] [--heap-snapshot DIR]
 *
 * N clients (default 9,000: at 20,000 fds the screener reserves a backend descriptor for each
 * client that may be handed over, ~9,968 in all) are opened a few at a time (--pending, default
 * 20: every read the screener discards is garbage until the next scavenge, and freed memory
 * stays in RSS) and held in one phase:
 *   greet    silent, in the greet wait (pregreet.wait 120 s).
 *   dummy    listed by a real rbldnsd (bl.test, 127.30.0.0/16): after a 200 ms greet wait
 *            the DNSBL verdict is enforce, the dummy engine completes the greeting; the
 *            client sends EHLO and waits there (command_time_limit 300 s).
 *   spliced  allowlisted (access list "127.0.0.0/8 permit"): handed at once to a sink
 *            (bench/load's, in a process of its own), and held in the splice (two
 *            descriptors each).
 *   flood    sends --bytes (default 96 KiB) right after the teaser; held in the greet wait
 *            by a DNSBL lookup to a UDP socket that never answers (dnsbl.timeout 120 s).
 * --workers W (default 1): the screener runs W workers (a primary and W processes, with a
 * private redis-server as the store, which they need; --accept shared|primary: workers_accept,
 * default the configuration's); RSS is then summed over the primary and
 * all its workers (each worker holds its own share, under its own 20,000-fd limit).
 * The screener's RSS is sampled before, and with every client held --hold seconds (default 20:
 * V8 gives back the ramp's heap growth ~15 s after it) and then still (< 256 kB change for 3 s); per client = (RSS held - RSS before) / clients alive. Loopback only;
 * bounded by --count and a 180 s deadline. --cli runs another build's dist/src/cli.js (a before/after pair).
 * --heap-snapshot DIR: the screener writes a heap snapshot to DIR before the clients and one
 * with them held; `node dist/bench/load/heap-summary.js AFTER --base BEFORE --per N` reads them.
 */
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startScreener, startSinkProcess, sleep, type SinkProcess } from './server.js';
import { machineInfo, sampleTree } from './proc.js';
import { startRedis, type RedisServer } from '../../test/helpers/redis.js';
import { startBenchRbldnsd, dnsblConfig } from './listed.js';
import type { Rbldnsd } from '../../test/helpers/rbldnsd.js';

const PHASES = ['greet', 'dummy', 'spliced', 'flood'] as const;
type Phase = (typeof PHASES)[number];

const { values } = parseArgs({
  options: {
    phase: { type: 'string' }, count: { type: 'string' }, bytes: { type: 'string' }, pending: { type: 'string' }, hold: { type: 'string' },
    workers: { type: 'string' }, accept: { type: 'string' }, out: { type: 'string' }, cli: { type: 'string' }, 'heap-snapshot': { type: 'string' },
  },
});
const phase = (values.phase ?? 'greet') as Phase;
if (!PHASES.includes(phase)) throw new Error(`--phase: want ${PHASES.join(', ')}; got "${values.phase}"`);
const count = Number(values.count ?? 9000);
const bytes = Number(values.bytes ?? 96 * 1024);
const pendingCap = Number(values.pending ?? 20);
const holdMs = Number(values.hold ?? 20) * 1000;
const workers = Number(values.workers ?? 1);
if (!Number.isSafeInteger(workers) || workers < 1 || workers > 64) throw new Error(`--workers: want 1..64; got "${values.workers}"`);
const accept = values.accept;
if (accept !== undefined && accept !== 'shared' && accept !== 'primary') throw new Error(`--accept: want shared or primary; got "${accept}"`);
const deadline = Date.now() + 180_000;

const silentDns = createSocket('udp4');
await new Promise<void>((r) => silentDns.bind(0, '127.0.0.1', r));
silentDns.on('message', () => undefined); // never answers
let rbl: Rbldnsd | null = null;
let sink: SinkProcess | null = null;
let extra: Record<string, Record<string, unknown>> = {};
let waitMs = 120_000;
switch (phase) {
  case 'dummy':
    rbl = await startBenchRbldnsd();
    extra = dnsblConfig(rbl, 'enforce');
    waitMs = 200;
    break;
  case 'spliced': {
    const list = join(mkdtempSync(join(tmpdir(), 'smtpscreen-held-')), 'access');
    writeFileSync(list, '127.0.0.0/8 permit\n');
    extra = { access: { list } };
    // The sink in a process of its own: its sockets and buffers are not the screener's.
    sink = await startSinkProcess(join(dirname(fileURLToPath(import.meta.url)), 'zombie.js'), deadline + 30_000);
    break;
  }
  case 'flood':
    extra = {
      dnsbl: { sites: ['flood.bench.invalid'], timeout: '120s' },
      resolver: { servers: [`127.0.0.1:${silentDns.address().port}`], timeout: '60s', tries: 1 },
    };
    break;
  case 'greet':
    break;
}
// More than one worker needs the shared store (config/refusals.ts): a private redis-server.
let redis: RedisServer | null = null;
if (workers > 1) {
  redis = await startRedis();
  extra = { ...extra, cache: { store: 'redis', redis: { url: redis.url, prefix: 'held:' } } };
}
const snapDir = values['heap-snapshot'];
if (snapDir !== undefined) mkdirSync(snapDir, { recursive: true });
/** --heap-snapshot: SIGUSR2 to the screener, and wait until its snapshot file number `n` is written. */
async function heapSnapshot(pid: number, n: number): Promise<void> {
  if (snapDir === undefined) return;
  process.kill(pid, 'SIGUSR2');
  const until = Date.now() + 120_000;
  let size = -1;
  while (Date.now() < until) {
    await sleep(1000);
    const files = readdirSync(snapDir).filter((f) => f.endsWith('.heapsnapshot')).sort();
    const f = files[n - 1];
    if (f === undefined) continue;
    const now = statSync(join(snapDir, f)).size;
    if (now === size && now > 0) return;
    size = now;
  }
  throw new Error('--heap-snapshot: the screener did not write its snapshot within 120 s');
}
const t = await startScreener({
  greetWaitMs: waitMs, action: 'enforce', maxConnections: workers > 1 ? 20_000 * workers : 20_000, commandTimeMs: 300_000, logLevel: 'warn',
  backend: sink?.listen ?? null, nodeArgs: snapDir !== undefined ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapDir}`] : [], traceGc: false, keepFiles: false, extra,
  ...(workers > 1 ? { workers } : {}),
  ...(workers > 1 && accept !== undefined ? { workersAccept: accept } : {}),
  ...(values.cli !== undefined ? { cli: values.cli } : {}),
});
const socks: net.Socket[] = [];
try {
  await sleep(500);
  const pid = t.pid as number;
  // The primary and its workers (workers: 1: the one process).
  const before = sampleTree(pid);
  // The snapshot's full GC and its file: taken after the RSS sample (the RSS figures of such a run still differ from a plain run's).
  await heapSnapshot(pid, 1);
  const payload = Buffer.alloc(bytes, 0x41);
  let held = 0;
  let failed = 0;
  let pending = 0;
  // listed clients come from the rbldnsd's 127.30.0.0/16; the others from 127.1.0.0/16.
  const second = phase === 'dummy' ? 30 : 1;
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    while (pending >= pendingCap) await sleep(2);
    pending++;
    const n = i + 1;
    const s = net.connect({ host: t.listen.host, port: t.listen.port, localAddress: `127.${second}.${(n >> 8) & 0xff}.${n & 0xff}` });
    let waiting = true;
    const done = (): void => {
      if (waiting) {
        waiting = false;
        pending--;
      }
    };
    s.on('error', () => {
      failed++;
      done();
    });
    s.once('close', done);
    let text = '';
    s.on('data', (c: Buffer) => {
      if (!waiting) return;
      text += c.toString('latin1');
      // Held once in the phase: the teaser (greet, flood), the greeting then the EHLO reply (dummy), the sink's greeting (spliced).
      if (phase === 'greet' || (phase === 'flood' && text.includes('220-'))) {
        if (phase === 'flood') s.write(payload);
        held++;
        done();
      } else if (phase === 'spliced' && /^220 /m.test(text)) {
        held++;
        done();
      } else if (phase === 'dummy') {
        if (/^220 /m.test(text) && !text.includes('EHLO sent')) {
          text += 'EHLO sent';
          s.write('EHLO held.bench.invalid\r\n');
        } else if (/^250 /m.test(text)) {
          held++;
          done();
        }
      }
    });
    socks.push(s);
  }
  while (pending > 0 && Date.now() < deadline) await sleep(50);
  // V8's memory reducer gives back the heap the ramp grew ~15 s after it (see the idle scenario).
  await sleep(Math.min(holdMs, Math.max(0, deadline - Date.now() - 10_000)));
  let last = sampleTree(pid);
  for (let still = 0; still < 3 && Date.now() < deadline; ) {
    await sleep(1000);
    const now = sampleTree(pid);
    still = now !== null && last !== null && Math.abs(now.rssKb - last.rssKb) < 256 ? still + 1 : 0;
    last = now;
  }
  const after = sampleTree(pid);
  const alive = socks.filter((s) => !s.destroyed).length;
  await heapSnapshot(pid, 2);
  // BENCH_METRICS=1: one scrape with every client held (its gauges walk the sessions), timed.
  // The first scrape also pays for first use (the code's compilation, the HTTP connection): three, each timed.
  // /healthz beside it: what any request costs on this (shared) machine at that moment.
  let scrape: { ms: number[]; bytes: number; healthz_ms: number[] } | null = null;
  if (t.admin != null) {
    scrape = { ms: [], bytes: 0, healthz_ms: [] };
    for (let k = 0; k < 3; k++) {
      const h0 = performance.now();
      await (await fetch(`http://${t.admin}/healthz`)).text();
      scrape.healthz_ms.push(Math.round(performance.now() - h0));
      const t0 = performance.now();
      const body = await (await fetch(`http://${t.admin}/metrics`)).text();
      scrape.ms.push(Math.round(performance.now() - t0));
      scrape.bytes = body.length;
    }
  }
  const perClient = before && after ? Math.round(((after.rssKb - before.rssKb) * 1024) / Math.max(1, alive)) : null;
  const result = {
    bench: 'held', at: new Date().toISOString(), machine: machineInfo(),
    settings: { phase, clients: count, pending_cap: pendingCap, hold_s: holdMs / 1000, workers, ...(phase === 'flood' ? { bytes_each: bytes } : {}) },
    figures: {
      processes: after?.pids ?? null, held, failed, alive_at_sample: alive, rss_before_kb: before?.rssKb ?? null, rss_held_kb: after?.rssKb ?? null, rss_per_client_bytes: perClient,
      metrics: t.admin != null, ...(scrape !== null ? { scrape_ms: scrape.ms, scrape_bytes: scrape.bytes, healthz_ms: scrape.healthz_ms } : {}),
    },
  };
  console.log(JSON.stringify({ phase, ...result.figures }));
  if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const s of socks) s.destroy();
  silentDns.close();
  await t.stop();
  await rbl?.stop();
  await sink?.stop();
  await redis?.stop();
}
