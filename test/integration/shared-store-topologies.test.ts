/*
 * Integration: the shared store behind Redis Sentinel and in a Redis Cluster, with real
 * redis-server processes (test/helpers/redis.ts) and two real `smtpscreen run` screeners
 * ("two MX hosts", the built-in sink as backend).
 * - Sentinel (a master, its replica, one sentinel): a client that passed on A is PASS OLD on B;
 *   the master SIGKILLed: the sentinel promotes the replica, both screeners find it (STORE FAIL,
 *   then STORE OK), nobody is refused meanwhile, the record written before the failover is still
 *   shared, and one written after it lands on the new master.
 * - Cluster (three masters): PASS OLD across the hosts; verdict keys spread over more than one
 *   node (each on the node that owns its slot); greylisting decided once for the two hosts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startScreener, portOf, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { startCluster, startRedis, startSentinel, type RedisCluster, type RedisServer, type Sentinel } from '../helpers/redis.js';

const PREFIX = 'topo:';

function cfg(redis: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: 'sink:0' },
    pregreet: { wait: '300ms', ttl: '1h' },
    cache: { store: 'redis', redis: { prefix: PREFIX, timeout: '150ms', connect_timeout: '500ms', ...redis } },
    ...extra,
  };
}

async function twoHosts(redis: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<[ScreenerProc, ScreenerProc]> {
  const [a, b] = await Promise.all([startScreener(cfg(redis, extra)), startScreener(cfg(redis, extra))]);
  await Promise.all([a.waitForEvent((e) => e['event'] === 'STORE OK', 10_000), b.waitForEvent((e) => e['event'] === 'STORE OK', 10_000)]);
  return [a, b];
}

/** Connect from `addr`, read to the final "220 " (or 4xx/5xx) line, close. */
async function greet(s: ScreenerProc, addr: string, timeoutMs = 8000): Promise<string> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  try {
    return await c.readUntil(/^(220|[45]\d\d) [^\r\n]*\r\n/m, timeoutMs);
  } finally {
    c.destroy();
  }
}

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exists = async (s: RedisServer, key: string): Promise<boolean> => (await s.cli('EXISTS', PREFIX + key)) === '1';

let master: RedisServer;
let replica: RedisServer;
let sentinel: Sentinel;
let cluster: RedisCluster;

before(async () => {
  master = await startRedis();
  [replica, cluster] = await Promise.all([startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] }), startCluster(3)]);
  sentinel = await startSentinel(master, 'mx');
});
after(async () => {
  await Promise.all([sentinel?.stop(), master?.stop(), replica?.stop(), cluster?.stop()]);
});

test('Sentinel: PASS OLD across hosts; the master killed, the replica promoted: both hosts follow, nobody refused, records before and after the failover shared', async () => {
  const viaSentinel = { sentinels: [`127.0.0.1:${sentinel.port}`], sentinel_master: 'mx' };
  const [a, b] = await twoHosts(viaSentinel);
  try {
    const ok = a.eventsNamed('STORE OK')[0] as Record<string, unknown>;
    assert.equal(ok['url'], `sentinel://127.0.0.1:${sentinel.port}/mx`, 'STORE OK names the sentinels and the master');

    assert.match(await greet(a, '127.0.90.1'), /^220 sink\.invalid/m);
    await until('the verdict on the master', () => exists(master, '127.0.90.1'));
    assert.match(await greet(b, '127.0.90.1'), /^220 sink\.invalid/m);
    assert.equal((await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.90.1'))['tier'], 'shared');
    await until('the verdict replicated', () => exists(replica, '127.0.90.1'));

    await master.kill();
    // Clients keep arriving during the failover: every one is served (the store is only a cache).
    const during: string[] = [];
    await until('the sentinel names the replica', async () => {
      during.push(await greet(a, `127.0.91.${during.length + 1}`));
      return (await sentinel.masterAddr()) === `127.0.0.1 ${replica.port}`;
    }, 30_000);
    assert.ok(during.length >= 1);
    assert.deepEqual(during.filter((t) => !/^220 sink\.invalid/m.test(t)), [], 'nobody refused while the master was away');
    await Promise.all([a, b].map((s) => s.waitForEvent((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined, 20_000)));
    assert.equal(a.eventsNamed('STORE FAIL').length, 1, 'STORE FAIL once');

    // Written before the failover: still shared (B has it from memory, so ask a new host).
    const [c] = await Promise.all([startScreener(cfg(viaSentinel))]);
    try {
      await c.waitForEvent((e) => e['event'] === 'STORE OK', 10_000);
      await greet(c, '127.0.90.1');
      assert.equal((await c.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.90.1'))['tier'], 'shared');
    } finally {
      await c.stop();
    }
    // Written after it: on the new master, and shared.
    await greet(a, '127.0.92.1');
    await until('the new verdict on the promoted replica', () => exists(replica, '127.0.92.1'));
    await greet(b, '127.0.92.1');
    assert.equal((await b.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.0.92.1'))['tier'], 'shared');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('Cluster: PASS OLD across hosts, verdicts on the nodes owning their slots, one greylist first-seen for both hosts', async () => {
  const seeds = { cluster: [`127.0.0.1:${(cluster.nodes[0] as RedisServer).port}`] };
  const [a, b] = await twoHosts(seeds, { greylist: { enable: true, min_delay: '5s', max_delay: '1m', ttl: '1h' } });
  try {
    assert.equal((a.eventsNamed('STORE OK')[0] as Record<string, unknown>)['url'], `cluster://127.0.0.1:${(cluster.nodes[0] as RedisServer).port}`);
    // Twelve networks first seen on A (deferred), then each seen again on B: early, not new.
    const nets = Array.from({ length: 12 }, (_, i) => 93 + i);
    const t0 = Date.now();
    for (const t of await Promise.all(nets.map((n) => greet(a, `127.1.${n}.1`)))) assert.match(t, /^220 screen\.test/m, 'deferred: the dummy engine greets');
    await Promise.all(nets.map((n) => greet(b, `127.1.${n}.2`)));
    assert.ok(Date.now() - t0 < 5000, 'both rounds within min_delay (else B would see a retry)');
    for (const n of nets) {
      const g = await b.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === `127.1.${n}.2`);
      assert.deepEqual([g['state'], g['reason']], ['defer', 'early'], `127.1.${n}.0/24: B knows A's first sight`);
    }
    // The network keys live on the nodes owning their slots, and not all on one.
    const owners = new Set<number>();
    for (const n of nets) {
      const key = `net:127.1.${n}.0/24`;
      const owner = await cluster.ownerOf(PREFIX + key);
      assert.ok(await exists(owner, key), `${key} on its slot's owner ${owner.port}`);
      owners.add(owner.port);
    }
    assert.ok(owners.size > 1, `twelve networks on ${owners.size} node(s) of 3`);

    // After min_delay: a retry on B passes and its verdict is PASS OLD on A, from the cluster.
    await new Promise((r) => setTimeout(r, Math.max(0, 5100 - (Date.now() - t0))));
    assert.match(await greet(b, '127.1.93.3'), /^220 sink\.invalid/m);
    await b.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === '127.1.93.3');
    const owner = await cluster.ownerOf(`${PREFIX}127.1.93.3`);
    await until('the verdict on its slot\'s owner', () => exists(owner, '127.1.93.3'));
    assert.match(await greet(a, '127.1.93.3'), /^220 sink\.invalid/m);
    assert.equal((await a.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === '127.1.93.3'))['tier'], 'shared');
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
