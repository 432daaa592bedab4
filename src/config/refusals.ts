/*
 * config/refusals.ts - values that are each valid alone but together would hurt: refused at
 * validation, naming the key, the value and the fix.
 *
 * Exports: checkRefusals(cfg, add), MIN_MAX_PAIRS.
 * Called by validateConfig() (config/validate.ts) after every key has been converted, so
 * check-config, run and a reload refuse the same things. `add(key, value, problem)` records one
 * issue; the problem says what would happen and what to write instead.
 * - dnsbl.threshold <= 0: a client listed nowhere scores 0, so every client would fail the
 *   DNSBL test (score >= threshold) and meet dnsbl.action.
 * - greylist.suspicious_score <= 0 with policy suspicious: every client would be greylisted.
 * - cache.store redis without a redis:// or rediss:// cache.redis.url (or sentinels, or cluster
 *   nodes), with both sentinels and cluster nodes, a Cluster URL naming a database other than 0,
 *   or with a cache.redis.timeout not below the greet wait (normal or stress): the lookup must end
 *   before the wait does.
 * - every min/max pair of the schema (MIN_MAX_PAIRS): min above max (equal is a fixed value; for
 *   greylisting a retry exactly at that age passes).
 * - workers above 1 with cache.store memory: each worker would keep its own verdict cache and
 *   greylist, and a client behind a PROXY front (or a network whose hash moves when the worker
 *   count changes) would be screened again by another worker.
 */
import { availableParallelism } from 'node:os';
import { formatDuration, parseDuration } from '../util/duration.js';
import { specFor } from './schema.js';
import type { Config } from './types.js';

export type AddIssue = (key: string, value: unknown, problem: string) => unknown;

interface MinMax {
  readonly min: string;
  readonly max: string;
  readonly why: string;
}

/** The schema's min/max pairs (durations, in ms). */
export const MIN_MAX_PAIRS: readonly MinMax[] = [
  { min: 'greylist.min_delay', max: 'greylist.max_delay',
    why: 'a retry must come after min_delay and before max_delay, so no retry could ever pass' },
  { min: 'dnsbl.ttl_min', max: 'dnsbl.ttl_max', why: 'the DNSBL pass TTL is clamped between them' },
  { min: 'resolver.min_ttl', max: 'resolver.max_ttl', why: 'the TTL of cached answers is clamped between them' },
];

function at(cfg: Config, path: string): unknown {
  let v: unknown = cfg;
  for (const p of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[p];
  return v;
}

export function checkRefusals(cfg: Config, add: AddIssue): void {
  const t = cfg.dnsbl.threshold;
  if (typeof t === 'number' && t <= 0) {
    add('dnsbl.threshold', t, `${t} would refuse every client: a client listed nowhere scores 0, and 0 reaches ${t}; ` +
      'set 1 or more (the summed weight at which a client fails)');
  }
  const g = cfg.greylist;
  if (g.enable && g.policy === 'suspicious' && typeof g.suspicious_score === 'number' && g.suspicious_score <= 0) {
    add('greylist.suspicious_score', g.suspicious_score, `${g.suspicious_score} with greylist.policy suspicious would greylist every client ` +
      '(a client listed nowhere scores 0); set 1 or more, below dnsbl.threshold, or use greylist.policy all');
  }
  checkRedis(cfg, add);
  checkWorkers(cfg, add);
  for (const p of MIN_MAX_PAIRS) {
    const lo = at(cfg, p.min);
    const hi = at(cfg, p.max);
    if (typeof lo !== 'number' || typeof hi !== 'number') continue; // the key itself was refused already
    if (lo > hi) {
      add(p.min, formatDuration(lo), `${formatDuration(lo)} is above ${p.max} (${formatDuration(hi)}): ` +
        `${p.why}; set ${p.min} below ${p.max}`);
    }
  }
}

/**
 * cache.store: redis needs its URL (redis:// or rediss://), and a lookup deadline below the greet
 * wait (normal and stress): the lookup runs beside the wait and must never lengthen it.
 */
function checkRedis(cfg: Config, add: AddIssue): void {
  const c = cfg.cache;
  if (c.store !== 'redis') return;
  const url = c.redis.url;
  const sentinels = Array.isArray(c.redis.sentinels) && c.redis.sentinels.length > 0;
  const cluster = Array.isArray(c.redis.cluster) && c.redis.cluster.length > 0;
  if (sentinels && cluster) {
    add('cache.redis.cluster', null, 'cache.redis.sentinels and cache.redis.cluster are both set: a store is either behind Sentinel or a Cluster; set one');
  }
  if (url === null) {
    if (!sentinels && !cluster) add('cache.redis.url', null, 'cache.store is redis: set cache.redis.url, e.g. redis://127.0.0.1:6379 (or cache.redis.sentinels, or cache.redis.cluster)');
  } else if (typeof url === 'string') {
    // With Sentinel or Cluster the host is not used: redis://:password@/ is enough.
    const re = sentinels || cluster ? /^rediss?:\/\//i : /^rediss?:\/\/[^/?#]/i;
    if (!re.test(url)) add('cache.redis.url', url.replace(/\/\/[^@/]*@/, '//***@'), 'want redis://host:port[/db] or rediss://host:port[/db] (TLS)');
    else if (cluster && Number(/^rediss?:\/\/[^/?#]*\/(\d+)/i.exec(url)?.[1] ?? 0) !== 0) {
      add('cache.redis.url', url.replace(/\/\/[^@/]*@/, '//***@'), 'a Redis Cluster has only database 0: leave /db out of the URL');
    }
  }
  const t = c.redis.timeout;
  if (typeof t !== 'number' || !cfg.pregreet.enable) return;
  const waits: Array<[string, number]> = [['pregreet.wait', cfg.pregreet.wait]];
  const sw = cfg.stress?.overrides?.['pregreet.wait'];
  waits.push(['stress.pregreet.wait', typeof sw === 'number' ? sw : parseDuration(specFor('pregreet.wait')?.stress ?? '2s')]);
  for (const [key, w] of waits) {
    if (typeof w === 'number' && t >= w) {
      add('cache.redis.timeout', formatDuration(t), `${formatDuration(t)} is not below ${key} (${formatDuration(w)}): ` +
        'the Redis lookup runs beside the greet wait and must end before it; set it well below, e.g. 200ms');
    }
  }
}

/**
 * workers > 1 needs the shared store: a memory store is per process, so a record written by one
 * worker is unknown to the others (clients behind a PROXY front reach any worker; a change of the
 * worker count moves networks between workers), and the snapshot file has one owner.
 */
function checkWorkers(cfg: Config, add: AddIssue): void {
  const w = cfg.workers;
  const n = w === 'auto' ? availableParallelism() : w;
  if (cfg.cache.store !== 'memory' || typeof n !== 'number' || n <= 1) return;
  add('workers', w, `${String(w)} workers need cache.store: redis (with cache.store: memory each worker would keep its own verdict cache ` +
    'and greylist, so a client that passed in one worker is a stranger to the others); set cache.store: redis and cache.redis.url, or workers: 1');
}
