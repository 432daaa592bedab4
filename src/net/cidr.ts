/*
 * net/cidr.ts - client addresses, CIDR prefixes and first-match-wins lookup.
 *
 * Exports:
 *   ParsedAddress, Cidr                 address / prefix records (family 4 or 6, four 32-bit words)
 *   parseAddress(text)                  fast hand-written parser for socket.remoteAddress; null if invalid
 *   normalizeAddress(text)              canonical text (v4-mapped -> dotted quad, IPv6 per RFC 5952); null if invalid
 *   formatAddress(addr)                 canonical text of a ParsedAddress
 *   parseCidr(text)                     config-time prefix parser; throws ScreenError SCR_ERR_CIDR
 *   formatCidr(cidr)                    canonical "addr/len" text
 *   CidrMatcher<T>                      add(cidr, value), match(addr), size, fromList(entries)
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d, also written in hex) is IPv4 everywhere in this module: a
 * client connecting over a dual-stack socket is the same client as over IPv4. A prefix written as
 * ::ffff:a.b.c.d/n with n >= 96 becomes the IPv4 prefix a.b.c.d/(n-96).
 * XXX: an IPv6 prefix never matches an IPv4 client, not even ::/0 (as in Postfix cidr tables).
 *
 * Matching is FIRST MATCH WINS (postscreen_access_list semantics), not longest prefix: among all
 * entries that contain the address, the one added earliest decides. Each family has a binary trie
 * whose nodes hold the smallest insertion index of the entries ending there; a lookup walks the
 * address bits once and keeps the minimum index seen. Nodes live in one Int32Array (stride 3:
 * child0, child1, index), so a lookup allocates nothing.
 */
import { ScreenError } from '../util/errors.js';

/** An address as four 32-bit words. IPv4 uses w0 only (w1..w3 are 0). */
export interface ParsedAddress {
  readonly family: 4 | 6;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

/** A network prefix; host bits are zero. `text` is the input as written (trimmed). */
export interface Cidr extends ParsedAddress {
  readonly prefix: number;
  readonly text: string;
}

/* Module scratch for the zero-allocation paths. Never held across calls. */
const scratch = new Uint32Array(4);
const groups = new Int32Array(8);

/** Dotted quad in s[start, end) to a uint32; -1 if invalid. Leading zeros are refused (octal trap). */
function parseV4(s: string, start: number, end: number): number {
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      acc = acc * 256 + part;
      dots++;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return acc * 256 + part;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** IPv6 text to four words in `out`; false if invalid. No zone ids, embedded IPv4 only at the end. */
function parseV6(s: string, out: Uint32Array): boolean {
  const len = s.length;
  if (len < 2 || len > 45) return false;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    const start = i;
    let val = 0;
    for (; i < len; i++) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      if (i - start === 4) return false;
      val = val * 16 + h;
    }
    if (i === start) return false;
    if (i < len && s.charCodeAt(i) === 46) {
      if (n > 6) return false;
      const v4 = parseV4(s, start, len);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = len;
      break;
    }
    if (n === 8) return false;
    groups[n++] = val;
    if (i === len) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i === len) return false;
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  // Expand the "::" gap: groups after it move to the end.
  if (gap >= 0) {
    const tail = n - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k] ?? 0;
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let k = 0; k < 4; k++) out[k] = (((groups[2 * k] ?? 0) << 16) | (groups[2 * k + 1] ?? 0)) >>> 0;
  return true;
}

/**
 * Parses into `out` (4 words). Returns 0 (invalid), 4 or 6. With mapV4, ::ffff:0:0/96 becomes 4.
 * Exported for the hot paths of this folder only; prefer parseAddress elsewhere.
 */
export function parseAddressInto(text: string, out: Uint32Array, mapV4 = true): 0 | 4 | 6 {
  let colon = false;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 58) { colon = true; break; }
  }
  if (!colon) {
    const v = text.length <= 15 ? parseV4(text, 0, text.length) : -1;
    if (v < 0) return 0;
    out[0] = v; out[1] = 0; out[2] = 0; out[3] = 0;
    return 4;
  }
  if (!parseV6(text, out)) return 0;
  if (mapV4 && out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3] ?? 0; out[1] = 0; out[2] = 0; out[3] = 0;
    return 4;
  }
  return 6;
}

/** Parses a client address as Node reports it. Returns null for invalid text. */
export function parseAddress(text: string): ParsedAddress | null {
  const family = parseAddressInto(text, scratch);
  if (family === 0) return null;
  return { family, w0: scratch[0] ?? 0, w1: scratch[1] ?? 0, w2: scratch[2] ?? 0, w3: scratch[3] ?? 0 };
}

