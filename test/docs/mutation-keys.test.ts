/*
 * The keys of listed equivalent mutants (test/mutation-equivalents.md) name the
 * mutated source line, not its number: code moving up or down must keep a
 * listed mutant listed, and two identical mutants on identical lines must keep
 * distinct keys.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import { equivalents, mutantKeys, type ReportMutant } from '../../scripts/mutate.js';

const at = (line: number, column: number, mutatorName = 'ConditionalExpression', replacement = 'true'): ReportMutant =>
  ({ mutatorName, replacement, status: 'Survived', location: { start: { line, column } } });

test('a mutant keeps its key when lines are added above it', () => {
  const before = 'const a = 1;\n  if (x === y) go();\n';
  const after = '// a comment\n\nconst a = 1;\n  if (x === y) go();\n';
  const [k1] = mutantKeys('src/f.ts', before, [at(2, 7)]);
  const [k2] = mutantKeys('src/f.ts', after, [at(4, 7)]);
  assert.equal(k1, 'src/f.ts ConditionalExpression -> "true" @ "if (x === y) go();"');
  assert.equal(k2, k1);
});

test('repeats of one key are numbered in source order, whatever the report order', () => {
  const src = 'const c = [];\nf();\nconst c = [];\n';
  const keys = mutantKeys('src/f.ts', src, [at(3, 11, 'ArrayDeclaration', '["x"]'), at(1, 11, 'ArrayDeclaration', '["x"]'), at(2, 1, 'BlockStatement', '{}')]);
  assert.deepEqual(keys, [
    'src/f.ts ArrayDeclaration -> "[\\"x\\"]" @ "const c = [];" #2',
    'src/f.ts ArrayDeclaration -> "[\\"x\\"]" @ "const c = [];"',
    'src/f.ts BlockStatement -> "{}" @ "f();"',
  ]);
});

test('the equivalents list is read up to the closing double backtick; a line with a backtick inside stays whole', () => {
  const md = '# t\n\n- ``src/f.ts StringLiteral -> "``" @ "x = `a`;"`` why\n- ``src/g.ts M -> "" @ "y"``\nnot a line\n';
  assert.deepEqual([...equivalents(md)], ['src/f.ts StringLiteral -> "``" @ "x = `a`;"', 'src/g.ts M -> "" @ "y"']);
});

test('every listed equivalent names a file, a mutator and a source line that exists in that file', () => {
  const listed = [...equivalents(readFileSync('test/mutation-equivalents.md', 'utf8'))];
  assert.ok(listed.length > 0);
  for (const key of listed) {
    const m = /^(src\/\S+) (\w+) -> (".*?") @ (".*")( #\d+)?$/.exec(key);
    assert.ok(m, `malformed key: ${key}`);
    const text = JSON.parse(m[4] as string) as string;
    const lines = readFileSync(m[1] as string, 'utf8').split('\n').map((l) => l.trim());
    assert.ok(lines.includes(text), `${key}: no such line in ${m[1]} (the code changed: measure again and list it anew or drop it)`);
  }
});
