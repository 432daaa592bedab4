/*
 * Integration: the stress personality with the real screener process
 * (dist/src/cli.js run) and the built-in sink backend, clients from distinct
 * 127.x addresses. Normal greet wait 3s, stress greet wait 1s, 10 connections
 * at most, stress from 80% (8 open) down to 60% (6 open). The greet wait is
 * measured as the client sees it: from connect to the final "220 " line (the
 * backend's, after the teaser and the wait).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { killAllScreeners, startScreener, type ScreenerProc, portOf, byClient } from '../helpers/screener.js';

after(() => killAllScreeners());

/** Listener 0: auto; listener 1: pinned to the stress personality. */
function cfg(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0', { address: '127.0.0.2:0', personality: 'stress' }],
    backend: { address: 'sink:0' },
    pregreet: { wait: '3s', action: 'enforce' },
    limits: { max_connections: 10, max_per_client: 0 },
    stress: { enter_at: '80%', leave_at: '60%', pregreet: { wait: '1s' } },
    drain_timeout: '2s',
    ...over,
  };
}

function hostOf(s: ScreenerProc, i = 0): string {
  return (s.listen[i] ?? '').replace(/:\d+$/, '');
}

/** Connect, read up to the final 220 line; the time it took. */
async function greet(s: ScreenerProc, listener: number, addr: string): Promise<{ ms: number; c: RawClient }> {
  const t0 = Date.now();
  const c = await connectClient(hostOf(s, listener), portOf(s, listener), addr);
  await c.readUntil(/^220 /m, 8000);
  return { ms: Date.now() - t0, c };
}

async function closeAndWait(s: ScreenerProc, c: RawClient, addr: string): Promise<void> {
  c.destroy();
  await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
}

const NORMAL_MIN_MS = 2500; // normal greet wait 3s
const STRESS_MAX_MS = 2500; // stress greet wait 1s

