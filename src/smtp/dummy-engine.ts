/*
 * smtp/dummy-engine.ts - postscreen's built-in SMTP engine, as a pure state machine.
 *
 * Exports: DummyEngine, EngineOutput, EngineOptions.
 *
 * No sockets, no timers, no logger: the session feeds it command lines (from
 * LineReader) and the expiry of its command timer; the engine answers through
 * EngineOutput (send, close, event). Behaviour follows postscreen_smtpd.c:
 * - HELO/EHLO store the name (first word) and end any transaction; no name: 501.
 * - MAIL needs no HELO (postscreen_helo_required = no), refuses a nested MAIL,
 *   needs a ':'; it never rejects the sender: 250 2.1.0 Ok.
 * - RCPT needs MAIL and a ':'; every recipient is refused: with the enforced
 *   reply (550 ...) or, for a client still under test, 450 4.3.2. Each one is
 *   logged as NOQUEUE with helo, from, to, proto and the reason.
 * - DATA and BDAT are never accepted: 501/503/554 as postscreen, then close;
 *   after MAIL (every RCPT refused) DATA WITHOUT VALID RCPT is logged first
 *   (postscreen hangs up: a legitimate client never gets there, because every
 *   RCPT was refused and PIPELINING was not offered).
 * - RSET, NOOP: 250 2.0.0 Ok. QUIT: 221 and close.
 * - STARTTLS (opts.tls: a certificate is configured): offered in the EHLO
 *   reply; STARTTLS (no argument, else 501) gets 220 2.0.0 Ready to start TLS
 *   and out.startTls(): the session upgrades the socket and discards any
 *   input pipelined after the command (CVE-2011-0411). The engine forgets
 *   HELO and the transaction (RFC 3207 4.2); under TLS STARTTLS is no longer
 *   offered and gets 554 5.5.1. Without TLS: 502 5.5.1. VRFY, ETRN, AUTH, XCLIENT,
 *   XFORWARD and anything else: 502 5.5.2 Error: command not recognized
 *   (postscreen: VRFY gets the RCPT reply, ETRN "458 Unable to queue messages").
 * - Limits: more than commandCountLimit commands (QUIT excepted, every line
 *   counts, as in postscreen) -> COMMAND COUNT LIMIT; the reader's overlong
 *   line -> COMMAND LENGTH LIMIT; the session's command timer -> COMMAND TIME
 *   LIMIT; hardErrorLimit error replies (4xx/5xx to a command, RCPT refusals
 *   included, as smtpd_hard_error_limit counts them; postscreen has no such
 *   limit) -> COMMAND ERROR LIMIT, at once after the reply that reached it.
 *   Each logs one event, sends its 421 and closes.
 * - Deep tests (opts.deep; checks/deep.ts), per command in postscreen's
 *   order: bare newline (checks/bare-newline.ts), non-SMTP command, unknown
 *   verbs only (checks/non-smtp.ts), pipelining, BDAT excepted
 *   (checks/pipelining.ts); then, at RCPT, the due tests that have not
 *   failed pass. A failure logs COMMAND PIPELINING / NON-SMTP COMMAND /
 *   BARE NEWLINE {after, sample, action} and applies the action: drop sends
 *   the test's 521 and closes; enforce refuses later recipients with the
 *   test's 550 (the first enforced failure of the session keeps its reply);
 *   ignore goes on; shadow logs `would` too and goes on.
 * Commands are recognised by a small hand parser of the first word (split on
 * SP only, like postscreen's mystrtok(" ")), case-insensitive, no regex, no
 * toString of the line; addresses by smtp/address.ts. Client text that is
 * kept (HELO name, addresses) is escaped once, when stored, so every event
 * field built from it is safe.
 * - Same-connection handoff (deep.after_pass: handoff; opts.keepEnvelope and
 *   out.handover): at a RCPT that completes the due deep tests (none failed,
 *   nothing enforced), the engine offers the session the raw envelope (the
 *   last HELO/EHLO line, the MAIL line, this RCPT line, copied as received)
 *   instead of refusing the recipient. When the session takes it, the engine
 *   answers nothing until refuseHandedRcpt() (the fallback: NOQUEUE and the
 *   450, as if it had never been offered) or for good (the backend took over).
 * After close() the engine ignores every input.
 */
