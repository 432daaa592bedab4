/*
 * test/helpers/rsyslog.ts - a private rsyslogd receiving syslog over UDP on a
 * free loopback port and writing mail.* to its own file, as a mail host's
 * rsyslog writes /var/log/mail.log.
 *
 * Exports: startRsyslog(), Rsyslog, cliProc(configYaml), CliProc.
 * startRsyslog() writes DIR/rsyslog.conf (imudp and imtcp on 127.0.0.1:PORT only; no
 * imuxsock, no imklog: the system's /dev/log and kernel log are not touched;
 * RSYSLOG_TraditionalFileFormat, "Nov 30 18:30:14 host tag[pid]: text") and
 * runs `rsyslogd -n -f DIR/rsyslog.conf -i DIR/rsyslog.pid` as a child of this
 * process (so its PID is known; stop() sends it SIGTERM by that PID). It
 * resolves once a probe datagram has reached DIR/mail.log.
 * cliProc() runs `node dist/src/cli.js run` on a config file and resolves once
 * its port is bound (found by trying to bind it: a probe client would be
 * logged); its stdout is kept as text, not read for events.
 * A missing rsyslogd is an Error naming the Debian package (tests fail, never skip).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findExecutable } from './postfix.js';
import { freePort } from './ports.js';
import { repoRoot } from './screener.js';

/** Is 127.0.0.1:port taken (the screener has bound it)? Checked by binding, not connecting: a probe client would be logged. */
function bound(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(false)));
  });
}

export interface Rsyslog {
  dir: string;
  port: number;
  /** DIR/mail.log: mail.* in the traditional file format. */
  file: string;
  pid: number;
  /** The file's text ('' before the first line). */
  text(): string;
  /** Wait until `pred(text)` holds, for at most ms. */
  waitFor(pred: (text: string) => boolean, ms: number): Promise<string>;
  stop(): Promise<void>;
}

const procs = new Set<ChildProcess>();

/** A child a failed test forgot must not keep the test file alive: unref it and its pipes; the exit hook below kills it. */
function unrefChild(p: ChildProcess): void {
  p.unref();
  (p.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (p.stderr as unknown as { unref?: () => void } | null)?.unref?.();
}

process.on('exit', () => {
  for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
});

async function waitUntil(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`${what()} (waited ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRsyslog(): Promise<Rsyslog> {
  const bin = findExecutable('rsyslogd');
  if (bin === null) throw new Error('rsyslogd is not installed: run scripts/setup-test-deps.sh (Debian package "rsyslog")');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-rsyslog-'));
  const port = await freePort();
  const file = path.join(dir, 'mail.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, [
    '# written by test/helpers/rsyslog.ts: a private rsyslogd for one test',
    `global(workDirectory="${dir}")`,
    'module(load="imudp")',
    `input(type="imudp" address="127.0.0.1" port="${port}")`,
    'module(load="imtcp")',
    `input(type="imtcp" address="127.0.0.1" port="${port}")`,
    '$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat',
    `mail.* ${file}`,
    '',
  ].join('\n'));
  const proc = spawn(bin, ['-n', '-f', conf, '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  unrefChild(proc);
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const text = (): string => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  // Probe until a datagram lands: rsyslogd is then listening and writing.
  const probe = dgram.createSocket('udp4');
  try {
    await waitUntil(() => {
      if (proc.exitCode !== null) return true;
      probe.send(`<22>${'Jan  1 00:00:00'} probe test/probe[1]: ready`, port, '127.0.0.1');
      return text().includes('ready');
    }, 10_000, () => `rsyslogd did not write a probe line to ${file}; its output: ${out}`);
  } finally {
    probe.close();
  }
  if (proc.exitCode !== null) throw new Error(`rsyslogd exited ${proc.exitCode}: ${out}`);
  const pid = proc.pid as number;
  return {
    dir, port, file, pid, text,
    async waitFor(pred, ms) {
      await waitUntil(() => pred(text()), ms, () => `${file} never matched; it holds:\n${text()}`);
      return text();
    },
    async stop() {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        process.kill(pid, 'SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null && proc.signalCode === null) process.kill(pid, 'SIGKILL');
      }
      procs.delete(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliProc {
  proc: ChildProcess;
  pid: number;
  port: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code (SIGKILL after 10 s: null). */
  stop(): Promise<number | null>;
}

/** cliProc - the CLI on `config` (its listen address replaced by 127.0.0.1:<free port>), once it answers there. */
export async function cliProc(config: Record<string, unknown>): Promise<CliProc> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-cli-'));
  const port = await freePort();
  const file = path.join(dir, 'c.json'); // JSON is YAML
  // The tests run as root: a screener started as root without `user` runs only with allow_root.
  const root = config['user'] === undefined && config['allow_root'] === undefined ? { allow_root: true } : {};
  fs.writeFileSync(file, JSON.stringify({ ...root, ...config, listen: [{ address: `127.0.0.1:${port}` }] }));
  const proc = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli.js'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  unrefChild(proc);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let up = false;
  const t0 = Date.now();
  while (!up) {
    if (proc.exitCode !== null || Date.now() - t0 > 10_000) {
      throw new Error(`the screener did not listen on 127.0.0.1:${port} (exit ${proc.exitCode}); stderr: ${err}`);
    }
    up = await bound(port);
    if (!up) await new Promise((r) => setTimeout(r, 100));
  }
  return {
    proc, pid: proc.pid as number, port, stdout: () => out, stderr: () => err,
    async stop() {
      if (proc.exitCode === null) process.kill(proc.pid as number, 'SIGTERM');
      const timer = setTimeout(() => proc.exitCode === null && process.kill(proc.pid as number, 'SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      procs.delete(proc);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
