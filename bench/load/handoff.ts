/*
 * bench/load/handoff.ts - what passing an accepted socket to another process costs, alone.
 *
 *   node dist/bench/load/handoff.js [direct|pass] [--seconds S] [--conc C]
 *
 * direct: one process accepts and closes each connection. pass: it accepts with pauseOnConnect
 * and sends each socket to a child (child_process IPC, as server/primary.ts does), which closes
 * it. C clients (default 200) in this process connect in a loop from distinct 127.9.x.y
 * addresses for S seconds (default 5); prints connections per second and the load average.
 * Node sends the next handle to a child only after the child acknowledged the last one, so
 * `pass` shows the ceiling of one worker's hand-off on this machine.
 */
import net from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const mode = process.argv[2] ?? 'pass';
const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : d;
  if (!Number.isFinite(v) || v <= 0 || v > 10_000) throw new Error(`--${name}: want a positive number, got ${process.argv[i + 1]}`);
  return v;
};

if (mode === 'child') {
  process.on('message', (_m: unknown, h?: net.Socket) => h?.destroy());
  process.on('disconnect', () => process.exit(0));
} else {
  if (mode !== 'direct' && mode !== 'pass') throw new Error(`want direct or pass, got ${mode}`);
  const seconds = Math.min(60, arg('seconds', 5));
  const conc = Math.min(250, arg('conc', 200));
  const child: ChildProcess | null = mode === 'pass' ? fork(fileURLToPath(import.meta.url), ['child']) : null;
  const srv = net.createServer({ pauseOnConnect: child !== null }, (s) => {
    if (child === null) s.destroy();
    else child.send({ t: 'conn' }, s, (err) => err && s.destroy());
  });
  await new Promise<void>((r) => srv.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, r));
  const port = (srv.address() as net.AddressInfo).port;
  let done = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: conc }, async (_, i) => {
    for (let n = 0; Date.now() < end; n++) {
      await new Promise<void>((r) => {
        const c = net.connect({ port, host: '127.0.0.1', localAddress: `127.9.${i}.${1 + (n % 250)}` });
        c.on('error', () => undefined);
        c.on('close', () => {
          done++;
          r();
        });
      });
    }
  }));
  console.log(JSON.stringify({ mode, per_s: Math.round(done / seconds), load1: loadavg()[0] }));
  child?.kill();
  srv.close();
}
