/*
 * bench/log/syslog-burst.ts - a burst of lines into a real rsyslogd (test/helpers/rsyslog.ts), over TCP and UDP:
 * how many arrive in its file, how many the destination counted as dropped, and what a line cost.
 *
 * Usage (rsyslog installed): node dist/bench/log/syslog-burst.js [lines=50000] [buffer=4194304]
 * The lines are emitted in batches of 1,000 with a setImmediate between them (as between client events).
 * "lost unseen" = lines neither in the file nor counted as dropped.
 */
import { startRsyslog } from '../../test/helpers/rsyslog.js';
import { createLogger, flushLog, logOutput } from '../../src/log/logger.js';
import { Emitter } from '../../src/log/emit.js';
import { EV } from '../../src/log/events.js';
import { openSyslog } from '../../src/log/out-syslog.js';

const N = Number(process.argv[2] ?? 50_000);
const BUF = Number(process.argv[3] ?? 4 * 1024 * 1024);
for (const transport of ['tcp', 'udp'] as const) {
  const rs = await startRsyslog();
  const log = createLogger({ format: 'json', level: 'info', output: openSyslog('127.0.0.1', rs.port, BUF, transport), program: `burst-${transport}` });
  const em = new Emitter(log);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1000) {
    for (let j = 0; j < 1000; j++) em.emit(EV.CONNECT, { client: '192.0.2.1', port: i + j, local: '127.0.0.1', local_port: 25 }, 'info');
    await new Promise((r) => setImmediate(r));
  }
  const emitUs = Number(process.hrtime.bigint() - t0) / 1000 / N;
  await flushLog(log, 30_000);
  const dropped = logOutput(log)?.dropped ?? 0;
  let arrived = 0;
  for (let k = 0; k < 100; k++) {
    const n = rs.text().split('\n').filter((l) => l.includes(`burst-${transport}[`) && l.includes('CONNECT from')).length;
    if (n === arrived && k > 10) break;
    arrived = n;
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(JSON.stringify({ transport, lines: N, buffer: BUF, usPerLine: Math.round(emitUs * 100) / 100, arrived, dropped, lostUnseen: N - arrived - dropped }));
  logOutput(log)?.close();
  await rs.stop();
}
