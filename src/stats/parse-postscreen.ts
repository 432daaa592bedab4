/*
 * stats/parse-postscreen.ts - one postscreen(8)-format syslog line -> Rec.
 *
 * Exports: PostscreenParser (parse(line, rec) -> LineKind).
 * Reads what Postfix's postscreen writes through syslog and what
 * log/postscreen-format.ts renders for smtpscreen:
 *   [<PRI>]STAMP [HOST] TAG[PID]: [warning: ]TEXT
 * STAMP is RFC 3164 "Nov 30 21:54:22" (the year is guessed as syslog readers
 * do: this year, or last year for a month later than now), RFC 3339
 * "2026-11-30T21:54:22.123+00:00" / "...Z", or absent (journal text). TAG is
 * postfix/postscreen (any Postfix instance name before the slash) or
 * smtpscreen; other programs' lines are 'other', as are postscreen lines that
 * are no screening decision (cache cleanup, warnings). TEXT is mapped to the
 * event names and field names of the JSON log; postscreen's old names
 * (WHITELISTED, BLACKLISTED) count as ALLOWLISTED, DENYLISTED. A line with no
 * recognisable shape is 'malformed'. Never throws.
 */
import { EV, eventSpec } from '../log/events.js';
import type { LineKind, Rec } from './record.js';

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const TRAD = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) /;
const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}) /;

/** Postfix's level prefixes: a journal line "<4>warning: ..." has no tag before them. */
const LEVELS = new Set(['warning:', 'error:', 'fatal:', 'panic:']);
const SHADOW = /^SHADOW \(would (reject|drop|defer)\): /;

const HANGUP_PHASE: Readonly<Record<string, string>> = {
  'tests before SMTP handshake': 'pregreet',
  'tests after SMTP handshake': 'dummy',
};

/** "[addr]:port" at or after `from`: [addr, port, index after it], or null. */
function bracket(s: string, from: number): [string, string, number] | null {
  const a = s.indexOf('[', from);
  if (a < 0) return null;
  const b = s.indexOf(']', a + 1);
  if (b < 0) return null;
  let e = b + 1;
  let port = '';
  if (s.charCodeAt(e) === 58 /* : */) {
    let k = e + 1;
    while (k < s.length && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57) k++;
    port = s.slice(e + 1, k);
    e = k;
  }
  return [s.slice(a + 1, b), port, e];
}

/** postscreen's elapsed time "0.31" (seconds) -> ms. */
function secs(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? Math.round(n * 1000) : undefined;
}

export class PostscreenParser {
  readonly #year: number;
  readonly #month: number;

  constructor(now: Date = new Date()) {
    this.#year = now.getFullYear();
    this.#month = now.getMonth();
  }

