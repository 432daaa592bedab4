/*
 * util/read-file.ts - the text of a file the configuration names, read at start-up.
 *
 * Exports: FileRole, readTextFile(path, role).
 * Synchronous on purpose: it runs once at start (or reload), before any connection, and the
 * parsers that take the text (checks/access.ts) stay pure. An unreadable file throws
 * ScreenError(role.code, "<path>: cannot read <role.what> (<errno>)") with details
 * { key, file, value, cause }, so the error names the configuration key and the path.
 */
import { readFileSync } from 'node:fs';
import { ScreenError, type ErrorCode } from './errors.js';

/** What the file is for: the key naming it, how messages call it, the error code. */
export interface FileRole {
  readonly key: string;
  readonly what: string;
  readonly code: ErrorCode;
}

export function readTextFile(path: string, role: FileRole): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const cause = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ScreenError(role.code, `${path}: cannot read ${role.what} (${cause})`,
      { key: role.key, file: path, value: path, cause });
  }
}