import { EV, type EventName } from '../log/events.js';
import { escapeClientText } from '../util/escape.js';
import { stripCrlf, type Replies } from './replies.js';
import { extractAddress } from './address.js';
import { applyAction } from '../checks/check.js';
import type { DeepTestId, DeepTests } from '../checks/deep.js';
import { bareNewline, bareNewlineFields } from '../checks/bare-newline.js';
import { nonSmtpCommand, nonSmtpFields } from '../checks/non-smtp.js';
import { pipelined, pipeliningFields } from '../checks/pipelining.js';

export interface EngineOutput {
  /** Write to the client. */
  send(text: string): void;
  /** After the last send: close the connection. */
  close(): void;
  /** One log event (EV.NOQUEUE, the COMMAND ... LIMIT events, the deep tests' events). */
  event(name: EventName, fields: Record<string, unknown>): void;
  /**
   * STARTTLS accepted: send `reply` (220 Ready to start TLS), then upgrade the
   * connection; nothing more is read from the plain socket. Absent: the reply is sent only.
   */
  startTls?(reply: string): void;
  /** The input received after the current command, for the COMMAND PIPELINING sample (LineReader.rest()). */
  pending?(): Buffer;
  /**
   * deep.after_pass handoff: every due deep test passed at this RCPT. Return
   * true when the session takes the connection over: it answers this RCPT
   * itself (the backend's reply, or refuseHandedRcpt() when it falls back).
   * Called only with opts.keepEnvelope.
   */
  handover?(env: Envelope): boolean;
  /**
   * policy.at_rcpt: a RCPT to refuse. Return true when the session asks the
   * policy service first: it then calls answerRcpt() with the service's reply
   * (or null: the engine's own) and reads on.
   */
  askRcpt?(helo: string, from: string, to: string): boolean;
}

/** What a same-connection handoff replays to the backend: the client's own command lines, terminators stripped. */
export interface Envelope {
  /** The last HELO or EHLO line, or null when the client sent none. */
  heloLine: Buffer | null;
  /** Its name argument (the XCLIENT HELO attribute), or null. */
  heloName: Buffer | null;
  /** The MAIL line of the transaction. */
  mailLine: Buffer;
  /** The RCPT line being answered. */
  rcptLine: Buffer;
}

export interface EngineOptions {
  /** From makeReplies. */
  replies: Replies;
  /** Full '550 5.7.1 ...\r\n' to give at RCPT (enforce), or null: 450 4.3.2 (still under test). */
  rejectReply: string | null;
  /** Short reason for the NOQUEUE log (e.g. 'denylist', 'pregreet'). */
  rejectReason: string;
  commandCountLimit: number;
  /** Error replies (4xx/5xx) before 421 "too many errors"; 0 or absent: no limit. */
  hardErrorLimit?: number;
  /** The deep tests due in this session, or null / absent for none. */
  deep?: DeepTests | null;
  /** STARTTLS is offered (a certificate is configured). */
  tls?: boolean;
  /** EHLO replies to use instead of replies.ehlo / ehloTls (learned from the backend: handoff/ehlo.ts). */
  ehlo?: { plain: string; tls: string } | null;
  /** Keep the raw HELO and MAIL lines and offer the envelope to out.handover (deep.after_pass: handoff). */
  keepEnvelope?: boolean;
}

/** Longest HELO name or address kept for the log, in client bytes. */
const MAX_KEPT = 256;
const SP = 0x20;
const COLON = 0x3a;
const NOTHING = Buffer.alloc(0);

/** The log event of each deep test. */
const DEEP_EVENT: { readonly [K in DeepTestId]: EventName } = {
  pipelining: EV.COMMAND_PIPELINING,
  non_smtp: EV.NON_SMTP_COMMAND,
  bare_newline: EV.BARE_NEWLINE,
};

// Command ids. Names are what `where` reports ("after RCPT").
const C_UNKNOWN = 0, C_HELO = 1, C_EHLO = 2, C_MAIL = 3, C_RCPT = 4, C_DATA = 5, C_BDAT = 6,
  C_RSET = 7, C_NOOP = 8, C_QUIT = 9, C_STARTTLS = 10, C_DISABLED = 11;
const UNIMPLEMENTED = 'UNIMPLEMENTED';

