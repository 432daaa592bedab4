/*
 * test/helpers/rbldnsd.ts - a private rbldnsd(8) serving DNSBL zones on a free
 * loopback UDP port, for integration tests and the load bench.
 *
 * Exports: startRbldnsd(zones, opts), Rbldnsd, RbldnsdZone, RbldnsdOptions,
 *          RbldnsdDatasetType, fixtureZones(), fixtureZone(file),
 *          dnsQuery(server, name, type, timeoutMs), DnsReply, DnsAnswer,
 *          dnsblName(addr, zone), stopAllRbldnsd().
 *
 * startRbldnsd() writes every zone file into a fresh /tmp/smtpscreen-rbldnsd-XXXX
 * (0755, files 0644: rbldnsd drops to the user `rbldns`, which must read them)
 * and starts, as a child of this process (so its PID is known),
 *   rbldnsd -n -u rbldns -b 127.0.0.1/PORT -w DIR -t 300 -c 1 ZONE:TYPE:FILE...
 *   -n    stay in the foreground (no fork, the PID is the server's);
 *   -u    the user to run as (passed only when running as root: rbldnsd refuses
 *         to run as root, and a non-root user cannot switch);
 *   -t    default TTL of the answers (300 s);
 *   -c 1  check the zone files' mtime every second and reload a changed one,
 *         so a test can edit a zone with writeZone() and see it within ~1-2 s.
 * It resolves once the server answers a DNS query, and retries with another
 * port when the one picked was taken meanwhile. A zone name may appear in
 * several entries: rbldnsd builds one zone from several datasets.
 *
 * rbldnsd answers only its zones (REFUSED for other names), A and TXT from
 * the datasets, NXDOMAIN for addresses not listed.
 *
 * A missing binary is an Error naming the Debian package (tests fail, never
 * skip). Every server still running when this process exits is SIGKILLed.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { findExecutable } from './postfix.js';
import { repoRoot } from './screener.js';

export type RbldnsdDatasetType =
  | 'ip4set'
  | 'ip4tset'
  | 'ip4trie'
  | 'ip6tset'
  | 'ip6trie'
  | 'dnset'
  | 'generic'
  | 'combined'
  | 'acl';

export interface RbldnsdZone {
  /** Zone name, e.g. 'bl.test'. */
  name: string;
  /** rbldnsd dataset type (rbldnsd(8), "DATASET TYPES AND FORMATS"). */
  type: RbldnsdDatasetType;
  /** Contents of the dataset file. */
  file: string;
  /** File name inside the zone directory (default `<name>.<type>.zone`). */
  fileName?: string;
}

export interface RbldnsdOptions {
  /** Default TTL of the answers (rbldnsd -t; default '300'). */
  ttl?: string;
  /** Zone file check interval (rbldnsd -c; default '1' = every second). */
  check?: string;
  /** ms to wait until the server answers (default 10000). */
  startTimeoutMs?: number;
  /** Keep the zone directory after stop() (also: env SMTPSCREEN_KEEP_RBLDNSD=1). */
  keepDir?: boolean;
  /** Further rbldnsd arguments, placed before the zone specifications. */
  extraArgs?: string[];
}

