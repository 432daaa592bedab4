/*
 * test/helpers/policy-server.ts - a policy service for tests: node:http on
 * loopback port 0 (or a Unix socket) that answers right, late, never, with
 * garbage, with 500s, or closes the connection, as the test sets `mode`, and
 * counts its requests and how many it held at once.
 *
 * Exports: startPolicyServer(), PolicyServer, PolicyMode.
 * `answer(body)` picks the JSON reply for a request's parsed body (default
 * dunno). Requests held by `never` are answered when the server stops.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type PolicyMode = 'right' | 'late' | 'never' | 'garbage' | '500' | 'close' | 'hold';

export interface PolicyServer {
  url: string;
  mode: PolicyMode;
  /** late: answer after this many ms; hold: answer after this many ms too (the in-flight test). */
  delayMs: number;
  answer: (req: Record<string, unknown>) => Record<string, unknown>;
  requests: Array<Record<string, unknown>>;
  concurrent: number;
  maxConcurrent: number;
  stop(): Promise<void>;
}

export async function startPolicyServer(opts: { socketPath?: string } = {}): Promise<PolicyServer> {
  const held: http.ServerResponse[] = [];
  const ps: PolicyServer = {
    url: '', mode: 'right', delayMs: 0, answer: () => ({ action: 'dunno' }), requests: [], concurrent: 0, maxConcurrent: 0,
    stop: async () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      ps.concurrent++;
      ps.maxConcurrent = Math.max(ps.maxConcurrent, ps.concurrent);
      res.on('close', () => ps.concurrent--);
      let body: Record<string, unknown> = {};
      try { body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>; } catch { /* counted as sent */ }
      ps.requests.push(body);
      const json = (): void => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ps.answer(body)));
      };
      switch (ps.mode) {
        case 'right': json(); return;
        case 'late': case 'hold': setTimeout(json, ps.delayMs); return;
        case 'never': held.push(res); return;
        case 'garbage': res.writeHead(200).end('OK permit'); return;
        case '500': res.writeHead(500).end('{"action":"permit"}'); return;
        case 'close': req.socket.destroy(); return;
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  if (opts.socketPath !== undefined) {
    await new Promise<void>((resolve) => server.listen(opts.socketPath, resolve));
    ps.url = `unix:${opts.socketPath}:/policy`;
  } else {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ps.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/policy`;
  }
  return ps;
}
