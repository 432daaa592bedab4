/*
 * log/postscreen-format.ts - log events -> postscreen(8) syslog message text.
 *
 * Exports: formatPostscreen(ev), formatEvent(name, fields), formatDelay(ms).
 * The text is what postscreen puts after "postscreen[pid]: ", so that
 * fail2ban filters and log summarisers written for postscreen keep matching:
 *   CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:25
 *   PREGREET 11 after 0.21 from [192.0.2.1]:5678: EHLO foo\r\n
 *   HANGUP after 2.1 from [192.0.2.1]:5678 in tests after SMTP handshake
 *   NOQUEUE: reject: RCPT from [192.0.2.1]:5678: 550 5.7.1 ...; from=<a>, to=<b>, proto=ESMTP, helo=<h>
 * Events postscreen has no line for (HANDOFF, BACKEND FAIL, ...) get a line in
 * the same spirit, each with its own fixed head (the `msg` of every event in
 * the table is stable: test/log/msg-stable.test.ts); an unknown event gets
 * "NAME key=value ...". A missing field never throws: it renders as "unknown"
 * (addresses) or is left out.
 * A shadowed failure (`action: shadow`, `would: reject|drop|defer`; mode:
 * shadow) is prefixed "SHADOW (would reject): ": no line of it starts like
 * a real rejection, so fail2ban's postfix filter (which anchors "PREGREET n
 * after", "NOQUEUE: reject:", "COMMAND ... LIMIT" right after the tag) and
 * log summarisers do not count it as one.
 * Client text arrives escaped (util/escape.ts); as a last guard any raw
 * control character left is shown as '?', like Postfix's printable().
 */
import { EV } from './events.js';

type Ev = Record<string, unknown>;

/** Fields that belong to the log record, not to the event. */
const RECORD_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event', 'v']);

function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** `[addr]:port`, as postscreen's PSC_CLIENT_ADDR_PORT. */
function addr(host: unknown, port: unknown): string {
  return `[${str(host) ?? 'unknown'}]:${str(port) ?? 'unknown'}`;
}

/**
 * formatDelay - elapsed time as postscreen prints it: two significant digits,
 * at most three decimals, no trailing zeros ("0.21", "2.1", "17", "0.005").
 */
