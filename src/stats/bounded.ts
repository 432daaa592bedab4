/*
 * stats/bounded.ts - counters whose memory does not grow with the log.
 *
 * Exports: TopCounter (key -> count, at most `cap` keys), Histogram (fixed
 *          buckets, count/sum/max), Evicting (a Map that forgets its oldest
 *          entries past a cap).
 * A log of a month can name millions of clients; `smtpscreen stats` must
 * summarise it in a bounded heap. TopCounter keeps at most `cap` keys: when
 * it is full, the half with the lowest counts is dropped (sorted once, so
 * each insert costs O(log cap) amortised) and `approximate` becomes true: a
 * key dropped and seen again restarts from 0, so counts of the top keys are
 * lower bounds, exact while `approximate` is false.
 */

export class TopCounter<V = undefined> {
  readonly #cap: number;
  readonly #map = new Map<string, { n: number; v: V }>();
  readonly #make: (() => V) | undefined;
  /** True once keys were dropped to stay within the cap. */
  approximate = false;
  /** Sum of every add(), dropped keys included. */
  total = 0;

  constructor(cap: number, make?: () => V) {
    this.#cap = Math.max(2, cap);
    this.#make = make;
  }

  /** add - count `n` for `key`; returns the key's entry value (made by `make` on first sight). */
  add(key: string, n = 1): V {
    this.total += n;
    let e = this.#map.get(key);
    if (e === undefined) {
      if (this.#map.size >= this.#cap) this.#prune();
      e = { n: 0, v: this.#make !== undefined ? this.#make() : (undefined as V) };
      this.#map.set(key, e);
    }
    e.n += n;
    return e.v;
  }

  get(key: string): number {
    return this.#map.get(key)?.n ?? 0;
  }

  get size(): number {
    return this.#map.size;
  }

  #prune(): void {
    const sorted = [...this.#map].sort((a, b) => b[1].n - a[1].n);
    this.#map.clear();
    for (const [k, e] of sorted.slice(0, Math.floor(this.#cap / 2))) this.#map.set(k, e);
    this.approximate = true;
  }

  /** The `limit` largest, count descending then key ascending (a stable report). */
  top(limit = Infinity): Array<[string, number, V]> {
    return [...this.#map]
      .sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, limit)
      .map(([k, e]) => [k, e.n, e.v]);
  }

  /** The counts as a plain object, largest first (at most `limit` keys). */
  toObject(limit = Infinity): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, n] of this.top(limit)) out[k] = n;
    return out;
  }
}

/** Fixed upper bounds; a value above the last goes to the last bucket ("+Inf"). */
export class Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  count = 0;
  sum = 0;
  max = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  add(v: number): void {
    if (!Number.isFinite(v) || v < 0) return;
    let i = 0;
    while (i < this.bounds.length && v > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  clone(): Histogram {
    const h = new Histogram(this.bounds);
    for (let i = 0; i < this.counts.length; i++) h.counts[i] = this.counts[i] as number;
    h.count = this.count;
    h.sum = this.sum;
    h.max = this.max;
    return h;
  }

  /** The smallest bucket bound under which a fraction q of the values fall (the last bound's "+Inf" as max). */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const want = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= want) return i < this.bounds.length ? (this.bounds[i] as number) : this.max;
    }
    return this.max;
  }

  toJSON(): { count: number; mean: number | null; max: number | null; p50: number | null; p90: number | null;
    buckets: Array<{ le: number | '+Inf'; count: number }> } {
    return {
      count: this.count,
      mean: this.count > 0 ? Math.round((this.sum / this.count) * 10) / 10 : null,
      max: this.count > 0 ? Math.round(this.max * 10) / 10 : null,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      buckets: this.counts.map((c, i) => ({ le: i < this.bounds.length ? (this.bounds[i] as number) : '+Inf', count: c })),
    };
  }
}

/** A Map that forgets its oldest insertions past `cap` (counted in `evicted`). */
export class Evicting<V> {
  readonly #cap: number;
  readonly map = new Map<string, V>();
  evicted = 0;
  /** Called with each entry forgotten for room. */
  onEvict: ((key: string, v: V) => void) | undefined;

  constructor(cap: number) {
    this.#cap = Math.max(1, cap);
  }

  set(key: string, v: V): void {
    if (!this.map.has(key) && this.map.size >= this.#cap) {
      const first = this.map.keys().next();
      if (first.done !== true) {
        const old = this.map.get(first.value) as V;
        this.map.delete(first.value);
        this.evicted++;
        this.onEvict?.(first.value, old);
      }
    }
    this.map.set(key, v);
  }
}
