/*
 * Integration: privileges. The tests run as root, as an administrator starting
 * smtpscreen by hand or from an init script would:
 * - with `user: nobody`, on a port below 1024 of a loopback address: the
 *   running screener's /proc/<pid>/status shows nobody's uid and gid (real,
 *   effective, saved, fs) and no capabilities; clients are served; the cache
 *   snapshot is written as nobody; a reload cannot bind a new port below 1024
 *   and says so (RELOAD ok false), the old listener goes on;
 * - as root without `user` (and without allow_root): refused, exit 2, the port released;
 * - a snapshot directory the user cannot write: refused, naming the key and the directory;
 * - check-config names a user or group that does not exist;
 * - as systemd runs it (User=nobody, AmbientCapabilities=CAP_NET_BIND_SERVICE,
 *   reproduced with setpriv(1) from util-linux): binds the port, keeps only that
 *   capability; without the capability the EACCES error names the address and both fixes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { repoRoot, startScreener } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { findExecutable } from '../helpers/postfix.js';

const HOST = '127.0.13.25';
const CLI = path.join(repoRoot(), 'dist', 'src', 'cli.js');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A directory under /tmp that `nobody` can traverse and read (mkdtemp makes 0700). */
function openDir(owner?: number): string {
  const d = fs.mkdtempSync('/tmp/scr-priv-');
  fs.chmodSync(d, 0o755);
  if (owner !== undefined) fs.chownSync(d, owner, owner);
  dirs.push(d);
  return d;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port below 1024 free on HOST (the test process is root, so it can try). */
async function privilegedPort(not: number[] = []): Promise<number> {
  for (const p of [25, 587, 465, ...Array.from({ length: 60 }, (_, i) => 960 + i)]) {
    if (!not.includes(p) && (await canBind(p))) return p;
  }
  throw new Error(`no port below 1024 is free on ${HOST}`);
}

function ids(name: string): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`user ${name} does not exist (Debian's base-passwd has it)`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Fields of /proc/<pid>/status: "Uid" -> ["65534", ...]. */
function status(pid: number): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim().split(/\s+/).filter((x) => x !== ''));
  }
  return m;
}

interface Child {
  pid: number;
  events: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<number | null>;
  waitFor: (pred: (e: Record<string, unknown>) => boolean, ms?: number) => Promise<Record<string, unknown>>;
  kill: (sig?: NodeJS.Signals) => Promise<number | null>;
}

