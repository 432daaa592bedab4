/*
 * config/dnsbl-site.ts - postscreen's DNSBL site syntax: domain[=filter][*weight].
 *
 * Exports: DnsblSite, parseSite(text) (throws ScreenError SCR_ERR_DNSBL_SITE naming the site).
 *   zen.spamhaus.org=127.0.0.[2..11]*3
 *   b.barracudacentral.org*2
 *   list.dnswl.org=127.0.[0..255].[1..3]*-2
 *   bl.example=127.0.0.[2;4;10]
 * A filter is four octet patterns: a number, or [items] where items are
 * numbers or a..b ranges separated by ';'. Without a filter any A record is a
 * listing (checks/dnsbl-site.ts matches answers). The default weight is 1;
 * negative weights make allowlists. Each octet pattern is a 256-bit set, so a
 * match is four bit tests.
 * Here, below checks/, because the configuration validator refuses a bad site
 * at load and checks/dnsbl.ts builds its sites from the same parse.
 */
import { ScreenError } from '../util/errors.js';

export interface DnsblSite {
  /** As written in the configuration (for logs). */
  readonly spec: string;
  /** Lower-case domain, no trailing dot. */
  readonly domain: string;
  /** Four 256-bit sets (8 words each), or null for "any answer". */
  readonly filter: Uint32Array | null;
  readonly weight: number;
}

function fail(spec: string, why: string): never {
  throw new ScreenError('SCR_ERR_DNSBL_SITE', `bad DNSBL site "${spec}": ${why}`, { value: spec });
}

function octet(spec: string, text: string): number {
  if (!/^\d{1,3}$/.test(text) || Number(text) > 255) fail(spec, `"${text}" is not a number 0..255`);
  return Number(text);
}

function setBits(bits: Uint32Array, base: number, lo: number, hi: number): void {
  for (let v = lo; v <= hi; v++) bits[base + (v >>> 5)] = (bits[base + (v >>> 5)] as number) | (1 << (v & 31));
}

function parseFilter(spec: string, text: string): Uint32Array {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0 || depth > 1) fail(spec, 'unbalanced brackets in the filter');
    if (ch === '.' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) fail(spec, 'unbalanced brackets in the filter');
  parts.push(cur);
  if (parts.length !== 4) fail(spec, `the filter "${text}" needs four octets, e.g. 127.0.0.[2..11]`);
  const bits = new Uint32Array(32);
  parts.forEach((p, i) => {
    const base = i * 8;
    if (p.startsWith('[') && p.endsWith(']')) {
      const items = p.slice(1, -1).split(';');
      for (const item of items) {
        const dots = item.indexOf('..');
        if (dots >= 0) {
          const lo = octet(spec, item.slice(0, dots));
          const hi = octet(spec, item.slice(dots + 2));
          if (lo > hi) fail(spec, `empty range "${item}"`);
          setBits(bits, base, lo, hi);
        } else {
          const v = octet(spec, item);
          setBits(bits, base, v, v);
        }
      }
    } else {
      const v = octet(spec, p);
      setBits(bits, base, v, v);
    }
  });
  return bits;
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)+$/;

export function parseSite(specText: string): DnsblSite {
  const spec = specText.trim();
  let rest = spec;
  let weight = 1;
  const star = rest.lastIndexOf('*');
  if (star >= 0) {
    const w = rest.slice(star + 1);
    if (!/^[+-]?\d{1,6}$/.test(w)) fail(spec, `weight "${w}" is not an integer`);
    weight = Number(w);
    rest = rest.slice(0, star);
  }
  let filter: Uint32Array | null = null;
  const eq = rest.indexOf('=');
  if (eq >= 0) {
    filter = parseFilter(spec, rest.slice(eq + 1));
    rest = rest.slice(0, eq);
  }
  const domain = rest.toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(domain)) fail(spec, `"${rest}" is not a domain name`);
  return { spec, domain, filter, weight };
}