export interface Rbldnsd {
  /** Always 127.0.0.1. */
  host: string;
  /** UDP port it answers on. */
  port: number;
  /** "127.0.0.1:PORT", as resolver.servers wants it. */
  address: string;
  /** The zone directory (rbldnsd -w). */
  dir: string;
  /** PID of the rbldnsd process (a child of this process). */
  pid: number;
  /** Absolute path of each zone file, by file name. */
  files: Record<string, string>;
  /**
   * Replace a zone file's contents. `name` is a zone name (when it has a single
   * dataset) or a file name. The file is written atomically (temp + rename)
   * with an mtime strictly later than the previous one (rbldnsd compares whole
   * seconds), so the server reloads it at its next check (within ~1-2 s with -c 1).
   */
  writeZone(name: string, contents: string): void;
  /** SIGSTOP: the server stops answering (queries pile up unanswered). */
  pause(): void;
  /** SIGCONT: the server answers again (including queries sent while paused). */
  resume(): void;
  /** True between pause() and resume(). */
  isPaused(): boolean;
  /** Send one query to this server; null when no reply within timeoutMs (default 1000). */
  query(name: string, type?: QueryType, timeoutMs?: number): Promise<DnsReply | null>;
  /** rbldnsd's stdout and stderr so far (start-up, reloads, errors). */
  output(): string;
  /** SIGTERM (SIGKILL after 3 s), wait for the exit, remove the directory unless kept. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const NOT_INSTALLED = 'rbldnsd is not installed: run scripts/setup-test-deps.sh (Debian package "rbldnsd")';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- fixtures --

/** Contents of fixtures/dnsbl/<file>. */
export function fixtureZone(file: string): string {
  return fs.readFileSync(path.join(repoRoot(), 'fixtures', 'dnsbl', file), 'utf8');
}

/**
 * The standard test zones from fixtures/dnsbl/ (file names as there, so
 * writeZone('bl.test', ...) and writeZone('bl.zone', ...) both work):
 *   bl.test  ip4set  bl.zone     bl2.test ip4set bl2.zone    wl.test ip4set wl.zone
 *   bl6.test ip6trie bl6.zone  + bl6.test ip4set bl6-v4.zone (RFC 5782 IPv4 test entry)
 */
export function fixtureZones(): RbldnsdZone[] {
  const z = (name: string, type: RbldnsdDatasetType, fileName: string): RbldnsdZone => ({
    name,
    type,
    fileName,
    file: fixtureZone(fileName),
  });
  return [
    z('bl.test', 'ip4set', 'bl.zone'),
    z('bl2.test', 'ip4set', 'bl2.zone'),
    z('wl.test', 'ip4set', 'wl.zone'),
    z('bl6.test', 'ip6trie', 'bl6.zone'),
    z('bl6.test', 'ip4set', 'bl6-v4.zone'),
  ];
}

// ------------------------------------------------------------- mini DNS ----

export type QueryType = 'A' | 'TXT' | 'SOA' | 'NS' | 'AAAA' | number;
const TYPE_CODES: Record<string, number> = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28 };
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export interface DnsAnswer {
  name: string;
  type: number;
  ttl: number;
  /** A: dotted quad; TXT: the strings joined; other types: rdata as hex. */
  data: string;
}

export interface DnsReply {
  id: number;
  rcode: number;
  /** 'NOERROR', 'NXDOMAIN', 'REFUSED', ... */
  status: string;
  aa: boolean;
  answers: DnsAnswer[];
  /** Authority section records (SOA/NS), same shape. */
  authority: DnsAnswer[];
}

/**
 * The DNSBL query name of a client address under `zone`: reversed octets for
 * IPv4 (2.0.0.127.bl.test), reversed nibbles for IPv6 (32 labels).
 */
export function dnsblName(addr: string, zone: string): string {
  if (net.isIPv4(addr)) return `${addr.split('.').reverse().join('.')}.${zone}`;
  if (!net.isIPv6(addr)) throw new Error(`dnsblName: not an IP address: ${addr}`);
  return `${expandIPv6(addr).split('').reverse().join('.')}.${zone}`;
}

/** 32 lower-case hex digits of an IPv6 address. */
function expandIPv6(addr: string): string {
  let a = addr.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4?.[1] !== undefined) {
    const o = v4[1].split('.').map(Number);
    const hex = (x: number, y: number) => ((x << 8) | y).toString(16);
    a = a.slice(0, v4.index) + `${hex(o[0] ?? 0, o[1] ?? 0)}:${hex(o[2] ?? 0, o[3] ?? 0)}`;
  }
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

