/*
 * test/helpers/redis.ts - a private redis-server on a free loopback port, for the shared-store
 * tests and bench; never the system instance (6379 is never used, never stopped).
 *
 * Exports: startRedis(opts?), RedisServer, redisCommand(port, ...args), stopAllRedis(),
 *          startDelayProxy(target, delayMs), DelayProxy, startSentinel(master, name), Sentinel,
 *          startCluster(n), RedisCluster.
 * startRedis() runs, as a child of this process (so its PID is known):
 *   redis-server --port PORT --bind 127.0.0.1 --save "" --appendonly no --dir DIR
 *                --logfile DIR/redis.log --daemonize no
 * in a fresh /tmp/smtpscreen-redis-XXXX, and resolves once it answers PING. stop() is
 * `redis-cli -p PORT shutdown nosave` (SIGKILL by PID if it is still there 3 s later); kill() is
 * SIGKILL by PID (a crash: nothing saved, every key gone); restart() starts it again on the same
 * port. With opts.tls it listens with TLS only (rediss://; redis-cli --tls --insecure). A missing binary is an Error naming the Debian package (tests fail, never skip). Every
 * server still running when this process exits is SIGKILLed.
 * startDelayProxy() is a TCP proxy in front of it that holds every reply for delayMs (a slow
 * Redis); setDelay() changes it for what arrives next.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { findExecutable } from './postfix.js';
import { freePort } from './ports.js';

const HOST = '127.0.0.1';
const NOT_INSTALLED = 'redis-server is not installed: install the Debian package "redis-server" (scripts/setup-test-deps.sh)';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** The running server's PID (changes with restart()). */
  readonly pid: number;
  readonly dir: string;
  /** redis-cli shutdown nosave, then the directory is removed. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Start again on the same port (after kill()). */
  restart(): Promise<void>;
  /** One command through redis-cli; its stdout, trimmed. */
  cli(...args: string[]): Promise<string>;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** SIGKILL every server this process started that still runs. */
export function stopAllRedis(): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  live.clear();
}

