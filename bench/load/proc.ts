/*
 * bench/load/proc.ts - what a process costs, read from /proc (Linux only).
 *
 * Exports: ProcSample, sampleProc(pid), countFds(pid), countEstablished(host, port),
 *   cpuPct(a, b), machineInfo(), median(xs), percentiles(xs), round(x, digits), Percentiles.
 * Everything is read from the server's side: /proc/PID/status (VmRSS, RssAnon),
 * /proc/PID/stat (utime+stime), /proc/PID/fd (open descriptors) and
 * /proc/net/tcp (sockets in ESTABLISHED on a local port, the accept queue
 * included). None of it needs the server's cooperation, so the same figures
 * come out for any SMTP server given by PID.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** performance-independent wall clock, ms. */
  at: number;
  rssKb: number;
  rssAnonKb: number;
  /** utime + stime, ms. */
  cpuMs: number;
  threads: number;
}

function statusField(text: string, name: string): number {
  const i = text.indexOf(`\n${name}:`);
  if (i < 0) return NaN;
  return Number.parseInt(text.slice(i + name.length + 2).trimStart(), 10);
}

/** sampleProc - RSS and CPU time of pid, or null once it is gone. */
export function sampleProc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // fields 14 and 15: utime, stime
    return {
      at: Date.now(),
      rssKb: statusField(status, 'VmRSS'),
      rssAnonKb: statusField(status, 'RssAnon'),
      cpuMs: (ticks * 1000) / ticksPerSecond(),
      threads: statusField(status, 'Threads'),
    };
  } catch {
    return null;
  }
}

/** childPids - the processes whose parent is pid (a primary's workers, server/primary.ts). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** sampleTree - pid and its children summed (RSS, CPU); null once pid is gone. `pids` is how many were summed. */
export function sampleTree(pid: number): (ProcSample & { pids: number }) | null {
  const top = sampleProc(pid);
  if (top === null) return null;
  const sum = { ...top, pids: 1 };
  for (const c of childPids(pid)) {
    const s = sampleProc(c);
    if (s === null) continue;
    sum.rssKb += s.rssKb;
    sum.rssAnonKb += s.rssAnonKb;
    sum.cpuMs += s.cpuMs;
    sum.threads += s.threads;
    sum.pids++;
  }
  return sum;
}

/** countFds - open descriptors of pid (-1 once it is gone). */
export function countFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/**
 * countEstablished - sockets in ESTABLISHED whose local address is host:port
 * (IPv4): the server's half of each connection, accepted or still in the
 * accept queue. The clients' halves have host:port as their remote end and
 * are not counted, even when a client's ephemeral port equals `port`.
 */
export function countEstablished(host: string, port: number): number {
  const hex = (n: number, w: number): string => n.toString(16).toUpperCase().padStart(w, '0');
  const octets = host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return -1;
  const want = `${octets.reverse().map((o) => hex(o, 2)).join('')}:${hex(port, 4)}`;
  let n = 0;
  for (const file of ['/proc/net/tcp']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    // "  sl  local_address rem_address   st ...": local is field 1, st field 3.
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const f = (lines[i] as string).trim().split(/\s+/);
      if (f[3] === '01' && f[1] === want) n++;
    }
  }
  return n;
}

/** cpuPct - CPU used between two samples, in % of one core. */
export function cpuPct(a: ProcSample, b: ProcSample): number {
  const wall = b.at - a.at;
  return wall > 0 ? (100 * (b.cpuMs - a.cpuMs)) / wall : 0;
}

export interface Percentiles {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** percentiles - nearest-rank percentiles of xs (ms); zeros when xs is empty. */
/** The median (the lower middle of an even count; 0 for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[(s.length - 1) >> 1] as number);
}

export function percentiles(xs: readonly number[]): Percentiles {
  if (xs.length === 0) return { n: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    min: round(s[0] as number, 3),
    p50: round(at(50), 3),
    p90: round(at(90), 3),
    p99: round(at(99), 3),
    max: round(s[s.length - 1] as number, 3),
    mean: round(sum / s.length, 3),
  };
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, 'latin1').trim());
  } catch {
    return null;
  }
}

function fdLimits(): { soft: number | null; hard: number | null } {
  try {
    const line = readFileSync('/proc/self/limits', 'latin1').split('\n').find((l) => l.startsWith('Max open files'));
    const m = line === undefined ? null : /(\d+)\s+(\d+)/.exec(line);
    return { soft: m === null ? null : Number(m[1]), hard: m === null ? null : Number(m[2]) };
  } catch {
    return { soft: null, hard: null };
  }
}

/** machineInfo - what the figures were measured on. */
export function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    cpu_mhz: cpus[0]?.speed ?? 0,
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()}`,
    totalmem_mb: Math.round(os.totalmem() / 1048576),
    fd_limit: fdLimits(),
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
    tcp_max_syn_backlog: readNumber('/proc/sys/net/ipv4/tcp_max_syn_backlog'),
    ephemeral_ports: (() => {
      try {
        return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/).map(Number);
      } catch {
        return null;
      }
    })(),
    loadavg: os.loadavg().map((x) => round(x, 2)),
  };
}
