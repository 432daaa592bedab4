/*
 * Integration: the fault matrix. One real screener per fault, one client; each row says what
 * the client gets and what is logged. Backends here are scripted XCLIENT servers on loopback
 * (refused, slow, stalled, closing at each handshake stage, refusing XCLIENT, speaking another
 * protocol); DNS faults come from the programmable fake server (silent, slow, spoofed, garbage,
 * truncated); the snapshot meets a full disk (the kernel's ENOSPC from /dev/full) and a
 * directory nobody may write to (chattr +i: EPERM even for root). Across every backend row:
 * the client never sees a 2xx/3xx that the backend did not send, and every failure is 421 (a
 * refusing greeting too: with XCLIENT the greeting is the screener's, not the client's).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScreener, portOf, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { freePort } from '../helpers/ports.js';
import { reply, startFakeDns, type FakeHandler } from '../dns/fake-server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TEASER = '220-screen.test ESMTP\r\n';

// ---- backends ----

type Script = (s: Socket) => void;

/** An XCLIENT server: greets, answers XCLIENT with a new 220, then 250 to anything; `delay` before each reply. */
function xclientServer(delay = 0, onXclient: (s: Socket) => boolean = () => true): Script {
  return (s) => {
    const later = (t: string): void => void setTimeout(() => { if (!s.destroyed) s.write(t); }, delay);
    later('220 fake.backend ESMTP\r\n');
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line.startsWith('XCLIENT ')) {
          if (onXclient(s)) later('220 fake.backend ESMTP as the client\r\n');
        } else if (line === 'QUIT') later('221 bye\r\n');
        else if (line.startsWith('EHLO')) later('250-fake.backend\r\n250 XCLIENT ADDR PORT NAME PROTO HELO\r\n');
        else later('250 ok\r\n');
      }
    });
  };
}

interface FakeBackend { server: Server; port: number; stop: () => Promise<void> }

async function backend(script: Script): Promise<FakeBackend> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    script(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  // Connections still open (the screener's backend probe among them) are cut: close() waits for none.
  const stop = (): Promise<void> => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
  return { server, port: (server.address() as { port: number }).port, stop };
}

interface BackendRow {
  label: string;
  /** null: nothing listens on the port. */
  script: Script | null;
  /** What the client receives after the teaser, exactly. */
  client: RegExp;
  /** The BACKEND FAIL [stage, reason] expected; null: a HANDOFF. */
  fail: [string, RegExp] | null;
}

const FAIL_421 = /^421 4\.3\.2 Service currently unavailable\r\n$/;

