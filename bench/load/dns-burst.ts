/*
 * bench/load/dns-burst.ts - a burst of DNSBL lookups at once against a healthy but slow DNS
 * server: how many are answered within dnsbl.timeout, for several in-flight caps.
 *
 * Usage: node dist/bench/load/dns-burst.js [--count N] [--latency MS] [--deadline MS]
 *          [--greet-wait MS] [--caps 128,512,...] [--runs N] [--out FILE]
 *
 * The server is the fake responder of the resolver tests (test/dns/fake-server.ts) on loopback,
 * in this process, answering every query after `latency` ms (half the names listed): a recursive
 * resolver with a 200 ms way upstream, or a remote DNSBL. `count` lookups of distinct names are
 * issued in one go (a burst of new clients, one lookup per client and site) through a fresh
 * Resolver with the screener's settings (resolver.timeout 1000 ms, 3 tries, deadline
 * dnsbl.timeout), once per cap. Reported per cap: answers within the deadline and within the
 * greet wait (after which a late answer counts as "not listed"), errors by kind, time to the
 * last result, the most queries the server held at once, and the resolver's CPU.
 * Bounded: count <= 50,000, and every run ends by its deadline. JSON to bench/results/dns-burst.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RESOLVER_DEFAULTS, Resolver } from '../../src/dns/resolver.js';
import { QTYPE, RCODE } from '../../src/dns/types.js';
import { reply, startFakeDns } from '../../test/dns/fake-server.js';
import { machineInfo, median, percentiles, round, type Percentiles } from './proc.js';

interface CapResult {
  cap: number;
  run: number;
  count: number;
  answeredInDeadline: number;
  answeredInGreetWait: number;
  errors: Record<string, number>;
  lastResultMs: number;
  latencyMs: Percentiles;
  serverPeakHeld: number;
  sent: number;
  cpuMs: number;
}

const ZONE = 'dnsbl.test';

function nameOf(i: number): string {
  return `${i & 255}.${(i >> 8) & 255}.${(i >> 16) & 255}.10.${ZONE}`;
}

async function oneRun(cap: number, run: number, count: number, latency: number, deadline: number, greetWait: number): Promise<CapResult> {
  let held = 0;
  let peak = 0;
  const srv = await startFakeDns((m) => {
    const q = m.questions[0];
    if (q === undefined) return 'silent';
    held++;
    if (held > peak) peak = held;
    // The reply leaves `latency` ms later; `held` drops then (a timer of our own, same delay).
    setTimeout(() => { held--; }, latency);
    const listed = (q.name.charCodeAt(0) & 1) === 0;
    const buf = listed
      ? reply(m, { answers: [{ name: q.name, type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] })
      : reply(m, { rcode: RCODE.NXDOMAIN });
    return [{ buf, delayMs: latency }];
  }, { tcp: false });
  const r = new Resolver({ servers: [{ host: srv.host, port: srv.port }], timeoutMs: 1000, tries: 3, deadlineMs: deadline, maxOutstanding: cap });
  const lat = new Float64Array(count);
  const errors: Record<string, number> = {};
  let inDeadline = 0;
  let inGreet = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    all.push(r.lookup(nameOf(i), 'A').then((res) => {
      const ms = performance.now() - t0;
      lat[i] = ms;
      if (res.status === 'error') errors[res.error] = (errors[res.error] ?? 0) + 1;
      else {
        if (ms <= deadline) inDeadline++;
        if (ms <= greetWait) inGreet++;
      }
    }));
  }
  await Promise.all(all);
  const lastResultMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const sent = r.stats().sent;
  await r.close();
  await srv.close();
  return {
    cap, run, count, answeredInDeadline: inDeadline, answeredInGreetWait: inGreet, errors,
    lastResultMs: round(lastResultMs, 1), latencyMs: percentiles(Array.from(lat)), serverPeakHeld: peak, sent,
    cpuMs: round((cpu.user + cpu.system) / 1000, 1),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '3000' },
      latency: { type: 'string', default: '200' },
      deadline: { type: 'string', default: '10000' },
      'greet-wait': { type: 'string', default: '6000' },
      caps: { type: 'string', default: String(RESOLVER_DEFAULTS.maxOutstanding) },
      runs: { type: 'string', default: '3' },
      out: { type: 'string', default: 'bench/results/dns-burst.json' },
    },
  });
  const count = Math.min(50_000, Number(values.count));
  const latency = Number(values.latency);
  const deadline = Number(values.deadline);
  const greetWait = Number(values['greet-wait']);
  const runs = Number(values.runs);
  const caps = values.caps.split(',').map(Number);
  const results: CapResult[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const cap of run % 2 === 1 ? caps : [...caps].reverse()) {
      const r = await oneRun(cap, run, count, latency, deadline, greetWait);
      results.push(r);
      const errs = Object.entries(r.errors).map(([k, v]) => `${k}=${v}`).join(',') || 'none';
      process.stdout.write(
        `run ${run} cap ${String(cap).padStart(5)}  answered ${r.answeredInDeadline}/${count} within ${deadline} ms, ` +
          `${r.answeredInGreetWait} within ${greetWait} ms  errors ${errs}  last ${r.lastResultMs} ms  p50 ${r.latencyMs.p50} ms  ` +
          `server held ${r.serverPeakHeld}  sent ${r.sent}  cpu ${r.cpuMs} ms\n`,
      );
    }
  }
  const summary: Record<string, unknown> = {};
  for (const cap of caps) {
    const rs = results.filter((r) => r.cap === cap);
    summary[String(cap)] = {
      answeredInDeadline: median(rs.map((r) => r.answeredInDeadline)),
      answeredInGreetWait: median(rs.map((r) => r.answeredInGreetWait)),
      errors: median(rs.map((r) => Object.values(r.errors).reduce((a, b) => a + b, 0))),
      lastResultMs: median(rs.map((r) => r.lastResultMs)),
      p50Ms: median(rs.map((r) => r.latencyMs.p50)),
      serverPeakHeld: median(rs.map((r) => r.serverPeakHeld)),
      cpuMs: median(rs.map((r) => r.cpuMs)),
    };
  }
  const out = {
    bench: 'dns-burst',
    at: new Date().toISOString(),
    command: `node dist/bench/load/dns-burst.js --count ${count} --latency ${latency} --deadline ${deadline} --greet-wait ${greetWait} --caps ${caps.join(',')} --runs ${runs}`,
    machine: machineInfo(),
    server: { program: 'test/dns/fake-server.ts (in process)', latencyMs: latency },
    config: { count, deadline, greetWait, runs, caps, resolver: 'timeout 1000 ms, 3 tries' },
    summary,
    runs: results,
  };
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`medians: ${JSON.stringify(summary)}\nwrote ${values.out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
