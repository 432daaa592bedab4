/*
 * util/markdown.ts - the two text helpers of the README's generated tables.
 *
 * Exports: cell(text), replaceSection(text, [start, end], body).
 * `npm run docs` (scripts/update-readme.ts) rewrites the parts of README.md
 * between marker comments; the docs test renders them again and compares.
 */

/** Text safe inside a Markdown table cell: pipes escaped, on one line. */
export function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** `text` with the lines between the two markers replaced by `body`; throws if a marker is missing. */
export function replaceSection(text: string, [start, end]: readonly [string, string], body: string): string {
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${start} ... ${end}`);
  return text.slice(0, a + start.length) + '\n' + body + '\n' + text.slice(b);
}