function encodeQuery(id: number, name: string, qtype: number): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0000, 2); // standard query, RD=0 (an authoritative server needs none)
  header.writeUInt16BE(1, 4);
  parts.push(header);
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    if (b.length > 63) throw new Error(`dnsQuery: label too long: ${l}`);
    parts.push(Buffer.from([b.length]), b);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0);
  tail.writeUInt16BE(qtype, 1);
  tail.writeUInt16BE(1, 3); // IN
  parts.push(tail);
  return Buffer.concat(parts);
}

/** Read a (possibly compressed) name at `off`; returns the name and the offset after it in the record. */
function readName(buf: Buffer, off: number): [string, number] {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = buf.readUInt8(pos);
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return [labels.join('.').toLowerCase(), end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = buf.readUInt16BE(pos) & 0x3fff;
      continue;
    }
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('dnsQuery: name compression loop');
}

function decodeReply(buf: Buffer): DnsReply {
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  let off = 12;
  for (let i = 0; i < qd; i++) off = readName(buf, off)[1] + 4;
  const readRecords = (n: number): DnsAnswer[] => {
    const out: DnsAnswer[] = [];
    for (let i = 0; i < n; i++) {
      const [name, o] = readName(buf, off);
      const type = buf.readUInt16BE(o);
      const ttl = buf.readUInt32BE(o + 4);
      const rdlen = buf.readUInt16BE(o + 8);
      const rd = buf.subarray(o + 10, o + 10 + rdlen);
      let data: string;
      if (type === 1 && rdlen === 4) data = [...rd].join('.');
      else if (type === 16) {
        const strs: string[] = [];
        for (let p = 0; p < rd.length; ) {
          const l = rd.readUInt8(p);
          strs.push(rd.toString('latin1', p + 1, p + 1 + l));
          p += 1 + l;
        }
        data = strs.join('');
      } else data = rd.toString('hex');
      out.push({ name, type, ttl, data });
      off = o + 10 + rdlen;
    }
    return out;
  };
  const answers = readRecords(an);
  const authority = readRecords(ns);
  const rcode = flags & 0x0f;
  return { id, rcode, status: RCODE_NAMES[rcode] ?? `RCODE${rcode}`, aa: (flags & 0x0400) !== 0, answers, authority };
}

/**
 * One UDP query to `server` (host 127.0.0.1 unless given); resolves with the
 * reply, or null when none arrives within timeoutMs. Never rejects on a
 * timeout; rejects on a malformed reply.
 */
export function dnsQuery(
  server: { host?: string; port: number },
  name: string,
  type: QueryType = 'A',
  timeoutMs = 1000,
): Promise<DnsReply | null> {
  const qtype = typeof type === 'number' ? type : TYPE_CODES[type];
  if (qtype === undefined) throw new Error(`dnsQuery: unknown type ${String(type)}`);
  const host = server.host ?? HOST;
  const id = Math.floor(Math.random() * 0x10000);
  const packet = encodeQuery(id, name, qtype);
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      fn();
    };
    const timer = setTimeout(() => finish(() => resolve(null)), timeoutMs);
    sock.on('error', (err) => finish(() => reject(err)));
    sock.on('message', (msg) => {
      if (msg.length < 12 || msg.readUInt16BE(0) !== id) return; // not ours
      try {
        const r = decodeReply(msg);
        finish(() => resolve(r));
      } catch (err) {
        finish(() => reject(err as Error));
      }
    });
    sock.send(packet, server.port, host);
  });
}

// ----------------------------------------------------------------- process --

interface Live {
  child: ChildProcessByStdio<null, Readable, Readable>;
  dir: string;
  keep: boolean;
}
const live = new Set<Live>();
let hooksInstalled = false;

function killNow(l: Live): void {
  const pid = l.child.pid;
  if (pid !== undefined && l.child.exitCode === null && l.child.signalCode === null) {
    try {
      process.kill(pid, 'SIGKILL'); // works on a stopped process too
    } catch {
      /* gone */
    }
  }
  if (!l.keep) fs.rmSync(l.dir, { recursive: true, force: true });
}

