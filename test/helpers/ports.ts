/*
 * test/helpers/ports.ts - free TCP ports on loopback for test servers.
 *
 * Exports: freePort(host), freePorts(n, host).
 * A port is found by binding port 0 and closing the socket again, so there is
 * a short window in which another process could take it; callers that start
 * an external server on it (Postfix) retry with a fresh port when the bind
 * fails with "Address already in use".
 */
import net from 'node:net';

/** One free TCP port on `host` (loopback by default). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  if (port === undefined) throw new Error('freePort: no port');
  return port;
}

/**
 * `n` distinct free TCP ports on `host`. All n sockets are held open until
 * every port is known, so the ports differ from each other.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen({ host, port: 0, exclusive: true }, () => {
            const addr = srv.address();
            if (addr === null || typeof addr === 'string') reject(new Error('freePorts: no TCP address'));
            else resolve(addr.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}
