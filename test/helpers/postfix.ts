/*
 * test/helpers/postfix.ts - a private Postfix instance for integration tests.
 *
 * Exports: startPostfix(opts), PostfixInstance, PostfixOptions,
 *          findExecutable(name), stopAllPostfix().
 *
 * startPostfix() builds a throw-away Postfix under /tmp/smtpscreen-postfix-XXXX
 * (its own main.cf, master.cf, queue, data directory and mail log) and starts
 * it as root with `postfix -c DIR/etc start`. It never reads or touches
 * /etc/postfix/main.cf, /var/spool/postfix or a system instance: the master
 * lock (DIR/spool/pid/master.pid, DIR/data/master.lock) and every unix socket
 * live under DIR, and the only inet services are three smtpd on free loopback
 * ports:
 *   xclientPort  smtpd_authorized_xclient_hosts = 127.0.0.0/8   (log tag postfix/xclient/smtpd)
 *   proxyPort    smtpd_upstream_proxy_protocol = haproxy (v1+v2) (log tag postfix/proxy/smtpd)
 *   plainPort    plain smtpd                                    (log tag postfix/plain/smtpd)
 * Mail to @example.test is accepted from any client and thrown away by the
 * discard(8) agent; the evidence stays in DIR/maillog:
 *   "connect from unknown[ADDR]", "QUEUEID: client=unknown[ADDR]",
 *   "to=<..>, relay=none, ... status=sent (example.test)".
 * Nothing is looked up in DNS (smtpd_peername_lookup = no, so clients are
 * always "unknown[ADDR]").
 *
 * If Postfix is missing the helper throws (tests fail, never skip).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePorts } from './ports.js';

export interface PostfixOptions {
  /** main.cf parameters added to or overriding the defaults below. */
  main?: Record<string, string>;
  /** Keep DIR after stop() for post-mortem (also: env SMTPSCREEN_KEEP_POSTFIX=1). */
  keepDir?: boolean;
}

export interface PostfixInstance {
  /** The instance directory: etc/, spool/, data/, maillog. */
  dir: string;
  /** DIR/etc, for `postconf -c` / `postfix -c`. */
  configDir: string;
  /** Always 127.0.0.1. */
  host: string;
  /** smtpd that accepts XCLIENT from 127.0.0.0/8. */
  xclientPort: number;
  /** smtpd that requires a PROXY v1 or v2 header (smtpd_upstream_proxy_protocol = haproxy). */
  proxyPort: number;
  /** Plain smtpd. */
  plainPort: number;
  /** Current contents of DIR/maillog ('' before the first line). */
  maillog(): string;
  /** Current length of the mail log: pass it as `since` to waitForLog to only see later lines. */
  mark(): number;
  /**
   * Resolve with the first match of `re` in the mail log (from character
   * offset `since`); reject after timeoutMs with the log tail in the message.
   */
  waitForLog(re: RegExp, timeoutMs?: number, since?: number): Promise<RegExpMatchArray>;
  /** PID of the running master(8), or null. */
  masterPid(): number | null;
  /** Stop the master and all its children; remove DIR unless kept. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const NOT_INSTALLED = 'postfix is not installed: run scripts/setup-test-deps.sh (Debian package "postfix")';
const SBIN_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of an executable found on PATH (plus the sbin directories), or null. */
export function findExecutable(name: string, extraDirs: string[] = SBIN_DIRS): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), ...extraDirs].filter((d) => d !== '');
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const env = { ...process.env, PATH: [process.env['PATH'] ?? '', ...SBIN_DIRS].filter((d) => d !== '').join(':') };
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env, encoding: 'utf8' }, (err, stdout, stderr) => {
      let code: number | null = 0;
      if (err) code = typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr: stderr + (err && typeof err.code !== 'number' ? `\n${err.message}` : '') });
    });
  });
}

