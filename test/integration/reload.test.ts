/*
 * Integration: reload on SIGHUP. The real screener process in front of a
 * private Postfix: 20 reloads, alternating two configurations that differ in
 * the access list, the greet wait and the backend (XCLIENT to one smtpd,
 * PROXY v2 to another), while swaks clients deliver through the screener;
 * every message is counted in Postfix's mail log. A broken access list and a
 * broken YAML file keep the running generation (RELOAD ok false, at error)
 * and serving goes on. Listeners added and removed: the new one serves, the
 * removed one refuses, and a session it accepted finishes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startScreener, portOf, withAllowRoot, type ScreenerEvent, type ScreenerProc } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient } from '../helpers/smtp-client.js';
import { freePorts } from '../helpers/ports.js';

let pf: PostfixInstance;
const tmp = mkdtempSync(join(tmpdir(), 'scr-reload-'));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

before(async () => {
  pf = await startPostfix();
});
after(async () => {
  await pf?.stop();
});

const accessA = join(tmp, 'access-a');
const accessB = join(tmp, 'access-b');
writeFileSync(accessA, '127.0.9.0/24 permit\n');
writeFileSync(accessB, '127.0.10.0/24 permit\n127.0.11.0/24 reject\n');

/** A: clients of 127.0.9.0/24 are allowlisted, XCLIENT. B: they are screened (greet wait 600 ms), PROXY v2 to another smtpd. */
function config(which: 'A' | 'B', over: Record<string, unknown> = {}): Record<string, unknown> {
  const a = which === 'A';
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    backend: a
      ? { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' }
      : { address: `127.0.0.1:${pf.proxyPort}`, handoff: 'proxy-v2', connect_timeout: '2s', handshake_timeout: '5s' },
    access: { list: a ? accessA : accessB },
    pregreet: { wait: a ? '300ms' : '600ms', action: 'enforce' },
    limits: { max_per_client: 0 },
    drain_timeout: '10s',
    ...over,
  };
}

/** Send SIGHUP and wait for the RELOAD it causes (the n-th RELOAD event overall). */
async function hup(s: ScreenerProc, n: number): Promise<ScreenerEvent> {
  process.kill(s.pid, 'SIGHUP');
  let seen = 0;
  return s.waitForEvent((e) => e['event'] === 'RELOAD' && ++seen === n, 15_000);
}

