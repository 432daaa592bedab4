/*
 * Integration: the screener's stdout goes into a pipe nobody reads (the test
 * holds the read end and does not read for STALL_MS). Clients must still get
 * their teaser at once, the greet wait must end on time, and they must be
 * handed over to the backend (the built-in sink); once the test reads again,
 * LOG DROPPED reports the lines that did not fit in log.buffer. With the
 * synchronous writer the screener stopped at the first full pipe: the teaser
 * and the backend's 220 came only when the reader came back.
 * A second test stops the screener while the pipe is still full: it exits
 * (the exit flush gives up after 2 s) instead of hanging.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { connectClient } from '../helpers/smtp-client.js';
import { freePort } from '../helpers/ports.js';
import { repoRoot, withAllowRoot } from '../helpers/screener.js';

// How long the reader does not read: 20 s, as long as a stalled pipe or journald was seen to.
const STALL_MS = 20_000;
const GREET_WAIT_MS = 1000;
const started: ChildProcess[] = [];
const dirs: string[] = [];

after(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Run {
  proc: ChildProcess;
  port: number;
  /** Start reading stdout; resolves with every line once `pred` matched one (or rejects after ms). */
  readUntil(pred: (e: Record<string, unknown>) => boolean, ms: number): Promise<Array<Record<string, unknown>>>;
  exited: Promise<number | null>;
}

/** The CLI with stdout into a pipe the test does not read until readUntil(). */
async function startStalled(): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-logstall-'));
  dirs.push(dir);
  const port = await freePort();
  const cfg = {
    listen: [{ address: `127.0.0.1:${port}` }],
    backend: { address: 'sink:0' },
    pregreet: { wait: `${GREET_WAIT_MS}ms` },
    log: { format: 'json', level: 'debug', destination: 'stdout', buffer: 8192 },
  };
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, withAllowRoot(toYaml(cfg)));
  const proc = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli.js'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  const out = proc.stdout;
  assert.ok(out !== null);
  out.pause(); // Node reads at most one chunk ahead into a paused stream; the 64 KiB pipe fills behind it
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  // Started? The STARTED line is in the pipe we do not read: wait for the port to answer instead.
  const t0 = Date.now();
  for (;;) {
    try {
      const c = await connectClient('127.0.0.1', port, '127.0.9.1');
      c.destroy();
      break;
    } catch {
      if (Date.now() - t0 > 10_000) throw new Error(`screener did not listen on ${port} within 10 s; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const readUntil = (pred: (e: Record<string, unknown>) => boolean, ms: number): Promise<Array<Record<string, unknown>>> =>
    new Promise((resolve, reject) => {
      const lines: Array<Record<string, unknown>> = [];
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no matching line within ${ms} ms; last lines: ${JSON.stringify(lines.slice(-5))}; stderr: ${stderr}`)), ms);
      out.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          try {
            const e = JSON.parse(line) as Record<string, unknown>;
            lines.push(e);
            if (pred(e)) {
              clearTimeout(timer);
              resolve(lines);
            }
          } catch {
            /* a partial line at the start is impossible; anything else is not ours */
          }
        }
      });
      out.resume();
    });
  return { proc, port, readUntil, exited };
}

/** One client from `addr`: teaser time, and the time of the backend's final "220 " (the end of the greet wait and the handoff). */
async function client(port: number, addr: string): Promise<{ teaserMs: number; greetMs: number }> {
  const t0 = Date.now();
  const c = await connectClient('127.0.0.1', port, addr);
  try {
    await c.readUntil(/^220-/m, 30_000);
    const teaserMs = Date.now() - t0;
    await c.readUntil(/^220 .*\r\n/m, 30_000);
    const greetMs = Date.now() - t0;
    c.write('QUIT\r\n');
    await c.readUntil(/^221 /m, 30_000);
    return { teaserMs, greetMs };
  } finally {
    c.destroy();
  }
}

test('a stalled stdout reader: clients are greeted, wait the greet time and are handed over; LOG DROPPED afterwards', { timeout: 90_000 }, async () => {
  const run = await startStalled();
  const t0 = Date.now();
  // Fill the pipe and the 8 KiB buffer: 120 clients at once, each logging several debug/info lines.
  const fill = await Promise.all(Array.from({ length: 120 }, (_, i) => client(run.port, `127.0.${1 + (i >> 6)}.${1 + (i & 63)}`)));
  assert.equal(fill.length, 120);
  // Now the pipe has been full for a while: these clients are the ones measured.
  const measured = await Promise.all(Array.from({ length: 10 }, (_, i) => client(run.port, `127.0.8.${1 + i}`)));
  const stalledFor = Date.now() - t0;
  assert.ok(stalledFor < STALL_MS, `the clients took ${stalledFor} ms, as long as the stall: the screener waited for its log reader`);
  for (const m of measured) {
    assert.ok(m.teaserMs < 2000, `teaser after ${m.teaserMs} ms`);
    assert.ok(m.greetMs >= GREET_WAIT_MS - 50, `greet wait ended early: ${m.greetMs} ms`);
    assert.ok(m.greetMs < GREET_WAIT_MS + 3000, `greet wait ended late: ${m.greetMs} ms (the wait is ${GREET_WAIT_MS} ms)`);
  }
  // Keep the reader stalled for the rest of STALL_MS, then read: LOG DROPPED comes once the pipe drains.
  await new Promise((r) => setTimeout(r, Math.max(0, STALL_MS - (Date.now() - t0))));
  const lines = await run.readUntil((e) => e['event'] === 'LOG DROPPED', 20_000);
  const dropped = lines.find((e) => e['event'] === 'LOG DROPPED') ?? {};
  assert.equal(dropped['destination'], 'stdout');
  assert.ok(typeof dropped['dropped'] === 'number' && dropped['dropped'] > 0, JSON.stringify(dropped));
  assert.equal(dropped['total'], dropped['dropped']);
  assert.equal(dropped['level'], 40);
  assert.equal(typeof dropped['msg'], 'string');
  // Every client was handed over: 130 HANDOFF lines were logged, less those dropped; the clients saw the sink's 220 above.
  run.proc.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});

test('a stalled stdout reader does not hold the exit: SIGTERM exits after the 2 s flush gives up', { timeout: 60_000 }, async () => {
  const run = await startStalled();
  await Promise.all(Array.from({ length: 120 }, (_, i) => client(run.port, `127.0.${1 + (i >> 6)}.${1 + (i & 63)}`)));
  const t0 = Date.now();
  run.proc.kill('SIGTERM');
  const code = await Promise.race([run.exited, new Promise<string>((r) => setTimeout(() => r('still running after 20 s'), 20_000))]);
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 20_000);
});
