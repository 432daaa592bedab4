/*
 * bench/load/worker.ts - the client side of the zombie load: one forked process
 * holds up to ~9,000 sockets (its own 20,000-fd limit) and takes orders from
 * the parent over IPC.
 *
 * Exports: runWorker(exitBy), interleave(weights). The IPC messages are in protocol.ts, the legit
 *   clients' timing in timing.ts.
 * Zombie kinds:
 *   idle   connect and say nothing; held once the first bytes (the "220-"
 *          teaser) arrive, i.e. once the server has accepted it.
 *   hold   talk first ("EHLO" at once), then fall silent once the greeting's
 *          final "220 " arrives: held in the screener's dummy SMTP engine.
 *   screen talk first, then play the bot to the end (EHLO, MAIL, RCPT, QUIT):
 *          screened when the server refuses it (5xx at RCPT, or 521).
 *   polite waits for the greeting, then EHLO, MAIL, RCPT: screened on a 5xx
 *          (a DNSBL-listed bot), passed when RCPT is accepted (an unlisted
 *          new client, handed to the backend); both are verdicts, timed.
 *          A 4xx to its RCPT (the deep tests' 450) is refused, as any other
 *          reply, and its time is kept apart (LabelStats.deferredMs).
 *   slow   talks first (so it lands in the dummy engine), then sends one
 *          byte of an endless "HELO aaa..." every dribbleMs until the
 *          server's 421 (command time limit) cuts it: slowloris.
 * A plan (OpenCmd.plan) mixes kinds by weight, each row with its own
 * source addresses; counts are kept per row label as well as in total.
 * Connects are paced: at most `pendingCap` sockets that have not yet seen a
 * byte from the server (the server has not accepted them: they sit in its
 * listen backlog) and, when `rate` > 0, at most `rate` connects a second.
 * Legit clients (TimeCmd) are timed from connect() to the final "220 " line,
 * then say QUIT. Every loop here is bounded in count and by a deadline, and
 * the process exits by itself at `exitBy` or when the parent goes away.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sourceAddress, type LabelStats, type OpenCmd, type WorkerCmd, type WorkerMsg, type ZombieCounts, type ZombieKind } from './protocol.js';
import { runTime } from './timing.js';
import { runXfer } from './xfer.js';

const EHLO = 'EHLO zombie.invalid\r\n';

function zeroCounts(): ZombieCounts {
  return { started: 0, pending: 0, accepted: 0, waiting: 0, held: 0, screened: 0, refused: 0, failed: 0, lost: 0, passed: 0, open: 0, cut: 0 };
}
const counts: ZombieCounts = zeroCounts();
/** Per plan label (or per kind without a plan). */
const byLabel: Record<string, LabelStats> = {};
function statsFor(label: string): LabelStats {
  let st = byLabel[label];
  if (st === undefined) {
    st = { counts: zeroCounts(), latencies: [], cutMs: [], deferredMs: [] };
    byLabel[label] = st;
  }
  return st;
}
/** slow zombies dribbling now, and the one timer that feeds them all. */
const dribbling = new Set<Zombie>();
let dribbleTimer: NodeJS.Timeout | null = null;
const SLOW_LINE = Buffer.from('HELO ');
/** screen/polite zombies not finished yet (a plan is done when none is left). */
let active = 0;
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
function refusedBy(z: Zombie, code: string): void {
  z.bump('refused', 1);
  const k = `reply ${code.replace(/[^\x20-\x7e]/g, '?')}`;
  errors[k] = (errors[k] ?? 0) + 1;
}

type ZState = 'pending' | 'greet' | 'ehlo' | 'mail' | 'rcpt' | 'quit' | 'held' | 'done';

/** One zombie: its socket, what it waits for, and unparsed input. */
class Zombie {
  state: ZState = 'pending';
  buf = '';
  readonly t0 = performance.now();
  /** slow: when the greeting completed, and bytes dribbled so far. */
  greetAt = 0;
  sent = 0;
  readonly st: LabelStats;
  constructor(readonly kind: ZombieKind, readonly sock: Socket, readonly onSettled: () => void, label: string) {
    this.st = statsFor(label);
  }

