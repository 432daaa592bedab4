/*
 * The README against the source: the generated configuration and log event
 * tables are up to date (`npm run docs`), the set-up commands, and the table
 * of events against src/: every event logged has a row, every row is logged,
 * and the fields and levels of the logged records are those of their rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReadmeSections } from '../../src/config/reference.js';
import { SCHEMA } from '../../src/config/schema.js';
import { EV, EVENTS, evKey } from '../../src/log/events.js';
import { fieldName, renderEventSection } from '../../src/log/reference.js';
import { recordKeys } from '../helpers/record-keys.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

test('README configuration tables match src/config/schema.ts (run `npm run docs`)', () => {
  assert.equal(renderReadmeSections(readme), readme);
  for (const s of SCHEMA) assert.ok(readme.includes(`| \`${s.key}\` |`), `README documents ${s.key}`);
});

test('README log event table matches src/log/events.ts (run `npm run docs`)', () => {
  assert.equal(renderEventSection(readme), readme);
  for (const e of EVENTS) assert.ok(readme.includes(`| \`${e.name}\` |`), `README documents the event ${e.name}`);
});

test('README starts with the two set-up commands, and .ci/run runs the test one', () => {
  const setup = readme.slice(readme.indexOf('## Set-up'), readme.indexOf('## Commands'));
  const blocks = [...setup.matchAll(/```sh\n([^`]+)```/g)].map((m) => m[1]?.trim());
  assert.deepEqual(blocks, ['npm install && npm start', 'npm run test:ci']);
  const ci = readFileSync(new URL('../../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /npm run test:ci/);
});

// ---- the event table against the source ----

const srcDir = fileURLToPath(new URL('../../../src/', import.meta.url));
const sources: Array<{ file: string; text: string }> = readdirSync(srcDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && f !== join('log', 'events.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(srcDir, f), 'utf8') }));
const names = new Set(EVENTS.map((e) => e.name));
/** An event name as a literal where an event is logged: `event: 'X'`, `emit('X'`, `event('X'`. */
const LITERAL = /(?:\bevent:\s*|\bemit\(\s*|\bevent\(\s*)'([A-Z][A-Z -]*[A-Z])'/g;
/** Fields every line of a client may carry (log/events.ts header). */
const COMMON = new Set(['client', 'port', 'stress']);

test('every event logged in src/ has a row in log/events.ts: EV keys and literal names', () => {
  assert.ok(sources.length > 30, `read the sources (${sources.length} files)`);
  const keys = new Set(Object.keys(EV));
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/\bEV\.([A-Z_]+)/g)) assert.ok(keys.has(m[1] ?? ''), `${file}: EV.${m[1]} has a row`);
    for (const m of text.matchAll(LITERAL)) assert.ok(names.has(m[1] ?? ''), `${file}: '${m[1]}' has a row`);
  }
});

test('every row of log/events.ts is logged somewhere in src/ (no dead rows), and EV has exactly the rows', () => {
  assert.equal(names.size, EVENTS.length, 'row names are unique');
  assert.deepEqual(Object.entries(EV).sort(), EVENTS.map((e) => [evKey(e.name), e.name]).sort());
  for (const e of EVENTS) {
    const used = sources.some(({ text }) => text.includes(`EV.${evKey(e.name)}`) || text.includes(`'${e.name}'`));
    assert.ok(used, `${e.name} is used in src/`);
  }
});

test('every row has a level, a translation and fields with a meaning each', () => {
  for (const e of EVENTS) {
    assert.match(e.translation, /^\S.*[.)]$/, `${e.name}: a translation`);
    const seen = new Set<string>();
    for (const [f, meaning] of e.fields) {
      assert.match(f, /^(\/ )?[a-z_]+( [[{].*)?$/, `${e.name}: field "${f}"`);
      assert.ok(meaning.length > 0, `${e.name}.${f}: a meaning`);
      assert.ok(!seen.has(fieldName(f)), `${e.name}: ${fieldName(f)} once`);
      seen.add(fieldName(f));
    }
  }
});

test('the fields logged in src/ with an event are the fields of its row', () => {
  const byKey = new Map(EVENTS.map((e) => [evKey(e.name), e]));
  let checked = 0;
  for (const { file, text } of sources) {
    // `emit(EV.X, { ... })`, `event(EV.X, { ... })`, `{ event: EV.X, ... }` and the same with a literal name.
    const calls = /(?:\bEV\.([A-Z_]+)|'([A-Z][A-Z -]*[A-Z])'),\s*\{|\{\s*event:\s*(?:EV\.([A-Z_]+)|'([A-Z][A-Z -]*[A-Z])'),/g;
    for (const m of text.matchAll(calls)) {
      const key = m[1] ?? m[3] ?? evKey(m[2] ?? m[4] ?? '');
      const row = byKey.get(key);
      if (row === undefined) continue; // a literal that is no event name; the test above covers EV keys
      const open = m[3] !== undefined || m[4] !== undefined ? m.index : m.index + m[0].length - 1;
      const fields = new Set(row.fields.map(([f]) => fieldName(f)));
      for (const k of recordKeys(text, open)) {
        if (k !== 'event') assert.ok(fields.has(k) || COMMON.has(k), `${file}: ${row.name} logs ${k}, which its row lacks`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 25, `checked the fields of ${checked} call sites`);
});

test('every event goes through emit() (log/emit.ts logs it at its row\'s level): no hand-written log call with an event outside log/', () => {
  let emits = 0;
  for (const { file, text } of sources) {
    if (file.includes('/log/')) continue;
    const by = /\.(debug|info|warn|error|fatal)\(\{\s*event:/g.exec(text);
    assert.equal(by, null, `${file}: ${by?.[0] ?? ''} logs an event by hand; use emit() or Session.event()`);
    emits += [...text.matchAll(/\.emit\(EV\.|\.event\(EV\./g)].length;
  }
  assert.ok(emits >= 40, `found ${emits} emit() / event() call sites`);
});


test('recordKeys: the keys of a record literal, spread ternaries included, nested values not', () => {
  const src = "f(EV.X, { a, b: g({ no: 1 }), c: [{ no2: 2 }], 'q': `${ {no3: 3}.no3 }`, ...(x ? { d: 1 } : {}), ...rest, e: 'x,y' })";
  assert.deepEqual(recordKeys(src, src.indexOf('{')), ['a', 'b', 'c', 'd', 'e']);
});
