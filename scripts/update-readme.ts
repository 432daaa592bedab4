/* scripts/update-readme.ts - regenerate README.md's configuration tables (src/config/schema.ts) and log event table (src/log/events.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderReadmeSections } from '../src/config/reference.js';
import { renderEventSection } from '../src/log/reference.js';

const file = new URL('../../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = renderEventSection(renderReadmeSections(before));
if (after !== before) writeFileSync(file, after);
process.stdout.write(after === before ? 'README.md is up to date\n' : 'README.md updated\n');
