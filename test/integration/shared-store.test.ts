/*
 * Integration: two screeners ("two MX hosts", real `smtpscreen run` processes in front of the
 * built-in sink) on one private redis-server (test/helpers/redis.ts), cache.store: redis.
 * - a client that passed on A is PASS OLD on B (tier shared), then from B's memory;
 * - a network greylisted on A is "early" on B before min_delay and passes on B after it;
 * - 200 clients of one network hitting A and B at once: exactly one first-seen;
 * - Redis SIGKILLed mid-run and restarted: no greeting later than the lookup deadline allows
 *   (10x bound), nobody refused, STORE FAIL / STORE OK once each per screener, verdicts of the
 *   outage written after the restart, state written after the restart shared;
 * - Redis answering slowly (a proxy holding replies): the deadline holds, STORE FAIL timeout;
 * - rediss:// to a Redis that speaks only TLS: shared with the CA trusted; without it STORE FAIL
 *   naming the certificate, and clients still served.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startScreener, portOf, type ScreenerProc, type ScreenerEvent } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { startDelayProxy, startRedis, type RedisServer } from '../helpers/redis.js';
import { fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';

let redis: RedisServer;
let dns: Rbldnsd;
before(async () => {
  [redis, dns] = await Promise.all([startRedis(), startRbldnsd(fixtureZones())]);
});
after(async () => {
  await Promise.all([redis?.stop(), dns?.stop()]);
});

/**
 * No pregreet wait: the session waits for the DNSBL answer (rbldnsd, a few ms) and the Redis
 * lookup only, so the lookup's deadline is what bounds the greeting and a stall would show.
 */
function noWait(): Record<string, unknown> {
  return {
    pregreet: { enable: false },
    dnsbl: { sites: ['bl2.test*2'], threshold: 5, ttl_min: '1h', health: { enable: false } },
    resolver: { servers: [dns.address], timeout: '300ms' },
  };
}

const PREFIX = 'it:';

function cfg(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: 'sink:0' },
    pregreet: { wait: '300ms', ttl: '1h' },
    cache: { store: 'redis', redis: { url, prefix: PREFIX, timeout: '100ms', connect_timeout: '500ms' } },
    ...extra,
  };
}

/** The two hosts; each waits for its first STORE OK (connected). */
async function twoHosts(url: string, extra: Record<string, unknown> = {}): Promise<[ScreenerProc, ScreenerProc]> {
  const [a, b] = await Promise.all([startScreener(cfg(url, extra)), startScreener(cfg(url, extra))]);
  await Promise.all([a.waitForEvent((e) => e['event'] === 'STORE OK', 5000), b.waitForEvent((e) => e['event'] === 'STORE OK', 5000)]);
  return [a, b];
}

interface Greeting {
  ms: number;
  text: string;
}

/** Connect from `addr`, read to the final "220 " line (the backend's, or the dummy engine's), close. */
async function greet(s: ScreenerProc, addr: string, timeoutMs = 8000): Promise<Greeting> {
  const t0 = performance.now();
  const c: RawClient = await connectClient('127.0.0.1', portOf(s), addr);
  try {
    const text = await c.readUntil(/^(220|[45]\d\d) [^\r\n]*\r\n/m, timeoutMs);
    return { ms: performance.now() - t0, text };
  } finally {
    c.destroy();
  }
}

const ev = (s: ScreenerProc, name: string, client: string): ScreenerEvent[] => s.eventsNamed(name).filter((e) => e['client'] === client);

