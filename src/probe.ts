/*
 * probe.ts - `smtpscreen probe`: be any client to a running screener and say
 * what it did.
 *
 * Exports: probe(), ProbeOptions, ProbeResult, ProbeStep, formatProbe(), parseProbeTarget().
 * Connects to a listener that takes a PROXY header from the probe's address
 * (listen[].proxy_protocol v1/v2/any, trusted_proxies naming it), sends a
 * header naming `as` as the client, and runs a scripted dialogue: the greeting
 * (optionally talking before it: --pregreet), EHLO, MAIL, RCPT (optionally
 * pipelined), then QUIT; it stops before DATA unless `deliver`. Every line
 * each way is kept with its time. What the screener did is read from the
 * replies (the screener's own events for the connection are in its log; an
 * admin interface to read them back does not exist yet):
 *   - a `220-` teaser followed by a `220 ` of another text: handed to the
 *     backend at the greeting (that `220 ` is the backend's: which backend);
 *   - a `220 ` with the teaser's text: held by the screener's dummy engine
 *     (enforced failure, greylisting, deep tests), then RCPT says which: 550
 *     rejected, 450 deferred;
 *   - 521 or 421 at the greeting: dropped or refused.
 * Timeouts bound every wait; nothing here runs longer than a few greet waits.
 */
import net from 'node:net';
import { encodeProxyV1, encodeProxyV2 } from './net/proxy-protocol.js';
import { hostPortOf } from './config/host-port.js';

export interface ProbeOptions {
  as: string;
  host: string;
  port: number;
  proxy: 'v1' | 'v2';
  helo: string;
  mail: string;
  rcpt: string;
  pregreet: boolean;
  pipeline: boolean;
  deliver: boolean;
  /** Each wait for a reply, ms (the greeting waits this plus the greet wait). */
  timeoutMs: number;
}

export interface ProbeStep {
  /** ms since connect. */
  readonly at: number;
  /** '>' sent, '<' received, '-' a note. */
  readonly dir: '>' | '<' | '-';
  readonly text: string;
}

export type ProbeOutcome = 'accepted' | 'rejected' | 'deferred' | 'dropped' | 'refused' | 'closed' | 'held';

export interface ProbeResult {
  readonly steps: ProbeStep[];
  readonly outcome: ProbeOutcome;
  /** One sentence: what the screener did. */
  readonly verdict: string;
  /** The backend's greeting, when the client was handed over at the greeting. */
  readonly backend: string | null;
  /** The RCPT reply, or null (not reached). */
  readonly rcpt: string | null;
}

/** HOST:PORT (IPv4 or [IPv6] literal), or a string saying what is wrong. */
export function parseProbeTarget(text: string): { host: string; port: number } | string {
  const hp = hostPortOf(text.trim(), false);
  return typeof hp === 'string' ? `--to ${text}: ${hp}` : hp;
}

class Conn {
  readonly sock: net.Socket;
  readonly steps: ProbeStep[] = [];
  readonly t0 = performance.now();
  #buf = '';
  #lines: string[] = [];
  #closed = false;
  #wake: (() => void) | null = null;

  constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.#buf += d;
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i).replace(/\r$/, '');
        this.#buf = this.#buf.slice(i + 1);
        this.#lines.push(line);
        this.note('<', line);
      }
      this.#wake?.();
    });
    sock.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => this.note('-', `socket error ${e.code ?? e.message}`));
  }

  note(dir: ProbeStep['dir'], text: string): void {
    this.steps.push({ at: Math.round(performance.now() - this.t0), dir, text });
  }

  send(text: string | Buffer, shown?: string): void {
    if (this.sock.writable) this.sock.write(text);
    for (const l of (shown ?? String(text)).split('\r\n')) if (l !== '') this.note('>', l);
  }

  /** The lines of one reply (up to its final "NNN " line), or what came before the close or the timeout. */
  async reply(timeoutMs: number): Promise<string[]> {
    const until = performance.now() + timeoutMs;
    const out: string[] = [];
    for (;;) {
      while (this.#lines.length > 0) {
        const l = this.#lines.shift() as string;
        out.push(l);
        if (/^\d{3}( |$)/.test(l)) return out;
      }
      if (this.#closed) return out;
      const left = until - performance.now();
      if (left <= 0) {
        this.note('-', `no complete reply within ${timeoutMs} ms`);
        return out;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }
}

const codeOf = (lines: readonly string[]): number => Number(/^(\d{3})/.exec(lines.at(-1) ?? '')?.[1] ?? 0);

export async function probe(o: ProbeOptions): Promise<ProbeResult> {
  const sock = net.connect({ host: o.host, port: o.port });
  const c = new Conn(sock);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  c.note('-', `connected to ${o.host}:${o.port} from ${sock.localAddress ?? '?'}:${sock.localPort ?? 0}; pretending to be ${o.as}`);
  const src = { addr: o.as, port: sock.localPort ?? 40000 };
  const dst = { addr: o.host, port: o.port };
  const header = o.proxy === 'v2' ? encodeProxyV2(src, dst) : encodeProxyV1(src, dst);
  c.send(header, o.proxy === 'v2' ? `[PROXY v2 header: ${o.as} port ${src.port}]` : header.toString('latin1'));
  try {
    if (o.pregreet) c.send(`EHLO ${o.helo}\r\n`);
    // The greet wait may be long (pregreet.wait, 6 s by default): the greeting gets its own bound.
    const greeting = await c.reply(o.timeoutMs * 4);
    const gcode = codeOf(greeting);
    const teaser = greeting.find((l) => l.startsWith('220-'));
    const final = greeting.at(-1) ?? '';
    if (gcode === 0) return done(c, 'closed', c.closed ? 'the screener closed the connection without a greeting (PROXY header refused? is the probe\'s address in trusted_proxies?)' : 'no greeting', null, null);
    if (gcode === 521) return done(c, 'dropped', `dropped at the greeting: ${final}`, null, null);
    if (gcode === 421) return done(c, 'refused', `refused at the greeting: ${final}`, null, null);
    let backend: string | null = null;
    let ehlo: string[];
    if (gcode === 220) {
      if (teaser !== undefined && final.slice(4) !== teaser.slice(4)) backend = final;
      ehlo = o.pregreet ? await c.reply(o.timeoutMs) : (c.send(`EHLO ${o.helo}\r\n`), await c.reply(o.timeoutMs));
    } else {
      // Talked early under enforce: no banner, the dummy engine answered the early EHLO.
      ehlo = greeting;
    }
    if (codeOf(ehlo) !== 250) return done(c, 'closed', `EHLO refused: ${ehlo.at(-1) ?? '(nothing)'}`, backend, null);
    const mailCmd = `MAIL FROM:<${o.mail}>\r\n`;
    const rcptCmd = `RCPT TO:<${o.rcpt}>\r\n`;
    let mail: string[];
    let rcpt: string[];
    if (o.pipeline) {
      c.send(mailCmd + rcptCmd);
      mail = await c.reply(o.timeoutMs);
      rcpt = await c.reply(o.timeoutMs);
    } else {
      c.send(mailCmd);
      mail = await c.reply(o.timeoutMs);
      rcpt = codeOf(mail) === 250 ? (c.send(rcptCmd), await c.reply(o.timeoutMs)) : [];
    }
    const r = rcpt.at(-1) ?? null;
    const rcode = codeOf(rcpt);
    const where = backend !== null ? `handed to the backend at the greeting (${backend})` : 'held by the screener (its dummy engine)';
    if (codeOf(mail) !== 250) return done(c, 'closed', `${where}; MAIL refused: ${mail.at(-1) ?? '(nothing)'}`, backend, null);
    // Only a backend accepts a recipient: the dummy engine never does.
    if (rcode === 250 && backend === null) backend = final;
    if (rcode === 250) {
      if (o.deliver) {
        c.send('DATA\r\n');
        if (codeOf(await c.reply(o.timeoutMs)) === 354) {
          c.send(`Subject: smtpscreen probe\r\nFrom: <${o.mail}>\r\nTo: <${o.rcpt}>\r\n\r\nA test message from smtpscreen probe.\r\n.\r\n`);
          await c.reply(o.timeoutMs);
        }
      }
      const how = teaser !== undefined && final.slice(4) !== teaser.slice(4) ? `handed to the backend after the greet wait (${final})` : `handed to the backend at once (${final})`;
      return quit(c, o, 'accepted', `${how}; RCPT accepted: ${r ?? ''}${o.deliver ? '' : ' (stopped before DATA)'}`, backend, r);
    }
    if (rcode >= 500) return quit(c, o, 'rejected', `${where}; RCPT rejected: ${r ?? ''}`, backend, r);
    if (rcode >= 400) return quit(c, o, 'deferred', `${where}; RCPT deferred (greylisted, deep tests, or a tempfail): ${r ?? ''}`, backend, r);
    return quit(c, o, 'held', `${where}; RCPT: ${r ?? '(no reply)'}`, backend, r);
  } finally {
    sock.destroy();
  }
}

async function quit(c: Conn, o: ProbeOptions, outcome: ProbeOutcome, verdict: string, backend: string | null, rcpt: string | null): Promise<ProbeResult> {
  if (!c.closed) {
    c.send('QUIT\r\n');
    await c.reply(o.timeoutMs);
  }
  return done(c, outcome, verdict, backend, rcpt);
}

function done(c: Conn, outcome: ProbeOutcome, verdict: string, backend: string | null, rcpt: string | null): ProbeResult {
  return { steps: c.steps, outcome, verdict, backend, rcpt };
}

/** The transcript and the verdict as lines for a terminal. */
export function formatProbe(r: ProbeResult): string[] {
  const out = r.steps.map((s) => `${String(s.at).padStart(6)} ms ${s.dir === '-' ? '  ' : s.dir === '>' ? '>>' : '<<'} ${s.text}`);
  out.push('', `outcome: ${r.outcome}`, `verdict: ${r.verdict}`);
  return out;
}
