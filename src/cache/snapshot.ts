/*
 * cache/snapshot.ts - crash-safe file snapshot of the verdict store, so that a
 * restart does not re-screen every client.
 *
 * Exports: saveSnapshot(), loadSnapshot(), SNAPSHOT_HEADER, validKey().
 * Format: a header line "smtpscreen-cache 1", then one "<client> <record>"
 * line per entry, the record in cache/store.ts's text form. Save writes a
 * temp file in the same directory, fsyncs it, renames it over the old one and
 * fsyncs the directory: a crash leaves the old snapshot or the new one, never
 * half of one, but a crash during the save leaves its temp file
 * (".<file>.tmp-<pid>", one per crash): load with removeTemps (the screener
 * at start, not `explain`, which may run beside a screener that is saving)
 * deletes those of this snapshot, and only those. Load skips expired entries; a corrupt line is skipped and
 * counted; a file with a bad header is set aside as <file>.corrupt-<time>
 * and the screener starts empty. Neither ever throws: errors are returned for
 * the CACHE log event.
 */
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { decodeRecord, encodeRecord, type VerdictRecord, type VerdictStore } from './store.js';
import { normalizeAddress } from '../net/cidr.js';

export const SNAPSHOT_HEADER = 'smtpscreen-cache 1';
const BATCH_BYTES = 64 * 1024;

export interface SnapshotResult {
  ok: boolean;
  entries: number;
  /** Lines skipped as corrupt (load) . */
  skipped: number;
  expired: number;
  error?: string;
  /** Where a corrupt file was moved. */
  setAside?: string;
  /** Leftover temp files of earlier saves deleted (load with removeTemps). */
  removedTemps?: number;
}

/** The temp file a save by process `pid` writes before renaming it over `file`. */
function snapshotTempName(file: string, pid = process.pid): string {
  return join(dirname(file), `.${basename(file)}.tmp-${pid}`);
}

/** Delete the temp files crashed saves of `file` left in its directory: exactly ".<name>.tmp-<digits>". */
async function removeTemps(file: string): Promise<number> {
  const dir = dirname(file);
  const prefix = `.${basename(file)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0; // no directory yet: nothing left over; the save reports its own error
  }
  let removed = 0;
  for (const name of names) {
    if (name.length <= prefix.length || !name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue;
    try {
      await unlink(join(dir, name));
      removed++;
    } catch {
      /* gone meanwhile, or not ours to delete: left as it is */
    }
  }
  return removed;
}

/** A record worth keeping: an unexpired pass, or a greylist first-seen time (negative). */
function liveAt(rec: VerdictRecord, now: number): boolean {
  for (let i = 0; i < rec.length; i++) {
    const v = rec[i] ?? 0;
    if (v > now || v < 0) return true;
  }
  return false;
}

/** Store keys are client addresses, or "net:<address>/<bits>" for greylisted networks. */
export function validKey(key: string): boolean {
  if (!key.startsWith('net:')) return normalizeAddress(key) === key;
  const slash = key.lastIndexOf('/');
  return slash > 4 && normalizeAddress(key.slice(4, slash)) === key.slice(4, slash) && /^\d{1,3}$/.test(key.slice(slash + 1));
}

export async function saveSnapshot(store: VerdictStore, file: string, now = Date.now()): Promise<SnapshotResult> {
  const tmp = snapshotTempName(file);
  let entries = 0;
  let expired = 0;
  let fh;
  try {
    fh = await open(tmp, 'w', 0o600);
    let batch = SNAPSHOT_HEADER + '\n';
    for (const [client, rec] of store.entries()) {
      if (!liveAt(rec, now)) {
        expired++;
        continue;
      }
      batch += `${client} ${encodeRecord(rec)}\n`;
      entries++;
      if (batch.length >= BATCH_BYTES) {
        await fh.write(batch);
        batch = '';
      }
    }
    if (batch.length > 0) await fh.write(batch);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, file);
    const dir = await open(dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return { ok: true, entries, skipped: 0, expired };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    return { ok: false, entries, skipped: 0, expired, error: (err as Error).message };
  }
}

export async function loadSnapshot(store: VerdictStore, file: string, now = Date.now(), opts: { removeTemps?: boolean } = {}): Promise<SnapshotResult> {
  if (opts.removeTemps === true) {
    const removedTemps = await removeTemps(file);
    const r = await loadSnapshot(store, file, now);
    return removedTemps > 0 ? { ...r, removedTemps } : r;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // No snapshot yet is the normal first start.
    if (e.code === 'ENOENT') return { ok: true, entries: 0, skipped: 0, expired: 0 };
    return { ok: false, entries: 0, skipped: 0, expired: 0, error: e.message };
  }
  const nl = text.indexOf('\n');
  const header = nl < 0 ? text : text.slice(0, nl);
  if (header !== SNAPSHOT_HEADER) {
    const setAside = `${file}.corrupt-${now}`;
    await rename(file, setAside).catch(() => undefined);
    return { ok: false, entries: 0, skipped: 0, expired: 0, error: `bad snapshot header ${JSON.stringify(header.slice(0, 40))}`, setAside };
  }
  let entries = 0;
  let skipped = 0;
  let expired = 0;
  let pos = nl + 1;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end);
    pos = end + 1;
    if (line.length === 0) continue;
    const sp = line.indexOf(' ');
    const client = sp > 0 ? line.slice(0, sp) : '';
    if (sp <= 0 || !validKey(client)) {
      skipped++;
      continue;
    }
    try {
      const rec = decodeRecord(line.slice(sp + 1));
      if (!liveAt(rec, now)) {
        expired++;
        continue;
      }
      store.set(client, rec);
      entries++;
    } catch {
      skipped++;
    }
  }
  return { ok: true, entries, skipped, expired };
}
