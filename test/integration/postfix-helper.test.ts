/*
 * test/integration/postfix-helper.test.ts - the private Postfix helper works:
 * plain delivery, XCLIENT, PROXY v1 and v2 each show the right client in the
 * mail log, two instances run side by side, and stop() leaves no process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startPostfix, stopAllPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';

function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X'; // a zombie waiting for init to reap it is gone
  } catch {
    return false;
  }
}

function processGroupMembers(pgid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return rest[2] === String(pgid) && rest[0] !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** EHLO, MAIL, RCPT, DATA, QUIT over an already greeted raw client. */
async function sendMail(c: RawClient, rcpt: string): Promise<void> {
  c.write('EHLO raw.example\r\n');
  await c.readUntil(/^250 .*\r\n/m);
  c.write('MAIL FROM:<raw@example.test>\r\n');
  await c.readUntil(/^250 .*\r\n/m);
  c.write(`RCPT TO:<${rcpt}>\r\n`);
  await c.readUntil(/^250 .*\r\n/m);
  c.write('DATA\r\n');
  await c.readUntil(/^354 .*\r\n/m);
  c.write('Subject: raw\r\n\r\nhello\r\n.\r\n');
  await c.readUntil(/^250 .*\r\n/m);
  c.write('QUIT\r\n');
  await c.readUntil(/^221 .*\r\n/m);
  await c.closed;
}

describe('Postfix test helper', () => {
  let pf: PostfixInstance;
  const t0 = Date.now();

  before(async () => {
    pf = await startPostfix();
  });
  after(async () => {
    await pf?.stop();
    stopAllPostfix();
  });

  test('a private instance with three smtpd ports on loopback', () => {
    assert.ok(fs.statSync(pf.dir).isDirectory());
    assert.equal(fs.statSync(pf.dir).mode & 0o777, 0o755);
    const ports = new Set([pf.xclientPort, pf.proxyPort, pf.plainPort]);
    assert.equal(ports.size, 3);
    const pid = pf.masterPid();
    assert.ok(pid !== null && processAlive(pid), 'master is running');
    assert.match(pf.maillog(), /daemon started -- version 3\.\d+/);
  });

  test('swaks to plainPort delivers (discarded, evidence in the mail log)', async () => {
    const since = pf.mark();
    const r = await runSwaks({ server: `127.0.0.1:${pf.plainPort}`, to: 'a@example.test', from: 'b@example.test' });
    assert.equal(r.code, 0, r.transcript);
    const queued = /250 2\.0\.0 Ok: queued as ([0-9A-F]+)/.exec(r.stdout);
    assert.ok(queued, r.transcript);
    const qid = queued[1] ?? '';
    await pf.waitForLog(new RegExp(`postfix/plain/smtpd\\[\\d+\\]: ${qid}: client=unknown\\[127\\.0\\.0\\.1\\]`), 10_000, since);
    await pf.waitForLog(new RegExp(`${qid}: to=<a@example\\.test>, relay=none, .*status=sent \\(example\\.test\\)`), 10_000, since);
  });

  test('XCLIENT on xclientPort sets the client address', async () => {
    const since = pf.mark();
    const r = await runSwaks({
      server: `127.0.0.1:${pf.xclientPort}`,
      extra: ['--xclient-addr', '127.0.0.77'],
    });
    assert.equal(r.code, 0, r.transcript);
    assert.match(r.transcript, /-> XCLIENT ADDR=127\.0\.0\.77/);
    await pf.waitForLog(/postfix\/xclient\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.77\]/, 10_000, since);
  });

  test('plainPort does not offer XCLIENT (only the xclient service trusts it)', async () => {
    const since = pf.mark();
    const r = await runSwaks({
      server: `127.0.0.1:${pf.plainPort}`,
      extra: ['--xclient-addr', '127.0.0.78', '--xclient-optional'],
      quitAfter: 'RCPT',
    });
    assert.equal(r.code, 0, r.transcript);
    assert.doesNotMatch(r.transcript, /-> XCLIENT/);
    await pf.waitForLog(/postfix\/plain\/smtpd\[\d+\]: disconnect from unknown\[127\.0\.0\.1\]/, 10_000, since);
    assert.doesNotMatch(pf.maillog(), /unknown\[127\.0\.0\.78\]/);
  });

  test('PROXY v1 header from a raw socket on proxyPort sets the client address', async () => {
    const since = pf.mark();
    const c = await connectClient('127.0.0.1', pf.proxyPort, '127.0.0.1');
    c.write('PROXY TCP4 192.0.2.55 127.0.0.1 40001 25\r\n');
    await c.readUntil(/^220 backend\.smtpscreen\.test ESMTP.*\r\n/m);
    await sendMail(c, 'v1@example.test');
    await pf.waitForLog(/postfix\/proxy\/smtpd\[\d+\]: connect from unknown\[192\.0\.2\.55\]/, 10_000, since);
    await pf.waitForLog(/postfix\/proxy\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[192\.0\.2\.55\]/, 10_000, since);
  });

  test('PROXY v2 header on proxyPort sets the client address', async () => {
    const since = pf.mark();
    const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    const hdr = Buffer.alloc(16 + 12);
    sig.copy(hdr, 0);
    hdr[12] = 0x21; // version 2, PROXY
    hdr[13] = 0x11; // AF_INET, STREAM
    hdr.writeUInt16BE(12, 14);
    Buffer.from([198, 51, 100, 7]).copy(hdr, 16); // source 198.51.100.7
    Buffer.from([127, 0, 0, 1]).copy(hdr, 20);
    hdr.writeUInt16BE(40002, 24);
    hdr.writeUInt16BE(25, 26);
    const c = await connectClient('127.0.0.1', pf.proxyPort);
    c.write(hdr);
    await c.readUntil(/^220 .*\r\n/m);
    await sendMail(c, 'v2@example.test');
    await pf.waitForLog(/postfix\/proxy\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[198\.51\.100\.7\]/, 10_000, since);
  });

  test('a second instance runs beside the first (locks are per instance directory)', async () => {
    const pf2 = await startPostfix();
    try {
      assert.notEqual(pf2.dir, pf.dir);
      const r = await runSwaks({ server: `127.0.0.1:${pf2.plainPort}`, localAddress: '127.0.0.9' });
      assert.equal(r.code, 0, r.transcript);
      await pf2.waitForLog(/client=unknown\[127\.0\.0\.9\]/);
      assert.doesNotMatch(pf.maillog(), /unknown\[127\.0\.0\.9\]/);
      assert.ok(pf.masterPid() !== null, 'first master still running');
    } finally {
      await pf2.stop();
    }
  });

  test('stop() leaves no master and no child process', async () => {
    const pidFile = path.join(pf.dir, 'spool', 'pid', 'master.pid');
    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
    assert.ok(processAlive(pid));
    assert.ok(processGroupMembers(pid).length >= 2, 'master and its children share the process group');
    const t = Date.now();
    await pf.stop();
    const stopMs = Date.now() - t;
    assert.equal(processAlive(pid), false, `master ${pid} is gone`);
    assert.deepEqual(processGroupMembers(pid), [], 'no process left in the master process group');
    assert.equal(fs.existsSync(pf.dir), false, 'instance directory removed');
    await pf.stop(); // idempotent
    process.stderr.write(`# postfix helper: stop ${stopMs} ms, whole suite ${Date.now() - t0} ms\n`);
  });
});