async function waitKey(key: string, timeoutMs = 5000): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await redis.cli('GET', PREFIX + key);
    if (v !== '') return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no key ${PREFIX}${key} in Redis after ${timeoutMs} ms`);
}

test('a client that passed on A is PASS OLD on B: first from Redis (tier shared), then from B\'s memory; the key expires with the record', async () => {
  const [a, b] = await twoHosts(redis.url);
  try {
    const first = await greet(a, '127.0.80.1');
    assert.match(first.text, /^220 sink\.invalid/m);
    await a.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.80.1');
    const stored = await waitKey('127.0.80.1');
    assert.match(stored, /^1:/, 'the snapshot codec, version 1');
    const pttl = Number(await redis.cli('PTTL', PREFIX + '127.0.80.1'));
    assert.ok(pttl > 3_500_000 && pttl <= 3_600_000, `PTTL ${pttl}: the record's expiry (pregreet.ttl 1h)`);

    const onB = await greet(b, '127.0.80.1');
    assert.match(onB.text, /^220 sink\.invalid/m);
    const old = await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.80.1');
    assert.equal(old['tier'], 'shared');
    assert.equal(ev(b, 'PASS NEW', '127.0.80.1').length, 0, 'B did not screen it again');

    await greet(b, '127.0.80.1');
    await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.80.1' && e['tier'] === undefined);
    const unknown = await greet(b, '127.0.80.2');
    assert.match(unknown.text, /^220 sink\.invalid/m);
    await b.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.80.2');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a network greylisted on A: early on B before min_delay, passes on B after it', async () => {
  const [a, b] = await twoHosts(redis.url, { greylist: { enable: true, min_delay: '1500ms', max_delay: '1m', ttl: '1h' } });
  try {
    const t0 = Date.now();
    const first = await greet(a, '127.0.81.10');
    assert.match(first.text, /^220 screen\.test/m, 'deferred: the dummy engine greets');
    const g1 = await a.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '127.0.81.10');
    assert.deepEqual([g1['network'], g1['state'], g1['reason']], ['127.0.81.0/24', 'defer', 'new']);

    await greet(b, '127.0.81.20');
    const g2 = await b.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '127.0.81.20');
    assert.deepEqual([g2['state'], g2['reason']], ['defer', 'early'], 'B knows the first sight on A');

    await new Promise((r) => setTimeout(r, Math.max(0, 1600 - (Date.now() - t0))));
    const retry = await greet(b, '127.0.81.30');
    assert.match(retry.text, /^220 sink\.invalid/m, 'handed over');
    const g3 = await b.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '127.0.81.30');
    assert.equal(g3['state'], 'pass');
    assert.ok((g3['delay_ms'] as number) >= 1500, `delay_ms ${String(g3['delay_ms'])}`);
    await b.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.81.30');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('200 clients of one network hitting A and B at once give exactly one first-seen', async () => {
  const [a, b] = await twoHosts(redis.url, { greylist: { enable: true, min_delay: '1m', max_delay: '1h', ttl: '1h' } });
  try {
    const addrs = Array.from({ length: 200 }, (_, i) => `127.0.82.${i + 1}`);
    const results = await Promise.all(addrs.map((addr, i) => greet(i % 2 === 0 ? a : b, addr, 15_000)));
    for (const r of results) assert.match(r.text, /^220 screen\.test/m);
    const grey = [...a.eventsNamed('GREYLIST'), ...b.eventsNamed('GREYLIST')].filter((e) => e['network'] === '127.0.82.0/24');
    const wait = async (): Promise<void> => {
      const end = Date.now() + 5000;
      while (Date.now() < end && [...a.eventsNamed('GREYLIST'), ...b.eventsNamed('GREYLIST')].filter((e) => e['network'] === '127.0.82.0/24').length < 200) {
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await wait();
    const all = [...a.eventsNamed('GREYLIST'), ...b.eventsNamed('GREYLIST')].filter((e) => e['network'] === '127.0.82.0/24');
    assert.equal(all.length, 200, `one decision per client (had ${grey.length} when the greetings were in)`);
    const firsts = all.filter((e) => e['reason'] === 'new');
    assert.equal(firsts.length, 1, `first-seen decisions: ${JSON.stringify(firsts)}`);
    assert.equal(all.filter((e) => e['reason'] === 'early').length, 199);
    assert.ok(a.eventsNamed('GREYLIST').length > 0 && b.eventsNamed('GREYLIST').length > 0, 'both hosts decided some');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('Redis SIGKILLed mid-run and restarted: no stall past the deadline, nobody refused, state after the restart shared', async () => {
  // No pregreet wait: the lookup deadline alone bounds the greeting, so a stall would show.
  const extra = { ...noWait(), cache: { store: 'redis', redis: { url: redis.url, prefix: PREFIX, timeout: '100ms', connect_timeout: '300ms', pending_writes: 5 } } };
  const [a, b] = await twoHosts(redis.url, extra);
  const BOUND_MS = 1000; // 10x the 100 ms deadline
  const greetings: Array<Greeting & { addr: string; phase: string }> = [];
  let phase = 'before';
  let n = 0;
  let running = true;
  // While A's outage verdicts are counted, the load goes to B only: A's queue of waiting
  // writes (oldest kept) then holds only the 127.0.84.x verdicts, not the load's.
  let onlyB = false;
  const loop = async (): Promise<void> => {
    while (running) {
      const addr = `127.0.83.${(n++ % 250) + 1}`;
      const g = await greet(n % 2 === 0 && !onlyB ? a : b, addr);
      greetings.push({ ...g, addr, phase });
    }
  };
  try {
    const loops = [loop(), loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 500));
    onlyB = true;
    await new Promise((r) => setTimeout(r, 200)); // A's last writes land before the kill
    phase = 'down';
    await redis.kill();
    await Promise.all([a.waitForEvent((e) => e['event'] === 'STORE FAIL', 5000), b.waitForEvent((e) => e['event'] === 'STORE FAIL', 5000)]);
    // Verdicts made while Redis is away: at most pending_writes (5) wait, the rest are dropped.
    for (let i = 1; i <= 12; i++) await greet(a, `127.0.84.${i}`);
    await new Promise((r) => setTimeout(r, 700));
    phase = 'restarted';
    await redis.restart();
    const okA = await a.waitForEvent((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined, 10_000);
    onlyB = false;
    await b.waitForEvent((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await Promise.all(loops);

    assert.ok(greetings.filter((g) => g.phase === 'down').length >= 10, 'clients were served while Redis was down');
    const slow = greetings.filter((g) => g.ms > BOUND_MS);
    assert.deepEqual(slow.map((g) => `${g.addr} ${g.phase} ${g.ms.toFixed(0)} ms`), [], 'no greeting past 10x the deadline');
    const refused = greetings.filter((g) => !/^220 sink\.invalid/m.test(g.text));
    assert.deepEqual(refused.map((g) => `${g.addr} ${g.phase}: ${g.text.trim()}`), [], 'everyone reached the backend');
    for (const s of [a, b]) {
      assert.equal(s.eventsNamed('STORE FAIL').length, 1, 'STORE FAIL once per transition');
      assert.equal(s.eventsNamed('STORE OK').length, 2, 'STORE OK at the first connection and after the restart');
      assert.equal(s.eventsNamed('NOQUEUE').length + s.eventsNamed('DNSBL').length, 0);
    }
    assert.ok((okA['flushed'] as number) >= 1 && (okA['flushed'] as number) <= 5, `flushed ${String(okA['flushed'])}: at most pending_writes waited`);
    assert.ok((okA['dropped'] as number) >= 7, `dropped ${String(okA['dropped'])}`);
    // The waiting verdicts were written after the restart; a crash lost every older key.
    const kept = [];
    for (let i = 1; i <= 12; i++) if ((await redis.cli('EXISTS', `${PREFIX}127.0.84.${i}`)) === '1') kept.push(i);
    assert.ok(kept.length >= 1 && kept.length <= 5, `outage verdicts in Redis: ${kept.join(',')}`);

    // State written after the restart is shared.
    await greet(a, '127.0.85.1');
    await waitKey('127.0.85.1');
    await greet(b, '127.0.85.1');
    const old = await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.85.1');
    assert.equal(old['tier'], 'shared');
  } finally {
    running = false;
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('Redis answering slowly: the deadline holds, the session goes on without the record, STORE FAIL timeout then STORE OK', async () => {
  const proxy = await startDelayProxy(redis.port, 0);
  const s = await startScreener(cfg(proxy.url, noWait()));
  try {
    await s.waitForEvent((e) => e['event'] === 'STORE OK', 5000);
    // Known to Redis (another host passed it), not to this screener.
    const until = Date.now() + 3_600_000;
    await redis.cli('SET', `${PREFIX}127.0.86.1`, `1:0;${until};0;0;0;0`, 'PX', '3600000');
    proxy.setDelay(3000);
    const slow = await greet(s, '127.0.86.1');
    assert.ok(slow.ms < 1000, `greeting after ${slow.ms.toFixed(0)} ms: the 100 ms deadline holds (10x bound), not the 3 s reply`);
    assert.match(slow.text, /^220 sink\.invalid/m);
    await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.86.1');
    const fail = await s.waitForEvent((e) => e['event'] === 'STORE FAIL');
    assert.equal(fail['reason'], 'timeout');
    for (let i = 2; i <= 4; i++) assert.ok((await greet(s, `127.0.86.${i}`)).ms < 1000);
    assert.equal(s.eventsNamed('STORE FAIL').length, 1, 'once per transition');

    proxy.setDelay(0);
    await new Promise((r) => setTimeout(r, 3200)); // the held replies drain
    await redis.cli('SET', `${PREFIX}127.0.86.9`, `1:0;${until};0;0;0;0`, 'PX', '3600000');
    await greet(s, '127.0.86.9');
    const ok = await s.waitForEvent((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined, 5000);
    assert.ok((ok['timeouts'] as number) >= 4, `timeouts ${String(ok['timeouts'])}`);
    const old = await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.86.9');
    assert.equal(old['tier'], 'shared');
  } finally {
    await s.stop();
    await proxy.close();
  }
});

test('rediss:// (TLS only): shared with the certificate trusted; untrusted: STORE FAIL, clients still served', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-rediss-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const tlsRedis = await startRedis({ tls: { cert, key } });
  assert.match(tlsRedis.url, /^rediss:\/\//);
  const trusted = { env: { NODE_EXTRA_CA_CERTS: cert } };
  const [a, b] = await Promise.all([startScreener(cfg(tlsRedis.url), [], trusted), startScreener(cfg(tlsRedis.url), [], trusted)]);
  const untrusted = await startScreener(cfg(tlsRedis.url));
  try {
    await Promise.all([a.waitForEvent((e) => e['event'] === 'STORE OK', 5000), b.waitForEvent((e) => e['event'] === 'STORE OK', 5000)]);
    await greet(a, '127.0.87.1');
    await a.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.0.87.1');
    const end = Date.now() + 5000;
    while ((await tlsRedis.cli('EXISTS', `${PREFIX}127.0.87.1`)) !== '1' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await greet(b, '127.0.87.1');
    const old = await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.87.1');
    assert.equal(old['tier'], 'shared');

    const fail = await untrusted.waitForEvent((e) => e['event'] === 'STORE FAIL', 5000);
    assert.match(String(fail['reason']), /CERT|certificate|SELF_SIGNED/i);
    const g = await greet(untrusted, '127.0.87.1');
    assert.match(g.text, /^220 sink\.invalid/m, 'served from its own memory');
    assert.equal(untrusted.eventsNamed('STORE OK').length, 0);
  } finally {
    await Promise.all([a.stop(), b.stop(), untrusted.stop()]);
    await tlsRedis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
