/*
 * Integration: STARTTLS in the dummy engine, with the real screener
 * process, a self-signed certificate made at test time (openssl) and swaks.
 * - swaks --tls completes the dummy session inside TLS: handshake, EHLO
 *   again, 450 at RCPT, NOQUEUE logged.
 * - A client that sends garbage instead of a ClientHello after "220 Ready"
 *   gets TLS FAIL; the screener keeps serving.
 * - Without a certificate STARTTLS is not offered and gets 502.
 * - A certificate file that is not PEM fails start-up naming tls.cert.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { portOf, greeted, withScreener } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { reply, type RawClient } from '../helpers/smtp-client.js';
import { startScreener as startInProcess } from '../../src/server/screener.js';
import { validateConfig } from '../../src/config/validate.js';

let dir: string;
let cert: string;
let key: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-tls-'));
  cert = path.join(dir, 'cert.pem');
  key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=screen.test', '-days', '1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function cfg(tls: Record<string, unknown> | null): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    limits: { max_per_client: 0 },
    backend: { address: 'sink:0' },
    pregreet: { wait: '300ms', action: 'enforce' },
    deep: { pipelining: { enable: true, action: 'enforce' }, non_smtp: { enable: true, action: 'drop' } },
    dummy: { command_time_limit: '5s' },
    drain_timeout: '2s',
    ...(tls === null ? {} : { tls }),
  };
}

async function cmd(c: RawClient, line: string): Promise<string> {
  return reply(c, line, 5000);
}

describe('STARTTLS in the dummy engine', () => {
  test('swaks --tls completes the dummy session inside TLS: 450 at RCPT, NOQUEUE', async () => {
    await withScreener(cfg({ cert, key }), async (s) => {
      const addr = '127.0.60.1';
      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, helo: 'tls.client.test',
        to: 'tls@example.test', from: 's@example.test', timeoutS: 15, extra: ['--tls'] });
      assert.notEqual(r.code, 0, 'the recipient is deferred');
      assert.match(r.transcript, /250-STARTTLS/, 'offered in EHLO');
      assert.match(r.transcript, /<-\s+220 2\.0\.0 Ready to start TLS/);
      assert.match(r.transcript, /=== TLS started/);
      assert.match(r.transcript, /<~\s+250-screen\.test/, 'EHLO again inside TLS');
      assert.doesNotMatch(r.transcript, /<~\s+250-STARTTLS/, 'not offered again inside TLS');
      assert.match(r.transcript, /<~\*\s+450 4\.3\.2 Service currently unavailable/);
      const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
      assert.deepEqual([n['helo'], n['from'], n['to']], ['tls.client.test', 's@example.test', 'tls@example.test']);
      const d = await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
      assert.ok(Number(d['bytes_in']) > 200, `raw bytes counted: ${String(d['bytes_in'])}`);
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(s.eventsNamed('DISCONNECT').filter((e) => e['client'] === addr).length, 1, 'accounted once');
      assert.equal(s.eventsNamed('TLS FAIL').length, 0);
      assert.equal(s.eventsNamed('HANDOFF').length, 0, 'never handed to the backend');
    });
  });

  test('garbage instead of a ClientHello: TLS FAIL, and the screener keeps serving', async () => {
    await withScreener(cfg({ cert, key }), async (s) => {
      const addr = '127.0.60.2';
      const c = await greeted(s, addr);
      assert.match(await cmd(c, 'EHLO bad.test\r\n'), /250-STARTTLS\r\n/);
      assert.match(await cmd(c, 'STARTTLS\r\n'), /^220 2\.0\.0 Ready to start TLS\r\n/m);
      c.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n');
      const f = await s.waitForEvent((e) => e['event'] === 'TLS FAIL' && e['client'] === addr);
      assert.equal(typeof f['reason'], 'string');
      assert.notEqual(f['reason'], 'timeout');
      await c.closed;
      await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);

      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: '127.0.60.3', timeoutS: 15, extra: ['--tls'] });
      assert.match(r.transcript, /=== TLS started/);
      await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === '127.0.60.3');
    });
  });

  test('a client that never starts the handshake gets TLS FAIL timeout (command time limit)', async () => {
    await withScreener({ ...cfg({ cert, key }), dummy: { command_time_limit: '1s' } }, async (s) => {
      const addr = '127.0.60.4';
      const c = await greeted(s, addr);
      await cmd(c, 'EHLO slow.test\r\n');
      assert.match(await cmd(c, 'STARTTLS\r\n'), /^220 2\.0\.0/m);
      const f = await s.waitForEvent((e) => e['event'] === 'TLS FAIL' && e['client'] === addr, 5000);
      assert.equal(f['reason'], 'timeout');
      await c.closed;
    });
  });

  test('tls.max_handshakes: a STARTTLS beyond the bound gets 421 and TLS FAIL busy; a finished handshake frees its slot', async () => {
    await withScreener({ ...cfg({ cert, key, max_handshakes: 1 }), dummy: { command_time_limit: '5s' } }, async (s) => {
      const a = await greeted(s, '127.0.60.6');
      await cmd(a, 'EHLO stall.test\r\n');
      assert.match(await cmd(a, 'STARTTLS\r\n'), /^220 2\.0\.0/m, 'the first handshake may start');
      const b = await greeted(s, '127.0.60.7');
      await cmd(b, 'EHLO second.test\r\n');
      assert.match(await cmd(b, 'STARTTLS\r\n'), /^421 4\.3\.2 /m, 'the second waits for a slot: 421');
      const f = await s.waitForEvent((e) => e['event'] === 'TLS FAIL' && e['client'] === '127.0.60.7');
      assert.deepEqual([f['reason'], f['limit']], ['busy', 1]);
      await b.closed;
      a.destroy();
      await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === '127.0.60.6');
      const c = await greeted(s, '127.0.60.8');
      await cmd(c, 'EHLO third.test\r\n');
      assert.match(await cmd(c, 'STARTTLS\r\n'), /^220 2\.0\.0/m, 'the slot of the client that left is free again');
      c.destroy();
    });
  });

  test('without a certificate STARTTLS is not offered and gets 502', async () => {
    await withScreener(cfg(null), async (s) => {
      const c = await greeted(s, '127.0.60.5');
      assert.doesNotMatch(await cmd(c, 'EHLO plain.test\r\n'), /STARTTLS/);
      assert.match(await cmd(c, 'STARTTLS\r\n'), /^502 5\.5\.1 /m);
      c.destroy();
    });
  });

  test('a certificate file that is not PEM fails start-up naming tls.cert', async () => {
    const bad = path.join(dir, 'bad.pem');
    fs.writeFileSync(bad, 'not a certificate\n');
    const config = validateConfig({ ...cfg({ cert: bad, key }), listen: ['127.0.0.1:0'] });
    await assert.rejects(startInProcess(config, { logger: pino({ level: 'silent' }) }),
      (err: Error & { details?: { key?: string } }) => err.details?.key === 'tls.cert' && /tls\.cert/.test(err.message));
    assert.throws(() => validateConfig({ tls: { cert } }), /tls\.key/);
  });
});
