/*
 * smtp/address.ts - the address of a MAIL FROM / RCPT TO command, for the log.
 *
 * Exports: extractAddress().
 * Split from smtp/dummy-engine.ts (file size). One scratch Buffer is shared:
 * the engine is synchronous, and the result is an escaped string, so nothing
 * refers to the scratch after a call.
 */
import { escapeClientText } from '../util/escape.js';

const SP = 0x20;

/** Scratch for address extraction; grown on demand, shared (the engine is synchronous). */
let scratch = Buffer.allocUnsafe(512);

/**
 * extractAddress - MAIL/RCPT address in unquoted form, as psc_extract_addr():
 * skip SP; "<...>" up to '>' or a bare word up to SP; '"' toggles quoting and
 * is dropped; '\' takes the next byte literally; an "@route,...:" prefix is
 * cut. Lenient on purpose: nothing here is delivered. Returns escaped text,
 * at most `maxKept` client bytes.
 */
export function extractAddress(line: Buffer, from: number, end: number, maxKept: number): string {
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
    const colon = scratch.subarray(0, n).indexOf(0x3a /* : */);
    if (colon >= 0) start = colon + 1;
  }
  return escapeClientText(scratch.subarray(start, n), maxKept);
}