/** `smtpscreen run --config FILE`, under `prefix` (e.g. setpriv ...); stdout parsed as NDJSON events. */
function runCli(prefix: string[], config: string): Child {
  const argv = [...prefix, process.execPath, CLI, 'run', '--config', config];
  const proc = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  let err = '';
  let partial = '';
  const waiters = new Set<() => void>();
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (s: string) => {
    partial += s;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not an event */
      }
    }
    for (const w of [...waiters]) w();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s: string) => (err += s));
  let done = false;
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => {
    done = true;
    for (const w of [...waiters]) w();
    r(code);
  }));
  const waitFor = (pred: (e: Record<string, unknown>) => boolean, ms = 10_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const e = events.find(pred);
        if (e !== undefined || done) {
          clearTimeout(t);
          waiters.delete(check);
          if (e !== undefined) resolve(e);
          else reject(new Error(`exited before the event; events ${JSON.stringify(events)}; stderr ${err}`));
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no such event in ${ms} ms; events ${JSON.stringify(events)}; stderr ${err}`));
      }, ms);
      waiters.add(check);
      check();
    });
  const kill = async (sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (!done) proc.kill(sig);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  return { pid: proc.pid ?? -1, events, stderr: () => err, exited, waitFor, kill };
}

const nobody = ids('nobody');

describe('privileges', () => {
  test('root with user nobody on a port below 1024: uid/gid nobody, no capabilities, served; snapshot written as nobody; a reload cannot bind a new low port', async (t) => {
    const port = await privilegedPort();
    const snapDir = openDir(nobody.uid);
    const snap = path.join(snapDir, 'verdicts');
    const base = {
      hostname: 'screen.test', backend: { address: 'sink:0' }, pregreet: { wait: '200ms' },
      cache: { snapshot: snap, snapshot_interval: '1s' }, user: 'nobody',
    };
    const s = await startScreener({ ...base, listen: [`${HOST}:${port}`] });
    try {
      const started = s.eventsNamed('STARTED')[0] ?? {};
      assert.deepEqual([started['user'], started['uid'], started['gid'], started['listen']], ['nobody', nobody.uid, nobody.gid, [`${HOST}:${port}`]]);
      const st = status(s.pid);
      assert.deepEqual(st.get('Uid'), Array(4).fill(String(nobody.uid)), 'real, effective, saved, fs uid');
      assert.deepEqual(st.get('Gid'), Array(4).fill(String(nobody.gid)), 'real, effective, saved, fs gid');
      assert.ok((st.get('Groups') ?? []).every((g) => g === String(nobody.gid)), `supplementary groups ${JSON.stringify(st.get('Groups'))}`);
      for (const cap of ['CapEff', 'CapPrm', 'CapAmb']) assert.deepEqual(st.get(cap), ['0000000000000000'], cap);
      t.diagnostic(`Uid ${st.get('Uid')?.join(' ')}; CapEff ${st.get('CapEff')?.join('')}`);

      const c = await connectClient(HOST, port, '127.0.13.1');
      await c.readUntil(/^220 sink\.invalid /m, 5000);
      await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '127.0.13.1');
      c.write('QUIT\r\n');
      await c.closed;
      const saved = await s.waitForEvent((e) => e['event'] === 'CACHE' && e['op'] === 'save' && Number(e['entries']) >= 1, 5000);
      assert.equal(saved['file'], snap);
      assert.equal(fs.statSync(snap).uid, nobody.uid, 'the snapshot is written by nobody');

      // Reload as nobody: the config must be readable by it (it is read again after the drop); the helper's directory is root's, 0700.
      process.kill(s.pid, 'SIGHUP');
      const denied = await s.waitForEvent((e) => e['event'] === 'RELOAD');
      assert.deepEqual([denied['ok'], denied['level']], [false, 50]);
      assert.match(String(denied['error']), new RegExp(`${s.configFile}: cannot read config file \\(EACCES\\) \\(smtpscreen runs as uid ${nobody.uid} since its start: the configuration file, the access list and the certificates must be readable by it\\)`));
      fs.chmodSync(path.dirname(s.configFile), 0o755);
      const port2 = await privilegedPort([port]);
      fs.writeFileSync(s.configFile, toYaml({ ...base, listen: [`${HOST}:${port}`, `${HOST}:${port2}`] }));
      fs.chmodSync(s.configFile, 0o644);
      process.kill(s.pid, 'SIGHUP');
      let n = 0;
      const r = await s.waitForEvent((e) => e['event'] === 'RELOAD' && ++n === 2);
      assert.deepEqual([r['ok'], r['level'], r['code']], [false, 50, 'SCR_ERR_BIND']);
      assert.match(String(r['error']), new RegExp(`cannot bind ${HOST.replace(/\./g, '\\.')}:${port2} \\(EACCES`));
      assert.match(String(r['error']), /A reload after the drop .* cannot bind a new port below 1024: restart instead/);
      const d = await connectClient(HOST, port, '127.0.13.2');
      await d.readUntil(/^220 sink\.invalid /m, 5000);
      d.write('QUIT\r\n');
      await d.closed;
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
    assert.ok(s.eventsNamed('CACHE').some((e) => e['op'] === 'save' && e['entries'] === 2), 'the final save at stop, as nobody');
  });

  test('root without user and without allow_root: refused after the bind, exit 2, the port released', async () => {
    const port = await privilegedPort();
    const dir = openDir();
    const conf = path.join(dir, 'smtpscreen.yaml');
    fs.writeFileSync(conf, toYaml({ hostname: 'screen.test', listen: [`${HOST}:${port}`], backend: { address: 'sink:0' } }));
    const c = runCli([], conf);
    const code = await c.exited;
    assert.equal(code, 2, c.stderr());
    assert.match(c.stderr(), /^smtpscreen: cannot start: running as root: set "user:" to an unprivileged user .*"allow_root: true" keeps root/m);
    const failed = c.events.find((e) => e['event'] === 'START FAILED');
    assert.equal(failed?.['code'], 'SCR_ERR_PRIVILEGES');
    assert.equal(c.events.some((e) => e['event'] === 'STARTED'), false);
    assert.equal(await canBind(port), true, 'the listener was closed');
  });

  test('a snapshot directory the user cannot write: refused, naming cache.snapshot, the directory and the fix', async () => {
    const port = await privilegedPort();
    const dir = openDir(); // root's, 0755: nobody cannot write it
    const conf = path.join(dir, 'smtpscreen.yaml');
    fs.writeFileSync(conf, toYaml({
      hostname: 'screen.test', listen: [`${HOST}:${port}`], backend: { address: 'sink:0' },
      cache: { snapshot: path.join(dir, 'verdicts') }, user: 'nobody',
    }));
    const c = runCli([], conf);
    assert.equal(await c.exited, 2, c.stderr());
    assert.match(c.stderr(), new RegExp(`cache\\.snapshot: the directory ${dir} is not writable by nobody \\(EACCES\\).*chown nobody ${dir}`));
  });

  test('check-config: a user or group that does not exist is named, with the fix (exit 1)', () => {
    const dir = openDir();
    for (const [body, re] of [
      ['backend: { address: "127.0.0.1:10025" }\nuser: smtpscreen-no-such-user\n', /^smtpscreen: user: no such user "smtpscreen-no-such-user" \(getent passwd smtpscreen-no-such-user\): create it \(e\.g\. adduser --system/],
      ['backend: { address: "127.0.0.1:10025" }\nuser: nobody\ngroup: smtpscreen-no-such-group\n', /^smtpscreen: group: no such group "smtpscreen-no-such-group" .*leave group out/],
    ] as const) {
      const conf = path.join(dir, 'c.yaml');
      fs.writeFileSync(conf, body);
      const r = spawnSync(process.execPath, [CLI, 'check-config', '--config', conf], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, re);
    }
    fs.writeFileSync(path.join(dir, 'ok.yaml'), 'backend: { address: "127.0.0.1:10025" }\nuser: nobody\n');
    const ok = spawnSync(process.execPath, [CLI, 'check-config', '--config', path.join(dir, 'ok.yaml')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('as systemd runs it (User=nobody, AmbientCapabilities=CAP_NET_BIND_SERVICE): binds below 1024 with only that capability; without it, EACCES names the address and both fixes', async () => {
    const setpriv = findExecutable('setpriv');
    if (setpriv === null) throw new Error('setpriv is not installed: run scripts/setup-test-deps.sh (Debian package "util-linux")');
    const port = await privilegedPort();
    const dir = openDir();
    const conf = path.join(dir, 'smtpscreen.yaml');
    fs.writeFileSync(conf, toYaml({ hostname: 'screen.test', listen: [`${HOST}:${port}`], backend: { address: 'sink:0' }, pregreet: { wait: '200ms' }, user: 'nobody' }));
    const asNobody = [setpriv, `--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups'];
    const c = runCli([...asNobody, '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service'], conf);
    try {
      const started = await c.waitFor((e) => e['event'] === 'STARTED' || e['event'] === 'START FAILED');
      assert.equal(started['event'], 'STARTED', c.stderr());
      assert.deepEqual([started['user'], started['uid']], ['nobody', nobody.uid]);
      const st = status(c.pid);
      assert.deepEqual(st.get('Uid'), Array(4).fill(String(nobody.uid)));
      assert.deepEqual(st.get('CapEff'), ['0000000000000400'], 'CAP_NET_BIND_SERVICE only');
      const k = await connectClient(HOST, port, '127.0.13.3');
      await k.readUntil(/^220 sink\.invalid /m, 5000);
      k.write('QUIT\r\n');
      await k.closed;
    } finally {
      assert.equal(await c.kill(), 0, c.stderr());
    }
    const n = runCli(asNobody, conf);
    assert.equal(await n.exited, 2, n.stderr());
    const msg = n.stderr();
    assert.match(msg, new RegExp(`cannot bind ${HOST.replace(/\./g, '\\.')}:${port} \\(EACCES: permission denied\\)`));
    assert.match(msg, /start smtpscreen as root with "user:" set/);
    assert.match(msg, /AmbientCapabilities=CAP_NET_BIND_SERVICE/);
  });
});
