import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderReadmeSections } from '../../src/config/reference.js';
import { SCHEMA } from '../../src/config/schema.js';
import { EV } from '../../src/log/events.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

test('README configuration tables match src/config/schema.ts (run `npm run docs`)', () => {
  assert.equal(renderReadmeSections(readme), readme);
  for (const s of SCHEMA) assert.ok(readme.includes(`| \`${s.key}\` |`), `README documents ${s.key}`);
});

test('README log event table names every event of src/log/events.ts', () => {
  for (const name of Object.values(EV)) {
    assert.ok(readme.includes(`\`${name}\``), `README documents the event ${name}`);
  }
});

test('README starts with the two set-up commands, and .ci/run runs the test one', () => {
  const setup = readme.slice(readme.indexOf('## Set-up'), readme.indexOf('## Commands'));
  const blocks = [...setup.matchAll(/```sh\n([^`]+)```/g)].map((m) => m[1]?.trim());
  assert.deepEqual(blocks, ['npm install && npm start', 'npm run test:ci']);
  const ci = readFileSync(new URL('../../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /npm run test:ci/);
});
