/*
 * smtp/replies.ts - every SMTP reply smtpscreen sends, formatted once per hostname.
 *
 * Exports: Replies (interface), makeReplies(hostname, banner = 'ESMTP'),
 *          stripCrlf(reply).
 *
 * Texts follow postscreen (postscreen.c, postscreen_early.c, postscreen_smtpd.c,
 * postscreen_state.c) so log and bounce parsers keep working. Where we differ,
 * on purpose:
 * - Banner: postscreen says "220 $smtpd_banner" (default "$myhostname ESMTP
 *   $mail_name"); we say "220 <hostname> <banner>" (default "ESMTP") and do
 *   not name the software.
 * - EHLO: postscreen offers SIZE [limit], VRFY, ETRN, STARTTLS (with TLS),
 *   ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8 (when enabled), CHUNKING.
 *   We offer the same minus VRFY and ETRN (our engine answers both with 502)
 *   and minus STARTTLS (not yet); SIZE is bare (the limit is the backend's).
 *   Like postscreen, never PIPELINING: a client that pipelines anyway fails
 *   the pipelining test.
 * - VRFY: postscreen answers with the RCPT reply; ETRN with "458 Unable to
 *   queue messages". We answer both with 502 5.5.2 (see dummy-engine.ts).
 * Every reply here is CRLF-terminated and contains no other CR or LF.
 */
import { ScreenError } from '../util/errors.js';

export interface Replies {
  readonly hostname: string;
  /** Partial greeting for the pregreet test: "220-host ESMTP". */
  readonly teaser: string;
  /** Full greeting, when the dummy engine must complete it itself. */
  readonly greeting: string;
  readonly ehlo: string;
  /** EHLO reply with STARTTLS (TLS configured, not yet active). */
  readonly ehloTls: string;
  /** STARTTLS accepted: the TLS handshake follows. */
  readonly startTls: string;
  /** STARTTLS with an argument. */
  readonly startTlsSyntax: string;
  /** STARTTLS under TLS already. */
  readonly tlsActive: string;
  readonly helo: string;
  /** RSET, NOOP. */
  readonly ok: string;
  /** MAIL FROM accepted. */
  readonly mailOk: string;
  readonly bye: string;
  readonly unrecognized: string;
  /** STARTTLS while TLS is not offered (postscreen without TLS). */
  readonly notImplemented: string;
  readonly heloSyntax: string;
  readonly ehloSyntax: string;
  readonly mailSyntax: string;
  readonly rcptSyntax: string;
  readonly dataSyntax: string;
  readonly bdatSyntax: string;
  readonly nestedMail: string;
  readonly needMail: string;
  /** DATA before MAIL. */
  readonly needRcpt: string;
  /** BDAT before MAIL (postscreen uses 554 here, 503 for RCPT). */
  readonly bdatNeedMail: string;
  readonly noValidRecipients: string;
  /** COMMAND TIME LIMIT. */
  readonly timeout: string;
  /** COMMAND COUNT LIMIT and COMMAND LENGTH LIMIT: postscreen's generic 421. */
  readonly tooManyCommands: string;
  readonly commandTooLong: string;
  /** PREGREET LIMIT under ignore: more early bytes than are kept; the stream cannot reach the backend whole. */
  readonly earlyTooLong: string;
  /** COMMAND ERROR LIMIT: smtpd(8)'s reply at smtpd_hard_error_limit. */
  readonly tooManyErrors: string;
  readonly allPortsBusy: string;
  readonly tooManyConnections: string;
  /** RCPT reply for a client still under test (postscreen's default rcpt_reply). */
  readonly deferRcpt: string;
  /** Generic hang-up reply, postscreen's default final_reply. */
  readonly serviceUnavailable: string;
  /** Generic drop: postscreen's denylist drop text. Prefer dropFor(test). */
  readonly drop: string;
  /** The 521 a test's `drop` action sends; postscreen's text per test. */
  dropFor(test: string): string;
  /** The 550 a test's `enforce` action gives at RCPT; postscreen's text per test. For DNSBL, checks/dnsbl.ts dnsblReply(). */
  reject(test: string): string;
}

const PROTOCOL_ERROR_DROP = '521 5.5.1 Protocol error\r\n';
const PROTOCOL_ERROR_REJECT = '550 5.5.1 Protocol error\r\n';
const DENYLIST_DROP = '521 5.3.2 Service currently unavailable\r\n';
const DENYLIST_REJECT = '550 5.3.2 Service currently unavailable\r\n';
/** Not in postscreen: a test we do not know by name. */
const GENERIC_DROP = DENYLIST_DROP;
const GENERIC_REJECT = '550 5.7.1 Service unavailable\r\n';

