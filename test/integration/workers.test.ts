/*
 * Integration: `workers: 2` with `workers_accept: primary` (the shared mode:
 * workers-shared.test.ts). The real screener (a primary and two workers) in
 * front of a private Postfix (XCLIENT) with a private redis-server as the
 * shared store. Clients come from 127.x networks chosen with the primary's own
 * routing (networkSlot) so that each worker gets some:
 * - clients of many networks are served by both workers (each event carries
 *   its worker), pregreeters are rejected, clean clients' mail reaches Postfix;
 * - kill -9 of one worker with sessions open on both: its clients are cut, the
 *   other worker's clients finish their mail, the primary logs WORKER EXITED
 *   and forks it again, and the new worker serves its networks; a client's
 *   QUIT with a half-close still gets Postfix's 221 (handed sockets are half-open);
 * - SIGHUP: a changed access list applies in both workers; a broken file is
 *   refused by the primary (RELOAD ok false) and both keep serving; SIGTERM
 *   with sessions open in both workers: every worker drains, exit 0;
 * - limits.max_per_client holds for a client whatever the workers (its
 *   connections land in one worker), limits.max_connections for the host.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { useWorkersEnv, workersOf, toPostfix, finishMail, named, drainsBoth } from '../helpers/workers.js';
import { startScreener, portOf, withAllowRoot, type ScreenerEvent, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { runSwaks } from '../helpers/swaks.js';
import { networkSlot } from '../../src/server/cluster-ipc.js';

const tmp = mkdtempSync(join(tmpdir(), 'scr-workers-'));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const env = useWorkersEnv('primary', 'wt');
const config = env.config;

/** `count` client addresses of distinct /24s under 127.<b>.x that the primary routes to worker `w` of 2. */
function addressesFor(w: number, count: number, b: number): string[] {
  const out: string[] = [];
  for (let c = 1; c < 255 && out.length < count; c++) {
    const a = `127.${b}.${c}.9`;
    if (networkSlot(a, 2) === w) out.push(a);
  }
  return out;
}

