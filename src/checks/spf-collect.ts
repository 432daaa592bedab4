/*
 * checks/spf-collect.ts - a domain's published SPF netblocks, walked through our own resolver.
 *
 * Exports:
 *   SPF_LIMITS                          RFC 7208 §4.6.4: 10 DNS-querying terms, 2 void lookups, 10 MX names
 *   SpfCollected                        { ok: true, nets, ttl, lookups, voids, skipped } | { ok: false, error, temporary }
 *   collectSpf(domain, dns, opts?)      Promise<SpfCollected>; never rejects
 *
 * Walks the record of `domain` as check_host() would for an unknown client, but collects instead
 * of matching: every pass (`+`, the default) ip4/ip6 netblock, the A/AAAA addresses of `a` and
 * of the exchanges of `mx` (with their cidr lengths), following `include:` (pass only) and
 * `redirect=` (only when no `all` came first, §6.1). Terms after `all` are never reached (§5.1).
 * Limits as check_host(): include, a, mx, ptr, exists and redirect count towards 10 per walk
 * (the 11th is a permerror before its lookup); a third lookup that finds nothing (NXDOMAIN or no
 * records: a "void lookup") is a permerror; an `mx` with more than 10 exchanges is a permerror.
 * A name already on the include/redirect path is a loop: permerror. Any DNS error (timeout,
 * SERVFAIL, ...) is a temperror: the caller keeps its last good set.
 * Not collected (listed in `skipped`): terms whose domain holds a macro, `ptr` and `exists`
 * (both need the client), non-pass qualifiers (an exception such as `-ip4:` before a wider
 * `+ip4:` is not honoured: the set is the union of the pass netblocks), `+all`, and prefixes
 * wider than opts.minPrefix4 / minPrefix6 (default /8 and /16): a record must not allowlist
 * the world. `ttl` is the least TTL (s) of every answer, positive or negative, used.
 */
import type { DnsLookup, LookupResult } from '../dns/types.js';
import { formatCidr, parseCidr, type Cidr } from '../net/cidr.js';
import { ScreenError } from '../util/errors.js';
import { parseSpf, selectSpf, type SpfTerm } from './spf-record.js';

export const SPF_LIMITS = Object.freeze({ lookups: 10, voids: 2, mxNames: 10 });

export type SpfCollected =
  | { readonly ok: true; readonly nets: readonly Cidr[]; readonly ttl: number; readonly lookups: number; readonly voids: number; readonly skipped: readonly string[] }
  | { readonly ok: false; readonly error: string; readonly temporary: boolean };

export interface SpfCollectOptions {
  /** Refuse ip4 netblocks wider than this (default 8). */
  minPrefix4?: number;
  /** Refuse ip6 netblocks wider than this (default 16). */
  minPrefix6?: number;
}

class SpfFail {
  constructor(readonly error: string, readonly temporary: boolean) {}
}

interface Walk {
  lookups: number;
  voids: number;
  ttl: number;
  readonly nets: Map<string, Cidr>;
  readonly skipped: string[];
  readonly min4: number;
  readonly min6: number;
  readonly dns: DnsLookup;
}

const MAX_SKIPPED = 20;

function skip(w: Walk, why: string): void {
  if (w.skipped.length < MAX_SKIPPED) w.skipped.push(why);
}

/** A lookup that counts voids and the TTL; a DNS error is a temperror. Returns the records ([] for a void). */
async function ask(w: Walk, name: string, type: 'TXT' | 'A' | 'AAAA' | 'MX', countVoid: boolean): Promise<readonly string[]> {
  const r: LookupResult = await w.dns.lookup(name, type);
  if (r.status === 'error') throw new SpfFail(`${name} ${type}: ${r.error}`, true);
  if (r.ttl < w.ttl) w.ttl = r.ttl;
  if (r.status === 'ok') return r.records;
  if (countVoid && ++w.voids > SPF_LIMITS.voids) throw new SpfFail(`${name} ${type}: more than ${SPF_LIMITS.voids} void lookups`, false);
  return [];
}

function count(w: Walk, domain: string, t: string): void {
  if (w.lookups >= SPF_LIMITS.lookups) throw new SpfFail(`${domain}: "${t}" is past the limit of ${SPF_LIMITS.lookups} DNS lookups`, false);
  w.lookups++;
}

function addNet(w: Walk, domain: string, text: string): void {
  let c: Cidr;
  try {
    c = parseCidr(text);
  } catch (err) {
    // SPF ignores host bits (ip4:192.0.2.1/24 is 192.0.2.0/24); anything else is a permerror.
    const s = err instanceof ScreenError ? err.details['suggest'] : undefined;
    if (typeof s !== 'string') throw new SpfFail(`${domain}: bad address in "${text}"`, false);
    c = parseCidr(s);
  }
  if (c.prefix < (c.family === 4 ? w.min4 : w.min6)) {
    skip(w, `${domain}: ${formatCidr(c)} is wider than /${c.family === 4 ? w.min4 : w.min6}`);
    return;
  }
  const key = formatCidr(c);
  if (!w.nets.has(key)) w.nets.set(key, c);
}

