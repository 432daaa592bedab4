/*
 * bench/load/through-postfix.ts - the same legitimate load straight to a real Postfix smtpd and
 * through the screener to it, alternated in one run.
 *
 *   npm run bench:postfix -- [--sessions N] [--concurrency C] [--block B] [--paired P] [--handoff xclient|proxy] [--out FILE] [--cpu-prof DIR] [--cli PATH]
 *
 * A private Postfix (test/helpers/postfix.ts) serves smtpd listeners: plain (the direct
 * path), and XCLIENT or PROXY (--handoff, default xclient: the screener's backend; with proxy
 * the screener sends a PROXY v2 header instead of an XCLIENT round trip). The screener permits every client by its access
 * list (allowlisted: handed over at once, no greet wait), so what is measured is the proxy.
 * A session is connect, the final 220, EHLO, MAIL, RCPT, QUIT (no DATA: the queue manager is
 * not what is compared). Figures:
 *   throughput  N sessions per path, C at a time, in blocks of B alternating direct/screened;
 *               sessions/s of each path and their ratio; CPU per session of the screener and
 *               of Postfix (every Postfix process: the live ones plus what master(8) has
 *               reaped) while each path ran.
 *   latency     P sessions one at a time, each direct then screened back to back:
 *               connect -> 221 of each, and screened - direct (the added latency).
 * --cpu-prof DIR: the screener writes a V8 CPU profile there when it stops (bench/load/cpuprofile.ts reads it).
 * Loopback only; bounded by the counts and a 10 minute deadline.
 */
import net from 'node:net';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startScreener } from './server.js';
import { machineInfo, percentiles, round, sampleProc } from './proc.js';
import { startPostfix } from '../../test/helpers/postfix.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string' }, concurrency: { type: 'string' }, block: { type: 'string' },
    paired: { type: 'string' }, out: { type: 'string' }, 'cpu-prof': { type: 'string' }, cli: { type: 'string' },
    handoff: { type: 'string' },
  },
});
const handoff = values.handoff ?? 'xclient';
if (handoff !== 'xclient' && handoff !== 'proxy') throw new Error(`--handoff: want xclient or proxy; got "${handoff}"`);
const sessions = Number(values.sessions ?? 3000);
const concurrency = Number(values.concurrency ?? 10);
const block = Number(values.block ?? 250);
const paired = Number(values.paired ?? 300);
const deadline = Date.now() + 600_000;

/** One SMTP session: resolves with connect -> 221 in ms; rejects on any unexpected reply. */
function session(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port });
    const steps = ['EHLO bench.invalid\r\n', 'MAIL FROM:<a@bench.invalid>\r\n', 'RCPT TO:<b@example.test>\r\n', 'QUIT\r\n'];
    const want = [/^220 /m, /^250 /m, /^250 /m, /^250 /m, /^221 /m];
    let step = 0;
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`timeout at step ${step}: ${JSON.stringify(buf)}`)), 10_000);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.on('error', fail);
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const re = want[step] as RegExp;
      if (!re.test(buf)) {
        if (/^[45]\d\d /m.test(buf)) fail(new Error(`step ${step}: ${JSON.stringify(buf)}`));
        return;
      }
      buf = '';
      const next = steps[step++];
      if (next !== undefined) s.write(next);
      else {
        clearTimeout(timer);
        resolve(performance.now() - t0);
        s.end();
      }
    });
  });
}

/** n sessions, c at a time. */
async function run(port: number, n: number, c: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n && Date.now() < deadline) {
      next++;
      await session(port);
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
}

/** CPU ms of every Postfix process: live descendants of master plus what master has reaped (cutime + cstime). */
function postfixCpuMs(masterPid: number): number {
  const hz = 100;
  const stats = new Map<number, { ppid: number; own: number; reaped: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'latin1');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(d), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
    } catch {
      // gone
    }
  }
  let ticks = stats.get(masterPid)?.reaped ?? 0;
  for (const [pid, s] of stats) {
    let p = pid;
    for (let hops = 0; hops < 4 && p !== masterPid && p > 1; hops++) p = stats.get(p)?.ppid ?? 0;
    if (p === masterPid) ticks += s.own;
  }
  return (ticks * 1000) / hz;
}

