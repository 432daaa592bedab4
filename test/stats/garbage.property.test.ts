/*
 * Property: whatever a line holds (random text, JSON of any shape, real lines
 * cut or spliced at random places), the parsers and the aggregator never
 * throw, every line is counted once as event, other or malformed, and the
 * three renderers accept the result. The HTML never carries a raw '<' from
 * the log (every text is escaped).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { Aggregator } from '../../src/stats/aggregate.js';
import { parseJsonLine } from '../../src/stats/parse-json.js';
import { PostscreenParser } from '../../src/stats/parse-postscreen.js';
import { newRec } from '../../src/stats/record.js';
import { renderHtml } from '../../src/stats/render-html.js';
import { renderText } from '../../src/stats/render-text.js';
import { repoRoot } from '../helpers/screener.js';

const root = repoRoot();
const REAL = [
  ...readFileSync(path.join(root, 'fixtures', 'stats', 'day.ndjson'), 'utf8').split('\n'),
  ...readFileSync(path.join(root, 'fixtures', 'stats', 'postscreen-day.log'), 'utf8').split('\n'),
].filter((l) => l !== '');

const mutated = fc.tuple(fc.constantFrom(...REAL), fc.nat(), fc.nat(), fc.string({ unit: 'binary', maxLength: 20 }))
  .map(([l, a, b, ins]) => {
    const i = a % (l.length + 1);
    const j = i + (b % 30);
    return l.slice(0, i) + ins + l.slice(Math.min(l.length, j));
  });
const jsonish = fc.jsonValue().map((v) => JSON.stringify(v));
const eventish = fc.record({ event: fc.constantFrom('CONNECT', 'DNSBL', 'GREYLIST', 'NOQUEUE', 'HANDOFF', 'STRESS', 'PASS NEW', 'X'),
  time: fc.oneof(fc.integer(), fc.string(), fc.double()), client: fc.oneof(fc.string(), fc.integer()), port: fc.anything(),
  hits: fc.anything(), late: fc.anything(), would: fc.anything(), state: fc.anything(), reply: fc.anything(), network: fc.anything() },
  { requiredKeys: ['event'] }).map((o) => JSON.stringify(o));
const line = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), jsonish, eventish, mutated);

test('arbitrary lines never throw; each is counted once; the reports render', () => {
  fc.assert(fc.property(fc.array(line, { maxLength: 40 }), (lines) => {
    const agg = new Aggregator();
    const rec = newRec();
    const ps = new PostscreenParser(new Date(Date.UTC(2026, 11, 1)));
    for (const l of lines) {
      const json = l.trimStart().startsWith('{');
      agg.line(json ? parseJsonLine(l, rec) : ps.parse(l, rec), rec, l, json ? 'json' : 'postscreen');
    }
    const s = agg.summary();
    assert.equal(s.input.lines, lines.length);
    assert.equal(s.input.events + s.input.other + s.input.malformed, lines.length);
    renderText(s);
    const html = renderHtml(s);
    const body = html.slice(html.indexOf('<body>'));
    // No tag from the log: every '<' in the body opens one of the report's own tags.
    for (const m of body.matchAll(/<\/?([a-zA-Z0-9]+)/g)) {
      assert.ok(['body', 'h1', 'h2', 'p', 'div', 'span', 'svg', 'rect', 'text', 'line', 'title', 'table', 'tr', 'td', 'th', 'pre', 'html'].includes(m[1] as string), m[0]);
    }
    JSON.stringify(s);
  }), { numRuns: 400 });
});