/** SIGKILL every rbldnsd this process started and has not stopped (synchronous). */
export function stopAllRbldnsd(): void {
  for (const l of live) killNow(l);
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', stopAllRbldnsd);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSig = () => {
      stopAllRbldnsd();
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, onSig);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSig);
  }
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function userExists(user: string): boolean {
  try {
    return fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((l) => l.split(':')[0] === user);
  } catch {
    return false;
  }
}

function fileNames(zones: RbldnsdZone[]): string[] {
  const seen = new Set<string>();
  return zones.map((z) => {
    let n = z.fileName ?? `${z.name}.${z.type}.zone`;
    if (z.fileName === undefined) for (let i = 2; seen.has(n); i++) n = `${z.name}.${z.type}.${i}.zone`;
    if (seen.has(n)) throw new Error(`startRbldnsd: file name ${n} used twice`);
    if (n.includes('/') || n.includes(':') || n.includes(',') || n.startsWith('.')) {
      throw new Error(`startRbldnsd: bad file name ${JSON.stringify(n)} (no '/', ':', ',' or leading '.')`);
    }
    seen.add(n);
    return n;
  });
}

export async function startRbldnsd(zones: RbldnsdZone[], opts: RbldnsdOptions = {}): Promise<Rbldnsd> {
  const bin = findExecutable('rbldnsd');
  if (bin === null) throw new Error(NOT_INSTALLED);
  if (zones.length === 0) throw new Error('startRbldnsd: no zones');
  for (const z of zones) {
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(z.name)) throw new Error(`startRbldnsd: bad zone name ${JSON.stringify(z.name)}`);
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && !userExists('rbldns')) {
    throw new Error('user "rbldns" does not exist: reinstall the Debian package "rbldnsd" (scripts/setup-test-deps.sh)');
  }
  const names = fileNames(zones);
  installHooks();

  const keep = opts.keepDir === true || process.env['SMTPSCREEN_KEEP_RBLDNSD'] === '1';
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  let lastError: Error | null = null;

  for (let attempt = 1; attempt <= 5; attempt++) {
    // /tmp rather than os.tmpdir(): the rbldns user must be able to reach it.
    const dir = fs.mkdtempSync('/tmp/smtpscreen-rbldnsd-');
    fs.chmodSync(dir, 0o755);
    const files: Record<string, string> = {};
    const mtimes = new Map<string, number>(); // file -> last mtime set, whole seconds
    zones.forEach((z, i) => {
      const n = names[i] as string;
      const p = path.join(dir, n);
      fs.writeFileSync(p, z.file, { mode: 0o644 });
      fs.chmodSync(p, 0o644); // the umask may have cut the mode
      files[n] = p;
      mtimes.set(n, Math.floor(fs.statSync(p).mtimeMs / 1000));
    });

    const port = await freeUdpPort();
    const args = ['-n'];
    if (isRoot) args.push('-u', 'rbldns');
    args.push('-b', `${HOST}/${port}`, '-w', dir, '-t', opts.ttl ?? '300', '-c', opts.check ?? '1', ...(opts.extraArgs ?? []));
    zones.forEach((z, i) => args.push(`${z.name}:${z.type}:${names[i] as string}`));

    const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry: Live = { child, dir, keep };
    live.add(entry);
    // Must not keep the test process alive on its own; the exit hook kills it.
    child.unref();
    (child.stdout as unknown as net.Socket).unref();
    (child.stderr as unknown as net.Socket).unref();
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.stderr.on('data', (s: string) => (out += s));
    let spawnError: Error | null = null;
    child.on('error', (err) => {
      spawnError = err;
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const hasExited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== null;
    const describe = () =>
      `rbldnsd ${args.join(' ')}: exit ${String(child.exitCode)} signal ${String(child.signalCode)}` +
      (spawnError !== null ? ` (${(spawnError as Error).message})` : '') +
      `\n--- output ---\n${out.slice(-4000)}`;

    let paused = false;
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (!hasExited() && child.pid !== undefined) {
          try {
            if (paused) process.kill(child.pid, 'SIGCONT');
            process.kill(child.pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          const t = setTimeout(() => {
            if (!hasExited()) child.kill('SIGKILL');
          }, 3000);
          await exited;
          clearTimeout(t);
        }
        paused = false;
        live.delete(entry);
        if (!keep) fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    };

    // Wait until it answers (it loads the zones after binding; queries sent
    // meanwhile wait in the socket buffer), or exits.
    const probe = `${zones[0]?.name ?? 'test'}`;
    const deadline = Date.now() + startTimeoutMs;
    let ready = false;
    while (!ready && !hasExited() && Date.now() < deadline) {
      const r = await dnsQuery({ host: HOST, port }, `2.0.0.127.${probe}`, 'A', 250).catch(() => null);
      if (r !== null) ready = true;
      else await sleep(20);
    }
    if (!ready) {
      if (!hasExited()) {
        const msg = `rbldnsd did not answer on ${HOST}/${port} within ${startTimeoutMs} ms; ${describe()}`;
        await stop();
        throw new Error(msg);
      }
      await exited.catch(() => undefined);
      lastError = new Error(`rbldnsd exited during start-up; ${describe()}`);
      const portTaken = /in use|bind/i.test(out);
      await stop();
      if ((spawnError as NodeJS.ErrnoException | null)?.code === 'ENOENT') throw new Error(NOT_INSTALLED);
      if (portTaken && attempt < 5) continue;
      throw lastError;
    }
    if (child.pid === undefined) throw new Error(`rbldnsd has no pid; ${describe()}`);
    const pid = child.pid;

    const resolveFile = (name: string): string => {
      if (files[name] !== undefined) return name;
      const matches = zones.map((z, i) => (z.name === name ? (names[i] as string) : null)).filter((x): x is string => x !== null);
      if (matches.length === 1 && matches[0] !== undefined) return matches[0];
      if (matches.length === 0) throw new Error(`writeZone: no zone or file named ${name} (files: ${Object.keys(files).join(', ')})`);
      throw new Error(`writeZone: zone ${name} has several files (${matches.join(', ')}): name the file`);
    };

    return {
      host: HOST,
      port,
      address: `${HOST}:${port}`,
      dir,
      pid,
      files,
      writeZone(name: string, contents: string): void {
        const n = resolveFile(name);
        const target = files[n] as string;
        const tmp = path.join(dir, `.${n}.tmp`);
        fs.writeFileSync(tmp, contents, { mode: 0o644 });
        fs.chmodSync(tmp, 0o644);
        // rbldnsd reloads when the mtime (whole seconds) differs from the one it
        // loaded: never reuse a second, even for two writes within one.
        const sec = Math.max(Math.floor(Date.now() / 1000), (mtimes.get(n) ?? 0) + 1);
        fs.utimesSync(tmp, sec, sec);
        fs.renameSync(tmp, target);
        mtimes.set(n, sec);
      },
      pause(): void {
        if (hasExited()) throw new Error(`pause: rbldnsd is not running; ${describe()}`);
        process.kill(pid, 'SIGSTOP');
        paused = true;
      },
      resume(): void {
        if (hasExited()) throw new Error(`resume: rbldnsd is not running; ${describe()}`);
        process.kill(pid, 'SIGCONT');
        paused = false;
      },
      isPaused: () => paused,
      query: (name: string, type: QueryType = 'A', timeoutMs = 1000) => dnsQuery({ host: HOST, port }, name, type, timeoutMs),
      output: () => out,
      stop,
    };
  }
  throw lastError ?? new Error('startRbldnsd: failed');
}
