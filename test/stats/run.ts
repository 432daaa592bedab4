/*
 * test/stats/run.ts - `smtpscreen stats` in-process and as a process, for the stats tests.
 *
 * Exports: statsJson(args) (in-process --json -> Summary), statsCli(args, stdin?) (the built CLI
 *          as a child: code, stdout, stderr), get(summary, pointer), CLI.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { statsMain } from '../../src/stats/command.js';
import type { Summary } from '../../src/stats/summary.js';
import { repoRoot } from '../helpers/screener.js';

export const CLI = path.join(repoRoot(), 'dist', 'src', 'cli.js');

export async function statsJson(args: string[]): Promise<Summary> {
  let out = '';
  let err = '';
  const code = await statsMain([...args, '--json'], { out: (s) => (out += s), err: (s) => (err += s) });
  if (code !== 0) throw new Error(`stats exited ${code}: ${err}`);
  return JSON.parse(out) as Summary;
}

export function statsCli(args: string[], stdin?: Buffer | string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, 'stats', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TZ: 'UTC' } });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

/** The value at a JSON pointer ("/verdicts/pass_new"). */
export function get(v: unknown, pointer: string): unknown {
  let cur = v;
  for (const raw of pointer.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}
