/*
 * cache/redis.ts and cache/tiered.ts against a private redis-server (test/helpers/redis.ts):
 * - the greylisting script decides as checks/greylist.ts greylistDecide() does, on random
 *   states, times and delays, and writes what it decided with a TTL of the state's life;
 * - records: written with the codec and a TTL equal to their expiry, expired ones deleted;
 * - Redis away: lookups answer null at once, writes wait (bounded by pending_writes, the rest
 *   dropped and counted), STORE FAIL once; back: the waiting writes are written, STORE OK once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { RedisTier } from '../../src/cache/redis.js';
import { TieredStore } from '../../src/cache/tiered.js';
import { MemoryStore } from '../../src/cache/memory.js';
import { decodeRecord, encodeRecord, withPasses, type VerdictRecord } from '../../src/cache/store.js';
import { greylistDecide, type GreylistDecision, type GreylistOptions } from '../../src/checks/greylist.js';
import { TestIndex } from '../../src/checks/tests.js';
import { Emitter } from '../../src/log/emit.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

const GREYLIST = TestIndex.greylist;

function tierOn(url: string, prefix: string, pending = 100): { tier: RedisTier; store: TieredStore; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info', base: null, timestamp: false }, new Writable({
    write(c, _e, cb) {
      events.push(JSON.parse(String(c)) as Record<string, unknown>);
      cb();
    },
  }));
  const tier = new RedisTier({
    config: { url, sentinels: [], sentinel_master: 'mymaster', cluster: [], prefix, timeout: 500, connect_timeout: 500, pending_writes: pending },
    emitter: new Emitter(log), firstSeenKeepMs: 60_000,
  });
  return { tier, store: new TieredStore(new MemoryStore(1000), tier), events };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const observe = (store: TieredStore, network: string, now: number, o: GreylistOptions): Promise<GreylistDecision | null> =>
  new Promise((resolve) => store.observeShared(network, now, o, null, (_o, d) => resolve(d)));
const lookup = (store: TieredStore, client: string): Promise<VerdictRecord | null> =>
  new Promise((resolve) => store.lookup(client, null, (_o, r) => resolve(r)));

test('the greylisting script decides as greylistDecide() and stores the new state with a TTL of its life', async () => {
  const { tier, store } = tierOn(redis.url, 'gl:');
  try {
    await until(() => tier.up, 'connected');
    const NOW = 1_800_000_000_000;
    let n = 0;
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000_000 }).map((ago) => -(NOW - ago)), fc.integer({ min: -1_000_000, max: 10_000_000 }).map((d) => NOW + d)),
      fc.record({ minDelayMs: fc.integer({ min: 0, max: 3_000_000 }), maxDelayMs: fc.integer({ min: 3_000_000, max: 8_000_000 }), ttlMs: fc.integer({ min: 60_000, max: 86_400_000 }) }),
      fc.integer({ min: 0, max: 86_400_000 }).map((v) => NOW + v),
      async (state, opts, passUntilOther) => {
        const network = `192.0.2.${n++ % 250}/32`;
        const key = `gl:net:${network}`;
        // Another field of the record (a newer writer's, say) must survive the script.
        await redis.cli('SET', key, encodeRecord(withPasses(null, [[GREYLIST, state], [TestIndex.dnsbl, passUntilOther]])));
        const got = await observe(store, network, NOW, opts);
        assert.deepEqual(got, greylistDecide(state, NOW, opts));
        const after = decodeRecord(await redis.cli('GET', key));
        assert.equal(after[GREYLIST], (got as GreylistDecision).state, 'the state stored is the one decided');
        assert.equal(after[TestIndex.dnsbl], passUntilOther, 'other fields are kept');
        if (state !== (got as GreylistDecision).state) {
          const pttl = Number(await redis.cli('PTTL', key));
          const s = (got as GreylistDecision).state;
          const end = Math.max(s > 0 ? s : -s + opts.maxDelayMs + 1000, passUntilOther);
          assert.ok(Math.abs(pttl - (end - NOW)) < 5000, `PTTL ${pttl} vs ${end - NOW}`);
        }
      },
    ), { numRuns: 60 });
    // Nothing stored: the first sight.
    const first = await observe(store, '198.51.100.0/24', NOW, { minDelayMs: 1000, maxDelayMs: 5000, ttlMs: 9000 });
    assert.deepEqual(first, { verdict: 'defer', state: -NOW, reason: 'new' });
    assert.equal(store.memory.get('net:198.51.100.0/24')?.[GREYLIST], -NOW, 'mirrored into memory');
    // A newer writer's extra rows survive the script (the codec's forward compatibility).
    await redis.cli('SET', 'gl:net:203.0.113.0/24', `1:0;0;0;0;0;${-(NOW - 1000)};${NOW + 5};42`);
    const early = await observe(store, '203.0.113.0/24', NOW, { minDelayMs: 60_000, maxDelayMs: 3_600_000, ttlMs: 9000 });
    assert.deepEqual(early, { verdict: 'defer', state: -(NOW - 1000), reason: 'early', waitMs: 59_000 });
    await observe(store, '203.0.113.0/24', NOW + 61_000, { minDelayMs: 60_000, maxDelayMs: 3_600_000, ttlMs: 9000 });
    assert.equal(await redis.cli('GET', 'gl:net:203.0.113.0/24'), `1:0;0;0;0;0;${NOW + 61_000 + 9000};${NOW + 5};42`);
  } finally {
    await tier.close();
  }
});

test('records: the codec under <prefix><client>, TTL = expiry, an expired record deleted; lookups read them back', async () => {
  const { tier, store } = tierOn(redis.url, 'rec:');
  try {
    await until(() => tier.up, 'connected');
    const now = Date.now();
    const rec = withPasses(null, [[TestIndex.pregreet, now + 600_000], [TestIndex.dnsbl, now + 300_000]]);
    store.set('192.0.2.7', rec);
    await until(async () => (await redis.cli('EXISTS', 'rec:192.0.2.7')) === '1', 'the write');
    assert.deepEqual(decodeRecord(await redis.cli('GET', 'rec:192.0.2.7')), rec);
    const pttl = Number(await redis.cli('PTTL', 'rec:192.0.2.7'));
    assert.ok(pttl > 590_000 && pttl <= 600_000, `PTTL ${pttl}`);
    assert.deepEqual(await lookup(store, '192.0.2.7'), rec);
    assert.equal(await lookup(store, '192.0.2.8'), null);
    assert.equal(tier.counts.hits, 1);
    assert.equal(tier.counts.misses, 1);
    // A record with nothing left to keep (a failure cleared its passes) is deleted.
    store.set('192.0.2.7', withPasses(rec, [[TestIndex.pregreet, 0], [TestIndex.dnsbl, 0]]));
    await until(async () => (await redis.cli('EXISTS', 'rec:192.0.2.7')) === '0', 'the delete');
    // A value this version cannot read is no record.
    await redis.cli('SET', 'rec:192.0.2.9', '9:garbage');
    assert.equal(await lookup(store, '192.0.2.9'), null);
  } finally {
    await tier.close();
  }
});

test('Redis away: lookups null at once, writes wait up to pending_writes (the rest dropped), STORE FAIL once; back: written, STORE OK', async () => {
  const own = await startRedis();
  const { tier, store, events } = tierOn(own.url, 'away:', 3);
  try {
    await until(() => tier.up, 'connected');
    await own.kill();
    await until(() => events.some((e) => e['event'] === 'STORE FAIL'), 'STORE FAIL');
    const t0 = performance.now();
    assert.equal(await lookup(store, '192.0.2.1'), null);
    assert.ok(performance.now() - t0 < 400, 'answered without waiting for the deadline');
    const now = Date.now();
    for (let i = 1; i <= 10; i++) store.set(`192.0.2.${i}`, withPasses(null, [[TestIndex.pregreet, now + 600_000]]));
    store.set('192.0.2.2', withPasses(null, [[TestIndex.pregreet, now + 900_000]])); // newer value of a waiting key: no new slot
    assert.equal(tier.pending, 3);
    assert.equal(tier.counts.dropped, 7);
    assert.equal(store.memory.size, 10, 'the memory tier has them all');
    await own.restart();
    await until(() => events.some((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined), 'STORE OK', 10_000);
    const ok = events.find((e) => e['event'] === 'STORE OK' && e['down_ms'] !== undefined) as Record<string, unknown>;
    assert.equal(ok['flushed'], 3);
    assert.equal(ok['dropped'], 7);
    await until(async () => (await own.cli('DBSIZE')) === '3', 'three keys written');
    assert.equal(decodeRecord(await own.cli('GET', 'away:192.0.2.2'))[TestIndex.pregreet], now + 900_000, 'the newest value');
    assert.equal(events.filter((e) => e['event'] === 'STORE FAIL').length, 1, 'once per transition');
    assert.equal(events.filter((e) => e['event'] === 'STORE OK').length, 2, 'first connection, and back');
    assert.ok(!JSON.stringify(events).includes('undefined'));
  } finally {
    await tier.close();
    await own.stop();
  }
});
