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
 * - DATA and BDAT are never accepted: 501/503/554 as postscreen, then close
 *   (postscreen hangs up: a legitimate client never gets there, because every
 *   RCPT was refused and PIPELINING was not offered).
 * - RSET, NOOP: 250 2.0.0 Ok. QUIT: 221 and close.
 * - STARTTLS: 502 5.5.1 (TLS is not offered yet). VRFY, ETRN, AUTH, XCLIENT,
 *   XFORWARD and anything else: 502 5.5.2 Error: command not recognized
 *   (postscreen: VRFY gets the RCPT reply, ETRN "458 Unable to queue messages").
 * - Limits: more than commandCountLimit commands (QUIT excepted, every line
 *   counts, as in postscreen) -> COMMAND COUNT LIMIT; the reader's overlong
 *   line -> COMMAND LENGTH LIMIT; the session's command timer -> COMMAND TIME
 *   LIMIT. Each logs one event, sends its 421 and closes.
 * Commands are recognised by a small hand parser of the first word (split on
 * SP only, like postscreen's mystrtok(" ")), case-insensitive, no regex, no
 * toString of the line. Client text that is kept (HELO name, addresses) is
 * escaped once, when stored, so every event field built from it is safe.
 * After close() the engine ignores every input.
 */
import { EV, type EventName } from '../log/events.js';
import { escapeClientText } from './escape.js';
import { stripCrlf, type Replies } from './replies.js';

export interface EngineOutput {
  /** Write to the client. */
  send(text: string): void;
  /** After the last send: close the connection. */
  close(): void;
  /** One log event (EV.NOQUEUE, EV.COMMAND_COUNT_LIMIT, EV.COMMAND_TIME_LIMIT, EV.COMMAND_LENGTH_LIMIT). */
  event(name: EventName, fields: Record<string, unknown>): void;
}

export interface EngineOptions {
  /** From makeReplies. */
  replies: Replies;
  /** Full '550 5.7.1 ...\r\n' to give at RCPT (enforce), or null: 450 4.3.2 (still under test). */
  rejectReply: string | null;
  /** Short reason for the NOQUEUE log (e.g. 'denylist', 'pregreet'). */
  rejectReason: string;
  commandCountLimit: number;
}

/** Longest HELO name or address kept for the log, in client bytes. */
const MAX_KEPT = 256;
const SP = 0x20;
const COLON = 0x3a;

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

/** Scratch for address extraction; grown on demand, shared (the engine is synchronous). */
let scratch = Buffer.allocUnsafe(512);

export class DummyEngine {
  readonly #opts: EngineOptions;
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
  /** Recipients of the current transaction (escaped), cleared by HELO/EHLO/RSET/MAIL. */
  readonly rcpts: string[] = [];
  commands = 0;
  closed = false;

  constructor(opts: EngineOptions, out: EngineOutput) {
    this.#opts = opts;
    this.#out = out;
    this.#r = opts.replies;
    this.#rcptReply = opts.rejectReply ?? opts.replies.deferRcpt;
    this.#rcptReplyLog = stripCrlf(this.#rcptReply);
    this.#reason = opts.rejectReason;
  }

  get helo(): string | null { return this.#helo; }
  get mailFrom(): string | null { return this.#mailFrom; }
  /** 'ESMTP' after EHLO (never downgraded by a later HELO, as postscreen). */
  get protocol(): 'SMTP' | 'ESMTP' { return this.#protocol; }
  /** Last command seen, postscreen's "after X": CONNECT, HELO, ..., UNIMPLEMENTED. */
  get where(): string { return this.#where; }

  /** A test failed with `enforce` mid-session: refuse later recipients with this reply. */
  setRejectReply(reply: string, reason: string): void {
    this.#rcptReply = reply;
    this.#rcptReplyLog = stripCrlf(reply);
    this.#reason = reason;
  }

  /** postscreen's PSC_SMTPD_X21: answer the next command (QUIT excepted) with `reply` and close. */
  setFinalReply(reply: string): void {
    this.#finalReply = reply;
  }

  /** One command line, terminator stripped. `bareLf` is for the bare-newline check, not used here. */
  onLine(line: Buffer, _bareLf: boolean): void {
    if (this.closed) return;
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
    if (++this.commands > this.#opts.commandCountLimit && cmd !== C_QUIT) {
      this.#out.event(EV.COMMAND_COUNT_LIMIT, { after: savedWhere, count: this.commands, limit: this.#opts.commandCountLimit });
      this.#finish(this.#r.tooManyCommands);
      return;
    }
    this.#dispatch(cmd, line, argStart, end);
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
          this.#out.send(cmd === C_HELO ? r.heloSyntax : r.ehloSyntax);
          return;
        }
        let wordEnd = word;
        while (wordEnd < end && line[wordEnd] !== SP) wordEnd++;
        this.#helo = escapeClientText(line.subarray(word, wordEnd), MAX_KEPT);
        this.#endTransaction();
        if (cmd === C_EHLO) this.#protocol = 'ESMTP';
        this.#out.send(cmd === C_HELO ? r.helo : r.ehlo);
        return;
      }
      case C_MAIL: {
        if (this.#mailFrom !== null) {
          this.#out.send(r.nestedMail);
          return;
        }
        const colon = line.indexOf(COLON, argStart);
        if (colon < 0 || colon >= end) {
          this.#out.send(r.mailSyntax);
          return;
        }
        this.#endTransaction();
        this.#mailFrom = extractAddress(line, colon + 1, end);
        this.#out.send(r.mailOk);
        return;
      }
      case C_RCPT: {
        if (this.#mailFrom === null) {
          this.#out.send(r.needMail);
          return;
        }
        const colon = line.indexOf(COLON, argStart);
        if (colon < 0 || colon >= end) {
          this.#out.send(r.rcptSyntax);
          return;
        }
        const to = extractAddress(line, colon + 1, end);
        this.rcpts.push(to);
        this.#out.event(EV.NOQUEUE, {
          reply: this.#rcptReplyLog, helo: this.#helo ?? '', from: this.#mailFrom, to,
          proto: this.#protocol, reason: this.#reason,
        });
        this.#out.send(this.#rcptReply);
        return;
      }
      case C_DATA:
        if (nextWord(line, argStart, end) >= 0) this.#finish(r.dataSyntax);
        else if (this.#mailFrom === null) this.#finish(r.needRcpt);
        else this.#finish(r.noValidRecipients);
        return;
      case C_BDAT:
        if (nextWord(line, argStart, end) < 0) this.#finish(r.bdatSyntax);
        else if (this.#mailFrom === null) this.#finish(r.bdatNeedMail);
        else this.#finish(r.noValidRecipients);
        return;
      case C_RSET:
        this.#endTransaction();
        this.#out.send(r.ok);
        return;
      case C_NOOP:
        this.#out.send(r.ok);
        return;
      case C_QUIT:
        this.#finish(r.bye);
        return;
      case C_STARTTLS:
        this.#out.send(r.notImplemented);
        return;
      default:
        this.#out.send(r.unrecognized);
        return;
    }
  }

  #endTransaction(): void {
    this.#mailFrom = null;
    this.rcpts.length = 0;
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

/**
 * extractAddress - MAIL/RCPT address in unquoted form, as psc_extract_addr():
 * skip SP; "<...>" up to '>' or a bare word up to SP; '"' toggles quoting and
 * is dropped; '\' takes the next byte literally; an "@route,...:" prefix is
 * cut. Lenient on purpose: nothing here is delivered. Returns escaped text.
 */
function extractAddress(line: Buffer, from: number, end: number): string {
  let i = from;
  while (i < end && line[i] === SP) i++;
  let stop = SP;
  if (i < end && line[i] === 0x3c /* < */) {
    stop = 0x3e; /* > */
    i++;
  }
  if (scratch.length < end - i) scratch = Buffer.allocUnsafe(Math.max(end - i, scratch.length * 2));
  let n = 0;
  let inQuote = false;
  for (; i < end; i++) {
    let b = line[i] as number;
    if (!inQuote && b === stop) break;
    if (b === 0x22 /* " */) {
      inQuote = !inQuote;
      continue;
    }
    if (b === 0x5c /* \ */) {
      if (++i >= end) break;
      b = line[i] as number;
    }
    scratch[n++] = b;
  }
  let start = 0;
  if (n > 0 && scratch[0] === 0x40 /* @ */) {
    const colon = scratch.subarray(0, n).indexOf(COLON);
    if (colon >= 0) start = colon + 1;
  }
  return escapeClientText(scratch.subarray(start, n), MAX_KEPT);
}
