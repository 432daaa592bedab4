/*
 * checks/access.ts - permanent CIDR allow/deny list (postscreen_access_list).
 *
 * Exports:
 *   AccessAction                        'permit' | 'reject' | 'dunno'
 *   AccessMatch                         { action, entry (CIDR as written), line }
 *   AccessList                          match(addr), size, source
 *   parseAccessList(text, source?)      parse list text; throws ScreenError SCR_ERR_ACCESS_LIST
 *   ACCESS_FILE                         the list file's role for util/read-file.ts: callers read
 *                                       the file (readTextFile(path, ACCESS_FILE)), then parse
 *
 * Format: one `CIDR ACTION [route=NAME]` per line, ACTION permit|reject|dunno (any case); the
 * optional `route=NAME` tags the entry for `routes:` rules (`match.tag`). `#` starts a
 * comment (whole line or trailing), blank lines ignored, fields separated by spaces or tabs.
 * First match wins over all entries (IPv4 and IPv6), as in postscreen: `dunno` stops the search
 * with no verdict, so it shadows every later entry that would match the same client.
 * Pure: parse and match only, no files, no sockets, no logging.
 */
import { CidrMatcher, parseCidr, type Cidr, type ParsedAddress } from '../net/cidr.js';
import { ScreenError } from '../util/errors.js';
import type { FileRole } from '../util/read-file.js';

export type AccessAction = 'permit' | 'reject' | 'dunno';

export interface AccessMatch {
  readonly action: AccessAction;
  /** The CIDR text as written in the list. */
  readonly entry: string;
  /** 1-based line number in the source. */
  readonly line: number;
  /** The entry's route tag (`route=NAME`; access.spf entries: `spf`), or null: for `routes:` rules' `match.tag`. */
  readonly route: string | null;
}

/** A route tag: letters, digits, `_ . -`, as the policy service's route names. */
const ROUTE_TAG = /^[A-Za-z0-9_.-]{1,64}$/;

/** The access list file (access.list): unreadable is SCR_ERR_ACCESS_LIST "<path>: cannot read access list (ENOENT)". */
export const ACCESS_FILE: FileRole = { key: 'access.list', what: 'access list', code: 'SCR_ERR_ACCESS_LIST' };

const ACTIONS: ReadonlyMap<string, AccessAction> = new Map([
  ['permit', 'permit'],
  ['reject', 'reject'],
  ['dunno', 'dunno'],
]);

/** A parsed access list. Lookups allocate nothing; matches are shared frozen records. */
export class AccessList {
  readonly #matcher: CidrMatcher<AccessMatch>;
  /** Where the list came from (file path or '<inline>'), for log fields. */
  readonly source: string;

  constructor(source: string, matcher: CidrMatcher<AccessMatch>) {
    this.source = source;
    this.#matcher = matcher;
  }

  /** The first entry containing addr, or undefined (also for text that is not an address). */
  match(addr: string | ParsedAddress): AccessMatch | undefined {
    return this.#matcher.match(addr);
  }

  /** Number of entries. */
  get size(): number {
    return this.#matcher.size;
  }
}

function listError(source: string, line: number, value: string, why: string): ScreenError {
  return new ScreenError('SCR_ERR_ACCESS_LIST', `${source}:${line}: ${why}`, { file: source, line, value });
}

/** Parses access list text. Errors name the source, the line and the offending text. */
export function parseAccessList(text: string, source = '<inline>'): AccessList {
  const matcher = new CidrMatcher<AccessMatch>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let raw = lines[i] ?? '';
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    const hash = raw.indexOf('#');
    const body = (hash >= 0 ? raw.slice(0, hash) : raw).replace(/^[ \t]+|[ \t]+$/g, '');
    if (body === '') continue;
    const fields = body.split(/[ \t]+/);
    const cidrText = fields[0] ?? '';
    if (fields.length !== 2 && fields.length !== 3) {
      throw listError(source, lineNo, body,
        `expected "CIDR ACTION [route=NAME]" (ACTION permit, reject or dunno), got "${body}"`);
    }
    let route: string | null = null;
    if (fields.length === 3) {
      const t = fields[2] ?? '';
      const name = t.startsWith('route=') ? t.slice('route='.length) : '';
      if (!ROUTE_TAG.test(name)) {
        throw listError(source, lineNo, t, `want route=NAME (1 to 64 letters, digits, "_", "." or "-") after the action, got "${t}"`);
      }
      route = name;
    }
    const actionText = fields[1] ?? '';
    const action = ACTIONS.get(actionText.toLowerCase());
    if (action === undefined) {
      throw listError(source, lineNo, actionText,
        `unknown action "${actionText}" for "${cidrText}"; use permit, reject or dunno`);
    }
    let cidr: Cidr;
    try {
      cidr = parseCidr(cidrText);
    } catch (err) {
      const why = err instanceof ScreenError ? err.message : String(err);
      throw listError(source, lineNo, cidrText, why);
    }
    matcher.add(cidr, Object.freeze({ action, entry: cidrText, line: lineNo, route }));
  }
  return new AccessList(source, matcher);
}
