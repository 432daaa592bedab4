/*
 * cache/redis-peek.ts - read a few keys of the shared store once, for `smtpscreen explain`: what
 * every screener on that Redis would find for one client and its network.
 *
 * Exports: peekShared().
 * The same client and settings as a running screener (cache/redis.ts: URL, Sentinel or Cluster,
 * the lookup deadline), imported only when called, connected once and closed again. Nothing is
 * written. Redis away or late is an answer too: `error` names why, as STORE FAIL would.
 */
import { pino } from 'pino';
import type { RedisConfig } from '../config/types.js';
import { Emitter, type EmitObserver } from '../log/emit.js';
import { EV } from '../log/events.js';

export interface Peek {
  /** The store as STORE FAIL/OK name it (no password). */
  readonly store: string;
  /** The value of each key asked (null: none); absent when Redis could not be read. */
  readonly values?: ReadonlyArray<string | null>;
  /** Why Redis could not be read: a connection error, or no connection within connect_timeout. */
  readonly error?: string;
}

/** peekShared - the stored text of each store key (`keys`: client addresses, `net:<network>`), or why Redis could not say. */
export async function peekShared(config: RedisConfig, keys: readonly string[]): Promise<Peek> {
  const { RedisTier } = await import('./redis.js');
  let reason: string | null = null;
  const observer: EmitObserver = {
    wants: (name) => name === EV.STORE_FAIL,
    event: (name, fields) => {
      if (name === EV.STORE_FAIL) reason = String(fields['reason'] ?? 'failed');
    },
    dnsblLookup: () => undefined,
  };
  const emitter = new Emitter(pino({ level: 'silent' }));
  emitter.observer = observer;
  const tier = new RedisTier({ config, emitter, firstSeenKeepMs: 0 });
  try {
    const end = Date.now() + config.connect_timeout;
    while (!tier.up && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    if (!tier.up) return { store: tier.url, error: reason ?? `no connection within ${config.connect_timeout} ms` };
    reason = null; // a failed first try before the connection does not count
    const values = await Promise.all(keys.map((k) => new Promise<string | null>((resolve) => tier.lookup(k, null, (_o, v) => resolve(v)))));
    // A lookup that failed (late, or an error) reads as null: say so rather than "unknown".
    if (reason !== null) return { store: tier.url, error: reason };
    return { store: tier.url, values };
  } finally {
    await tier.close();
  }
}
