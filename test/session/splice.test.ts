/*
 * session/splice.ts on real loopback sockets: bytes cross both ways whole and in order, a peer
 * that does not read pauses the reader (backpressure) until it drains, and a FIN crosses while
 * the other direction goes on (half-close).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { splice } from '../../src/session/splice.js';
import { kSession, type ScreenSocket, type Session } from '../../src/session/state.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A connected pair on loopback: [the side we hold (as the screener would), the far end]. */
async function pair(): Promise<[ScreenSocket, net.Socket, () => void]> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const far = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [near] = await accepted;
  await once(far, 'connect').catch(() => undefined);
  return [near as ScreenSocket, far, () => server.close()];
}

async function joined(): Promise<{ client: net.Socket; backend: net.Socket; cs: ScreenSocket; bs: ScreenSocket; done: () => void }> {
  const [cs, client, c1] = await pair();
  const [bs, backend, c2] = await pair();
  const s = { socket: cs, backendSock: bs } as unknown as Session;
  cs[kSession] = s;
  bs[kSession] = s;
  cs.pause();
  splice(cs, bs);
  return { client, backend, cs, bs, done: () => { for (const x of [client, backend, cs, bs]) x.destroy(); c1(); c2(); } };
}

function collect(sock: net.Socket): { bytes: () => Buffer } {
  const parts: Buffer[] = [];
  sock.on('data', (c: Buffer) => parts.push(c));
  return { bytes: () => Buffer.concat(parts) };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await sleep(10)) if (Date.now() > end) throw new Error('not in time');
}

test('splice: 4 MB each way arrive whole and in order', { timeout: 60_000 }, async () => {
  const j = await joined();
  try {
    const up = Buffer.alloc(4 << 20);
    const down = Buffer.alloc(4 << 20);
    for (let i = 0; i < up.length; i++) {
      up[i] = (i * 7) & 0xff;
      down[i] = (i * 13) & 0xff;
    }
    const atBackend = collect(j.backend);
    const atClient = collect(j.client);
    j.client.write(up);
    j.backend.write(down);
    await until(() => atBackend.bytes().length === up.length && atClient.bytes().length === down.length, 20_000);
    assert.ok(atBackend.bytes().equals(up));
    assert.ok(atClient.bytes().equals(down));
  } finally {
    j.done();
  }
});

test('splice: a backend that does not read pauses the client side; once it reads, everything arrives', { timeout: 60_000 }, async () => {
  const j = await joined();
  try {
    j.backend.pause(); // the far end reads nothing: kernel buffers fill, then our writes queue
    const big = Buffer.alloc(32 << 20, 0x61);
    j.client.write(big);
    await until(() => j.cs.isPaused(), 20_000);
    assert.ok(j.bs.writableLength < 1 << 20, `what waits in our process is bounded: ${j.bs.writableLength} bytes`);
    const got = collect(j.backend);
    j.backend.resume();
    await until(() => got.bytes().length === big.length, 30_000);
  } finally {
    j.done();
  }
});

test('splice: the client\'s FIN reaches the backend, and the backend can still answer (half-close)', { timeout: 30_000 }, async () => {
  const j = await joined();
  try {
    const atBackend = collect(j.backend);
    const ended = once(j.backend, 'end');
    j.client.end('QUIT\r\n');
    await ended;
    assert.equal(atBackend.bytes().toString(), 'QUIT\r\n');
    const atClient = collect(j.client);
    j.backend.end('221 bye\r\n');
    await once(j.client, 'end');
    assert.equal(atClient.bytes().toString(), '221 bye\r\n');
  } finally {
    j.done();
  }
});
