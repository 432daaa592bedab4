/*
 * cache/tiered.ts - the two-tier verdict store of `cache.store: redis`: this process's memory
 * first, Redis (cache/redis.ts) second.
 *
 * Exports: TieredStore.
 * Reads of the VerdictStore interface (get, observe, entries, size) are the memory tier's,
 * synchronous: a client known here is PASS OLD at once. The session asks the shared tier
 * (lookup, observeShared) beside the greet wait, and keeps what Redis answered in memory (keep())
 * when the session still wants it.
 * Writes (set, delete) go to both. Greylisting decided by Redis is mirrored into memory, so that
 * a network this screener saw keeps its state here while Redis is away; a decision Redis could
 * not give (away, late) is observe() on memory, this screener's own.
 * The snapshot file, when configured, is the memory tier's (`memory`): loading it writes nothing
 * to Redis.
 */
import { MemoryStore } from './memory.js';
import { decodeRecord, withPasses, type SharedTier, type VerdictRecord, type VerdictStore } from './store.js';
import type { RedisTier } from './redis.js';
import type { GreylistDecision, GreylistOptions } from '../checks/greylist.js';
import { TestIndex } from '../checks/tests.js';

const GREYLIST = TestIndex.greylist;

interface LookupCall<T> {
  store: TieredStore;
  client: string;
  owner: T;
  done: (owner: T, rec: VerdictRecord | null) => void;
}

interface ObserveCall<T> {
  store: TieredStore;
  network: string;
  owner: T;
  done: (owner: T, d: GreylistDecision | null) => void;
}

function onLookup<T>(call: LookupCall<T>, text: string | null): void {
  let rec: VerdictRecord | null = null;
  if (text !== null) {
    try {
      rec = decodeRecord(text);
    } catch {
      call.store.tier.counts.errors++; // a value this version cannot read: as unknown
    }
  }
  call.done(call.owner, rec);
}

function onObserve<T>(call: ObserveCall<T>, d: GreylistDecision | null): void {
  if (d !== null) {
    const mem = call.store.memory;
    const key = `net:${call.network}`;
    const prev = mem.get(key);
    if (prev?.[GREYLIST] !== d.state) mem.set(key, withPasses(prev, [[GREYLIST, d.state]]));
  }
  call.done(call.owner, d);
}

export class TieredStore implements VerdictStore, SharedTier {
  readonly memory: MemoryStore;
  readonly tier: RedisTier;

  constructor(memory: MemoryStore, tier: RedisTier) {
    this.memory = memory;
    this.tier = tier;
  }

  get shared(): SharedTier {
    return this;
  }

  get counts(): Readonly<Record<string, number>> {
    return this.tier.counts as unknown as Readonly<Record<string, number>>;
  }

  get(client: string): VerdictRecord | undefined {
    return this.memory.get(client);
  }

  set(client: string, rec: VerdictRecord): void {
    this.memory.set(client, rec);
    this.tier.put(client, rec);
  }

  delete(client: string): void {
    this.memory.delete(client);
    this.tier.put(client, null);
  }

  /** This process's own decision (memory): when Redis cannot give one. */
  observe(network: string, now: number, opts: GreylistOptions): GreylistDecision {
    return this.memory.observe(network, now, opts);
  }

  get size(): number {
    return this.memory.size;
  }

  entries(): IterableIterator<[string, VerdictRecord]> {
    return this.memory.entries();
  }

  get up(): boolean {
    return this.tier.up;
  }

  get timeoutMs(): number {
    return this.tier.timeoutMs;
  }

  lookup<T>(client: string, owner: T, done: (owner: T, rec: VerdictRecord | null) => void): void {
    const call: LookupCall<T> = { store: this, client, owner, done };
    this.tier.lookup(client, call, onLookup);
  }

  keep(client: string, rec: VerdictRecord): void {
    this.memory.set(client, rec);
  }

  observeShared<T>(network: string, now: number, opts: GreylistOptions, owner: T, done: (owner: T, d: GreylistDecision | null) => void): void {
    const call: ObserveCall<T> = { store: this, network, owner, done };
    this.tier.observe(network, now, opts, call, onObserve);
  }

  close(): Promise<void> {
    return this.tier.close();
  }
}
