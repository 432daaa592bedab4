/*
 * Integration: `smtpscreen cache` against a real screener (admin.socket) and
 * offline against its snapshot once it stopped.
 * - The socket is mode 0600, removed at stop; a stale socket at start is
 *   replaced, a regular file there refuses the start; with `user` it is
 *   created after the switch, owned by that user.
 * - pass makes the next connection from that address PASS OLD; delete makes
 *   it screened again (PASS NEW after the greet wait); show, list and export
 *   see it; each change is CACHE ADMIN by: socket in the screener's log.
 * - While the screener runs, an offline change to its snapshot is refused.
 * - Offline: show, pass, delete, list, export; export -> import into another
 *   snapshot gives the same records.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, startScreener, portOf, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

const run = promisify(execFile);
const CLI = path.join(repoRoot(), 'dist', 'src', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-cache-admin-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cache(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [CLI, 'cache', ...args], { timeout: 20_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

function config(sock: string, snap: string): Record<string, unknown> {
  return {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], backend: { address: 'sink:0' },
    pregreet: { wait: '300ms' }, admin: { socket: sock }, cache: { snapshot: snap }, drain_timeout: '1s',
  };
}

/** Connect from `addr`, wait for the full greeting, quit; the event that decided it. */
async function connectOnce(s: ScreenerProc, addr: string): Promise<string> {
  const from = s.events.length;
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^220 /m, 5000);
  c.write('QUIT\r\n');
  await c.closed;
  const e = await s.waitForEvent((x) => x['client'] === addr && (x['event'] === 'PASS OLD' || x['event'] === 'PASS NEW'), 5000, from);
  return String(e['event']);
}

test('cache admin online: 0600 socket; pass -> PASS OLD, delete -> screened again; show/list/export; offline writes refused while it runs; socket removed at stop', { timeout: 60_000 }, async () => {
  const sock = path.join(dir, 'admin.sock');
  const snap = path.join(dir, 'cache.snap');
  const s = await startScreener(config(sock, snap));
  let stopped = false;
  try {
    const st = fs.statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600, 'the admin socket is its owner\'s only');

    const addr = '127.0.44.1';
    assert.equal(await connectOnce(s, addr), 'PASS NEW', 'a new client is screened');
    const del = await cache(['delete', addr, '--socket', sock]);
    assert.equal(del.code, 0, del.err);
    assert.match(del.out, /127\.0\.44\.1: deleted/);
    const ev = await s.waitForEvent((e) => e['event'] === 'CACHE ADMIN' && e['op'] === 'delete');
    assert.deepEqual([ev['address'], ev['by']], [addr, 'socket']);
    assert.equal(await connectOnce(s, addr), 'PASS NEW', 'deleted: screened again');

    const other = '127.0.44.2';
    const p = await cache(['pass', other, '--ttl', '1d', '--socket', sock]);
    assert.equal(p.code, 0, p.err);
    assert.match(p.out, /127\.0\.44\.2: passed until /);
    const pe = await s.waitForEvent((e) => e['event'] === 'CACHE ADMIN' && e['op'] === 'pass');
    assert.deepEqual([pe['address'], pe['ttl_ms'], pe['by']], [other, 86_400_000, 'socket']);
    assert.equal(await connectOnce(s, other), 'PASS OLD', 'passed by hand: PASS OLD on its first connection');

    const show = await cache(['show', other, '--socket', sock]);
    assert.match(show.out, /^127\.0\.44\.2 {2}pregreet: passed until /m);
    const list = await cache(['list', '--socket', sock]);
    assert.match(list.out, /^127\.0\.44\.1 /m);
    assert.match(list.out, /^127\.0\.44\.2 /m);
    const exp = await cache(['export', '--socket', sock]);
    assert.match(exp.out, /^smtpscreen-cache 1\n/);
    assert.match(exp.out, /^127\.0\.44\.2 1:\d+;/m);

    // import over the socket: a record from a file, logged by the screener.
    const impFile = path.join(dir, 'one.txt');
    fs.writeFileSync(impFile, `smtpscreen-cache 1\n127.0.44.9 1:${Date.now() + 3_600_000}\nnot a record\n`);
    const imp = await cache(['import', impFile, '--socket', sock]);
    assert.equal(imp.code, 0, imp.err);
    assert.match(imp.out, /imported 1 records, skipped 1 lines/);
    const ie = await s.waitForEvent((e) => e['event'] === 'CACHE ADMIN' && e['op'] === 'import');
    assert.deepEqual([ie['entries'], ie['skipped'], ie['by']], [1, 1, 'socket']);
    assert.match((await cache(['show', '127.0.44.9', '--socket', sock])).out, /pregreet: passed until/);

    // Garbage on the socket: an error reply, the screener goes on.
    const raw = net.connect(sock);
    raw.setEncoding('utf8');
    let got = '';
    raw.on('data', (d: string) => (got += d));
    raw.write('this is not json\n{"op":"show","address":"127.0.44.2"}\n');
    for (let i = 0; i < 50 && got.split('\n').length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    raw.destroy();
    const [bad, good] = got.split('\n');
    assert.equal((JSON.parse(bad ?? '{}') as Record<string, unknown>)['ok'], false);
    assert.equal((JSON.parse(good ?? '{}') as Record<string, unknown>)['found'], true);

    const refused = await cache(['delete', other, '--snapshot', snap]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /owned by a running screener \(pid \d+\)/);
    const readOnly = await cache(['list', '--snapshot', snap]);
    assert.equal(readOnly.code, 0, 'reading the snapshot of a running screener is fine');

    assert.equal(await s.stop(), 0);
    stopped = true;
    assert.equal(fs.existsSync(sock), false, 'the socket is removed at stop');
  } finally {
    if (!stopped) await s.stop();
  }
  // Offline, on the snapshot the screener saved at stop.
  const other = '127.0.44.2';
  assert.match((await cache(['show', other, '--snapshot', snap])).out, /pregreet: passed until/);
  const d = await cache(['delete', other, '--snapshot', snap]);
  assert.equal(d.code, 0, d.err);
  assert.match(d.err, /"event":"CACHE ADMIN".*"op":"delete".*"by":"offline"/, 'logged on stderr (log.destination stdout)');
  assert.match((await cache(['show', other, '--snapshot', snap])).out, /not in the cache/);
  assert.equal((await cache(['pass', '127.0.44.3', '--ttl', '2h', '--snapshot', snap])).code, 0);
  const exported = await cache(['export', '--snapshot', snap]);
  assert.match(exported.out, /^127\.0\.44\.3 /m);
  const file = path.join(dir, 'export.txt');
  fs.writeFileSync(file, exported.out);
  const snap2 = path.join(dir, 'other.snap');
  const imp = await cache(['import', file, '--snapshot', snap2]);
  assert.equal(imp.code, 0, imp.err);
  assert.match(imp.out, /imported 3 records, skipped 0 lines/);
  assert.equal((await cache(['export', '--snapshot', snap2])).out.split('\n').sort().join('\n'), exported.out.split('\n').sort().join('\n'));
});

