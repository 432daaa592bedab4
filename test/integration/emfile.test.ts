/*
 * Integration: the screener under a low file descriptor limit (ulimit -n in a
 * shell that then execs it). Before the process limit is reached new clients
 * get a 421 and ACCEPT ERROR EMFILE is logged; no client is reset, and once
 * descriptors are free again the accept loop serves new clients. Each client
 * let in counts for the backend descriptor it will need once it passes, so a
 * burst of clean clients is refused at accept, never failed at the handoff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { repoRoot, withAllowRoot } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';

interface Limited {
  child: ChildProcess;
  events: Array<Record<string, unknown>>;
  waitFor(name: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** The CLI under a descriptor limit of `nofile` (ulimit -n in a shell that then execs it: soft and hard, since Node raises a soft limit to the hard one at start), with `yaml` as its config. */
function spawnLimited(nofile: number, yaml: string): Limited {
  const dir = mkdtempSync(join(tmpdir(), 'scr-emfile-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, withAllowRoot(yaml)); // the tests run as root
  const cli = join(repoRoot(), 'dist', 'src', 'cli.js');
  const child = spawn('bash', ['-c', `ulimit -n ${nofile} && exec "${process.execPath}" "${cli}" run --config "${file}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout as Readable }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (name: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const e = events.find((x) => x['event'] === name);
      if (e !== undefined) return e;
      if (Date.now() > deadline) throw new Error(`no ${name} event; got ${JSON.stringify(events.slice(-5))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
  return { child, events, waitFor, stop };
}

test('EMFILE: near the descriptor limit clients get 421 and ACCEPT ERROR is logged; the accept loop goes on', async () => {
  const { events, waitFor, stop } = spawnLimited(120, 'listen: ["127.0.0.1:0"]\nbackend: { address: "sink:0" }\npregreet: { wait: 30s }\nlimits: { max_per_client: 0 }\ndrain_timeout: 1s\n');
  try {
    const started = await waitFor('STARTED');
    assert.equal(started['fd_limit'], 120);
    const port = Number(String((started['listen'] as string[])[0]).split(':').pop());
    const clients: RawClient[] = [];
    for (let i = 0; i < 100; i++) clients.push(await connectClient('127.0.0.1', port, `127.0.20.${i + 1}`));
    await new Promise((r) => setTimeout(r, 500));
    const teased = clients.filter((c) => c.received().startsWith('220-')).length;
    const busy = clients.filter((c) => c.received() === '421 4.3.2 All server ports are busy\r\n').length;
    assert.equal(teased + busy, 100, 'every client got a teaser or a 421; none was reset or left without a reply');
    assert.ok(busy > 0 && teased > 0, `teased ${teased}, busy ${busy}`);
    const acc = await waitFor('ACCEPT ERROR');
    assert.equal(acc['code'], 'EMFILE');
    const b = events.find((e) => e['event'] === 'ALL PORTS BUSY');
    assert.equal(b?.['limit'], 'fds');
    for (const c of clients) c.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const again = await connectClient('127.0.0.1', port, '127.0.21.1');
    await again.readUntil(/^220-/m, 3000);
    again.destroy();
  } finally {
    await stop();
  }
});

/** A backend in this process (its descriptors are not the screener's): greets, then holds the session. */
async function holdingBackend(): Promise<{ port: number; close: () => void }> {
  const held: Socket[] = [];
  const server = createServer((sock) => {
    held.push(sock);
    sock.on('error', () => undefined);
    sock.write('220 backend.test ESMTP\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      server.close();
      for (const s of held) s.destroy();
    },
  };
}

const BUSY = '421 4.3.2 All server ports are busy\r\n';
const HANDED = /^220-[^\r]* ESMTP\r\n220 backend\.test ESMTP\r\n$/;

/**
 * `n` clean clients at once from 127.<net>.0.x; once each has its 421 or the
 * backend's greeting (the greet wait is 1 s: 5 s at most), asserts that every
 * one got one or the other and that no BACKEND FAIL was logged since `from`.
 */
async function cleanBurst(l: Limited, port: number, n: number, net: number, from: number): Promise<{ busy: number; handed: number; clients: RawClient[] }> {
  const clients = await Promise.all(Array.from({ length: n }, (_, i) => connectClient('127.0.0.1', port, `127.${net}.0.${i + 1}`)));
  const deadline = Date.now() + 5000;
  const settled = (c: RawClient): boolean => c.received() === BUSY || HANDED.test(c.received()) || c.peerEnded();
  while (Date.now() < deadline && !clients.every(settled)) await new Promise((r) => setTimeout(r, 100));
  const busy = clients.filter((c) => c.received() === BUSY).length;
  const handed = clients.filter((c) => HANDED.test(c.received())).length;
  const fails = l.events.slice(from).filter((e) => e['event'] === 'BACKEND FAIL');
  assert.equal(fails.length, 0, `BACKEND FAIL: ${JSON.stringify(fails.slice(0, 3))} (${fails.length} in all; handed ${handed}, busy ${busy})`);
  const odd = clients.filter((c) => c.received() !== BUSY && !HANDED.test(c.received())).slice(0, 3).map((c) => c.received());
  assert.equal(busy + handed, n, `every client got ALL PORTS BUSY or the backend; handed ${handed}, busy ${busy}, others: ${JSON.stringify(odd)}`);
  return { busy, handed, clients };
}

test('EMFILE at handoff: a burst of clean clients beyond what the descriptors allow gets ALL PORTS BUSY at accept; every client let in is handed over, none fails at the backend', async (t) => {
  const backend = await holdingBackend();
  const l = spawnLimited(200, `listen: ["127.0.0.1:0"]\nbackend: { address: "127.0.0.1:${backend.port}", handoff: none }\npregreet: { wait: 1s }\nlimits: { max_per_client: 0 }\ndrain_timeout: 1s\n`);
  const clients: RawClient[] = [];
  try {
    const started = await l.waitFor('STARTED');
    assert.equal(started['fd_limit'], 200);
    const port = Number(String((started['listen'] as string[])[0]).split(':').pop());
    // 150 clients at once: each one let in needs 2 descriptors once it passes (client + backend); 200 - 64 reserved allow 68.
    const r = await cleanBurst(l, port, 150, 22, 0);
    clients.push(...r.clients);
    t.diagnostic(`handed over ${r.handed}, ALL PORTS BUSY ${r.busy}`);
    assert.ok(r.busy > 0 && r.handed > 0, `handed ${r.handed}, busy ${r.busy}`);
    assert.equal(l.events.filter((e) => e['event'] === 'HANDOFF').length, r.handed);
    assert.equal(l.events.find((e) => e['event'] === 'ALL PORTS BUSY')?.['limit'], 'fds');
  } finally {
    for (const c of clients) c.destroy();
    await l.stop();
    backend.close();
  }
});

test('EMFILE accounting: a client held in the dummy engine counts one descriptor, released when it leaves', async (t) => {
  const backend = await holdingBackend();
  const l = spawnLimited(200, `listen: ["127.0.0.1:0"]\nbackend: { address: "127.0.0.1:${backend.port}", handoff: none }\n` +
    'pregreet: { wait: 1s, action: enforce }\ndummy: { command_time_limit: 60s }\nlimits: { max_per_client: 0 }\ndrain_timeout: 1s\n');
  const talkers: RawClient[] = [];
  const clients: RawClient[] = [];
  try {
    const started = await l.waitFor('STARTED');
    const port = Number(String((started['listen'] as string[])[0]).split(':').pop());
    // 100 pregreeters, 25 at a time, each batch in the dummy engine (its early EHLO answered) before the next:
    // at two descriptors each only 67 would be let in; at one each, all are.
    for (let b = 0; b < 4; b++) {
      const batch = await Promise.all(Array.from({ length: 25 }, (_, i) => connectClient('127.0.0.1', port, `127.23.${b}.${i + 1}`)));
      for (const c of batch) c.write('EHLO zombie.test\r\n');
      await Promise.all(batch.map((c) => c.readUntil(/^250 /m, 5000)));
      talkers.push(...batch);
    }
    assert.equal(l.events.filter((e) => e['event'] === 'ALL PORTS BUSY').length, 0);
    for (const c of talkers) c.destroy();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && l.events.filter((e) => e['event'] === 'DISCONNECT').length < 100) await new Promise((r) => setTimeout(r, 100));
    // They are gone, and so is their count: a clean burst is let in as far as two descriptors each allow, and no further.
    const from = l.events.length;
    const r = await cleanBurst(l, port, 100, 24, from);
    clients.push(...r.clients);
    t.diagnostic(`after the dummy sessions left: handed over ${r.handed}, ALL PORTS BUSY ${r.busy}`);
    assert.ok(r.busy > 0 && r.handed > 0, `handed ${r.handed}, busy ${r.busy}`);
  } finally {
    for (const c of [...talkers, ...clients]) c.destroy();
    await l.stop();
    backend.close();
  }
});
