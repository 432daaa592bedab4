/*
 * util/escape.ts - make client-supplied bytes safe and readable in a log line.
 *
 * Exports: escapeClientText(buf, max = 100): string.
 * Follows Postfix's escape(3) as postscreen uses it for PREGREET, BARE NEWLINE
 * and NON-SMTP COMMAND samples: printable ASCII stays as is, a backslash is
 * doubled, \a \b \f \n \r \t \v are written as C escapes, and every other byte
 * (controls, NUL, DEL, bytes >= 0x80) as a three-digit octal escape "\ooo".
 * Only the first `max` input bytes are escaped (postscreen: 100); when more
 * were given, "..." is appended so a reader knows the sample was cut.
 * The output never contains a control character, CR or LF.
 *
 * Not a hot path (it runs once per logged event), but the common case,
 * a short all-printable sample, is one scan and one latin1 decode.
 */

/** C escapes for the controls that have one; index by byte value. */
const C_ESCAPE: readonly (string | undefined)[] = (() => {
  const t: (string | undefined)[] = new Array<string | undefined>(32).fill(undefined);
  t[0x07] = '\\a';
  t[0x08] = '\\b';
  t[0x09] = '\\t';
  t[0x0a] = '\\n';
  t[0x0b] = '\\v';
  t[0x0c] = '\\f';
  t[0x0d] = '\\r';
  return t;
})();

/** "\ooo" for every byte value, built once. */
const OCTAL: readonly string[] = Array.from({ length: 256 }, (_, b) => '\\' + b.toString(8).padStart(3, '0'));

const BACKSLASH = 0x5c;

function isPlain(b: number): boolean {
  return b >= 0x20 && b < 0x7f && b !== BACKSLASH;
}

/**
 * escapeClientText - printable, bounded rendering of client bytes.
 * A string argument is taken as UTF-8 (what a socket would have carried).
 */
export function escapeClientText(buf: Buffer | string, max = 100): string {
  const bytes = typeof buf === 'string' ? Buffer.from(buf, 'utf8') : buf;
  const limit = max < 0 ? 0 : Math.floor(max);
  const n = bytes.length < limit ? bytes.length : limit;
  const cut = bytes.length > n;

  let i = 0;
  while (i < n && isPlain(bytes[i] as number)) i++;
  if (i === n) {
    const s = bytes.toString('latin1', 0, n);
    return cut ? s + '...' : s;
  }

  let out = bytes.toString('latin1', 0, i);
  let runStart = i;
  for (; i < n; i++) {
    const b = bytes[i] as number;
    if (isPlain(b)) continue;
    if (runStart < i) out += bytes.toString('latin1', runStart, i);
    runStart = i + 1;
    if (b === BACKSLASH) out += '\\\\';
    else out += (b < 0x20 ? C_ESCAPE[b] : undefined) ?? (OCTAL[b] as string);
  }
  if (runStart < n) out += bytes.toString('latin1', runStart, n);
  return cut ? out + '...' : out;
}