/** One command through redis-cli against 127.0.0.1:port; its stdout, trimmed. */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  const cli = findExecutable('redis-cli');
  if (cli === null) return Promise.reject(new Error('redis-cli is not installed: install the Debian package "redis-tools" (redis-server depends on it)'));
  return new Promise((resolve, reject) => {
    execFile(cli, ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** TLS only: the server listens with this certificate and key (PEM files), clients not asked for one. */
export interface RedisTls {
  cert: string;
  key: string;
}

function ping(port: number, withTls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = withTls ? tls.connect({ host: HOST, port, rejectUnauthorized: false }) : net.connect({ host: HOST, port });
    let got = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on(withTls ? 'secureConnect' : 'connect', () => sock.write('PING\r\n'));
    sock.on('data', (b) => {
      got += b.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

async function spawnServer(bin: string, port: number, dir: string, timeoutMs: number, withTls?: RedisTls, extra: readonly string[] = []): Promise<ChildProcess> {
  const listen = withTls === undefined ? ['--port', String(port)]
    : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', withTls.cert, '--tls-key-file', withTls.key, '--tls-auth-clients', 'no'];
  const args = [...listen, '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir,
    '--logfile', path.join(dir, 'redis.log'), '--daemonize', 'no', ...extra];
  const child = spawn(bin, args, { cwd: dir, stdio: 'ignore' });
  live.add(child);
  child.unref();
  child.once('exit', () => live.delete(child));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await ping(port, withTls !== undefined)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  let log = '';
  try {
    log = fs.readFileSync(path.join(dir, 'redis.log'), 'utf8').slice(-2000);
  } catch {
    /* none */
  }
  throw new Error(`redis-server on ${HOST}:${port} did not answer PING within ${timeoutMs} ms (exit ${String(child.exitCode)})\n${log}`);
}

function waitExit(c: ChildProcess, ms: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
    }, ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** opts.args: more redis-server arguments (e.g. --replicaof, --cluster-enabled yes). */
export async function startRedis(opts: { startTimeoutMs?: number; tls?: RedisTls; args?: readonly string[] } = {}): Promise<RedisServer> {
  const bin = findExecutable('redis-server');
  if (bin === null) throw new Error(NOT_INSTALLED);
  if (!hooked) {
    hooked = true;
    process.on('exit', stopAllRedis);
  }
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  let lastErr: Error | null = null;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const dir = fs.mkdtempSync('/tmp/smtpscreen-redis-');
    const port = await freePort(HOST);
    if (port === 6379) continue;
    let child: ChildProcess;
    try {
      child = await spawnServer(bin, port, dir, timeoutMs, opts.tls, opts.args);
    } catch (err) {
      lastErr = err as Error;
      fs.rmSync(dir, { recursive: true, force: true });
      continue; // the port was taken meanwhile: another one
    }
    const server: RedisServer = {
      port,
      url: `${opts.tls === undefined ? 'redis' : 'rediss'}://${HOST}:${port}`,
      get pid() {
        return child.pid ?? -1;
      },
      dir,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          if (opts.tls === undefined) await redisCommand(port, 'shutdown', 'nosave').catch(() => undefined);
          else child.kill('SIGTERM');
          await waitExit(child, 3000);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
      async kill() {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid, 'SIGKILL');
          await waitExit(child, 3000);
        }
      },
      async restart() {
        child = await spawnServer(bin, port, dir, timeoutMs, opts.tls, opts.args);
      },
      cli: (...args: string[]) => redisCommand(port, ...(opts.tls === undefined ? [] : ['--tls', '--insecure']), ...args),
    };
    return server;
  }
  throw lastErr ?? new Error('startRedis: no port');
}

export interface DelayProxy {
  readonly port: number;
  readonly url: string;
  /** Replies from now on are held this long (0: passed at once). */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:targetPort that holds each reply chunk for `delayMs` (order kept). */
export async function startDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  let delay = delayMs;
  const socks = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect({ host: HOST, port: targetPort });
    socks.add(client);
    socks.add(up);
    client.pipe(up);
    up.on('data', (b: Buffer) => {
      const d = delay;
      if (d <= 0) client.write(b);
      else setTimeout(() => client.writable && client.write(b), d).unref();
    });
    const end = (): void => {
      client.destroy();
      up.destroy();
      socks.delete(client);
      socks.delete(up);
    };
    client.on('error', end);
    up.on('error', end);
    client.on('close', end);
    up.on('close', end);
  });
  await new Promise<void>((r) => server.listen({ host: HOST, port: 0 }, () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `redis://${HOST}:${port}`,
    setDelay(ms: number) {
      delay = ms;
    },
    async close() {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Sentinel {
  readonly port: number;
  readonly pid: number;
  /** "host port" of the master it names now. */
  masterAddr(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * startSentinel() - one redis-server in sentinel mode (quorum 1, a master down after 1 s, failover
 * within 10 s) watching `master` under `name`; its own config file, which it rewrites, in a fresh
 * directory. A replica of the master (startRedis({ args: ['--replicaof', ...] })) is found by it.
 */
export async function startSentinel(master: RedisServer, name: string): Promise<Sentinel> {
  const bin = findExecutable('redis-server');
  if (bin === null) throw new Error(NOT_INSTALLED);
  const dir = fs.mkdtempSync('/tmp/smtpscreen-sentinel-');
  const port = await freePort(HOST);
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(conf, [
    `port ${port}`, `bind ${HOST}`, `dir ${dir}`, `logfile ${path.join(dir, 'sentinel.log')}`, 'daemonize no',
    `sentinel monitor ${name} ${HOST} ${master.port} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 10000`,
    `sentinel parallel-syncs ${name} 1`, '',
  ].join('\n'));
  const child = spawn(bin, [conf, '--sentinel'], { cwd: dir, stdio: 'ignore' });
  live.add(child);
  child.unref();
  child.once('exit', () => live.delete(child));
  const masterAddr = async (): Promise<string> => (await redisCommand(port, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n').join(' ');
  const end = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server --sentinel exited ${String(child.exitCode)}: ${fs.readFileSync(path.join(dir, 'sentinel.log'), 'utf8').slice(-1000)}`);
    if (await masterAddr().catch(() => '') === `${HOST} ${master.port}`) break;
    if (Date.now() > end) throw new Error(`sentinel on ${HOST}:${port} does not name the master ${name} after 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    get pid() {
      return child.pid ?? -1;
    },
    masterAddr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await waitExit(child, 3000);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** The node that holds `key` (CLUSTER KEYSLOT, then the slot's owner). */
  ownerOf(key: string): Promise<RedisServer>;
  stop(): Promise<void>;
}

/** startCluster() - n (>= 3) masters with cluster-enabled, joined by redis-cli --cluster create, every slot served. */
export async function startCluster(n = 3): Promise<RedisCluster> {
  const nodes = await Promise.all(Array.from({ length: n }, () => startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000'] })));
  const cli = findExecutable('redis-cli');
  if (cli === null) throw new Error('redis-cli is not installed: install the Debian package "redis-tools" (redis-server depends on it)');
  await new Promise<void>((resolve, reject) => {
    execFile(cli, ['--cluster', 'create', ...nodes.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create: ${err.message}\n${stdout}\n${stderr}`)) : resolve()));
  });
  const end = Date.now() + 15_000;
  for (;;) {
    const states = await Promise.all(nodes.map((s) => s.cli('CLUSTER', 'INFO').catch(() => '')));
    if (states.every((t) => /cluster_state:ok/.test(t))) break;
    if (Date.now() > end) throw new Error(`the cluster is not ok after 15 s: ${states.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    nodes,
    async ownerOf(key: string) {
      const slot = Number(await (nodes[0] as RedisServer).cli('CLUSTER', 'KEYSLOT', key));
      const shards = await (nodes[0] as RedisServer).cli('CLUSTER', 'SLOTS');
      // redis-cli prints CLUSTER SLOTS flattened: start, end, host, port, id, ... per range.
      const f = shards.split('\n');
      for (let i = 0; i + 3 < f.length; i++) {
        const lo = Number(f[i]);
        const hi = Number(f[i + 1]);
        if (f[i + 2] === HOST && /^\d+$/.test(f[i + 3] ?? '') && Number.isInteger(lo) && Number.isInteger(hi) && slot >= lo && slot <= hi) {
          const owner = nodes.find((s) => s.port === Number(f[i + 3]));
          if (owner !== undefined) return owner;
        }
      }
      throw new Error(`no node owns slot ${slot} of ${key}: ${shards}`);
    },
    async stop() {
      await Promise.all(nodes.map((s) => s.stop()));
    },
  };
}
