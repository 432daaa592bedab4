/*
 * demo.ts - `smtpscreen demo`: the screener against a short synthetic burst,
 * with nothing else installed.
 *
 * Exports: runDemo().
 * Starts a screener on 127.0.0.1 (ephemeral port) with the built-in sink as
 * backend and a 1s greet wait, then sends, from many 127.x addresses:
 * pregreeting zombies (talk before the greeting, get 550 at RCPT), zombies that
 * hang up during the wait, and well-behaved clients that deliver one message,
 * each of which then comes back (PASS OLD: handed over at once).
 * Prints the count of every log event and what reached the backend.
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Config } from './config/types.js';
import { startScreener } from './server/screener.js';

export interface DemoOptions {
  zombies: number;
  hangups: number;
  clients: number;
  greetWaitMs: number;
  out: (line: string) => void;
}

/** Read from `sock` until `re` matches the text received so far (or the socket closes). */
function until(sock: Socket, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      clearTimeout(t);
      sock.removeListener('data', onData);
      sock.removeListener('close', done);
      resolve(text);
    };
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (re.test(text)) done();
    };
    const t = setTimeout(done, timeoutMs);
    sock.on('data', onData);
    sock.once('close', done);
  });
}

function open(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function zombie(port: number, addr: string): Promise<void> {
  const s = await open(port, addr);
  s.on('error', () => undefined);
  s.write('EHLO zombie.invalid\r\n');            // talks first: PREGREET
  await until(s, /^220 /m, 10_000);              // the greeting completes after the wait
  s.write('MAIL FROM:<spam@zombie.invalid>\r\n');
  await until(s, /^250 /m, 5_000);
  s.write('RCPT TO:<victim@example.test>\r\n');
  await until(s, /^5\d\d /m, 5_000);             // 550 at RCPT: enforce
  s.end('QUIT\r\n');
  await until(s, /^221 /m, 5_000);
  s.destroy();
}

async function hangup(port: number, addr: string, afterMs: number): Promise<void> {
  const s = await open(port, addr);
  s.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, afterMs));
  s.destroy();
}

async function client(port: number, addr: string): Promise<boolean> {
  const s = await open(port, addr);
  s.on('error', () => undefined);
  const greeting = await until(s, /^220 /m, 15_000);
  if (!/^220 /m.test(greeting)) {
    s.destroy();
    return false;
  }
  const steps: Array<[string, RegExp]> = [
    ['EHLO client.example.test\r\n', /^250 /m],
    ['MAIL FROM:<a@example.test>\r\n', /^250 /m],
    ['RCPT TO:<b@example.test>\r\n', /^250 /m],
    ['DATA\r\n', /^354 /m],
    ['Subject: demo\r\n\r\nhello\r\n.\r\n', /^250 /m],
    ['QUIT\r\n', /^221 /m],
  ];
  for (const [cmd, re] of steps) {
    s.write(cmd);
    if (!re.test(await until(s, re, 5_000))) {
      s.destroy();
      return false;
    }
  }
  s.destroy();
  return true;
}

/** The i-th synthetic client address in 127.<net>.0.0/16 (never .0 or .255). */
function addr(net: number, i: number): string {
  return `127.${net}.${Math.floor(i / 254)}.${(i % 254) + 1}`;
}

export async function runDemo(base: Config, o: DemoOptions): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const sinkStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.length === 0) continue;
        const ev = (JSON.parse(line) as { event?: string }).event ?? '?';
        counts[ev] = (counts[ev] ?? 0) + 1;
      }
      cb();
    },
  });
  const logger = pino({ base: null }, sinkStream);
  const config: Config = {
    ...base,
    listen: [{ address: { host: '127.0.0.1', port: 0 }, proxy_protocol: 'none', trusted_proxies: [], personality: 'auto' }],
    backend: { ...base.backend, address: { host: 'sink', port: 0 }, handoff: 'xclient' },
    pregreet: { ...base.pregreet, enable: true, wait: o.greetWaitMs, action: 'enforce' },
    access: { ...base.access, list: null },
  };
  const scr = await startScreener(config, { logger });
  const port = Number(scr.addresses[0]?.split(':').pop());
  o.out(`smtpscreen demo: screener on ${scr.addresses.join(', ')}, greet wait ${o.greetWaitMs} ms, built-in sink backend`);
  o.out(`sending ${o.zombies} pregreeting zombies, ${o.hangups} that hang up, ${o.clients} well-behaved clients (then again, cached)...`);
  const started = Date.now();
  const jobs: Array<Promise<unknown>> = [];
  for (let i = 0; i < o.zombies; i++) jobs.push(zombie(port, addr(1, i)).catch(() => undefined));
  for (let i = 0; i < o.hangups; i++) jobs.push(hangup(port, addr(3, i), o.greetWaitMs / 3).catch(() => undefined));
  const addrs: string[] = [];
  for (let i = 0; i < o.clients; i++) addrs.push(addr(2, i));
  const first = addrs.map((a) => client(port, a).catch(() => false));
  jobs.push(...first);
  await Promise.all(jobs);
  const t1 = Date.now();
  const again = await Promise.all(addrs.map((a) => client(port, a).catch(() => false)));
  const t2 = Date.now();
  // DISCONNECT events come from 'close' handlers: give them a moment.
  await new Promise((r) => setTimeout(r, 200));
  await scr.close(1000);
  logger.flush();
  const delivered = (await Promise.all(first)).filter(Boolean).length + again.filter(Boolean).length;
  o.out('');
  o.out('log events:');
  for (const [k, v] of Object.entries(counts).sort()) o.out(`  ${k.padEnd(22)} ${v}`);
  const sink = scr.sink;
  o.out('');
  o.out(`backend (built-in sink): ${sink?.stats.sessions ?? 0} sessions, ${sink?.stats.messages ?? 0} messages, ` +
    `${sink?.stats.clients.size ?? 0} distinct client addresses announced by XCLIENT`);
  o.out(`well-behaved deliveries: ${delivered} of ${o.clients * 2} (first round ${t1 - started} ms, cached round ${t2 - t1} ms)`);
  o.out(`zombies reaching the backend: ${[...(sink?.stats.clients.keys() ?? [])].filter((a) => !a.startsWith('127.2.')).length}`);
  return counts;
}
