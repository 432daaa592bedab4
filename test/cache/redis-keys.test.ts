/*
 * cache/redis-keys.ts, pure parts: keys under the prefix, the TTL of a record (its expiry), the
 * reading of the greylisting script's reply (bytes from the network: a property test), and the
 * URL as logged. The script itself runs against a real Redis in redis-tier.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { observeArgs, parseObserveReply, recordTtlMs, redisKey, storeKeyOf } from '../../src/cache/redis-keys.js';
import { describeStore, redactUrl, urlParts } from '../../src/cache/redis.js';
import { decodeRecord, encodeRecord, withPasses } from '../../src/cache/store.js';
import { TEST_COUNT, TestIndex } from '../../src/checks/tests.js';
import type { GreylistDecision } from '../../src/checks/greylist.js';
import { ScreenError } from '../../src/util/errors.js';

const NOW = 1_800_000_000_000;
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const storeKey = fc.oneof(ipv4, ipv4.map((a) => `net:${a}/24`), fc.string({ minLength: 1, maxLength: 40 }));

test('redisKey / storeKeyOf: the store key comes back whole; keys outside the prefix are not ours', () => {
  fc.assert(fc.property(fc.string({ maxLength: 20 }), storeKey, (prefix, key) => {
    assert.equal(storeKeyOf(prefix, redisKey(prefix, key)), key);
  }));
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 40 }), (prefix, rk) => {
    const k = storeKeyOf(prefix, rk);
    if (!rk.startsWith(prefix) || rk === prefix) assert.equal(k, null);
    else assert.equal(prefix + (k as string), rk);
  }));
  // A verdict key and a greylisting key of the same address never meet.
  assert.notEqual(redisKey('p:', '192.0.2.0'), redisKey('p:', 'net:192.0.2.0/24'));
  assert.equal(redisKey('smtpscreen:', 'net:192.0.2.0/24'), 'smtpscreen:net:192.0.2.0/24');
});

test('recordTtlMs: the latest pass-until from now; a first-seen time lives max_delay after it; nothing left: 0', () => {
  const KEEP = 60_000;
  const rows: Array<{ name: string; passes: Array<[number, number]>; want: number }> = [
    { name: 'one pass an hour ahead', passes: [[TestIndex.pregreet, NOW + 3_600_000]], want: 3_600_000 },
    { name: 'the latest of several', passes: [[TestIndex.pregreet, NOW + 1000], [TestIndex.dnsbl, NOW + 5000], [TestIndex.greylist, NOW + 2000]], want: 5000 },
    { name: 'every pass expired', passes: [[TestIndex.pregreet, NOW - 1], [TestIndex.dnsbl, NOW]], want: 0 },
    { name: 'no pass at all', passes: [], want: 0 },
    { name: 'first seen 10 s ago', passes: [[TestIndex.greylist, -(NOW - 10_000)]], want: 50_000 },
    { name: 'first seen longer ago than max_delay', passes: [[TestIndex.greylist, -(NOW - KEEP - 1)]], want: 0 },
    { name: 'fractional ms round up', passes: [[TestIndex.dnsbl, NOW + 0.5]], want: 1 },
  ];
  for (const r of rows) assert.equal(recordTtlMs(withPasses(null, r.passes), NOW, KEEP), r.want, r.name);
  // Any record: the key lives exactly as long as its longest-lived field.
  fc.assert(fc.property(fc.array(fc.integer({ min: -2 * 86_400_000, max: 2 * 86_400_000 }), { minLength: TEST_COUNT, maxLength: TEST_COUNT }), (offsets) => {
    const rec = withPasses(null, offsets.map((o, i) => [i, o === 0 ? 0 : o > 0 ? NOW + o : -(NOW + o)] as const));
    const ttl = recordTtlMs(rec, NOW, KEEP);
    assert.ok(ttl >= 0);
    for (const o of offsets) {
      const end = o > 0 ? NOW + o : o < 0 ? NOW + o + KEEP : 0;
      assert.ok(end <= NOW + ttl, `field ending at ${end} outlives the key (${NOW + ttl})`);
    }
    if (ttl > 0) assert.ok(offsets.some((o) => (o > 0 ? o : o < 0 ? o + KEEP : 0) === ttl), 'the TTL is some field\'s end');
  }));
});

test('a record round-trips through the text stored in Redis (the snapshot codec)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: -1e14, max: 1e14 }), { minLength: TEST_COUNT, maxLength: TEST_COUNT }), (vals) => {
    const rec = withPasses(null, vals.map((v, i) => [i, v] as const));
    assert.deepEqual(Array.from(decodeRecord(encodeRecord(rec)) as Float64Array), vals.map((v) => v + 0));
  }));
});

function toReply(d: GreylistDecision): string[] {
  const extra = d.verdict === 'pass' ? d.delayMs : d.reason === 'early' ? d.waitMs : 0;
  return [d.verdict, String(d.state), d.reason, String(extra)];
}

test('parseObserveReply: every decision shape reads back as sent', () => {
  const decision: fc.Arbitrary<GreylistDecision> = fc.oneof(
    fc.record({ verdict: fc.constant('defer' as const), state: fc.integer({ min: -1e13, max: 0 }), reason: fc.constantFrom('new' as const, 'expired' as const) }),
    fc.record({ verdict: fc.constant('defer' as const), state: fc.integer({ min: -1e13, max: -1 }), reason: fc.constant('early' as const), waitMs: fc.nat(1e9) }),
    fc.record({ verdict: fc.constant('pass' as const), state: fc.integer({ min: 1, max: 1e13 }), reason: fc.constantFrom('retry' as const, 'passed' as const), delayMs: fc.nat(1e9) }),
  );
  // fc.record() makes null-prototype objects: compare as plain ones.
  fc.assert(fc.property(decision, (d) => assert.deepEqual(parseObserveReply(toReply(d)), { ...d })));
});

test('parseObserveReply: any other reply is a ScreenError SCR_ERR_CACHE, never a crash or a made-up decision', () => {
  const bad = [null, 'pass', [], ['pass', '1', 'retry'], ['pass', '1', 'new', '0'], ['defer', 'x', 'new', '0'], ['defer', '1.5', 'new', '0'],
    ['maybe', '1', 'retry', '0'], ['pass', '1', 'retry', '0', 'extra'], [1, 2, 3, 4], ['defer', '-1', 'early', ''],
    // Values whose String() or JSON.stringify() throws: found by the property below.
    { toString: false }, [{ toString: false }, '1', 'new', '0'], ['defer', 1n, 'new', '0'], Object.create(null)];
  for (const [i, b] of bad.entries()) assert.throws(() => parseObserveReply(b), (e: unknown) => e instanceof ScreenError && e.code === 'SCR_ERR_CACHE', `bad[${i}]`);
  fc.assert(fc.property(fc.anything(), (junk) => {
    try {
      const d = parseObserveReply(junk);
      assert.deepEqual(parseObserveReply(toReply(d)), d); // only a well-formed reply gets through
    } catch (e) {
      assert.ok(e instanceof ScreenError && e.code === 'SCR_ERR_CACHE', String(e));
    }
  }));
});

test('observeArgs: now as whole ms, the delays, the greylist row and the row count', () => {
  assert.deepEqual(observeArgs(NOW + 0.7, { minDelayMs: 1, maxDelayMs: 2, ttlMs: 3 }), [NOW, 1, 2, 3, TestIndex.greylist, TEST_COUNT]);
});

test('redactUrl: the password never reaches a log', () => {
  const rows: Array<[string, string]> = [
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:secret@127.0.0.1:6379/2', 'redis://:***@127.0.0.1:6379/2'],
    ['rediss://user:secret@redis.example:6380', 'rediss://user:***@redis.example:6380'],
    ['redis://justapassword@h:1', 'redis://***@h:1'],
  ];
  for (const [url, want] of rows) assert.equal(redactUrl(url), want, url);
  fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9]{1,12}$/), fc.stringMatching(/^[A-Za-z0-9!$%]{4,20}$/), (user, pw) => {
    assert.ok(!redactUrl(`redis://${user}:${pw}@127.0.0.1:1`).includes(`:${pw}@`));
  }));
});

test('urlParts: the user, password (percent-decoded), database and TLS that Sentinel and Cluster take from cache.redis.url', () => {
  assert.deepEqual(urlParts(null), { tls: false });
  assert.deepEqual(urlParts('redis://127.0.0.1:6379'), { tls: false });
  assert.deepEqual(urlParts('rediss://mx:p%40ss@h:1/2'), { tls: true, username: 'mx', password: 'p@ss', db: 2 });
  assert.deepEqual(urlParts('redis://:secret@/0'), { tls: false, password: 'secret', db: 0 });
  assert.deepEqual(urlParts('REDISS://'), { tls: true });
});

test('describeStore: the URL without its password, or the sentinels and master, or the cluster seeds (what STORE FAIL/OK log)', () => {
  const base = { url: null, sentinels: [], sentinel_master: 'mymaster', cluster: [], prefix: 'p:', timeout: 1, connect_timeout: 1, pending_writes: 1 };
  assert.equal(describeStore({ ...base, url: 'redis://u:pw@h:1/0' }), 'redis://u:***@h:1/0');
  assert.equal(describeStore({ ...base, url: 'redis://:pw@', sentinels: [{ host: '127.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], sentinel_master: 'mx' }),
    'sentinel://127.0.0.1:26379,[::1]:26380/mx');
  assert.equal(describeStore({ ...base, cluster: [{ host: '127.0.0.1', port: 7000 }] }), 'cluster://127.0.0.1:7000');
});
