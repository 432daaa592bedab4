/*
 * test/helpers/workers.ts - what the two workers test files share: a private Postfix and
 * redis-server for the file, a keep-alive timer, the base configuration, and a mail dialogue.
 *
 * Exports: useWorkersEnv, workersOf, toPostfix, finishMail, named, drainsBoth.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { startPostfix, type PostfixInstance } from './postfix.js';
import { startRedis, type RedisServer } from './redis.js';
import { portOf, type ScreenerEvent, type ScreenerProc } from './screener.js';
import { connectClient, type RawClient } from './smtp-client.js';

export interface WorkersEnv {
  /** Set in the file's before() hook. */
  pf: PostfixInstance;
  redis: RedisServer;
  /** Two workers of `accept` on the file's Postfix (XCLIENT) and Redis (a key prefix per call), with `over` on top. */
  config(over?: Record<string, unknown>): Record<string, unknown>;
}

/**
 * Registers the file's before/after hooks. The screener processes are unref'd (a crashed test
 * must not hang the file): while a test waits on one of them (its exit, a worker's restart), a
 * ref'd timer keeps the loop up, so a wait that never ends is that test's timeout, not every
 * test cancelled with "the event loop has already resolved".
 */
export function useWorkersEnv(accept: 'primary' | 'shared', prefix: string): WorkersEnv {
  let keepAlive: NodeJS.Timeout | undefined;
  let n = 0;
  const env = {
    config(over: Record<string, unknown> = {}): Record<string, unknown> {
      return {
        hostname: 'screen.test', listen: ['127.0.0.1:0'], workers: 2, workers_accept: accept,
        backend: { address: `127.0.0.1:${env.pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
        pregreet: { wait: '300ms' }, drain_timeout: '10s', limits: { max_per_client: 0 },
        cache: { store: 'redis', redis: { url: env.redis.url, prefix: `${prefix}${++n}:`, timeout: '100ms' } },
        ...over,
      };
    },
  } as WorkersEnv;
  before(async () => {
    keepAlive = setInterval(() => undefined, 1000);
    [env.pf, env.redis] = await Promise.all([startPostfix(), startRedis()]);
  });
  after(async () => {
    await Promise.all([env.pf?.stop(), env.redis?.stop()]);
    clearInterval(keepAlive);
  });
  return env;
}

export const workersOf = (s: ScreenerProc): Array<{ worker: number; pid: number }> =>
  (s.eventsNamed('STARTED')[0]?.['workers'] as Array<{ worker: number; pid: number }>);

/** A client through the screener up to Postfix's "220 " (PASS NEW after the greet wait, then the handoff). */
export async function toPostfix(s: ScreenerProc, addr: string): Promise<RawClient> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^220 .*\r\n/m, 10_000);
  return c;
}

/** The rest of a mail dialogue on a client at the 220; resolves with the reply to the end of DATA. */
export async function finishMail(c: RawClient, to: string): Promise<string> {
  c.write('EHLO client.test\r\n');
  await c.readUntil(/^250 .*\r\n/m);
  c.write('MAIL FROM:<a@client.test>\r\n');
  await c.readUntil(/^250 .*\r\n/m);
  c.write(`RCPT TO:<${to}>\r\n`);
  await c.readUntil(/^250 .*\r\n/m);
  c.write('DATA\r\n');
  await c.readUntil(/^354 .*\r\n/m);
  c.write('Subject: t\r\n\r\nbody\r\n.\r\n');
  const r = await c.readUntil(/^\d{3} .*\r\n/m);
  c.write('QUIT\r\n');
  return r;
}

export const named = (s: ScreenerProc, name: string, pred: (e: ScreenerEvent) => boolean = () => true): ScreenerEvent[] =>
  s.eventsNamed(name).filter(pred);

/**
 * SIGTERM with one spliced session per worker (`open`, each at Postfix's 220): both workers log
 * STOPPING with it open, both clients still finish their mail (250, and Postfix delivers it to
 * `tag`N@example.test), the primary exits 0 with one STOPPED, not forced.
 */
export async function drainsBoth(s: ScreenerProc, env: WorkersEnv, open: RawClient[], tag: string): Promise<void> {
  const from = s.events.length;
  s.proc.kill('SIGTERM');
  const stopping = await Promise.all([0, 1].map((w) => s.waitForEvent((e) => e['event'] === 'STOPPING' && e['worker'] === w, 10_000, from)));
  for (const e of stopping) assert.equal(e['open'], 1);
  await new Promise((r) => setTimeout(r, 300));
  const replies = await Promise.all(open.map((c, i) => finishMail(c, `${tag}${i}@example.test`)));
  for (const r of replies) assert.match(r, /^250 /);
  assert.equal(await s.exited, 0, s.stderr());
  assert.deepEqual(named(s, 'STOPPED').map((e) => [e['worker'], e['forced']]), [[undefined, 0]]);
  for (let i = 0; i < open.length; i++) await env.pf.waitForLog(new RegExp(`to=<${tag}${i}@example\\.test>, relay=none.*status=sent`));
}
