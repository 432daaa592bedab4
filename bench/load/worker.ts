/*
 * bench/load/worker.ts - the client side of the zombie load: one forked process
 * holds up to ~9,000 sockets (its own 20,000-fd limit) and takes orders from
 * the parent over IPC.
 *
 * Exports: runWorker(exitBy). The IPC messages are in protocol.ts, the legit
 *   clients' timing in timing.ts.
 * Zombie kinds:
 *   idle   connect and say nothing; held once the first bytes (the "220-"
 *          teaser) arrive, i.e. once the server has accepted it.
 *   hold   talk first ("EHLO" at once), then fall silent once the greeting's
 *          final "220 " arrives: held in the screener's dummy SMTP engine.
 *   screen talk first, then play the bot to the end (EHLO, MAIL, RCPT, QUIT):
 *          screened when the server refuses it (5xx at RCPT, or 521).
 * Connects are paced: at most `pendingCap` sockets that have not yet seen a
 * byte from the server (the server has not accepted them: they sit in its
 * listen backlog) and, when `rate` > 0, at most `rate` connects a second.
 * Legit clients (TimeCmd) are timed from connect() to the final "220 " line,
 * then say QUIT. Every loop here is bounded in count and by a deadline, and
 * the process exits by itself at `exitBy` or when the parent goes away.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sourceAddress, type OpenCmd, type WorkerCmd, type WorkerMsg, type ZombieCounts, type ZombieKind } from './protocol.js';
import { runTime } from './timing.js';

const EHLO = 'EHLO zombie.invalid\r\n';

const counts: ZombieCounts = {
  started: 0, pending: 0, accepted: 0, waiting: 0, held: 0, screened: 0, refused: 0, failed: 0, lost: 0, passed: 0, open: 0,
};
const errors: Record<string, number> = {};
const sockets = new Set<Socket>();
const latencies: number[] = [];
let firstVerdictAt = 0;
let lastVerdictAt = 0;
let closing = false;

function send(msg: WorkerMsg): void {
  if (process.connected) process.send?.(msg);
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function rssKb(): number {
  return Math.round(process.memoryUsage.rss() / 1024);
}

/** A reply that turned a zombie away: counted, and its code kept in `errors` ("reply 421"). */
function refusedBy(code: string): void {
  counts.refused++;
  const k = `reply ${code.replace(/[^\x20-\x7e]/g, '?')}`;
  errors[k] = (errors[k] ?? 0) + 1;
}

type ZState = 'pending' | 'greet' | 'ehlo' | 'mail' | 'rcpt' | 'quit' | 'held' | 'done';

/** One zombie: its socket, what it waits for, and unparsed input. */
class Zombie {
  state: ZState = 'pending';
  buf = '';
  readonly t0 = performance.now();
  constructor(readonly kind: ZombieKind, readonly sock: Socket, readonly onSettled: () => void) {}

  /** Leave a state; a hold zombie waiting for its greeting stops waiting. */
  set(next: ZState): void {
    if (this.kind === 'hold' && this.state === 'greet') counts.waiting--;
    this.state = next;
  }

  data(chunk: Buffer): void {
    if (this.state === 'pending') {
      counts.pending--;
      counts.accepted++;
      this.onSettled();
      if (this.kind === 'idle') {
        if (chunk[0] === 0x32) { // "2xx": the teaser (or a server's whole greeting)
          counts.held++;
          this.state = 'held';
        } else {
          refusedBy(chunk.toString('latin1', 0, 3));
          this.state = 'done';
        }
        return;
      }
      this.state = 'greet';
      if (this.kind === 'hold') counts.waiting++;
    }
    if (this.state === 'held' || this.state === 'done') return;
    this.buf += chunk.toString('latin1');
    let nl = this.buf.indexOf('\n');
    while (nl >= 0 && this.listening()) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.line(line);
      nl = this.buf.indexOf('\n');
    }
    if (this.buf.length > 4096) this.buf = ''; // a server that never ends a line: not ours to parse
  }

  /** Still reading replies (not held silent, not finished). A method: `state` changes under line(). */
  listening(): boolean {
    return this.state !== 'done' && this.state !== 'held';
  }

  line(line: string): void {
    if (line.length < 4 || line[3] === '-') return; // continuation lines (the "220-" teaser among them)
    const code = line.charCodeAt(0) - 0x30;
    if (this.state === 'greet') {
      if (code === 2) {
        if (this.kind === 'hold') {
          counts.held++;
          this.set('held');
          this.buf = '';
          return;
        }
        this.sock.write(EHLO);
        this.state = 'ehlo';
        return;
      }
    } else if (this.state === 'ehlo' && code === 2) {
      this.sock.write('MAIL FROM:<bot@zombie.invalid>\r\n');
      this.state = 'mail';
      return;
    } else if (this.state === 'mail' && code === 2) {
      this.sock.write('RCPT TO:<victim@example.test>\r\n');
      this.state = 'rcpt';
      return;
    } else if (this.state === 'rcpt' && code === 2) {
      counts.passed++;
      this.quit();
      return;
    } else if (this.state === 'quit') {
      this.state = 'done';
      this.sock.end();
      return;
    }
    if (code === 5 && this.kind === 'screen') {
      counts.screened++;
      latencies.push(performance.now() - this.t0);
      lastVerdictAt = Date.now();
      if (firstVerdictAt === 0) firstVerdictAt = lastVerdictAt;
      if (this.state === 'rcpt') this.quit(); // 550 at RCPT: say goodbye as a bot would not, to close cleanly
      else this.finish(); // 521: the server closes
      return;
    }
    refusedBy(line.slice(0, 3));
    this.finish();
  }

  quit(): void {
    this.sock.write('QUIT\r\n');
    this.state = 'quit';
  }

  finish(): void {
    this.set('done');
    this.sock.end();
  }

  closed(): void {
    counts.open--;
    sockets.delete(this.sock);
    switch (this.state) {
      case 'pending':
        counts.pending--;
        counts.failed++;
        this.onSettled();
        break;
      case 'held':
        counts.held--;
        if (!closing) counts.lost++;
        break;
      case 'done':
        break;
      default:
        if (!closing) counts.failed++;
    }
    this.set('done');
    if (this.kind === 'screen') this.onSettled();
  }
}

