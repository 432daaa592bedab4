/*
 * cache.store: redis at validation (config/refusals.ts checkRedis): the URL is needed and must be
 * redis:// or rediss://, its password never echoed; the lookup deadline must be below the greet
 * wait, normal and stress; the values next to these are accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { configError } from '../helpers/config-error.js';

const R = (redis: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ cache: { store: 'redis', redis }, ...extra });

const refused: Array<{ label: string; raw: Record<string, unknown>; key: string; message: RegExp }> = [
  { label: 'no url', raw: R({}), key: 'cache.redis.url', message: /cache\.redis\.url: cache\.store is redis: set cache\.redis\.url, e\.g\. redis:\/\/127\.0\.0\.1:6379/ },
  { label: 'another scheme', raw: R({ url: 'http://127.0.0.1:6379' }), key: 'cache.redis.url', message: /want redis:\/\/host:port\[\/db\] or rediss:\/\// },
  { label: 'no host', raw: R({ url: 'redis://' }), key: 'cache.redis.url', message: /want redis:\/\// },
  { label: 'timeout equal to the greet wait', raw: R({ url: 'redis://127.0.0.1:1', timeout: '6s' }), key: 'cache.redis.timeout',
    message: /cache\.redis\.timeout: 6s is not below pregreet\.wait \(6s\).*must end before it; set it well below/ },
  { label: 'timeout above the stress greet wait (2s by default)', raw: R({ url: 'redis://127.0.0.1:1', timeout: '3s' }), key: 'cache.redis.timeout',
    message: /cache\.redis\.timeout: 3s is not below stress\.pregreet\.wait \(2s\)/ },
  { label: 'timeout above a configured stress greet wait', raw: R({ url: 'redis://127.0.0.1:1', timeout: '500ms' }, { stress: { pregreet: { wait: '400ms' } } }),
    key: 'cache.redis.timeout', message: /not below stress\.pregreet\.wait \(400ms\)/ },
  { label: 'a bad duration', raw: R({ url: 'redis://127.0.0.1:1', timeout: 'soon' }), key: 'cache.redis.timeout', message: /bad duration "soon"/ },
  { label: 'both sentinels and cluster nodes', raw: R({ sentinels: ['127.0.0.1:26379'], cluster: ['127.0.0.1:7000'] }), key: 'cache.redis.cluster',
    message: /cache\.redis\.sentinels and cache\.redis\.cluster are both set: a store is either behind Sentinel or a Cluster; set one/ },
  { label: 'a cluster URL naming database 3', raw: R({ url: 'redis://:pw@/3', cluster: ['127.0.0.1:7000'] }), key: 'cache.redis.url',
    message: /a Redis Cluster has only database 0: leave \/db out of the URL/ },
  { label: 'a sentinel that is not host:port', raw: R({ sentinels: ['127.0.0.1'] }), key: 'cache.redis.sentinels[0]', message: /./ },
  { label: 'an unknown store', raw: { cache: { store: 'memcache' } }, key: 'cache.store', message: /want one of memory, redis/ },
];
for (const r of refused) {
  test(`refused: ${r.label}, naming the key and the fix`, () => {
    const e = configError(() => validateConfig(r.raw, 'screen.yaml'));
    assert.equal(e.details['key'], r.key);
    assert.match(e.message, r.message);
  });
}

test('the password of a refused URL is not in the error', () => {
  const e = configError(() => validateConfig(R({ url: 'http://user:s3cret@h:1' })));
  assert.doesNotMatch(e.message + JSON.stringify(e.details), /s3cret/);
});

test('accepted: redis:// and rediss:// with a deadline below both greet waits; memory needs no url; no pregreet, no greet-wait bound', () => {
  for (const url of ['redis://127.0.0.1:6379', 'rediss://user:pw@redis.example:6380/2', 'redis://[::1]:6379']) {
    const c = validateConfig(R({ url, timeout: '150ms', prefix: 'mx:' }));
    assert.equal(c.cache.store, 'redis');
    assert.equal(c.cache.redis.url, url);
    assert.equal(c.cache.redis.timeout, 150);
    assert.equal(c.cache.redis.prefix, 'mx:');
  }
  assert.equal(validateConfig({ cache: { store: 'memory' } }).cache.redis.url, null);
  assert.equal(validateConfig(R({ url: 'redis://h:1', timeout: '5s' }, { pregreet: { enable: false } })).cache.redis.timeout, 5000);
});

test('accepted: sentinels (with or without a URL for credentials, master name defaulting to mymaster) and cluster seeds (URL without a host)', () => {
  const s = validateConfig(R({ sentinels: ['127.0.0.1:26379', '[::1]:26380'] })).cache.redis;
  assert.deepEqual(s.sentinels.map((h) => `${h.host}/${h.port}`), ['127.0.0.1/26379', '::1/26380']);
  assert.equal(s.sentinel_master, 'mymaster');
  assert.equal(s.url, null);
  assert.equal(validateConfig(R({ sentinels: ['127.0.0.2:26379'], sentinel_master: 'mx', url: 'rediss://:pw@/2' })).cache.redis.sentinel_master, 'mx');
  const c = validateConfig(R({ cluster: ['127.0.0.1:7000'], url: 'redis://:pw@' })).cache.redis;
  assert.deepEqual(c.cluster.map((h) => h.port), [7000]);
  assert.deepEqual(validateConfig(R({ url: 'redis://h:1' })).cache.redis.cluster, []);
});
