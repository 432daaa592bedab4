/*
 * cache/memory.ts - the in-memory verdict tier (lru-cache), synchronous, bounded.
 *
 * Exports: MemoryStore.
 * Bounded in entries (the cache grows with use; nothing is preallocated); each entry is one small record, a value (never edited
 * in place: observe() stores a new one). Greylist state lives under "net:<CIDR>" keys. An entry whose
 * every pass has expired is worthless and is dropped when read.
 */
import { LRUCache } from 'lru-cache';
import { withPasses, type VerdictRecord, type VerdictStore } from './store.js';
import { greylistDecide, type GreylistDecision, type GreylistOptions } from '../checks/greylist.js';
import { TestIndex } from '../checks/tests.js';

const GREYLIST = TestIndex.greylist;
const one = (): number => 1;

export class MemoryStore implements VerdictStore {
  #lru: LRUCache<string, VerdictRecord>;
  constructor(maxEntries: number) {
    // Bounded by maxSize at one unit per entry, not by `max`: with `max` lru-cache preallocates its
    // arrays at construction (1,000,000 entries: ~15 MB and 150 ms at start); this way they grow with use.
    this.#lru = new LRUCache<string, VerdictRecord>({ maxSize: Math.max(1, maxEntries), sizeCalculation: one });
  }
  get(client: string): VerdictRecord | undefined {
    return this.#lru.get(client);
  }
  set(client: string, rec: VerdictRecord): void {
    this.#lru.set(client, rec);
  }
  observe(network: string, now: number, opts: GreylistOptions): GreylistDecision {
    const key = `net:${network}`;
    const prev = this.#lru.get(key);
    const d = greylistDecide(prev?.[GREYLIST] ?? 0, now, opts);
    if (prev?.[GREYLIST] !== d.state) this.#lru.set(key, withPasses(prev, [[GREYLIST, d.state]]));
    return d;
  }
  delete(client: string): void {
    this.#lru.delete(client);
  }
  get size(): number {
    return this.#lru.size;
  }
  entries(): IterableIterator<[string, VerdictRecord]> {
    return this.#lru.entries() as IterableIterator<[string, VerdictRecord]>;
  }
}
