/*
 * cli/cache.ts - `smtpscreen cache list|show ADDR|delete ADDR|pass ADDR --ttl D|export|import FILE`.
 *
 * Exports: runCache(), CacheArgs.
 * Online: with the running screener's admin socket (--socket, or admin.socket
 * of --config) answering, every request goes there (cache/admin.ts's
 * protocol) and the screener logs its changes (CACHE ADMIN by: socket).
 * Offline: with --snapshot FILE, or when no screener answers and the
 * configuration names cache.snapshot, the snapshot file is read into a
 * memory store, the request applied, and for a change written back
 * (crash-safe, as the screener saves it) and logged (CACHE ADMIN by:
 * offline, to the configured log file or syslog, else to stderr). A change
 * to a snapshot a live screener owns (cache/owner.ts) is refused: it would
 * be overwritten at its next save. export prints the snapshot format (import
 * reads it back); list and show print one client per line for people.
 * Returns the exit code: 0 done, 1 refused or bad input, 2 the screener or
 * file could not be reached.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { parseDuration } from '../util/duration.js';
import { normalizeAddress } from '../net/cidr.js';
import { MemoryStore } from '../cache/memory.js';
import { SNAPSHOT_HEADER, loadSnapshot, saveSnapshot } from '../cache/snapshot.js';
import { IMPORT_BATCH, applyAdmin, type AdminRequest } from '../cache/admin.js';
import { snapshotOwner } from '../cache/owner.js';
import { createLogger, flushLog } from '../log/logger.js';
import { openLogOutput } from '../log/output.js';
import { Emitter } from '../log/emit.js';
import { EV } from '../log/events.js';

export interface CacheArgs {
  sub: string;
  arg?: string;
  ttl?: string;
  snapshot?: string;
  socket?: string;
}

type Out = (line: string) => void;

/** The requests for one command; import reads its file into batches. */
function requests(a: CacheArgs): AdminRequest[] | string {
  const addr = (): string | null => normalizeAddress(a.arg ?? '');
  switch (a.sub) {
    case 'list':
    case 'export':
      return [{ op: a.sub }];
    case 'show':
    case 'delete':
    case 'pass': {
      const address = addr();
      if (address === null) return `"${a.arg ?? ''}" is not an IPv4 or IPv6 address`;
      if (a.sub !== 'pass') return [{ op: a.sub, address }];
      let ttlMs: number;
      try {
        ttlMs = parseDuration(a.ttl ?? '');
      } catch (err) {
        return `--ttl: ${(err as Error).message}`;
      }
      if (ttlMs < 1) return '--ttl: must be more than 0';
      return [{ op: 'pass', address, ttlMs }];
    }
    case 'import': {
      let text: string;
      try {
        text = readFileSync(a.arg ?? '', 'utf8');
      } catch (err) {
        return `import: ${(err as Error).message}`;
      }
      const lines = text.split('\n').filter((l) => l !== '' && l !== SNAPSHOT_HEADER);
      const out: AdminRequest[] = [];
      for (let i = 0; i < lines.length; i += IMPORT_BATCH) out.push({ op: 'import', lines: lines.slice(i, i + IMPORT_BATCH) });
      return out.length > 0 ? out : [{ op: 'import', lines: [] }];
    }
    default:
      return `unknown cache command "${a.sub}"`;
  }
}

/** One line of output for an entry or a reply. */
function print(sub: string, obj: Record<string, unknown>, out: Out): void {
  if (typeof obj['line'] === 'string') out(obj['line']);
  else if (typeof obj['address'] === 'string' && obj['passes'] !== undefined) {
    const p = obj['passes'] as Record<string, string>;
    out(`${obj['address']}  ${Object.entries(p).filter(([, v]) => v !== 'none').map(([k, v]) => `${k}: ${v}`).join('; ') || 'no pass'}`);
  } else if (sub === 'show' && obj['found'] === false) out(`${String(obj['address'])}: not in the cache`);
  else if (sub === 'delete') out(`${String(obj['address'])}: ${obj['found'] === true ? 'deleted' : 'was not in the cache'}; its next connection is screened`);
  else if (sub === 'pass') out(`${String(obj['address'])}: passed until ${String(obj['until'])}; its next connection is PASS OLD`);
  else if (sub === 'import') out(`imported ${String(obj['entries'])} records, skipped ${String(obj['skipped'])} lines`);
}