describe('stress personality', () => {
  test('idle connections up to 80% bring stress: the next client gets the 1s greet wait; below 60% normal again; STRESS once each way', async () => {
    const s = await startScreener(cfg());
    try {
      assert.deepEqual(s.eventsNamed('STARTED')[0]?.['stress'], { enter: 8, leave: 6, limit: 10 });

      // Unloaded: the normal personality, 3s, and no stress field on its events.
      const a = await greet(s, 0, '127.0.20.1');
      assert.ok(a.ms > NORMAL_MIN_MS, `normal greet wait took ${a.ms} ms`);
      await closeAndWait(s, a.c, '127.0.20.1');
      for (const e of s.events.filter((x) => x['client'] === '127.0.20.1')) assert.equal(e['stress'], undefined, JSON.stringify(e));

      // Fill up to the enter mark with idle clients (they only read).
      const idle: RawClient[] = [];
      for (let i = 1; i <= 8; i++) {
        const c = await connectClient('127.0.0.1', portOf(s), `127.0.21.${i}`);
        await c.readUntil(/^220-screen\.test/m, 3000);
        idle.push(c);
      }
      const enter = await s.waitForEvent((e) => e['event'] === 'STRESS' && e['state'] === 'enter');
      assert.deepEqual([enter['count'], enter['limit'], enter['threshold']], [8, 10, 8]);
      // The connection that reached the mark is the first one served under stress.
      for (let i = 1; i <= 8; i++) {
        const conn = byClient(s, 'CONNECT', `127.0.21.${i}`)[0];
        assert.equal(conn?.['stress'], i === 8 ? true : undefined, `CONNECT of idle client ${i}: ${JSON.stringify(conn)}`);
      }

      // One leaves (7 open, above the leave mark): still stress, no new STRESS event.
      await closeAndWait(s, idle.shift() as RawClient, '127.0.21.1');
      const b = await greet(s, 0, '127.0.22.1');
      assert.ok(b.ms < STRESS_MAX_MS, `stress greet wait took ${b.ms} ms`);
      const bHandoff = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '127.0.22.1');
      assert.equal(bHandoff['stress'], true);
      assert.equal(byClient(s, 'CONNECT', '127.0.22.1')[0]?.['stress'], true);
      assert.equal(s.eventsNamed('STRESS').length, 1);

      // Everybody leaves: stress ends once, at 6 open.
      await closeAndWait(s, b.c, '127.0.22.1');
      for (const [i, c] of idle.entries()) await closeAndWait(s, c, `127.0.21.${i + 2}`);
      const leave = await s.waitForEvent((e) => e['event'] === 'STRESS' && e['state'] === 'leave');
      assert.deepEqual([leave['count'], leave['limit'], leave['threshold']], [6, 10, 6]);
      // A session keeps its personality to the end: B's DISCONNECT, logged while stress lasted, says so.
      assert.equal(byClient(s, 'DISCONNECT', '127.0.22.1')[0]?.['stress'], true);

      // Normal again.
      const c = await greet(s, 0, '127.0.23.1');
      assert.ok(c.ms > NORMAL_MIN_MS, `greet wait after leaving stress took ${c.ms} ms`);
      assert.equal(byClient(s, 'CONNECT', '127.0.23.1')[0]?.['stress'], undefined);
      await closeAndWait(s, c.c, '127.0.23.1');

      assert.deepEqual(s.eventsNamed('STRESS').map((e) => e['state']), ['enter', 'leave']);
      assert.equal(s.eventsNamed('ALL PORTS BUSY').length, 0);
    } finally {
      await s.stop();
    }
  });

  test('a listener pinned to stress always gives the stress greet wait; the auto one beside it stays normal; no STRESS event', async () => {
    const s = await startScreener(cfg());
    try {
      const [pinned, auto] = await Promise.all([greet(s, 1, '127.0.24.1'), greet(s, 0, '127.0.24.2')]);
      assert.ok(pinned.ms < STRESS_MAX_MS, `pinned listener greet wait took ${pinned.ms} ms`);
      assert.ok(auto.ms > NORMAL_MIN_MS, `auto listener greet wait took ${auto.ms} ms`);
      for (const name of ['CONNECT', 'PASS NEW', 'HANDOFF']) {
        assert.equal((await s.waitForEvent((e) => e['event'] === name && e['client'] === '127.0.24.1'))['stress'], true, name);
        assert.equal((await s.waitForEvent((e) => e['event'] === name && e['client'] === '127.0.24.2'))['stress'], undefined, name);
      }
      // A second pinned client, same result: pinning does not depend on the load.
      const again = await greet(s, 1, '127.0.24.3');
      assert.ok(again.ms < STRESS_MAX_MS, `pinned listener greet wait took ${again.ms} ms`);
      for (const x of [pinned, auto, again]) x.c.destroy();
      assert.equal(s.eventsNamed('STRESS').length, 0);
    } finally {
      await s.stop();
    }
  });

  test('a pinned listener applies the stress command time limit in the dummy engine', async () => {
    const s = await startScreener(cfg({
      dummy: { command_time_limit: '30s' },
      stress: { enter_at: '80%', leave_at: '60%', pregreet: { wait: '1s' }, dummy: { command_time_limit: '1s' } },
    }));
    try {
      const addr = '127.0.25.1';
      const c = await connectClient(hostOf(s, 1), portOf(s, 1), addr);
      c.write('NOOP\r\n'); // a pregreet: the dummy engine answers it when the greet wait ends (no banner, as postscreen)
      await c.readUntil(/^250 /m, 5000);
      const t0 = Date.now();
      const cut = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(r, 4000, false))]);
      c.destroy();
      assert.ok(cut && Date.now() - t0 < 2500, `not cut by the stress limit of 1s (${Date.now() - t0} ms)`);
      const l = await s.waitForEvent((e) => e['event'] === 'COMMAND TIME LIMIT' && e['client'] === addr, 3000);
      assert.equal(l['stress'], true);
    } finally {
      await s.stop();
    }
  });

  test('stress may skip the deep tests: the stress listener hands a clean client over, the normal one runs the pipelining test', async () => {
    const s = await startScreener(cfg({
      pregreet: { wait: '1s', action: 'enforce' },
      deep: { pipelining: { enable: true } },
      stress: { enter_at: '80%', leave_at: '60%', pregreet: { wait: '1s' }, deep: { pipelining: { enable: false } } },
    }));
    try {
      const a = await greet(s, 1, '127.0.13.1');
      assert.match(a.c.received(), /^220 sink\.invalid/m, 'stress: handed to the backend after the greet wait');
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '127.0.13.1');
      assert.equal(h['stress'], true);
      const b = await greet(s, 0, '127.0.13.2');
      assert.match(b.c.received(), /^220 screen\.test ESMTP\r\n$/m, 'normal: the dummy engine runs the deep test');
      b.c.write('EHLO ok.test\r\n');
      await b.c.readUntil(/^250 /m, 3000);
      b.c.write('MAIL FROM:<a@ok.test>\r\n');
      await b.c.readUntil(/^250 /m, 3000);
      b.c.write('RCPT TO:<b@example.test>\r\n');
      assert.match(await b.c.readUntil(/^\d{3} .*\r\n/m, 3000), /^450 4\.3\.2/m);
      for (const x of [a.c, b.c]) x.destroy();
      assert.equal(byClient(s, 'HANDOFF', '127.0.13.2').length, 0);
    } finally {
      await s.stop();
    }
  });
});
