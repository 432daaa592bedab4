/*
 * checks/spf-allowlist.ts - access.spf: the permit entries published by big senders' SPF records.
 *
 * Exports:
 *   SpfAllowlist                  new SpfAllowlist(dns, opts)
 *     match(addr)                 AccessMatch (action permit, entry "spf:<domain> <cidr>") or undefined
 *     size                        entries in the current set
 *     configure(domains, opts)    a reload: keeps what it knows of domains still listed
 *     setDns(dns)                 another resolver (resolver.* changed)
 *     refresh()                   walks every domain that is due; Promise<void>, never rejects
 *     nextDelay()                 ms until the next domain is due (the server arms its timer on it)
 *   SpfChange                     what one refresh of one domain did (the ALLOWLIST SPF event's fields)
 *   SpfAllowlistOptions           { refreshMinMs, refreshMaxMs, now?, onChange }
 *
 * Consulted after the access list (access.list decides first, `dunno` included), like a second
 * permanent allow list. Each domain is walked by checks/spf-collect.ts; its netblocks replace its
 * previous ones when the walk succeeds, and are kept as they were when it fails (a DNS timeout,
 * a broken record): the last good set stays until a walk succeeds again. A domain is due again
 * after the least TTL of its answers, bounded by refreshMinMs and refreshMaxMs; after a failure,
 * after refreshMinMs. The matcher (net/cidr.ts, first match wins) is rebuilt only when a set
 * changed, so a lookup allocates nothing. No timers here: the server calls refresh() and arms
 * its own timer with nextDelay().
 */
import type { DnsLookup } from '../dns/types.js';
import { CidrMatcher, formatCidr, type Cidr, type ParsedAddress } from '../net/cidr.js';
import type { AccessMatch } from './access.js';
import { collectSpf } from './spf-collect.js';

export interface SpfChange {
  domain: string;
  /** Entries now held for the domain (kept ones after a failure). */
  entries: number;
  added: number;
  removed: number;
  /** ms until the next walk. */
  next_ms: number;
  lookups?: number;
  /** The walk failed: why (the last good set is kept). */
  error?: string;
  /** true: a DNS error (temperror); false: the record is broken (permerror). */
  temporary?: boolean;
  /** Terms not collected (macros, ptr, exists, non-pass, +all, too wide), at most 20. */
  skipped?: readonly string[];
  /** The domain left access.spf (a reload): its entries are gone. */
  dropped?: true;
}

export interface SpfAllowlistOptions {
  refreshMinMs: number;
  refreshMaxMs: number;
  now?: () => number;
  onChange: (c: SpfChange) => void;
}

interface DomainState {
  nets: readonly Cidr[];
  dueAt: number;
  /** A walk has succeeded once. */
  loaded: boolean;
  running: boolean;
}

export class SpfAllowlist {
  #dns: DnsLookup;
  #min: number;
  #max: number;
  readonly #now: () => number;
  readonly #onChange: (c: SpfChange) => void;
  readonly #domains = new Map<string, DomainState>();
  #matcher = new CidrMatcher<AccessMatch>();

  constructor(dns: DnsLookup, domains: readonly string[], opts: SpfAllowlistOptions) {
    this.#dns = dns;
    this.#min = opts.refreshMinMs;
    this.#max = opts.refreshMaxMs;
    this.#now = opts.now ?? Date.now;
    this.#onChange = opts.onChange;
    this.configure(domains, opts);
  }

  match(addr: string | ParsedAddress): AccessMatch | undefined {
    return this.#matcher.match(addr);
  }

  get size(): number {
    return this.#matcher.size;
  }

  /** The domains, as configured (lower-case). */
  get domains(): string[] {
    return [...this.#domains.keys()];
  }

  setDns(dns: DnsLookup): void {
    this.#dns = dns;
  }

  /** New domains are due now; domains no longer listed are dropped (logged); the bounds apply from the next walk. */
  configure(domains: readonly string[], opts: { refreshMinMs: number; refreshMaxMs: number }): void {
    this.#min = opts.refreshMinMs;
    this.#max = Math.max(opts.refreshMinMs, opts.refreshMaxMs); // the minimum wins
    const want = new Set(domains.map((d) => d.toLowerCase().replace(/\.$/, '')));
    let changed = false;
    for (const [d, st] of this.#domains) {
      if (want.has(d)) continue;
      this.#domains.delete(d);
      changed = true;
      this.#onChange({ domain: d, entries: 0, added: 0, removed: st.nets.length, next_ms: 0, dropped: true });
    }
    // Config order decides the matcher's order: rebuild the map in it.
    const old = new Map(this.#domains);
    this.#domains.clear();
    for (const d of want) this.#domains.set(d, old.get(d) ?? { nets: [], dueAt: 0, loaded: false, running: false });
    if (changed) this.#rebuild();
  }

  nextDelay(): number {
    const now = this.#now();
    let due = Infinity;
    for (const st of this.#domains.values()) if (!st.running && st.dueAt < due) due = st.dueAt;
    if (due === Infinity) return this.#max;
    return Math.max(0, Math.min(this.#max, due - now));
  }

  async refresh(): Promise<void> {
    const now = this.#now();
    const work: Array<Promise<void>> = [];
    for (const [d, st] of this.#domains) {
      if (st.running || st.dueAt > now) continue;
      work.push(this.#walk(d, st));
    }
    await Promise.all(work);
  }

  async #walk(domain: string, st: DomainState): Promise<void> {
    st.running = true;
    const r = await collectSpf(domain, this.#dns);
    st.running = false;
    if (this.#domains.get(domain) !== st) return; // dropped by a reload meanwhile
    if (!r.ok) {
      st.dueAt = this.#now() + this.#min;
      this.#onChange({ domain, entries: st.nets.length, added: 0, removed: 0, next_ms: this.#min, error: r.error, temporary: r.temporary });
      return;
    }
    const before = new Set(st.nets.map(formatCidr));
    const after = new Set(r.nets.map(formatCidr));
    let added = 0, removed = 0;
    for (const k of after) if (!before.has(k)) added++;
    for (const k of before) if (!after.has(k)) removed++;
    const next = Math.min(this.#max, Math.max(this.#min, r.ttl * 1000));
    st.dueAt = this.#now() + next;
    st.nets = r.nets;
    const first = !st.loaded;
    st.loaded = true;
    if (added > 0 || removed > 0) this.#rebuild();
    if (added > 0 || removed > 0 || first) {
      const c: SpfChange = { domain, entries: r.nets.length, added, removed, next_ms: next, lookups: r.lookups };
      if (r.skipped.length > 0) c.skipped = r.skipped;
      this.#onChange(c);
    }
  }

  #rebuild(): void {
    const m = new CidrMatcher<AccessMatch>();
    for (const [d, st] of this.#domains) {
      for (const c of st.nets) m.add(c, Object.freeze({ action: 'permit', entry: `spf:${d} ${formatCidr(c)}`, line: 0, route: 'spf' }));
    }
    this.#matcher = m;
  }
}
