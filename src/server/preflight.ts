/*
 * server/preflight.ts - the files a configuration names, checked before anything starts: the
 * access list parsed, the STARTTLS certificate and key loaded, the snapshot's directory and the
 * log file's directory writable, admin.token_file readable with a token.
 *
 * Exports: checkFiles(cfg), FileIssue.
 * Returns every problem found (not only the first), each naming the key, the value (the path)
 * and the fix; an empty list when all is well. `smtpscreen check-config` and `run` call it (run
 * refuses to start: START FAILED, exit 2), so a mistake shows at check time, not at the first
 * snapshot save or the first STARTTLS. Synchronous, for the reasons of util/read-file.ts.
 * XXX The checks run as the user who runs the command: a screener that drops privileges after
 * binding needs the snapshot directory writable by that user too.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/types.js';
import { ACCESS_FILE, parseAccessList } from '../checks/access.js';
import { readTextFile } from '../util/read-file.js';
import { ScreenError } from '../util/errors.js';
import { loadTls } from './generation.js';
import { readAdminToken } from './admin.js';

export interface FileIssue {
  key: string;
  value: unknown;
  /** `${key}: ...`, the whole message. */
  message: string;
}

function issueOf(err: unknown, key: string, value: unknown): FileIssue {
  if (err instanceof ScreenError) {
    const k = typeof err.details['key'] === 'string' ? err.details['key'] : key;
    const msg = err.message.startsWith(`${k}:`) ? err.message : `${k}: ${err.message}`;
    return { key: k, value: err.details['value'] ?? value, message: msg };
  }
  return { key, value, message: `${key}: ${(err as Error).message}` };
}

function errno(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The snapshot file's directory exists and is writable, and the file, if it exists, is a readable file. */
function checkSnapshot(file: string): FileIssue | null {
  const key = 'cache.snapshot';
  const dir = dirname(resolve(file));
  const fix = `create the directory (writable by the screener's user) or set ${key} to a path in one that is, or null for no snapshot`;
  try {
    if (!statSync(dir).isDirectory()) return { key, value: file, message: `${key}: ${file}: ${dir} is not a directory; ${fix}` };
  } catch (err) {
    return { key, value: file, message: `${key}: ${file}: the directory ${dir} ${errno(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errno(err)})`}; ${fix}` };
  }
  try {
    // The save writes a temporary file beside the snapshot and renames it over.
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    return { key, value: file, message: `${key}: ${file}: the directory ${dir} is not writable (${errno(err)}): the snapshot could never be saved; ${fix}` };
  }
  try {
    const st = statSync(file);
    if (!st.isFile()) return { key, value: file, message: `${key}: ${file} is not a regular file; name a file, not a directory` };
    accessSync(file, constants.R_OK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return null; // written at the first save
    return { key, value: file, message: `${key}: ${file} cannot be read (${errno(err)}); fix its permissions or remove it` };
  }
  return null;
}

/** log.destination file: the directory exists and is writable (logrotate renames the file; SIGUSR1 creates it again), and the file, if it exists, is a writable regular file. */
function checkLogFile(file: string): FileIssue | null {
  const key = 'log.file';
  const dir = dirname(resolve(file));
  const fix = `create the directory (writable by the screener's user) or set ${key} to a path in one that is`;
  try {
    if (!statSync(dir).isDirectory()) return { key, value: file, message: `${key}: ${file}: ${dir} is not a directory; ${fix}` };
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const why = errno(err) === 'ENOENT' ? 'does not exist' : `is not writable (${errno(err)})`;
    return { key, value: file, message: `${key}: ${file}: the directory ${dir} ${why}; ${fix}` };
  }
  try {
    if (!statSync(file).isFile()) return { key, value: file, message: `${key}: ${file} is not a regular file; name a file, not a directory` };
    accessSync(file, constants.W_OK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return null; // created at start
    return { key, value: file, message: `${key}: ${file} cannot be written (${errno(err)}); fix its permissions or remove it` };
  }
  return null;
}

/** checkFiles - every problem with the files `cfg` names; [] when none. */
export function checkFiles(cfg: Config): FileIssue[] {
  const out: FileIssue[] = [];
  const list = cfg.access.list;
  if (list !== null) {
    try {
      parseAccessList(readTextFile(list, ACCESS_FILE), list);
    } catch (err) {
      out.push(issueOf(err, 'access.list', list)); // "access.list: FILE:LINE: why"
    }
  }
  try {
    loadTls(cfg);
  } catch (err) {
    out.push(issueOf(err, 'tls.cert', cfg.tls.cert));
  }
  if (cfg.cache.snapshot !== null) {
    const s = checkSnapshot(cfg.cache.snapshot);
    if (s !== null) out.push(s);
  }
  if (cfg.log.destination === 'file' && cfg.log.file !== null) {
    const l = checkLogFile(cfg.log.file);
    if (l !== null) out.push(l);
  }
  try {
    readAdminToken(cfg);
  } catch (err) {
    out.push(issueOf(err, 'admin.token_file', cfg.admin.token_file));
  }
  return out;
}
