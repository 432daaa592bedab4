/*
 * checks/bare-newline.ts - deep test: a command line ended by LF without CR.
 *
 * Exports: bareNewline(), bareNewlineFields().
 * RFC 5321 ends every line with CRLF. Like smtpd(8) the dummy engine still
 * understands a bare LF (the line is processed), but, as postscreen's
 * bare-newline test, it counts as an offence. The line reader reports the
 * terminator (`bareLf`); a CR anywhere else in the line is data and no
 * offence. postscreen's default action for this test is `ignore`: some
 * legitimate software still sends bare LF.
 * Pure: the engine acts on the answer (checks/deep.ts).
 */
import { escapeClientText } from '../util/escape.js';

/** Bytes of the offending line kept for the log (postscreen: 100). */
const BARE_NEWLINE_SAMPLE = 100;

/** Did this line end in a bare LF? (The reader knows; named here so the test reads as one.) */
export function bareNewline(bareLf: boolean): boolean {
  return bareLf;
}

/** Fields of BARE NEWLINE: `after` the previous command, `sample` the line, escaped. */
export function bareNewlineFields(after: string, line: Buffer): { after: string; sample: string } {
  return { after, sample: escapeClientText(line, BARE_NEWLINE_SAMPLE) };
}
