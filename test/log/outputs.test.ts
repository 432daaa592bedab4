/*
 * Unit tests of the log destinations (log/out-fd.ts, log/out-syslog.ts) and the
 * syslog/journal renderings (log/logger.ts): the bound drops and counts, the
 * drop report comes once after the destination caught up, syslog datagrams
 * are RFC 3164 with facility mail, journal lines carry only the priority.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openFile } from '../../src/log/out-fd.js';
import { openSyslog } from '../../src/log/out-syslog.js';
import { createLogger, logOutput, flushLog, syslogTime } from '../../src/log/logger.js';
import { Emitter } from '../../src/log/emit.js';
import { EV } from '../../src/log/events.js';
import { validateConfig } from '../../src/config/validate.js';
import { ScreenError } from '../../src/util/errors.js';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-out-'));

test('file destination: lines past the bound are dropped and counted; one report once it caught up', async () => {
  const dir = tmp();
  const file = path.join(dir, 'x.log');
  const out = openFile(file, 1000);
  const reports: Array<[number, number]> = [];
  out.onRecover = (n, total) => reports.push([n, total]);
  const line = 'x'.repeat(99) + '\n'; // 100 characters
  let accepted = 0;
  for (let i = 0; i < 25; i++) if (out.write(line)) accepted++; // all in one tick: nothing written yet
  assert.equal(accepted, 10, 'the 1000-character bound holds 10 lines');
  assert.equal(out.dropped, 15);
  assert.equal(await out.flush(5000), true);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reports, [[15, 15]]);
  assert.equal(fs.readFileSync(file, 'utf8'), line.repeat(10));
  // Caught up: lines fit again, and no new report without new drops.
  assert.equal(out.write(line), true);
  await out.flush(5000);
  await new Promise((r) => setImmediate(r));
  assert.equal(reports.length, 1);
  out.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('file destination through the logger: LOG DROPPED is logged through emit() with the counts, after the drops', async () => {
  const dir = tmp();
  const file = path.join(dir, 'x.log');
  const log = createLogger({ format: 'json', level: 'info', output: openFile(file, 4096) });
  const em = new Emitter(log);
  for (let i = 0; i < 200; i++) em.emit(EV.CONNECT, { client: '192.0.2.1', port: i, local: '127.0.0.1', local_port: 25 });
  const dropped = logOutput(log)?.dropped ?? 0;
  assert.ok(dropped > 0, 'some of 200 lines (~250 bytes each) did not fit in 4096');
  await flushLog(log, 5000);
  await new Promise((r) => setTimeout(r, 50));
  await flushLog(log, 5000);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const report = lines.find((e) => e['event'] === 'LOG DROPPED');
  assert.deepEqual({ dropped: report?.['dropped'], total: report?.['total'], destination: report?.['destination'], level: report?.['level'] },
    { dropped, total: dropped, destination: 'file', level: 40 });
  assert.equal(report?.['msg'], `LOG DROPPED ${dropped} lines (file could not keep up), ${dropped} since start`);
  assert.equal(lines.filter((e) => e['event'] === 'CONNECT').length, 200 - dropped);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('syslog destination: one RFC 3164 datagram per line, facility mail, the tag and pid, postscreen text; lines logged before the socket is connected are sent too', async () => {
  const rx = dgram.createSocket('udp4');
  const got: string[] = [];
  rx.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  const port = rx.address().port;
  const log = createLogger({ format: 'json', level: 'info', output: openSyslog('127.0.0.1', port, 1 << 20), program: 'postfix/postscreen', hostname: 'mx1.example.org' });
  const em = new Emitter(log);
  em.emit(EV.CONNECT, { client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 25 });
  em.emit(EV.BACKEND_FAIL, { client: '192.0.2.1', port: 5678, backend: '127.0.0.1:10025', stage: 'connect', reason: 'ECONNREFUSED' }, 'warn');
  await flushLog(log, 5000);
  const t0 = Date.now();
  while (got.length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
  rx.close();
  logOutput(log)?.close();
  const stamp = '[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d';
  assert.equal(got.length, 2);
  assert.match(got[0] ?? '', new RegExp(`^<22>${stamp} mx1 postfix/postscreen\\[${process.pid}\\]: CONNECT from \\[192\\.0\\.2\\.1\\]:5678 to \\[127\\.0\\.0\\.1\\]:25$`));
  assert.match(got[1] ?? '', new RegExp(`^<20>${stamp} mx1 postfix/postscreen\\[${process.pid}\\]: warning: BACKEND FAIL 127\\.0\\.0\\.1:10025 at connect for \\[192\\.0\\.2\\.1\\]:5678: ECONNREFUSED$`));
});

test('syslogTime: "Mmm dd hh:mm:ss" in local time, the day padded with a space', () => {
  const d = new Date(2026, 10, 3, 9, 5, 1); // local time
  assert.equal(syslogTime(d.getTime()), 'Nov  3 09:05:01');
  assert.equal(syslogTime(new Date(2026, 0, 21, 23, 59, 59).getTime()), 'Jan 21 23:59:59');
});

test('journal format: the postscreen text behind sd-daemon\'s <priority> prefix and nothing else', () => {
  const chunks: string[] = [];
  const log = createLogger({ format: 'journal', level: 'info', destination: { write: (s: string) => chunks.push(s) } as unknown as NodeJS.WritableStream });
  const em = new Emitter(log);
  em.emit(EV.PASS_NEW, { client: '192.0.2.1', port: 1 });
  em.emit(EV.STRESS, { state: 'enter', count: 9 }, 'warn');
  assert.deepEqual(chunks.join('').split('\n'), ['<6>PASS NEW [192.0.2.1]:1', '<4>warning: entering STRESS mode with 9 connections', '']);
});

test('config: log.syslog.tag must be one word; log.buffer has a floor', () => {
  for (const [raw, key] of [
    [{ log: { syslog: { tag: 'postfix postscreen' } } }, 'log.syslog.tag'],
    [{ log: { syslog: { tag: 'a:b' } } }, 'log.syslog.tag'],
    [{ log: { buffer: 100 } }, 'log.buffer'],
  ] as const) {
    assert.throws(() => validateConfig(raw), (e: unknown) => e instanceof ScreenError && e.details['key'] === key, key);
  }
  assert.equal(validateConfig({ log: { syslog: { tag: 'smtpscreen' } } }).log.syslog.tag, 'smtpscreen');
});

test('syslog over tcp: a daemon that stops reading costs counted drops, reported once it reads again; a lost connection is retried', { timeout: 30_000 }, async () => {
  const got: string[] = [];
  let conn: net.Socket | null = null;
  const srv = net.createServer((s) => {
    conn = s;
    s.on('data', (c: Buffer) => got.push(c.toString('utf8')));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  const out = openSyslog('127.0.0.1', port, 64 * 1024, 'tcp');
  const reports: Array<[number, number]> = [];
  out.onRecover = (n, total) => reports.push([n, total]);
  const until = async (pred: () => boolean, what: string): Promise<void> => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > 10_000) throw new Error(`${what} within 10 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  out.write('first\n');
  await until(() => got.join('').includes('first\n'), 'first line');
  // The daemon stops reading: the kernel buffers fill, then the 64 KiB queue; the rest is dropped.
  (conn as net.Socket | null)?.pause();
  const line = 'y'.repeat(999) + '\n';
  let written = 0;
  for (let i = 0; i < 20_000 && out.dropped === 0; i++) {
    if (out.write(line)) written++;
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 1)); // let the socket move what it can
  }
  assert.ok(out.dropped > 0, `nothing dropped after ${written} lines`);
  for (let i = 0; i < 10; i++) out.write(line);
  const dropped = out.dropped;
  assert.equal(reports.length, 0, 'no report while it cannot keep up');
  (conn as net.Socket | null)?.resume();
  await until(() => reports.length === 1, 'the drop report');
  assert.deepEqual(reports[0], [dropped, dropped]);
  // The connection is lost: lines are counted as dropped until it is back (retried every second).
  (conn as net.Socket | null)?.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const before = out.dropped;
  out.write('while down\n');
  assert.equal(out.dropped, before + 1);
  await until(() => { out.write('again\n'); return got.join('').includes('again\n'); }, 'a line after the reconnect');
  out.close();
  srv.close();
});
