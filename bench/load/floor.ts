/*
 * bench/load/floor.ts - the floor: what plain Node does on this machine, for
 * the ratios, and the raw discard backend of the throughput scenario.
 *
 * Exports: runFloorRole(argv, exitBy), startFloor(self, spec, exitBy), FloorSpec.
 * Roles (forks of zombie.ts, each its own process with its own fd limit):
 *   floor hold    accept; write a "220-" teaser; after the greet wait the
 *                 "220 " greeting (input before it is dropped); then EHLO/HELO
 *                 250, MAIL 250, RCPT 550, QUIT 221, anything else 502.
 *                 One timer per connection, no parser beyond splitting lines:
 *                 the least a screener can do and still screen.
 *   floor splice  accept, connect to the backend, pipe() both ways: the
 *                 least a screener's handoff can cost.
 *   raw           the raw discard backend: "220" greeting, "220" to XCLIENT,
 *                 250 to EHLO/HELO, "RAW n" then n bytes counted (not parsed)
 *                 and "250" after the last; QUIT 221.
 * Each listens on 127.0.0.1 with a backlog of 4096 (as the screener), reports
 * its port over IPC, and exits at --exit-by or when the parent goes away.
 */
import { fork } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import type { HostPort } from './protocol.js';
import { stopChild, track } from './server.js';

export interface FloorSpec {
  role: 'floor' | 'raw';
  mode: 'hold' | 'splice';
  greetWaitMs: number;
  backend: HostPort | null;
}

export interface FloorProcess {
  readonly listen: HostPort;
  readonly pid: number | null;
  stop(): Promise<void>;
}

const TEASER = '220-floor.bench.invalid ESMTP\r\n';
const GREETING = '220 floor.bench.invalid ESMTP\r\n';

function arg(argv: string[], name: string): string | undefined {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

/** Calls onLine for each CRLF/LF-terminated line of the socket's input (latin1). */
function lines(sock: Socket, onLine: (line: string) => void): void {
  let buf = '';
  sock.on('data', (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      onLine(line);
      if (sock.destroyed) return;
      nl = buf.indexOf('\n');
    }
    if (buf.length > 4096) buf = '';
  });
}

function verb(line: string): string {
  return line.slice(0, 4).toUpperCase();
}

function holdConn(sock: Socket, waitMs: number): void {
  let greeted = waitMs <= 0;
  sock.write(greeted ? GREETING : TEASER);
  if (!greeted) {
    const t = setTimeout(() => {
      greeted = true;
      sock.write(GREETING);
    }, waitMs);
    sock.once('close', () => clearTimeout(t));
  }
  lines(sock, (line) => {
    if (!greeted) return; // early talk is dropped, as the screener drops it
    switch (verb(line)) {
      case 'EHLO':
      case 'HELO':
      case 'MAIL':
        sock.write('250 2.0.0 Ok\r\n');
        break;
      case 'RCPT':
        sock.write('550 5.7.1 Service unavailable; floor\r\n');
        break;
      case 'QUIT':
        sock.end('221 2.0.0 Bye\r\n');
        break;
      default:
        sock.write('502 5.5.2 Error: command not recognized\r\n');
    }
  });
}

function spliceConn(sock: Socket, backend: HostPort): void {
  const b = connect({ host: backend.host, port: backend.port, noDelay: true });
  b.on('error', () => sock.destroy());
  sock.on('error', () => b.destroy());
  b.pipe(sock);
  sock.pipe(b);
}

function rawConn(sock: Socket): void {
  sock.write('220 raw.bench.invalid ESMTP\r\n');
  let left = 0;
  let buf = '';
  sock.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (left > 0) {
        const n = Math.min(left, chunk.length - at);
        left -= n;
        at += n;
        if (left === 0) sock.write('250 2.0.0 Ok: received\r\n');
        continue;
      }
      const nl = chunk.indexOf(10, at);
      if (nl < 0) {
        buf += chunk.toString('latin1', at);
        if (buf.length > 4096) sock.destroy();
        return;
      }
      const line = buf + chunk.toString('latin1', at, nl);
      buf = '';
      at = nl + 1;
      const v = verb(line);
      if (v === 'RAW ') left = Number.parseInt(line.slice(4), 10) || 0;
      else if (v === 'XCLI') sock.write('220 raw.bench.invalid ESMTP\r\n');
      else if (v === 'QUIT') sock.end('221 2.0.0 Bye\r\n');
      else sock.write('250 2.0.0 Ok\r\n');
      if (v === 'RAW ' && left === 0) sock.write('250 2.0.0 Ok: received\r\n');
    }
  });
}

/** runFloorRole - the floor or raw role's main. */
export function runFloorRole(argv: string[], exitBy: number): void {
  const role = arg(argv, 'role');
  const mode = arg(argv, 'mode') ?? 'hold';
  const waitMs = Number(arg(argv, 'greet-wait') ?? '0');
  const be = arg(argv, 'backend');
  const backend = be === undefined ? null : { host: be.slice(0, be.lastIndexOf(':')), port: Number(be.slice(be.lastIndexOf(':') + 1)) };
  const srv = createServer({ noDelay: true }, (sock) => {
    sock.on('error', () => sock.destroy());
    if (role === 'raw') rawConn(sock);
    else if (mode === 'splice' && backend !== null) spliceConn(sock, backend);
    else holdConn(sock, waitMs);
  });
  srv.on('error', () => undefined); // EMFILE at the fd limit: the client sees no accept, as with any server
  const stop = (): void => {
    srv.close();
    setImmediate(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  setTimeout(stop, Math.max(0, exitBy - Date.now())).unref();
  srv.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    const a = srv.address();
    process.send?.({ type: 'floor', port: typeof a === 'object' && a !== null ? a.port : 0 });
  });
}

/** startFloor - a floor or raw-backend process; resolves with its port and PID. */
export function startFloor(self: string, spec: FloorSpec, exitBy: number): Promise<FloorProcess> {
  const args = [`--role=${spec.role}`, `--mode=${spec.mode}`, `--greet-wait=${spec.greetWaitMs}`, `--exit-by=${exitBy}`];
  if (spec.backend !== null) args.push(`--backend=${spec.backend.host}:${spec.backend.port}`);
  const child = track(fork(self, args, { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.role} process did not start within 10 s`));
    }, 10_000);
    child.once('exit', (code) => reject(new Error(`${spec.role} process exited (${code})`)));
    child.once('message', (m: { type: string; port: number }) => {
      clearTimeout(t);
      resolve({ listen: { host: '127.0.0.1', port: m.port }, pid: child.pid ?? null, stop: () => stopChild(child, 5000) });
    });
  });
}
