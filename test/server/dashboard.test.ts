/*
 * test/server/dashboard.test.ts - contrib/grafana/smtpscreen.json against what a
 * running screener exports: every metric its PromQL names is on /metrics (by
 * # TYPE line: a labelled series may have no sample yet), histogram suffixes
 * included; and METRIC_NAMES (the README's list) is what the page declares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startScreener } from '../../src/server/screener.js';
import { METRIC_NAMES } from '../../src/server/metrics.js';
import { repoRoot } from '../helpers/screener.js';

interface Panel { title?: string; targets?: Array<{ expr?: string }>; panels?: Panel[] }

/** The metric names of a PromQL expression: identifiers that are not functions, label names, keywords or durations. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // grouping label lists
  const out: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(after)) continue; // a function
    if (['and', 'or', 'unless', 'bool', 'offset', 'Inf', 'NaN'].includes(m[0])) continue;
    out.push(m[0]);
  }
  return out;
}

test('metricNames: functions, labels, grouping and ranges are not metric names', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le, site) (rate(a_bucket{x="y"}[5m]))) / b > 0'), ['a_bucket', 'b']);
  assert.deepEqual(metricNames('max(x{instance=~"$instance"} / y{instance=~"$instance"} > 0)'), ['x', 'y']);
});

test('every metric the Grafana dashboard queries is exported by the screener', async () => {
  const dash = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'contrib', 'grafana', 'smtpscreen.json'), 'utf8')) as
    { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ query?: { query?: string } }> } };
  assert.equal(dash.uid, 'smtpscreen');
  const exprs: string[] = [];
  const walk = (ps: Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr !== undefined) exprs.push(t.expr);
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating.list) if (v.query?.query !== undefined) exprs.push(v.query.query.replace(/^label_values\(([^,]+),.*$/, '$1'));
  assert.ok(exprs.length >= 20, `found ${exprs.length} queries`);

  const logger = pino({ level: 'silent' });
  const s = await startScreener(parseConfigText([
    'hostname: screen.test', 'listen: ["127.0.0.1:0"]', 'backend: { address: "sink:0" }', 'admin: { listen: ["127.0.0.1:0"] }',
  ].join('\n'), 'test.yaml'), { logger });
  let text: string;
  try {
    text = await (await fetch(`http://${s.admin?.addresses[0]}/metrics`)).text();
  } finally {
    await s.close(0);
  }
  const exported = new Set<string>();
  const families = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    families.add(name);
    if (type === 'histogram') for (const sfx of ['_bucket', '_sum', '_count']) exported.add(name + sfx);
    else if (type === 'summary') for (const sfx of ['', '_sum', '_count']) exported.add(name + sfx);
    else exported.add(name);
  }
  const used = new Set(exprs.flatMap(metricNames));
  const missing = [...used].filter((n) => !exported.has(n));
  assert.deepEqual(missing, [], 'dashboard queries metrics that /metrics does not export');
  assert.ok([...used].filter((n) => n.startsWith('smtpscreen_')).length >= 15);
  assert.deepEqual([...families].filter((n) => n.startsWith('smtpscreen_')).sort(), [...METRIC_NAMES].sort());
});

test('the README lists every metric with its type', () => {
  const readme = fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
  for (const name of METRIC_NAMES) assert.match(readme, new RegExp(`^\\| \`${name}\` \\| (counter|gauge|histogram) \\|`, 'm'), name);
});
