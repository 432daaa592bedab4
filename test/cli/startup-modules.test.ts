/*
 * test/cli/startup-modules.test.ts - what a default screener process loads.
 *
 * Every module loaded at start stays in every process's RSS whether the
 * configuration uses it or not. The optional features load theirs at first use:
 * prom-client with the admin listener or the workers' primary, undici with the
 * policy service, ioredis with the shared store, node:tls with STARTTLS or a
 * certificate, node:http with the admin listener. A screener with none of them
 * configured is started with a preload that writes, at exit, Node's list of
 * built-in modules and the CommonJS files it loaded (npm packages imported from
 * ESM are loaded through the CommonJS loader too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScreener } from '../helpers/screener.js';

test('a default screener loads no optional feature\'s modules (prom-client, undici, ioredis, node:tls, node:http)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-mods-'));
  const out = join(dir, 'modules.json');
  const preload = join(dir, 'record.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) })));\n`);
  const s = await startScreener({
    listen: [{ address: '127.0.0.1:0', personality: 'normal' }],
    backend: { address: 'sink:0', handoff: 'xclient' },
    log: { format: 'json', level: 'info' },
  }, [], { env: { NODE_OPTIONS: `--require ${preload}` } });
  assert.equal(await s.stop('SIGTERM'), 0);
  const m = JSON.parse(readFileSync(out, 'utf8')) as { builtins: string[]; files: string[] };
  const packages = new Set(m.files.map((f) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter((p) => p !== undefined));
  // The record works: the packages every process needs are in it.
  assert.ok(packages.has('pino') && packages.has('yaml'), `packages recorded: ${[...packages].join(', ')}`);
  for (const p of ['prom-client', 'undici', 'ioredis', 'fast-check', 'tinybench']) assert.ok(!packages.has(p), `${p} is loaded at start`);
  for (const b of ['tls', 'http', 'https', 'http2', 'zlib']) {
    assert.ok(!m.builtins.includes(`NativeModule ${b}`), `node:${b} is loaded at start`);
  }
  assert.ok(m.builtins.includes('NativeModule net'), 'the built-in list is recorded');
});
