/*
 * cache/admin.ts - the cache admin's requests and what they do to a store:
 * `smtpscreen cache list|show|delete|pass|export|import`, as spamdb(8) for spamd.
 *
 * Exports: AdminRequest, AdminReply, AdminChange, MAX_REQUEST, IMPORT_BATCH, parseAdminRequest(),
 *          applyAdmin(), describeRecord(), encodeEntry(), parseEntry().
 * One request is one JSON object on one line (the admin socket's protocol,
 * server/admin-socket.ts; the offline command builds the same objects):
 *   {"op":"list"} {"op":"export"}                    every entry (export: snapshot lines)
 *   {"op":"show","address":"192.0.2.1"}              one client's passes
 *   {"op":"delete","address":"192.0.2.1"}            forget it: screened again
 *   {"op":"pass","address":"192.0.2.1","ttl_ms":N}   every test passed for N ms: PASS OLD
 *   {"op":"import","lines":["<key> <record>", ...]}  snapshot lines, IMPORT_BATCH at most
 * parseAdminRequest() never throws: garbage (not JSON, not an object, an
 * unknown op, a bad address or TTL, too long) is an {error}. Stored records
 * are values: pass builds a new record (withPasses), nothing is edited.
 * applyAdmin() returns the reply and, for a change, what to log (CACHE ADMIN).
 */
import { normalizeAddress } from '../net/cidr.js';
import { TESTS, TEST_COUNT } from '../checks/tests.js';
import { decodeRecord, encodeRecord, withPasses, type VerdictRecord, type VerdictStore } from './store.js';
import { validKey } from './snapshot.js';

/** Longest request line, bytes: an import batch of IMPORT_BATCH lines fits. */
export const MAX_REQUEST = 256 * 1024;
/** Snapshot lines per import request. */
export const IMPORT_BATCH = 1000;
/** The longest pass an admin may give (a year: longer is a typo). */
const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

export type AdminRequest =
  | { readonly op: 'list' | 'export' }
  | { readonly op: 'show' | 'delete'; readonly address: string }
  | { readonly op: 'pass'; readonly address: string; readonly ttlMs: number }
  | { readonly op: 'import'; readonly lines: readonly string[] };

export type AdminReply = Record<string, unknown> & { ok: boolean };

/** A change to log as CACHE ADMIN. */
export interface AdminChange {
  readonly op: 'delete' | 'pass' | 'import';
  readonly address?: string;
  readonly ttl_ms?: number;
  readonly entries?: number;
  readonly skipped?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One request line (without its LF) -> a request, or what is wrong with it. */
export function parseAdminRequest(line: string): AdminRequest | { error: string } {
  if (line.length > MAX_REQUEST) return { error: `request longer than ${MAX_REQUEST} bytes` };
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: 'not JSON: one JSON object per line, e.g. {"op":"show","address":"192.0.2.1"}' };
  }
  if (!isObject(v)) return { error: 'not a JSON object' };
  const op = v['op'];
  switch (op) {
    case 'list':
    case 'export':
      return { op };
    case 'show':
    case 'delete':
    case 'pass': {
      const a = v['address'];
      const address = typeof a === 'string' && a.length <= 64 ? normalizeAddress(a) : null;
      if (address === null) return { error: `${op}: "address" must be an IPv4 or IPv6 address, got ${JSON.stringify(a)?.slice(0, 70) ?? 'nothing'}` };
      if (op !== 'pass') return { op, address };
      const t = v['ttl_ms'];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_TTL_MS) {
        return { error: `pass: "ttl_ms" must be a whole number of ms from 1 to ${MAX_TTL_MS}, got ${JSON.stringify(t)?.slice(0, 30) ?? 'nothing'}` };
      }
      return { op, address, ttlMs: t };
    }
    case 'import': {
      const lines = v['lines'];
      if (!Array.isArray(lines) || lines.length > IMPORT_BATCH || !lines.every((l) => typeof l === 'string')) {
        return { error: `import: "lines" must be an array of at most ${IMPORT_BATCH} snapshot lines` };
      }
      return { op, lines: lines as string[] };
    }
    default:
      return { error: `unknown op ${JSON.stringify(op)?.slice(0, 30) ?? 'nothing'}: list, show, delete, pass, export or import` };
  }
}

/** A snapshot line "<key> <record>" (cache/snapshot.ts's format). */
export function encodeEntry(key: string, rec: VerdictRecord): string {
  return `${key} ${encodeRecord(rec)}`;
}

/** A snapshot line -> [key, record], or null when it is not one. */
export function parseEntry(line: string): [string, VerdictRecord] | null {
  const sp = line.indexOf(' ');
  const key = sp > 0 ? line.slice(0, sp) : '';
  if (sp <= 0 || !validKey(key)) return null;
  try {
    return [key, decodeRecord(line.slice(sp + 1))];
  } catch {
    return null;
  }
}

/** A record for people: each test's pass-until time (ISO), or "none"; greylist first-seen times as such. */
export function describeRecord(rec: VerdictRecord, now: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < TEST_COUNT; i++) {
    const v = rec[i] ?? 0;
    const name = TESTS[i] as string;
    if (v < 0) out[name] = `first seen ${new Date(-v).toISOString()}`;
    else if (v === 0) out[name] = 'none';
    else out[name] = `${v > now ? 'passed until' : 'expired'} ${new Date(v).toISOString()}`;
  }
  return out;
}

/**
 * Apply a request to `store` at `now`. list and export answer with every
 * entry through `each` (called once per entry; the caller writes it) and
 * reply with the count; the others reply at once.
 */
export function applyAdmin(store: VerdictStore, req: AdminRequest, now: number, each?: (entry: Record<string, unknown>) => void): { reply: AdminReply; change: AdminChange | null } {
  switch (req.op) {
    case 'list':
    case 'export': {
      let count = 0;
      for (const [key, rec] of store.entries()) {
        count++;
        each?.(req.op === 'export' ? { line: encodeEntry(key, rec) } : { address: key, passes: describeRecord(rec, now) });
      }
      return { reply: { ok: true, count }, change: null };
    }
    case 'show': {
      const rec = store.get(req.address);
      return { reply: rec === undefined ? { ok: true, address: req.address, found: false } : { ok: true, address: req.address, found: true, passes: describeRecord(rec, now) }, change: null };
    }
    case 'delete': {
      const found = store.get(req.address) !== undefined;
      store.delete(req.address);
      return { reply: { ok: true, address: req.address, found }, change: { op: 'delete', address: req.address } };
    }
    case 'pass': {
      // A new record: every test passed until now + ttl (the stored one, if any, is not edited).
      const until = now + req.ttlMs;
      const rec = withPasses(store.get(req.address), Array.from({ length: TEST_COUNT }, (_, i) => [i, until] as const));
      store.set(req.address, rec);
      return { reply: { ok: true, address: req.address, until: new Date(until).toISOString() }, change: { op: 'pass', address: req.address, ttl_ms: req.ttlMs } };
    }
    case 'import': {
      let entries = 0;
      let skipped = 0;
      for (const line of req.lines) {
        const e = parseEntry(line);
        if (e === null) skipped++;
        else {
          store.set(e[0], e[1]);
          entries++;
        }
      }
      return { reply: { ok: true, entries, skipped }, change: { op: 'import', entries, skipped } };
    }
  }
}
