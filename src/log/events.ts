/*
 * log/events.ts - the names of every log event: the monitoring interface.
 *
 * Exports: EV (event name constants), EventName.
 * Every decision is one pino line with `event` set to one of these, plus
 * `client` and `port` when a client is involved. The README's log event
 * reference lists each with a "Translation:" line; keep both in step.
 */
export const EV = {
  // Lifecycle of the process
  STARTED: 'STARTED',          // fields: listen[], backend, handoff, pid
  START_FAILED: 'START FAILED',// fields: code, message (a port in use, an unreadable access list)
  STOPPING: 'STOPPING',        // fields: signal, open (sessions still open), drain_ms
  STOPPED: 'STOPPED',          // fields: forced (sessions cut at drain timeout)
  ACCEPT_ERROR: 'ACCEPT ERROR',// fields: code (EMFILE, ENFILE, ...), listener; accept loop goes on
  INTERNAL_ERROR: 'INTERNAL ERROR', // fields: where, phase, error, stack; that session got 421, the process goes on
  // One connection
  CONNECT: 'CONNECT',                  // client, port, local, local_port
  ALL_PORTS_BUSY: 'ALL PORTS BUSY',    // client, port, count
  TOO_MANY_CONNECTIONS: 'TOO MANY CONNECTIONS', // client, port, count
  PROXY_FAIL: 'PROXY FAIL',            // peer, reason (malformed, timeout, untrusted)
  ALLOWLISTED: 'ALLOWLISTED',          // client, port, entry
  DENYLISTED: 'DENYLISTED',            // client, port, entry, action
  PASS_OLD: 'PASS OLD',
  PASS_NEW: 'PASS NEW',
  PREGREET: 'PREGREET',                // bytes, after_ms, sample (escaped), action
  HANGUP: 'HANGUP',                    // after_ms, phase (accept: the peer left before its address could be read; no client)
  DNSBL: 'DNSBL',                      // score, hits [{site, weight, records}], action, lookup_ms, late
  DNSBL_SITE: 'DNSBL SITE',            // site, state (suspended, resumed), reason
  DNSBL_WARNING: 'DNSBL WARNING',      // site, reason (error-answer, slow), value, lookup_ms
  COMMAND_PIPELINING: 'COMMAND PIPELINING', // after (the command), sample (input sent with it, escaped), action
  NON_SMTP_COMMAND: 'NON-SMTP COMMAND',     // after (previous command), sample (the line, escaped), action
  BARE_NEWLINE: 'BARE NEWLINE',             // after (previous command), sample (the line, escaped), action
  COMMAND_TIME_LIMIT: 'COMMAND TIME LIMIT',     // after
  COMMAND_COUNT_LIMIT: 'COMMAND COUNT LIMIT',   // after, count, limit
  COMMAND_LENGTH_LIMIT: 'COMMAND LENGTH LIMIT', // after, length
  COMMAND_ERROR_LIMIT: 'COMMAND ERROR LIMIT',   // after, count, limit (smtpd_hard_error_limit; postscreen has none)
  TLS_FAIL: 'TLS FAIL',                // reason (handshake error code, or timeout), after_ms (since STARTTLS)
  GREYLIST: 'GREYLIST',
  NOQUEUE: 'NOQUEUE',                  // reply, helo, from, to, reason
  HANDOFF: 'HANDOFF',                  // backend, mode, verdict, code, handshake_ms; after a replay: after (RCPT), relayed (MAIL or RCPT)
  HANDOFF_FALLBACK: 'HANDOFF FALLBACK', // reason, stage: deep.after_pass handoff could not be exact; the client gets the 450 (reconnect)
  BACKEND_EHLO: 'BACKEND EHLO',        // backend, state (learned, changed, failed), offered, xclient, reason
  BACKEND_FAIL: 'BACKEND FAIL',        // backend, stage (connect, handshake, xclient), reason
  DISCONNECT: 'DISCONNECT',            // duration_ms, bytes_in, bytes_out, phase
  STRESS: 'STRESS',
  CACHE: 'CACHE',                      // op (load, save, error), entries, file
} as const;

export type EventName = (typeof EV)[keyof typeof EV];
