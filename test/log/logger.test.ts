import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import { createLogger, postscreenStream } from '../../src/log/logger.js';
import { EV } from '../../src/log/events.js';
import { ScreenError } from '../../src/util/errors.js';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return { stream, text: () => chunks.join('') };
}

test('json format: one NDJSON object per event, with event, epoch-ms time and hostname, no pid', () => {
  const s = sink();
  const log = createLogger({ format: 'json', level: 'info', destination: s.stream });
  const before = Date.now();
  log.info({ event: EV.CONNECT, client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 2525 });
  log.child({ client: '192.0.2.1', port: 5678 }).info({ event: EV.PASS_NEW });
  log.debug({ event: EV.CACHE }); // below level: not written
  const lines = s.text().trimEnd().split('\n');
  assert.equal(lines.length, 2);
  const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(a?.['event'], 'CONNECT');
  assert.equal(a?.['client'], '192.0.2.1');
  assert.equal(a?.['level'], 30);
  assert.equal(typeof a?.['time'], 'number');
  assert.ok((a?.['time'] as number) >= before);
  assert.equal(a?.['pid'], undefined);
  assert.equal(a?.['hostname'], os.hostname());
  assert.deepEqual({ event: b?.['event'], client: b?.['client'], port: b?.['port'] }, { event: 'PASS NEW', client: '192.0.2.1', port: 5678 });
});

test('postscreen format: ISO time, program[pid], postscreen text', () => {
  const s = sink();
  const log = createLogger({ format: 'postscreen', level: 'info', destination: s.stream });
  log.info({ event: EV.CONNECT, client: '192.0.2.1', port: 5678, local: '127.0.0.1', local_port: 2525 });
  log.warn({ event: EV.BACKEND_FAIL, client: '192.0.2.1', port: 5678, backend: '127.0.0.1:10025', stage: 'connect', reason: 'ECONNREFUSED' });
  const lines = s.text().trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', new RegExp(
    `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z smtpscreen\\[${process.pid}\\]: CONNECT from \\[192\\.0\\.2\\.1\\]:5678 to \\[127\\.0\\.0\\.1\\]:2525$`));
  assert.match(lines[1] ?? '', /\]: warning: BACKEND FAIL 127\.0\.0\.1:10025 at connect for \[192\.0\.2\.1\]:5678: ECONNREFUSED$/);
});

test('postscreen stream renders several lines in one write and passes non-JSON through', () => {
  const out: string[] = [];
  const st = postscreenStream({ write: (x: string) => out.push(x) }, { program: 'ps', pid: 7 });
  st.write('{"level":30,"time":0,"event":"PASS OLD","client":"192.0.2.1","port":1}\n{"level":50,"time":0,"msg":"boom"}\n');
  st.write('not json\n');
  const lines = out.join('').split('\n');
  assert.equal(lines[0], '1970-01-01T00:00:00.000Z ps[7]: PASS OLD [192.0.2.1]:1');
  assert.equal(lines[1], '1970-01-01T00:00:00.000Z ps[7]: error: boom');
  assert.match(lines[2] ?? '', /^\S+Z ps\[7\]: not json$/);
  assert.equal(lines[3], '');
});

test('an unknown level is a config error naming log.level', () => {
  assert.throws(() => createLogger({ format: 'json', level: 'loud', destination: new PassThrough() }), (e: unknown) => {
    assert.ok(e instanceof ScreenError);
    assert.equal(e.code, 'SCR_ERR_CONFIG');
    assert.equal(e.details['key'], 'log.level');
    return true;
  });
});

test('level silent writes nothing', () => {
  const s = sink();
  const log = createLogger({ format: 'postscreen', level: 'silent', destination: s.stream });
  log.fatal({ event: EV.STOPPED });
  assert.equal(s.text(), '');
});
