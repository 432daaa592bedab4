import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/cache/memory.js';
import { newRecord, encodeRecord, decodeRecord, allPassed } from '../../src/cache/store.js';
import { loadSnapshot, saveSnapshot, SNAPSHOT_HEADER } from '../../src/cache/snapshot.js';
import { TestIndex, TEST_COUNT } from '../../src/checks/tests.js';

const NOW = 1_800_000_000_000;

test('record codec: round trip, short records read as never-passed, bad input is SCR_ERR_CACHE', () => {
  const r = newRecord();
  r[TestIndex.pregreet] = NOW + 1000;
  assert.deepEqual(Array.from({ length: r.length }, (_, i) => decodeRecord(encodeRecord(r))[i]), [...r]);
  const short = decodeRecord(`1:${NOW + 5}`);
  assert.equal(short.length, TEST_COUNT);
  assert.equal(short[TestIndex.pregreet], NOW + 5);
  assert.equal(short[TestIndex.dnsbl], 0);
  // a newer writer's extra rows are ignored
  assert.equal(decodeRecord(`1:${'1;'.repeat(TEST_COUNT + 3)}1`).length, TEST_COUNT);
  assert.equal(decodeRecord('1:0;0;0;0;0;-1800000000000')[TestIndex.greylist], -1800000000000, 'greylist first-seen times are negative');
  for (const bad of ['', '2:1;2', '1:abc', '1:--5', '1:1e5', 'x', '1:5-']) {
    assert.throws(() => decodeRecord(bad), { code: 'SCR_ERR_CACHE' }, `input ${JSON.stringify(bad)}`);
  }
});

test('allPassed: every enabled test must have an unexpired pass', () => {
  const r = newRecord();
  const enabled = [TestIndex.pregreet, TestIndex.dnsbl];
  r[TestIndex.pregreet] = NOW + 10;
  assert.equal(allPassed(r, enabled, NOW), false, 'dnsbl never passed');
  r[TestIndex.dnsbl] = NOW + 10;
  assert.equal(allPassed(r, enabled, NOW), true);
  assert.equal(allPassed(r, enabled, NOW + 10), false, 'expired at the pass-until time');
  assert.equal(allPassed(r, [], NOW), false, 'no enabled tests: nothing to be old for');
});

test('snapshot: save then load restores live entries and drops expired ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-snap-'));
  const file = join(dir, 'cache');
  const a = new MemoryStore(100);
  const live = newRecord();
  live[TestIndex.pregreet] = NOW + 60_000;
  const dead = newRecord();
  dead[TestIndex.pregreet] = NOW - 1;
  a.set('127.0.0.77', live);
  a.set('2001:db8::1', live);
  a.set('127.0.0.78', dead);
  const grey = newRecord();
  grey[TestIndex.greylist] = -(NOW - 5000);
  a.set('net:192.0.2.0/24', grey);
  const saved = await saveSnapshot(a, file, NOW);
  assert.deepEqual({ ok: saved.ok, entries: saved.entries, expired: saved.expired }, { ok: true, entries: 3, expired: 1 });
  assert.deepEqual(readdirSync(dir), ['cache'], 'no temp file left behind');
  const b = new MemoryStore(100);
  const loaded = await loadSnapshot(b, file, NOW);
  assert.equal(loaded.entries, 3);
  assert.equal(b.get('127.0.0.77')?.[TestIndex.pregreet], NOW + 60_000);
  assert.equal(b.get('net:192.0.2.0/24')?.[TestIndex.greylist], -(NOW - 5000), 'greylist state survives a restart');
  assert.equal(b.get('127.0.0.78'), undefined);
});