/** Send the requests over the socket; resolves with the exit code, or null when nothing answers there. */
async function online(path: string, sub: string, reqs: AdminRequest[], out: Out, err: Out): Promise<number | null> {
  const sock = await new Promise<net.Socket | null>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => resolve(c));
    c.once('error', () => resolve(null));
  });
  if (sock === null) return null;
  sock.setEncoding('utf8');
  let buf = '';
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  sock.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    wake?.();
  });
  sock.on('close', () => {
    ended = true;
    wake?.();
  });
  sock.on('error', () => undefined);
  const nextLine = async (): Promise<string | null> => {
    while (lines.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
    wake = null;
    return lines.shift() ?? null;
  };
  if (sub === 'export') out(SNAPSHOT_HEADER);
  try {
    for (const r of reqs) {
      sock.write(JSON.stringify(r.op === 'pass' ? { op: r.op, address: r.address, ttl_ms: r.ttlMs } : r) + '\n');
      for (;;) {
        const line = await nextLine();
        if (line === null) {
          err('smtpscreen: the screener closed the admin socket');
          return 2;
        }
        const obj = JSON.parse(line) as Record<string, unknown>;
        if (obj['ok'] === false) {
          err(`smtpscreen: ${String(obj['error'])}`);
          return 1;
        }
        if (obj['ok'] === true) {
          print(sub, obj, out);
          break;
        }
        print(sub, obj, out);
      }
    }
  } finally {
    sock.destroy();
  }
  return 0;
}

async function offline(cfg: Config | null, file: string, sub: string, reqs: AdminRequest[], out: Out, err: Out): Promise<number> {
  const writes = sub === 'delete' || sub === 'pass' || sub === 'import';
  const owner = snapshotOwner(file);
  if (writes && owner !== null) {
    err(`smtpscreen: ${file} is owned by a running screener (pid ${owner}): it would overwrite this change at its next save; ` +
      'use its admin socket (admin.socket) or stop it first');
    return 1;
  }
  const store = new MemoryStore(Math.max(cfg?.cache.max_entries ?? 0, 10_000_000));
  const now = Date.now();
  const loaded = await loadSnapshot(store, file, now);
  if (!loaded.ok) {
    err(`smtpscreen: ${file}: ${loaded.error ?? 'unreadable'}`);
    return 2;
  }
  if (sub === 'export') out(SNAPSHOT_HEADER);
  const changes = [];
  for (const r of reqs) {
    const { reply, change } = applyAdmin(store, r, now, (e) => print(sub, e, out));
    if (change !== null) changes.push(change);
    print(sub, reply, out);
  }
  if (!writes) return 0;
  const saved = await saveSnapshot(store, file, now);
  if (!saved.ok) {
    err(`smtpscreen: ${file}: ${saved.error ?? 'not written'}`);
    return 2;
  }
  // Logged where the screener logs (file or syslog), else on stderr: never mixed with the command's output.
  const toStdout = cfg === null || cfg.log.destination === 'stdout';
  const logger = createLogger(toStdout ? { format: 'json', level: 'info', destination: 2 } : { format: cfg.log.format, level: cfg.log.level, output: openLogOutput(cfg.log), ...(cfg.log.destination === 'syslog' ? { program: cfg.log.syslog.tag } : {}) });
  const em = new Emitter(logger);
  for (const c of changes) em.emit(EV.CACHE_ADMIN, { ...c, by: 'offline', file });
  await flushLog(logger, 2000);
  return 0;
}

export async function runCache(cfg: Config | null, a: CacheArgs, out: Out, err: Out): Promise<number> {
  const reqs = requests(a);
  if (typeof reqs === 'string') {
    err(`smtpscreen: cache ${a.sub}: ${reqs}`);
    return 1;
  }
  if (a.snapshot === undefined) {
    const path = a.socket ?? cfg?.admin.socket ?? null;
    if (path !== null) {
      const code = await online(path, a.sub, reqs, out, err);
      if (code !== null) return code;
      if (a.socket !== undefined) {
        err(`smtpscreen: nothing answers on ${path}: is the screener running (admin.socket)?`);
        return 2;
      }
    }
  }
  const file = a.snapshot ?? cfg?.cache.snapshot ?? null;
  if (file === null) {
    err('smtpscreen: cache: no running screener answers on an admin socket, and no snapshot: give --config (admin.socket, cache.snapshot), --socket or --snapshot');
    return 1;
  }
  return offline(cfg, file, a.sub, reqs, out, err);
}
