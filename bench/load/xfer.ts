/*
 * bench/load/xfer.ts - large messages, timed (the throughput scenario).
 *
 * Exports: runXfer(cmd, send, cpuMs).
 * One client at a time connects, waits for the final "220 " line (for a
 * screened client: the backend's greeting through the splice), then sends
 * one message and waits for its reply:
 *   raw   "RAW <n>\r\n" and n bytes; the raw backend (floor.ts) counts them
 *         without parsing and answers "250" after the last: the splice alone.
 *   smtp  EHLO, MAIL, RCPT, DATA, n bytes as 998-octet lines, "."; the
 *         built-in sink parses every line, which then bounds both paths.
 * The time is from the first body byte written to the final reply, written
 * with backpressure (write() until false, then 'drain'). Screened and direct
 * transfers alternate, from the same source address. Bounded by a
 * per-message timeout and a deadline.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sourceAddress, type HostPort, type WorkerMsg, type XferCmd } from './protocol.js';

const CHUNK = 65536;

/** 64 lines of 998 octets + CRLF (no line starts with "."): whole lines, so any multiple of 1000 ends one. */
function smtpBlock(): Buffer {
  const out = Buffer.alloc(64_000, 0x78);
  for (let i = 998; i < out.length; i += 1000) {
    out[i] = 0x0d;
    out[i + 1] = 0x0a;
  }
  return out;
}
const RAW_BLOCK = Buffer.alloc(CHUNK, 0x61);
const SMTP_BLOCK = smtpBlock();

interface Result {
  ms: number;
  fail: string | null;
}

/** Reads reply lines; resolves each expect() with the next final line. */
class Replies {
  #buf = '';
  #waiters: Array<(line: string) => void> = [];
  #lines: string[] = [];
  feed(chunk: Buffer): void {
    this.#buf += chunk.toString('latin1');
    let nl = this.#buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.#buf.slice(0, nl).replace(/\r$/, '');
      this.#buf = this.#buf.slice(nl + 1);
      nl = this.#buf.indexOf('\n');
      if (line.length >= 4 && line[3] === '-') continue;
      const w = this.#waiters.shift();
      if (w !== undefined) w(line);
      else this.#lines.push(line);
    }
  }
  next(): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((r) => this.#waiters.push(r));
  }
}

function writeAll(sock: Socket, block: Buffer, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!sock.write(n === block.length ? block : block.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      resolve();
    };
    sock.once('error', reject);
    pump();
  });
}

async function dialogue(sock: Socket, r: Replies, mode: 'raw' | 'smtp', bytes: number): Promise<number> {
  const want = async (code: string): Promise<void> => {
    const line = await r.next();
    if (!line.startsWith(code)) throw new Error(`reply ${line.slice(0, 3)}`);
  };
  await want('220');
  if (mode === 'raw') {
    sock.write(`RAW ${bytes}\r\n`);
    const t0 = performance.now();
    await writeAll(sock, RAW_BLOCK, bytes);
    await want('250');
    return performance.now() - t0;
  }
  sock.write('EHLO xfer.bench.invalid\r\n');
  await want('250');
  sock.write('MAIL FROM:<bench@xfer.invalid>\r\n');
  await want('250');
  sock.write('RCPT TO:<sink@example.test>\r\n');
  await want('250');
  sock.write('DATA\r\n');
  await want('354');
  const t0 = performance.now();
  await writeAll(sock, SMTP_BLOCK, bytes - (bytes % 1000)); // whole lines
  sock.write('.\r\n');
  await want('250');
  return performance.now() - t0;
}

function one(target: HostPort, local: string, c: XferCmd): Promise<Result> {
  return new Promise((resolve) => {
    const sock = connect({ host: target.host, port: target.port, localAddress: local, noDelay: true });
    const r = new Replies();
    let settled = false;
    const finish = (res: Result): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish({ ms: -1, fail: 'timeout' }), c.timeoutMs);
    sock.on('data', (chunk: Buffer) => r.feed(chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => finish({ ms: -1, fail: err.code ?? 'error' }));
    sock.on('close', () => finish({ ms: -1, fail: 'closed' }));
    dialogue(sock, r, c.mode, c.bytes).then(
      (ms) => {
        sock.write('QUIT\r\n');
        finish({ ms, fail: null });
      },
      (err: Error) => finish({ ms: -1, fail: err.message }),
    );
  });
}

/** runXfer - c.messages transfers each way, alternating; reports through `send`. */
export async function runXfer(c: XferCmd, send: (m: WorkerMsg) => void, cpuMs: () => number): Promise<void> {
  const screened: number[] = [];
  const direct: number[] = [];
  const failures: Record<string, number> = {};
  const note = (what: string, r: Result, into: number[]): void => {
    if (r.fail === null) into.push(r.ms);
    else failures[`${what}: ${r.fail}`] = (failures[`${what}: ${r.fail}`] ?? 0) + 1;
  };
  for (let i = 0; i < c.messages && Date.now() < c.deadline; i++) {
    const local = sourceAddress(c.base, i);
    const pair: Array<['screened' | 'direct', HostPort]> = [['screened', c.target]];
    if (c.direct !== null) pair.push(['direct', c.direct]);
    if (i % 2 === 1) pair.reverse();
    for (const [what, to] of pair) note(what, await one(to, local, c), what === 'screened' ? screened : direct);
  }
  send({ type: 'xfered', screened, direct, failures, cpuMs: cpuMs() });
}