test('snapshot: corrupt lines are skipped and counted; a bad header sets the file aside', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-snap-'));
  const file = join(dir, 'cache');
  writeFileSync(file, `${SNAPSHOT_HEADER}\n127.0.0.1 1:${NOW + 9}\ngarbage\n127.0.0.2 1:xyz\nnot-an-ip 1:${NOW + 9}\nnet:nope/24 1:-5\n\u0000\u0001\n127.0.0.3 1:${NOW + 9}`);
  const s = new MemoryStore(10);
  const r = await loadSnapshot(s, file, NOW);
  assert.deepEqual({ ok: r.ok, entries: r.entries, skipped: r.skipped }, { ok: true, entries: 2, skipped: 5 });
  assert.ok(s.get('127.0.0.3'));

  writeFileSync(file, 'not a snapshot\n127.0.0.1 1:5\n');
  const s2 = new MemoryStore(10);
  const r2 = await loadSnapshot(s2, file, NOW);
  assert.equal(r2.ok, false);
  assert.equal(s2.size, 0);
  assert.ok(r2.setAside !== undefined && existsSync(r2.setAside));
  assert.equal(existsSync(file), false);
  assert.match(readFileSync(r2.setAside, 'utf8'), /^not a snapshot/);
});

test('snapshot: a missing file is a normal first start; an unwritable path is an error result, not a throw', async () => {
  const s = new MemoryStore(10);
  const r = await loadSnapshot(s, '/nonexistent-dir-scr/cache', NOW);
  assert.deepEqual({ ok: r.ok, entries: r.entries }, { ok: true, entries: 0 });
  const w = await saveSnapshot(s, '/nonexistent-dir-scr/cache', NOW);
  assert.equal(w.ok, false);
  assert.ok(typeof w.error === 'string' && w.error.length > 0);
});

test('snapshot: load with removeTemps deletes the temp files of crashed saves of that snapshot, and nothing else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-snap-'));
  const file = join(dir, 'cache');
  const a = new MemoryStore(10);
  const live = newRecord();
  live[TestIndex.pregreet] = NOW + 60_000;
  a.set('127.0.0.77', live);
  assert.equal((await saveSnapshot(a, file, NOW)).ok, true);
  // What saves killed mid-write leave: ".<name>.tmp-<pid>", one per crash.
  const leftovers = ['.cache.tmp-1', '.cache.tmp-4242', '.cache.tmp-987654'];
  // Names that only look alike: other snapshots, other suffixes, no pid, a set-aside corrupt file.
  const others = ['.cache.tmp-', '.cache.tmp-12x', '.cache.tmp-12.bak', 'cache.tmp-12', '.cache2.tmp-12', '.other.tmp-12', 'x.cache.tmp-12', 'cache.corrupt-1700000000000'];
  for (const n of [...leftovers, ...others]) writeFileSync(join(dir, n), 'partial\n');
  // Without the option (explain, beside a running screener) nothing is deleted.
  await loadSnapshot(new MemoryStore(10), file, NOW);
  assert.deepEqual(readdirSync(dir).sort(), ['cache', ...leftovers, ...others].sort());
  const b = new MemoryStore(10);
  const r = await loadSnapshot(b, file, NOW, { removeTemps: true });
  assert.deepEqual({ ok: r.ok, entries: r.entries, removedTemps: r.removedTemps }, { ok: true, entries: 1, removedTemps: 3 });
  assert.deepEqual(readdirSync(dir).sort(), ['cache', ...others].sort());
  assert.equal(readFileSync(join(dir, '.other.tmp-12'), 'utf8'), 'partial\n');
  // A missing snapshot with leftovers beside it: still cleaned, a normal empty start.
  writeFileSync(join(dir, '.fresh.tmp-77'), 'partial\n');
  const f = await loadSnapshot(new MemoryStore(10), join(dir, 'fresh'), NOW, { removeTemps: true });
  assert.deepEqual({ ok: f.ok, entries: f.entries, removedTemps: f.removedTemps }, { ok: true, entries: 0, removedTemps: 1 });
  assert.equal(existsSync(join(dir, '.fresh.tmp-77')), false);
});