function formatV4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

const fmt = new Int32Array(8);

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run of 2+ as "::"). */
export function formatAddress(a: ParsedAddress): string {
  if (a.family === 4) return formatV4(a.w0);
  fmt[0] = a.w0 >>> 16; fmt[1] = a.w0 & 0xffff; fmt[2] = a.w1 >>> 16; fmt[3] = a.w1 & 0xffff;
  fmt[4] = a.w2 >>> 16; fmt[5] = a.w2 & 0xffff; fmt[6] = a.w3 >>> 16; fmt[7] = a.w3 & 0xffff;
  // Longest run of zero groups, first one on a tie, only if 2 or more long (RFC 5952 4.2).
  let bestAt = -1;
  let bestLen = 1;
  for (let k = 0; k < 8;) {
    if (fmt[k] !== 0) { k++; continue; }
    let e = k;
    while (e < 8 && fmt[e] === 0) e++;
    if (e - k > bestLen) { bestAt = k; bestLen = e - k; }
    k = e;
  }
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestAt) {
      out += '::';
      k += bestLen - 1;
      continue;
    }
    if (k > 0 && k !== bestAt + bestLen) out += ':';
    out += (fmt[k] ?? 0).toString(16);
  }
  return out;
}

/**
 * The network of a client address as canonical CIDR text, e.g. "192.0.2.0/24"
 * or "2001:db8:1:2::/64" (greylisting keys: neighbours share one). Null if invalid.
 */
export function networkOf(text: string, v4bits: number, v6bits: number): string | null {
  const a = parseAddress(text);
  if (a === null) return null;
  if (a.family === 4) return `${formatV4((a.w0 & topMask(v4bits)) >>> 0)}/${v4bits}`;
  const w = [a.w0, a.w1, a.w2, a.w3].map((x, i) => (x & topMask(v6bits - 32 * i)) >>> 0);
  return `${formatAddress({ family: 6, w0: w[0] ?? 0, w1: w[1] ?? 0, w2: w[2] ?? 0, w3: w[3] ?? 0 })}/${v6bits}`;
}

/** Canonical text form of a client address (cache and per-client keys); null if invalid. */
export function normalizeAddress(text: string): string | null {
  const family = parseAddressInto(text, scratch);
  if (family === 0) return null;
  if (family === 4) return formatV4(scratch[0] ?? 0);
  return formatAddress({ family, w0: scratch[0] ?? 0, w1: scratch[1] ?? 0, w2: scratch[2] ?? 0, w3: scratch[3] ?? 0 });
}

/** Mask of the top `bits` bits (0..32) of a 32-bit word. */
function topMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

function cidrError(text: string, why: string, extra: Record<string, unknown> = {}): ScreenError {
  return new ScreenError('SCR_ERR_CIDR', `bad CIDR "${text}": ${why}`, { value: text, ...extra });
}

/**
 * Parses `addr` or `addr/len` (config time). Throws ScreenError SCR_ERR_CIDR naming the input,
 * including for host bits set below the prefix ("1.2.3.4/24"), as Postfix does.
 */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const w = new Uint32Array(4);
  let family = parseAddressInto(addrText, w, false);
  if (family === 0) throw cidrError(text, `"${addrText}" is not an IPv4 or IPv6 address`);
  let prefix = family === 4 ? 32 : 128;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(lenText) || Number(lenText) > prefix) {
      throw cidrError(text, `prefix length "${lenText}" is not a number from 0 to ${prefix}`);
    }
    prefix = Number(lenText);
  }
  if (family === 6 && prefix >= 96 && w[0] === 0 && w[1] === 0 && w[2] === 0xffff) {
    family = 4;
    prefix -= 96;
    w[0] = w[3] ?? 0; w[1] = 0; w[2] = 0; w[3] = 0;
  }
  const masked = new Uint32Array(4);
  let hostBits = false;
  for (let k = 0; k < 4; k++) {
    const m = topMask(prefix - 32 * k);
    masked[k] = ((w[k] ?? 0) & m) >>> 0;
    if (masked[k] !== w[k]) hostBits = true;
  }
  const cidr: Cidr = { family, w0: masked[0] ?? 0, w1: masked[1] ?? 0, w2: masked[2] ?? 0, w3: masked[3] ?? 0, prefix, text };
  if (hostBits) {
    const suggest = formatCidr(cidr);
    throw cidrError(text, `non-null host address bits; did you mean "${suggest}"?`, { suggest });
  }
  return cidr;
}

