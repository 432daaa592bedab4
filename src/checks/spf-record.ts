/*
 * checks/spf-record.ts - SPF record syntax (RFC 7208 §4.5, §4.6, §5, §6) for the SPF allowlist.
 *
 * Exports:
 *   SpfTerm                 one directive or modifier: { kind, qualifier, domain, cidr4, cidr6, addr }
 *   SpfRecord               { terms (directives in order), redirect (domain or null) }
 *   selectSpf(txts)         the one "v=spf1" record among a name's TXT strings: string, null (none)
 *                           or { error } (more than one: permerror, §4.5)
 *   parseSpf(text)          SpfRecord, or { error } naming the bad term; never throws
 *
 * Pure: no DNS here (checks/spf-collect.ts walks the records). Garbage in gives { error }, never
 * an exception (a property test feeds it random strings). A domain-spec with a macro (`%{i}`,
 * which needs the client or the sender) is kept as written and flagged `macro`: the collector
 * cannot expand it ahead of a connection and skips the term.
 */

export type SpfQualifier = '+' | '-' | '~' | '?';
export type SpfKind = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

export interface SpfTerm {
  readonly kind: SpfKind;
  readonly qualifier: SpfQualifier;
  /** include/a/mx/ptr/exists: the target domain ('' for a/mx/ptr without one: the record's own domain). */
  readonly domain: string;
  /** The domain-spec holds a macro (%{...}): it cannot be expanded without a client. */
  readonly macro: boolean;
  /** ip4/ip6: the address text; a/mx: ''. */
  readonly addr: string;
  /** Prefix lengths: ip4/a/mx cidr4 (default 32), ip6/a/mx cidr6 (default 128). */
  readonly cidr4: number;
  readonly cidr6: number;
}

export interface SpfRecord {
  readonly terms: readonly SpfTerm[];
  readonly redirect: string | null;
  readonly redirectMacro: boolean;
}

export type SpfError = { readonly error: string };

const VERSION = /^v=spf1$/i;
const NAME = /^[a-z][a-z0-9_.-]*$/i;
const MECH = new Set<string>(['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists']);

/** The SPF record among TXT strings (already joined per record, §3.3): null when none starts with "v=spf1". */
export function selectSpf(txts: readonly string[]): string | null | SpfError {
  let found: string | null = null;
  for (const t of txts) {
    if (t.length < 6 || !VERSION.test(t.slice(0, 6)) || (t.length > 6 && t.charCodeAt(6) !== 0x20)) continue;
    if (found !== null) return { error: 'more than one v=spf1 record' };
    found = t;
  }
  return found;
}

function macroOf(spec: string): boolean | SpfError {
  // §7.1: '%' must start %{...}, %%, %_ or %-; anything else is a syntax error.
  let macro = false;
  for (let i = 0; i < spec.length; i++) {
    if (spec.charCodeAt(i) !== 0x25) continue;
    const n = spec[i + 1];
    if (n === '%' || n === '_' || n === '-') { i++; macro = true; continue; }
    if (n !== '{') return { error: `bad macro in "${spec}"` };
    const close = spec.indexOf('}', i);
    if (close < 0) return { error: `unclosed macro in "${spec}"` };
    i = close;
    macro = true;
  }
  return macro;
}

/** Splits "domain/24//64" into its parts; the cidr lengths are checked against their bounds. */
function dualCidr(rest: string, term: string): { domain: string; cidr4: number; cidr6: number } | SpfError {
  let domain = rest, cidr4 = 32, cidr6 = 128;
  const d6 = rest.indexOf('//');
  if (d6 >= 0) {
    const n = rest.slice(d6 + 2);
    if (!/^\d{1,3}$/.test(n) || Number(n) > 128) return { error: `bad ip6 cidr length in "${term}"` };
    cidr6 = Number(n);
    domain = rest.slice(0, d6);
  }
  const d4 = domain.lastIndexOf('/');
  if (d4 >= 0) {
    const n = domain.slice(d4 + 1);
    if (!/^\d{1,2}$/.test(n) || Number(n) > 32) return { error: `bad ip4 cidr length in "${term}"` };
    cidr4 = Number(n);
    domain = domain.slice(0, d4);
  }
  return { domain, cidr4, cidr6 };
}

