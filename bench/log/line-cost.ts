/*
 * bench/log/line-cost.ts - what one logged event costs on each destination, from emit() to the kernel.
 *
 * Usage: node dist/bench/log/line-cost.js [lines=50000]
 * For each case, `lines` CONNECT events go through Emitter.emit() in batches of 1,000 (then a
 * setImmediate, so that the writers run as they would between client events), and the wall time
 * until everything is written is divided by the lines. Cases:
 *   json/stdout-pipe   NDJSON into a pipe read by a child `cat > /dev/null` (log/out-fd.ts socket writer)
 *   json/file          NDJSON appended to a file in /tmp (log/out-fd.ts fs.write writer)
 *   postscreen/file    postscreen text (a JSON.parse per line) to the same file
 *   syslog/udp         RFC 3164 datagrams to a local UDP receiver (log/out-syslog.ts)
 *   json/none          NDJSON to a stream that discards: the cost of building the line alone
 * Prints one JSON object per case: µs per line, lines dropped (should be 0: the bound is 64 MiB).
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createLogger, flushLog, logOutput, type Logger } from '../../src/log/logger.js';
import { Emitter } from '../../src/log/emit.js';
import { EV } from '../../src/log/events.js';
import { openFile, openFd } from '../../src/log/out-fd.js';
import { openSyslog } from '../../src/log/out-syslog.js';

const N = Number(process.argv[2] ?? 50_000);
const LIMIT = 64 * 1024 * 1024;

async function time(name: string, log: Logger, settle: () => Promise<void> = async () => undefined, out = (l: string): void => console.log(l)): Promise<void> {
  const em = new Emitter(log);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1000) {
    for (let j = 0; j < 1000; j++) em.emit(EV.CONNECT, { client: '192.0.2.1', port: 40000 + (j & 1023), local: '127.0.0.1', local_port: 25 });
    await new Promise((r) => setImmediate(r));
  }
  await flushLog(log, 60_000);
  await settle();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  out(JSON.stringify({ case: name, lines: N, usPerLine: Math.round(us * 100) / 100, dropped: logOutput(log)?.dropped ?? 0 }));
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'line-cost-'));
await time('json/none', createLogger({ format: 'json', level: 'info', destination: { write: () => undefined } as unknown as NodeJS.WritableStream }));
await time('json/file', createLogger({ format: 'json', level: 'info', output: openFile(path.join(dir, 'a.log'), LIMIT) }));
await time('postscreen/file', createLogger({ format: 'postscreen', level: 'info', output: openFile(path.join(dir, 'b.log'), LIMIT) }));
const rx = dgram.createSocket('udp4');
let got = 0;
rx.on('message', () => got++);
await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
rx.setRecvBufferSize(8 * 1024 * 1024);
await time('syslog/udp', createLogger({ format: 'json', level: 'info', output: openSyslog('127.0.0.1', rx.address().port, LIMIT), program: 'postfix/postscreen' }));
console.log(JSON.stringify({ case: 'syslog/udp', received: got }));
rx.close();
// The pipe case runs in a child whose stdout is a pipe to cat.
if (process.argv[3] !== 'child') {
  const sh = spawn('sh', ['-c', `${process.execPath} ${process.argv[1]} ${N} child | cat > /dev/null`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await new Promise((r) => sh.on('exit', r));
} else {
  // stdout is the pipe measured: the result goes to stderr.
  await time('json/stdout-pipe', createLogger({ format: 'json', level: 'info', output: openFd(1, LIMIT) }), undefined, (l) => process.stderr.write(l + '\n'));
}
fs.rmSync(dir, { recursive: true, force: true });
