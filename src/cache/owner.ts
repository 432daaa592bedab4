/*
 * cache/owner.ts - which screener owns a snapshot file, so that the offline
 * cache admin never writes a snapshot a running screener would overwrite at
 * its next save (or whose changes it would lose).
 *
 * Exports: ownerFile(), claimSnapshot(), releaseSnapshot(), snapshotOwner().
 * The screener writes its pid to ".<file>.owner" beside the snapshot at start
 * and removes it at stop (only while it still names its own pid). A crash
 * leaves the file: snapshotOwner() reads the pid and asks the kernel whether
 * that process lives (kill 0), so a stale file owns nothing.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function ownerFile(snapshot: string): string {
  return join(dirname(snapshot), `.${basename(snapshot)}.owner`);
}

/** The screener starts with this snapshot: mark it as ours. Never throws (a missing directory is the save's error to report). */
export function claimSnapshot(snapshot: string, pid = process.pid): void {
  try {
    writeFileSync(ownerFile(snapshot), `${pid}\n`, { mode: 0o644 });
  } catch {
    /* the snapshot's own save logs why the directory is unusable */
  }
}

/** At stop: remove the mark if it is still ours. */
export function releaseSnapshot(snapshot: string, pid = process.pid): void {
  try {
    if (readFileSync(ownerFile(snapshot), 'utf8').trim() === String(pid)) unlinkSync(ownerFile(snapshot));
  } catch {
    /* gone already */
  }
}

/** The pid of the live process that owns `snapshot`, or null (none, or a stale mark). */
export function snapshotOwner(snapshot: string): number | null {
  let text: string;
  try {
    text = readFileSync(ownerFile(snapshot), 'utf8').trim();
  } catch {
    return null;
  }
  if (!/^\d{1,10}$/.test(text)) return null;
  const pid = Number(text);
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: it lives, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}
