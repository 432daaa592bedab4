/*
 * Integration: log.destination file. logrotate renames the file and sends
 * SIGUSR1 (postrotate): the screener logs LOG REOPEN into a new file of the
 * configured name, and later lines go there, none to the renamed one. A file
 * that cannot be opened stops `run` with exit 1 and a message naming log.file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliProc, type CliProc } from '../helpers/rsyslog.js';
import { connectClient } from '../helpers/smtp-client.js';
import { repoRoot } from '../helpers/screener.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-logfile-'));
let scr: CliProc | null = null;
after(async () => {
  await scr?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function read(file: string): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function waitLine(file: string, pred: (e: Record<string, unknown>) => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!read(file).some(pred)) {
    if (Date.now() - t0 > ms) throw new Error(`no such line in ${file} within ${ms} ms; it holds: ${JSON.stringify(read(file).slice(-5))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function client(port: number, addr: string): Promise<void> {
  const c = await connectClient('127.0.0.1', port, addr);
  await c.readUntil(/^220 .*\r\n/m, 10_000);
  c.write('QUIT\r\n');
  await c.readUntil(/^221 /m, 10_000);
  c.destroy();
}

test('SIGUSR1 reopens log.file by name after a rename (logrotate): LOG REOPEN and later lines in the new file', { timeout: 60_000 }, async () => {
  const file = path.join(dir, 'smtpscreen.log');
  scr = await cliProc({ backend: { address: 'sink:0' }, pregreet: { wait: '200ms' }, log: { destination: 'file', file, format: 'json' } });
  await waitLine(file, (e) => e['event'] === 'STARTED');
  await client(scr.port, '127.0.7.1');
  await waitLine(file, (e) => e['event'] === 'DISCONNECT' && e['client'] === '127.0.7.1');
  fs.renameSync(file, `${file}.1`);
  process.kill(scr.pid, 'SIGUSR1');
  await waitLine(file, (e) => e['event'] === 'LOG REOPEN');
  await client(scr.port, '127.0.7.2');
  await waitLine(file, (e) => e['event'] === 'DISCONNECT' && e['client'] === '127.0.7.2');
  assert.equal(await scr.stop(), 0);
  scr = null;

  const old = read(`${file}.1`);
  const now = read(file);
  assert.ok(old.some((e) => e['event'] === 'CONNECT' && e['client'] === '127.0.7.1'));
  assert.ok(!old.some((e) => e['client'] === '127.0.7.2'), 'a line after the reopen went to the renamed file');
  const reopen = now.find((e) => e['event'] === 'LOG REOPEN');
  assert.deepEqual({ file: reopen?.['file'], level: reopen?.['level'] }, { file, level: 30 });
  assert.ok(now.some((e) => e['event'] === 'CONNECT' && e['client'] === '127.0.7.2'));
  assert.ok(now.some((e) => e['event'] === 'STOPPED'), 'the last line is written before the exit');
});

test('a log.file that cannot be opened: exit 1, the message names log.file and the fix', { timeout: 30_000 }, async () => {
  const cfg = path.join(dir, 'bad.json');
  const file = path.join(dir, 'no-such-dir', 'x.log');
  fs.writeFileSync(cfg, JSON.stringify({ listen: [{ address: '127.0.0.1:0' }], backend: { address: 'sink:0' }, log: { destination: 'file', file } }));
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = execFile(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli.js'), 'run', '--config', cfg], { timeout: 20_000 }, (err, _o, stderr) => {
      resolve({ code: err === null ? 0 : (p.exitCode ?? null), stderr });
    });
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^smtpscreen: log\\.file: cannot open "${file.replace(/[.]/g, '\\.')}" for appending \\(ENOENT\\): create its directory`));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('check-config refuses log.destination file without log.file, naming the key', { timeout: 30_000 }, async () => {
  const cfg = path.join(dir, 'nofile.json');
  fs.writeFileSync(cfg, JSON.stringify({ log: { destination: 'file' } }));
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = execFile(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli.js'), 'check-config', '--config', cfg], { timeout: 20_000 }, (err, _o, stderr) => {
      resolve({ code: err === null ? 0 : (p.exitCode ?? null), stderr });
    });
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /log\.file/);
  assert.match(r.stderr, /set log\.file/);
});
