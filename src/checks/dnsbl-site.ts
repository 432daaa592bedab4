/*
 * checks/dnsbl-site.ts - does a DNSBL answer list the client, for one site.
 *
 * Exports: filterMatches(site, a), isReservedErrorAnswer(a).
 * The site syntax (DnsblSite, parseSite) is config/dnsbl-site.ts's: a filter is
 * four 256-bit sets, one per octet, so a match is four bit tests. Without a
 * filter any A record is a listing, except the reserved error answers (below).
 */
import type { DnsblSite } from '../config/dnsbl-site.js';

/** Does the A record (dotted quad) match the site's filter? Reserved error answers never do. */
export function filterMatches(site: DnsblSite, a: string): boolean {
  let o0 = 0;
  let o1 = 0;
  let o2 = 0;
  let o3 = 0;
  let part = 0;
  let v = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      if (part === 0) o0 = v;
      else if (part === 1) o1 = v;
      else if (part === 2) o2 = v;
      part++;
      v = 0;
    } else v = v * 10 + (c - 48);
  }
  o3 = v;
  if (part !== 3) return false;
  if (o0 === 127 && o1 === 255 && o2 === 255) return false;
  const f = site.filter;
  if (f === null) return true;
  return (
    (((f[o0 >>> 5] as number) >>> (o0 & 31)) & 1) === 1 &&
    (((f[8 + (o1 >>> 5)] as number) >>> (o1 & 31)) & 1) === 1 &&
    (((f[16 + (o2 >>> 5)] as number) >>> (o2 & 31)) & 1) === 1 &&
    (((f[24 + (o3 >>> 5)] as number) >>> (o3 & 31)) & 1) === 1
  );
}

/**
 * 127.255.255.0/24: the answers DNSBL operators (Spamhaus: .252 typo in the
 * query, .254 query via a public resolver, .255 excessive queries) use to say
 * "your query was refused", never "listed". They raise a warning instead.
 */
export function isReservedErrorAnswer(a: string): boolean {
  return a.startsWith('127.255.255.');
}
