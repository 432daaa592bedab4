/*
 * `smtpscreen stats` inputs: gzip, stdin, several files, an unreadable file,
 * a line longer than MAX_LINE, and --follow: appended lines, a rotated file
 * (renamed, a new one created) and a copytruncate'd one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LineSplitter, MAX_LINE } from '../../src/stats/input.js';
import type { Summary } from '../../src/stats/summary.js';
import { repoRoot } from '../helpers/screener.js';
import { CLI, statsCli, statsJson } from './run.js';

const DAY = path.join(repoRoot(), 'fixtures', 'stats', 'day.ndjson');
const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'stats-in-'));

const connect = (i: number): string =>
  JSON.stringify({ level: 30, time: Date.UTC(2026, 10, 30, 10, 0, i), event: 'CONNECT', client: `192.0.2.${i % 250}`, port: 1000 + i });

test('gzip: the same counts as the plain file, by content not by name', async () => {
  const dir = tmp();
  const gz = path.join(dir, 'day.ndjson.gz');
  const hidden = path.join(dir, 'day.log'); // gzip without the .gz name
  writeFileSync(gz, gzipSync(readFileSync(DAY)));
  writeFileSync(hidden, gzipSync(readFileSync(DAY)));
  const plain = await statsJson([DAY]);
  assert.deepEqual(await statsJson([gz]), plain);
  assert.deepEqual(await statsJson([hidden]), plain);
});

test('stdin ("-" or no file) and several files add up', async () => {
  const text = readFileSync(DAY);
  const a = await statsCli(['--json'], text);
  const b = await statsCli(['--json', '-'], text);
  assert.equal(a.code, 0, a.stderr);
  const sa = JSON.parse(a.stdout) as Summary;
  assert.equal(sa.connections.total, 13);
  assert.deepEqual(JSON.parse(b.stdout), sa);
  const two = await statsJson([DAY, DAY]);
  assert.equal(two.connections.total, 26);
  assert.equal(two.input.lines, 128);
});

test('an unreadable file: exit 2 naming it; a bad flag: exit 1 naming it', async () => {
  const r = await statsCli(['/nonexistent/x.log']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/nonexistent\/x\.log/);
  const u = await statsCli(['--top', 'lots', DAY]);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /--top "lots"/);
  const f = await statsCli(['--format', 'xml', DAY]);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /--format "xml"/);
  const i = await statsCli(['--interval', '1s', DAY]);
  assert.equal(i.code, 1);
  assert.match(i.stderr, /--interval needs --follow/);
});

test('LineSplitter: CRLF, a line split across chunks, a line past MAX_LINE cut once', () => {
  const got: string[] = [];
  const s = new LineSplitter((l) => got.push(l));
  s.push('a\r\nb');
  s.push('c\n');
  s.push('x'.repeat(MAX_LINE + 10));
  s.push('y'.repeat(MAX_LINE));
  s.push('zz\nlast');
  s.end();
  assert.equal(got.length, 4);
  assert.deepEqual([got[0], got[1], got[3]], ['a', 'bc', 'last']);
  assert.equal(got[2]?.length, MAX_LINE);
});

/** The CLI with --follow: each summary it prints (one JSON per line), and a stop. */
function followCli(file: string): { summaries: Summary[]; waitFor: (p: (s: Summary) => boolean, what: string) => Promise<Summary>; stop: () => Promise<number | null> } {
  const p = spawn(process.execPath, [CLI, 'stats', '--follow', '--interval', '100ms', '--json', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const summaries: Summary[] = [];
  let buf = '';
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      summaries.push(JSON.parse(buf.slice(0, nl)) as Summary);
      buf = buf.slice(nl + 1);
    }
  });
  const exited = new Promise<number | null>((r) => p.on('close', r));
  return {
    summaries,
    async waitFor(pred, what) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const last = summaries.at(-1);
        if (last !== undefined && pred(last)) return last;
        if (Date.now() > deadline) throw new Error(`follow: no summary with ${what}; last: ${JSON.stringify(last?.connections)} ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      p.kill('SIGTERM');
      return exited;
    },
  };
}

test('--follow: appended lines, then a rotated file (renamed, recreated), then copytruncate', async () => {
  const dir = tmp();
  const file = path.join(dir, 'mail.log');
  writeFileSync(file, [0, 1, 2].map(connect).join('\n') + '\n');
  const f = followCli(file);
  try {
    await f.waitFor((s) => s.connections.total === 3, '3 connections (the file as it was)');
    appendFileSync(file, [3, 4].map(connect).join('\n') + '\n');
    await f.waitFor((s) => s.connections.total === 5, '5 (appended)');
    // A half-written line waits for its end.
    appendFileSync(file, connect(5).slice(0, 20));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(f.summaries.at(-1)?.input.malformed, 0, 'a partial line is not read as a line');
    appendFileSync(file, connect(5).slice(20) + '\n');
    await f.waitFor((s) => s.connections.total === 6, '6 (the partial line completed)');
    // logrotate's default: rename, then a new file; the old one gets a last line before the writer reopens.
    renameSync(file, `${file}.1`);
    appendFileSync(`${file}.1`, connect(6) + '\n');
    writeFileSync(file, [7, 8].map(connect).join('\n') + '\n');
    await f.waitFor((s) => s.connections.total === 9, '9 (the old file to its end, the new one from its start)');
    // copytruncate: the file is emptied in place, then written again.
    truncateSync(file, 0);
    await new Promise((r) => setTimeout(r, 400));
    appendFileSync(file, connect(9) + '\n');
    const s = await f.waitFor((x) => x.connections.total === 10, '10 (read again from the start after the truncation)');
    assert.equal(s.input.malformed, 0);
  } finally {
    const code = await f.stop();
    assert.equal(code, 0, 'SIGTERM: a last summary and exit 0');
  }
  assert.equal(f.summaries.at(-1)?.connections.total, 10, 'the last summary, printed at SIGTERM');
});

test('--follow on stdin: a summary every interval while it is open, and a last one at SIGTERM', { timeout: 30_000 }, async () => {
  const p = spawn(process.execPath, [CLI, 'stats', '--follow', '--interval', '100ms', '--json', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => p.on('close', r));
  p.stdin.write([0, 1].map(connect).join('\n') + '\n');
  const deadline = Date.now() + 15_000;
  while (!out.split('\n').some((l) => l.includes('"total":2')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  p.stdin.write(connect(2) + '\n');
  while (!out.split('\n').some((l) => l.includes('"total":3')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  p.kill('SIGTERM');
  assert.equal(await exited, 0);
  const last = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Summary;
  assert.equal(last.connections.total, 3);
});