export function formatDelay(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0';
  if (ms >= 10_000) return String(Math.round(ms / 1000));
  const decimals = ms >= 1000 ? 1 : ms >= 100 ? 2 : 3;
  const s = (ms / 1000).toFixed(decimals);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

function after(ev: Ev): string {
  const ms = num(ev['after_ms']);
  return ms === undefined ? 'unknown' : formatDelay(ms);
}

// Our phase names -> postscreen's test group names in HANGUP lines.
const PHASE_TEXT: Readonly<Record<string, string>> = {
  early: 'tests before SMTP handshake',
  pregreet: 'tests before SMTP handshake',
  greet: 'tests before SMTP handshake',
  dnsbl: 'tests before SMTP handshake',
  deep: 'tests after SMTP handshake',
  dummy: 'tests after SMTP handshake',
  smtp: 'tests after SMTP handshake',
};

function kv(ev: Ev, skip: ReadonlySet<string> = RECORD_FIELDS): string {
  let out = '';
  for (const [k, v] of Object.entries(ev)) {
    if (skip.has(k) || v === undefined) continue;
    let s = str(v) ?? 'null';
    if (s === '' || /[\s"=]/.test(s)) s = JSON.stringify(s);
    out += ` ${k}=${s}`;
  }
  return out;
}

/** ` after CMD` when the last command is known (`after`; older records: `phase`). */
function afterCmd(ev: Ev): string {
  const p = str(ev['after'] ?? ev['phase']);
  return p !== undefined ? ` after ${p}` : '';
}

/** `: sample` when there is one. */
function sample(ev: Ev): string {
  const s = str(ev['sample']);
  return s !== undefined ? `: ${s}` : '';
}

/** The Postfix smtpd "whatsup" tail: "; from=<a>, to=<b>, proto=ESMTP, helo=<h>" with what is known. */
function envelope(ev: Ev): string {
  const parts: string[] = [];
  const from = str(ev['from']);
  const to = str(ev['to']);
  const helo = str(ev['helo']);
  if (from !== undefined) parts.push(`from=<${from}>`);
  if (to !== undefined) parts.push(`to=<${to}>`);
  parts.push(`proto=${str(ev['proto']) ?? (helo === undefined ? 'SMTP' : 'ESMTP')}`);
  if (helo !== undefined) parts.push(`helo=<${helo}>`);
  return `; ${parts.join(', ')}`;
}

type Render = (ev: Ev, a: string) => string;

const RENDER: Readonly<Record<string, Render>> = {
  [EV.CONNECT]: (ev, a) => `CONNECT from ${a} to ${addr(ev['local'], ev['local_port'])}`,
  [EV.PASS_NEW]: (_ev, a) => `PASS NEW ${a}`,
  [EV.PASS_OLD]: (_ev, a) => `PASS OLD ${a}`,
  [EV.ALLOWLISTED]: (_ev, a) => `ALLOWLISTED ${a}`,
  [EV.DENYLISTED]: (_ev, a) => `DENYLISTED ${a}`,
  [EV.ALLOWLIST_SPF]: (ev) => `ALLOWLIST SPF ${str(ev['domain']) ?? 'unknown'} entries ${str(ev['entries']) ?? '0'} added ${str(ev['added']) ?? '0'} removed ${str(ev['removed']) ?? '0'}${ev['error'] !== undefined ? `: ${str(ev['error'])}` : ''}`,
  [EV.PREGREET]: (ev, a) => `PREGREET ${str(ev['bytes']) ?? 'unknown'} after ${after(ev)} from ${a}${sample(ev)}`,
  [EV.HANGUP]: (ev, a) => {
    const p = str(ev['phase']);
    return `HANGUP after ${after(ev)} from ${a} in ${p === undefined ? 'tests' : PHASE_TEXT[p] ?? p}`;
  },
  [EV.DNSBL]: (ev, a) => `DNSBL rank ${str(ev['score'] ?? ev['rank'] ?? ev['count']) ?? 'unknown'} for ${a}`,
  [EV.COMMAND_PIPELINING]: (ev, a) => `COMMAND PIPELINING from ${a}${afterCmd(ev)}${sample(ev)}`,
  [EV.NON_SMTP_COMMAND]: (ev, a) => `NON-SMTP COMMAND from ${a}${afterCmd(ev)}${sample(ev)}`,
  // postscreen prints the offending line here ("after <line>"), not the previous command.
  [EV.BARE_NEWLINE]: (ev, a) => (ev['sample'] !== undefined ? `BARE NEWLINE from ${a} after ${str(ev['sample']) ?? ''}` : `BARE NEWLINE from ${a}${afterCmd(ev)}`),
  [EV.COMMAND_TIME_LIMIT]: (ev, a) => `COMMAND TIME LIMIT from ${a}${afterCmd(ev)}`,
  [EV.COMMAND_COUNT_LIMIT]: (ev, a) => `COMMAND COUNT LIMIT from ${a}${afterCmd(ev)}`,
  [EV.COMMAND_LENGTH_LIMIT]: (ev, a) => `COMMAND LENGTH LIMIT from ${a}${afterCmd(ev)}`,
  [EV.COMMAND_ERROR_LIMIT]: (ev, a) => `COMMAND ERROR LIMIT from ${a}${afterCmd(ev)}`,
  [EV.NOQUEUE]: (ev, a) => {
    const cmd = str(ev['phase']) ?? 'RCPT';
    const reply = str(ev['reply']) ?? str(ev['reason']) ?? 'rejected';
    return `NOQUEUE: reject: ${cmd} from ${a}: ${reply}${envelope(ev)}`;
  },
  [EV.GREYLIST]: (ev, a) => `GREYLIST ${a}${ev['reason'] !== undefined ? `: ${str(ev['reason'])}` : ''}`,
  // postscreen_smtpd.c's text: DATA (or BDAT) after MAIL from a client whose every RCPT was refused.
  [EV.DATA_WITHOUT_VALID_RCPT]: (ev, a) => `${str(ev['command']) === 'BDAT' ? 'BDAT' : 'DATA'} without valid RCPT from ${a}`,
  [EV.PREGREET_LIMIT]: (ev, a) => `PREGREET LIMIT ${str(ev['bytes']) ?? 'unknown'} bytes from ${a}: ${str(ev['outcome']) ?? 'unknown'}`,
  [EV.TLS_FAIL]: (ev, a) => `TLS FAIL from ${a}: ${str(ev['reason']) ?? 'unknown'}${num(ev['after_ms']) !== undefined ? ` after ${formatDelay(num(ev['after_ms']) ?? 0)}` : ''}`,
  [EV.SOCKET_ERROR]: (ev, a) => `SOCKET ERROR from ${a}: ${str(ev['code']) ?? 'unknown'}${ev['phase'] !== undefined ? ` in ${str(ev['phase'])}` : ''}`,
  [EV.BACKEND_OK]: (ev) => `BACKEND OK ${str(ev['backend']) ?? 'unknown'}${ev['mode'] !== undefined ? ` (${str(ev['mode'])})` : ''}`,
  [EV.DNSBL_SITE]: (ev) => `DNSBL SITE ${str(ev['site']) ?? 'unknown'} ${str(ev['state']) ?? 'unknown'}${ev['reason'] !== undefined ? `: ${str(ev['reason'])}` : ''}`,
  [EV.DNSBL_WARNING]: (ev) => `DNSBL WARNING ${str(ev['site']) ?? 'unknown'}: ${str(ev['reason']) ?? 'unknown'}`,
  [EV.START_FAILED]: (ev) => `START FAILED: ${str(ev['message']) ?? str(ev['code']) ?? 'unknown'}`,
  [EV.SIGNAL]: (ev) => `SIGNAL ${str(ev['signal']) ?? 'unknown'}: ${str(ev['action']) ?? 'unknown'}`,
  [EV.RELOAD]: (ev) => `RELOAD ${ev['ok'] === false ? `failed: ${str(ev['error']) ?? 'unknown'}` : `generation ${str(ev['generation']) ?? 'unknown'}`}`,
  [EV.INTERNAL_ERROR]: (ev, a) => `INTERNAL ERROR in ${str(ev['where']) ?? 'unknown'}${ev['client'] !== undefined ? ` for ${a}` : ''}: ${str(ev['error']) ?? 'unknown'}`,
  [EV.DISCONNECT]: (_ev, a) => `DISCONNECT ${a}`,
  [EV.ALL_PORTS_BUSY]: (_ev, a) => `NOQUEUE: reject: CONNECT from ${a}: all server ports busy`,
  [EV.TOO_MANY_CONNECTIONS]: (_ev, a) => `NOQUEUE: reject: CONNECT from ${a}: too many connections`,
  [EV.HANDOFF]: (ev, a) =>
    `HANDOFF ${a} to ${str(ev['backend']) ?? 'unknown'}${ev['backend_name'] !== undefined ? ` [${str(ev['backend_name']) ?? ''}]` : ''}` +
    ` (${[str(ev['mode']), str(ev['verdict'])].filter((x) => x !== undefined).join(', ') || 'unknown'})`,
  [EV.ROUTE_FALLBACK]: (ev, a) =>
    `ROUTE FALLBACK for ${a}: backend ${str(ev['backend_name']) ?? 'unknown'} (${str(ev['backend']) ?? 'unknown'}) is down; ${str(ev['to']) === 'tempfail' ? '421' : 'to the default backend'}`,
  [EV.HANDOFF_FALLBACK]: (ev, a) =>
    `HANDOFF FALLBACK for ${a} at ${str(ev['stage']) ?? 'unknown'}: ${str(ev['reason']) ?? 'unknown'}; 450 at RCPT, reconnect`,
  [EV.BACKEND_EHLO]: (ev) => {
    const offered = ev['offered'];
    const list = Array.isArray(offered) ? offered.map((x) => str(x)).join(' ') : undefined;
    return `BACKEND EHLO ${str(ev['backend']) ?? 'unknown'} ${str(ev['state']) ?? 'unknown'}` +
      `${list !== undefined ? `: offered ${list || '(nothing)'}` : ''}${ev['reason'] !== undefined ? `: ${str(ev['reason'])}` : ''}`;
  },
  [EV.BACKEND_FAIL]: (ev, a) =>
    `BACKEND FAIL ${str(ev['backend']) ?? 'unknown'} at ${str(ev['stage']) ?? 'unknown'} ${ev['probe'] === true ? '(probe)' : `for ${a}`}` +
    `${ev['reason'] !== undefined ? `: ${str(ev['reason'])}` : ''}${ev['detail'] !== undefined ? `: ${str(ev['detail'])}` : ''}`,
  [EV.PROXY_FAIL]: (ev) =>
    `PROXY FAIL from [${str(ev['peer']) ?? str(ev['client']) ?? 'unknown'}]: ${str(ev['reason']) ?? 'unknown'}`,
  [EV.STRESS]: (ev) => {
    const s = str(ev['state'] ?? ev['action']);
    const leaving = s === 'leave' || s === 'off' || s === 'false' || s === 'leaving';
    return `${leaving ? 'leaving' : 'entering'} STRESS mode with ${str(ev['count'] ?? ev['open']) ?? 'unknown'} connections`;
  },
  [EV.CACHE]: (ev) => `cache ${str(ev['file']) ?? 'memory'} ${str(ev['op']) ?? 'unknown'}:` +
    `${ev['entries'] !== undefined ? ` entries=${str(ev['entries'])}` : ''}` +
    `${ev['reason'] !== undefined ? ` ${str(ev['reason'])}` : ''}`,
  [EV.CACHE_ADMIN]: (ev) => `CACHE ADMIN ${str(ev['op']) ?? 'unknown'}${ev['address'] !== undefined ? ` ${str(ev['address'])}` : ''}` +
    `${ev['entries'] !== undefined ? ` entries=${str(ev['entries'])}` : ''} by ${str(ev['by']) ?? 'unknown'}`,
  [EV.STARTED]: (ev) => {
    const l = ev['listen'];
    const listen = Array.isArray(l) ? l.map((x) => str(x)).join(',') : str(l) ?? 'unknown';
    return `daemon started -- listen=${listen} backend=${str(ev['backend']) ?? 'unknown'} handoff=${str(ev['handoff']) ?? 'unknown'}`;
  },
  [EV.STOPPING]: (ev) => `terminating on signal ${str(ev['signal']) ?? 'unknown'}` +
    `${ev['open'] !== undefined ? `, draining ${str(ev['open'])} sessions` : ''}` +
    `${num(ev['drain_ms']) !== undefined ? ` for up to ${formatDelay(num(ev['drain_ms']) ?? 0)}s` : ''}`,
  [EV.STOPPED]: (ev) => `stopped${ev['forced'] === true || (num(ev['forced']) ?? 0) > 0 ? ` (forced: ${str(ev['forced'])})` : ''}`,
  [EV.LOG_DROPPED]: (ev) => `LOG DROPPED ${str(ev['dropped']) ?? 'unknown'} lines (${str(ev['destination']) ?? 'unknown'} could not keep up), ` +
    `${str(ev['total']) ?? 'unknown'} since start`,
  [EV.LOG_REOPEN]: (ev) => `LOG REOPEN ${str(ev['file']) ?? 'unknown'}${ev['error'] !== undefined ? `: ${str(ev['error'])}` : ''}`,
  [EV.WORKER_STARTED]: (ev) => `WORKER STARTED ${num(ev['worker']) ?? '?'} pid ${num(ev['pid']) ?? '?'}`,
  [EV.WORKER_EXITED]: (ev) => `WORKER EXITED ${num(ev['worker']) ?? '?'} pid ${num(ev['pid']) ?? '?'}` +
    `${ev['signal'] !== null && ev['signal'] !== undefined ? ` on signal ${str(ev['signal']) ?? '?'}` : ` with code ${num(ev['code']) ?? '?'}`}`,
  [EV.ACCEPT_ERROR]: (ev) => `accept on ${str(ev['listener']) ?? 'unknown'}: ${str(ev['code']) ?? 'unknown'}`,
  [EV.STORE_FAIL]: (ev) => `STORE FAIL ${str(ev['store']) ?? 'unknown'} ${str(ev['url']) ?? 'unknown'}: ${str(ev['reason']) ?? 'unknown'}`,
  [EV.STORE_OK]: (ev) => `STORE OK ${str(ev['store']) ?? 'unknown'} ${str(ev['url']) ?? 'unknown'}` +
    `${num(ev['down_ms']) !== undefined ? ` after ${formatDelay(num(ev['down_ms']) ?? 0)}s down` : ''}`,
  [EV.POLICY]: (ev, a) => `POLICY ${str(ev['decision']) ?? 'unknown'} for ${a}` +
    `${ev['stage'] !== undefined ? ` at ${str(ev['stage'])}` : ''}${ev['failure'] !== undefined ? `: ${str(ev['failure'])}` : ''}`,
  [EV.POLICY_WARNING]: (ev) => `POLICY WARNING ${str(ev['reason']) ?? 'unknown'}${ev['detail'] !== undefined ? `: ${str(ev['detail'])}` : ''}`,
  [EV.POLICY_BREAKER]: (ev) => `POLICY BREAKER ${str(ev['state']) ?? 'unknown'}${ev['reason'] !== undefined ? `: ${str(ev['reason'])}` : ''}`,
};

// XXX Last guard against log injection: a raw CR/LF would start a forged syslog line.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/g;
// eslint-disable-next-line no-control-regex
const HAS_CONTROL = /[\x00-\x1f\x7f]/;

/** formatPostscreen - the postscreen-style message text for one event record (no time/program prefix). */
export function formatPostscreen(ev: Record<string, unknown>): string {
  return formatEvent(str(ev['event']), ev);
}

/** formatEvent - formatPostscreen() of an event given apart from its fields (log/emit.ts: no record to build). */
export function formatEvent(name: string | undefined, ev: Record<string, unknown>): string {
  const render = name !== undefined ? RENDER[name] : undefined;
  let text: string;
  try {
    if (render !== undefined) {
      text = render(ev, addr(ev['client'], ev['port']));
      // Shadow mode: what would have happened, never mistaken for a real rejection (see above).
      const would = ev['would'];
      if (would !== undefined && ev['action'] === 'shadow') text = `SHADOW (would ${str(would) ?? 'unknown'}): ${text}`;
    }
    else if (name !== undefined) text = `${name}${kv(ev)}`;
    else text = `${str(ev['msg']) ?? ''}${kv(ev)}`.trimStart();
  } catch {
    // A field JSON cannot render (a cycle, a BigInt inside an object): say so rather than lose the line.
    text = `${name ?? 'EVENT'} (fields not renderable)`;
  }
  return HAS_CONTROL.test(text) ? text.replace(CONTROL, '?') : text; // test first: no new string in the usual case
}
