/*
 * test/helpers/haproxy.ts - a private haproxy (Debian's `haproxy`) for integration tests.
 *
 * Exports: haproxyPath(), checkHaproxyConfig(file), renderHaproxyConfig(template, opts),
 *          startHaproxy(configText, socketPath, dir), haproxyDir(), HaproxyProc, HaproxyServer,
 *          ServerStat, RenderOptions.
 *
 * renderHaproxyConfig turns the repository's contrib/haproxy/haproxy.cfg into a config
 * that runs here: its `bind :25` line on a loopback port, its `server` lines replaced by
 * the given screeners (each with its admin port as the check port; every other server
 * option still comes from the template's default-server line), the machine-wide global
 * settings (chroot, user/group, the stats socket under /run, syslog) replaced by a stats
 * socket in the test directory and logs on stdout, the global maxconn lowered to fit the
 * descriptor limit here, and the token CHANGE-ME by the given
 * one. Everything else (mode, timeouts, balance, the health check) is the template's own.
 * startHaproxy runs `haproxy -f FILE -db` (foreground) and stops it by its PID; stat()
 * reads `show stat` from the stats socket. A missing haproxy throws, naming the package.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findExecutable } from './postfix.js';

const NOT_INSTALLED = 'haproxy is not installed: run scripts/setup-test-deps.sh (Debian package "haproxy")';

export function haproxyPath(): string {
  const p = findExecutable('haproxy');
  if (p === null) throw new Error(NOT_INSTALLED);
  return p;
}

/** `haproxy -c -f FILE`: resolves with the exit code and the output. */
export function checkHaproxyConfig(file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(haproxyPath(), ['-c', '-f', file], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, output: stdout + stderr });
    });
  });
}

export interface HaproxyServer {
  name: string;
  /** The screener's SMTP listener port on 127.0.0.1. */
  port: number;
  /** The screener's admin listener port (the health check's port). */
  checkPort: number;
}

export interface RenderOptions {
  bindPort: number;
  servers: HaproxyServer[];
  /** Replaces CHANGE-ME (the admin bearer token in the health check). */
  token: string;
  /** The stats socket's path. */
  statsSocket: string;
  /** Replaces the global maxconn (default 4000). */
  maxconn?: number;
}

export function renderHaproxyConfig(template: string, o: RenderOptions): string {
  const out: string[] = [];
  let bound = false;
  let serversPlaced = false;
  let section = '';
  for (const line of template.split('\n')) {
    const t = line.trim();
    if (/^\S/.test(line)) section = t.split(/\s+/)[0] ?? '';
    // haproxy needs 2 x maxconn descriptors and refuses to start when it cannot raise its
    // limit that far (this machine's hard limit is 20,000): a smaller global maxconn here.
    if (section === 'global' && t.startsWith('maxconn ')) {
      out.push(`    maxconn ${o.maxconn ?? 4000}`);
      continue;
    }
    if (/^(chroot|user|group|stats socket|log \/dev\/log)\b/.test(t)) continue;
    if (t === 'global') {
      out.push(line, `    stats socket ${o.statsSocket} mode 600 level admin`, '    log stdout format raw local0 info');
      continue;
    }
    if (/^bind :25$/.test(t)) {
      out.push(line.replace(':25', `127.0.0.1:${o.bindPort}`));
      bound = true;
      continue;
    }
    if (t.startsWith('server ')) {
      if (!serversPlaced) {
        for (const s of o.servers) out.push(`    server ${s.name} 127.0.0.1:${s.port} port ${s.checkPort}`);
        serversPlaced = true;
      }
      continue;
    }
    out.push(line.replace(/CHANGE-ME/g, o.token));
  }
  if (!bound) throw new Error('renderHaproxyConfig: the template has no "bind :25" line');
  if (!serversPlaced) throw new Error('renderHaproxyConfig: the template has no server lines');
  return out.join('\n');
}

export interface ServerStat {
  status: string;
  checkStatus: string;
  checkCode: string;
  /** Sessions in total (stot). */
  sessions: number;
}

export interface HaproxyProc {
  pid: number;
  dir: string;
  output(): string;
  /** `show stat` rows of the backend, by server name. */
  stat(backend: string): Promise<Map<string, ServerStat>>;
  stop(): Promise<void>;
}

function ask(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => { text += d; });
    c.on('error', reject);
    c.on('close', () => resolve(text));
    c.setTimeout(5000, () => c.destroy(new Error(`stats socket: no answer to ${command}`)));
    c.end(`${command}\n`);
  });
}

export async function startHaproxy(configText: string, socketPath: string, dir: string): Promise<HaproxyProc> {
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, configText);
  const child: ChildProcess = spawn(haproxyPath(), ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => { exited = true; resolve(); }));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`haproxy did not start: ${out}`);
  const stop = async (): Promise<void> => {
    if (!exited) {
      process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => { if (!exited) process.kill(pid, 'SIGKILL'); }, 5000);
      await exit;
      clearTimeout(t);
    }
  };
  // Ready when the stats socket answers.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`haproxy exited at start:\n${out}`);
    if (fs.existsSync(socketPath)) {
      try {
        await ask(socketPath, 'show info');
        break;
      } catch { /* not yet */ }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy: no stats socket after 10 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stat = async (backend: string): Promise<Map<string, ServerStat>> => {
    const csv = await ask(socketPath, 'show stat');
    const lines = csv.split('\n');
    const head = (lines[0] ?? '').replace(/^# /, '').split(',');
    const col = (n: string) => head.indexOf(n);
    const rows = new Map<string, ServerStat>();
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (f[col('pxname')] !== backend) continue;
      const sv = f[col('svname')] ?? '';
      if (sv === 'BACKEND' || sv === 'FRONTEND') continue;
      rows.set(sv, {
        status: f[col('status')] ?? '',
        checkStatus: f[col('check_status')] ?? '',
        checkCode: f[col('check_code')] ?? '',
        sessions: Number(f[col('stot')] ?? 'NaN'),
      });
    }
    return rows;
  };
  return { pid, dir, output: () => out, stat, stop };
}

/** A fresh directory for one haproxy run. */
export function haproxyDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-haproxy-'));
}
