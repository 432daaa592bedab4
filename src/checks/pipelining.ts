/*
 * checks/pipelining.ts - deep test: a command sent before the reply to the previous one.
 *
 * Exports: pipelined(), pipeliningFields().
 * The dummy engine never announces PIPELINING (RFC 2920), so a client must
 * wait for each reply before it sends the next command. As postscreen_smtpd.c
 * does, the decision is made right after a command is read: when more input
 * is already buffered, the client sent it before it could have seen our
 * reply. "Buffered" is the rest of the read the command came in (the line
 * reader's `buffered` count), the same evidence postscreen has in its
 * VSTREAM buffer; no guess from timing. A client whose next command arrives
 * in a later read escapes the test, with postscreen too.
 * Exempt: BDAT, whose payload follows the command by design (postscreen's
 * PSC_SMTPD_CMD_FLAG_HAS_PAYLOAD). Every other command is tested, QUIT and
 * unknown commands included.
 * Pure: no sockets, no clock; the engine acts on the answer (checks/deep.ts).
 */
import { escapeClientText } from '../util/escape.js';

/** Bytes of the pipelined input kept for the log (postscreen: 100). */
const PIPELINING_SAMPLE = 100;

/** Did the client pipeline? `hasPayload`: the command carries data after it (BDAT). */
export function pipelined(hasPayload: boolean, buffered: number): boolean {
  return !hasPayload && buffered > 0;
}

/**
 * Fields of COMMAND PIPELINING: `after` the command just read (postscreen
 * logs "after EHLO"), `sample` the input that came with it, escaped.
 */
export function pipeliningFields(after: string, rest: Buffer): { after: string; sample: string } {
  return { after, sample: escapeClientText(rest, PIPELINING_SAMPLE) };
}
