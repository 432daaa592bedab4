/*
 * test/helpers/swaks.ts - run swaks(1), a real SMTP client, against a test server.
 *
 * Exports: runSwaks(args), SwaksArgs, SwaksResult.
 * `transcript` is stdout and stderr interleaved in arrival order (swaks writes
 * the dialogue to stdout, "*** " errors to stderr). Exit code 0 = the whole
 * dialogue succeeded; swaks's man page lists the others (e.g. 23: error
 * reading the banner, 24: EHLO rejected, 25: MAIL rejected, 26: RCPT rejected).
 */
import { spawn } from 'node:child_process';
import { findExecutable } from './postfix.js';

export interface SwaksArgs {
  /** "host:port" */
  server: string;
  /** Source address (--local-interface), e.g. "127.0.0.77". */
  localAddress?: string;
  from?: string;
  to?: string;
  helo?: string;
  /** --quit-after: CONNECT, BANNER, FIRST-HELO, XCLIENT, HELO, MAIL, RCPT, ... */
  quitAfter?: string;
  /** swaks's --timeout in seconds (default 10); the process is killed 5 s after it. */
  timeoutS?: number;
  /** Further swaks arguments, e.g. ['--xclient-addr', '127.0.0.77']. */
  extra?: string[];
}

export interface SwaksResult {
  code: number | null;
  stdout: string;
  stderr: string;
  transcript: string;
}

const NOT_INSTALLED = 'swaks is not installed: run scripts/setup-test-deps.sh (Debian package "swaks")';

export function runSwaks(args: SwaksArgs): Promise<SwaksResult> {
  const bin = findExecutable('swaks');
  if (bin === null) return Promise.reject(new Error(NOT_INSTALLED));
  const timeoutS = args.timeoutS ?? 10;
  const argv = ['--server', args.server, '--timeout', `${timeoutS}s`];
  argv.push('--to', args.to ?? 'rcpt@example.test');
  argv.push('--from', args.from ?? 'sender@example.test');
  if (args.localAddress !== undefined) argv.push('--local-interface', args.localAddress);
  if (args.helo !== undefined) argv.push('--helo', args.helo);
  if (args.quitAfter !== undefined) argv.push('--quit-after', args.quitAfter);
  argv.push(...(args.extra ?? []));

  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let transcript = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      stdout += s;
      transcript += s;
    });
    child.stderr.on('data', (s: string) => {
      stderr += s;
      transcript += s;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 5) * 1000);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(killer);
      reject(err.code === 'ENOENT' ? new Error(NOT_INSTALLED) : err);
    });
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, transcript });
    });
  });
}