test('admin.socket at start: a stale socket is replaced, a regular file refuses the start', { timeout: 30_000 }, async () => {
  const sock = path.join(dir, 'stale.sock');
  // A socket nobody listens on any more: a process that bound it and died (SIGKILL: no unlink).
  await run(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]).catch(() => undefined);
  assert.ok(fs.statSync(sock).isSocket());
  const s = await startScreener(config(sock, path.join(dir, 'stale.snap')));
  try {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
    assert.equal((await cache(['list', '--socket', sock])).code, 0);
  } finally {
    await s.stop();
  }
  const file = path.join(dir, 'not-a-socket');
  fs.writeFileSync(file, 'x');
  await assert.rejects(startScreener(config(file, path.join(dir, 'x.snap'))), /admin\.socket: .* exists and is not a socket/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x', 'the file is left alone');
});

test('admin.socket with user: created after the switch, owned by that user, mode 0600, removed by it at stop', { timeout: 30_000 }, async () => {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (the tests run as root)');
  fs.chmodSync(dir, 0o755); // traversable by nobody
  const own = fs.mkdtempSync(path.join(dir, 'run-'));
  fs.chownSync(own, 65534, 65534); // nobody's directory, as /run/smtpscreen would be
  const sock = path.join(own, 'admin.sock');
  const s = await startScreener({ ...config(sock, path.join(own, 'cache.snap')), user: 'nobody' });
  try {
    const st = fs.statSync(sock);
    assert.deepEqual([st.uid, st.mode & 0o777], [65534, 0o600]);
    assert.equal((await cache(['list', '--socket', sock])).code, 0, 'root may connect');
  } finally {
    assert.equal(await s.stop(), 0);
  }
  assert.equal(fs.existsSync(sock), false);
});
