/*
 * util/errors.ts - typed errors with stable codes.
 *
 * Exports: ScreenError, ErrorCode.
 * Match on `code`, never on message text (tests and callers alike).
 * Network outcomes (EPIPE, ECONNRESET, timeouts) are not ScreenErrors: they are
 * outcomes of a session and are logged at info.
 */
export type ErrorCode =
  | 'SCR_ERR_CONFIG'        // bad configuration key or value
  | 'SCR_ERR_CIDR'          // bad CIDR / address text
  | 'SCR_ERR_ACCESS_LIST'   // bad access list line
  | 'SCR_ERR_DURATION'      // bad duration text
  | 'SCR_ERR_PROXY'         // malformed PROXY protocol header
  | 'SCR_ERR_SMTP_REPLY'    // malformed SMTP reply from a backend
  | 'SCR_ERR_BACKEND'       // the backend could not be asked (EHLO probe: connect, greeting, ehlo)
  | 'SCR_ERR_CACHE'         // corrupt cache record or snapshot
  | 'SCR_ERR_DNS_PACKET'    // malformed DNS packet (from the network) or unencodable name
  | 'SCR_ERR_DNSBL_SITE'    // bad DNSBL site specification
  | 'SCR_ERR_USAGE'         // bad command line
  | 'SCR_ERR_BIND'          // a listener could not be bound (EACCES, EADDRINUSE)
  | 'SCR_ERR_WORKER'        // a worker (workers > 1) exited during start-up
  | 'SCR_ERR_PRIVILEGES';   // user/group cannot be switched to, or root refused

export class ScreenError extends Error {
  readonly code: ErrorCode;
  /** Optional structured details: the key, the value, the file and line. */
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ScreenError';
    this.code = code;
    this.details = details;
  }
}
