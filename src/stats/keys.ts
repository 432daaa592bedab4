/*
 * stats/keys.ts - how `smtpscreen stats` groups what it counts.
 *
 * Exports: TEST_OF (event name -> test id), networkOf(addr) (/24, /64),
 *          reasonOf(reply) (a reject reply -> its reason, the client left out).
 */
import { EV } from '../log/events.js';

/** The screening test an event reports a failure of. */
export const TEST_OF: Readonly<Record<string, string>> = {
  [EV.DENYLISTED]: 'denylist',
  [EV.PREGREET]: 'pregreet',
  [EV.DNSBL]: 'dnsbl',
  [EV.COMMAND_PIPELINING]: 'pipelining',
  [EV.NON_SMTP_COMMAND]: 'non_smtp',
  [EV.BARE_NEWLINE]: 'bare_newline',
  [EV.GREYLIST]: 'greylist',
  [EV.COMMAND_TIME_LIMIT]: 'command_time_limit',
  [EV.COMMAND_COUNT_LIMIT]: 'command_count_limit',
  [EV.COMMAND_LENGTH_LIMIT]: 'command_length_limit',
  [EV.COMMAND_ERROR_LIMIT]: 'command_error_limit',
  [EV.TLS_FAIL]: 'tls',
};

/** "192.0.2.0/24" for IPv4, the /64 for IPv6, '' for what is no address. */
export function networkOf(addr: string): string {
  if (addr.includes(':')) {
    const a = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : null;
    if (a !== null) return networkOf(a);
    const dbl = addr.indexOf('::');
    let groups: string[];
    if (dbl >= 0) {
      const head = addr.slice(0, dbl).split(':').filter((g) => g !== '');
      const tail = addr.slice(dbl + 2).split(':').filter((g) => g !== '');
      groups = [...head, ...new Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
    } else groups = addr.split(':');
    if (groups.length !== 8 || !groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return '';
    return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
  }
  const d1 = addr.lastIndexOf('.');
  if (d1 < 0 || !/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr)) return '';
  return `${addr.slice(0, d1)}.0/24`;
}

/** A reject reply without our `reason` field, grouped: the text after the status codes, the client's address left out. */
export function reasonOf(reply: string): string {
  let s = reply.replace(/^\d{3}(?:[ -]\d\.\d{1,3}\.\d{1,3})?\s*/, '');
  s = s.replace(/client \[[^\]]*\] /, '');
  s = s.replace(/^Service unavailable; (blocked using \S+?)[;,]?$/, '$1');
  return s.trim() || 'unknown';
}
