/*
 * test/log/pipe-atomic.test.ts - workers sharing one stdout pipe never mix their lines.
 *
 * With `workers` above 1 and `log.destination: stdout` into a pipe, every process writes to the
 * same pipe. Two writer processes (the stdout destination of log/out-fd.ts on fd 1, as a worker
 * has it) share one pipe whose reader stops reading for a while, so the pipe fills and writes
 * wait for room; each writes 1,500 JSON lines of 40 to 3,000 bytes, several per tick. Every
 * line read back must be whole (it parses, its padding has the length it says) and every line
 * written must arrive, in each writer's order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const outFd = fileURLToPath(new URL('../../src/log/out-fd.js', import.meta.url));
const LINES = 1500;

test('two processes writing JSON lines into one full pipe: every line arrives whole and in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scr-pipe-'));
  const writer = join(dir, 'writer.mjs');
  writeFileSync(writer, `
import { openFd } from ${JSON.stringify(outFd)};
const name = process.argv[2];
const out = openFd(1, 64 * 1024 * 1024);
let i = 0;
function burst() {
  for (let k = 0; k < 7 && i < ${LINES}; k++, i++) {
    const len = 40 + ((i * 7919 + name.charCodeAt(0) * 104729) % 2960);
    out.write(JSON.stringify({ w: name, i, len, pad: name.repeat(len) }) + '\\n');
  }
  if (i < ${LINES}) setImmediate(burst);
  else out.flush(30000).then((ok) => { process.exitCode = ok && out.dropped === 0 ? 0 : 3; });
}
burst();
`);
  // One pipe for both writers (the subshell's stdout, inherited by the two it starts), read by
  // a cat that starts 1.5 s late, so the pipe fills (64 KiB) while both write.
  const node = JSON.stringify(process.execPath);
  const status = join(dir, 'status');
  const sh = spawn('sh', ['-c', `( ${node} ${writer} A & a=$!; ${node} ${writer} B & b=$!; wait $a; ea=$?; wait $b; echo "$ea $?" > ${status} ) | ( sleep 1.5; cat )`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  sh.stdout.on('data', (c: Buffer) => chunks.push(c));
  const code = await new Promise<number | null>((r) => sh.on('close', (c) => r(c)));
  assert.equal(code, 0);
  assert.equal(readFileSync(status, 'utf8').trim(), '0 0', 'both writers flushed everything, nothing dropped');
  const text = Buffer.concat(chunks).toString('utf8');
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the output ends with a newline');
  const next: Record<string, number> = { A: 0, B: 0 };
  let broken = 0;
  for (const l of lines) {
    let o: { w: string; i: number; len: number; pad: string };
    try {
      o = JSON.parse(l) as typeof o;
    } catch {
      broken++;
      continue;
    }
    if (o.pad.length !== o.len || o.pad !== o.w.repeat(o.len)) {
      broken++;
      continue;
    }
    assert.equal(o.i, next[o.w], `writer ${o.w}'s lines in order`);
    next[o.w] = o.i + 1;
  }
  assert.equal(broken, 0, `${broken} of ${lines.length} lines were cut or mixed`);
  assert.deepEqual(next, { A: LINES, B: LINES });
});