/** Per-test texts, keyed by the names in checks/tests.ts plus 'denylist'. */
const DROP_BY_TEST: ReadonlyMap<string, string> = new Map([
  ['denylist', DENYLIST_DROP],
  ['pregreet', PROTOCOL_ERROR_DROP],
  ['pipelining', PROTOCOL_ERROR_DROP],
  ['bare_newline', PROTOCOL_ERROR_DROP],
  // postscreen_smtpd.c, non_smtp_command drop.
  ['non_smtp', '521 5.7.0 Error: I can break rules, too. Goodbye.\r\n'],
]);
const REJECT_BY_TEST: ReadonlyMap<string, string> = new Map([
  ['denylist', DENYLIST_REJECT],
  ['pregreet', PROTOCOL_ERROR_REJECT],
  ['pipelining', PROTOCOL_ERROR_REJECT],
  ['bare_newline', PROTOCOL_ERROR_REJECT],
  ['non_smtp', PROTOCOL_ERROR_REJECT],
]);

function dropFor(test: string): string {
  return DROP_BY_TEST.get(test) ?? GENERIC_DROP;
}

function reject(test: string): string {
  return REJECT_BY_TEST.get(test) ?? GENERIC_REJECT;
}

/** Text that may go into a reply line: printable ASCII, no CR/LF. */
function isReplyText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Format all replies for one hostname; call at config load, not per connection. */
export function makeReplies(hostname: string, banner = 'ESMTP'): Replies {
  if (hostname.length === 0 || !isReplyText(hostname) || hostname.includes(' ')) {
    throw new ScreenError('SCR_ERR_CONFIG', `hostname must be one printable word: ${JSON.stringify(hostname)}`, { key: 'hostname', value: hostname });
  }
  if (!isReplyText(banner)) {
    throw new ScreenError('SCR_ERR_CONFIG', `banner must be printable text: ${JSON.stringify(banner)}`, { key: 'banner', value: banner });
  }
  const tail = banner.length > 0 ? ` ${banner}` : '';
  return Object.freeze({
    hostname,
    teaser: `220-${hostname}${tail}\r\n`,
    greeting: `220 ${hostname}${tail}\r\n`,
    ehlo:
      `250-${hostname}\r\n` +
      '250-SIZE\r\n' +
      '250-ENHANCEDSTATUSCODES\r\n' +
      '250-8BITMIME\r\n' +
      '250-DSN\r\n' +
      '250-SMTPUTF8\r\n' +
      '250 CHUNKING\r\n',
    ehloTls:
      `250-${hostname}\r\n` +
      '250-SIZE\r\n' +
      '250-STARTTLS\r\n' +
      '250-ENHANCEDSTATUSCODES\r\n' +
      '250-8BITMIME\r\n' +
      '250-DSN\r\n' +
      '250-SMTPUTF8\r\n' +
      '250 CHUNKING\r\n',
    startTls: '220 2.0.0 Ready to start TLS\r\n',
    startTlsSyntax: '501 5.5.4 Syntax: STARTTLS\r\n',
    tlsActive: '554 5.5.1 Error: TLS already active\r\n',
    helo: `250 ${hostname}\r\n`,
    ok: '250 2.0.0 Ok\r\n',
    mailOk: '250 2.1.0 Ok\r\n',
    bye: '221 2.0.0 Bye\r\n',
    unrecognized: '502 5.5.2 Error: command not recognized\r\n',
    notImplemented: '502 5.5.1 Error: command not implemented\r\n',
    heloSyntax: '501 Syntax: HELO hostname\r\n',
    ehloSyntax: '501 Syntax: EHLO hostname\r\n',
    mailSyntax: '501 5.5.4 Syntax: MAIL FROM:<address>\r\n',
    rcptSyntax: '501 5.5.4 Syntax: RCPT TO:<address>\r\n',
    dataSyntax: '501 5.5.4 Syntax: DATA\r\n',
    bdatSyntax: '501 5.5.4 Syntax: BDAT count [LAST]\r\n',
    nestedMail: '503 5.5.1 Error: nested MAIL command\r\n',
    needMail: '503 5.5.1 Error: need MAIL command\r\n',
    needRcpt: '503 5.5.1 Error: need RCPT command\r\n',
    bdatNeedMail: '554 5.5.1 Error: need MAIL command\r\n',
    noValidRecipients: '554 5.5.1 Error: no valid recipients\r\n',
    timeout: `421 4.4.2 ${hostname} Error: timeout exceeded\r\n`,
    tooManyCommands: `421 ${hostname} Service unavailable - try again later\r\n`,
    commandTooLong: `421 ${hostname} Service unavailable - try again later\r\n`,
    earlyTooLong: `421 4.7.0 ${hostname} Error: too much data before the greeting\r\n`,
    tooManyErrors: `421 4.7.0 ${hostname} Error: too many errors\r\n`,
    allPortsBusy: '421 4.3.2 All server ports are busy\r\n',
    tooManyConnections: '421 4.7.0 Error: too many connections\r\n',
    deferRcpt: '450 4.3.2 Service currently unavailable\r\n',
    serviceUnavailable: '421 4.3.2 Service currently unavailable\r\n',
    drop: GENERIC_DROP,
    dropFor,
    reject,
  });
}

/** The reply as it appears in a log field: without the final CRLF. */
export function stripCrlf(reply: string): string {
  return reply.endsWith('\r\n') ? reply.slice(0, -2) : reply;
}
