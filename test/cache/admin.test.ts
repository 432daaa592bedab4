/*
 * cache/admin.ts: the request parser (property test: any line gives a
 * request or an error, never a throw; valid requests parse as written) and
 * the operations on a memory store (records are values: pass builds a new
 * one; export -> import round trip).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_REQUEST, applyAdmin, parseAdminRequest, parseEntry } from '../../src/cache/admin.js';
import { MemoryStore } from '../../src/cache/memory.js';
import { withPasses } from '../../src/cache/store.js';
import { TEST_COUNT, TestIndex } from '../../src/checks/tests.js';

const NOW = 1_800_000_000_000;

test('parseAdminRequest: garbage of every kind is an error, never a throw', () => {
  const jsonish = fc.oneof(
    fc.string(),
    fc.json(),
    fc.record({ op: fc.oneof(fc.constantFrom('list', 'show', 'delete', 'pass', 'export', 'import', 'drop'), fc.anything()), address: fc.anything(), ttl_ms: fc.anything(), lines: fc.anything() }, { requiredKeys: [] }).map((o) => JSON.stringify(o) ?? ''),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  fc.assert(fc.property(jsonish, (line) => {
    const r = parseAdminRequest(line);
    if ('error' in r) assert.equal(typeof r.error, 'string');
    else assert.ok(['list', 'show', 'delete', 'pass', 'export', 'import'].includes(r.op));
  }), { numRuns: 5000 });
  assert.match((parseAdminRequest('x'.repeat(MAX_REQUEST + 1)) as { error: string }).error, /longer than/);
  assert.match((parseAdminRequest('[1]') as { error: string }).error, /not a JSON object/);
  assert.match((parseAdminRequest('{"op":"show","address":"300.1.1.1"}') as { error: string }).error, /address/);
  assert.match((parseAdminRequest('{"op":"pass","address":"192.0.2.1","ttl_ms":0}') as { error: string }).error, /ttl_ms/);
  assert.match((parseAdminRequest('{"op":"import","lines":[1]}') as { error: string }).error, /lines/);
});

test('parseAdminRequest: valid requests, addresses normalised', () => {
  fc.assert(fc.property(fc.ipV4(), fc.integer({ min: 1, max: 365 * 86_400_000 }), (ip, ttl) => {
    assert.deepEqual(parseAdminRequest(JSON.stringify({ op: 'pass', address: ip, ttl_ms: ttl })), { op: 'pass', address: ip, ttlMs: ttl });
  }));
  assert.deepEqual(parseAdminRequest('{"op":"show","address":"2001:DB8::0:1"}'), { op: 'show', address: '2001:db8::1' });
  assert.deepEqual(parseAdminRequest('{"op":"list"}'), { op: 'list' });
});

test('applyAdmin: pass builds a new record (the stored one is not edited); delete forgets; show; list', () => {
  const store = new MemoryStore(100);
  const before = withPasses(null, [[TestIndex.dnsbl, NOW + 5]]);
  store.set('192.0.2.1', before);
  const p = applyAdmin(store, { op: 'pass', address: '192.0.2.1', ttlMs: 86_400_000 }, NOW);
  assert.deepEqual(p.change, { op: 'pass', address: '192.0.2.1', ttl_ms: 86_400_000 });
  const after = store.get('192.0.2.1');
  assert.notEqual(after, before);
  assert.equal(before[TestIndex.dnsbl], NOW + 5, 'the old record is untouched');
  for (let i = 0; i < TEST_COUNT; i++) assert.equal(after?.[i], NOW + 86_400_000);
  const shown = applyAdmin(store, { op: 'show', address: '192.0.2.1' }, NOW).reply;
  assert.equal((shown['passes'] as Record<string, string>)['pregreet'], `passed until ${new Date(NOW + 86_400_000).toISOString()}`);
  const listed: Array<Record<string, unknown>> = [];
  assert.equal(applyAdmin(store, { op: 'list' }, NOW, (e) => listed.push(e)).reply['count'], 1);
  assert.equal(listed[0]?.['address'], '192.0.2.1');
  const d = applyAdmin(store, { op: 'delete', address: '192.0.2.1' }, NOW);
  assert.deepEqual([d.reply['found'], d.change?.op], [true, 'delete']);
  assert.equal(store.get('192.0.2.1'), undefined);
  assert.equal(applyAdmin(store, { op: 'show', address: '192.0.2.1' }, NOW).reply['found'], false);
});

test('applyAdmin: export -> import round trip (clients and greylisted networks), bad lines skipped', () => {
  const a = new MemoryStore(100);
  a.set('192.0.2.1', withPasses(null, [[TestIndex.pregreet, NOW + 1000]]));
  a.set('2001:db8::5', withPasses(null, [[TestIndex.dnsbl, NOW + 2000]]));
  a.set('net:192.0.2.0/24', withPasses(null, [[TestIndex.greylist, -NOW]]));
  const lines: string[] = [];
  applyAdmin(a, { op: 'export' }, NOW, (e) => lines.push(String(e['line'])));
  assert.equal(lines.length, 3);
  const b = new MemoryStore(100);
  const r = applyAdmin(b, { op: 'import', lines: [...lines, 'garbage', '192.0.2.9 2:1;2'] }, NOW);
  assert.deepEqual([r.reply['entries'], r.reply['skipped']], [3, 2]);
  for (const [k, rec] of a.entries()) assert.deepEqual(Array.from(b.get(k) ?? []), Array.from(rec), k);
  assert.equal(parseEntry('not-an-address 1:0'), null);
});
