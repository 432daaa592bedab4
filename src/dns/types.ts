/*
 * dns/types.ts - the contract between the DNS packet codec, the resolver and
 * its users (checks/dnsbl.ts through the session). dns/ knows nothing about
 * blocklists; checks/ knows nothing about UDP.
 *
 * Exports: QTYPE, RCODE, DnsQuestion, DnsRecord, DnsMessage, LookupType,
 *          LookupResult, LookupError, DnsLookup.
 */

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, MX: 15, AAAA: 28 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface DnsQuestion {
  /** Lower-case, no trailing dot. */
  name: string;
  qtype: number;
  qclass: number;
}

export interface DnsRecord {
  /** Owner name, lower-case, no trailing dot. */
  name: string;
  type: number;
  ttl: number;
  /**
   * A: dotted quad; AAAA: IPv6 text; CNAME/NS/PTR: target name (lower-case); MX: the exchange name (preference dropped);
   * TXT: the character-strings joined without separator; SOA: "mname rname serial refresh retry expire minimum";
   * other types: '' (skipped by users).
   */
  data: string;
  /** SOA only: the MINIMUM field (negative-caching TTL, RFC 2308). */
  soaMinimum?: number;
}

export interface DnsMessage {
  id: number;
  /** true for a response. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authority: DnsRecord[];
  /** Additional records are bounds-checked and skipped (not returned). */
}

/** AAAA and MX: checks/spf-collect.ts (the SPF allowlist's `a` and `mx` mechanisms). */
export type LookupType = 'A' | 'TXT' | 'AAAA' | 'MX';

/**
 * 'queued' is ours, not the server's: the lookup's deadline came while it waited in the
 * resolver's queue for a free slot (no try sent, or the last try cut short by the deadline after
 * such a wait). 'timeout' is the server's: a query sent and not answered in its time.
 */
export type LookupError = 'timeout' | 'queued' | 'servfail' | 'refused' | 'formerr' | 'malformed' | 'network' | 'cname-loop' | 'bad-name';

export type LookupResult =
  /** records: A as dotted quads, AAAA as IPv6 text, MX as exchange names, TXT as strings; ttl: seconds, clamped, the minimum over the records used. */
  | { status: 'ok'; records: string[]; ttl: number }
  /** Negative answers; ttl from the SOA in the authority section (clamped), or the configured negative default. */
  | { status: 'nxdomain' | 'nodata'; ttl: number }
  | { status: 'error'; error: LookupError; message?: string };

/** What checks/dnsbl.ts needs from a resolver (fakes implement it in unit tests). */
export interface DnsLookup {
  /** Never rejects; ends by the resolver's own deadline with an error result at worst. */
  /** `fresh`: bypass the answer cache (site health probes). */
  lookup(name: string, type: LookupType, fresh?: boolean): Promise<LookupResult>;
}
