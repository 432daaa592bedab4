/*
 * bench/log/stall.ts - which log writer keeps the event loop free when stdout's reader stops reading.
 *
 * Usage: node dist/bench/log/stall.js [seconds=3] [rate=10000]
 * For each writer, a child process logs `rate` JSON lines a second for `seconds` into
 * stdout, a pipe to `sleep` (a reader that never reads), while a 5 ms interval
 * measures how late the loop runs. Writers:
 *   ours         log/out-fd.ts (a non-blocking net.Socket on fd 1, bounded, drops counted)
 *   pino-sync    pino.destination({ sync: true }): what the screener used before
 *   sonic-async  pino.destination({ sync: false, maxLength: 4 MiB }): sonic-boom's own
 *                bounded async mode (drops reported by its 'drop' event)
 * Each child reports its worst loop lag, the lines offered, dropped, and whether
 * its exit-time flush came back (ours: flush(2000); sonic: flushSync in a try),
 * then the parent kills the pipeline by PID.
 */
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openFd } from '../../src/log/out-fd.js';

const LIMIT = 4 * 1024 * 1024;
const LINE = JSON.stringify({ level: 30, time: 0, hostname: 'vm', event: 'CONNECT', client: '192.0.2.1', port: 40000, local: '127.0.0.1', local_port: 25, msg: 'CONNECT from [192.0.2.1]:40000 to [127.0.0.1]:25' }) + '\n';

async function child(kind: string, seconds: number, rate: number, report: string): Promise<void> {
  let dropped = 0;
  let write: (s: string) => void;
  let flush: () => Promise<string>;
  if (kind === 'ours') {
    const out = openFd(1, LIMIT);
    write = (s) => void out.write(s);
    flush = async () => ((await out.flush(2000)) ? 'flushed' : 'gave up after 2 s');
    Object.defineProperty(globalThis, 'dropped', { get: () => out.dropped });
  } else {
    const d = pino.destination({ dest: 1, sync: kind === 'pino-sync', ...(kind === 'sonic-async' ? { maxLength: LIMIT } : {}) });
    d.on('drop', () => dropped++);
    d.on('error', () => undefined);
    write = (s) => void d.write(s);
    flush = async () => {
      // flushSync would block for as long as the reader does; time one try in a child of its own is not needed:
      // sonic-boom's async flush waits for the write in flight, which never completes while the pipe is full.
      const r = await Promise.race([new Promise<string>((res) => d.flush((e) => res(e ? `error ${e.message}` : 'flushed'))),
        new Promise<string>((res) => setTimeout(() => res('no answer after 2 s'), 2000))]);
      return r;
    };
  }
  let maxLag = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - 5);
    last = now;
  }, 5);
  let offered = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const burst = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (offered < due) {
        write(LINE);
        offered++;
      }
      if (performance.now() - t0 >= seconds * 1000) {
        clearInterval(burst);
        resolve();
      }
    }, 10);
  });
  clearInterval(tick);
  const elapsed = performance.now() - t0;
  const f0 = performance.now();
  const flushed = await flush();
  const ours = (globalThis as { dropped?: number }).dropped;
  const res = { kind, seconds: Math.round(elapsed) / 1000, offered, dropped: ours ?? dropped, maxLagMs: Math.round(maxLag * 10) / 10,
    flush: flushed, flushMs: Math.round(performance.now() - f0) };
  (await import('node:fs')).writeFileSync(report, JSON.stringify(res));
  process.exit(0);
}

async function parent(seconds: number, rate: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'log-stall-'));
  const self = fileURLToPath(import.meta.url);
  for (const kind of ['ours', 'sonic-async', 'pino-sync']) {
    const report = join(dir, `${kind}.json`);
    // sleep reads nothing: the pipe fills (64 KiB) and stays full.
    const sh = spawn('sh', ['-c', `exec node ${self} child ${kind} ${seconds} ${rate} ${report} | sleep ${seconds + 8}`], { stdio: 'ignore', detached: true });
    const deadline = Date.now() + (seconds + 6) * 1000;
    let text = '';
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        text = readFileSync(report, 'utf8');
        break;
      } catch {
        /* not yet */
      }
    }
    if (sh.pid !== undefined) {
      try {
        process.kill(-sh.pid, 'SIGKILL'); // the pipeline's own process group, started above
      } catch {
        /* already gone */
      }
    }
    console.log(text !== '' ? text : JSON.stringify({ kind, result: `no report within ${seconds + 6} s: the loop was stalled throughout` }));
  }
  rmSync(dir, { recursive: true, force: true });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'child') await child(rest[0] ?? 'ours', Number(rest[1]), Number(rest[2]), rest[3] ?? '/dev/null');
else await parent(Number(mode ?? 3), Number(rest[0] ?? 10000));
