/*
 * Integration: clients that connect and reset (RST) before the screener
 * accepts them, as a port scanner does. The kernel completes the handshake
 * and queues the connection; by the time the screener accepts it, the peer
 * is gone and its address cannot be read. Such a connection is a hangup at
 * accept, never a session, in every mode (and above all never a crash: the
 * handoff used to be asked to send XCLIENT ADDR="" or a PROXY header for an
 * empty address, and the process exited).
 *
 * The screener runs as a child process stopped with SIGSTOP while the
 * clients connect and reset, then continued: every queued connection is
 * then a reset one, deterministically.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startScreener, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

async function backend(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.write('220 backend.test ESMTP\r\n');
    s.on('data', (d) => {
      if (/^XCLIENT /m.test(d.toString('latin1'))) s.write('220 backend.test ESMTP\r\n');
      // After a PROXY header: in the same read as a v2 header, NOOP follows binary address bytes, not a line start.
      if (/NOOP\r\n/.test(d.toString('latin1'))) s.write('250 ok\r\n');
      // QUIT with its CRLF: the PROXY v2 signature holds "QUIT\n".
      if (/^QUIT\r\n/m.test(d.toString('latin1'))) s.end('221 bye\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** Open n connections to port and reset each once the kernel has completed its handshake. */
async function connectAndReset(port: number, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve) => {
    const c = connect({ host: '127.0.0.1', port, localAddress: `127.0.33.${i + 1}` });
    c.on('error', () => resolve());
    c.on('connect', () => {
      c.resetAndDestroy();
      resolve();
    });
  })));
}

const modes: Array<{ handoff: string; pregreet: boolean }> = [
  { handoff: 'xclient', pregreet: false },
  { handoff: 'proxy-v1', pregreet: false },
  { handoff: 'proxy-v2', pregreet: false },
  { handoff: 'xclient', pregreet: true },
];

for (const m of modes) {
  test(`a client reset before accept is a hangup, not a session (handoff ${m.handoff}, pregreet ${m.pregreet ? 'on' : 'off'})`, async () => {
    const b = await backend();
    let s: ScreenerProc | null = null;
    try {
      s = await startScreener({
        hostname: 'screen.test', listen: ['127.0.0.1:0'],
        pregreet: { enable: m.pregreet, wait: '100ms' },
        backend: { address: `127.0.0.1:${b.port}`, handoff: m.handoff, connect_timeout: '1s', handshake_timeout: '1s' },
      });
      const port = Number(s.listen[0]?.split(':').pop());
      process.kill(s.pid, 'SIGSTOP');
      try {
        await connectAndReset(port, 20);
      } finally {
        process.kill(s.pid, 'SIGCONT');
      }
      // The screener is alive and serves the next client end to end.
      const client = await connectClient('127.0.0.1', port, '127.0.34.1');
      await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === '127.0.34.1', 5000);
      client.write('QUIT\r\n');
      await client.closed;
      assert.equal(s.proc.exitCode, null, `the screener exited: ${s.stderr()}`);
      const hangups = s.eventsNamed('HANGUP').filter((e) => e['phase'] === 'accept');
      assert.ok(hangups.length > 0, 'reset connections are logged as HANGUP in phase accept');
      for (const h of hangups) assert.equal(h['client'], undefined, 'no client field: its address is unknown');
      const sessions = s.eventsNamed('CONNECT').map((e) => e['client']);
      assert.deepEqual(sessions.filter((c) => c !== '127.0.34.1' && !/^127\.0\.33\.\d+$/.test(String(c))), [],
        'no session starts with an unreadable address');
      assert.equal(s.eventsNamed('INTERNAL ERROR').length, 0);
    } finally {
      if (s !== null) await s.stop();
      b.server.close();
      for (const x of b.sockets) x.destroy();
    }
  });
}
