/*
 * bench/micro/cache.bench.ts - the verdict cache hot path: the versioned
 * record codec (cache/store.ts encodeRecord/decodeRecord, the text written to
 * the snapshot file and later Redis) and the memory tier (cache/memory.ts
 * MemoryStore get/set), at the default size of 100,000 entries.
 * The get is what every connection pays before its tests start (hit: PASS
 * OLD; miss: a new client); the set is what conclude() pays once per pass.
 */
import type { Bench } from 'tinybench';
import { decodeRecord, encodeRecord, newRecord } from '../../src/cache/store.js';
import { MemoryStore } from '../../src/cache/memory.js';

const ENTRIES = 100_000;

function clientAt(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

export default function (bench: Bench): void {
  const now = Date.now();
  // A typical record: pregreet and DNSBL passed, the rest never ran.
  const rec = newRecord();
  rec[0] = now + 86_400_000;
  rec[1] = now + 3_600_000;
  const text = encodeRecord(rec);
  const full = newRecord().fill(now + 86_400_000);
  const fullText = encodeRecord(full);

  const store = new MemoryStore(ENTRIES);
  const clients: string[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const c = clientAt(i);
    clients.push(c);
    store.set(c, newRecord().fill(now + i));
  }
  const misses: string[] = [];
  for (let i = 0; i < 1024; i++) misses.push(`192.0.${(i >>> 8) & 255}.${i & 255}`);
  // A second store for the set: full, so every set of a new key also evicts the oldest.
  const churn = new MemoryStore(ENTRIES);
  for (let i = 0; i < ENTRIES; i++) churn.set(clientAt(i), rec);
  const fresh: string[] = [];
  for (let i = 0; i < 4096; i++) fresh.push(`172.16.${(i >>> 8) & 255}.${i & 255}`);

  let i = 0;
  let sink = 0;
  // charCodeAt of the last char flattens V8's rope, as writing it out would.
  bench.add(`encodeRecord (2 of 6 tests passed, ${text.length} chars)`, () => {
    const s = encodeRecord(rec);
    sink += s.charCodeAt(s.length - 1);
  });
  bench.add(`encodeRecord (6 of 6 passed, ${fullText.length} chars)`, () => {
    const s = encodeRecord(full);
    sink += s.charCodeAt(s.length - 1);
  });
  bench.add('decodeRecord (2 of 6 passed)', () => {
    sink += decodeRecord(text)[0] ?? 0;
  });
  bench.add('decodeRecord (6 of 6 passed)', () => {
    sink += decodeRecord(fullText)[5] ?? 0;
  });
  bench.add(`MemoryStore get hit (${ENTRIES.toLocaleString('en-US')} entries)`, () => {
    i = (i + 7919) % ENTRIES; // stride: no locality to help the CPU cache
    sink += store.get(clients[i] as string)?.length ?? 0;
  });
  bench.add(`MemoryStore get miss (${ENTRIES.toLocaleString('en-US')} entries)`, () => {
    sink += store.get(misses[i++ & 1023] as string)?.length ?? 1;
  });
  bench.add('MemoryStore set existing key (update + promote)', () => {
    i = (i + 7919) % ENTRIES;
    store.set(clients[i] as string, rec);
  });
  bench.add('MemoryStore set new key, full store (insert + evict)', () => {
    churn.set(fresh[i++ & 4095] as string, rec);
    // Every 4,096 sets, a new batch of names never seen before (keys, not
    // addresses: only their length matters), so each set is an insert.
    if ((i & 4095) === 0) for (let k = 0; k < fresh.length; k++) fresh[k] = `172.${i >>> 12}.${k >>> 8}.${k & 255}`;
  });
  bench.addEventListener('complete', () => { if (sink === 0.5) console.log(sink, churn.size); });
}
