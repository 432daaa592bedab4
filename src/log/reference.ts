/*
 * log/reference.ts - the README's log event table, generated from log/events.ts.
 *
 * Exports: eventReferenceMarkdown(), levelText(spec), fieldsText(spec),
 *          fieldName(field), EVENT_MARKERS, renderEventSection(readme).
 * `npm run docs` rewrites the table between the markers; the docs test fails
 * when README.md and the table of events disagree.
 */
import { cell, replaceSection } from '../util/markdown.js';
import { EVENTS, type EventSpec } from './events.js';

export const EVENT_MARKERS = ['<!-- log-events:start -->', '<!-- log-events:end -->'] as const;

/** "info", or "info; warn for `state: enter`" when some calls log at another level. */
export function levelText(spec: EventSpec): string {
  return spec.also === undefined ? spec.level : `${spec.level}; ${spec.also.level} ${spec.also.when}`;
}

/** The field name in a fields entry: "/ deep" -> "deep", "hits [{site, ...}]" -> "hits". */
export function fieldName(field: string): string {
  return field.replace(/^\/ /, '').split(' ')[0] ?? '';
}

/** "a, b / c, d": the fields, with " / " before the start of another form. */
export function fieldsText(spec: EventSpec): string {
  let out = '';
  for (const [f] of spec.fields) {
    if (f.startsWith('/ ')) out += ` ${f}`;
    else out += out === '' ? f : `, ${f}`;
  }
  return out;
}

export function eventReferenceMarkdown(): string {
  const rows = ['| event | level | fields | Translation |', '|---|---|---|---|'];
  for (const e of EVENTS) {
    const fields = fieldsText(e);
    rows.push(`| \`${e.name}\` | ${cell(levelText(e))} | ${fields === '' ? '' : cell(fields) + ' '}| ${cell(e.translation)} |`);
  }
  return rows.join('\n');
}

/** README text with the log event table replaced; throws if a marker is missing. */
export function renderEventSection(readme: string): string {
  return replaceSection(readme, EVENT_MARKERS, eventReferenceMarkdown());
}
