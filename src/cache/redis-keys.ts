/*
 * cache/redis-keys.ts - what the shared store writes in Redis: keys, TTLs, the greylisting script
 * and the reading of its reply. Pure (no connection), so the unit tests cover it whole.
 *
 * Exports: redisKey(), storeKeyOf(), recordTtlMs(), OBSERVE_LUA, observeArgs(), parseObserveReply().
 * A key is the prefix then the store's own key (cache/store.ts): "<prefix><client address>" for a
 * verdict record, "<prefix>net:<network>/<bits>" for greylisting. The value is the record's text
 * form (encodeRecord(), "1:<t0>;<t1>;..."), the same versioned codec as the snapshot file, so a
 * newer writer's extra fields are ignored and an older one's missing fields read as 0.
 * The key's TTL is the record's expiry (its latest pass-until; a greylist first-seen time lives
 * until max_delay after it): Redis drops what has expired, no cleanup job runs.
 */
import { ScreenError } from '../util/errors.js';
import type { VerdictRecord } from './store.js';
import type { GreylistDecision, GreylistOptions } from '../checks/greylist.js';
import { TEST_COUNT, TestIndex } from '../checks/tests.js';

/** The Redis key of store key `key` (a client address, or "net:<network>"). */
export function redisKey(prefix: string, key: string): string {
  return prefix + key;
}

/** The store key of Redis key `rk`, or null when it is not under `prefix` (or is the bare prefix). */
export function storeKeyOf(prefix: string, rk: string): string | null {
  return rk.length > prefix.length && rk.startsWith(prefix) ? rk.slice(prefix.length) : null;
}

/**
 * How long the record is worth keeping from `now`, ms: its latest pass-until minus now, a
 * greylist first-seen time (negative) counting as alive until `firstSeenKeepMs` after it.
 * 0 or less: nothing left to keep (the key is deleted instead).
 */
export function recordTtlMs(rec: VerdictRecord, now: number, firstSeenKeepMs: number): number {
  let until = 0;
  for (let i = 0; i < rec.length; i++) {
    const v = rec[i] ?? 0;
    const end = v > 0 ? v : v < 0 ? -v + firstSeenKeepMs : 0;
    if (end > until) until = end;
  }
  return until > now ? Math.ceil(until - now) : 0;
}

/**
 * Greylisting in one step on the Redis server (scripts run atomically: two screeners observing
 * one network at once see one first-seen time). The decision is checks/greylist.ts
 * greylistDecide() written again in Lua; the tests run both on the same inputs.
 * KEYS[1] the network's key. ARGV: now, min_delay, max_delay, ttl (ms), the greylist row
 * (0-based), the number of rows. The record keeps its other fields (a newer writer's extra rows too); the key lives until the pass
 * ends, or max_delay after the first sight (+1 s: a retry at exactly max_delay still finds it).
 * Reply: {verdict, state, reason, wait_ms or delay_ms}, all strings (Lua numbers would be cut
 * to integers on the way out anyway; strings keep the ms exact).
 */
export const OBSERVE_LUA = `
local now = tonumber(ARGV[1])
local minD = tonumber(ARGV[2])
local maxD = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local row = tonumber(ARGV[5]) + 1
local n = tonumber(ARGV[6])
local fields = {}
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 2) == '1:' then
  for f in string.gmatch(string.sub(cur, 3), '[^;]+') do
    if string.match(f, '^%-?%d+$') then fields[#fields + 1] = f else fields[#fields + 1] = '0' end
  end
end
for i = #fields + 1, n do fields[i] = '0' end
local state = tonumber(fields[row]) or 0
if state > now then return {'pass', fields[row], 'passed', '0'} end
local verdict, reason, newState, extra
if state < 0 then
  local age = now + state
  if age < minD then return {'defer', fields[row], 'early', string.format('%d', minD - age)} end
  if age <= maxD then
    verdict, reason, newState, extra = 'pass', 'retry', now + ttl, age
  else
    verdict, reason, newState, extra = 'defer', 'expired', -now, 0
  end
else
  verdict, reason, newState, extra = 'defer', 'new', -now, 0
end
fields[row] = string.format('%d', newState)
local untilT = 0
for i = 1, #fields do
  local v = tonumber(fields[i]) or 0
  local e = 0
  if v > 0 then e = v elseif v < 0 then e = -v + maxD + 1000 end
  if e > untilT then untilT = e end
end
redis.call('SET', KEYS[1], '1:' .. table.concat(fields, ';'), 'PX', string.format('%d', untilT - now))
return {verdict, fields[row], reason, string.format('%d', extra)}
`;

/** OBSERVE_LUA's ARGV for one decision. */
export function observeArgs(now: number, o: GreylistOptions): Array<string | number> {
  return [Math.floor(now), o.minDelayMs, o.maxDelayMs, o.ttlMs, TestIndex.greylist, TEST_COUNT];
}

/** A reply value for an error message, at most 40 characters; never throws (a value without a usable toString, a BigInt). */
function show(v: unknown): string {
  try {
    return String(JSON.stringify(v) ?? typeof v).slice(0, 40);
  } catch {
    return typeof v;
  }
}

function int(v: unknown): number {
  if (typeof v !== 'string' || !/^-?\d{1,16}$/.test(v)) throw new ScreenError('SCR_ERR_CACHE', `bad greylist reply field ${show(v)}`, { value: show(v) });
  return Number(v);
}

/** OBSERVE_LUA's reply as a GreylistDecision; a reply of another shape throws SCR_ERR_CACHE. */
export function parseObserveReply(reply: unknown): GreylistDecision {
  if (!Array.isArray(reply) || reply.length !== 4) throw new ScreenError('SCR_ERR_CACHE', 'bad greylist reply: want 4 fields', { value: show(reply) });
  const [verdict, stateText, reason, extraText] = reply as unknown[];
  const state = int(stateText);
  const extra = int(extraText);
  if (verdict === 'pass' && (reason === 'retry' || reason === 'passed')) return { verdict, state, reason, delayMs: extra };
  if (verdict === 'defer' && reason === 'early') return { verdict, state, reason, waitMs: extra };
  if (verdict === 'defer' && (reason === 'new' || reason === 'expired')) return { verdict, state, reason };
  throw new ScreenError('SCR_ERR_CACHE', `bad greylist reply ${show(verdict)} ${show(reason)}`, { value: show(verdict) });
}