  parse(line: string, rec: Rec): LineKind {
    let s = line;
    // "<22>" as a syslog datagram starts.
    if (s.charCodeAt(0) === 60 /* < */) {
      const gt = s.indexOf('>');
      if (gt > 1 && gt < 5) s = s.slice(gt + 1);
    }
    rec.t = NaN;
    rec.hour = -1;
    rec.stamp = '';
    rec.level = '';
    let m: RegExpExecArray | null;
    let rest: string;
    if ((m = TRAD.exec(s)) !== null) {
      const mon = MONTHS[m[1] as string];
      if (mon === undefined) return 'malformed';
      const year = mon > this.#month ? this.#year - 1 : this.#year;
      rec.hour = Number(m[3]);
      rec.t = Date.UTC(year, mon, Number(m[2]), rec.hour, Number(m[4]), Number(m[5]));
      rec.stamp = m[0].trimEnd();
      rest = s.slice(m[0].length);
    } else if ((m = ISO.exec(s)) !== null) {
      rec.hour = Number(m[4]);
      rec.t = Date.parse(m[0].trimEnd());
      rec.stamp = m[0].trimEnd();
      rest = s.slice(m[0].length);
    } else {
      rest = s; // journal text: no stamp, maybe no tag
    }
    // [HOST] TAG: the first word that ends in ':' within the next two words.
    let text: string | undefined;
    let tag = '';
    for (let i = 0, from = 0; i < 2; i++) {
      const sp = rest.indexOf(' ', from);
      if (sp < 0) break;
      const word = rest.slice(from, sp);
      if (word.endsWith(':') && !LEVELS.has(word)) {
        tag = word;
        text = rest.slice(sp + 1);
        break;
      }
      from = sp + 1;
    }
    if (text === undefined || !/^[\w./-]+(?:\[\d+\])?:$/.test(tag)) {
      // No tag: postscreen text on its own (journal), or garbage.
      if (rec.stamp === '' && this.#text(rest, rec) === 'event') return 'event';
      return rec.stamp === '' ? 'malformed' : 'other';
    }
    const prog = tag.slice(0, tag.indexOf('[') >= 0 ? tag.indexOf('[') : tag.length - 1);
    if (!prog.endsWith('/postscreen') && prog !== 'postscreen' && prog !== 'smtpscreen') return 'other';
    return this.#text(text, rec);
  }

  #text(text0: string, rec: Rec): LineKind {
    // Shadow mode (log/postscreen-format.ts): "SHADOW (would reject): <the usual line>".
    const sh = SHADOW.exec(text0);
    if (sh !== null) {
      const kind = this.#text(text0.slice(sh[0].length), rec);
      if (kind === 'event') {
        rec.f['action'] = 'shadow';
        rec.f['would'] = sh[1];
      }
      return kind;
    }
    let text = text0;
    rec.level = '';
    for (const lv of ['warning', 'error', 'fatal', 'panic']) {
      if (text.startsWith(`${lv}: `)) {
        rec.level = lv;
        text = text.slice(lv.length + 2);
        break;
      }
    }
    const f: Record<string, unknown> = {};
    rec.f = f;
    rec.client = '';
    rec.port = '';
    const at = (from: number): number => {
      const b = bracket(text, from);
      if (b === null) return -1;
      rec.client = b[0];
      rec.port = b[1];
      return b[2];
    };
    const ev = (name: string): LineKind => {
      rec.event = name;
      return 'event';
    };
    const sp = text.indexOf(' ');
    const w0 = sp < 0 ? text : text.slice(0, sp);
    let m: RegExpExecArray | null;
    switch (w0) {
      case 'CONNECT': {
        const e = at(0);
        if (e < 0) return 'other';
        const l = bracket(text, e);
        if (l !== null) { f['local'] = l[0]; f['local_port'] = l[1]; }
        return ev(EV.CONNECT);
      }
      case 'PASS':
        if (text.startsWith('PASS NEW ') && at(9) >= 0) return ev(EV.PASS_NEW);
        if (text.startsWith('PASS OLD ') && at(9) >= 0) return ev(EV.PASS_OLD);
        return 'other';
      case 'ALLOWLISTED': case 'WHITELISTED':
        return at(0) >= 0 ? ev(EV.ALLOWLISTED) : 'other';
      case 'DENYLISTED': case 'BLACKLISTED':
        return at(0) >= 0 ? ev(EV.DENYLISTED) : 'other';
      case 'PREGREET':
        if ((m = /^PREGREET (\d+) after ([\d.]+) from /.exec(text)) === null) return this.#generic(text, rec);
        f['bytes'] = Number(m[1]);
        f['after_ms'] = secs(m[2]);
        return at(m[0].length - 1) >= 0 ? ev(EV.PREGREET) : 'other';
      case 'HANGUP': {
        if ((m = /^HANGUP after ([\d.]+|unknown) from /.exec(text)) === null) return 'other';
        f['after_ms'] = secs(m[2 - 1]);
        const e = at(m[0].length - 1);
        if (e < 0) return 'other';
        const p = text.startsWith(' in ', e) ? text.slice(e + 4) : '';
        f['phase'] = HANGUP_PHASE[p] ?? p;
        return ev(EV.HANGUP);
      }
      case 'DNSBL':
        if ((m = /^DNSBL rank (-?\d+(?:\.\d+)?) for /.exec(text)) !== null) {
          f['score'] = Number(m[1]);
          return at(m[0].length - 1) >= 0 ? ev(EV.DNSBL) : 'other';
        }
        // Site health, as log/postscreen-format.ts renders it (older logs: the generic NAME key=value form).
        if ((m = /^DNSBL SITE (\S+) (suspended|resumed)(?:: (.*))?$/.exec(text)) !== null) {
          f['site'] = m[1]; f['state'] = m[2];
          if (m[3] !== undefined) f['reason'] = m[3];
          return ev(EV.DNSBL_SITE);
        }
        if ((m = /^DNSBL WARNING (\S+): (\S+)$/.exec(text)) !== null) {
          f['site'] = m[1]; f['reason'] = m[2];
          return ev(EV.DNSBL_WARNING);
        }
        return this.#generic(text, rec);
      case 'COMMAND':
        for (const [p, name] of [['COMMAND PIPELINING from ', EV.COMMAND_PIPELINING], ['COMMAND TIME LIMIT from ', EV.COMMAND_TIME_LIMIT],
          ['COMMAND COUNT LIMIT from ', EV.COMMAND_COUNT_LIMIT], ['COMMAND LENGTH LIMIT from ', EV.COMMAND_LENGTH_LIMIT],
          ['COMMAND ERROR LIMIT from ', EV.COMMAND_ERROR_LIMIT]] as const) {
          if (text.startsWith(p)) return this.#after(text, p.length - 1, name, at, ev, f);
        }
        return 'other';
      case 'NON-SMTP':
        return text.startsWith('NON-SMTP COMMAND from ') ? this.#after(text, 21, EV.NON_SMTP_COMMAND, at, ev, f) : 'other';
      case 'BARE':
        return text.startsWith('BARE NEWLINE from ') ? this.#after(text, 17, EV.BARE_NEWLINE, at, ev, f) : 'other';
      case 'NOQUEUE:': {
        if ((m = /^NOQUEUE: reject: (\S+) from /.exec(text)) === null) return 'other';
        const e = at(m[0].length - 1);
        if (e < 0 || !text.startsWith(': ', e)) return 'other';
        let reply = text.slice(e + 2);
        if (m[1] === 'CONNECT') {
          if (reply.startsWith('all server ports busy')) return ev(EV.ALL_PORTS_BUSY);
          if (reply.startsWith('too many connections')) return ev(EV.TOO_MANY_CONNECTIONS);
        }
        // The envelope tail "; from=<a>, to=<b>, proto=ESMTP, helo=<h>".
        const env = reply.lastIndexOf('; from=<');
        const env2 = env < 0 ? reply.lastIndexOf('; proto=') : env;
        if (env2 >= 0) {
          const tail = reply.slice(env2 + 2);
          reply = reply.slice(0, env2);
          const get = (k: string): string | undefined => new RegExp(`(?:^|, )${k}=<([^>]*)>`).exec(tail)?.[1];
          const from = get('from'); const to = get('to'); const helo = get('helo');
          if (from !== undefined) f['from'] = from;
          if (to !== undefined) f['to'] = to;
          if (helo !== undefined) f['helo'] = helo;
        }
        f['reply'] = reply;
        f['cmd'] = m[1];
        return ev(EV.NOQUEUE);
      }
      case 'DISCONNECT':
        return at(0) >= 0 ? ev(EV.DISCONNECT) : 'other';
      case 'GREYLIST': {
        const e = at(0);
        if (e < 0) return 'other';
        if (text.startsWith(': ', e)) { f['state'] = 'defer'; f['reason'] = text.slice(e + 2); } else f['state'] = 'pass';
        return ev(EV.GREYLIST);
      }
      case 'HANDOFF': {
        if (text.startsWith('HANDOFF FALLBACK for ')) {
          const e = at(21);
          if ((m = /^ at (\S+): (.*?)(?:; 450 at RCPT, reconnect)?$/.exec(text.slice(e))) === null || e < 0) return 'other';
          f['stage'] = m[1]; f['reason'] = m[2];
          return ev(EV.HANDOFF_FALLBACK);
        }
        const e = at(0);
        if (e < 0 || (m = /^ to (\S+) \(([^)]*)\)/.exec(text.slice(e))) === null) return 'other';
        f['backend'] = m[1];
        const parts = (m[2] as string).split(', ');
        if (parts.length === 2) { f['mode'] = parts[0]; f['verdict'] = parts[1]; } else f['verdict'] = parts[0];
        return ev(EV.HANDOFF);
      }
      case 'BACKEND':
        if ((m = /^BACKEND FAIL (\S+) at (\S+) (\(probe\)|for \S+?)(?:: (.*))?$/.exec(text)) !== null) {
          f['backend'] = m[1]; f['stage'] = m[2];
          if (m[3] === '(probe)') f['probe'] = true; else at(m[0].indexOf(' for ') + 4);
          if (m[4] !== undefined) { const c = m[4].indexOf(': '); f['reason'] = c < 0 ? m[4] : m[4].slice(0, c); }
          return ev(EV.BACKEND_FAIL);
        }
        return this.#generic(text, rec);
      case 'entering': case 'leaving':
        if ((m = /^(entering|leaving) STRESS mode with (\d+) connections/.exec(text)) === null) return 'other';
        f['state'] = m[1] === 'entering' ? 'enter' : 'leave';
        f['count'] = Number(m[2]);
        return ev(EV.STRESS);
      default:
        return this.#generic(text, rec);
    }
  }

  /** "NAME from [a]:p after CMD: sample" -> after (and sample). */
  #after(text: string, from: number, name: string, at: (i: number) => number, ev: (n: string) => LineKind, f: Record<string, unknown>): LineKind {
    const e = at(from);
    if (e < 0) return 'other';
    if (text.startsWith(' after ', e)) {
      const r = text.slice(e + 7);
      const c = r.indexOf(': ');
      f[name === EV.BARE_NEWLINE ? 'sample' : 'after'] = c < 0 ? r : r.slice(0, c);
    }
    return ev(name);
  }

  /** smtpscreen's "NAME key=value ..." for events postscreen has no line for (log/postscreen-format.ts). */
  #generic(text: string, rec: Rec): LineKind {
    const m = /^([A-Z][A-Z -]*[A-Z])((?: [a-z_]+=(?:"(?:[^"\\]|\\.)*"|\S*))*)$/.exec(text);
    if (m === null || eventSpec(m[1] as string) === undefined) return 'other';
    rec.event = m[1] as string;
    for (const kv of (m[2] as string).matchAll(/ ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      let v: unknown = kv[2] as string;
      if ((v as string).startsWith('"')) { try { v = JSON.parse(v as string); } catch { /* keep the text */ } }
      else if (/^-?\d+(\.\d+)?$/.test(v as string)) v = Number(v);
      else if (v === 'true' || v === 'false') v = v === 'true';
      rec.f[kv[1] as string] = v;
    }
    if (typeof rec.f['client'] === 'string') rec.client = rec.f['client'];
    if (rec.f['port'] !== undefined) rec.port = String(rec.f['port']);
    return 'event';
  }
}