const pf = await startPostfix();
const dir = mkdtempSync(join(tmpdir(), 'smtpscreen-bench-pf-'));
const list = join(dir, 'access');
writeFileSync(list, '127.0.0.0/8 permit\n');
const t = await startScreener({
  greetWaitMs: 1000, action: 'enforce', maxConnections: 10_000, commandTimeMs: 30_000, logLevel: 'warn',
  backend: { host: '127.0.0.1', port: handoff === 'proxy' ? pf.proxyPort : pf.xclientPort },
  nodeArgs: values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`], traceGc: false, keepFiles: false,
  extra: { access: { list }, ...(handoff === 'proxy' ? { backend: { handoff: 'proxy-v2' } } : {}) },
  ...(values.cli !== undefined ? { cli: values.cli } : {}),
});
try {
  const master = pf.masterPid() as number;
  const spid = t.pid as number;
  // Warm both paths (smtpd processes started, caches filled).
  await run(pf.plainPort, 50, concurrency);
  await run(t.listen.port, 50, concurrency);
  const acc = {
    direct: { ms: 0, n: 0, pfCpu: 0 },
    screened: { ms: 0, n: 0, pfCpu: 0, scrCpu: 0 },
  };
  for (let done = 0; done < sessions && Date.now() < deadline; done += block) {
    const n = Math.min(block, sessions - done);
    for (const path of ['direct', 'screened'] as const) {
      const port = path === 'direct' ? pf.plainPort : t.listen.port;
      const p0 = postfixCpuMs(master);
      const s0 = sampleProc(spid);
      const t0 = performance.now();
      await run(port, n, concurrency);
      const ms = performance.now() - t0;
      const s1 = sampleProc(spid);
      const p1 = postfixCpuMs(master);
      acc[path].ms += ms;
      acc[path].n += n;
      acc[path].pfCpu += p1 - p0;
      if (path === 'screened' && s0 !== null && s1 !== null) acc.screened.scrCpu += s1.cpuMs - s0.cpuMs;
    }
  }
  const directRate = (acc.direct.n / acc.direct.ms) * 1000;
  const screenedRate = (acc.screened.n / acc.screened.ms) * 1000;
  // Latency, one at a time: direct then screened, back to back.
  const d: number[] = [];
  const sc: number[] = [];
  const added: number[] = [];
  for (let i = 0; i < paired && Date.now() < deadline; i++) {
    const a = await session(pf.plainPort);
    const b = await session(t.listen.port);
    d.push(a);
    sc.push(b);
    added.push(b - a);
  }
  const result = {
    bench: 'through-postfix', at: new Date().toISOString(), machine: machineInfo(),
    settings: { sessions, concurrency, block, paired, session: 'connect, 220, EHLO, MAIL, RCPT, QUIT', screener: `allowlisted, ${handoff === 'proxy' ? 'PROXY v2' : 'XCLIENT'}` },
    figures: {
      direct_sessions_per_s: round(directRate, 1),
      screened_sessions_per_s: round(screenedRate, 1),
      ratio: round(screenedRate / directRate, 3),
      screener_cpu_ms_per_session: round(acc.screened.scrCpu / acc.screened.n, 3),
      postfix_cpu_ms_per_session_direct: round(acc.direct.pfCpu / acc.direct.n, 3),
      postfix_cpu_ms_per_session_screened: round(acc.screened.pfCpu / acc.screened.n, 3),
      latency_direct_ms: percentiles(d),
      latency_screened_ms: percentiles(sc),
      latency_added_ms: percentiles(added),
    },
  };
  console.log(JSON.stringify(result.figures));
  if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await t.stop();
  await pf.stop();
}
