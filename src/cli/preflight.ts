/*
 * cli/preflight.ts - what `check-config` and `run` refuse beyond the values themselves: the
 * files the configuration names (server/preflight.ts) and a backend that was never named.
 *
 * Exports: preflight(cfg, file, overrides), backendNamed(file, overrides).
 * backend.address has a default (127.0.0.1:10025) so that programs and tests can build a
 * configuration without one, but an administrator who names no backend would get a screener
 * that answers every client it passes with 421: the file (or --backend) must name it, the
 * built-in sink only when asked for ("sink:0").
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Config } from '../config/types.js';
import type { Overrides } from '../config/load.js';
import { checkFiles, type FileIssue } from '../server/preflight.js';

/** Did the configuration file or the command line name backend.address? */
export function backendNamed(file: string | undefined, overrides: Overrides): boolean {
  if (overrides.backend !== undefined) return true;
  if (file === undefined) return false;
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch {
    return true; // the file was read and validated a moment ago; do not invent a second error
  }
  const backend = (raw as Record<string, unknown> | null)?.['backend'];
  return typeof backend === 'object' && backend !== null && (backend as Record<string, unknown>)['address'] !== undefined;
}

/** preflight - every problem that would make `run` fail or hurt; [] when none. */
export function preflight(cfg: Config, file: string | undefined, overrides: Overrides): FileIssue[] {
  const out: FileIssue[] = [];
  if (!backendNamed(file, overrides)) {
    out.push({ key: 'backend.address', value: null, message: 'backend.address: not set: every client that passes would get 421 from ' +
      'a default address nobody runs; set it to your smtpd\'s XCLIENT or PROXY listener (e.g. backend: { address: "127.0.0.1:10025" }' +
      ' or --backend 127.0.0.1:10025), or to "sink:0" for the built-in sink (demos and tests)' });
  }
  out.push(...checkFiles(cfg));
  return out;
}
