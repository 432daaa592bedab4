/*
 * server/privileges.ts - after the listeners are bound: drop root for good, or
 * refuse to go on as root.
 *
 * Exports: dropPrivileges(), resolveUser(), PrivilegeResult.
 * Started as root with `user` set, the screener has bound its listeners and
 * read its certificates, access list and snapshot as root; then it takes the
 * user's groups (initgroups), its group (setgid) and its uid (setuid). With
 * the real, effective and saved uid all the user's, the kernel clears every
 * capability: there is no way back (checked: setuid(0) must fail). Started
 * as root without `user`, it refuses to run unless `allow_root: true`.
 * Started as the user itself (systemd User= with
 * AmbientCapabilities=CAP_NET_BIND_SERVICE), there is nothing to drop.
 * Started as another user with `user` set: an error, only root can switch.
 * After the drop the snapshot is written as the user: its directory must be
 * writable by the user, and is checked here.
 * Names are resolved with getent(1), so users from NSS (LDAP, ...) work too.
 */
import { accessSync, constants } from 'node:fs';
import type { execFileSync as ExecFileSync } from 'node:child_process';
import { lazyRequire } from '../util/lazy-require.js';
import { dirname } from 'node:path';
import type { Config } from '../config/types.js';
import { ScreenError } from '../util/errors.js';

export interface PrivilegeResult {
  /** What happened: dropped to the user, already the user, root allowed, or not root. */
  readonly action: 'dropped' | 'unchanged' | 'root';
  readonly uid: number;
  readonly gid: number;
}

/** A getent(1) database entry split on ":", or null when there is none. */
function getent(db: 'passwd' | 'group', name: string): string[] | null {
  try {
    const execFileSync = (lazyRequire('node:child_process') as { execFileSync: typeof ExecFileSync }).execFileSync;
    const out = execFileSync('getent', [db, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const line = out.split('\n')[0];
    return line === undefined || line === '' ? null : line.split(':');
  } catch {
    return null;
  }
}

/** resolveUser - uid and gid of `user` (and `group`, else the user's primary group); errors name the key. */
export function resolveUser(user: string, group: string | null): { uid: number; gid: number } {
  const pw = getent('passwd', user);
  if (pw === null || pw[2] === undefined || pw[3] === undefined) {
    throw new ScreenError('SCR_ERR_PRIVILEGES', `user: no such user "${user}" (getent passwd ${user}): create it (e.g. adduser --system --group --no-create-home smtpscreen) or name an existing one`,
      { key: 'user', value: user });
  }
  const uid = Number(pw[2]);
  let gid = Number(pw[3]);
  if (group !== null) {
    const gr = getent('group', group);
    if (gr === null || gr[2] === undefined) {
      throw new ScreenError('SCR_ERR_PRIVILEGES', `group: no such group "${group}" (getent group ${group}): name an existing group, or leave group out to use ${user}'s own`,
        { key: 'group', value: group });
    }
    gid = Number(gr[2]);
  }
  return { uid, gid };
}

/**
 * dropPrivileges - call once the listeners are bound. Throws a ScreenError
 * (SCR_ERR_PRIVILEGES) naming the key and the fix.
 */
export function dropPrivileges(config: Config): PrivilegeResult {
  const { user, group, allow_root: allowRoot } = config;
  const euid = process.geteuid?.() ?? -1;
  if (user === null) {
    if (euid === 0 && !allowRoot) {
      throw new ScreenError('SCR_ERR_PRIVILEGES', 'running as root: set "user:" to an unprivileged user (smtpscreen binds its listeners as root, ' +
        'then switches to that user for good), or run it as that user with CAP_NET_BIND_SERVICE (systemd: User= and ' +
        'AmbientCapabilities=); "allow_root: true" keeps root if you really mean it', { key: 'user', value: null });
    }
    return { action: euid === 0 ? 'root' : 'unchanged', uid: euid, gid: process.getegid?.() ?? -1 };
  }
  const { uid, gid } = resolveUser(user, group);
  if (euid === uid) {
    // Started as the user (systemd User=): nothing to drop. A group other than ours cannot be taken without root.
    const egid = process.getegid?.() ?? -1;
    if (group !== null && egid !== gid) {
      throw new ScreenError('SCR_ERR_PRIVILEGES', `group: running as group ${egid}, not "${group}" (${gid}), and only root can switch: start it as root, or with Group=${group} in the unit`,
        { key: 'group', value: group });
    }
    checkWritable(config);
    return { action: 'unchanged', uid, gid: egid };
  }
  if (euid !== 0) {
    throw new ScreenError('SCR_ERR_PRIVILEGES', `user: running as uid ${euid}, not "${user}" (${uid}), and only root can switch users: ` +
      `start smtpscreen as root (it drops to "${user}" once bound), as "${user}" itself, or remove "user:"`, { key: 'user', value: user });
  }
  if (uid === 0 && !allowRoot) {
    throw new ScreenError('SCR_ERR_PRIVILEGES', `user: "${user}" is root (uid 0): name an unprivileged user, or set "allow_root: true"`, { key: 'user', value: user });
  }
  try {
    // In Node on POSIX, missing from @types/node 20.
    (process as unknown as { initgroups: (user: string, extraGroup: number) => void }).initgroups(user, gid);
    process.setgid?.(gid);
    process.setuid?.(uid);
  } catch (err) {
    throw new ScreenError('SCR_ERR_PRIVILEGES', `user: cannot switch to "${user}" (uid ${uid}, gid ${gid}): ${(err as Error).message}`, { key: 'user', value: user });
  }
  if (uid !== 0) {
    // No way back: the saved uid is the user's too, so this must fail.
    let back = false;
    try {
      process.setuid?.(0);
      back = true;
    } catch {
      /* expected: EPERM */
    }
    if (back || process.getuid?.() !== uid || process.geteuid?.() !== uid || process.getegid?.() !== gid) {
      throw new ScreenError('SCR_ERR_PRIVILEGES', `user: the switch to "${user}" did not hold (uid ${String(process.getuid?.())}, euid ${String(process.geteuid?.())}): refusing to run`,
        { key: 'user', value: user });
    }
  }
  checkWritable(config);
  return { action: 'dropped', uid, gid };
}

/** What is written after the drop must be writable by the user: the snapshot's directory. */
function checkWritable(config: Config): void {
  const snap = config.cache.snapshot;
  if (snap === null) return;
  const dir = dirname(snap);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EACCES';
    const who = config.user ?? `uid ${String(process.geteuid?.())}`;
    throw new ScreenError('SCR_ERR_PRIVILEGES', `cache.snapshot: the directory ${dir} is not writable by ${who} (${code}): the snapshot is written ` +
      `there after the switch; chown ${config.user ?? 'the user'} ${dir} (systemd: StateDirectory=smtpscreen gives /var/lib/smtpscreen)`,
      { key: 'cache.snapshot', value: snap });
  }
}
