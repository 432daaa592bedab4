/*
 * Integration: `workers: 2` with `workers_accept: shared`. The real screener
 * (a primary and two workers accepting from one listening socket) in front of
 * a private Postfix (XCLIENT), with a private redis-server as the shared store.
 * Which worker accepts a connection is the kernel's choice; to put a client on
 * a given worker the test stops the other one (SIGSTOP: a stopped process
 * cannot accept, so the running one takes every connection) and resumes it
 * afterwards (SIGCONT), then waits well past the reports' window (2 * STATE_MS
 * plus the delivery) before the next step:
 * - one listening socket shared by the primary and both workers; both serve;
 *   pregreeters are rejected, clean clients' mail reaches Postfix; /metrics
 *   sums the workers and shows their reported counts fall back to 0; a pass
 *   given on the primary's admin socket is PASS OLD in both workers;
 * - limits.max_per_client holds for a client whose connections are in both
 *   workers, limits.max_connections for the host (each worker refuses on its
 *   own count plus the others' as reported), and each worker enters the
 *   stress personality on the host's count;
 * - a burst of connections over limits.max_connections: none is refused below
 *   the limit, the overshoot is what one worker accepted before it learned of
 *   the other's accepts, and once the window has passed both refuse with the
 *   host's true count;
 * - kill -9 of one worker: its clients are cut, the other's finish their
 *   mail, a new worker starts and accepts on the same port;
 * - SIGHUP applies in both workers (a new access list, a new listener that
 *   both accept on), a broken file is refused by the primary;
 *   SIGTERM drains both, exit 0;
 * - SIGUSR1 with log.file: the primary and both workers reopen the file by
 *   name, and both workers' later lines go to the new file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { parse as fromYaml, stringify as toYaml } from 'yaml';
import { useWorkersEnv, workersOf, toPostfix, finishMail, named, drainsBoth } from '../helpers/workers.js';
import { repoRoot, startScreener, portOf, type ScreenerEvent, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { runSwaks } from '../helpers/swaks.js';
import { cliProc } from '../helpers/rsyslog.js';

const tmp = mkdtempSync(join(tmpdir(), 'scr-workers-shared-'));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Well past a report's way through the primary (2 * STATE_MS = 20 ms plus the delivery), on a busy machine. */
const SETTLE_MS = 250;

const env = useWorkersEnv('shared', 'ws');
const config = env.config;

/** Run `fn` while only worker `w` (pid in `pids`) can accept: the other one is stopped meanwhile. */
async function onWorker<T>(pids: number[], w: number, fn: () => Promise<T>): Promise<T> {
  const other = pids[1 - w] as number;
  process.kill(other, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(other, 'SIGCONT');
    await sleep(SETTLE_MS);
  }
}

/** Connect from `addr` and read the first reply line: "220-" (screened) or a 421. */
async function firstLine(s: ScreenerProc, addr: string): Promise<{ c: RawClient; text: string }> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^(220-|421 ).*\r\n/m, 5000);
  return { c, text: c.received() };
}

const run = promisify(execFile);
const CLI = join(repoRoot(), 'dist', 'src', 'cli.js');