/** Four upper-case ASCII letters packed in 32 bits. */
function pack4(s: string): number {
  return ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
}

const FOUR: ReadonlyMap<number, [number, string]> = new Map(
  ([
    ['HELO', C_HELO], ['EHLO', C_EHLO], ['MAIL', C_MAIL], ['RCPT', C_RCPT], ['DATA', C_DATA],
    ['BDAT', C_BDAT], ['RSET', C_RSET], ['NOOP', C_NOOP], ['QUIT', C_QUIT],
    ['VRFY', C_DISABLED], ['ETRN', C_DISABLED], ['AUTH', C_DISABLED],
  ] as const).map(([name, id]) => [pack4(name), [id, name]]),
);
const LONG: readonly [string, number][] = [['STARTTLS', C_STARTTLS], ['XCLIENT', C_DISABLED], ['XFORWARD', C_DISABLED]];

/*
 * b & 0xDF maps 'a'..'z' to 'A'..'Z'; compared with an upper-case letter it
 * matches exactly that letter in either case and nothing else.
 */
function upperAt(line: Buffer, i: number): number {
  return (line[i] as number) & 0xdf;
}

function sameWord(line: Buffer, start: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (upperAt(line, start + i) !== word.charCodeAt(i)) return false;
  return true;
}

/**
 * stripCrlf(reply), the same string for the same reply: every session refused with the shared 550
 * shares its log text instead of holding a slice of its own.
 */
const NO_RCPTS: readonly string[] = Object.freeze([]);
let lastReply = '';
let lastLogText = '';
function logText(reply: string): string {
  if (reply !== lastReply) {
    lastReply = reply;
    lastLogText = stripCrlf(reply);
  }
  return lastLogText;
}

export class DummyEngine {
  // The options the engine reads after its constructor, copied: the options object itself is not
  // kept (~100 B per held session).
  readonly #countLimit: number;
  readonly #keepEnvelope: boolean;
  readonly #tls: boolean;
  readonly #ehlo: { plain: string; tls: string } | null;
  readonly #out: EngineOutput;
  readonly #r: Replies;
  #helo: string | null = null;
  #mailFrom: string | null = null;
  #rcptReply: string;
  #rcptReplyLog: string;
  #reason: string;
  #finalReply: string | null = null;
  #protocol: 'SMTP' | 'ESMTP' = 'SMTP';
  #where = 'CONNECT';
  /** The RCPT reply is already an enforced refusal (a deep test's enforce then keeps it). */
  #enforced: boolean;
  readonly #deep: DeepTests | null;
  readonly #errorLimit: number;
  /** Error replies sent (hard error limit). */
  errors = 0;
  /** Recipients of the current transaction (escaped), cleared by HELO/EHLO/RSET/MAIL. */
  get rcpts(): readonly string[] {
    return this.#rcpts ?? NO_RCPTS;
  }
  /** Made at the first RCPT: most held sessions never send one. */
  #rcpts: string[] | null = null;
  commands = 0;
  closed = false;
  /** STARTTLS accepted: the rest of the session is inside TLS. */
  tlsActive = false;
  /** Raw copies for the same-connection handoff (opts.keepEnvelope only). */
  #heloLine: Buffer | null = null;
  #heloName: Buffer | null = null;
  #mailLine: Buffer | null = null;
  /** A RCPT offered to out.handover and not answered yet: its escaped address (for refuseHandedRcpt's NOQUEUE). */
  #handedTo: string | null = null;

  constructor(opts: EngineOptions, out: EngineOutput) {
    this.#countLimit = opts.commandCountLimit;
    this.#keepEnvelope = opts.keepEnvelope === true;
    this.#tls = opts.tls === true;
    this.#ehlo = opts.ehlo ?? null;
    this.#out = out;
    this.#r = opts.replies;
    this.#rcptReply = opts.rejectReply ?? opts.replies.deferRcpt;
    this.#rcptReplyLog = logText(this.#rcptReply);
    this.#reason = opts.rejectReason;
    this.#enforced = opts.rejectReply !== null;
    this.#deep = opts.deep ?? null;
    this.#errorLimit = opts.hardErrorLimit ?? 0;
  }

