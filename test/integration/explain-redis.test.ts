/*
 * `smtpscreen explain ADDRESS` with cache.store: redis reads the shared store: a client that
 * passed on a running screener is PASS OLD from Redis (no snapshot involved), its network's
 * greylist first sight is shown, and a Redis that cannot be reached is said so (the verdict then
 * comes without it, exit 0). Real redis-server and a real `smtpscreen run`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startScreener, portOf } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { freePort } from '../helpers/ports.js';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

const cfg = (url: string, greylist: boolean): Record<string, unknown> => ({
  hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 }, backend: { address: 'sink:0' },
  pregreet: { wait: '300ms', ttl: '1h' },
  greylist: { enable: greylist, min_delay: '1h', max_delay: '2h', ttl: '1d' },
  cache: { store: 'redis', redis: { url, prefix: 'ex:', timeout: '150ms', connect_timeout: '500ms' } },
});

function explain(configFile: string, addr: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, 'explain', addr, '--config', configFile], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function greet(port: number, addr: string): Promise<string> {
  const c = await connectClient('127.0.0.1', port, addr);
  try {
    return await c.readUntil(/^(220|[45]\d\d) [^\r\n]*\r\n/m, 8000);
  } finally {
    c.destroy();
  }
}

test('explain: a client that passed on a running screener is PASS OLD from Redis; unknown before', async () => {
  const s = await startScreener(cfg(redis.url, false));
  try {
    await s.waitForEvent((e) => e['event'] === 'STORE OK', 5000);
    const before = explain(s.configFile, '127.0.95.1');
    assert.equal(before.code, 0, before.err);
    assert.match(before.out, new RegExp(`^cache: redis://127\\.0\\.0\\.1:${redis.port}: unknown client`, 'm'));
    assert.match(before.out, /^verdict: new client/m);

    assert.match(await greet(portOf(s), '127.0.95.1'), /^220 sink\.invalid/m);
    const end = Date.now() + 5000;
    while ((await redis.cli('EXISTS', 'ex:127.0.95.1')) !== '1' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const x = explain(s.configFile, '127.0.95.1');
    assert.equal(x.code, 0, x.err);
    assert.match(x.out, new RegExp(`^cache: redis://127\\.0\\.0\\.1:${redis.port}: pregreet passed until \\S+$`, 'm'));
    assert.match(x.out, /^verdict: PASS OLD/m);
  } finally {
    await s.stop();
  }
});

test('explain: a network greylisted on a running screener shows its first sight and "retried too early"', async () => {
  const s = await startScreener(cfg(redis.url, true));
  try {
    await s.waitForEvent((e) => e['event'] === 'STORE OK', 5000);
    const t0 = Date.now();
    assert.match(await greet(portOf(s), '127.0.96.1'), /^220 screen\.test/m, 'deferred: the dummy engine greets');
    await s.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '127.0.96.1');
    const x = explain(s.configFile, '127.0.96.7');
    assert.equal(x.code, 0, x.err);
    const seen = /^greylist: 127\.0\.96\.0\/24 first seen (\S+) \(redis:/m.exec(x.out);
    assert.ok(seen, x.out);
    assert.ok(Math.abs(Date.parse(seen[1] as string) - t0) < 10_000, `first seen ${seen[1]} near the greeting`);
    assert.match(x.out, /^verdict: new client: .*greylisted \(retried too early: \d+s to go\)/m);
  } finally {
    await s.stop();
  }
});

test('explain: a Redis that cannot be reached is named, and the verdict comes without it', async () => {
  const port = await freePort();
  const s = await startScreener(cfg(`redis://127.0.0.1:${port}`, false));
  try {
    const x = explain(s.configFile, '127.0.97.1');
    assert.equal(x.code, 0, x.err);
    assert.match(x.out, new RegExp(`^cache: redis://127\\.0\\.0\\.1:${port}: not read \\((ECONNREFUSED|closed|no connection within 500 ms)\\); the verdict below is without it$`, 'm'));
    assert.match(x.out, /^verdict: new client/m);
  } finally {
    await s.stop();
  }
});