  bump(k: keyof ZombieCounts, d: number): void {
    counts[k] += d;
    this.st.counts[k] += d;
  }

  /** waits for its greeting before being held (hold, slow). */
  waits(): boolean {
    return this.kind === 'hold' || this.kind === 'slow';
  }

  /** Leave a state; a zombie waiting for its greeting stops waiting. */
  set(next: ZState): void {
    if (this.waits() && this.state === 'greet') this.bump('waiting', -1);
    if (this.kind === 'slow' && this.state === 'held' && next !== 'held') dribbling.delete(this);
    this.state = next;
  }

  verdict(): void {
    const ms = performance.now() - this.t0;
    latencies.push(ms);
    this.st.latencies.push(ms);
    lastVerdictAt = Date.now();
    if (firstVerdictAt === 0) firstVerdictAt = lastVerdictAt;
  }

  data(chunk: Buffer): void {
    if (this.state === 'pending') {
      this.bump('pending', -1);
      this.bump('accepted', 1);
      this.onSettled();
      if (this.kind === 'idle') {
        if (chunk[0] === 0x32) { // "2xx": the teaser (or a server's whole greeting)
          this.bump('held', 1);
          this.state = 'held';
        } else {
          refusedBy(this, chunk.toString('latin1', 0, 3));
          this.state = 'done';
        }
        return;
      }
      this.state = 'greet';
      if (this.waits()) this.bump('waiting', 1);
    }
    if (!this.listening()) return;
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
    return this.state !== 'done' && (this.state !== 'held' || this.kind === 'slow');
  }

  line(line: string): void {
    if (line.length < 4 || line[3] === '-') return; // continuation lines (the "220-" teaser among them)
    const code = line.charCodeAt(0) - 0x30;
    if (this.state === 'held') { // slow: whatever the server says ends the dribble; a 421 is the cut
      if (line.startsWith('421')) {
        this.bump('cut', 1);
        const now = performance.now();
        this.st.cutMs.push(now - this.greetAt);
        this.st.latencies.push(now - this.t0);
      } else refusedBy(this, line.slice(0, 3));
      this.bump('held', -1);
      this.finish();
      return;
    }
    if (this.state === 'greet') {
      if (code === 2) {
        if (this.kind === 'hold' || this.kind === 'slow') {
          this.bump('held', 1);
          this.set('held');
          this.buf = '';
          if (this.kind === 'slow') {
            this.greetAt = performance.now();
            dribbling.add(this);
          }
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
      this.bump('passed', 1);
      if (this.kind === 'polite') this.verdict();
      this.quit();
      return;
    } else if (this.state === 'quit') {
      this.state = 'done';
      this.sock.end();
      return;
    }
    if (code === 5 && (this.kind === 'screen' || this.kind === 'polite')) {
      this.bump('screened', 1);
      this.verdict();
      if (this.state === 'rcpt') this.quit(); // 550 at RCPT: say goodbye as a bot would not, to close cleanly
      else this.finish(); // 521: the server closes
      return;
    }
    if (code === 4 && this.kind === 'polite' && this.state === 'rcpt') this.st.deferredMs.push(performance.now() - this.t0);
    refusedBy(this, line.slice(0, 3));
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
    this.bump('open', -1);
    sockets.delete(this.sock);
    switch (this.state) {
      case 'pending':
        this.bump('pending', -1);
        this.bump('failed', 1);
        this.onSettled();
        break;
      case 'held':
        this.bump('held', -1);
        if (!closing) this.bump('lost', 1);
        break;
      case 'done':
        break;
      default:
        if (!closing) this.bump('failed', 1);
    }
    this.set('done');
    if (this.kind === 'screen' || this.kind === 'polite') {
      active--;
      this.onSettled();
    }
  }
}

/** One byte more for every slow zombie: the next of "HELO aaaa...", a line that never ends. */
function dribble(): void {
  for (const z of dribbling) {
    const b = z.sent < SLOW_LINE.length ? SLOW_LINE.subarray(z.sent, z.sent + 1) : 'a';
    z.sent++;
    z.sock.write(b);
  }
}

function openZombie(c: OpenCmd, kind: ZombieKind, label: string, base: readonly [number, number], i: number, onSettled: () => void): void {
  const sock = connect({ host: c.target.host, port: c.target.port, localAddress: sourceAddress(base, i), noDelay: true });
  const z = new Zombie(kind, sock, onSettled, label);
  z.bump('started', 1);
  z.bump('pending', 1);
  z.bump('open', 1);
  if (kind === 'screen' || kind === 'polite') active++;
  sockets.add(sock);
  if (kind !== 'idle' && kind !== 'polite') sock.once('connect', () => sock.write(EHLO)); // talks first
  sock.on('data', (chunk: Buffer) => z.data(chunk));
  sock.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? 'error';
    errors[code] = (errors[code] ?? 0) + 1;
  });
  sock.on('close', () => z.closed());
}

