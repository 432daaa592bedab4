/*
 * bench/load/policy.ts - what asking the policy service costs: the added greeting delay and
 * the screener's CPU per policy call, against the same load without a policy service.
 *
 *   npm run build && node dist/bench/load/policy.js [--sessions N] [--concurrency C] [--rounds R] [--delay MS] [--out FILE]
 *
 * Two screeners run side by side with the pregreet test off (so the greeting waits for
 * nothing but the checks), the built-in sink as backend, and no other test: one asks a
 * policy service (a child process here: node:http answering {"action":"dunno"} after
 * --delay ms, default 1, no ttl so every client is asked), the other has none and hands
 * over at once. A session is connect, the backend's 220, QUIT; its greeting delay is
 * connect -> the 220. Rounds alternate which screener goes first; each round runs N
 * sessions, C at a time, against each. Reported: per screener and round the greeting
 * delay p50/p99 and the screener's CPU (utime+stime from /proc) per session; then the
 * medians over the rounds, the added delay (with - without) and the CPU per policy call
 * (the difference of CPU per session). The machine is shared: quote medians, with that caveat.
 * Loopback only; bounded by the counts and a 10 minute deadline.
 */
import net from 'node:net';
import http from 'node:http';
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startScreener, stopChild, track, killAll, type Target } from './server.js';
import { machineInfo, median, percentiles, round, sampleProc } from './proc.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' },
    delay: { type: 'string' }, out: { type: 'string' }, serve: { type: 'boolean' },
  },
});

if (values.serve === true) {
  // The policy service, in its own process so its work is not the load generator's.
  const delay = Number(values.delay ?? 1);
  let requests = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"action":"dunno"}'), delay);
    });
  });
  srv.keepAliveTimeout = 60_000;
  srv.listen(0, '127.0.0.1', () => {
    const a = srv.address() as net.AddressInfo;
    process.send?.({ port: a.port });
  });
  process.on('message', (m) => {
    if (m === 'count') process.send?.({ requests });
  });
} else {
  await main();
}

/** One session: connect -> the backend's 220 (the greeting delay, ms), then QUIT. */
function session(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let greeted = 0;
    let buf = '';
    const s = net.connect({ host: '127.0.0.1', port });
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      if (greeted === 0 && /^220 /m.test(buf)) {
        greeted = performance.now() - t0;
        s.write('QUIT\r\n');
      }
    });
    s.on('error', reject);
    s.on('close', () => (greeted > 0 ? resolve(greeted) : reject(new Error(`no 220: ${JSON.stringify(buf.slice(0, 200))}`))));
    s.setTimeout(10_000, () => s.destroy(new Error('session timeout')));
  });
}

async function load(t: Target, n: number, c: number): Promise<{ delays: number[]; cpuMs: number }> {
  const pid = t.pid as number;
  const before = sampleProc(pid);
  const delays: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      delays.push(await session(t.listen.port));
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  const after = sampleProc(pid);
  return { delays, cpuMs: (after?.cpuMs ?? 0) - (before?.cpuMs ?? 0) };
}

async function main(): Promise<void> {
  const sessions = Number(values.sessions ?? 2000);
  const concurrency = Number(values.concurrency ?? 10);
  const rounds = Number(values.rounds ?? 3);
  const delay = Number(values.delay ?? 1);
  const deadline = setTimeout(() => {
    killAll();
    process.exit(3);
  }, 600_000);
  const svc = track(fork(fileURLToPath(import.meta.url), ['--serve', '--delay', String(delay)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const port = await new Promise<number>((resolve) => svc.once('message', (m) => resolve((m as { port: number }).port)));
  const spec = {
    greetWaitMs: 6000, action: 'enforce' as const, maxConnections: 5000, commandTimeMs: 10_000, logLevel: 'warn',
    backend: null, nodeArgs: [], traceGc: false, keepFiles: false,
  };
  const withPolicy = await startScreener({ ...spec, extra: { pregreet: { enable: false }, policy: { url: `http://127.0.0.1:${port}/policy`, connections: 16 } } });
  const without = await startScreener({ ...spec, extra: { pregreet: { enable: false } } });
  const targets = { with: withPolicy, without };
  try {
    for (const t of [withPolicy, without]) await load(t, 200, concurrency); // warm-up: JIT, pools, connections
    const runs: Array<{ round: number; policy: boolean; p50: number; p99: number; cpuPerSessionMs: number }> = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const);
      for (const k of order) {
        const { delays, cpuMs } = await load(targets[k], sessions, concurrency);
        const p = percentiles(delays);
        runs.push({ round: r + 1, policy: k === 'with', p50: p.p50, p99: p.p99, cpuPerSessionMs: round(cpuMs / sessions, 4) });
        process.stdout.write(`round ${r + 1} ${k.padEnd(7)} policy: greeting p50 ${p.p50} ms, p99 ${p.p99} ms; CPU ${round(cpuMs / sessions, 4)} ms/session\n`);
      }
    }
    const med = (policy: boolean, f: 'p50' | 'p99' | 'cpuPerSessionMs'): number => median(runs.filter((x) => x.policy === policy).map((x) => x[f]));
    svc.send('count');
    const requests = await new Promise<number>((resolve) => svc.once('message', (m) => resolve((m as { requests: number }).requests)));
    const summary = {
      bench: 'policy', sessions, concurrency, rounds, service_delay_ms: delay, policy_requests: requests,
      with: { p50: med(true, 'p50'), p99: med(true, 'p99'), cpu_ms_per_session: med(true, 'cpuPerSessionMs') },
      without: { p50: med(false, 'p50'), p99: med(false, 'p99'), cpu_ms_per_session: med(false, 'cpuPerSessionMs') },
      added_p50_ms: round(med(true, 'p50') - med(false, 'p50'), 3),
      added_p99_ms: round(med(true, 'p99') - med(false, 'p99'), 3),
      cpu_ms_per_policy_call: round(med(true, 'cpuPerSessionMs') - med(false, 'cpuPerSessionMs'), 4),
      runs, machine: machineInfo(),
    };
    process.stdout.write(`${JSON.stringify({ ...summary, runs: undefined, machine: undefined })}\n`);
    if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    clearTimeout(deadline);
    await withPolicy.stop();
    await without.stop();
    await stopChild(svc, 2000);
  }
}