describe('reload on SIGHUP', () => {
  test('20 reloads while clients deliver through the screener: every message reaches Postfix, each configuration serves in turn', async (t) => {
    const s = await startScreener(config('A'));
    let sent = 0;
    const failures: string[] = [];
    const rcpts: string[] = [];
    let reloading = true;
    let workers: Array<Promise<void>> = [];
    try {
      const worker = async (w: number): Promise<void> => {
        // Bounded: at most 200 messages per worker; it stops once the reloads are done.
        for (let i = 0; i < 200 && reloading; i++) {
          const n = `w${w}m${i}`;
          const addr = `127.0.9.${10 * w + (i % 10) + 1}`;
          const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: `${n}@example.test`, from: 's@example.test', timeoutS: 20 });
          sent++;
          rcpts.push(n);
          if (r.code !== 0) failures.push(`${n} from ${addr}: swaks exit ${String(r.code)}\n${r.transcript.slice(-800)}`);
        }
      };
      workers = [0, 1, 2].map((w) => worker(w));
      let shownB = false;
      for (let i = 1; i <= 20; i++) {
        const which = i % 2 === 1 ? 'B' : 'A';
        writeFileSync(s.configFile, withAllowRoot(toYaml(config(which))));
        const r = await hup(s, i);
        assert.equal(r['ok'], true, JSON.stringify(r));
        assert.equal(r['generation'], i + 1);
        // What differs between A and B, and nothing else.
        assert.deepEqual(r['changed'], ['access.list', 'pregreet.wait', 'backend.address', 'backend.handoff']);
        assert.equal(r['backend'], `127.0.0.1:${which === 'A' ? pf.xclientPort : pf.proxyPort}`);
        if (!shownB && which === 'B') {
          shownB = true;
          assert.equal(r['access_entries'], 2);
        }
        await sleep(250);
      }
      reloading = false;
      await Promise.all(workers);
      assert.deepEqual(failures, [], `${failures.length} of ${sent} messages failed`);
      assert.ok(sent >= 10, `only ${sent} messages were sent during the reloads`);
      // Every message, counted at the backend.
      const log = await waitForAll(rcpts);
      const viaX = (log.match(/postfix\/xclient\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.9\.\d+\]/g) ?? []).length;
      const viaP = (log.match(/postfix\/proxy\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.9\.\d+\]/g) ?? []).length;
      assert.equal(viaX + viaP, sent, `Postfix saw ${viaX} + ${viaP} clients for ${sent} messages`);
      assert.ok(viaX > 0 && viaP > 0, `both backends got clients (xclient ${viaX}, proxy ${viaP})`);
      // Both access lists applied: allowlisted under A, screened (PASS NEW / PASS OLD) under B.
      assert.ok(s.eventsNamed('ALLOWLISTED').length > 0, 'A allowlisted 127.0.9.0/24');
      assert.ok(s.eventsNamed('PASS NEW').length + s.eventsNamed('PASS OLD').length > 0, 'B screened 127.0.9.0/24');
      const spanning = sessionsSpanningReload(s.events);
      assert.ok(spanning > 0, 'at least one session was open across a reload');
      t.diagnostic(`${sent} messages, all delivered (xclient ${viaX}, proxy ${viaP}); ${spanning} sessions were open across a reload`);
      assert.equal(s.eventsNamed('RELOAD').filter((e) => e['ok'] !== true).length, 0);
    } finally {
      reloading = false;
      await Promise.allSettled(workers);
      const code = await s.stop();
      assert.equal(code, 0, s.stderr());
    }
  });

  test('a broken access list or YAML file keeps the running configuration (RELOAD ok false, at error) and serving goes on', async () => {
    const access = join(tmp, 'access-broken');
    writeFileSync(access, '127.0.9.0/24 permit\n');
    const s = await startScreener(config('A', { access: { list: access } }));
    try {
      writeFileSync(access, '127.0.9.0/24 permit\n127.0.9.300/24 reject\n');
      const r1 = await hup(s, 1);
      assert.deepEqual([r1['ok'], r1['level'], r1['generation'], r1['code']], [false, 50, 1, 'SCR_ERR_ACCESS_LIST']);
      assert.match(String(r1['error']), new RegExp(`${access}:2: .*still serving with the configuration loaded before`));
      // The old access list still applies: allowlisted, delivered.
      const a = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: '127.0.9.5', to: 'broken1@example.test', timeoutS: 20 });
      assert.equal(a.code, 0, a.transcript);
      await s.waitForEvent((e) => e['event'] === 'ALLOWLISTED' && e['client'] === '127.0.9.5');
      await pf.waitForLog(/to=<broken1@example\.test>, relay=none.*status=sent/);

      writeFileSync(access, '127.0.9.0/24 permit\n');
      writeFileSync(s.configFile, 'hostname: screen.test\nlisten: [127.0.0.1:0\n');
      const r2 = await hup(s, 2);
      assert.deepEqual([r2['ok'], r2['level'], r2['generation'], r2['code']], [false, 50, 1, 'SCR_ERR_CONFIG']);
      assert.match(String(r2['error']), new RegExp(`${s.configFile}:\\d+:\\d+: YAML syntax error`));
      writeFileSync(s.configFile, withAllowRoot(toYaml(config('A', { access: { list: access }, pregreet: { wait: '200ms' } }))));
      const r3 = await hup(s, 3);
      assert.deepEqual([r3['ok'], r3['generation'], r3['changed']], [true, 2, ['pregreet.wait']]);
      const b = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: '127.0.9.6', to: 'broken2@example.test', timeoutS: 20 });
      assert.equal(b.code, 0, b.transcript);
      await pf.waitForLog(/to=<broken2@example\.test>, relay=none.*status=sent/);
      assert.equal(s.proc.exitCode, null);
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });

  test('listeners added and removed: the new one serves, the removed one refuses, a session it accepted finishes', async () => {
    const [p1, p2] = await freePorts(2);
    const base = { hostname: 'screen.test', backend: { address: 'sink:0' }, pregreet: { wait: '200ms' }, drain_timeout: '10s' };
    const s = await startScreener({ ...base, listen: [`127.0.0.1:${String(p1)}`] });
    try {
      const c = await connectClient('127.0.0.1', Number(p1), '127.0.12.1');
      await c.readUntil(/^220 sink\.invalid /m, 5000);
      writeFileSync(s.configFile, withAllowRoot(toYaml({ ...base, listen: [`127.0.0.1:${String(p2)}`] })));
      const r = await hup(s, 1);
      assert.deepEqual([r['ok'], r['changed'], r['added'], r['removed']], [true, ['listen'], [`127.0.0.1:${String(p2)}`], [`127.0.0.1:${String(p1)}`]]);
      // The session accepted on the removed listener goes on.
      c.write('MAIL FROM:<a@example.test>\r\n');
      await c.readUntil(/^250 /m, 5000);
      c.write('QUIT\r\n');
      await c.readUntil(/^221 /m, 5000);
      await c.closed;
      await assert.rejects(connectClient('127.0.0.1', Number(p1), '127.0.12.2'), /ECONNREFUSED/);
      const d = await connectClient('127.0.0.1', Number(p2), '127.0.12.3');
      await d.readUntil(/^220 sink\.invalid /m, 5000);
      d.write('QUIT\r\n');
      await d.closed;
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
  });
});

/** The mail log once every recipient in `rcpts` has a "status=sent" line (20 s at most). */
async function waitForAll(rcpts: string[]): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const log = pf.maillog();
    const missing = rcpts.filter((n) => !new RegExp(`to=<${n}@example\\.test>, relay=none.*status=sent`).test(log));
    if (missing.length === 0) return log;
    if (Date.now() > deadline) throw new Error(`${missing.length} of ${rcpts.length} messages never reached Postfix: ${missing.slice(0, 10).join(', ')}`);
    await sleep(100);
  }
}

/** Sessions (client, port) whose CONNECT came before a RELOAD and whose DISCONNECT came after it. */
function sessionsSpanningReload(events: readonly ScreenerEvent[]): number {
  const open = new Map<string, number>();
  let n = 0;
  let reloads = 0;
  for (const e of events) {
    const key = `${String(e['client'])}:${String(e['port'])}`;
    if (e['event'] === 'RELOAD') reloads++;
    else if (e['event'] === 'CONNECT') open.set(key, reloads);
    else if (e['event'] === 'DISCONNECT') {
      const at = open.get(key);
      if (at !== undefined && at < reloads) n++;
      open.delete(key);
    }
  }
  return n;
}