function termOf(word: string): SpfTerm | { redirect: string } | null | SpfError {
  let q: SpfQualifier = '+';
  let w = word;
  const c = w[0];
  if (c === '+' || c === '-' || c === '~' || c === '?') { q = c; w = w.slice(1); }
  const colon = w.indexOf(':');
  const eq = w.indexOf('=');
  // A modifier: name=value, the name before any ':' or '/' (§4.6.1, §6).
  if (eq > 0 && (colon < 0 || eq < colon) && q === '+' && word[0] !== '+') {
    const name = w.slice(0, eq);
    if (!NAME.test(name)) return { error: `bad modifier name in "${word}"` };
    const value = w.slice(eq + 1);
    if (name.toLowerCase() === 'redirect') {
      if (value === '') return { error: 'redirect= without a domain' };
      return { redirect: value };
    }
    return null; // exp= and unknown modifiers are ignored (§6)
  }
  const slash = w.indexOf('/');
  const end = colon >= 0 ? colon : slash >= 0 ? slash : w.length;
  const kind = w.slice(0, end).toLowerCase();
  if (!MECH.has(kind)) return { error: `unknown mechanism "${word}"` };
  const arg = colon >= 0 ? w.slice(colon + 1) : '';
  const after = colon >= 0 ? '' : w.slice(end);
  const base = { kind: kind as SpfKind, qualifier: q, domain: '', macro: false, addr: '', cidr4: 32, cidr6: 128 };
  switch (kind) {
    case 'all':
      if (w.length !== 3) return { error: `"all" takes no argument: "${word}"` };
      return base;
    case 'include': case 'exists': {
      if (arg === '' || after !== '') return { error: `"${kind}" needs ":domain": "${word}"` };
      const m = macroOf(arg);
      if (typeof m !== 'boolean') return m;
      return { ...base, domain: arg, macro: m };
    }
    case 'ptr': {
      if (after !== '') return { error: `"ptr" takes no cidr: "${word}"` };
      return base;
    }
    case 'a': case 'mx': {
      const d = dualCidr(colon >= 0 ? arg : after, word);
      if ('error' in d) return d;
      if (colon >= 0 && d.domain === '') return { error: `empty domain in "${word}"` };
      if (colon < 0 && d.domain !== '') return { error: `bad term "${word}"` };
      const m = macroOf(d.domain);
      if (typeof m !== 'boolean') return m;
      return { ...base, domain: d.domain, macro: m, cidr4: d.cidr4, cidr6: d.cidr6 };
    }
    default: { // ip4, ip6
      if (arg === '') return { error: `"${kind}" needs ":address": "${word}"` };
      const s = arg.indexOf('/');
      const addr = s >= 0 ? arg.slice(0, s) : arg;
      const len = s >= 0 ? arg.slice(s + 1) : kind === 'ip4' ? '32' : '128';
      const max = kind === 'ip4' ? 32 : 128;
      if (!/^\d{1,3}$/.test(len) || Number(len) > max) return { error: `bad prefix length in "${word}"` };
      if (addr === '') return { error: `"${kind}" needs an address: "${word}"` };
      return kind === 'ip4' ? { ...base, addr, cidr4: Number(len) } : { ...base, addr, cidr6: Number(len) };
    }
  }
}

/** Parses one SPF record (the text selectSpf() chose). Errors are permerrors (§4.6): they name the term. */
export function parseSpf(text: string): SpfRecord | SpfError {
  const words = text.split(' ');
  if (!VERSION.test(words[0] ?? '')) return { error: 'not a v=spf1 record' };
  const terms: SpfTerm[] = [];
  let redirect: string | null = null;
  let redirectMacro = false;
  for (let i = 1; i < words.length; i++) {
    const w = words[i] ?? '';
    if (w === '') continue; // runs of spaces
    if (!/^[\x21-\x7e]+$/.test(w)) return { error: `term ${i} has octets outside printable ASCII` };
    const t = termOf(w);
    if (t === null) continue;
    if ('error' in t) return t;
    if ('redirect' in t) {
      if (redirect !== null) return { error: 'more than one redirect=' };
      const m = macroOf(t.redirect);
      if (typeof m !== 'boolean') return m;
      redirect = t.redirect;
      redirectMacro = m;
      continue;
    }
    terms.push(t);
  }
  return { terms, redirect, redirectMacro };
}
