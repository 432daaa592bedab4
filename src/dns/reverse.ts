/*
 * dns/reverse.ts - client address -> reversed-label query name under a DNSBL zone.
 *
 * Exports:
 *   reverseName(addr, zone)   '1.2.3.4' + 'zen.example' -> '4.3.2.1.zen.example';
 *                             IPv6 -> 32 reversed nibbles (RFC 3596 2.5 style) + zone;
 *                             IPv4-mapped IPv6 (::ffff:1.2.3.4) counts as IPv4; invalid -> null.
 *
 * The zone is lower-cased and loses a trailing dot; '' gives the bare reversed labels. The
 * zone's own syntax is not checked here: encodeQuery refuses what it cannot encode.
 * Hot path (once per client and site): parseAddressInto into module scratch, then joins of
 * precomputed per-octet strings; the last zone's normal form is memoised.
 */
import { parseAddressInto } from '../net/cidr.js';

const words = new Uint32Array(4);

/** DEC_DOT[b] = 'b.' in decimal. */
const DEC_DOT: string[] = [];
/** NIB_DOT[b] = low nibble, '.', high nibble, '.' in hex: the octet's two labels, reversed. */
const NIB_DOT: string[] = [];
for (let b = 0; b < 256; b++) {
  DEC_DOT.push(`${b}.`);
  NIB_DOT.push(`${(b & 15).toString(16)}.${(b >>> 4).toString(16)}.`);
}

let lastZone = '';
let lastNorm = '';

function normZone(zone: string): string {
  if (zone === lastZone) return lastNorm;
  let z = zone.toLowerCase();
  if (z.endsWith('.')) z = z.slice(0, -1);
  lastZone = zone;
  lastNorm = z;
  return z;
}

/** Four octets of w, lowest first, as '3.2.1.0.' decimal labels. */
function v4Labels(w: number): string {
  return (DEC_DOT[w & 255] ?? '') + (DEC_DOT[(w >>> 8) & 255] ?? '') + (DEC_DOT[(w >>> 16) & 255] ?? '') + (DEC_DOT[w >>> 24] ?? '');
}

/** Four octets of w, lowest first, as eight nibble labels. */
function v6Labels(w: number): string {
  return (NIB_DOT[w & 255] ?? '') + (NIB_DOT[(w >>> 8) & 255] ?? '') + (NIB_DOT[(w >>> 16) & 255] ?? '') + (NIB_DOT[w >>> 24] ?? '');
}

/** Reversed query name for addr under zone, or null if addr is not an IPv4/IPv6 address. */
export function reverseName(addr: string, zone: string): string | null {
  const family = parseAddressInto(addr, words);
  if (family === 0) return null;
  const labels = family === 4
    ? v4Labels(words[0] ?? 0)
    : v6Labels(words[3] ?? 0) + v6Labels(words[2] ?? 0) + v6Labels(words[1] ?? 0) + v6Labels(words[0] ?? 0);
  const z = normZone(zone);
  return z === '' ? labels.slice(0, -1) : labels + z;
}