describe('workers: 2, workers_accept: shared', { timeout: 300_000 }, () => {
  test('one listening socket for all; both workers serve; pregreeters rejected, clean clients reach Postfix; /metrics; the admin socket', { timeout: 60_000 }, async () => {
    const sock = join(tmp, 'admin.sock');
    const s = await startScreener(config({ admin: { listen: ['127.0.0.1:0'], socket: sock } }));
    try {
      const started = named(s, 'STARTED')[0] as ScreenerEvent;
      assert.equal(started['accept'], 'shared');
      const pids = workersOf(s).map((w) => w.pid);
      assert.equal(pids.length, 2);
      // One listening socket, held by the primary (bound, not listened to there) and both workers.
      const ss = execFileSync('ss', ['-Hltnp', `sport = :${portOf(s)}`], { encoding: 'utf8' });
      assert.equal(ss.trim().split('\n').length, 1, ss);
      for (const pid of [s.pid, ...pids]) assert.match(ss, new RegExp(`pid=${pid},`));

      // A pregreeter on each worker gets the dummy engine, never Postfix.
      const pre = async (a: string): Promise<string> => {
        const c = await connectClient('127.0.0.1', portOf(s), a);
        c.write('EHLO early.test\r\n');
        await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === a, 10_000);
        await sleep(400);
        c.destroy();
        return c.received();
      };
      const early = ['127.0.51.9', '127.0.52.9'];
      for (const [w, a] of early.entries()) assert.doesNotMatch(await onWorker(pids, w, () => pre(a)), /ESMTP Postfix/);
      for (const [w, a] of early.entries()) {
        assert.deepEqual(named(s, 'PREGREET', (e) => e['client'] === a).map((e) => e['worker']), [w]);
      }
      const clean = ['127.0.53.9', '127.0.54.9', '127.0.55.9', '127.0.56.9'];
      const mails = clean.map((a, i) => runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: a, to: `shared${i}@example.test`, timeoutS: 30 }));
      for (const r of await Promise.all(mails)) assert.equal(r.code, 0, r.transcript);
      for (let i = 0; i < clean.length; i++) await env.pf.waitForLog(new RegExp(`to=<shared${i}@example\\.test>, relay=none.*status=sent`));
      assert.deepEqual([...new Set(named(s, 'CONNECT').map((e) => e['worker']))].sort(), [0, 1]);

      // The admin socket is the primary's: a pass given there is PASS OLD whichever worker accepts.
      const passed = '127.0.57.9';
      await run(process.execPath, [CLI, 'cache', 'pass', passed, '--ttl', '1d', '--socket', sock], { timeout: 20_000 });
      for (const w of [0, 1]) {
        const c = await onWorker(pids, w, () => toPostfix(s, passed));
        c.write('QUIT\r\n');
        await c.closed;
      }
      assert.deepEqual(named(s, 'PASS OLD', (e) => e['client'] === passed).map((e) => e['worker']), [0, 1]);
      assert.equal(named(s, 'PASS NEW', (e) => e['client'] === passed).length, 0);

      // /metrics: the events of both workers summed; the counts they report are back to 0 with every client gone.
      await sleep(SETTLE_MS);
      const admin = (started['admin'] as string[])[0] as string;
      const text = await (await fetch(`http://${admin}/metrics`)).text();
      const series = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
      assert.equal(series('smtpscreen_events_total{event="CONNECT"}'), named(s, 'CONNECT').length);
      assert.equal(series('smtpscreen_events_total{event="PREGREET"}'), early.length);
      assert.equal(series('smtpscreen_workers{state="ready"}'), 2);
      for (const w of [0, 1]) assert.equal(series(`smtpscreen_worker_connections{worker="${w}"}`), 0);
      const ready = (await (await fetch(`http://${admin}/readyz`)).json()) as { status: string; listening: string[] };
      assert.deepEqual([ready.status, ready.listening], ['ok', s.listen]);
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('limits.max_per_client and limits.max_connections hold for the host with a client in both workers; stress follows the host', { timeout: 60_000 }, async () => {
    const s = await startScreener(config({ limits: { max_per_client: 3, max_connections: 6 }, pregreet: { wait: '30s' }, stress: { enter_at: 80, leave_at: 20 } }));
    const clients: RawClient[] = [];
    const one = '127.0.61.9';
    const pids = workersOf(s).map((w) => w.pid);
    /** Connect from `addr` while only worker `w` accepts; the first reply line. */
    const via = (w: number, addr: string): Promise<string> => onWorker(pids, w, async () => {
      const { c, text } = await firstLine(s, addr);
      clients.push(c);
      return text;
    });
    try {
      // Two of one client in worker 0, then one in worker 1: 3 on the host. Its fourth, in worker 1, is refused there.
      const got = [await via(0, one), await via(0, one), await via(1, one), await via(1, one)];
      assert.deepEqual(got.map((t) => t.slice(0, 4)), ['220-', '220-', '220-', '421 ']);
      assert.match(got[3] as string, /^421 4\.7\.0/);
      assert.deepEqual(named(s, 'CONNECT', (e) => e['client'] === one).map((e) => e['worker']), [0, 0, 1]);
      const tooMany = named(s, 'TOO MANY CONNECTIONS', (e) => e['client'] === one);
      assert.deepEqual(tooMany.map((e) => [e['worker'], e['count']]), [[1, 3]]);
      // The host holds 3 (2 in worker 0, 1 in worker 1); two more in worker 1 make 5: worker 1 enters stress on the host's count.
      assert.match(await via(1, '127.0.62.9'), /^220-/);
      assert.match(await via(1, '127.0.63.9'), /^220-/);
      const stress = await s.waitForEvent((e) => e['event'] === 'STRESS' && e['state'] === 'enter' && e['worker'] === 1, 5000);
      assert.deepEqual([stress['count'], stress['threshold']], [5, 5]);
      // Worker 0 holds 2 of the 5: told the others' 3, it is in stress too, without a connection of its own.
      const stress0 = await s.waitForEvent((e) => e['event'] === 'STRESS' && e['state'] === 'enter' && e['worker'] === 0, 5000);
      assert.equal(stress0['count'], 5);
      // The sixth, in worker 0, fills the host; the next one in either worker is refused with the host's count.
      assert.match(await via(0, '127.0.64.9'), /^220-/);
      assert.match(await via(0, '127.0.65.9'), /^421 4\.3\.2/);
      assert.match(await via(1, '127.0.66.9'), /^421 4\.3\.2/);
      const busy = named(s, 'ALL PORTS BUSY');
      assert.deepEqual(busy.map((e) => [e['worker'], e['limit'], e['count']]), [[0, 'connections', 6], [1, 'connections', 6]]);
      // The first client's connections end: its fourth is welcome again, in either worker.
      for (const c of clients.splice(0)) c.destroy();
      await sleep(SETTLE_MS);
      assert.match(await via(1, one), /^220-/);
    } finally {
      for (const c of clients) c.destroy();
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('a burst over limits.max_connections: never refused below the limit, overshoot only from the window, exact once it has passed', { timeout: 60_000 }, async (t) => {
    const limit = 8;
    const s = await startScreener(config({ limits: { max_per_client: 0, max_connections: limit }, pregreet: { wait: '30s' } }));
    const clients: RawClient[] = [];
    try {
      const pids = workersOf(s).map((w) => w.pid);
      // 24 at once, both workers accepting: each refuses on its own count plus the other's as last reported.
      const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => firstLine(s, `127.0.91.${10 + i}`)));
      clients.push(...burst.map((b) => b.c));
      const held = burst.filter((b) => b.text.startsWith('220-')).length;
      assert.equal(held + burst.filter((b) => /^421 4\.3\.2/.test(b.text)).length, 24, 'each got the greeting or 421 4.3.2');
      assert.ok(held >= limit, `${held} held: refused below the limit`);
      for (const until = Date.now() + 5000; named(s, 'CONNECT').length < held && Date.now() < until;) await sleep(50);
      const per = [0, 1].map((w) => named(s, 'CONNECT', (e) => e['worker'] === w).length);
      assert.equal(per[0]! + per[1]!, held);
      // Each worker alone never passes the limit, so the overshoot is at most the smaller worker's share.
      assert.ok(held - limit <= Math.min(per[0]!, per[1]!), `overshoot ${held - limit} with ${per.join(' + ')}`);
      t.diagnostic(`burst of 24 at limit ${limit}: held ${held} (worker 0: ${per[0]}, worker 1: ${per[1]})`);
      // Once the window has passed, each worker knows the host's count: the next connection is refused in either, with the true count.
      await sleep(SETTLE_MS);
      const from = s.events.length;
      for (const w of [0, 1]) assert.match(await onWorker(pids, w, async () => (await firstLine(s, `127.0.92.${10 + w}`)).text), /^421 4\.3\.2/);
      const busy = named(s, 'ALL PORTS BUSY', (e) => s.events.indexOf(e) >= from);
      assert.deepEqual(busy.map((e) => [e['worker'], e['count']]), [[0, held], [1, held]]);
    } finally {
      for (const c of clients) c.destroy();
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('kill -9 of one worker: its clients are cut, the other worker\'s finish their mail, a new worker accepts on the same port', { timeout: 60_000 }, async () => {
    const s = await startScreener(config());
    try {
      const [w0, w1] = workersOf(s);
      const pids = [w0?.pid ?? 0, w1?.pid ?? 0];
      const c0 = await onWorker(pids, 0, () => Promise.all(['127.0.71.9', '127.0.72.9'].map((a) => toPostfix(s, a))));
      const c1 = await onWorker(pids, 1, () => Promise.all(['127.0.73.9', '127.0.74.9'].map((a) => toPostfix(s, a))));
      const from = s.events.length;
      process.kill(w0?.pid ?? 0, 'SIGKILL');
      const exited = await s.waitForEvent((e) => e['event'] === 'WORKER EXITED', 10_000, from);
      assert.deepEqual([exited['worker'], exited['pid'], exited['signal'], exited['open'], exited['restart_in_ms']], [0, w0?.pid, 'SIGKILL', 2, 1000]);
      await Promise.all(c0.map((c) => c.closed));
      const replies = await Promise.all(c1.map((c, i) => finishMail(c, `sharedsurvivor${i}@example.test`)));
      for (const r of replies) assert.match(r, /^250 /);
      for (let i = 0; i < c1.length; i++) await env.pf.waitForLog(new RegExp(`to=<sharedsurvivor${i}@example\\.test>, relay=none.*status=sent`));
      const back = await s.waitForEvent((e) => e['event'] === 'WORKER STARTED' && e['worker'] === 0, 15_000, from);
      assert.notEqual(back['pid'], w0?.pid);
      assert.equal(back['restarts'], 1);
      // The new worker 0 accepts on the socket worker 1 kept: the same port.
      const fresh = '127.0.75.9';
      const c = await onWorker([back['pid'] as number, w1?.pid ?? 0], 0, () => toPostfix(s, fresh));
      assert.match(await finishMail(c, 'sharedreborn@example.test'), /^250 /);
      const q = await toPostfix(s, '127.0.76.9');
      q.write('QUIT\r\n');
      q.end();
      await q.closed;
      assert.match(q.received(), /^221 /m, 'QUIT with a half-close gets Postfix\'s 221');
      const conn = await s.waitForEvent((e) => e['event'] === 'CONNECT' && e['client'] === fresh);
      assert.equal(conn['worker'], 0);
      assert.equal(named(s, 'WORKER EXITED').length, 1, 'the other worker did not die');
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('SIGHUP: a changed access list applies in both workers, a broken file is refused by the primary; SIGTERM drains both, exit 0', { timeout: 60_000 }, async () => {
    const access = join(tmp, 'access');
    writeFileSync(access, '192.0.2.0/24 permit\n');
    const s = await startScreener(config({ access: { list: access }, admin: { listen: ['127.0.0.1:0'] } }));
    try {
      const pids = workersOf(s).map((w) => w.pid);
      const admin = (named(s, 'STARTED')[0]?.['admin'] as string[])[0] as string;
      // The reload also adds a listener: each worker listens on it through cluster, the primary's /readyz names it.
      const port = await new Promise<number>((resolve) => {
        const srv = createServer().listen(0, '127.0.0.1', () => {
          const p = (srv.address() as { port: number }).port;
          srv.close(() => resolve(p));
        });
      });
      const cfg = fromYaml(readFileSync(s.configFile, 'utf8')) as Record<string, unknown>;
      writeFileSync(s.configFile, toYaml({ ...cfg, listen: ['127.0.0.1:0', `127.0.0.1:${port}`] }));
      writeFileSync(access, '127.0.81.0/24 permit\n');
      let from = s.events.length;
      s.proc.kill('SIGHUP');
      const oks = await Promise.all([0, 1].map((w) => s.waitForEvent((e) => e['event'] === 'RELOAD' && e['worker'] === w, 10_000, from)));
      for (const r of oks) assert.deepEqual([r['ok'], r['generation'], r['access_entries'], r['added']], [true, 2, 1, [`127.0.0.1:${port}`]]);
      for (const w of [0, 1]) {
        const a = `127.0.81.${10 + w}`;
        const c = await onWorker(pids, w, async () => {
          const x = await connectClient('127.0.0.1', port, a);
          await x.readUntil(/^220 .*\r\n/m, 10_000);
          return x;
        });
        c.write('QUIT\r\n');
        await c.closed;
        const e = await s.waitForEvent((x) => x['event'] === 'ALLOWLISTED' && x['client'] === a);
        assert.equal(e['worker'], w);
      }
      const ready = (await (await fetch(`http://${admin}/readyz`)).json()) as { listening: string[] };
      assert.deepEqual(ready.listening, [...s.listen, `127.0.0.1:${port}`]);
      from = s.events.length;
      writeFileSync(s.configFile, 'hostname: screen.test\nlisten: [127.0.0.1:0\n');
      s.proc.kill('SIGHUP');
      const bad = await s.waitForEvent((e) => e['event'] === 'RELOAD', 10_000, from);
      assert.deepEqual([bad['ok'], bad['worker'], bad['generation'], bad['code']], [false, undefined, 2, 'SCR_ERR_CONFIG']);
      await sleep(500);
      assert.equal(named(s, 'RELOAD', (e) => s.events.indexOf(e) >= from).length, 1, 'no worker reloaded');

      // SIGTERM with a spliced session in each worker: both finish their mail, then the exit is 0.
      const open = [await onWorker(pids, 0, () => toPostfix(s, '127.0.82.9')), await onWorker(pids, 1, () => toPostfix(s, '127.0.83.9'))];
      await drainsBoth(s, env, open, 'shareddrained');
    } finally {
      await s.stop();
    }
  });

  test('SIGUSR1 with log.file: the primary and both workers reopen it by name; both workers\' later lines go to the new file', { timeout: 60_000 }, async () => {
    const file = join(tmp, 'shared.log');
    const lines = (f: string): ScreenerEvent[] => {
      let text = '';
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ScreenerEvent);
    };
    const waitLine = async (f: string, pred: (e: ScreenerEvent) => boolean): Promise<ScreenerEvent> => {
      for (const until = Date.now() + 10_000; ;) {
        const e = lines(f).find(pred);
        if (e !== undefined) return e;
        if (Date.now() > until) throw new Error(`no such line in ${f}; the last: ${JSON.stringify(lines(f).slice(-3))}`);
        await sleep(50);
      }
    };
    const scr = await cliProc(config({ log: { destination: 'file', file, format: 'json' } }));
    try {
      const started = await waitLine(file, (e) => e['event'] === 'STARTED');
      const pids = (started['workers'] as Array<{ pid: number }>).map((w) => w.pid);
      const hello = (w: number, addr: string): Promise<void> => onWorker(pids, w, async () => {
        const c = await connectClient('127.0.0.1', scr.port, addr);
        await c.readUntil(/^220-/m, 5000);
        c.destroy();
        await waitLine(file, (e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
      });
      await hello(0, '127.0.101.9');
      await hello(1, '127.0.102.9');
      renameSync(file, `${file}.1`);
      process.kill(scr.pid, 'SIGUSR1');
      for (const w of [undefined, 0, 1]) await waitLine(file, (e) => e['event'] === 'LOG REOPEN' && e['worker'] === w);
      await hello(0, '127.0.103.9');
      await hello(1, '127.0.104.9');
      assert.equal(await scr.stop(), 0, scr.stderr());
      const old = lines(`${file}.1`);
      const now = lines(file);
      assert.deepEqual(old.filter((e) => e['event'] === 'CONNECT').map((e) => [e['client'], e['worker']]), [['127.0.101.9', 0], ['127.0.102.9', 1]]);
      assert.deepEqual(now.filter((e) => e['event'] === 'CONNECT').map((e) => [e['client'], e['worker']]), [['127.0.103.9', 0], ['127.0.104.9', 1]]);
      assert.ok(now.some((e) => e['event'] === 'STOPPED' && e['worker'] === undefined), 'the primary\'s last line is in the new file');
    } finally {
      await scr.stop();
    }
  });
});
