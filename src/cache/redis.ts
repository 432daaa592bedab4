/*
 * cache/redis.ts - the shared tier: verdict records and greylist state in Redis, with a deadline
 * on every answer. A slow or dead Redis never stalls a session and never rejects anyone.
 *
 * Exports: RedisTier, RedisTierOptions, RedisCounts, redactUrl(), urlParts(), describeStore().
 * The client is ioredis (README, "The shared store": reconnects in the background with a backoff,
 * scripts sent as EVALSHA with a fallback to EVAL after a Redis restart emptied its script
 * cache, an offline queue that can be switched off, sentinel and cluster in the same package).
 * Settings, and why:
 *   enableOfflineQueue false, maxRetriesPerRequest 0: a command while Redis is away fails at once
 *     (no queue grows with the traffic; the session goes on without the record);
 *   commandTimeout = cache.redis.timeout: a late answer is an error at the deadline;
 *   retryStrategy: reconnect forever, 100 ms x attempt, at most 2 s apart.
 * Three ways to reach Redis, one behaviour: cache.redis.url alone (one server); sentinels (ioredis
 * asks them for the master by name, and again after a failover or a READONLY reply from a demoted
 * master); cluster seed nodes (ioredis learns the slots and follows MOVED/ASK). Every command here
 * names one key (a record, or one network's greylist state), so every one lands on one slot. With
 * Sentinel or Cluster the URL's user, password, database and TLS still apply to the servers.
 * Health is one state, logged once per transition: STORE FAIL on a connection error, a close or
 * an answer past the deadline; STORE OK on the first answer after that (and at the first
 * connection). Verdict writes are fire-and-forget; while Redis is away they wait in a map (the
 * newest per key, at most cache.redis.pending_writes; beyond it they are dropped and counted)
 * and are written when it answers again; a write that fails twice is dropped and counted.
 * Greylist decisions are not queued: a session that cannot have one from Redis decides from
 * this process's memory (cache/tiered.ts).
 */
import { Cluster, Redis } from 'ioredis';
import type { RedisConfig } from '../config/types.js';
import { EV } from '../log/events.js';
import type { Emitter } from '../log/emit.js';
import type { GreylistDecision, GreylistOptions } from '../checks/greylist.js';
import { encodeRecord, type VerdictRecord } from './store.js';
import { OBSERVE_LUA, observeArgs, parseObserveReply, recordTtlMs, redisKey } from './redis-keys.js';

export interface RedisTierOptions {
  readonly config: RedisConfig;
  readonly emitter: Emitter;
  /** How long a greylist first-seen time written through set() is kept (greylist.max_delay). */
  readonly firstSeenKeepMs: number;
}

/** Counts since start (metrics, STORE OK, tests). */
export interface RedisCounts {
  lookups: number;
  hits: number;
  misses: number;
  /** Lookups and greylist decisions that failed at once (Redis away) or with an error. */
  errors: number;
  /** Answers later than the deadline. */
  timeouts: number;
  observes: number;
  writes: number;
  /** Writes that waited for Redis and were written when it came back. */
  flushed: number;
  /** Writes given up: the waiting map was full, or the retry failed too. */
  dropped: number;
}

type Health = 'init' | 'ok' | 'fail';

interface ObserveCommand {
  smtpscreenObserve(key: string, ...args: Array<string | number>): Promise<unknown>;
}