/**
 * interleave - one cycle of smooth weighted round robin (nginx's): weights
 * [2, 3] give [1, 0, 1, 0, 1], so every kind is spread over the run, not bunched.
 */
export function interleave(weights: readonly number[]): number[] {
  const total = weights.reduce((a, w) => a + Math.max(0, w), 0);
  const cur = weights.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let k = 0; k < weights.length; k++) {
      cur[k] = (cur[k] as number) + Math.max(0, weights[k] as number);
      if ((cur[k] as number) > (cur[best] as number)) best = k;
    }
    cur[best] = (cur[best] as number) - total;
    out.push(best);
  }
  return out.length > 0 ? out : [0];
}

function runOpen(c: OpenCmd): void {
  const t0 = Date.now();
  closing = false; // a soak opens again after a closeAll(): closes count as failures and losses again
  // Verdict times and latencies are per open (counts and byLabel are cumulative).
  firstVerdictAt = 0;
  lastVerdictAt = 0;
  latencies.length = 0;
  let issued = 0;
  let capSince = 0;
  let capWaitMs = 0;
  let lastAt = t0;
  let reported = false;
  let scheduled = false;
  if (c.kind === 'slow' || c.plan?.some((e) => e.kind === 'slow') === true) {
    dribbleTimer ??= setInterval(dribble, Math.max(10, c.dribbleMs));
  }
  // Weighted round robin over the plan rows; each row numbers its own addresses.
  const plan = c.plan ?? [{ label: c.kind, kind: c.kind, base: c.base, weight: 1 }];
  const slots = interleave(plan.map((e) => e.weight));
  const perRow = plan.map(() => 0);
  const done = (): boolean =>
    c.plan === null && c.kind === 'screen' ? counts.open === 0
      : counts.pending === 0 && counts.waiting === 0 && active === 0;
  const report = (stoppedBy: 'done' | 'deadline'): void => {
    if (reported) return;
    reported = true;
    clearInterval(timer);
    if (capSince > 0) capWaitMs += Date.now() - capSince;
    send({
      type: 'opened', counts: { ...counts }, errors, stoppedBy, capWaitMs, firstAt: t0, lastAt,
      latencies, firstVerdictAt, lastVerdictAt, cpuMs: cpuMs(), rssKb: rssKb(), byLabel,
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
      const k = slots[issued % slots.length] as number;
      const e = plan[k] as (typeof plan)[number];
      openZombie(c, e.kind, e.label, e.base, c.first + (perRow[k] as number), settled);
      perRow[k] = (perRow[k] as number) + 1;
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
  tick();
}
function closeAll(): void {
  closing = true;
  for (const s of sockets) s.destroy();
  const check = setInterval(() => {
    if (sockets.size === 0) {
      clearInterval(check);
      if (dribbleTimer !== null) clearInterval(dribbleTimer);
      dribbleTimer = null;
      send({ type: 'closed', counts: { ...counts }, cpuMs: cpuMs(), rssKb: rssKb(), byLabel });
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
  // Counts once a second for the parent's progress line and its waits, whatever runs.
  setInterval(() => send({ type: 'progress', counts: { ...counts } }), 1000).unref();
  process.on('message', (m: WorkerCmd) => {
    switch (m.cmd) {
      case 'open':
        runOpen(m);
        break;
      case 'time':
        void runTime(m, send, cpuMs);
        break;
      case 'xfer':
        void runXfer(m, send, cpuMs);
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
