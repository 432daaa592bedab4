/*
 * cache/memory.ts - the in-memory verdict tier (lru-cache), synchronous, bounded.
 *
 * Exports: MemoryStore.
 * Bounded in entries; each entry is one small Float64Array. An entry whose
 * every pass has expired is worthless and is dropped when read.
 */
import { LRUCache } from 'lru-cache';
import type { VerdictRecord, VerdictStore } from './store.js';

export class MemoryStore implements VerdictStore {
  #lru: LRUCache<string, VerdictRecord>;
  constructor(maxEntries: number) {
    this.#lru = new LRUCache<string, VerdictRecord>({ max: Math.max(1, maxEntries) });
  }
  get(client: string): VerdictRecord | undefined {
    return this.#lru.get(client);
  }
  set(client: string, rec: VerdictRecord): void {
    this.#lru.set(client, rec);
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
