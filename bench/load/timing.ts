/*
 * bench/load/timing.ts - well-behaved clients, timed (the legit scenario).
 *
 * Exports: runTime(cmd, send, cpuMs).
 * A client is timed from connect() to the final "220 " line (for a screened
 * client: the backend's greeting, after the teaser), then says QUIT and
 * waits for the close, so that one client's teardown does not overlap the
 * next one's measurement. Paired runs time the same client (same source
 * address) screened and direct, alternating which goes first.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sourceAddress, type HostPort, type TimeCmd, type WorkerMsg } from './protocol.js';

interface Timed {
  ms: number;
  fail: string | null;
}

/** timeOne - connect() to the final "220 " line, then QUIT; resolves after the close. */
function timeOne(target: HostPort, local: string, timeoutMs: number): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let ms = -1;
    let fail: string | null = null;
    let buf = '';
    let quitting = false;
    const sock = connect({ host: target.host, port: target.port, localAddress: local, noDelay: true });
    const timer = setTimeout(() => {
      fail ??= ms < 0 ? 'timeout' : null;
      sock.destroy();
    }, timeoutMs);
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (line.length < 4 || line[3] === '-') continue;
        if (quitting) {
          sock.end();
          return;
        }
        if (line.startsWith('220 ')) {
          ms = performance.now() - t0;
          quitting = true;
          sock.write('QUIT\r\n');
        } else {
          fail = `reply ${line.slice(0, 3)}`;
          sock.destroy();
          return;
        }
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (ms < 0) fail ??= err.code ?? 'error';
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (ms < 0) fail ??= 'closed';
      resolve({ ms, fail });
    });
  });
}

/** runTime - one timing phase; reports through `send` once done (bounded by c.deadline and per-client timeouts). */
export async function runTime(c: TimeCmd, send: (m: WorkerMsg) => void, cpuMs: () => number): Promise<void> {
  const screened: number[] = [];
  const direct: number[] = [];
  const diffs: number[] = [];
  const failures: Record<string, number> = {};
  const note = (what: string, t: Timed): boolean => {
    if (t.fail === null) return true;
    const k = `${what}: ${t.fail}`;
    failures[k] = (failures[k] ?? 0) + 1;
    return false;
  };
  const one = async (i: number, keep: boolean): Promise<void> => {
    const local = sourceAddress(c.base, c.first + i);
    if (c.phase === 'new' || c.direct === null) {
      const t = await timeOne(c.target, local, c.timeoutMs);
      if (note('screened', t) && keep) screened.push(t.ms);
      return;
    }
    // Alternate the order so neither side always runs on a warmer machine.
    let s: Timed;
    let d: Timed;
    if (i % 2 === 0) {
      s = await timeOne(c.target, local, c.timeoutMs);
      d = await timeOne(c.direct, local, c.timeoutMs);
    } else {
      d = await timeOne(c.direct, local, c.timeoutMs);
      s = await timeOne(c.target, local, c.timeoutMs);
    }
    const okS = note('screened', s);
    const okD = note('direct', d);
    if (!keep) return;
    if (okS) screened.push(s.ms);
    if (okD) direct.push(d.ms);
    if (okS && okD) diffs.push(s.ms - d.ms);
  };
  const run = async (n: number, keep: boolean): Promise<void> => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < n && Date.now() < c.deadline) await one(next++, keep);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(c.concurrency, n)) }, lane));
  };
  if (c.phase === 'paired' && c.warmup > 0) await run(Math.min(c.warmup, c.count), false);
  await run(c.count, true);
  send({ type: 'timed', phase: c.phase, screened, direct, diffs, failures, cpuMs: cpuMs() });
}
