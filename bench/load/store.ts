/*
 * bench/load/store.ts - the shared store's cost: lookup latency per tier, and the greeting delay a
 * new client sees with Redis on against memory only.
 *
 *   npm run bench:store -- [--lookups N] [--clients N] [--rounds R] [--out FILE]
 *
 * A private redis-server on loopback (test/helpers/redis.ts). Figures:
 *   lookups   p50/p99 of one lookup at a time through cache/tiered.ts: the memory tier's get()
 *             (a hit: what a PASS OLD costs), Redis hit, Redis miss (call to callback), and the
 *             greylisting script (observeShared), N each.
 *   greeting  a screener process (`smtpscreen run`, built-in sink) per configuration, new clients
 *             one at a time (each from a fresh address), connect -> the final "220 " line, minus
 *             the greet wait: memory vs redis, pregreet wait 100 ms, without and with greylisting
 *             (min_delay 0: the network's first client is deferred, the rest pass). R rounds
 *             of N client indexes, each greeted by every configuration back to back (the order
 *             rotating), so the redis - memory differences are paired. The machine is shared
 *             (2 cores, other jobs): repeat and compare within one run only.
 * Loopback only; bounded by the counts.
 */
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { MemoryStore } from '../../src/cache/memory.js';
import { RedisTier } from '../../src/cache/redis.js';
import { TieredStore } from '../../src/cache/tiered.js';
import { withPasses, type VerdictRecord } from '../../src/cache/store.js';
import type { GreylistDecision } from '../../src/checks/greylist.js';
import { TestIndex } from '../../src/checks/tests.js';
import { Emitter } from '../../src/log/emit.js';
import { startRedis } from '../../test/helpers/redis.js';
import { killAllScreeners, startScreener, type ScreenerProc } from '../../test/helpers/screener.js';
import { machineInfo, percentiles, round } from './proc.js';

const { values: opt } = parseArgs({
  options: {
    lookups: { type: 'string', default: '5000' },
    clients: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});
const LOOKUPS = Number(opt.lookups);
const CLIENTS = Number(opt.clients);
const ROUNDS = Number(opt.rounds);
const WAIT_MS = 100;

const quiet = new Emitter(pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() })));

function lookupOnce(store: TieredStore, client: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => store.lookup(client, null, (_o: null, _r: VerdictRecord | null) => resolve(performance.now() - t0)));
}

function observeOnce(store: TieredStore, network: string, now: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) =>
    store.observeShared(network, now, { minDelayMs: 60_000, maxDelayMs: 3_600_000, ttlMs: 86_400_000 }, null, (_o: null, _d: GreylistDecision | null) => resolve(performance.now() - t0)));
}

async function lookups(url: string): Promise<Record<string, unknown>> {
  const tier = new RedisTier({ config: { url, sentinels: [], sentinel_master: 'mymaster', cluster: [], prefix: 'bench:', timeout: 1000, connect_timeout: 1000, pending_writes: 100_000 }, emitter: quiet, firstSeenKeepMs: 3_600_000 });
  const store = new TieredStore(new MemoryStore(1_000_000), tier);
  while (!tier.up) await new Promise((r) => setTimeout(r, 20));
  const now = Date.now();
  const rec = withPasses(null, [[TestIndex.pregreet, now + 3_600_000], [TestIndex.dnsbl, now + 3_600_000]]);
  const addr = (i: number, net3: number): string => `10.${net3}.${(i >>> 8) & 255}.${i & 255}`;
  for (let i = 0; i < LOOKUPS; i++) store.set(addr(i, 1), rec);
  while (tier.counts.writes < LOOKUPS) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));

  const mem: number[] = [];
  for (let i = 0; i < LOOKUPS; i++) {
    const c = addr(i, 1);
    const t0 = process.hrtime.bigint();
    const r = store.get(c);
    const t1 = process.hrtime.bigint();
    if (r === undefined) throw new Error('memory miss');
    mem.push(Number(t1 - t0) / 1e6);
  }
  const hit: number[] = [];
  const miss: number[] = [];
  const obs: number[] = [];
  // Interleaved, so that a disturbance on the shared machine hits every series alike.
  for (let i = 0; i < LOOKUPS; i++) {
    hit.push(await lookupOnce(store, addr(i, 1)));
    miss.push(await lookupOnce(store, addr(i, 2)));
    obs.push(await observeOnce(store, `10.3.${i & 255}.${(i >>> 8) & 255}/32`, now));
  }
  if (tier.counts.hits !== LOOKUPS || tier.counts.misses !== LOOKUPS) throw new Error(`hits ${tier.counts.hits} misses ${tier.counts.misses}`);
  await tier.close();
  const ms = (xs: number[]) => {
    const p = percentiles(xs.map((x) => x * 1000));
    return { n: p.n, p50_us: round(p.p50, 2), p99_us: round(p.p99, 2) };
  };
  return { memory_hit: ms(mem), redis_hit: ms(hit), redis_miss: ms(miss), redis_greylist_script: ms(obs) };
}