function openZombie(c: OpenCmd, i: number, onSettled: () => void): void {
  const sock = connect({ host: c.target.host, port: c.target.port, localAddress: sourceAddress(c.base, i), noDelay: true });
  const z = new Zombie(c.kind, sock, onSettled);
  counts.started++;
  counts.pending++;
  counts.open++;
  sockets.add(sock);
  if (c.kind !== 'idle') sock.once('connect', () => sock.write(EHLO)); // talks first
  sock.on('data', (chunk: Buffer) => z.data(chunk));
  sock.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? 'error';
    errors[code] = (errors[code] ?? 0) + 1;
  });
  sock.on('close', () => z.closed());
}

function runOpen(c: OpenCmd): void {
  const t0 = Date.now();
  let issued = 0;
  let capSince = 0;
  let capWaitMs = 0;
  let lastAt = t0;
  let reported = false;
  let scheduled = false;
  const done = (): boolean =>
    c.kind === 'screen' ? counts.open === 0 : counts.pending === 0 && counts.waiting === 0;
  const report = (stoppedBy: 'done' | 'deadline'): void => {
    if (reported) return;
    reported = true;
    clearInterval(timer);
    clearInterval(progress);
    if (capSince > 0) capWaitMs += Date.now() - capSince;
    send({
      type: 'opened', counts: { ...counts }, errors, stoppedBy, capWaitMs, firstAt: t0, lastAt,
      latencies, firstVerdictAt, lastVerdictAt, cpuMs: cpuMs(), rssKb: rssKb(),
    });
  };
  const tick = (): void => {
    scheduled = false;
    if (reported) return;
    const now = Date.now();
    if (now >= c.deadline) {
      report('deadline');
      return;
    }
    let allowed = c.rate > 0 ? Math.floor(((now - t0) * c.rate) / 1000) + 1 - issued : c.count;
    while (issued < c.count && allowed > 0 && counts.pending < c.pendingCap) {
      openZombie(c, c.first + issued, settled);
      issued++;
      allowed--;
    }
    const capped = issued < c.count && counts.pending >= c.pendingCap;
    if (capped && capSince === 0) capSince = now;
    if (!capped && capSince > 0) {
      capWaitMs += now - capSince;
      capSince = 0;
    }
    if (issued === c.count && done()) {
      lastAt = now;
      report('done');
    }
  };
  // A server byte (or a close) frees a pending slot: open the next one soon, once per turn.
  function settled(): void {
    lastAt = Date.now();
    if (!scheduled) {
      scheduled = true;
      setImmediate(tick);
    }
  }
  const timer = setInterval(tick, 5);
  const progress = setInterval(() => send({ type: 'progress', counts: { ...counts } }), 1000);
  tick();
}
function closeAll(): void {
  closing = true;
  for (const s of sockets) s.destroy();
  const check = setInterval(() => {
    if (sockets.size === 0) {
      clearInterval(check);
      send({ type: 'closed', counts: { ...counts }, cpuMs: cpuMs(), rssKb: rssKb() });
    }
  }, 20);
}

function exitNow(code: number): void {
  closing = true;
  for (const s of sockets) s.destroy();
  setImmediate(() => process.exit(code));
}

/** runWorker - the worker role's main: obey the parent until told to exit, or until exitBy. */
export function runWorker(exitBy: number): void {
  setTimeout(() => exitNow(3), Math.max(0, exitBy - Date.now())).unref();
  process.on('disconnect', () => exitNow(0));
  process.on('message', (m: WorkerCmd) => {
    switch (m.cmd) {
      case 'open':
        runOpen(m);
        break;
      case 'time':
        void runTime(m, send, cpuMs);
        break;
      case 'close':
        closeAll();
        break;
      case 'exit':
        exitNow(0);
        break;
    }
  });
}
