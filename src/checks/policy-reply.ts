/*
 * checks/policy-reply.ts - the policy service's JSON reply, read strictly, and
 * the requests we send it.
 *
 * Exports: PolicyAction, PolicyReply, parsePolicyReply(), smtpReplyOf(),
 *          connectRequest(), rcptRequest(), ConnectFacts, MAX_REPLY_BYTES.
 * A reply is one JSON object, at most MAX_REPLY_BYTES:
 *   {"action": "permit"|"reject"|"defer"|"dunno"|"route",
 *    "reply": "text", "route": "name", "ttl": "1h"}
 * Only `action` is required; `route` is required with route and refused with
 * any other action; `reply` is refused with permit, dunno and route (there is
 * nobody to say it to); an unknown key, a wrong type, a control character in
 * `reply` or a `ttl` that is not a duration is a bad reply: the caller counts
 * it as a failure (checks/policy.ts), never as an answer. parsePolicyReply()
 * never throws, whatever the bytes (test/checks/policy-reply.test.ts fuzzes it).
 */
import { parseDuration } from '../util/duration.js';

export type PolicyAction = 'permit' | 'reject' | 'defer' | 'dunno' | 'route';

export interface PolicyReply {
  readonly action: PolicyAction;
  /** Their text for reject and defer (no code), or null: ours. */
  readonly reply: string | null;
  /** The route name (action route), else null. */
  readonly route: string | null;
  /** How long the reply holds for this client, ms; 0: not cached. */
  readonly ttlMs: number;
}

/** A reply longer than this is bad (a policy answer is a few dozen bytes). */
export const MAX_REPLY_BYTES = 4096;
/** Longest `reply` text: it goes into one SMTP reply line (RFC 5321: 512 with the code). */
const MAX_TEXT = 400;
const ACTIONS: ReadonlySet<string> = new Set(['permit', 'reject', 'defer', 'dunno', 'route']);
const KEYS: ReadonlySet<string> = new Set(['action', 'reply', 'route', 'ttl']);
const ROUTE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// Printable ASCII only: the text goes into an SMTP reply and a log line.
const TEXT_RE = /^[\x20-\x7e]+$/;

/** The reply, or a string saying why it is bad. */
export function parsePolicyReply(body: string, ttlMaxMs: number): PolicyReply | string {
  if (body.length > MAX_REPLY_BYTES) return `reply longer than ${MAX_REPLY_BYTES} bytes`;
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return 'not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) return `unknown key ${JSON.stringify(k.slice(0, 40))}`;
  const action = o['action'];
  if (typeof action !== 'string' || !ACTIONS.has(action)) return 'action missing or not permit, reject, defer, dunno or route';
  let reply: string | null = null;
  if (o['reply'] !== undefined) {
    const r = o['reply'];
    if (action !== 'reject' && action !== 'defer') return `reply given with action ${action}`;
    if (typeof r !== 'string' || r.length === 0 || r.length > MAX_TEXT || !TEXT_RE.test(r)) {
      return `reply is not printable text of 1 to ${MAX_TEXT} characters`;
    }
    // A code of theirs would be a second code after ours: refuse it rather than guess.
    if (/^\d{3}([ -]|$)/.test(r)) return 'reply starts with an SMTP code (give the text only)';
    if (/^\d\.\d{1,3}\.\d{1,3}( |$)/.test(r) && r[0] !== (action === 'reject' ? '5' : '4')) {
      return `reply's enhanced status code does not match action ${action}`;
    }
    reply = r;
  }
  let route: string | null = null;
  if (action === 'route') {
    const r = o['route'];
    if (typeof r !== 'string' || !ROUTE_RE.test(r)) return 'route missing or not a name of letters, digits, "_", "." or "-"';
    route = r;
  } else if (o['route'] !== undefined) return `route given with action ${action}`;
  let ttlMs = 0;
  if (o['ttl'] !== undefined) {
    const t = o['ttl'];
    if (typeof t !== 'string' && typeof t !== 'number') return 'ttl is not a duration';
    try {
      ttlMs = parseDuration(t);
    } catch {
      return 'ttl is not a duration such as "1h"';
    }
    if (ttlMs > ttlMaxMs) ttlMs = ttlMaxMs;
  }
  return { action: action as PolicyAction, reply, route, ttlMs };
}

/** The SMTP reply line (CRLF included) for a reject or defer: `code` with their text or ours. */
export function smtpReplyOf(code: 421 | 450 | 521 | 550, text: string | null, hostname: string): string {
  const cls = code >= 500 ? '5' : '4';
  const t = text ?? `${hostname} Service unavailable; client blocked by policy`;
  return /^\d\.\d{1,3}\.\d{1,3}( |$)/.test(t) ? `${code} ${t}\r\n` : `${code} ${cls}.7.1 ${t}\r\n`;
}

/** What the policy service is told at accept. */
export interface ConnectFacts {
  readonly client: string;
  readonly port: number;
  /** The listener's address and port the client connected to. */
  readonly local: string;
  readonly localPort: number;
  /** The PROXY peer that sent the client's address, or null (a direct connection). */
  readonly proxy: string | null;
  /** Tests with an unexpired pass for this client (its verdict record), by name. */
  readonly passed: readonly string[];
  /** The access list's say: a reject entry under `ignore` goes on to the tests. */
  readonly denylisted: boolean;
}

export function connectRequest(f: ConnectFacts): string {
  return JSON.stringify({
    stage: 'connect', client: f.client, port: f.port, listener: `${f.local}:${f.localPort}`,
    proxy: f.proxy, passed: f.passed, denylisted: f.denylisted,
  });
}

export function rcptRequest(client: string, port: number, helo: string, from: string, to: string): string {
  return JSON.stringify({ stage: 'rcpt', client, port, helo, from, to });
}