async function mustRun(file: string, args: string[]): Promise<RunResult> {
  const r = await run(file, args);
  if (r.code !== 0) {
    throw new Error(`${path.basename(file)} ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  }
  return r;
}

function userIds(user: string): { uid: number; gid: number } {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`user "${user}" does not exist: reinstall the Debian package "postfix" (scripts/setup-test-deps.sh)`);
}

function firstExisting(paths: string[]): string | null {
  for (const p of paths) if (fs.existsSync(p)) return p;
  return null;
}

/** State of a process from /proc: null when gone, else the one-letter state (Z = zombie). */
function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/**
 * A zombie counts as gone: on machines whose PID 1 reaps orphans slowly (this
 * one's init takes up to ~2 s) the exited master stays a zombie for a while.
 */
function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

function isPostfixMaster(pid: number): boolean {
  try {
    return /(^|\/)master\0/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes whose process group is `pgid` (master is a group leader). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0] = state, rest[1] = ppid, rest[2] = pgrp
      if (rest[2] === String(pgid) && rest[0] !== 'Z' && rest[0] !== 'X') out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** True when `port` on 127.0.0.1 can be bound right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function readPid(file: string): number | null {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isFinite(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

function tail(text: string, lines = 40): string {
  const all = text.split('\n');
  return all.slice(Math.max(0, all.length - lines - 1)).join('\n');
}

// ---- leftovers: kill every instance still running when the test process exits ----
interface Live {
  dir: string;
  pidFile: string;
  keep: boolean;
}
const live = new Set<Live>();
let hooksInstalled = false;

function killNow(l: Live): void {
  const pid = readPid(l.pidFile);
  if (pid !== null && alive(pid) && isPostfixMaster(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (!l.keep) fs.rmSync(l.dir, { recursive: true, force: true });
}

/** Kill every Postfix instance this process started and has not stopped (synchronous). */
export function stopAllPostfix(): void {
  for (const l of live) killNow(l);
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', stopAllPostfix);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSig = () => {
      stopAllPostfix();
      // Re-raise with the default action once no other listener wants it.
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, onSig);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSig);
  }
}

/**
 * Postfix re-reads a config file that changed within the last second or so,
 * sleeping 300 ms per try, until it is old enough (a guard against reading a
 * file while an editor writes it): a freshly written main.cf costs every
 * postconf/postfix command up to 2 s. Moving the mtimes a minute back avoids it.
 */
function backdate(etc: string): void {
  const past = new Date(Date.now() - 60_000);
  for (const f of fs.readdirSync(etc)) fs.utimesSync(path.join(etc, f), past, past);
}

function mainCf(dir: string, extra: Record<string, string>): string {
  const params: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: `${dir}/spool`,
    data_directory: `${dir}/data`,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    inet_interfaces: HOST,
    // 'all' although it listens on 127.0.0.1 only: with 'ipv4' smtpd refuses XCLIENT ADDR=IPV6:...
    // ("501 5.5.4 Bad ADDR syntax"), and the screener hands over IPv6 clients too.
    inet_protocols: 'all',
    // Postfix >= 3.4 logs to a file through postlogd (no syslog daemon here);
    // maillog_file must start with one of maillog_file_prefixes or `postfix check` fails.
    maillog_file: `${dir}/maillog`,
    maillog_file_prefixes: dir,
    myhostname: 'backend.smtpscreen.test',
    mydomain: 'smtpscreen.test',
    myorigin: '$myhostname',
    // Nothing is local: mail to example.test is relayed, and relaying means discard(8).
    mydestination: '',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
    relay_domains: 'example.test',
    relay_transport: 'discard:example.test',
    default_transport: 'discard:no-outbound-mail',
    mynetworks: '127.0.0.0/8',
    // Any client may send to example.test; no other restrictions, no DNS.
    smtpd_client_restrictions: '',
    smtpd_helo_restrictions: '',
    smtpd_sender_restrictions: '',
    smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
    smtpd_recipient_restrictions: '',
    smtpd_peername_lookup: 'no',
    smtp_dns_support_level: 'disabled',
    // No artificial slowness.
    smtpd_error_sleep_time: '0s',
    in_flow_delay: '0s',
    biff: 'no',
    notify_classes: '',
    ...extra,
  };
  return (
    '# written by test/helpers/postfix.ts: a private test instance\n' +
    Object.entries(params)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') +
    '\n'
  );
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixInstance> {
  const postfix = findExecutable('postfix');
  const postconf = findExecutable('postconf');
  if (postfix === null || postconf === null) throw new Error(NOT_INSTALLED);
  const masterProto = firstExisting(['/etc/postfix/master.cf.proto', '/usr/share/postfix/master.cf.dist']);
  if (masterProto === null) throw new Error(`${NOT_INSTALLED}: no master.cf.proto found`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('startPostfix must run as root: postfix(1) starts master(8) only as root');
  }
  const ids = userIds('postfix');
  installHooks();

  let lastError: Error | null = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [xclientPort, proxyPort, plainPort] = await freePorts(3, HOST);
    if (xclientPort === undefined || proxyPort === undefined || plainPort === undefined) throw new Error('freePorts');

    // Postfix's user must traverse DIR (mkdtemp makes it 0700); /tmp rather than
    // os.tmpdir() because TMPDIR may point somewhere the postfix user cannot reach.
    const dir = fs.mkdtempSync('/tmp/smtpscreen-postfix-');
    fs.chmodSync(dir, 0o755);
    const etc = path.join(dir, 'etc');
    const keep = opts.keepDir === true || process.env['SMTPSCREEN_KEEP_POSTFIX'] === '1';
    const entry: Live = { dir, pidFile: path.join(dir, 'spool', 'pid', 'master.pid'), keep };
    live.add(entry);
    try {
      fs.mkdirSync(etc);
      fs.mkdirSync(path.join(dir, 'spool'));
      fs.mkdirSync(path.join(dir, 'data'));
      fs.chownSync(path.join(dir, 'data'), ids.uid, ids.gid);
      fs.copyFileSync(masterProto, path.join(etc, 'master.cf'));
      const dyn = firstExisting(['/etc/postfix/dynamicmaps.cf']);
      if (dyn !== null) fs.copyFileSync(dyn, path.join(etc, 'dynamicmaps.cf'));
      fs.writeFileSync(path.join(etc, 'main.cf'), mainCf(dir, opts.main ?? {}));
      backdate(etc);

      await mustRun(postconf, ['-c', etc, '-F', '*/*/chroot = n']);
      await mustRun(postconf, ['-c', etc, '-M#', 'smtp/inet']);
      const svc = (port: number, name: string, extra: string) =>
        `${HOST}:${port}/inet = ${HOST}:${port} inet n - n - - smtpd -o syslog_name=postfix/${name}${extra}`;
      await mustRun(postconf, [
        '-c', etc, '-Me',
        svc(xclientPort, 'xclient', ` -o smtpd_authorized_xclient_hosts=127.0.0.0/8`),
        svc(proxyPort, 'proxy', ` -o smtpd_upstream_proxy_protocol=haproxy`),
        svc(plainPort, 'plain', ''),
      ]);

      backdate(etc);
      // postfix(1) prints its fatal errors only to a terminal (or to the mail log once
      // postlogd runs): start it on a pty with script(1) so that they are captured.
      const script = findExecutable('script');
      const started =
        script !== null
          ? await run(script, ['-qec', `${postfix} -c ${etc} start`, '/dev/null'])
          : await run(postfix, ['-c', etc, 'start']);
      started.stdout = started.stdout.replace(/\r\n/g, '\n');
      const log = path.join(dir, 'maillog');
      const readLog = () => {
        try {
          return fs.readFileSync(log, 'utf8');
        } catch {
          return '';
        }
      };
      if (started.code !== 0) {
        const text = readLog();
        // master(8) cannot report a failed bind anywhere (it has no tty and postlogd is
        // not up yet): "mail system startup failed" is all there is. Probe the ports.
        const busy: number[] = [];
        for (const p of [xclientPort, proxyPort, plainPort]) if (!(await canBind(p))) busy.push(p);
        lastError = new Error(
          `postfix -c ${etc} start failed (exit ${started.code})` +
            (busy.length > 0 ? ` - port(s) ${busy.join(', ')} taken by another process meanwhile` : '') +
            `\n${started.stdout}${started.stderr}\n--- ${log} (tail) ---\n${tail(text)}`,
        );
        killNow(entry);
        live.delete(entry);
        if (busy.length > 0 && attempt < 3) continue;
        throw lastError;
      }

      let stopping: Promise<void> | null = null;
      const masterPid = () => {
        const pid = readPid(entry.pidFile);
        return pid !== null && alive(pid) && isPostfixMaster(pid) ? pid : null;
      };
      const inst: PostfixInstance = {
        dir,
        configDir: etc,
        host: HOST,
        xclientPort,
        proxyPort,
        plainPort,
        maillog: readLog,
        mark: () => readLog().length,
        masterPid,
        async waitForLog(re: RegExp, timeoutMs = 10_000, since = 0): Promise<RegExpMatchArray> {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const m = readLog().slice(since).match(re);
            if (m) return m;
            if (Date.now() >= deadline) {
              throw new Error(`waitForLog(${String(re)}) timed out after ${timeoutMs} ms; ${log} (tail):\n${tail(readLog().slice(since))}`);
            }
            await sleep(25);
          }
        },
        stop(): Promise<void> {
          stopping ??= (async () => {
            const pid = masterPid();
            if (pid !== null) {
              // What `postfix stop` does, without its fixed 1 s sleep: SIGTERM the
              // master, which SIGTERMs its process group; SIGKILL the group after 5 s.
              process.kill(pid, 'SIGTERM');
              const deadline = Date.now() + 5_000;
              while (Date.now() < deadline && (alive(pid) || groupMembers(pid).length > 0)) await sleep(20);
              if (alive(pid) || groupMembers(pid).length > 0) {
                try {
                  process.kill(-pid, 'SIGKILL');
                } catch {
                  /* gone */
                }
                const d2 = Date.now() + 2_000;
                while (Date.now() < d2 && (alive(pid) || groupMembers(pid).length > 0)) await sleep(20);
              }
            }
            live.delete(entry);
            if (!keep) fs.rmSync(dir, { recursive: true, force: true });
          })();
          return stopping;
        },
      };
      // master(8) logs this through postlogd: once it is in the file, logging works
      // and the master has finished forking its first children.
      try {
        await inst.waitForLog(/postfix\/master\[\d+\]: daemon started/, 10_000);
      } catch (err) {
        await inst.stop();
        throw new Error(`postfix -c ${etc} start: no "daemon started" in the mail log: ${(err as Error).message}`);
      }
      return inst;
    } catch (err) {
      if (live.has(entry)) {
        killNow(entry);
        live.delete(entry);
      }
      throw err;
    }
  }
  throw lastError ?? new Error('startPostfix: failed');
}