describe('workers: 2, workers_accept: primary', { timeout: 300_000 }, () => {
  test('clients of many networks are served by both workers; pregreeters rejected, clean clients reach Postfix; /metrics sums the workers', { timeout: 60_000 }, async () => {
    const s = await startScreener(config({ admin: { listen: ['127.0.0.1:0'] } }));
    try {
      assert.equal(workersOf(s).length, 2);
      const clean = [...addressesFor(0, 3, 41), ...addressesFor(1, 3, 41)];
      const early = [...addressesFor(0, 3, 42), ...addressesFor(1, 3, 42)];
      // A pregreeter gets the dummy engine (pregreet.action enforce), never Postfix.
      const pre = early.map(async (a) => {
        const c = await connectClient('127.0.0.1', portOf(s), a);
        c.write('EHLO early.test\r\n');
        await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === a, 10_000);
        await sleep(500);
        c.destroy();
        return c.received();
      });
      const mails = clean.map((a, i) => runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: a, to: `many${i}@example.test`, timeoutS: 30 }));
      for (const r of await Promise.all(mails)) assert.equal(r.code, 0, r.transcript);
      for (const text of await Promise.all(pre)) assert.doesNotMatch(text, /ESMTP Postfix/);
      for (let i = 0; i < clean.length; i++) await env.pf.waitForLog(new RegExp(`to=<many${i}@example\\.test>, relay=none.*status=sent`));
      for (const a of early) await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === a);
      for (const a of [...clean, ...early]) {
        const ws = new Set(named(s, 'CONNECT', (e) => e['client'] === a).map((e) => e['worker']));
        assert.deepEqual([...ws], [networkSlot(a, 2)], `${a}: one worker, the one its network hashes to`);
      }
      const all = new Set(named(s, 'CONNECT').map((e) => e['worker']));
      assert.deepEqual([...all].sort(), [0, 1]);
      for (const e of named(s, 'PASS NEW')) assert.ok(e['worker'] === 0 || e['worker'] === 1);
      assert.equal(named(s, 'STARTED').length, 1);
      assert.equal(named(s, 'STARTED')[0]?.['worker'], undefined, 'STARTED comes from the primary');
      // The primary's admin listener: the events of both workers summed, and the workers' state.
      const admin = (named(s, 'STARTED')[0]?.['admin'] as string[])[0] as string;
      const text = await (await fetch(`http://${admin}/metrics`)).text();
      const series = (name: string): number => Number(new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
      assert.equal(series('smtpscreen_events_total{event="CONNECT"}'), named(s, 'CONNECT').length);
      assert.equal(series('smtpscreen_events_total{event="PREGREET"}'), early.length);
      assert.equal(series('smtpscreen_workers{state="ready"}'), 2);
      for (const w of [0, 1]) assert.equal(series(`smtpscreen_worker_connections{worker="${w}"}`), 0);
      assert.equal((await fetch(`http://${admin}/readyz`)).status, 200);
      const h = (await (await fetch(`http://${admin}/healthz`)).json()) as { workers: Array<{ up: boolean }> };
      assert.deepEqual(h.workers.map((w) => w.up), [true, true]);
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('kill -9 of one worker: its clients are cut, the other worker\'s finish their mail, a new worker starts and serves', { timeout: 60_000 }, async () => {
    const s = await startScreener(config());
    try {
      const [w0, w1] = workersOf(s);
      const a0 = addressesFor(0, 3, 43);
      const a1 = addressesFor(1, 3, 43);
      const c0 = await Promise.all(a0.map((a) => toPostfix(s, a)));
      const c1 = await Promise.all(a1.map((a) => toPostfix(s, a)));
      const from = s.events.length;
      process.kill(w0?.pid ?? 0, 'SIGKILL');
      const exited = await s.waitForEvent((e) => e['event'] === 'WORKER EXITED', 10_000, from);
      assert.deepEqual([exited['worker'], exited['pid'], exited['signal'], exited['open'], exited['restart_in_ms']], [0, w0?.pid, 'SIGKILL', 3, 1000]);
      await Promise.all(c0.map((c) => c.closed));
      const replies = await Promise.all(c1.map((c, i) => finishMail(c, `survivor${i}@example.test`)));
      for (const r of replies) assert.match(r, /^250 /);
      for (let i = 0; i < c1.length; i++) await env.pf.waitForLog(new RegExp(`to=<survivor${i}@example\\.test>, relay=none.*status=sent`));
      const back = await s.waitForEvent((e) => e['event'] === 'WORKER STARTED' && e['worker'] === 0, 15_000, from);
      assert.notEqual(back['pid'], w0?.pid);
      assert.equal(back['restarts'], 1);
      const fresh = addressesFor(0, 1, 44)[0] as string;
      const c = await toPostfix(s, fresh);
      assert.match(await finishMail(c, 'reborn@example.test'), /^250 /);
      // A client that sends QUIT and closes its side at once still gets Postfix's 221: the handed socket is half-open
      // as the worker's own listener makes them (it was not: the worker ended at the client's FIN, before the reply).
      const q = await toPostfix(s, addressesFor(1, 1, 44)[0] as string);
      q.write('QUIT\r\n');
      q.end();
      await q.closed;
      assert.match(q.received(), /^221 /m);
      const conn = await s.waitForEvent((e) => e['event'] === 'CONNECT' && e['client'] === fresh);
      assert.equal(conn['worker'], 0);
      assert.equal(named(s, 'WORKER EXITED').length, 1, 'the other worker did not die');
      assert.ok(!named(s, 'WORKER EXITED').some((e) => e['pid'] === w1?.pid));
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('SIGHUP: a changed access list applies in both workers, a broken file is refused by the primary; SIGTERM drains every worker, exit 0', { timeout: 60_000 }, async () => {
    const access = join(tmp, 'access');
    const [n0, n1] = [addressesFor(0, 1, 45)[0] as string, addressesFor(1, 1, 45)[0] as string];
    const net = (a: string) => a.replace(/\.\d+$/, '.0/24');
    writeFileSync(access, '192.0.2.0/24 permit\n');
    const s = await startScreener(config({ access: { list: access } }));
    try {
      writeFileSync(access, `${net(n0)} permit\n${net(n1)} permit\n`);
      let from = s.events.length;
      s.proc.kill('SIGHUP');
      const oks = await Promise.all([0, 1].map((w) => s.waitForEvent((e) => e['event'] === 'RELOAD' && e['worker'] === w, 10_000, from)));
      for (const r of oks) assert.deepEqual([r['ok'], r['generation'], r['access_entries']], [true, 2, 2]);
      for (const a of [n0, n1]) {
        const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: a, to: 'hup@example.test', timeoutS: 20 });
        assert.equal(r.code, 0, r.transcript);
        const e = await s.waitForEvent((x) => x['event'] === 'ALLOWLISTED' && x['client'] === a);
        assert.equal(e['worker'], networkSlot(a, 2));
      }
      from = s.events.length;
      writeFileSync(s.configFile, 'hostname: screen.test\nlisten: [127.0.0.1:0\n');
      s.proc.kill('SIGHUP');
      const bad = await s.waitForEvent((e) => e['event'] === 'RELOAD', 10_000, from);
      assert.deepEqual([bad['ok'], bad['worker'], bad['generation'], bad['code']], [false, undefined, 2, 'SCR_ERR_CONFIG']);
      await sleep(500);
      assert.equal(named(s, 'RELOAD', (e) => s.events.indexOf(e) >= from).length, 1, 'no worker reloaded');
      const again = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: n1, to: 'stillok@example.test', timeoutS: 20 });
      assert.equal(again.code, 0, again.transcript);
      await env.pf.waitForLog(/to=<stillok@example\.test>, relay=none.*status=sent/);

      // SIGTERM with a spliced session in each worker: both finish their mail, then the exit is 0.
      const open = await Promise.all([n0, n1].map((a) => toPostfix(s, a)));
      await drainsBoth(s, env, open, 'drained');
    } finally {
      await s.stop();
    }
  });

  test('limits.max_per_client holds for a client across the workers; limits.max_connections for the host', { timeout: 60_000 }, async () => {
    const s = await startScreener(config({ limits: { max_per_client: 3, max_connections: 6 }, pregreet: { wait: '5s' } }));
    const clients: RawClient[] = [];
    try {
      const one = addressesFor(1, 1, 46)[0] as string;
      for (let i = 0; i < 5; i++) clients.push(await connectClient('127.0.0.1', portOf(s), one));
      const texts = await Promise.all(clients.map(async (c) => {
        await c.readUntil(/^(220-|421 ).*\r\n/m, 5000);
        return c.received();
      }));
      assert.equal(texts.filter((t) => t.startsWith('220-')).length, 3);
      assert.equal(texts.filter((t) => t.startsWith('421 4.7.0')).length, 2);
      await s.waitForEvent((e) => e['event'] === 'TOO MANY CONNECTIONS' && e['client'] === one);
      await sleep(300);
      assert.equal(named(s, 'TOO MANY CONNECTIONS', (e) => e['client'] === one).length, 2);
      assert.deepEqual([...new Set(named(s, 'CONNECT', (e) => e['client'] === one).map((e) => e['worker']))], [1]);
      // The host holds 3: three more from networks of both workers fill it to 6; the next two are refused by the primary.
      const more = [...addressesFor(0, 2, 47), ...addressesFor(1, 3, 47)];
      const m: RawClient[] = [];
      for (const a of more) m.push(await connectClient('127.0.0.1', portOf(s), a));
      clients.push(...m);
      const got = await Promise.all(m.map(async (c) => {
        await c.readUntil(/^(220-|421 ).*\r\n/m, 5000);
        return c.received();
      }));
      assert.equal(got.filter((t) => t.startsWith('220-')).length, 3);
      assert.equal(got.filter((t) => t.startsWith('421 4.3.2')).length, 2);
      await s.waitForEvent((e) => e['event'] === 'ALL PORTS BUSY');
      await sleep(300);
      const busy = named(s, 'ALL PORTS BUSY');
      assert.equal(busy.length, 2);
      for (const e of busy) assert.deepEqual([e['worker'], e['limit'], e['count']], [undefined, 'connections', 6]);
    } finally {
      for (const c of clients) c.destroy();
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('a bad workers value stops the start naming the key', async () => {
    await assert.rejects(startScreener(withAllowRoot(toYaml({ ...config(), workers: 'abc' }))), /workers: want a whole number of processes \(1\.\.64\) or auto, got ..abc/);
    await assert.rejects(startScreener(withAllowRoot(toYaml({ ...config(), workers: 2, cache: { store: 'memory' } }))), /workers: 2 workers need cache\.store: redis/);
  });
});
