/*
 * bench/load/early-flood.ts - memory per client that floods before the greeting.
 *
 *   npm run bench:early-flood -- [--count N] [--bytes B] [--pending P] [--out FILE]
 *
 * N clients (default 9,000: the screener's fd reservation allows ~9,968 in the greet wait at
 * 20,000 fds) each send B bytes (default 96 KiB) at once after connecting and stay. The
 * screener (pregreet.action enforce) is held in its greet wait by a DNSBL lookup to a DNS
 * server that never answers (a UDP socket here, dnsbl.timeout 120 s), so every client stays in
 * the phase where its early bytes are kept. RSS of the screener is sampled before, and once
 * every client is connected and the screener has read what it will read; per client =
 * (RSS held - RSS before) / N. Loopback only; bounded by --count and a 120 s deadline.
 */
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startScreener, sleep } from './server.js';
import { machineInfo, sampleProc } from './proc.js';

const { values } = parseArgs({ options: { count: { type: 'string' }, bytes: { type: 'string' }, pending: { type: 'string' }, out: { type: 'string' } } });
const count = Number(values.count ?? 9000);
const bytes = Number(values.bytes ?? 96 * 1024);
// Few connects at once: each read the screener discards is garbage until the next scavenge, and
// freed memory stays in RSS; a small pending cap keeps that transient out of the held figure.
const pendingCap = Number(values.pending ?? 20);
const deadline = Date.now() + 120_000;

const dns = createSocket('udp4');
await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
let queries = 0;
dns.on('message', () => { queries++; }); // never answers
const t = await startScreener({
  greetWaitMs: 120_000, action: 'enforce', maxConnections: 20_000, commandTimeMs: 300_000, logLevel: 'warn',
  backend: null, nodeArgs: [], traceGc: false, keepFiles: false,
  extra: {
    dnsbl: { sites: ['flood.bench.invalid'], timeout: '120s' },
    resolver: { servers: [`127.0.0.1:${dns.address().port}`], timeout: '60s', tries: 1 },
  },
});
const socks: net.Socket[] = [];
try {
  await sleep(500);
  const pid = t.pid as number;
  const before = sampleProc(pid);
  const payload = Buffer.alloc(bytes, 0x41);
  let open = 0;
  let failed = 0;
  let pending = 0;
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    while (pending >= pendingCap) await sleep(2);
    pending++;
    const n = i + 1;
    const s = net.connect({ host: t.listen.host, port: t.listen.port, localAddress: `127.1.${(n >> 8) & 0xff}.${n & 0xff}` });
    let waiting = true;
    const done = (): void => { if (waiting) { waiting = false; pending--; } };
    s.on('error', () => { failed++; done(); });
    // The teaser says the session started: then the flood, and the next client.
    s.once('data', () => { done(); open++; s.write(payload); s.on('data', () => {}); });
    s.once('close', done);
    socks.push(s);
  }
  while (pending > 0 && Date.now() < deadline) await sleep(50);
  // Let the screener read what it will: wait until its RSS is still for 3 s.
  let last = sampleProc(pid);
  for (let still = 0; still < 3 && Date.now() < deadline; ) {
    await sleep(1000);
    const now = sampleProc(pid);
    still = now !== null && last !== null && Math.abs(now.rssKb - last.rssKb) < 256 ? still + 1 : 0;
    last = now;
  }
  const held = sampleProc(pid);
  const alive = socks.filter((s) => !s.destroyed).length;
  const perClient = before && held ? Math.round(((held.rssKb - before.rssKb) * 1024) / Math.max(1, alive)) : null;
  const result = {
    bench: 'early-flood', at: new Date().toISOString(), machine: machineInfo(),
    settings: { clients: count, bytes_each: bytes, pending_cap: pendingCap, action: 'enforce', held_by: 'a DNSBL lookup to a silent server' },
    figures: { connected: open, failed, alive_at_sample: alive, dns_queries_seen: queries,
      rss_before_kb: before?.rssKb ?? null, rss_held_kb: held?.rssKb ?? null, rss_per_client_bytes: perClient },
  };
  console.log(JSON.stringify(result.figures));
  if (values.out !== undefined) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const s of socks) s.destroy();
  dns.close();
  await t.stop();
}