function greetOnce(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no greeting from ${localAddress}: ${JSON.stringify(got)}`));
    }, 10_000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
      if (/^220 [^\r\n]*\r\n/m.test(got)) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
        s.destroy();
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function greetings(url: string): Promise<Record<string, unknown>> {
  const configs: Array<{ name: string; raw: Record<string, unknown> }> = [];
  for (const grey of [false, true]) {
    for (const store of ['memory', 'redis']) {
      configs.push({
        name: `${store}${grey ? '+greylist' : ''}`,
        raw: {
          hostname: 'screen.test', listen: ['127.0.0.1:0'], backend: { address: 'sink:0' }, limits: { max_per_client: 0 },
          pregreet: { wait: `${WAIT_MS}ms` }, log: { level: 'warn' },
          ...(grey ? { greylist: { enable: true, min_delay: '0s', max_delay: '1h' } } : {}),
          cache: store === 'redis' ? { store, redis: { url, prefix: 'benchg:', timeout: '50ms' } } : { store },
        },
      });
    }
  }
  const procs: ScreenerProc[] = [];
  for (const c of configs) procs.push(await startScreener(c.raw, [], { startTimeoutMs: 20_000 }));
  await new Promise((r) => setTimeout(r, 500)); // Redis connected
  // Paired: each client index is greeted by every configuration back to back (the order rotating),
  // so a disturbance of the shared machine hits the pair alike; the differences are quoted.
  const all: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c.name, []]));
  const ports = procs.map((p) => Number(p.listen[0]?.split(':').pop()));
  let n = 0;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < CLIENTS; i++) {
        for (let j = 0; j < configs.length; j++) {
          const k = (i + j) % configs.length;
          n++;
          const ms = await greetOnce(ports[k] as number, `127.${100 + ((n >>> 16) & 63)}.${(n >>> 8) & 255}.${n & 255}`);
          all[(configs[k] as { name: string }).name]?.push(ms - WAIT_MS);
        }
      }
    }
  } finally {
    for (const p of procs) await p.stop();
  }
  const out: Record<string, unknown> = {};
  for (const c of configs) {
    const p = percentiles(all[c.name] ?? []);
    out[c.name] = { added_p50_ms: round(p.p50, 2), added_p90_ms: round(p.p90, 2), added_p99_ms: round(p.p99, 2), n: p.n };
  }
  const diff = (a: string, b: string): Record<string, number> => {
    const xs = (all[a] ?? []).map((x, i) => x - ((all[b] ?? [])[i] ?? 0));
    const p = percentiles(xs);
    return { p10_ms: round(percentile(xs, 10), 2), p50_ms: round(p.p50, 2), p90_ms: round(p.p90, 2) };
  };
  out['redis_minus_memory'] = diff('redis', 'memory');
  out['redis_minus_memory_greylist'] = diff('redis+greylist', 'memory+greylist');
  return out;
}

function percentile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((q / 100) * s.length) - 1))] ?? 0;
}

const redis = await startRedis();
try {
  const result = {
    machine: machineInfo(),
    when: new Date().toISOString(),
    note: 'shared 2-core machine: compare within this run; greeting = connect -> final "220 " minus the 100 ms greet wait',
    lookups: await lookups(redis.url),
    greeting: await greetings(redis.url),
  };
  console.log(JSON.stringify(result, null, 2));
  if (opt.out !== undefined) writeFileSync(opt.out, JSON.stringify(result, null, 2) + '\n');
} finally {
  killAllScreeners();
  await redis.stop();
}