/** The URL without its password ("redis://user:***@host:6379/0"), for logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}@`;
  });
}

/** The parts of cache.redis.url that Sentinel and Cluster still use: user, password, database, TLS. */
export function urlParts(url: string | null): { username?: string; password?: string; db?: number; tls: boolean } {
  if (url === null) return { tls: false };
  const m = /^(rediss?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?[^/?#]*(?:\/(\d+))?/i.exec(url);
  if (m === null) return { tls: false };
  const out: { username?: string; password?: string; db?: number; tls: boolean } = { tls: (m[1] as string).toLowerCase() === 'rediss' };
  if (m[2] !== undefined && m[2] !== '') out.username = decodeURIComponent(m[2]);
  if (m[3] !== undefined) out.password = decodeURIComponent(m[3]);
  if (m[4] !== undefined) out.db = Number(m[4]);
  return out;
}

/** The store as logged (STORE FAIL/OK `url`): the URL without password, or the sentinels and master, or the cluster seeds. */
export function describeStore(c: RedisConfig): string {
  const hp = (l: ReadonlyArray<{ host: string; port: number }>): string => l.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',');
  if (c.sentinels.length > 0) return `sentinel://${hp(c.sentinels)}/${c.sentinel_master}`;
  if (c.cluster.length > 0) return `cluster://${hp(c.cluster)}`;
  return redactUrl(c.url ?? '');
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && /timed out/i.test(err.message);
}

export class RedisTier {
  /** The deadline of each answer, ms (cache.redis.timeout). */
  readonly timeoutMs: number;
  /** The URL as logged (no password). */
  readonly url: string;
  readonly counts: RedisCounts = { lookups: 0, hits: 0, misses: 0, errors: 0, timeouts: 0, observes: 0, writes: 0, flushed: 0, dropped: 0 };
  readonly #client: Redis | Cluster;
  readonly #prefix: string;
  readonly #emitter: Emitter;
  readonly #keep: number;
  readonly #maxPending: number;
  /** Writes waiting for Redis: store key -> the newest record (null: a delete). */
  readonly #pending = new Map<string, VerdictRecord | null>();
  #health: Health = 'init';
  #failedAt = 0;
  #timeoutsAtFail = 0;
  #droppedAtFail = 0;
  #closed = false;

  constructor(o: RedisTierOptions) {
    const c = o.config;
    if (c.url === null && c.sentinels.length === 0 && c.cluster.length === 0) throw new Error('RedisTier: cache.redis.url is not set');
    this.timeoutMs = c.timeout;
    this.url = describeStore(c);
    this.#prefix = c.prefix;
    this.#emitter = o.emitter;
    this.#keep = o.firstSeenKeepMs;
    this.#maxPending = c.pending_writes;
    const common = {
      connectTimeout: c.connect_timeout,
      commandTimeout: c.timeout,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectionName: 'smtpscreen',
      disableClientInfo: true,
      // RESP2: the replies used here are the same in RESP3, and any Redis with scripting speaks it.
      protocol: 2 as const,
    };
    const scripts = { smtpscreenObserve: { lua: OBSERVE_LUA, numberOfKeys: 1 } };
    const retryStrategy = (times: number): number => Math.min(100 * times, 2000);
    const { tls: useTls, ...cred } = urlParts(c.url);
    const tls = useTls ? { tls: {} } : {};
    if (c.cluster.length > 0) {
      this.#client = new Cluster(c.cluster.map((h) => ({ host: h.host, port: h.port })), {
        enableOfflineQueue: false,
        clusterRetryStrategy: retryStrategy,
        slotsRefreshTimeout: c.connect_timeout,
        scripts,
        redisOptions: { ...common, ...cred, ...tls },
      });
    } else if (c.sentinels.length > 0) {
      this.#client = new Redis({
        ...common, enableOfflineQueue: false, retryStrategy, scripts,
        sentinels: c.sentinels.map((h) => ({ host: h.host, port: h.port })),
        name: c.sentinel_master,
        ...cred, ...tls,
        // rediss:// with Sentinel: TLS to the master (the sentinels themselves are asked in clear).
        ...(useTls ? { enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: retryStrategy,
        // A master demoted by a failover answers writes with READONLY: ask the sentinels again.
        reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
      });
    } else {
      this.#client = new Redis(c.url as string, { ...common, enableOfflineQueue: false, retryStrategy, scripts });
    }
    this.#client.on('ready', () => this.#ok());
    this.#client.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? err.message));
    this.#client.on('close', () => this.#fail('closed'));
  }

  /** Connected and ready: a lookup is worth starting. */
  get up(): boolean {
    return !this.#closed && this.#client.status === 'ready';
  }

  /** 'ok', 'fail', or 'init' before the first connection. */
  get health(): Health {
    return this.#health;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** The text stored under store key `key`, or null (unknown, failed, late): `done` runs once, never synchronously. */
  lookup<T>(key: string, owner: T, done: (owner: T, text: string | null) => void): void {
    this.counts.lookups++;
    this.#client.get(redisKey(this.#prefix, key)).then(
      (v) => {
        this.#ok();
        if (v === null) this.counts.misses++;
        else this.counts.hits++;
        done(owner, v);
      },
      (err: unknown) => {
        this.#failed(err);
        done(owner, null);
      },
    );
  }

  /** Greylisting for `network`, atomically for every screener on this Redis; null when it failed or was late. */
  observe<T>(network: string, now: number, opts: GreylistOptions, owner: T, done: (owner: T, d: GreylistDecision | null) => void): void {
    this.counts.observes++;
    (this.#client as unknown as ObserveCommand).smtpscreenObserve(redisKey(this.#prefix, `net:${network}`), ...observeArgs(now, opts)).then(
      (reply) => {
        this.#ok();
        let d: GreylistDecision | null = null;
        try {
          d = parseObserveReply(reply);
        } catch {
          this.counts.errors++;
        }
        done(owner, d);
      },
      (err: unknown) => {
        this.#failed(err);
        done(owner, null);
      },
    );
  }

  /** Write `rec` under store key `key` (null: delete), now or when Redis is back. */
  put(key: string, rec: VerdictRecord | null): void {
    if (this.#closed) return;
    if (!this.up) {
      this.#pend(key, rec);
      return;
    }
    this.#write(key, rec, false);
  }

  /** Write what waits, then close the connection (QUIT; cut after the deadline). */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.up) this.#flush();
    this.#closed = true;
    const quit = this.#client.quit().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([quit, new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs * 2 + 100)))]);
    clearTimeout(timer);
    this.#client.disconnect();
  }

  #write(key: string, rec: VerdictRecord | null, retried: boolean): void {
    this.counts.writes++;
    const rk = redisKey(this.#prefix, key);
    const ttl = rec === null ? 0 : recordTtlMs(rec, Date.now(), this.#keep);
    const p = ttl > 0 ? this.#client.set(rk, encodeRecord(rec as VerdictRecord), 'PX', ttl) : this.#client.del(rk);
    p.then(
      () => this.#ok(),
      (err: unknown) => {
        this.#failed(err);
        if (retried || this.#closed) this.#drop();
        else this.#pend(key, rec);
      },
    );
  }

  #pend(key: string, rec: VerdictRecord | null): void {
    if (this.#pending.has(key) || this.#pending.size < this.#maxPending) this.#pending.set(key, rec);
    else this.#drop();
  }

  #drop(): void {
    this.counts.dropped++;
  }

  /** Write every waiting record once more (those expired meanwhile become deletes). */
  #flush(): number {
    const n = this.#pending.size;
    if (n === 0) return 0;
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const [key, rec] of batch) this.#write(key, rec, true);
    this.counts.flushed += n;
    return n;
  }

  #failed(err: unknown): void {
    if (isTimeout(err)) {
      this.counts.timeouts++;
      this.#fail('timeout');
    } else {
      this.counts.errors++;
      this.#fail(err instanceof Error ? err.message : String(err));
    }
  }

  #fail(reason: string): void {
    if (this.#health === 'fail' || this.#closed) return;
    this.#health = 'fail';
    this.#failedAt = Date.now();
    this.#timeoutsAtFail = this.counts.timeouts - (reason === 'timeout' ? 1 : 0);
    this.#droppedAtFail = this.counts.dropped;
    this.#emitter.emit(EV.STORE_FAIL, { store: 'redis', url: this.url, reason });
  }

  #ok(): void {
    if (this.#health === 'ok' || this.#closed) return;
    const was = this.#health;
    this.#health = 'ok';
    // Verdicts written before the first connection, or while Redis was away.
    const flushed = this.up ? this.#flush() : 0;
    if (was === 'init') {
      this.#emitter.emit(EV.STORE_OK, flushed > 0 ? { store: 'redis', url: this.url, flushed } : { store: 'redis', url: this.url });
      return;
    }
    this.#emitter.emit(EV.STORE_OK, {
      store: 'redis', url: this.url, down_ms: Date.now() - this.#failedAt,
      timeouts: this.counts.timeouts - this.#timeoutsAtFail, flushed, dropped: this.counts.dropped - this.#droppedAtFail,
    });
  }
}