/** Canonical "address/len" text of a prefix. */
export function formatCidr(c: Cidr): string {
  return `${formatAddress(c)}/${c.prefix}`;
}

const NONE = 0x7fffffff;

/** A binary trie over address bits; nodes hold the smallest insertion index ending there. */
class PrefixTrie {
  #t = new Int32Array(3 * 1024);
  #count = 1;

  constructor() {
    this.#t[2] = NONE;
  }

  #newNode(): number {
    if ((this.#count + 1) * 3 > this.#t.length) {
      const bigger = new Int32Array(this.#t.length * 2);
      bigger.set(this.#t);
      this.#t = bigger;
    }
    const n = this.#count++;
    this.#t[n * 3 + 2] = NONE;
    return n;
  }

  insert(w: Uint32Array, prefix: number, index: number): void {
    let node = 0;
    for (let b = 0; b < prefix; b++) {
      const bit = ((w[b >>> 5] ?? 0) >>> (31 - (b & 31))) & 1;
      let child = this.#t[node * 3 + bit] ?? 0;
      if (child === 0) {
        child = this.#newNode();
        this.#t[node * 3 + bit] = child;
      }
      node = child;
    }
    const slot = node * 3 + 2;
    if (index < (this.#t[slot] ?? NONE)) this.#t[slot] = index;
  }

  /** Smallest index among prefixes of the 32-bit address `w`; NONE if none. */
  lookup4(w: number): number {
    const t = this.#t;
    let node = 0;
    let best = NONE;
    for (let b = 31; ; b--) {
      const term = t[node * 3 + 2] ?? NONE;
      if (term < best) best = term;
      if (b < 0) break;
      const child = t[node * 3 + ((w >>> b) & 1)] ?? 0;
      if (child === 0) break;
      node = child;
    }
    return best;
  }

  /** Smallest index among prefixes of the 128-bit address in `w`; NONE if none. */
  lookup6(w: Uint32Array): number {
    const t = this.#t;
    let node = 0;
    let best = NONE;
    for (let b = 0; ; b++) {
      const term = t[node * 3 + 2] ?? NONE;
      if (term < best) best = term;
      if (b === 128) break;
      const child = t[node * 3 + (((w[b >>> 5] ?? 0) >>> (31 - (b & 31))) & 1)] ?? 0;
      if (child === 0) break;
      node = child;
    }
    return best;
  }

  get nodes(): number {
    return this.#count;
  }
}

const words = new Uint32Array(4);

/** First-match-wins CIDR lookup table. */
export class CidrMatcher<T> {
  readonly #v4 = new PrefixTrie();
  readonly #v6 = new PrefixTrie();
  readonly #values: T[] = [];

  /** Builds a matcher from [cidr, value] pairs, in order (first wins). */
  static fromList<T>(entries: Iterable<readonly [Cidr | string, T]>): CidrMatcher<T> {
    const m = new CidrMatcher<T>();
    for (const [cidr, value] of entries) m.add(cidr, value);
    return m;
  }

  /** Appends an entry; it only wins over entries added after it. Strings go through parseCidr. */
  add(cidr: Cidr | string, value: T): void {
    const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
    const w = new Uint32Array([c.w0, c.w1, c.w2, c.w3]);
    const index = this.#values.length;
    this.#values.push(value);
    (c.family === 4 ? this.#v4 : this.#v6).insert(w, c.prefix, index);
  }

  /** The value of the earliest entry containing addr; undefined if none or addr is invalid text. */
  match(addr: string | ParsedAddress): T | undefined {
    const index = this.matchIndex(addr);
    return index < 0 ? undefined : this.#values[index];
  }

  /** Insertion index of the earliest entry containing addr, or -1. Allocates nothing. */
  matchIndex(addr: string | ParsedAddress): number {
    let best: number;
    if (typeof addr === 'string') {
      const family = parseAddressInto(addr, words);
      if (family === 0) return -1;
      best = family === 4 ? this.#v4.lookup4(words[0] ?? 0) : this.#v6.lookup6(words);
    } else if (addr.family === 4) {
      best = this.#v4.lookup4(addr.w0);
    } else {
      words[0] = addr.w0; words[1] = addr.w1; words[2] = addr.w2; words[3] = addr.w3;
      best = this.#v6.lookup6(words);
    }
    return best === NONE ? -1 : best;
  }

  /** Number of entries added. */
  get size(): number {
    return this.#values.length;
  }

  /** Trie nodes in use (both families); for memory estimates. */
  get nodeCount(): number {
    return this.#v4.nodes + this.#v6.nodes;
  }
}