const backendRows: BackendRow[] = [
  { label: 'refused (nothing listens)', script: null, client: FAIL_421, fail: ['connect', /^ECONNREFUSED$/] },
  { label: 'slow (each reply after 400 ms)', script: xclientServer(400), client: /^220 fake\.backend ESMTP as the client\r\n$/, fail: null },
  { label: 'stalled (accepts, never greets)', script: () => undefined, client: FAIL_421, fail: ['greeting', /^timeout$/] },
  { label: 'closes at accept', script: (s) => s.end(), client: FAIL_421, fail: ['greeting', /^closed$/] },
  { label: 'closes after its greeting, when XCLIENT comes', script: xclientServer(0, (s) => { s.end(); return false; }), client: FAIL_421, fail: ['xclient', /^closed$/] },
  { label: 'greets, then never answers XCLIENT', script: xclientServer(0, () => false), client: FAIL_421, fail: ['xclient', /^timeout$/] },
  { label: 'refuses XCLIENT (550)', script: xclientServer(0, (s) => { s.write('550 5.7.0 Error: insufficient authorization\r\n'); return false; }), client: FAIL_421, fail: ['xclient', /^handoff mode$/] },
  { label: 'wrong protocol (an HTTP server)', script: (s) => s.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'), client: FAIL_421, fail: ['greeting', /^malformed reply/] },
  // With XCLIENT the greeting is the screener's: a refusal is the backend failing, not the client's answer.
  { label: 'refuses at its greeting (554)', script: (s) => s.end('554 5.3.2 fake.backend no service\r\n'), client: FAIL_421, fail: ['greeting', /^554 /] },
];

describe('fault matrix: backends (XCLIENT)', () => {
  for (const row of backendRows) {
    test(`backend ${row.label}`, async () => {
      const b = row.script === null ? null : await backend(row.script);
      const port = b?.port ?? (await freePort());
      const s = await startScreener({
        hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '200ms' },
        backend: { address: `127.0.0.1:${port}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '1500ms' },
      });
      try {
        const addr = '127.0.90.1';
        const c = await connectClient('127.0.0.1', portOf(s), addr);
        await c.readUntil(/^(220|421|554) .*\r\n/m, 8000);
        const got = c.received();
        assert.ok(got.startsWith(TEASER), got);
        assert.match(got.slice(TEASER.length), row.client);
        if (row.fail === null) {
          const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
          assert.equal(s.eventsNamed('BACKEND FAIL').filter((e) => e['client'] === addr).length, 0);
          assert.ok(typeof h['code'] === 'number');
        } else {
          const f = await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['client'] === addr);
          assert.equal(f['stage'], row.fail[0]);
          assert.match(String(f['reason']), row.fail[1]);
          assert.equal(f['backend'], `127.0.0.1:${port}`);
          assert.equal(s.eventsNamed('HANDOFF').length, 0, 'no HANDOFF for a failed handshake');
        }
        await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr, 8000).catch(() => c.destroy());
        c.destroy();
      } finally {
        await s.stop();
        await b?.stop();
      }
    });
  }
});

// ---- DNS ----

const LISTED = (q: Parameters<FakeHandler>[0]): Buffer =>
  reply(q, { answers: [{ name: q.questions[0]?.name ?? '', type: 1, ttl: 60, data: '127.0.0.2' }] });
const NXDOMAIN = (q: Parameters<FakeHandler>[0]): Buffer => reply(q, { rcode: 3 });

interface DnsRow {
  label: string;
  handler: FakeHandler;
  /** listed: the DNSBL event and 550 at RCPT; clean: handed over, no DNSBL event. */
  outcome: 'listed' | 'clean';
}

const dnsRows: DnsRow[] = [
  { label: 'silent', handler: () => 'silent', outcome: 'clean' },
  { label: 'slow (the listing after 300 ms)', handler: (q) => [{ buf: LISTED(q), delayMs: 300 }], outcome: 'listed' },
  // The spoofer has the ID and question right but not the source port; the server's own answer follows.
  { label: 'spoofed (a listing from the wrong port first)', handler: (q) => [{ buf: LISTED(q), from: 'other-port' }, { buf: NXDOMAIN(q), delayMs: 100 }], outcome: 'clean' },
  { label: 'garbage', handler: () => [{ buf: Buffer.from('\x00\x01garbage that is no DNS message\xff\xfe', 'latin1') }], outcome: 'clean' },
  { label: 'truncated over UDP, the listing over TCP', handler: (q, r) => [{ buf: r.transport === 'udp' ? reply(q, { tc: true }) : LISTED(q) }], outcome: 'listed' },
];

describe('fault matrix: DNS', () => {
  let pf: FakeBackend;
  before(async () => {
    pf = await backend(xclientServer());
  });
  after(async () => {
    await pf.stop();
  });
  for (const row of dnsRows) {
    test(`DNS ${row.label}: ${row.outcome === 'listed' ? 'rejected at RCPT' : 'handed over (a DNS fault refuses nobody)'}`, async () => {
      const dns = await startFakeDns(row.handler);
      const s = await startScreener({
        hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '1500ms', action: 'enforce' },
        dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce', timeout: '1s' },
        resolver: { servers: [`127.0.0.1:${dns.port}`], timeout: '800ms', tries: 1 },
        backend: { address: `127.0.0.1:${pf.port}`, handoff: 'xclient', handshake_timeout: '2s' },
      });
      try {
        const addr = '127.0.91.2';
        const c = await connectClient('127.0.0.1', portOf(s), addr);
        if (row.outcome === 'listed') {
          await c.readUntil(/^220 screen\.test/m, 8000);
          c.write('EHLO x.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@screen.test>\r\n');
          assert.match(await c.readUntil(/^550 .*\r\n/m, 8000), /^550 5\.7\.1 Service unavailable; client \[127\.0\.91\.2\] blocked using bl\.test\r\n/m);
          const d = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === addr);
          assert.equal(d['score'], 1);
          assert.equal(s.eventsNamed('HANDOFF').length, 0);
        } else {
          assert.match(await c.readUntil(/^220 fake\.backend.*\r\n/m, 8000), /220 fake\.backend ESMTP as the client/);
          await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
          assert.equal(s.eventsNamed('DNSBL').length, 0, 'not listed');
        }
        assert.ok(dns.queries.length >= 1, 'the screener asked the fake server');
        c.destroy();
      } finally {
        await s.stop();
        await dns.close();
      }
    });
  }
});

// ---- the snapshot ----

describe('fault matrix: the cache snapshot', () => {
  let pf: FakeBackend;
  const dirs: string[] = [];
  before(async () => {
    pf = await backend(xclientServer());
  });
  after(async () => {
    await pf.stop();
    for (const d of dirs) {
      try { execFileSync('chattr', ['-i', d]); } catch { /* not immutable */ }
      rmSync(d, { recursive: true, force: true });
    }
  });

  /** A screener saving its snapshot every second; one client passes first, so the first save has a record. */
  async function withSnapshot(fault: (dir: string, file: string, s: ScreenerProc) => void, errorRe: RegExp): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'scr-fault-snap-'));
    dirs.push(dir);
    const file = join(dir, 'cache.snap');
    const s = await startScreener({
      hostname: 'screen.test', listen: ['127.0.0.1:0'], pregreet: { wait: '200ms' },
      cache: { snapshot: file, snapshot_interval: '1s' },
      backend: { address: `127.0.0.1:${pf.port}`, handoff: 'xclient' },
    });
    try {
      const c1 = await connectClient('127.0.0.1', portOf(s), '127.0.92.1');
      await c1.readUntil(/^220 fake\.backend/m, 5000);
      c1.destroy();
      await s.waitForEvent((e) => e['event'] === 'CACHE' && e['op'] === 'save' && (e['entries'] as number) >= 1, 5000);
      const good = readFileSync(file);
      fault(dir, file, s);
      const err = await s.waitForEvent((e) => e['event'] === 'CACHE' && e['op'] === 'error', 5000);
      assert.equal(err['during'], 'save');
      assert.match(String(err['error']), errorRe);
      assert.ok(readFileSync(file).equals(good), 'the last good snapshot is intact');
      // The screener goes on serving.
      const c2 = await connectClient('127.0.0.1', portOf(s), '127.0.92.2');
      assert.match(await c2.readUntil(/^220 fake\.backend.*\r\n/m, 5000), /220 fake\.backend ESMTP as the client/);
      c2.destroy();
      await sleep(100);
    } finally {
      const code = await s.stop();
      assert.equal(code, 0, `a failed save does not change the exit: ${s.stderr()}`);
    }
  }

  test('disk full: the save fails with ENOSPC, logged; the old snapshot stays; clients are served', async () => {
    // The save writes ".<file>.tmp-<pid>" and renames it: that name, pointing at /dev/full, gets ENOSPC from the kernel.
    await withSnapshot((dir, _file, s) => symlinkSync('/dev/full', join(dir, `.cache.snap.tmp-${s.pid}`)), /ENOSPC/);
  });

  test('a directory nobody may write (immutable): the save fails with EPERM, logged; the old snapshot stays; clients are served', async () => {
    await withSnapshot((dir) => {
      try {
        execFileSync('chattr', ['+i', dir], { stdio: 'pipe' });
      } catch (e) {
        throw new Error(`chattr +i failed (package e2fsprogs, a filesystem with the immutable flag, and root are needed): ${String(e)}`);
      }
    }, /EPERM|EACCES|EROFS/);
  });
});
