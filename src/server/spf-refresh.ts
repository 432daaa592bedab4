/*
 * server/spf-refresh.ts - runs access.spf: the SPF allowlist, its resolver and its refresh timer.
 *
 * Exports: SpfRefresher
 *   new SpfRefresher(ctx)   nothing runs until apply()
 *   apply(config)           start-up and each reload: creates, reconfigures or drops the allowlist
 *                           (ctx.spf), walks what is due at once and arms the timer; never throws
 *   stop()                  clears the timer, closes the resolver; Promise<void>
 *
 * The allowlist is runtime state, not part of a generation: a reload keeps every set it holds
 * for the domains still listed (no re-walk, no window without them) and walks only new ones;
 * a change of resolver.* gives it a new resolver. One timer (unref'd) is armed on the nearest
 * domain's due time (checks/spf-allowlist.ts nextDelay(): TTL bounded by access.spf_refresh_min
 * and _max); the first walk starts at apply(), not awaited: listening never waits for DNS.
 * Changes are logged as ALLOWLIST SPF (warn with `error`).
 */
import type { Config } from '../config/types.js';
import { EV } from '../log/events.js';
import { Resolver } from '../dns/resolver.js';
import { SpfAllowlist, type SpfChange } from '../checks/spf-allowlist.js';
import type { Ctx } from '../session/state.js';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class SpfRefresher {
  readonly #ctx: Ctx;
  #resolver: Resolver | null = null;
  #resolverCfg: Config['resolver'] | null = null;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #stopped = false;

  constructor(ctx: Ctx) {
    this.#ctx = ctx;
  }

  apply(config: Config): void {
    if (this.#stopped) return;
    const a = config.access;
    const bounds = { refreshMinMs: a.spf_refresh_min, refreshMaxMs: a.spf_refresh_max };
    const list = this.#ctx.spf ?? null;
    if (a.spf.length === 0) {
      if (list === null) return;
      list.configure([], bounds); // logs what is dropped
      this.#ctx.spf = null;
      this.#clear();
      void this.#resolver?.close();
      this.#resolver = null;
      this.#resolverCfg = null;
      return;
    }
    if (this.#resolver === null || !same(this.#resolverCfg, config.resolver)) {
      const old = this.#resolver;
      this.#resolver = makeResolver(config);
      this.#resolverCfg = config.resolver;
      list?.setDns(this.#resolver);
      void old?.close();
    }
    if (list === null) {
      this.#ctx.spf = new SpfAllowlist(this.#resolver, a.spf, { ...bounds, onChange: (c) => this.#log(c) });
    } else {
      list.configure(a.spf, bounds);
    }
    this.#kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clear();
    await this.#resolver?.close();
  }

  #log(c: SpfChange): void {
    if (this.#stopped) return; // a walk cut short by stop() (its resolver closed) is not news
    this.#ctx.emitter.emit(EV.ALLOWLIST_SPF, c as unknown as Record<string, unknown>, c.error !== undefined ? 'warn' : undefined);
  }

  #clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Walks what is due now (unless a walk runs: its end re-arms), then arms the timer on the next due time. */
  #kick(): void {
    this.#clear();
    const list = this.#ctx.spf;
    if (this.#running || this.#stopped || list == null) return;
    this.#running = true;
    void list.refresh().finally(() => {
      this.#running = false;
      const now = this.#ctx.spf;
      if (this.#stopped || now == null) return;
      this.#timer = setTimeout(() => this.#kick(), Math.max(100, now.nextDelay()));
      this.#timer.unref();
    });
  }
}

/** Its own resolver (the DNSBL's may not exist): resolver.* servers and timeouts, TTLs as published (no min_ttl raise). */
function makeResolver(config: Config): Resolver {
  const r = config.resolver;
  const servers = r.servers.length > 0 ? r.servers : Resolver.fromResolvConf();
  return new Resolver({
    servers: servers.length > 0 ? servers : [{ host: '127.0.0.1', port: 53 }],
    timeoutMs: r.timeout, tries: r.tries, deadlineMs: r.timeout * r.tries,
    minTtl: 0, maxTtl: r.max_ttl / 1000, cacheMax: 1000, maxOutstanding: r.max_outstanding,
  });
}