async function addHost(w: Walk, domain: string, name: string, t: SpfTerm, countVoid: boolean): Promise<number> {
  const v4 = await ask(w, name, 'A', false);
  const v6 = await ask(w, name, 'AAAA', false);
  if (v4.length === 0 && v6.length === 0 && countVoid && ++w.voids > SPF_LIMITS.voids) {
    throw new SpfFail(`${name}: more than ${SPF_LIMITS.voids} void lookups`, false);
  }
  for (const a of v4) addNet(w, domain, `${a}/${t.cidr4}`);
  for (const a of v6) addNet(w, domain, `${a}/${t.cidr6}`);
  return v4.length + v6.length;
}

async function walk(w: Walk, domain: string, path: readonly string[], via: 'top' | 'include' | 'redirect'): Promise<void> {
  const name = domain.toLowerCase().replace(/\.$/, '');
  if (path.includes(name)) throw new SpfFail(`loop: ${[...path, name].join(' -> ')}`, false);
  const txt = await ask(w, name, 'TXT', via !== 'top');
  const sel = selectSpf(txt);
  if (sel === null) throw new SpfFail(via === 'top' ? `${name}: no SPF record` : `${name}: no SPF record (${via} target)`, false);
  if (typeof sel !== 'string') throw new SpfFail(`${name}: ${sel.error}`, false);
  const rec = parseSpf(sel);
  if ('error' in rec) throw new SpfFail(`${name}: ${rec.error}`, false);
  const here = [...path, name];
  for (const t of rec.terms) {
    const pass = t.qualifier === '+';
    switch (t.kind) {
      case 'all':
        if (pass) skip(w, `${name}: +all ignored`);
        return; // §5.1: nothing after all; §6.1: redirect ignored
      case 'ip4': case 'ip6':
        if (!pass) skip(w, `${name}: ${t.qualifier}${t.kind}:${t.addr} not a pass`);
        else addNet(w, name, `${t.addr}/${t.kind === 'ip4' ? t.cidr4 : t.cidr6}`);
        break;
      case 'include':
        count(w, name, `include:${t.domain}`);
        if (t.macro || !pass) skip(w, `${name}: ${t.qualifier}include:${t.domain} ${t.macro ? 'has a macro' : 'not a pass'}`);
        else await walk(w, t.domain, here, 'include');
        break;
      case 'a':
        count(w, name, 'a');
        if (t.macro || !pass) skip(w, `${name}: ${t.qualifier}a:${t.domain} ${t.macro ? 'has a macro' : 'not a pass'}`);
        else await addHost(w, name, t.domain === '' ? name : t.domain, t, true);
        break;
      case 'mx': {
        count(w, name, 'mx');
        if (t.macro || !pass) { skip(w, `${name}: ${t.qualifier}mx:${t.domain} ${t.macro ? 'has a macro' : 'not a pass'}`); break; }
        const mxs = await ask(w, t.domain === '' ? name : t.domain, 'MX', true);
        if (mxs.length > SPF_LIMITS.mxNames) throw new SpfFail(`${name}: mx has more than ${SPF_LIMITS.mxNames} exchanges`, false);
        for (const x of mxs) await addHost(w, name, x, t, false);
        break;
      }
      case 'ptr': case 'exists':
        count(w, name, t.kind);
        skip(w, `${name}: ${t.kind} needs the client`);
        break;
    }
  }
  if (rec.redirect !== null) {
    count(w, name, `redirect=${rec.redirect}`);
    if (rec.redirectMacro) skip(w, `${name}: redirect=${rec.redirect} has a macro`);
    else await walk(w, rec.redirect, here, 'redirect');
  }
}

export async function collectSpf(domain: string, dns: DnsLookup, opts: SpfCollectOptions = {}): Promise<SpfCollected> {
  const w: Walk = {
    lookups: 0, voids: 0, ttl: Number.MAX_SAFE_INTEGER, nets: new Map(), skipped: [],
    min4: opts.minPrefix4 ?? 8, min6: opts.minPrefix6 ?? 16, dns,
  };
  try {
    await walk(w, domain, [], 'top');
  } catch (err) {
    if (err instanceof SpfFail) return { ok: false, error: err.error, temporary: err.temporary };
    return { ok: false, error: err instanceof Error ? err.message : String(err), temporary: true };
  }
  return { ok: true, nets: [...w.nets.values()], ttl: w.ttl === Number.MAX_SAFE_INTEGER ? 0 : w.ttl, lookups: w.lookups, voids: w.voids, skipped: w.skipped };
}
