/*
 * config/reference.ts - the README's configuration tables, generated from SCHEMA.
 *
 * Exports: configReferenceMarkdown(), postscreenDifferencesMarkdown(),
 *          README_MARKERS, renderReadmeSections().
 * `npm run docs` rewrites the parts of README.md between the markers; a unit
 * test fails when README.md and SCHEMA disagree, so the docs cannot rot.
 */
import { cell, replaceSection } from '../util/markdown.js';
import { formatDuration } from '../util/duration.js';
import { defaultText } from './raw.js';
import { SCHEMA, type KeySpec } from './schema.js';

function typeText(spec: KeySpec): string {
  if (spec.type === 'enum' && spec.values !== undefined) return spec.values.join(' \\| ');
  if (spec.type === 'workers') return 'int \\| auto';
  return spec.type;
}

/** The stress column: the stress default, "as normal" for a key that may be set under `stress:`, "-" for one that may not. */
function stressText(spec: KeySpec): string {
  if (spec.stress === undefined) return '-';
  return spec.stress === 'normal' ? 'as normal' : `\`${spec.stress}\``;
}

/** The range column: "1s..1d", ">= 1", "<= 0" in the key's own notation; empty when unbounded. */
function rangeText(spec: KeySpec): string {
  const fmt = spec.type === 'duration' ? formatDuration : spec.type === 'percent' ? (x: number) => `${x}%` : String;
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) return `${fmt(min)}..${fmt(max)}`;
  if (min !== undefined) return `>= ${fmt(min)}`;
  if (max !== undefined) return `<= ${fmt(max)}`;
  return '';
}

export function configReferenceMarkdown(): string {
  const rows = ['| key | type | default | range | unit | stress | what it does |', '|---|---|---|---|---|---|---|'];
  for (const s of SCHEMA) {
    rows.push(`| \`${s.key}\` | ${typeText(s)} | \`${cell(defaultText(s))}\` | ${rangeText(s)} | ${s.unit ?? ''} | ${stressText(s)} | ${cell(s.doc)} |`);
  }
  return rows.join('\n');
}

export function postscreenDifferencesMarkdown(): string {
  const rows = ['| smtpscreen key | our default | postscreen parameter | postscreen default | why we differ |', '|---|---|---|---|---|'];
  for (const s of SCHEMA) {
    if (s.note === undefined) continue;
    rows.push(`| \`${s.key}\` | \`${cell(defaultText(s))}\` | ${cell(s.postscreen ?? '-')} | ${cell(s.postscreenDefault ?? '-')} | ${cell(s.note)} |`);
  }
  return rows.join('\n');
}

export const README_MARKERS = {
  config: ['<!-- config-reference:start -->', '<!-- config-reference:end -->'],
  differences: ['<!-- postscreen-differences:start -->', '<!-- postscreen-differences:end -->'],
} as const;

/** README text with both generated sections replaced; throws if a marker is missing. */
export function renderReadmeSections(readme: string): string {
  const out = replaceSection(readme, README_MARKERS.config, configReferenceMarkdown());
  return replaceSection(out, README_MARKERS.differences, postscreenDifferencesMarkdown());
}