  /** The output the engine was made with (session/dummy.ts finds its session's port through it). */
  get output(): EngineOutput { return this.#out; }
    get helo(): string | null { return this.#helo; }
  get mailFrom(): string | null { return this.#mailFrom; }
  /** 'ESMTP' after EHLO (never downgraded by a later HELO, as postscreen). */
  get protocol(): 'SMTP' | 'ESMTP' { return this.#protocol; }
  /** Last command seen, postscreen's "after X": CONNECT, HELO, ..., UNIMPLEMENTED. */
  get where(): string { return this.#where; }

  /** A test failed with `enforce` mid-session: refuse later recipients with this reply. */
  setRejectReply(reply: string, reason: string): void {
    this.#enforced = true;
    this.#rcptReply = reply;
    this.#rcptReplyLog = logText(reply);
    this.#reason = reason;
  }

  /** postscreen's PSC_SMTPD_X21: answer the next command (QUIT excepted) with `reply` and close. */
  setFinalReply(reply: string): void {
    this.#finalReply = reply;
  }

  /**
   * One command line, terminator stripped; `bareLf`: it ended in LF alone;
   * `buffered`: bytes already received after it (LineSink's), for the deep tests.
   */
  onLine(line: Buffer, bareLf: boolean, buffered = 0): void {
    if (this.closed || this.#handedTo !== null) return;
    const end = line.length;
    let i = 0;
    while (i < end && line[i] === SP) i++;
    const verbStart = i;
    while (i < end && line[i] !== SP) i++;
    const verbLen = i - verbStart;
    const argStart = i;

    let cmd = C_UNKNOWN;
    let name = UNIMPLEMENTED;
    if (verbLen === 4) {
      const key = ((upperAt(line, verbStart) << 24) | (upperAt(line, verbStart + 1) << 16) |
        (upperAt(line, verbStart + 2) << 8) | upperAt(line, verbStart + 3)) >>> 0;
      const hit = FOUR.get(key);
      if (hit !== undefined) [cmd, name] = hit;
    } else if (verbLen === 7 || verbLen === 8) {
      for (const [word, id] of LONG) {
        if (word.length === verbLen && sameWord(line, verbStart, word)) {
          cmd = id;
          name = word;
          break;
        }
      }
    }
    const savedWhere = this.#where;
    this.#where = name;

    if (this.#finalReply !== null && cmd !== C_QUIT) {
      this.#finish(this.#finalReply);
      return;
    }
    const deep = this.#deep;
    if (deep !== null && deep.todo !== 0 &&
      this.#deepTests(deep, cmd, name, savedWhere, line, verbStart, argStart, bareLf, buffered)) return;
    if (++this.commands > this.#countLimit && cmd !== C_QUIT) {
      this.#out.event(EV.COMMAND_COUNT_LIMIT, { after: savedWhere, count: this.commands, limit: this.#countLimit });
      this.#finish(this.#r.tooManyCommands);
      return;
    }
    this.#dispatch(cmd, line, argStart, end);
    if (!this.closed && this.#errorLimit > 0 && this.errors >= this.#errorLimit) {
      this.#out.event(EV.COMMAND_ERROR_LIMIT, { after: name, count: this.errors, limit: this.#errorLimit });
      this.#finish(this.#r.tooManyErrors);
    }
  }

  /** The deep tests due on this command, in postscreen's order; true when a `drop` ended the session. */
  #deepTests(deep: DeepTests, cmd: number, name: string, savedWhere: string, line: Buffer,
    verbStart: number, verbEnd: number, bareLf: boolean, buffered: number): boolean {
    if (deep.due('bare_newline') && bareNewline(bareLf)) {
      if (this.#deepFail(deep, 'bare_newline', bareNewlineFields(savedWhere, line))) return true;
    }
    if (cmd === C_UNKNOWN && deep.due('non_smtp') && nonSmtpCommand(line, verbStart, verbEnd, deep.opts.forbidden) !== null) {
      if (this.#deepFail(deep, 'non_smtp', nonSmtpFields(savedWhere, line))) return true;
    }
    if (deep.due('pipelining') && pipelined(cmd === C_BDAT, buffered)) {
      if (this.#deepFail(deep, 'pipelining', pipeliningFields(name, this.#out.pending?.() ?? NOTHING))) return true;
    }
    if (cmd === C_RCPT) deep.rcpt();
    return false;
  }

  /** Log a deep test's failure and apply its action; true when the session was dropped. */
  #deepFail(deep: DeepTests, id: DeepTestId, fields: { after: string; sample: string }): boolean {
    const action = deep.fail(id);
    if (action === 'shadow') this.#out.event(DEEP_EVENT[id], { after: fields.after, sample: fields.sample, action, would: deep.opts[id].would ?? 'reject' });
    else this.#out.event(DEEP_EVENT[id], { after: fields.after, sample: fields.sample, action });
    switch (applyAction(action)) {
      case 'drop':
        this.#finish(this.#r.dropFor(id));
        return true;
      case 'enforce':
        if (!this.#enforced) this.setRejectReply(this.#r.reject(id), id);
        return false;
      case 'continue':
      case 'shadow':
        return false;
    }
  }

  /** The reader found a line longer than the limit: COMMAND LENGTH LIMIT. */
  onOverlong(length: number): void {
    if (this.closed) return;
    this.#out.event(EV.COMMAND_LENGTH_LIMIT, { after: this.#where, length });
    this.#finish(this.#r.commandTooLong);
  }

  /** The session's command timer expired: COMMAND TIME LIMIT. */
  onTimeout(): void {
    if (this.closed) return;
    this.#out.event(EV.COMMAND_TIME_LIMIT, { after: this.#where });
    this.#finish(this.#r.timeout);
  }

  #dispatch(cmd: number, line: Buffer, argStart: number, end: number): void {
    const r = this.#r;
    switch (cmd) {
      case C_HELO:
      case C_EHLO: {
        const word = nextWord(line, argStart, end);
        if (word < 0) {
          this.#reply(cmd === C_HELO ? r.heloSyntax : r.ehloSyntax);
          return;
        }
        let wordEnd = word;
        while (wordEnd < end && line[wordEnd] !== SP) wordEnd++;
        this.#helo = escapeClientText(line.subarray(word, wordEnd), MAX_KEPT);
        if (this.#keepEnvelope) {
          this.#heloLine = Buffer.from(line);
          this.#heloName = this.#heloLine.subarray(word, wordEnd);
        }
        this.#endTransaction();
        if (cmd === C_EHLO) this.#protocol = 'ESMTP';
        const ehlo = this.#ehlo;
        this.#reply(cmd === C_HELO ? r.helo : this.#tls && !this.tlsActive ? ehlo?.tls ?? r.ehloTls : ehlo?.plain ?? r.ehlo);
        return;
      }
      case C_MAIL: {
        if (this.#mailFrom !== null) {
          this.#reply(r.nestedMail);
          return;
        }
        const colon = line.indexOf(COLON, argStart);
        if (colon < 0 || colon >= end) {
          this.#reply(r.mailSyntax);
          return;
        }
        this.#endTransaction();
        this.#mailFrom = extractAddress(line, colon + 1, end, MAX_KEPT);
        if (this.#keepEnvelope) this.#mailLine = Buffer.from(line);
        this.#reply(r.mailOk);
        return;
      }
      case C_RCPT: {
        if (this.#mailFrom === null) {
          this.#reply(r.needMail);
          return;
        }
        const colon = line.indexOf(COLON, argStart);
        if (colon < 0 || colon >= end) {
          this.#reply(r.rcptSyntax);
          return;
        }
        const to = extractAddress(line, colon + 1, end, MAX_KEPT);
        (this.#rcpts ??= []).push(to);
        if (this.#mailLine !== null && !this.#enforced && this.#deep !== null && this.#deep.todo !== 0 &&
          this.#deep.complete && this.#out.handover !== undefined) {
          this.#handedTo = to;
          if (this.#out.handover({ heloLine: this.#heloLine, heloName: this.#heloName, mailLine: this.#mailLine, rcptLine: Buffer.from(line) })) return;
          this.#handedTo = null;
        }
        if (this.#out.askRcpt !== undefined) {
          this.#handedTo = to;
          if (this.#out.askRcpt(this.#helo ?? '', this.#mailFrom, to)) return;
          this.#handedTo = null;
        }
        this.#refuseRcpt(to);
        return;
      }
      case C_DATA:
        if (nextWord(line, argStart, end) >= 0) this.#finish(r.dataSyntax);
        else if (this.#mailFrom === null) this.#finish(r.needRcpt);
        else this.#noValidRcpt('DATA');
        return;
      case C_BDAT:
        if (nextWord(line, argStart, end) < 0) this.#finish(r.bdatSyntax);
        else if (this.#mailFrom === null) this.#finish(r.bdatNeedMail);
        else this.#noValidRcpt('BDAT');
        return;
      case C_RSET:
        this.#endTransaction();
        this.#reply(r.ok);
        return;
      case C_NOOP:
        this.#reply(r.ok);
        return;
      case C_QUIT:
        this.#finish(r.bye);
        return;
      case C_STARTTLS:
        if (!this.#tls) this.#reply(r.notImplemented);
        else if (this.tlsActive) this.#reply(r.tlsActive);
        else if (nextWord(line, argStart, end) >= 0) this.#reply(r.startTlsSyntax);
        else {
          this.tlsActive = true;
          this.#helo = null;
          this.#heloLine = null;
          this.#heloName = null;
          this.#endTransaction();
          if (this.#out.startTls !== undefined) this.#out.startTls(r.startTls);
          else this.#out.send(r.startTls);
        }
        return;
      default:
        this.#reply(r.unrecognized);
        return;
    }
  }

  /** The session could not hand the offered RCPT over: refuse it as if it had never been offered. */
  refuseHandedRcpt(): void {
    const to = this.#handedTo;
    if (to === null || this.closed) return;
    this.#handedTo = null;
    this.#refuseRcpt(to);
    if (!this.closed && this.#errorLimit > 0 && this.errors >= this.#errorLimit) {
      this.#out.event(EV.COMMAND_ERROR_LIMIT, { after: 'RCPT', count: this.errors, limit: this.#errorLimit });
      this.#finish(this.#r.tooManyErrors);
    }
  }

  /** policy.at_rcpt: the answer to the RCPT given to out.askRcpt(): the service's reply (550/450 line, logged with reason policy), or null: the engine's own. */
  answerRcpt(reply: string | null): void {
    const to = this.#handedTo;
    if (to === null || this.closed) return;
    this.#handedTo = null;
    if (reply === null) this.#refuseRcpt(to);
    else {
      this.#out.event(EV.NOQUEUE, {
        reply: stripCrlf(reply), helo: this.#helo ?? '', from: this.#mailFrom, to, proto: this.#protocol, reason: 'policy',
      });
      this.#reply(reply);
    }
    if (!this.closed && this.#errorLimit > 0 && this.errors >= this.#errorLimit) {
      this.#out.event(EV.COMMAND_ERROR_LIMIT, { after: 'RCPT', count: this.errors, limit: this.#errorLimit });
      this.#finish(this.#r.tooManyErrors);
    }
  }

  /** The backend took the offered RCPT: the engine is done. */
  handedOver(): void {
    this.#handedTo = null;
    this.closed = true;
  }

  #refuseRcpt(to: string): void {
    this.#out.event(EV.NOQUEUE, {
      reply: this.#rcptReplyLog, helo: this.#helo ?? '', from: this.#mailFrom, to,
      proto: this.#protocol, reason: this.#reason,
    });
    this.#reply(this.#rcptReply);
  }

  /** DATA or BDAT after MAIL: every RCPT was refused. Logged as postscreen does ("DATA without valid RCPT"), then 554 and close. */
  #noValidRcpt(command: 'DATA' | 'BDAT'): void {
    this.#out.event(EV.DATA_WITHOUT_VALID_RCPT, { command, helo: this.#helo ?? '', from: this.#mailFrom });
    this.#finish(this.#r.noValidRecipients);
  }

  /** A reply to a command; 4xx and 5xx count towards the hard error limit. */
  #reply(text: string): void {
    const c = text.charCodeAt(0);
    if (c === 0x34 /* 4 */ || c === 0x35 /* 5 */) this.errors++;
    this.#out.send(text);
  }

  #endTransaction(): void {
    this.#mailFrom = null;
    this.#mailLine = null;
    if (this.#rcpts !== null) this.#rcpts.length = 0;
  }

  /** Send the last reply and close; later input is ignored. */
  #finish(reply: string): void {
    this.closed = true;
    this.#out.send(reply);
    this.#out.close();
  }
}

/** Index of the first non-SP byte in [from, end), or -1 when there is none. */
function nextWord(line: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (line[i] !== SP) return i;
  return -1;
}
